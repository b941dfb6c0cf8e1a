#!/usr/bin/env bash
# `cellar --version` names the BLAKE3 kernel tier, and CELLAR_BLAKE3_ISA
# caps it: portable always wins, an unknown value is ignored.
set -euo pipefail
bin=${CELLAR_BIN:?}
pass=0 fail=0
check() { # name, expected, actual
    if [[ $2 == "$3" ]]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1: want '$2', got '$3'" >&2; fi
}

best=$(env -u CELLAR_BLAKE3_ISA "$bin" --version)
check "default names a tier" 1 "$([[ $best =~ ^cellar\ [0-9.]+\ \(blake3:\ (avx512|avx2|sse41|portable)\)$ ]] && echo 1 || echo 0)"
check "portable" "${best%(*}(blake3: portable)" "$(CELLAR_BLAKE3_ISA=portable "$bin" --version)"
check "unknown value" "$best" "$(CELLAR_BLAKE3_ISA=mmx "$bin" --version)"
check "avx512 cap is the best there is" "$best" "$(CELLAR_BLAKE3_ISA=avx512 "$bin" --version)"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
