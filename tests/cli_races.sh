#!/usr/bin/env bash
# Issue 14's races and full disk, outside the Hub: dedup against a process
# holding a file open for writing and against a rewrite loop.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
test_dir cli_races
PY=/usr/bin/python3
export CELLAR_HOME=$T/store

# writer FILE: the "training job": opens FILE for writing, says $T/ready,
# waits for $T/go, then writes "JOB WROTE THIS" at offset 0. Sets JOB (its
# pid) and returns once FILE is held open.
writer() {
    $PY - "$1" "$T/go" "$T/ready" <<'PYEOF' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
open(sys.argv[3], "w").close()
for _ in range(600):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.05)
os.pwrite(fd, b"JOB WROTE THIS", 0)
os.close(fd)
PYEOF
    JOB=$!
    for _ in $(seq 200); do [ -e "$T/ready" ] && break; sleep 0.05; done
}

# ---- dedup and a writer that already holds a file open -------------------
mkdir -p "$T/d"
head -c 300000 /dev/urandom >"$T/d/a.bin"
cp "$T/d/a.bin" "$T/d/b.bin"
cp "$T/d/a.bin" "$T/d/c.bin"
cp "$T/d/a.bin" "$T/ref.bin"
writer "$T/d/a.bin"
"$BIN" dedup "$T/d" >"$T/out" 2>&1 || true
touch "$T/go"
wait $JOB
check "the writer's file got its write" grep -q "JOB WROTE THIS" "$T/d/a.bin"
check "b.bin unchanged by the writer" cmp -s "$T/d/b.bin" "$T/ref.bin"
check "c.bin unchanged by the writer" cmp -s "$T/d/c.bin" "$T/ref.bin"
check "b and c still share the store's copy" [ "$(stat -c %i "$T/d/b.bin")" = "$(stat -c %i "$T/d/c.bin")" ]
check "verify clean after the write" "$BIN" verify
check "root note in dedup's output" grep -q "running as root" "$T/out"

# `cellar add` of a file held open for writing copies it in, never adopts.
rm -f "$T/go" "$T/ready"
export CELLAR_HOME=$T/store_add
head -c 100000 /dev/urandom >"$T/x.bin"
writer "$T/x.bin"
"$BIN" add "$T/x.bin" >/dev/null 2>&1 || bad "add of a file open for writing"
touch "$T/go"
wait $JOB
check "add: the store's copy is not the written inode" "$BIN" verify
export CELLAR_HOME=$T/store

# ---- dedup while another user's loop rewrites a file ---------------------
# Not as root: 0444 is what stops new writers, and root ignores it.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    AS="setpriv --reuid=65534 --regid=65534 --clear-groups --"
else
    AS=
fi
if [ "$(id -u)" != 0 ] || [ -n "$AS" ]; then
    R=$T/rw
    RBIN=$BIN
    if [ -n "$AS" ]; then
        # nobody must reach the files and the binary: this tree may sit in a
        # 0700 folder (a mktemp clone), so both go to a 0755 one of its own.
        R=$(mktemp -d /tmp/cellar-races.XXXXXX)
        chmod 755 "$R"
        cp "$BIN" "$R/cellar"
        RBIN=$R/cellar
        trap 'rm -rf "$R"' EXIT
    fi
    mkdir -p "$R/tree" "$R/store"
    for i in 1 2 3 4 5 6; do head -c 200000 /dev/zero | tr '\0' "$i" >"$R/tree/f$i"; cp "$R/tree/f$i" "$R/tree/g$i"; done
    cp "$R/tree/f1" "$R/tree/loop"
    for i in 1 2 3 4 5 6; do cp "$R/tree/f$i" "$R/ref$i"; done
    [ -n "$AS" ] && chown -R 65534:65534 "$R"
    # Rewrites "loop" in place forever, alternating the content of f1 and
    # of f2 (same size): whichever it holds when dedup hashes it, a write
    # after adoption would change every copy.
    $AS $PY - "$R/tree/loop" "$R/stop" <<'PYEOF' &
import os, sys
path, stop = sys.argv[1], sys.argv[2]
a, b = b"1" * 200000, b"2" * 200000
i = 0
import time
deadline = time.monotonic() + 300  # never outlive a broken test
while not os.path.exists(stop) and time.monotonic() < deadline:
    try:
        fd = os.open(path, os.O_WRONLY)
    except PermissionError:
        continue  # read-only now: the store's
    os.pwrite(fd, a if i % 2 else b, 0)
    os.close(fd)
    i += 1
PYEOF
    LOOP=$!
    deduped=0
    for k in 1 2 3; do # a run may fail on the file changing under it; one must not
        CELLAR_HOME=$R/store $AS "$RBIN" dedup "$R/tree" >"$R/dedup.out" 2>&1 && deduped=1
    done
    touch "$R/stop"
    wait $LOOP || true
    ok_all=0
    for i in 1 2 3 4 5 6; do
        cmp -s "$R/tree/f$i" "$R/ref$i" && cmp -s "$R/tree/g$i" "$R/ref$i" || ok_all=1
    done
    check "dedup ran (at least one pass succeeded)" [ $deduped = 1 ]
    check "dedup stored the copies" [ -n "$(find "$R/store/objects" -type f 2>/dev/null | head -1)" ]
    check "no file but the rewritten one ever changed" [ $ok_all = 0 ]
    check "verify clean after the rewrite loop" env CELLAR_HOME="$R/store" $AS "$RBIN" verify
else
    echo "SKIP: rewrite loop needs a non-root user (setpriv)"
fi

# ---- a full disk: every store command still opens the store, gc frees ----
# RLIMIT_FSIZE stands in for a full disk (no tmpfs mount needed): SQLite
# cannot grow its -shm file, no write past 4 KiB succeeds. SIGXFSZ ignored
# so a write fails with EFBIG instead of killing the process.
export CELLAR_HOME=$T/full
head -c 50000 /dev/urandom >"$T/big.bin"
"$BIN" add --copy "$T/big.bin" >/dev/null
sha=$(sha256sum <"$T/big.bin" | cut -c1-64)
obj=$CELLAR_HOME/objects/sha256/${sha:0:2}/${sha:2}
head -c 30000 /dev/urandom >"$CELLAR_HOME/tmp/partial-sha256:$(printf '%064d' 7)"
rm -f "$CELLAR_HOME"/cellar.db-shm "$CELLAR_HOME"/cellar.db-wal
full() { (trap '' XFSZ; ulimit -f 4; "$@"); }
check "ls works on a full disk" full "$BIN" ls
rc=0
full "$BIN" gc --grace 0 >"$T/out" 2>&1 || rc=$?
check "gc works on a full disk (rc $rc: $(head -c 200 "$T/out"))" [ "$rc" = 0 ]
check "gc on a full disk removed the unlinked object" [ ! -e "$obj" ]
check "a fresh partial is kept without --partials" [ -n "$(ls "$CELLAR_HOME/tmp")" ]
full "$BIN" gc --grace 0 --partials >/dev/null 2>&1 || bad "gc --partials on a full disk"
check "gc --partials removed the unlocked partial" [ -z "$(ls "$CELLAR_HOME/tmp")" ]
check "verify works on a full disk" full "$BIN" verify

test_end
