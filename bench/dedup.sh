#!/usr/bin/env bash
# Dedup of model folders: `cellar dedup` against `jdupes -r -L` and
# `rdfind -makehardlinks true`, each on a fresh copy of one generated tree
# (a few hundred files from 1 MB up to 512 MB, about 40% of the bytes duplicated across
# ComfyUI-, AUTOMATIC1111-, diffusers-like folders). Prints the times and
# the ratios (cellar / other; <= 1.0 means cellar is as fast or faster; wall
# time, and CPU time, which a loaded machine does not inflate),
# checks that `cellar du` of the result equals the unique bytes, and times
# a second run (answered from the index and hash cache).
#
# usage: bench/dedup.sh CELLAR_BIN
# env:   BENCH_DIR (default /tmp/cellar-bench), BENCH_DEDUP_MB (tree size,
#        default 3072), BENCH_SEED (default 1)
set -euo pipefail

BIN=$(realpath "${1:?usage: bench/dedup.sh CELLAR_BIN}")
DIR=${BENCH_DIR:-/tmp/cellar-bench}/dedup
SIZE_MB=${BENCH_DEDUP_MB:-3072}
SEED=${BENCH_SEED:-1}
for tool in jdupes rdfind python3; do
    command -v $tool >/dev/null || { echo "bench/dedup.sh: $tool is not installed" >&2; exit 1; }
done
rm -rf "$DIR"
mkdir -p "$DIR"

# ---- the tree ---------------------------------------------------------------
echo "generating a ${SIZE_MB} MB tree in $DIR/pristine ..."
unique=$(python3 - "$DIR/pristine" "$SIZE_MB" "$SEED" <<'EOF'
import math, os, random, shutil, sys
root, total_mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
MB = 1 << 20
total = total_mb * MB
biggest = max(MB, min(512 * MB, total // 6))
folders = ["ComfyUI/models/checkpoints", "ComfyUI/models/loras", "ComfyUI/models/vae",
           "ComfyUI/models/controlnet", "stable-diffusion-webui/models/Stable-diffusion",
           "stable-diffusion-webui/models/Lora", "stable-diffusion-webui/models/VAE",
           "diffusers/sd15/unet", "diffusers/sd15/vae", "diffusers/sdxl/text_encoder",
           "invokeai/models/sd-1/main", "invokeai/models/sdxl/lora"]
made, size_unique = [], 0
urandom = open("/dev/urandom", "rb")
# 60% unique bytes. Model folders hold many small files (LoRAs, embeddings,
# VAEs, text encoders) and a few big checkpoints: 95% of the files are
# log-uniform between 1 and 16 MB, the rest between 16 MB and the biggest,
# which gives a few hundred files for 3 GiB.
small_top = min(16 * MB, biggest)
while size_unique < total * 0.6:
    lo, hi = (MB, small_top) if r.random() < 0.95 else (small_top, biggest)
    n = int(math.exp(r.uniform(math.log(lo), math.log(hi))))
    n = min(n, int(total * 0.6 - size_unique) + MB)
    d = os.path.join(root, r.choice(folders))
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "model-%04d.safetensors" % len(made))
    with open(p, "wb") as f:
        left = n
        while left:
            chunk = urandom.read(min(left, 8 * MB))
            f.write(chunk)
            left -= len(chunk)
    made.append((p, n))
    size_unique += n
# 40%: copies of those files in other folders.
size_all = size_unique
i = 0
while size_all < total:
    p, n = r.choice(made)
    d = os.path.join(root, r.choice(folders))
    os.makedirs(d, exist_ok=True)
    q = os.path.join(d, "copy-%04d-%s" % (i, os.path.basename(p)))
    shutil.copyfile(p, q)
    size_all += n
    i += 1
print(size_unique)
EOF
)
nfiles=$(find "$DIR/pristine" -type f | wc -l)
apparent=$(find "$DIR/pristine" -type f -printf '%s\n' | paste -sd+ | bc)
echo "tree: $nfiles files, $apparent bytes, $unique unique"

# timed OUT CMD...: runs CMD with stdout to OUT; prints "wall_ms cpu_ms" (CPU:
# user + system of CMD and its children). On a shared machine the wall time
# includes waiting for a core; the CPU time does not.
timed() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
c, t = cpu(), time.monotonic()
with open(sys.argv[1], "w") as out:
    subprocess.run(sys.argv[2:], stdout=out, check=True)
print("%d %d" % ((time.monotonic() - t) * 1000, (cpu() - c) * 1000))
PY
}

for t in cellar jdupes rdfind; do cp -a "$DIR/pristine" "$DIR/$t"; done
sync

export CELLAR_HOME=$DIR/home
read -r t_cellar c_cellar < <(timed "$DIR/cellar.out" "$BIN" dedup "$DIR/cellar")
read -r t_jdupes c_jdupes < <(timed "$DIR/jdupes.out" jdupes -r -L -q "$DIR/jdupes")
read -r t_rdfind c_rdfind < <(timed "$DIR/rdfind.out" rdfind -makehardlinks true \
    -outputname "$DIR/rdfind.txt" "$DIR/rdfind")
read -r t_second c_second < <(timed "$DIR/cellar2.out" "$BIN" dedup "$DIR/cellar")

du_unique=$("$BIN" du --json "$DIR/cellar" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["unique"])')
jd_unique=$("$BIN" du --json "$DIR/jdupes" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["unique"])')
rd_unique=$("$BIN" du --json "$DIR/rdfind" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["unique"])')

ratio() { python3 -c "import sys; print('%.2f' % (max(int(sys.argv[1]),1) / max(int(sys.argv[2]),1)))" "$1" "$2"; }
echo
printf '%-28s %8s ms wall %8s ms cpu   unique after: %s\n' "cellar dedup" "$t_cellar" "$c_cellar" "$du_unique"
printf '%-28s %8s ms wall %8s ms cpu   unique after: %s\n' "jdupes -r -L" "$t_jdupes" "$c_jdupes" "$jd_unique"
printf '%-28s %8s ms wall %8s ms cpu   unique after: %s\n' "rdfind -makehardlinks true" "$t_rdfind" "$c_rdfind" "$rd_unique"
printf '%-28s %8s ms wall %8s ms cpu\n' "cellar dedup, second run" "$t_second" "$c_second"
echo "ratio cellar/jdupes: $(ratio "$t_cellar" "$t_jdupes") wall, $(ratio "$c_cellar" "$c_jdupes") cpu (cellar uses every core, jdupes one)"
echo "ratio cellar/rdfind: $(ratio "$t_cellar" "$t_rdfind") wall, $(ratio "$c_cellar" "$c_rdfind") cpu"
status=0
if [ "$du_unique" = "$unique" ]; then
    echo "du after dedup equals the unique bytes: yes"
else
    echo "du after dedup equals the unique bytes: NO ($du_unique vs $unique)"
    status=1
fi
grep -q '^saved:  0 bytes' "$DIR/cellar2.out" && echo "second run changed nothing: yes" ||
    { echo "second run changed nothing: NO"; status=1; }
rm -rf "$DIR/pristine" "$DIR/jdupes" "$DIR/rdfind"
exit $status
