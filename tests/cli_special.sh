#!/usr/bin/env bash
# Issue 14: special files (FIFOs) are refused without blocking; hash -r
# skips them; dduf unpack checks every target before writing any; names
# with control bytes reach no terminal raw (hash --entries, every message).
set -euo pipefail

. "$(dirname "$0")/lib.sh"
test_dir cli_special
cd "$T"
export CELLAR_HOME=$T/store
# bounded CMD...: never hangs the test; 124 if it had to be killed.
bounded() { timeout -k 2 10 "$@"; }

# ---- FIFOs ---------------------------------------------------------------
mkfifo fifo
mkdir -p tree && echo hi >tree/a.txt && mkfifo tree/pipe
rc=0; bounded "$BIN" dduf ls fifo >out 2>err || rc=$?
check "dduf ls fifo refused, no hang (rc $rc)" [ "$rc" != 0 -a "$rc" != 124 ]
check "dduf ls fifo says FIFO" grep -q "FIFO" err
rc=0; bounded "$BIN" hash fifo >out 2>err || rc=$?
check "hash fifo refused, no hang (rc $rc)" [ "$rc" != 0 -a "$rc" != 124 ]
check "hash fifo prints no digest" [ ! -s out ]
rc=0; bounded "$BIN" hash -r tree >out 2>err || rc=$?
check "hash -r does not block on a FIFO (rc $rc)" [ "$rc" != 124 ]
check "hash -r lists the file" grep -q "tree/a.txt" out
check "hash -r does not list the FIFO" bash -c "! grep -q pipe out"
check "hash -r says it skipped the FIFO" grep -q "tree/pipe: not a regular file" err
check "hash - still reads stdin" bash -c "echo hi | '$BIN' hash - | grep -q \"\$(echo hi | b3sum | cut -c1-64)\""
# A shard index naming a FIFO.
mkdir -p sh && mkfifo sh/model-00001-of-00001.safetensors
printf '{"metadata":{},"weight_map":{"w":"model-00001-of-00001.safetensors"}}' >sh/model.safetensors.index.json
rc=0; bounded "$BIN" inspect sh/model.safetensors.index.json >out 2>err || rc=$?
check "inspect of an index naming a FIFO refused, no hang (rc $rc)" [ "$rc" != 0 -a "$rc" != 124 ]
rc=0; bounded "$BIN" add fifo >out 2>err || rc=$?
check "add fifo refused, no hang (rc $rc)" [ "$rc" != 0 -a "$rc" != 124 ]

# ---- DDUF with a hostile entry name and a symlinked component folder -----
/usr/bin/python3 - <<'PYEOF'
import json, zipfile
with zipfile.ZipFile("p.dduf", "w", zipfile.ZIP_STORED) as z:
    z.writestr("model_index.json", json.dumps({"_class_name": "P", "vae": ["diffusers", "A"]}))
    z.writestr("vae/config.json", "{}")
    z.writestr("vae/\x1b]0;PWNED\x07\x1b[31mred.json", "{}")
PYEOF
"$BIN" dduf ls p.dduf >out 2>err || bad "dduf ls of the test archive: $(cat err)"
"$BIN" hash --entries p.dduf >out 2>err || true
check "hash --entries lists the entries" grep -q "p.dduf/vae/config.json" out
check "hash --entries: no raw ESC or BEL" bash -c "! grep -q \$'[\x1b\x07]' out err"
check "hash --entries: the name shown escaped" grep -q 'x1b\]0;PWNED' out
# -c reads the escaped name back.
"$BIN" hash --entries p.dduf | grep -v PWNED >sums || true
# Every message escapes control bytes: a path with an ESC that does not exist.
rc=0; "$BIN" hash $'no\x1b[2Jsuch' >out 2>err || rc=$?
check "a missing path with ESC fails" [ "$rc" != 0 ]
check "its message holds no raw ESC" bash -c "! grep -q \$'\x1b' err"
rc=0; "$BIN" verify $'\x1b[2J' >out 2>err || rc=$?
check "verify's message holds no raw ESC" bash -c "! grep -q \$'\x1b' out err"
rc=0; "$BIN" inspect $'x\x1b[2J' >out 2>err || rc=$?
check "inspect's message holds no raw ESC" bash -c "! grep -q \$'\x1b' out err"

mkdir -p outside un
ln -s ../outside un/vae
rc=0; "$BIN" dduf unpack p.dduf un >out 2>err || rc=$?
check "unpack refuses a symlinked component folder" [ "$rc" != 0 ]
check "unpack wrote nothing (model_index.json too)" [ ! -e un/model_index.json ]
check "unpack wrote nothing through the symlink" [ -z "$(ls -A outside)" ]

test_end
