#!/usr/bin/env bash
# `make demo`: cellar's main job on data it generates. A local test Hub
# serves two diffusion pipelines that share their VAE and text encoder;
# cellar pulls both, downloading the shared components once, then shows what
# it knows about the files. Everything lives under a temporary directory
# (DEMO_DIR to keep it) and only 127.0.0.1 is contacted.
set -euo pipefail

CELLAR=$(realpath "${1:-build/cellar}")
SRC=$(cd "$(dirname "$0")/.." && pwd)
DIR=${DEMO_DIR:-$(mktemp -d /tmp/cellar-demo.XXXXXX)}
MIB=${DEMO_MIB:-24}
mkdir -p "$DIR"
export CELLAR_HOME=$DIR/store HF_HUB_CACHE=$DIR/hf-cache
unset HF_TOKEN HF_HUB_OFFLINE

hub_pid=
cleanup() { [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "== generating two pipelines (${MIB} MiB per component) in $DIR/hub"
python3 "$SRC/scripts/demo_fixtures.py" "$DIR/hub" "$MIB"
python3 "$SRC/tests/hub/hubserver.py" "$DIR/hub" >"$DIR/hub.port" 2>"$DIR/hub.log" &
hub_pid=$!
for _ in $(seq 100); do [ -s "$DIR/hub.port" ] && break; sleep 0.1; done
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["hub"])' "$DIR/hub.port")
export HF_ENDPOINT=http://127.0.0.1:$port
served() {
    curl -sf "$HF_ENDPOINT/_stats" |
        python3 -c 'import json,sys; print(sum(v["bytes"] for v in json.load(sys.stdin)["files"].values()))'
}
echo "== test Hub at $HF_ENDPOINT"

step "$CELLAR" pull demo/sd-alpha --to "$DIR/alpha"
a=$(served)
step "$CELLAR" pull demo/sd-beta --to "$DIR/beta"
b=$(served)
echo "-> the Hub served $a bytes for sd-alpha and $((b - a)) bytes for sd-beta:"
echo "   the shared VAE and text encoder were linked from the store, not downloaded."
step stat -c '%i %h %n' "$DIR/alpha/vae/diffusion_pytorch_model.safetensors" \
    "$DIR/beta/vae/diffusion_pytorch_model.safetensors"

step "$CELLAR" pull demo/sd-beta --hf-cache
step "$CELLAR" du "$DIR/alpha" "$DIR/beta" "$HF_HUB_CACHE"

step "$CELLAR" hash --civitai "$DIR/alpha/unet/diffusion_pytorch_model.safetensors"
step "$CELLAR" hash --invokeai "$DIR/alpha"
step "$CELLAR" inspect "$DIR/alpha"

step "$CELLAR" ls --by-model "$DIR/alpha" "$DIR/beta"

echo
echo "== the same files from Python (build/python), zero-copy from the store's inode"
step env PYTHONPATH="$(dirname "$CELLAR")/python" /usr/bin/python3 -c "
import cellar
sd = cellar.load_state_dict('$DIR/alpha/unet/diffusion_pytorch_model.safetensors')
t = next(iter(sd.values()))
print(len(sd), 'tensors;', t.dtype, tuple(t.shape), '...')
print('structural hash (DiffSynth):', cellar.hash_model_file('$DIR/alpha/unet/diffusion_pytorch_model.safetensors'))"

step "$CELLAR" dduf pack "$DIR/alpha" "$DIR/alpha.dduf"
step "$CELLAR" dduf ls "$DIR/alpha.dduf"
step "$CELLAR" hash -a sha256 --entries "$DIR/alpha.dduf"

echo
echo "== a user's own copy of the pipeline, deduplicated into the store"
cp -r "$DIR/alpha" "$DIR/my-copy"
step "$CELLAR" dedup "$DIR/my-copy"
step "$CELLAR" verify --all
step "$CELLAR" gc --dry-run
echo
echo "demo finished; files are in $DIR"
