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
# --- ls --by-model: a ComfyUI-like folder with a copy, a hard link, a
# diffusers folder and a shard set ---
M="$T/models"
mkdir -p "$M/loras" "$M/vae" "$M/embeddings" "$M/diffusers/flux/transformer" "$M/diffusers/flux/vae" "$M/te"
cp "$T/lora_sdxl.safetensors" "$M/loras/a.safetensors"
cp "$T/lora_sdxl.safetensors" "$M/loras/a_copy.safetensors"
cp "$T/wan21_vae.safetensors" "$M/vae/wan.safetensors"
ln "$M/vae/wan.safetensors" "$M/vae/wan_link.safetensors"
cp "$T/emb_sd1.safetensors" "$M/embeddings/e.safetensors"
printf '{"_class_name": "FluxPipeline"}' > "$M/diffusers/flux/model_index.json"
cp "$T/flux1-schnell.safetensors" "$M/diffusers/flux/transformer/diffusion_pytorch_model.safetensors"
cp "$T/ae.safetensors" "$M/diffusers/flux/vae/diffusion_pytorch_model.safetensors"
"$BIN" shard "$T/clip_l.safetensors" --max-size 100MB -o "$M/te/t5" >/dev/null
echo 'not a model' > "$M/notes.txt"
out=$("$BIN" ls --by-model "$M")
check "by-model: LoRA group" grep -q '^LoRA: 2 files' <<<"$out"
check "by-model: copy found" grep -q 'duplicate of .*loras/a.safetensors (same sha256' <<<"$out"
check "by-model: hard link" grep -q 'hard link of .*/vae/wan' <<<"$out"
check "by-model: pipeline" grep -q 'FLUX.1 schnell pipeline, diffusers folder (transformer+vae)' <<<"$out"
check "by-model: shard set once" test "$(grep -c 't5' <<<"$out")" = 1
check "by-model: no text file" test "$(grep -c notes <<<"$out")" = 0
"$BIN" ls --by-model --json "$M" > "$T/by.json"
check "by-model --json" /usr/bin/python3 - "$T/by.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
by = {e["path"].split("/models/")[1]: e for e in j}
assert set(by) == {"loras/a.safetensors", "loras/a_copy.safetensors", "vae/wan.safetensors",
                   "vae/wan_link.safetensors", "embeddings/e.safetensors", "diffusers/flux",
                   "te/t5/model.safetensors.index.json"}, sorted(by)
dups = [e for e in j if e["duplicate_of"]]
assert len(dups) == 1 and dups[0]["sha256"] and dups[0]["model"]["lora"]["rank"] == 32, dups
links = [e for e in j if e["hardlink_of"]]
assert len(links) == 1 and links[0]["model"]["kind"] == "VAE", links
p = by["diffusers/flux"]["model"]
assert p["kind"] == "pipeline" and p["components"]["transformer"]["variant"] == "schnell", p
assert by["te/t5/model.safetensors.index.json"]["model"]["component"] == "CLIP-L"
EOF
set +e
"$BIN" ls --by-model >/dev/null 2>&1; rc=$?
set -e
check "by-model without PATH: usage" test "$rc" = 2
test_end
