#!/usr/bin/env bash
# What a file is: generated headers for every rule of IDENTIFY.md (b) and
# registry hashes rebuilt from the published layouts (tests/model_keys.py),
# checked through `cellar inspect --json` (tests/identify_cases.py).
set -euo pipefail

. "$(dirname "$0")/lib.sh"
test_dir cli_identify

PY=/usr/bin/python3
if ! [ -x "$PY" ]; then
    echo "no $PY: skipped"
    exit 77
fi
if PYTHONPATH="$SRC/tests" "$PY" "$SRC/tests/identify_cases.py" "$BIN" "$T"; then ok; else bad "identify cases"; fi
test_end
