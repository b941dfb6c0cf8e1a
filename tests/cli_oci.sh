#!/usr/bin/env bash
# cellar push / pull oci:// and the team cache against Debian's
# docker-registry (2.8.2) on a free loopback port (OCI.md s.5): sharing
# between repositories, pulls by tag and digest, ModelPack validity (skopeo),
# a modctl-style manifest with tar and vnd.cnai layers, Basic and Bearer
# auth, a registry killed mid-pull, a corrupt blob, and CELLAR_REMOTE
# between two machines in front of the test Hub.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
test_dir cli_oci

REGBIN=/usr/bin/docker-registry
PY=/usr/bin/python3
TOOL=$SRC/tests/oci/ocitool.py
if [ ! -x "$REGBIN" ] || ! command -v skopeo >/dev/null || ! command -v htpasswd >/dev/null; then
    echo "SKIP: needs docker-registry, skopeo and htpasswd (scripts/install-deps.sh)"
    exit 77
fi
export HOME=$T/home
mkdir -p "$HOME"
unset CELLAR_REMOTE CELLAR_REGISTRY_AUTH CELLAR_REGISTRY_PLAIN_HTTP DOCKER_CONFIG HF_TOKEN \
    HF_HUB_OFFLINE HF_HUB_CACHE HF_HOME

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# start_registry NAME [htpasswd-file]: sets REG_PORT, REG_PID, REG_DIR.
start_registry() {
    local name=$1 htp=${2:-}
    REG_DIR=$T/reg-$name
    mkdir -p "$REG_DIR/data"
    [ -n "${REG_PORT_KEEP:-}" ] || REG_PORT=$($PY "$TOOL" freeport)
    {
        echo "version: 0.1"
        echo "log: {level: info, accesslog: {disabled: false}}"
        echo "storage: {filesystem: {rootdirectory: $REG_DIR/data}, delete: {enabled: true}}"
        echo "http: {addr: 127.0.0.1:$REG_PORT, secret: cellar-test}"
        [ -z "$htp" ] || echo "auth: {htpasswd: {realm: cellar-test, path: $htp}}"
    } >"$REG_DIR/config.yml"
    "$REGBIN" serve "$REG_DIR/config.yml" >>"$REG_DIR/log" 2>&1 &
    REG_PID=$!
    PIDS+=("$REG_PID")
    for _ in $(seq 300); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REG_PORT/v2/" || true)
        [ "$code" = 200 ] || [ "$code" = 401 ] && return 0
        sleep 0.1
    done
    echo "registry $name did not start" >&2
    cat "$REG_DIR/log" >&2
    return 1
}
# start_proxy NAME ARGS...: a Bearer/slow front (ocitool.py proxy); sets
# PROXY_PORT and PROXY_PID once it answers.
start_proxy() {
    local name=$1
    shift
    $PY "$TOOL" proxy "$@" >"$T/$name.json" 2>"$T/$name.log" &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    for _ in $(seq 300); do
        if [ -s "$T/$name.json" ]; then
            PROXY_PORT=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["proxy"])' "$T/$name.json")
            curl -sf "http://127.0.0.1:$PROXY_PORT/_stats" >/dev/null && return 0
        fi
        sleep 0.1
    done
    echo "proxy $name did not start" >&2
    cat "$T/$name.log" >&2
    return 1
}
# Blob upload PUTs the registry served for repository $2 (log $1).
uploads() { grep -c "\"PUT /v2/$2/blobs/uploads/" "$1" || true; }
fsize() { stat -c %s "$1"; }
inode() { stat -c %i "$1"; }
same_tree() {
    (cd "$1" && find . -type f | sort) >"$T/want.lst"
    (cd "$2" && find -L . -type f | sort) >"$T/got.lst"
    cmp -s "$T/want.lst" "$T/got.lst" || { diff "$T/want.lst" "$T/got.lst" >&2; return 1; }
    while IFS= read -r f; do cmp -s "$1/$f" "$2/$f" || { echo "$f differs" >&2; return 1; }; done <"$T/want.lst"
}
c() { "$BIN" "$@"; }

$PY "$TOOL" fixtures "$T/fx" 2
FX=$T/fx
VAE=vae/diffusion_pytorch_model.safetensors
UNET=unet/diffusion_pytorch_model.safetensors

start_registry main
R=127.0.0.1:$REG_PORT
MAIN_DIR=$REG_DIR
MAIN_PID=$REG_PID

# ---- push two pipelines: shared blobs are not uploaded again --------------
export CELLAR_HOME=$T/push-store
cp -r "$FX/alpha" "$T/src-alpha"
cp -r "$FX/beta" "$T/src-beta"
c push "$T/src-alpha" "oci://$R/team/alpha:v1" --plain-http --json >"$T/push-a.json" 2>"$T/err" \
    || { cat "$T/err"; bad "push alpha"; }
nfiles=$(cd "$FX/alpha" && find . -type f | wc -l)
check "alpha: every file and the config uploaded" [ "$(uploads "$MAIN_DIR/log" team/alpha)" = $((nfiles + 1)) ]
c push "$T/src-beta" "oci://$R/team/beta:v1" --plain-http --json >"$T/push-b.json" 2>"$T/err" \
    || { cat "$T/err"; bad "push beta"; }
# beta differs from alpha in the unet, its config, model_index.json, so those
# three and beta's config are the only uploads; the rest are mounted.
check "beta: only what alpha lacks uploaded" [ "$(uploads "$MAIN_DIR/log" team/beta)" = 4 ]
check "beta: shared blobs mounted" grep -q '"blobs_mounted": 4' "$T/push-b.json"
c push "$T/src-beta" "oci://$R/team/beta:v1" --plain-http --json >"$T/push-b2.json" 2>&1
check "push again: nothing uploaded" grep -q '"blobs_uploaded": 0' "$T/push-b2.json"
check "push again: same manifest" [ "$(grep -o 'sha256:[0-9a-f]*' "$T/push-b.json" | head -1)" = \
    "$(grep -o 'sha256:[0-9a-f]*' "$T/push-b2.json" | head -1)" ]
BETA_DIGEST=$(grep -o '"digest": "sha256:[0-9a-f]*' "$T/push-b.json" | cut -d'"' -f4)

# chunked upload (PATCH): 2.8.2 appends chunks and wants the newest Location
CELLAR_HOME=$T/chunk-store c push "$T/src-beta" "oci://$R/team/chunked:v1" --plain-http --chunk-size 256KiB \
    >"$T/out" 2>&1 || { cat "$T/out"; bad "chunked push"; }
check "chunked: several PATCHes" [ "$(grep -c '"PATCH /v2/team/chunked/blobs/uploads/' "$MAIN_DIR/log")" -gt 4 ]
CELLAR_HOME=$T/chunk-pull c pull "oci://$R/team/chunked:v1" --plain-http --to "$T/p-chunked" >"$T/out" 2>&1 \
    || { cat "$T/out"; bad "pull of a chunked push"; }
check "chunked: same files" same_tree "$FX/beta" "$T/p-chunked"

# ---- ModelPack as skopeo sees it ------------------------------------------
skopeo inspect --raw --tls-verify=false "docker://$R/team/beta:v1" >"$T/manifest.json"
skopeo inspect --config --raw --tls-verify=false "docker://$R/team/beta:v1" >"$T/config.json"
check "manifest is JSON" $PY -m json.tool "$T/manifest.json" >/dev/null
check "config is JSON" $PY -m json.tool "$T/config.json" >/dev/null
check "ModelPack rules hold" $PY "$TOOL" validate "$T/manifest.json" "$T/config.json"
check "config: format" grep -q '"format":"safetensors"' "$T/config.json"
check "config: precision" grep -q '"precision":"bf16"' "$T/config.json"
check "config: paramSize" grep -q '"paramSize":"1.05m"' "$T/config.json"
check "manifest digest as pushed" [ "sha256:$(sha256sum <"$T/manifest.json" | cut -c1-64)" = "$BETA_DIGEST" ]

# ---- pulls: tag, digest, identical files, shared inodes -------------------
export CELLAR_HOME=$T/pull-store
c pull "oci://$R/team/alpha:v1" --plain-http --to "$T/p-alpha" >"$T/out" 2>&1 || { cat "$T/out"; bad "pull alpha by tag"; }
check "alpha by tag: same files" same_tree "$FX/alpha" "$T/p-alpha"
c pull "oci://$R/team/beta@$BETA_DIGEST" --plain-http --to "$T/p-beta" >"$T/out" 2>&1 || { cat "$T/out"; bad "pull beta by digest"; }
check "beta by digest: same files" same_tree "$FX/beta" "$T/p-beta"
check "beta reused alpha's blobs" grep -q "downloaded 3 files.*reused 4 files" "$T/out"
check "shared vae is one inode" [ "$(inode "$T/p-alpha/$VAE")" = "$(inode "$T/p-beta/$VAE")" ]
c pull "oci://$R/team/beta:v1" --plain-http --hf-cache "$T/hf" >"$T/out" 2>&1 || { cat "$T/out"; bad "pull --hf-cache"; }
check "hf layout" same_tree "$FX/beta" "$T/hf/models--team--beta/snapshots/$(cat "$T/hf/models--team--beta/refs/v1")"
check "bad reference refused" bash -c "! '$BIN' pull 'oci://$R/Team/UPPER:v1' --plain-http 2>'$T/err'"
check "bad reference worded" grep -q "lower-case" "$T/err"
c pull "oci://$R/team/missing:v1" --plain-http --to "$T/none" >"$T/out" 2>&1 && bad "missing tag pulled"
check "missing tag worded" grep -q "MANIFEST_UNKNOWN\|NAME_UNKNOWN" "$T/out"
c pull "oci://$R/team/alpha:v9" --plain-http --to "$T/none" >"$T/out" 2>&1 && bad "wrong tag pulled"
check "wrong tag: names the tags there" grep -q "team/alpha has tags v1" "$T/out"

# ---- a manifest written the way modctl writes one -------------------------
$PY "$TOOL" modctl-push "http://$R" team/modctl v1 "$FX/alpha"
CELLAR_HOME=$T/modctl-store c pull "oci://$R/team/modctl:v1" --plain-http --to "$T/p-modctl" >"$T/out" 2>&1 \
    || { cat "$T/out"; bad "pull modctl-style"; }
check "modctl-style: same files (+ the long tar name)" bash -c "
    cmp -s '$FX/alpha/$UNET' '$T/p-modctl/$UNET' &&
    cmp -s '$FX/alpha/README.md' '$T/p-modctl/README.md' &&
    cmp -s '$FX/alpha/tokenizer/vocab.txt' '$T/p-modctl/tokenizer/vocab.txt' &&
    [ -f '$T/p-modctl/tokenizer/$(printf 'x%.0s' $(seq 120)).txt' ]"

# ---- a blob whose bytes do not match its digest ---------------------------
vae_hex=$(sha256sum <"$FX/alpha/$VAE" | cut -c1-64)
blob=$MAIN_DIR/data/docker/registry/v2/blobs/sha256/${vae_hex:0:2}/$vae_hex/data
cp "$blob" "$T/blob.bak"
$PY -c "
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0xff
open(p, 'wb').write(b)" "$blob"
CELLAR_HOME=$T/corrupt-store c pull "oci://$R/team/alpha:v1" --plain-http --to "$T/p-corrupt" >"$T/out" 2>&1 \
    && bad "corrupt blob accepted"
check "corrupt blob: refused, worded" grep -qi "match\|gave up" "$T/out"
check "corrupt blob: not admitted" [ -z "$(find "$T/corrupt-store/objects" -name "${vae_hex:2}" 2>/dev/null)" ]
cp "$T/blob.bak" "$blob"

# ---- Basic auth (htpasswd) ------------------------------------------------
PASS=s3cret-Pa55word
htpasswd -Bbn alice "$PASS" >"$T/htpasswd"
start_registry basic "$T/htpasswd"
RB=127.0.0.1:$REG_PORT
export CELLAR_HOME=$T/basic-store
c push "$T/src-alpha" "oci://$RB/team/alpha:v1" --plain-http >"$T/out" 2>&1 && bad "anonymous push accepted"
check "anonymous: asks for credentials" grep -q "user and password" "$T/out"
c push "$T/src-alpha" "oci://$RB/team/alpha:v1" --plain-http --user "alice:wrong$PASS" >"$T/out" 2>&1 \
    && bad "wrong password accepted"
check "wrong password: worded" grep -q "refused user 'alice'" "$T/out"
check "wrong password: not printed" bash -c "! grep -q '$PASS' '$T/out'"
c push "$T/src-alpha" "oci://$RB/team/alpha:v1" --plain-http --user "alice:$PASS" >"$T/out" 2>&1 \
    || { cat "$T/out"; bad "push with Basic"; }
check "Basic: password not printed" bash -c "! grep -q '$PASS' '$T/out'"
mkdir -p "$T/dockercfg"
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$RB" "$(printf 'alice:%s' "$PASS" | base64 -w0)" >"$T/dockercfg/config.json"
DOCKER_CONFIG=$T/dockercfg CELLAR_HOME=$T/basic-store2 c pull "oci://$RB/team/alpha:v1" --plain-http --to "$T/p-basic" >"$T/out" 2>&1 \
    || { cat "$T/out"; bad "pull with docker config"; }
check "Basic via docker config: same files" same_tree "$FX/alpha" "$T/p-basic"
# without DOCKER_CONFIG: ~/.docker/config.json (HOME is $T/home here)
mkdir -p "$HOME/.docker" && cp "$T/dockercfg/config.json" "$HOME/.docker/config.json"
(unset DOCKER_CONFIG; CELLAR_HOME=$T/basic-store3 "$BIN" pull "oci://$RB/team/alpha:v1" --plain-http --to "$T/p-basic3") >"$T/out" 2>&1 \
    || { cat "$T/out"; bad "pull with ~/.docker/config.json"; }
check "Basic via ~/.docker: same files" same_tree "$FX/alpha" "$T/p-basic3"
rm -r "$HOME/.docker"
kill "$REG_PID"

# ---- Bearer token realm ---------------------------------------------------
start_proxy proxy "$(echo "$R" | cut -d: -f2)" --user "bob:$PASS"
PPORT=$PROXY_PORT
RP=127.0.0.1:$PPORT
export CELLAR_HOME=$T/bearer-store
c pull "oci://$RP/team/alpha:v1" --plain-http --to "$T/p-bearer-x" >"$T/out" 2>&1 && bad "anonymous bearer accepted"
check "bearer anonymous: worded" grep -q "token server wants credentials" "$T/out"
c pull "oci://$RP/team/alpha:v1" --plain-http --user "bob:nope" --to "$T/p-bearer-x" >"$T/out" 2>&1 \
    && bad "wrong bearer credentials accepted"
check "bearer wrong password: worded" grep -q "refused user 'bob'" "$T/out"
CELLAR_REGISTRY_AUTH="bob:$PASS" c pull "oci://$RP/team/alpha:v1" --plain-http --to "$T/p-bearer" >"$T/out" 2>&1 \
    || { cat "$T/out"; bad "pull with a token"; }
check "bearer: same files" same_tree "$FX/alpha" "$T/p-bearer"
check "bearer: password not printed" bash -c "! grep -q '$PASS' '$T/out'"
check "bearer: registry never saw the password" [ "$(curl -s "http://$RP/_stats" | $PY -c 'import json,sys; print(json.load(sys.stdin)["basic_seen"])')" = 0 ]
CELLAR_REGISTRY_AUTH="bob:$PASS" c push "$T/src-beta" "oci://$RP/team/gamma:v1" --plain-http >"$T/out" 2>&1 \
    || { cat "$T/out"; bad "push with a token"; }
# tokens good for 2 requests: the pull's threads fetch new ones as they expire
start_proxy proxy2 "$(echo "$R" | cut -d: -f2)" --user "bob:$PASS" --token-uses 2
PPORT2=$PROXY_PORT
CELLAR_HOME=$T/bearer-expiry CELLAR_REGISTRY_AUTH="bob:$PASS" c pull "oci://127.0.0.1:$PPORT2/team/alpha:v1" \
    --plain-http --to "$T/p-expiry" --jobs 2 >"$T/out" 2>&1 || { cat "$T/out"; bad "pull with expiring tokens"; }
check "expiring tokens: same files" same_tree "$FX/alpha" "$T/p-expiry"

# ---- the registry killed mid-pull, then restarted: the pull resumes ----------
big=$T/big
mkdir -p "$big"
head -c $((12 << 20)) /dev/urandom >"$big/weights.bin"
CELLAR_HOME=$T/big-push c push "$big" "oci://$R/team/big:v1" --plain-http >/dev/null
start_proxy slow "$(echo "$R" | cut -d: -f2)" --rate 2000000
SPORT=$PROXY_PORT
SLOWPID=$PROXY_PID
export CELLAR_HOME=$T/resume-store
c pull "oci://127.0.0.1:$SPORT/team/big:v1" --plain-http --to "$T/p-big" --part-size 0 >"$T/out" 2>&1 &
PULLPID=$!
# wait until a few MB arrived, then kill the registry under the proxy
for _ in $(seq 300); do
    got=$(find "$CELLAR_HOME/tmp" -type f -printf '%s\n' 2>/dev/null | sort -n | tail -1 || true)
    [ "${got:-0}" -gt $((3 << 20)) ] && break
    kill -0 "$PULLPID" 2>/dev/null || { cat "$T/out" >&2; break; }
    sleep 0.1
done
kill -9 "$MAIN_PID"
wait "$PULLPID" && bad "pull survived a dead registry"
check "dead registry: partial kept" [ "$(find "$CELLAR_HOME/tmp" -type f -size +1M | wc -l)" -ge 1 ]
REG_PORT_KEEP=1 REG_PORT=$(echo "$R" | cut -d: -f2) start_registry main
MAIN_PID=$REG_PID
before=$(curl -s "http://127.0.0.1:$SPORT/_stats" | $PY -c 'import json,sys; print(json.load(sys.stdin)["blob_bytes"])')
c pull "oci://127.0.0.1:$SPORT/team/big:v1" --plain-http --to "$T/p-big" >"$T/out" 2>&1 || { cat "$T/out"; bad "resumed pull"; }
after=$(curl -s "http://127.0.0.1:$SPORT/_stats" | $PY -c 'import json,sys; print(json.load(sys.stdin)["blob_bytes"])')
check "resumed: same bytes" cmp -s "$big/weights.bin" "$T/p-big/weights.bin"
check "resumed: fetched only the rest" [ $((after - before)) -lt $((10 << 20)) ]

# ---- Ctrl-C stops a push mid-blob: no manifest, a rerun completes ----------
stopsrc=$T/stop-src
mkdir -p "$stopsrc"
head -c $((16 << 20)) /dev/urandom >"$stopsrc/weights.bin"
export CELLAR_HOME=$T/stop-store
upload_bytes() { curl -s "http://127.0.0.1:$SPORT/_stats" | $PY -c 'import json,sys; print(json.load(sys.stdin).get("upload_bytes", 0))'; }
up0=$(upload_bytes) # what earlier pushes through this proxy sent
# "$BIN", not the function c: a background function is a subshell, and
# SIGINT must reach cellar itself.
"$BIN" push "$stopsrc" "oci://127.0.0.1:$SPORT/team/stop:v1" --plain-http >"$T/out" 2>&1 &
PUSHPID=$!
for _ in $(seq 300); do
    [ "$(upload_bytes)" -gt $((up0 + (1 << 20))) ] && break
    kill -0 "$PUSHPID" 2>/dev/null || break
    sleep 0.1
done
wait_sigint_caught "$PUSHPID"
kill -INT "$PUSHPID"
t0=$(date +%s.%N)
rc=0
wait "$PUSHPID" || rc=$?
t1=$(date +%s.%N)
check "Ctrl-C: the push fails" [ "$rc" != 0 ]
check "Ctrl-C: says it stopped" grep -q "stopped" "$T/out"
# 16 MiB at 2 MB/s is 8 s: stopping mid-blob takes far less than the rest.
check "Ctrl-C: stopped mid-blob (not after it)" $PY -c 'import sys; sys.exit(float(sys.argv[2]) - float(sys.argv[1]) >= 5)' "$t0" "$t1"
check "Ctrl-C: the proxy got part of the blob only" [ $(($(upload_bytes) - up0)) -lt $((16 << 20)) ]
check "Ctrl-C: no manifest" [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$R/v2/team/stop/manifests/v1")" = 404 ]
c push "$stopsrc" "oci://$R/team/stop:v1" --plain-http >"$T/out" 2>&1 || { cat "$T/out"; bad "push after a stop"; }
skopeo inspect --raw --tls-verify=false "docker://$R/team/stop:v1" >/dev/null 2>&1 || bad "push after a stop: tag there"
kill "$SLOWPID" 2>/dev/null || true

# ---- CELLAR_REMOTE: machine A shares, machine B takes nothing from the CDN --
$PY "$SRC/tests/hub/make_fixtures.py" "$T/hubfx"
$PY "$SRC/tests/hub/hubserver.py" "$T/hubfx" >"$T/hub.port" 2>"$T/hub.log" &
PIDS+=($!)
for _ in $(seq 600); do [ -s "$T/hub.port" ] && break; sleep 0.1; done
HUBPORT=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["hub"])' "$T/hub.port")
export HF_ENDPOINT=http://127.0.0.1:$HUBPORT
served() { curl -sf "$HF_ENDPOINT/_stats?sum=$1"; }
export CELLAR_REMOTE=oci://$R/cache CELLAR_REGISTRY_PLAIN_HTTP=1
CELLAR_HOME=$T/machine-a c pull pipe/alpha --to "$T/ma" >"$T/out" 2>&1 || { cat "$T/out"; bad "machine A"; }
check "A: shared with the registry" grep -q "team cache: 0 files (0 B) taken from it, [1-9][0-9]* files" "$T/out"
check "A: no warning" bash -c "! grep -q warning '$T/out'"
curl -sf "$HF_ENDPOINT/_stats?reset=1" >/dev/null
CELLAR_HOME=$T/machine-b c pull pipe/alpha --to "$T/mb" >"$T/out" 2>&1 || { cat "$T/out"; bad "machine B"; }
check "B: same files as A" same_tree "$T/ma" "$T/mb"
check "B: nothing from the Hub's files" [ "$(served "")" = 0 ]
check "B: everything from the registry" grep -q "downloaded 0 files" "$T/out"
# a snapshot the store records, pushed by name: the config names its commit
CELLAR_HOME=$T/machine-a c push pipe/alpha "oci://$R/hub/alpha:main" --plain-http >"$T/out" 2>&1 \
    || { cat "$T/out"; bad "push of a snapshot"; }
skopeo inspect --config --raw --tls-verify=false "docker://$R/hub/alpha:main" >"$T/snapcfg.json"
check "snapshot push: name and revision" grep -q '"name":"pipe/alpha","revision":"[0-9a-f]\{40\}"' "$T/snapcfg.json"
check "snapshot push: nothing uploaded (mounted from the cache)" grep -q " 0 uploaded" "$T/out"
# the registry down: the pull still works, with a warning
CELLAR_REMOTE=oci://127.0.0.1:1/cache CELLAR_HOME=$T/machine-c c pull pipe/alpha --to "$T/mc" >"$T/out" 2>&1 \
    || { cat "$T/out"; bad "pull with the team cache down"; }
check "cache down: warned" grep -q "warning: team cache" "$T/out"
check "cache down: files there" same_tree "$T/ma" "$T/mc"

test_end
