#!/usr/bin/env bash
# Crash safety of dedup: `cellar dedup` over a generated tree is killed with
# SIGKILL at random moments, many times. After every kill each user file
# still has its original content (checked by hash) and name; a rerun
# finishes the job (every duplicate shares one inode, no temp names are
# left); `cellar verify` stays clean.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
test_dir cli_dedup_crash
KILLS=${CRASH_KILLS:-25}
export CELLAR_HOME=$T/home
manifest() { (cd "$1" && find . -type f ! -name '.cellar-link.*' -print0 | sort -z | xargs -0 sha256sum); }

# The pristine tree: 64 files in 8 folders, about 40% of them copies of
# others (as in model folders), sizes 16 KiB to 256 KiB.
python3 - "$T/pristine" <<'EOF'
import os, random, sys
root = sys.argv[1]
r = random.Random(7)
made = []
for i in range(64):
    d = os.path.join(root, "dir%02d" % (i % 8))
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "m%03d.safetensors" % i)
    if made and r.random() < 0.4:
        data = open(r.choice(made), "rb").read()
    else:
        data = r.randbytes(r.randint(16 << 10, 256 << 10))
    open(p, "wb").write(data)
    made.append(p)
EOF
manifest "$T/pristine" >"$T/pristine.sha"
unique=$(cut -c1-64 "$T/pristine.sha" | sort | uniq | while read -r h; do
    f=$(grep -m1 "^$h" "$T/pristine.sha" | cut -c67-)
    stat -c %s "$T/pristine/$f"
done | paste -sd+ | bc)

W=$T/work
# How long one full run takes here: kills are spread over that span.
cp -a "$T/pristine" "$W"
t0=$(date +%s%N)
"$BIN" dedup "$W" >/dev/null
span=$((($(date +%s%N) - t0) / 1000000))
[ "$span" -ge 20 ] || span=20
rm -rf "$CELLAR_HOME"
echo "a full run takes ${span} ms"
landed=0
for i in $(seq 1 "$KILLS"); do
    # A fresh tree each round; a fresh store every third round, so kills
    # land both while objects are adopted and while names are replaced.
    rm -rf "$W"
    cp -a "$T/pristine" "$W"
    if [ $((i % 3)) = 1 ]; then rm -rf "$CELLAR_HOME"; fi
    "$BIN" dedup "$W" >/dev/null 2>&1 &
    pid=$!
    delay=$((RANDOM % span))
    sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
    if kill -9 $pid 2>/dev/null; then landed=$((landed + 1)); fi
    wait $pid 2>/dev/null || true
    check "round $i: every file intact after kill" diff -q "$T/pristine.sha" <(manifest "$W")
    check "round $i: rerun finishes" "$BIN" dedup "$W" >/dev/null
    check "round $i: intact after rerun" diff -q "$T/pristine.sha" <(manifest "$W")
    check "round $i: no temp names left" test -z "$(find "$W" -name '.cellar-link.*')"
    u=$("$BIN" du --json "$W" | sed -n 's/^], "total": .*"unique": \([0-9]*\),.*/\1/p')
    check "round $i: one inode per content ($u vs $unique)" test "$u" = "$unique"
done
check "verify is clean" "$BIN" verify -q
echo "kills that landed mid-run: $landed of $KILLS"
# The kill moments are spread over a measured run, so some must land
# before the end (how many depends on the machine's load).
check "kills landed mid-run" test "$landed" -ge $((KILLS / 8))
test_end
