#!/usr/bin/env bash
# cellar push / pull oci:// against a local Debian docker-registry, compared
# with what a user would run instead:
#   pull: curl fetching the same blobs one after another (target <= 1.1x),
#         skopeo copy of the artifact to a local oci: folder (target <= 0.5x)
#   push: skopeo copy of the oci: folder to an empty registry (target <= 1.1x)
# OCI_BENCH_BYTES sets the pipeline's size (default 2 GiB). One run each.
set -euo pipefail

BIN=${CELLAR_BIN:-$(dirname "$0")/../build/cellar}
SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
TOOL=$SRC/tests/oci/ocitool.py
BYTES=${OCI_BENCH_BYTES:-2147483648}
T=${OCI_BENCH_TMP:-/tmp/cellar-bench-oci}
rm -rf "$T"
mkdir -p "$T"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

start_registry() { # NAME: sets PORT (not in a subshell: the EXIT trap stops it)
    local d=$T/reg-$1 port
    port=$($PY "$TOOL" freeport)
    mkdir -p "$d/data"
    printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
        "$d/data" "$port" >"$d/config.yml"
    /usr/bin/docker-registry serve "$d/config.yml" >"$d/log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
    PORT=$port
}
secs() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; echo "$(date +%s.%N) - $s" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }

$PY "$TOOL" fixtures "$T/fx" "$((BYTES >> 20))"
M=$T/fx/alpha
echo "pipeline: $(du -sb "$M" | cut -f1) bytes in $(find "$M" -type f | wc -l) files"
export CELLAR_HOME=$T/store
"$BIN" add "$M" >/dev/null # the store knows every sha256 before the push

start_registry one
P1=$PORT
start_registry two
P2=$PORT
t_push=$(secs "$BIN" push "$M" "oci://127.0.0.1:$P1/bench/m:v1" --plain-http)
t_skopull=$(secs skopeo copy --src-tls-verify=false "docker://127.0.0.1:$P1/bench/m:v1" "oci:$T/layout:v1")
t_skopush=$(secs skopeo copy --dest-tls-verify=false "oci:$T/layout:v1" "docker://127.0.0.1:$P2/bench/m:v1")
export CELLAR_HOME=$T/store2
t_pull=$(secs "$BIN" pull "oci://127.0.0.1:$P1/bench/m:v1" --plain-http --to "$T/pulled")
skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$P1/bench/m:v1" |
    $PY -c 'import json,sys; print("\n".join(l["digest"] for l in json.load(sys.stdin)["layers"]))' >"$T/digests"
mkdir -p "$T/curl"
curl_all() {
    while read -r d; do
        curl -sf -o "$T/curl/${d#sha256:}" "http://127.0.0.1:$P1/v2/bench/m/blobs/$d"
    done <"$T/digests"
}
t_curl=$(secs curl_all)
diff -r "$M" "$T/pulled" >/dev/null && echo "pulled files identical"

printf 'push:  cellar %.2f s, skopeo copy oci:->registry %.2f s: ratio %s (target <= 1.1)\n' \
    "$t_push" "$t_skopush" "$(ratio "$t_push" "$t_skopush")"
printf 'pull:  cellar %.2f s, curl one by one %.2f s: ratio %s (target <= 1.1)\n' \
    "$t_pull" "$t_curl" "$(ratio "$t_pull" "$t_curl")"
printf 'pull:  cellar %.2f s, skopeo copy registry->oci: %.2f s: ratio %s (target <= 0.5)\n' \
    "$t_pull" "$t_skopull" "$(ratio "$t_pull" "$t_skopull")"
