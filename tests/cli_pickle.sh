#!/usr/bin/env bash
# PyTorch checkpoints: inspect, hash, convert and scan against torch 1.13
# itself (tests/pickle_check.py writes the fixtures and compares). Skipped
# (77) when /usr/bin/python3 has no torch; never a pass without it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
test_dir pickle

PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "SKIP: $PY has no torch (scripts/install-deps.sh installs python3-torch)"
    exit 77
fi

# Help and usage errors of the new verbs.
check "convert --help" "$BIN" convert --help
check "scan --help" "$BIN" scan --help
set +e
"$BIN" convert "$T/none.pt" >/dev/null 2>&1
check "convert without -o is a usage error" test $? = 2
"$BIN" scan >/dev/null 2>&1
check "scan without PATH is a usage error" test $? = 2
set -e

if "$PY" "$SRC/tests/pickle_check.py" "$BIN" "$T/work" >"$T/check.out" 2>"$T/check.err"; then
    ok
else
    bad "pickle_check.py: $(grep -c FAIL "$T/check.err") failures"
    grep FAIL "$T/check.err" | head -40 >&2
fi
tail -1 "$T/check.out"
test_end
