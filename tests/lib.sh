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

# hub_start [hubserver options]: the test Hub (tests/hub/hubserver.py) on
# 127.0.0.1 over fresh fixtures in $T/fx; sets HUBPID (killed at exit: a
# test that kills more re-sets the trap), HUBPORT and HF_ENDPOINT. The wait
# bound is generous (a loaded 2-core machine); it ends once the port is out.
hub_start() {
    python3 "$SRC/tests/hub/make_fixtures.py" "$T/fx"
    python3 "$SRC/tests/hub/hubserver.py" "$T/fx" "$@" >"$T/hub.port" 2>"$T/hub.log" &
    HUBPID=$!
    trap 'kill $HUBPID 2>/dev/null || true' EXIT
    for _ in $(seq 600); do [ -s "$T/hub.port" ] && break; sleep 0.1; done
    HUBPORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["hub"])' "$T/hub.port")
    export HF_ENDPOINT=http://127.0.0.1:$HUBPORT
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

# wait_sigint_caught PID: until PID has its SIGINT handler installed (bit 2
# of SigCgt in /proc/PID/status), at most 30 s: a SIGINT sent before would
# kill it outright, and a loaded machine can take long to start a process.
wait_sigint_caught() {
    local mask
    for _ in $(seq 600); do
        mask=$(awk '/^SigCgt:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 0
        [ -n "$mask" ] || return 0
        (( (16#$mask >> 1) & 1 )) && return 0
        sleep 0.05
    done
}
