# Shared by the CLI tests (tests/cli_*.sh), sourced after `set -euo pipefail`:
# the environment CTest gives, a fresh scratch folder, and the pass/fail
# bookkeeping that ends in the "N passed, N failed" line CTest reads.

BIN=${CELLAR_BIN:?run under CTest, or set CELLAR_BIN to the cellar binary}
SRC=${CELLAR_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
passed=0
failed=0
skipped=0

# test_dir NAME: sets T to a fresh scratch folder for this test.
test_dir() {
    T=${CELLAR_TEST_TMP:-/tmp/cellar-test}/$1
    rm -rf "$T"
    mkdir -p "$T"
}

ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "FAIL: $*" >&2
}
# check "description" command...: the command's success is the assertion.
check() {
    local what=$1
    shift
    if "$@"; then ok; else bad "$what"; fi
}
# skip "why": a part that cannot run here. With no failure the test then
# exits 77, which CTest reports as a skip (SKIP_RETURN_CODE), not a pass.
skip() {
    skipped=$((skipped + 1))
    echo "SKIPPED: $*"
}
# The closing line, and the exit status.
test_end() {
    echo "$passed passed, $failed failed, $skipped skipped"
    if [ "$failed" != 0 ]; then return 1; fi
    if [ "$skipped" != 0 ]; then exit 77; fi
}
