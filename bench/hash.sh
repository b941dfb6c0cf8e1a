#!/usr/bin/env bash
# cellar hash against the tools a user would run instead, in one run, with
# the data in the page cache; prints each time and the ratio the issue asks
# about. Usage: bench/hash.sh path/to/cellar
#
# Sizes (environment, defaults as in the issue; set them small while
# developing, the machine is shared):
#   HASH_BENCH_BIG_MB=2048        the large file (a safetensors-shaped file)
#   HASH_BENCH_FOLDER_FILES=8     the folder hashed in parallel...
#   HASH_BENCH_FOLDER_MB=256      ...of files this large
#   HASH_BENCH_SMALL_FILES=10000  the tree hashed twice (cache)...
#   HASH_BENCH_SMALL_KB=4         ...of files this large
#   HASH_BENCH_RUNS=3             best of this many runs per measurement
#   BENCH_DIR=/tmp/cellar-bench   where the data goes (kept between runs)
set -euo pipefail

C=$(realpath "${1:?usage: bench/hash.sh path/to/cellar}")
BIG_MB=${HASH_BENCH_BIG_MB:-2048}
FOLDER_FILES=${HASH_BENCH_FOLDER_FILES:-8}
FOLDER_MB=${HASH_BENCH_FOLDER_MB:-256}
SMALL_FILES=${HASH_BENCH_SMALL_FILES:-10000}
SMALL_KB=${HASH_BENCH_SMALL_KB:-4}
RUNS=${HASH_BENCH_RUNS:-3}
D=${BENCH_DIR:-/tmp/cellar-bench}/hash
mkdir -p "$D"
export CELLAR_HOME=$D/home

for tool in b3sum openssl sha256sum python3; do
    command -v $tool > /dev/null || { echo "bench/hash.sh: $tool is needed" >&2; exit 1; }
done

# ---- data (generated once, reused while the sizes stay the same) ----------
big=$D/big-${BIG_MB}M.safetensors
if [ ! -f "$big" ]; then
    echo "generating $big" >&2
    python3 - "$big" "$BIG_MB" <<'EOF'
import json, os, sys
path, mb = sys.argv[1], int(sys.argv[2])
size = mb << 20
header = json.dumps({"__metadata__": {"format": "pt"}}).encode()
header += b" " * (-(8 + len(header)) % 8)
with open(path + ".tmp", "wb") as f:
    f.write(len(header).to_bytes(8, "little") + header)
    left = size - 8 - len(header)
    while left > 0:
        n = min(left, 64 << 20)
        f.write(os.urandom(n))
        left -= n
os.rename(path + ".tmp", path)
EOF
fi
folder=$D/folder-${FOLDER_FILES}x${FOLDER_MB}M
if [ ! -d "$folder" ]; then
    echo "generating $folder" >&2
    mkdir -p "$folder.tmp"
    for i in $(seq 1 "$FOLDER_FILES"); do
        head -c $((FOLDER_MB << 20)) /dev/urandom > "$folder.tmp/part$i.bin"
    done
    mv "$folder.tmp" "$folder"
fi
small=$D/small-${SMALL_FILES}x${SMALL_KB}K
if [ ! -d "$small" ]; then
    echo "generating $small" >&2
    python3 - "$small.tmp" "$SMALL_FILES" "$SMALL_KB" <<'EOF'
import os, sys
root, n, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 250))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.json" % i), "wb") as f:
        f.write(os.urandom(kb << 10))
EOF
    mv "$small.tmp" "$small"
fi
cat "$big" "$folder"/* > /dev/null # into the page cache

# ---- timing ----------------------------------------------------------------
# once CMD...: wall time of one run, in seconds. best CMD...: of RUNS runs.
once() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" > /dev/null
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}
best() {
    local b="" t
    for _ in $(seq 1 "$RUNS"); do
        t=$(once "$@")
        b=$(awk -v b="$b" -v t="$t" 'BEGIN { print (b == "" || t < b) ? t : b }')
    done
    echo "$b"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
row() { printf '%-52s %8s s %8s s   %6s  (%s)\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$4"; }
openssl_each() { for f in "$@"; do openssl dgst -sha256 "$f"; done; }

nproc=$(nproc)
echo "cellar hash benchmark: $nproc cores, big file ${BIG_MB} MiB, folder ${FOLDER_FILES}x${FOLDER_MB} MiB, tree ${SMALL_FILES}x${SMALL_KB} KiB, best of $RUNS"
printf '%-52s %10s %10s   %6s\n' "" "cellar" "other" "ratio"

t_c=$(best "$C" hash --no-cache "$big")
t_o=$(best b3sum "$big")
row "blake3, all threads: cellar / b3sum" "$t_c" "$t_o" "want <= 1.0"
t_c=$(best "$C" hash --no-cache -j 1 "$big")
t_o=$(best b3sum --num-threads 1 "$big")
row "blake3, one thread: cellar / b3sum" "$t_c" "$t_o" "want <= 1.0"
t_c=$(best "$C" hash --no-cache --mmap "$big")
t_o=$(best b3sum "$big")
row "blake3, all threads, --mmap: cellar / b3sum" "$t_c" "$t_o" "for reference"

t_sha=$(best "$C" hash --no-cache -a sha256 "$big")
t_o=$(best openssl dgst -sha256 "$big")
row "sha256: cellar / openssl dgst -sha256" "$t_sha" "$t_o" "want <= 1.05"
t_o=$(best sha256sum "$big")
row "sha256: sha256sum / cellar" "$t_o" "$t_sha" "want >= 3"

t_c=$(best "$C" hash --no-cache -a sha256 "$folder"/*)
t_o=$(best openssl_each "$folder"/*)
row "folder sha256: openssl one by one / cellar" "$t_o" "$t_c" "want >= 1.7"

t_civ=$(best "$C" hash --no-cache --civitai "$big")
row "--civitai (6 values) / sha256, safetensors file" "$t_civ" "$t_sha" "want <= 1.15"
one=$(ls "$folder"/* | head -1)
t_civ=$(best "$C" hash --no-cache --civitai "$one")
t_c=$(best "$C" hash --no-cache -a sha256 "$one")
row "--civitai (5 values, no AutoV3) / sha256, plain file" "$t_civ" "$t_c" "for reference"

# The first run starts from an empty cache each time.
first="" second=""
for _ in $(seq 1 "$RUNS"); do
    rm -rf "$CELLAR_HOME"
    t=$(once "$C" hash -r "$small")
    first=$(awk -v b="$first" -v t="$t" 'BEGIN { print (b == "" || t < b) ? t : b }')
    t=$(once "$C" hash -r "$small")
    second=$(awk -v b="$second" -v t="$t" 'BEGIN { print (b == "" || t < b) ? t : b }')
done
row "hash -r of an unchanged tree: first / second run" "$first" "$second" "want >= 50"
