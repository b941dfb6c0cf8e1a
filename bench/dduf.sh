#!/usr/bin/env bash
# DDUF: packing a diffusers folder with `cellar dduf pack` against `cp -r`
# of the same folder and against Python's zipfile writing the same archive
# (huggingface_hub's export_folder_as_dduf does exactly that), then listing
# a 1,000-entry DDUF with `cellar dduf ls` against Python's zipfile.
#
# usage: bench/dduf.sh path/to/cellar
# env:   BENCH_DIR (default /tmp/cellar-bench), DDUF_BENCH_MB (folder size,
#        default 256; the issue's target is 2048), DDUF_BENCH_RUNS (best of,
#        default 3), DDUF_BENCH_ENTRIES (default 1000).
set -euo pipefail

BIN=$(realpath "${1:?usage: bench/dduf.sh path/to/cellar}")
DIR=${BENCH_DIR:-/tmp/cellar-bench}/dduf
MB=${DDUF_BENCH_MB:-256}
RUNS=${DDUF_BENCH_RUNS:-3}
ENTRIES=${DDUF_BENCH_ENTRIES:-1000}
mkdir -p "$DIR"
cd "$DIR"

now() { date +%s%N; }
# best TIMES CMD...: the fastest of RUNS runs, in nanoseconds.
best() {
    local b=0 t0 t1
    for _ in $(seq "$RUNS"); do
        rm -rf out_cp out.dduf out_py.dduf
        sync
        t0=$(now)
        "$@" >/dev/null
        t1=$(now)
        if [[ $b -eq 0 || $((t1 - t0)) -lt $b ]]; then b=$((t1 - t0)); fi
    done
    echo "$b"
}
ms() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# A pipeline folder of about MB MiB: a unet and a vae with one big U8
# tensor each (incompressible bytes), configs, a scheduler and a tokenizer.
if [[ ! -f pipe.$MB.made ]]; then
    rm -rf pipe pipe.*.made
    python3 - "$MB" <<'EOF'
import json, os, struct, sys
mb = int(sys.argv[1])
for d in ("unet", "vae", "scheduler", "tokenizer"):
    os.makedirs(f"pipe/{d}", exist_ok=True)
json.dump({"_class_name": "StableDiffusionPipeline",
           "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
           "scheduler": ["diffusers", "PNDMScheduler"],
           "tokenizer": ["transformers", "CLIPTokenizer"]}, open("pipe/model_index.json", "w"))
block = os.urandom(1 << 20)
def st(path, nbytes):
    h = json.dumps({"w": {"dtype": "U8", "shape": [nbytes], "data_offsets": [0, nbytes]}},
                   separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        left = nbytes
        while left:
            n = min(left, len(block)); f.write(block[:n]); left -= n
total = mb << 20
st("pipe/unet/diffusion_pytorch_model.safetensors", total * 4 // 5)
st("pipe/vae/diffusion_pytorch_model.safetensors", total // 5)
json.dump({"in_channels": 4}, open("pipe/unet/config.json", "w"))
json.dump({"in_channels": 3}, open("pipe/vae/config.json", "w"))
json.dump({"num_train_timesteps": 1000}, open("pipe/scheduler/scheduler_config.json", "w"))
json.dump({"model_max_length": 77}, open("pipe/tokenizer/tokenizer_config.json", "w"))
open("pipe/tokenizer/vocab.txt", "w").write("a\nb\n" * 1000)
EOF
    touch "pipe.$MB.made"
fi

cat >py_pack.py <<'EOF'
import os, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
names = []
for d, _, files in os.walk(src):
    for f in files:
        names.append(os.path.relpath(os.path.join(d, f), src))
names.sort(key=lambda n: (n != "model_index.json", n))
with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
    for n in names:
        with z.open(n, "w", force_zip64=True) as f, open(os.path.join(src, n), "rb") as s:
            while True:
                b = s.read(1 << 20)
                if not b:
                    break
                f.write(b)
EOF

cat pipe/*/*.safetensors >/dev/null # page cache warm for everyone
t_cp=$(best cp -r pipe out_cp)
t_cp_sync=$(best sh -c 'cp -r pipe out_cp && sync -f out_cp')
t_cellar=$(best "$BIN" dduf pack pipe out.dduf)
t_py=$(best python3 py_pack.py pipe out_py.dduf)
"$BIN" dduf pack pipe out.dduf --force >/dev/null
python3 py_pack.py pipe out_py.dduf
echo "pack ${MB} MiB folder (best of $RUNS):"
echo "  cp -r            $(ms "$t_cp") ms"
echo "  cp -r; sync      $(ms "$t_cp_sync") ms"
echo "  cellar dduf pack $(ms "$t_cellar") ms   ratio to cp -r: $(ratio "$t_cellar" "$t_cp") (target <= 1.1), to cp -r; sync: $(ratio "$t_cellar" "$t_cp_sync") (cellar fsyncs its output)"
echo "  python zipfile   $(ms "$t_py") ms   cellar / python: $(ratio "$t_cellar" "$t_py")"
rm -rf out_cp out_py.dduf

# A 1,000-entry DDUF: model_index.json, 333 components with a config and
# two more files each; and one 100 times larger, whose listing time over
# 100 gives the per-1,000-entry cost free of process start-up (which on a
# loaded machine varies more than the listing itself takes).
for count in "$ENTRIES" "$((ENTRIES * 100))"; do
[[ -f many_$count.dduf ]] || python3 - "$count" <<'EOF'
import json, sys, zipfile
n = int(sys.argv[1])
comps = (n - 1) // 3
with zipfile.ZipFile(f"many_{n}.dduf", "w") as z:
    z.writestr("model_index.json", json.dumps({f"c{i:04d}": ["diffusers", "X"] for i in range(comps)}))
    count = 1
    for i in range(comps):
        for f in ("config.json", "notes.txt", "spiece.model"):
            with z.open(f"c{i:04d}/{f}", "w", force_zip64=True) as w:
                w.write(b"{}")
            count += 1
    while count < n:
        z.writestr(f"extra{count}.txt", "x"); count += 1
EOF
done
# best_ns N CMD...: the fastest of N runs of CMD, in nanoseconds.
best_ns() {
    local n=$1 b=0 t0 t1
    shift
    for _ in $(seq "$n"); do
        t0=$(now)
        "$@" >/dev/null
        t1=$(now)
        if [[ $b -eq 0 || $((t1 - t0)) -lt $b ]]; then b=$((t1 - t0)); fi
    done
    echo "$b"
}
t_ls=$(best_ns 30 "$BIN" dduf ls "many_$ENTRIES.dduf")
t_start=$(best_ns 30 "$BIN" --version)
t_big=$(best_ns 5 "$BIN" dduf ls "many_$((ENTRIES * 100)).dduf")
t_ls_net=$(((t_big > t_start ? t_big - t_start : 0) / 100))
# python_ls FILE RUNS: zipfile's listing inside one interpreter, best of RUNS.
python_ls() {
    python3 - "$1" "$2" <<'EOF'
import sys, time, zipfile
best = None
for _ in range(int(sys.argv[2])):
    t = time.perf_counter_ns()
    with zipfile.ZipFile(sys.argv[1]) as z:
        infos = z.infolist()
    t = time.perf_counter_ns() - t
    best = t if best is None or t < best else best
print(best)
EOF
}
t_py_ls=$(python_ls "many_$ENTRIES.dduf" 20)
t_py_big=$(python_ls "many_$((ENTRIES * 100)).dduf" 3)
t_py_proc=$(best_ns 5 python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).infolist()' "many_$ENTRIES.dduf")
echo "list a $ENTRIES-entry DDUF:"
echo "  cellar dduf ls (whole process, best of 30)       $(ms "$t_ls") ms"
echo "  cellar --version (start-up alone, best of 30)    $(ms "$t_start") ms"
echo "  cellar dduf ls of $((ENTRIES * 100)) entries (best of 5) $(ms "$t_big") ms"
echo "  so per $ENTRIES entries, start-up apart          $(ms "$t_ls_net") ms (target < 5)"
echo "  python zipfile infolist, in process (best of 20) $(ms "$t_py_ls") ms"
echo "  python zipfile infolist of $((ENTRIES * 100)), in process  $(ms "$t_py_big") ms   cellar (whole process) / python: $(ratio "$t_big" "$t_py_big")"
echo "  python3 -c zipfile ... (process, best of 5)      $(ms "$t_py_proc") ms   cellar / python: $(ratio "$t_ls" "$t_py_proc")"
