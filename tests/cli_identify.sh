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
# --- GGUF (shapes reversed into PyTorch order: the hash is the same) ---
PYTHONPATH="$SRC/tests" /usr/bin/python3 - "$T/flux1-schnell.gguf" <<'EOF'
import struct, sys
import model_keys as m
keys = m.flux(False)
def s(b):
    b = b.encode()
    return struct.pack("<Q", len(b)) + b
kv = [("general.architecture", "flux"), ("general.file_type", None)]
out = b"GGUF" + struct.pack("<IQQ", 3, len(keys), 1)
out += s("general.architecture") + struct.pack("<I", 8) + s("flux")
at = 0
for name, shape in keys.items():
    n = 1
    for d in shape:
        n *= d
    out += s(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in reversed(shape))
    out += struct.pack("<IQ", 1, at)  # F16
    at += (2 * n + 31) // 32 * 32
out += b"\0" * (-len(out) % 32)
with open(sys.argv[1], "wb") as f:
    f.write(out)
    f.truncate(len(out) + at)
EOF
out=$("$BIN" inspect "$T/flux1-schnell.gguf")
check "gguf: FLUX.1 schnell by hash and rule" grep -q '^model: *FLUX.1 schnell transformer, original layout, F16 (hash 57b02550, rule)' <<<"$out"

# --- DDUF: a pipeline from its components ---
D="$T/dduf_src"
mkdir -p "$D/transformer" "$D/vae"
printf '{"_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}' > "$D/model_index.json"
printf '{}' > "$D/transformer/config.json"
printf '{}' > "$D/vae/config.json"
cp "$T/flux_diffusers.safetensors" "$D/transformer/diffusion_pytorch_model.safetensors"
cp "$T/wan21_vae.safetensors" "$D/vae/diffusion_pytorch_model.safetensors"
"$BIN" dduf pack "$D" "$T/p.dduf" >/dev/null
check "dduf: pipeline line" grep -q '^model: *FLUX.1 dev pipeline, DDUF (transformer+vae)' <<<"$("$BIN" inspect "$T/p.dduf")"
out=$("$BIN" inspect --json "$T/p.dduf")
check "dduf: pipeline per component" /usr/bin/python3 -c '
import json, sys
j = json.loads(sys.argv[1])
c = {x["component"]: x["model"] for x in j["components"]}
assert c["transformer"]["base"] == "FLUX.1" and c["transformer"]["layout"] == "diffusers", c
assert c["vae"]["kind"] == "VAE", c
' "$out"

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
