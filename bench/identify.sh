#!/usr/bin/env bash
# Identification benchmark.
#  1. CPU time of identifying a 10,000-tensor header in the library (an SD1
#     UNet's rule keys plus filler, and a kohya LoRA of 3,333 modules),
#     through tests/test_identify's bench mode; target < 20 ms each.
#  2. `cellar inspect` (header read, structural hash, group hashes, rules)
#     on a TENSORS-tensor sparse file against what a user runs instead:
#     Python reading the header and computing DiffSynth's hash plus a dict
#     lookup (what DiffSynth does to identify); CPU time, best of RUNS.
# usage: bench/identify.sh path/to/cellar   (test_identify beside it)
# env: BENCH_DIR (/tmp/cellar-bench), TENSORS (10000), RUNS (10)
set -euo pipefail

BIN=$(realpath "${1:?usage: $0 path/to/cellar}")
TEST=$(dirname "$BIN")/test_identify
D=${BENCH_DIR:-/tmp/cellar-bench}/identify
TENSORS=${TENSORS:-10000}
RUNS=${RUNS:-10}
PY=/usr/bin/python3
mkdir -p "$D"

echo "== library: identification of a 10,000-tensor list (CPU, best of $RUNS; target < 20 ms)"
"$TEST" bench "$RUNS"

# An SDXL-like single file: the real UNet keys (tests/model_keys.py), then
# filler groups up to TENSORS; data sparse.
PYTHONPATH="$(dirname "$0")/../tests" "$PY" - "$D/many.safetensors" "$TENSORS" <<'EOF2'
import json, struct, sys
import model_keys as m
out, n = sys.argv[1], int(sys.argv[2])
keys = m.prefixed("model.diffusion_model.", m.sdxl_unet())
keys.update(m.ldm_vae(z=4, quant=True, pre="first_stage_model."))
i = 0
while len(keys) < n:
    keys[f"conditioner.embedders.9.extra.{i}.weight"] = [64, 64]
    i += 1
hdr, at = {"__metadata__": {"format": "pt"}}, 0
for k, s in keys.items():
    size = 2
    for d in s:
        size *= d
    hdr[k] = {"dtype": "F16", "shape": s, "data_offsets": [at, at + size]}
    at += size
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    f.truncate(8 + len(h) + at)
EOF2

# The Python way: header, json.loads, DiffSynth's hash, a registry lookup.
cat > "$D/py_identify.py" <<'EOF2'
import hashlib, json, struct, sys
registry = {}
for line in open(sys.argv[2], encoding="utf-8"):
    if line and not line.startswith("#"):
        f = line.rstrip("\n").split("\t")
        registry.setdefault(f[0], []).append(f[4])
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
keys = []
for name, info in hdr.items():
    if name == "__metadata__":
        continue
    keys.append(name + ":" + "_".join(map(str, info["shape"])))
    keys.append(name)
keys.sort()
h = hashlib.md5(",".join(keys).encode()).hexdigest()
print(h, registry.get(h))
EOF2

cpu_best() { # cpu_best N CMD...: the least user+sys CPU seconds of N runs
    "$PY" - "$@" <<'EOF2'
import resource, subprocess, sys
n, cmd, best = int(sys.argv[1]), sys.argv[2:], None
for _ in range(n):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    best = t if best is None or t < best else best
print(best)
EOF2
}

echo "== cellar inspect vs Python (DiffSynth's way), $TENSORS tensors, CPU best of $RUNS"
"$BIN" inspect "$D/many.safetensors" | grep '^model:'
t_c=$(cpu_best "$RUNS" "$BIN" inspect "$D/many.safetensors")
t_p=$(cpu_best "$RUNS" "$PY" "$D/py_identify.py" "$D/many.safetensors" "$(dirname "$0")/../data/registry.tsv")
"$PY" -c "print('cellar inspect %.1f ms CPU, python hash+lookup %.1f ms CPU, ratio %.3f' % ($t_c*1e3, $t_p*1e3, $t_c/$t_p))"
