#!/usr/bin/env bash
# Formats benchmark: cellar against what people use instead.
#  1. inspect + structural hash of a TENSORS-tensor file (header only, data
#     sparse) vs a Python script doing json.loads + md5 (as DiffSynth-Studio
#     does); target ratio <= 0.1.
#  2. peak memory (max RSS) inspecting a BIG_SIZE sparse file; target < 50 MB.
#  3. shard and merge of a SHARD_FILE_SIZE file vs cp of the same bytes;
#     target <= 1.2x.
# usage: bench/formats.sh path/to/cellar
# env: BENCH_DIR (/tmp/cellar-bench), TENSORS (10000), BIG_SIZE (20G),
#      SHARD_FILE_SIZE (256M; the full run uses 4G), RUNS (5)
set -euo pipefail

BIN=$(realpath "${1:?usage: $0 path/to/cellar}")
D=${BENCH_DIR:-/tmp/cellar-bench}/formats
TENSORS=${TENSORS:-10000}
BIG_SIZE=${BIG_SIZE:-20G}
SHARD_FILE_SIZE=${SHARD_FILE_SIZE:-256M}
RUNS=${RUNS:-5}
mkdir -p "$D"

to_bytes() { numfmt --from=iec "$1"; }

# gen.py OUT NTENSORS DATA_BYTES: a file whose tensors share DATA_BYTES
# (BF16, 2-D), data left sparse (truncate) unless dense=1.
cat > "$D/gen.py" <<'EOF'
import json, os, struct, sys
out, n, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
dense = len(sys.argv) > 4 and sys.argv[4] == "1"
per = max(2, (total // n) // 2 * 2)
hdr, at = {"__metadata__": {"format": "pt"}}, 0
for i in range(n):
    elems = per // 2
    hdr["model.layers.%d.block.%d.weight" % (i // 16, i % 16)] = {
        "dtype": "BF16", "shape": [elems // 64 or 1, 64 if elems >= 64 else elems],
        "data_offsets": [at, at + (elems // 64 or 1) * (64 if elems >= 64 else elems) * 2]}
    at = hdr[list(hdr)[-1]]["data_offsets"][1]
h = json.dumps(hdr, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    if dense:
        chunk = bytes(range(256)) * 4096
        left = at
        while left:
            k = min(left, len(chunk))
            f.write(chunk[:k])
            left -= k
    else:
        f.truncate(8 + len(h) + at)
EOF

# The Python way: read the header, json.loads, structural hash with md5.
cat > "$D/py_inspect.py" <<'EOF'
import hashlib, json, struct, sys
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
print(hashlib.md5(",".join(keys).encode()).hexdigest())
EOF

best_of() { # best_of N CMD...: the fastest wall time in seconds
    local n=$1 best=""; shift
    for _ in $(seq "$n"); do
        local t0 t1
        t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
        best=$(python3 -c "t=$t1-$t0; b='$best'; print(t if not b or t<float(b) else b)")
    done
    echo "$best"
}
ratio() { python3 -c "print('%.3f' % ($1 / $2))"; }

echo "== inspect + structural hash, $TENSORS tensors (header only)"
python3 "$D/gen.py" "$D/many.safetensors" "$TENSORS" $((TENSORS * 8192))
h_c=$("$BIN" inspect "$D/many.safetensors" | sed -n 's/^structural_hash: *//p')
h_p=$(python3 "$D/py_inspect.py" "$D/many.safetensors")
[ "$h_c" = "$h_p" ] || { echo "structural hashes differ: cellar $h_c, python $h_p"; exit 1; }
t_c=$(best_of "$RUNS" "$BIN" inspect "$D/many.safetensors")
t_p=$(best_of "$RUNS" python3 "$D/py_inspect.py" "$D/many.safetensors")
printf 'cellar inspect %.1f ms, python json.loads+md5 %.1f ms, ratio %s (target <= 0.1)\n' \
    "$(python3 -c "print($t_c*1e3)")" "$(python3 -c "print($t_p*1e3)")" "$(ratio "$t_c" "$t_p")"

echo "== peak memory inspecting a $BIG_SIZE sparse file"
python3 "$D/gen.py" "$D/big.safetensors" 2000 "$(to_bytes "$BIG_SIZE")"
rss=$(/usr/bin/time -v "$BIN" inspect "$D/big.safetensors" 2>&1 >/dev/null |
      sed -n 's/.*Maximum resident set size (kbytes): //p')
echo "cellar inspect max RSS ${rss} kB ($(python3 -c "print('%.1f' % ($rss/1024))") MB, target < 50 MB)"
rm -f "$D/big.safetensors"

echo "== shard + merge of $SHARD_FILE_SIZE vs cp"
size=$(to_bytes "$SHARD_FILE_SIZE")
python3 "$D/gen.py" "$D/dense.safetensors" 64 "$size" 1
rm -rf "$D/shards" "$D/merged.safetensors" "$D/copy.safetensors"
cat "$D/dense.safetensors" >/dev/null # warm the page cache for every contender
t_cp=$(best_of 1 cp "$D/dense.safetensors" "$D/copy.safetensors")
rm -f "$D/copy.safetensors"
# cellar makes every file durable (fsync before rename); so does cp + sync.
cp_sync() { cp "$1" "$2" && sync "$2"; }
t_cps=$(best_of 1 cp_sync "$D/dense.safetensors" "$D/copy.safetensors")
t_sh=$(best_of 1 "$BIN" shard "$D/dense.safetensors" --max-size "$((size / 4))" -o "$D/shards")
t_mg=$(best_of 1 "$BIN" merge "$D/shards" -o "$D/merged.safetensors")
# The generated source is not in canonical order, so compare what it holds.
[ "$("$BIN" inspect "$D/dense.safetensors" | sed -n 's/^structural_hash: *//p')" = \
  "$("$BIN" inspect "$D/merged.safetensors" | sed -n 's/^structural_hash: *//p')" ] ||
    { echo "merged file holds other tensors than the source"; exit 1; }
printf 'cp %.2f s, cp+sync %.2f s\n' "$t_cp" "$t_cps"
printf 'cellar shard %.2f s: %sx cp, %sx cp+sync (target <= 1.2)\n' \
    "$t_sh" "$(ratio "$t_sh" "$t_cp")" "$(ratio "$t_sh" "$t_cps")"
printf 'cellar merge %.2f s: %sx cp, %sx cp+sync (target <= 1.2)\n' \
    "$t_mg" "$(ratio "$t_mg" "$t_cp")" "$(ratio "$t_mg" "$t_cps")"
rm -rf "$D/shards" "$D/merged.safetensors" "$D/copy.safetensors" "$D/dense.safetensors"
