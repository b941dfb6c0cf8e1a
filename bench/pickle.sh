#!/usr/bin/env bash
# PyTorch checkpoints: what a user runs today (Python with torch) against
# cellar, which reads the pickle in C without running it.
#  1. the structural hash of a 1,000-tensor .ckpt: `cellar hash -a
#     structural` against DiffSynth's rule on torch.load(weights_only=True)
#     (target: <= 0.05x);
#  2. converting a .bin to safetensors: `cellar convert` against torch.load +
#     a Python safetensors writer doing the same work (safetensors'
#     save_file: each tensor to bytes, header, write), time and peak memory
#     from /usr/bin/time -v (target: <= 0.5x the time, less memory).
# Each command is timed whole (process start and imports included), best of
# PICKLE_BENCH_RUNS.
#
# usage: bench/pickle.sh path/to/cellar
# env:   BENCH_DIR (default /tmp/cellar-bench), PICKLE_BENCH_MB (size of the
#        .bin, default 512; the issue's target is 2048), PICKLE_BENCH_RUNS
#        (default 3), PICKLE_BENCH_TENSORS (default 1000).
set -euo pipefail

BIN=$(realpath "${1:?usage: bench/pickle.sh path/to/cellar}")
DIR=${BENCH_DIR:-/tmp/cellar-bench}/pickle
MB=${PICKLE_BENCH_MB:-512}
RUNS=${PICKLE_BENCH_RUNS:-3}
NT=${PICKLE_BENCH_TENSORS:-1000}
PY=/usr/bin/python3
mkdir -p "$DIR"
cd "$DIR"
"$PY" -c 'import torch' 2>/dev/null || { echo "bench/pickle.sh: $PY has no torch"; exit 1; }

# ---- fixtures ----
if [[ ! -f ckpt.$NT.ckpt ]]; then
    "$PY" - "$NT" <<'EOF'
import sys, torch
n = int(sys.argv[1])
torch.manual_seed(0)
sd = {}
for i in range(n):
    sd[f"model.diffusion_model.blocks.{i // 8}.layer{i % 8}.weight"] = torch.zeros(16, 8, dtype=torch.float16)
torch.save({"state_dict": sd}, f"ckpt.{n}.ckpt")
EOF
fi
if [[ ! -f model.$MB.bin ]]; then
    "$PY" - "$MB" <<'EOF'
import sys, torch
mb = int(sys.argv[1])
torch.manual_seed(0)
sd, left, i = {}, mb << 20, 0
while left > 0:
    n = min(left, 32 << 20) // 2
    sd[f"encoder.layer.{i}.weight"] = torch.randn(n // 1024, 1024).half()
    left -= n * 2
    i += 1
sd["lm_head.weight"] = sd["encoder.layer.0.weight"]  # tied
sd["encoder.layer.0.weight_t"] = sd["encoder.layer.1.weight"][:1024].t()  # a view
torch.save(sd, f"model.{mb}.bin")
EOF
fi
cat >hash_rule.py <<'EOF'
import hashlib, sys, torch
sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
if len(sd) == 1:
    for k in ("state_dict", "module", "model_state"):
        if k in sd:
            sd = sd[k]
            break
def single(d):
    keys = []
    for k, v in d.items():
        if isinstance(v, dict):
            keys.append(k + "|" + single(v))
        else:
            keys.append(k + ":" + "_".join(map(str, v.shape)))
            keys.append(k)
    return ",".join(sorted(keys))
print(hashlib.md5(single(sd).encode()).hexdigest(), sys.argv[1])
EOF
cat >convert.py <<'EOF'
# torch.load + safetensors.torch.save_file's work: flatten, each tensor to
# contiguous bytes, the JSON header padded to 8, one file written.
import json, struct, sys, torch
sd = torch.load(sys.argv[1], map_location="cpu")
seen, tensors = {}, {}
for k in sorted(sd):
    t = sd[k]
    key = (t.storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())
    if key in seen:
        continue
    seen[key] = k
    tensors[k] = t
names = {torch.float16: "F16", torch.float32: "F32", torch.bfloat16: "BF16", torch.int64: "I64"}
header, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
for k, t in sorted(tensors.items(), key=lambda kv: kv[0]):
    b = t.contiguous().numpy().tobytes()
    header[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
    off += len(b)
    blobs.append(b)
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open(sys.argv[2], "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for b in blobs:
        f.write(b)
EOF

# best CMD...: "seconds max_rss_kib" of the fastest of RUNS runs.
best() {
    local b="" line
    for _ in $(seq "$RUNS"); do
        rm -f out.safetensors out_py.safetensors
        /usr/bin/time -f "%e %M" -o time.out "$@" >/dev/null 2>time.err || { cat time.err; exit 1; }
        line=$(tail -1 time.out)
        if [[ -z $b ]] || awk -v a="${line% *}" -v c="${b% *}" 'BEGIN { exit !(a < c) }'; then
            b=$line
        fi
    done
    echo "$b"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

c=$("$BIN" hash -a structural "ckpt.$NT.ckpt" | cut -d' ' -f1)
p=$("$PY" hash_rule.py "ckpt.$NT.ckpt" | cut -d' ' -f1)
[[ $c == "$p" ]] || { echo "structural hashes differ: cellar $c, Python $p"; exit 1; }
hc=$(best "$BIN" hash -a structural "ckpt.$NT.ckpt")
hp=$(best "$PY" hash_rule.py "ckpt.$NT.ckpt")
echo "structural hash of a $NT-tensor .ckpt: cellar ${hc% *} s, Python (torch.load) ${hp% *} s:" \
     "ratio $(ratio "${hc% *}" "${hp% *}") (target <= 0.05)"

cc=$(best "$BIN" convert -o out.safetensors "model.$MB.bin")
cp=$(best "$PY" convert.py "model.$MB.bin" out_py.safetensors)
"$BIN" convert -o out.safetensors "model.$MB.bin" >/dev/null
"$PY" convert.py "model.$MB.bin" out_py.safetensors
if ! cmp -s out.safetensors out_py.safetensors; then
    echo "note: outputs differ in bytes (cellar also keeps the dropped alias in metadata)"
fi
echo "convert of a $MB MiB .bin: cellar ${cc% *} s, peak $((${cc#* } / 1024)) MiB;" \
     "Python ${cp% *} s, peak $((${cp#* } / 1024)) MiB: time ratio $(ratio "${cc% *}" "${cp% *}")" \
     "(target <= 0.5), memory ratio $(ratio "${cc#* }" "${cp#* }") (target < 1)"
