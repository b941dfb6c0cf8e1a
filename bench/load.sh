#!/usr/bin/env bash
# Loader benchmark, page cache warm, on a LOAD_BYTES shard set of F16
# tensors; each loader returns tensors whose bytes are resident (a lazy
# loader's pages are touched):
#  1. cellar.load_state_dict vs a pure-Python mmap + torch.frombuffer loader
#     (what safetensors does) vs torch.load of the same weights as .bin;
#     targets: <= 0.5x and <= 0.25x;
#  2. torch_dtype=torch.float32: cellar vs the Python loader + .to(float32);
#     target <= 0.5x;
#  2b. the same weights as a .bin (torch.save, zip): cellar.load_state_dict
#     (libcellar's pickle reader, zero-copy; nothing unpickled) vs torch.load;
#  3. peak memory of the zero-copy load, over the interpreter with torch
#     imported: <= file size + 50 MB (and its anonymous memory).
# Each measurement runs in a fresh process; the median of RUNS is reported.
# usage: bench/load.sh path/to/cellar   (the package is <build>/python)
# env: BENCH_DIR (/tmp/cellar-bench), LOAD_BYTES (2G), RUNS (3)
set -euo pipefail

BIN=$(realpath "${1:?usage: $0 path/to/cellar}")
PY=/usr/bin/python3
export PYTHONPATH=$(dirname "$BIN")/python${PYTHONPATH:+:$PYTHONPATH}
D=${BENCH_DIR:-/tmp/cellar-bench}/load
LOAD_BYTES=$(numfmt --from=iec "${LOAD_BYTES:-2G}")
RUNS=${RUNS:-3}
mkdir -p "$D"
"$PY" -c 'import torch, cellar' || { echo "bench/load.sh: needs torch and the cellar package"; exit 1; }

cat > "$D/bench.py" <<'PYEOF'
import json, mmap, os, resource, struct, sys, time


def rss_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def gen(folder, total):
    """F16 tensors of 1..64 MiB in shards of ~500 MB (written by cellar)."""
    import torch, cellar
    sizes, left, i = [], total, 0
    while left > 0:
        mib = [1, 4, 16, 64, 8, 32][i % 6] << 20
        n = min(mib, left) // 2
        sizes.append(max(n, 1))
        left -= 2 * max(n, 1)
        i += 1
    sd = {}
    for i, n in enumerate(sizes):
        t = torch.empty(n, dtype=torch.float16)
        t.copy_(torch.arange(n, dtype=torch.float32).remainder_(2048).mul_(0.01))
        sd["model.layers.%04d.weight" % i] = t.reshape(-1, 64) if n % 64 == 0 else t
    cellar.save_torch_state_dict(sd, folder, max_shard_size="500MB")
    torch.save(sd, os.path.join(folder, "weights.bin"))


def touch(t):
    """Reads one byte of every page of a tensor (a lazy loader's bytes made
    resident)."""
    import torch
    b = t.reshape(-1).view(torch.uint8)
    return int(b[::4096].sum())


def py_loader(folder, dtype=None):
    """Pure Python: parse each header with json, map privately, frombuffer."""
    import torch
    tdt = {"F16": torch.float16, "F32": torch.float32, "BF16": torch.bfloat16}
    out = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".safetensors"):
            continue
        with open(os.path.join(folder, name), "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            hdr = json.loads(f.read(n))
            mm = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE,
                           prot=mmap.PROT_READ | mmap.PROT_WRITE)
        hdr.pop("__metadata__", None)
        for k, h in hdr.items():
            a, b = h["data_offsets"]
            t = torch.frombuffer(mm, dtype=tdt[h["dtype"]], count=(b - a) // 2, offset=8 + n + a)
            t = t.reshape(h["shape"])
            touch(t)
            out[k] = t.to(dtype) if dtype is not None else t
    return out


def main():
    what, folder = sys.argv[1], sys.argv[2]
    if what == "gen":
        gen(folder, int(sys.argv[3]))
        return
    import torch, cellar
    base_rss, base_anon = rss_kb("VmRSS"), rss_kb("RssAnon")
    t0 = time.perf_counter()
    if what == "cellar":
        sd = cellar.load_state_dict(folder)
    elif what == "cellar32":
        sd = cellar.load_state_dict(folder, torch_dtype=torch.float32)
    elif what == "python":
        sd = py_loader(folder)
    elif what == "python32":
        sd = py_loader(folder, torch.float32)
    elif what == "cellarbin":
        sd = cellar.load_state_dict(os.path.join(folder, "weights.bin"))
    elif what == "torchload":
        sd = torch.load(os.path.join(folder, "weights.bin"))
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"s": dt, "n": len(sd), "peak_over_kb": peak - base_rss,
                      "anon_over_kb": rss_kb("RssAnon") - base_anon}))


main()
PYEOF

want_bytes=$LOAD_BYTES
if [ ! -f "$D/set/.bytes" ] || [ "$(cat "$D/set/.bytes")" != "$want_bytes" ]; then
    rm -rf "$D/set"
    mkdir -p "$D/set"
    echo "generating $(numfmt --to=iec "$want_bytes") of F16 tensors in $D/set ..."
    "$PY" "$D/bench.py" gen "$D/set" "$want_bytes"
    echo "$want_bytes" >"$D/set/.bytes"
fi
st_bytes=$(cat "$D"/set/*.safetensors | wc -c)
st_bytes_guess=$st_bytes
# Warm the page cache, and the memory: on the project's VMs the first touch
# of never-used guest memory costs ~0.2-0.5 GB/s (host-side faults), which
# would land on whichever loader allocates first; touching 3x the set once
# leaves the guest's free pages warm for all of them.
cat "$D"/set/*.safetensors "$D"/set/weights.bin >/dev/null
"$PY" -c 'import mmap, sys; n = int(sys.argv[1]); m = mmap.mmap(-1, n); [m.__setitem__(slice(i, i + 1), b"x") for i in range(0, n, 4096)]' $((3 * st_bytes_guess))

declare -A T
run() { # name: median seconds of RUNS fresh processes
    local name=$1 i out times=()
    for ((i = 0; i < RUNS; i++)); do
        out=$("$PY" "$D/bench.py" "$name" "$D/set")
        times+=("$(echo "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["s"])')")
        echo "$out" >"$D/$name.json"
    done
    T[$name]=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
}
# Interleaved so that load from other work hits every loader alike.
for name in cellar python torchload cellarbin cellar32 python32; do run "$name"; done

ratio() { "$PY" -c "print('%.3f' % ($1 / $2))"; }
gbs() { "$PY" -c "print('%.2f' % ($st_bytes / $1 / 1e9))"; }
echo "shard set: $(numfmt --to=iec "$st_bytes") in $(ls "$D"/set/*.safetensors | wc -l) files, page cache warm, median of $RUNS"
printf '  %-34s %8.3f s  %6s GB/s\n' "cellar.load_state_dict" "${T[cellar]}" "$(gbs "${T[cellar]}")"
printf '  %-34s %8.3f s  %6s GB/s\n' "python mmap + frombuffer + touch" "${T[python]}" "$(gbs "${T[python]}")"
printf '  %-34s %8.3f s  %6s GB/s\n' "torch.load (.bin)" "${T[torchload]}" "$(gbs "${T[torchload]}")"
printf '  %-34s %8.3f s  %6s GB/s\n' "cellar.load_state_dict (.bin)" "${T[cellarbin]}" "$(gbs "${T[cellarbin]}")"
printf '  %-34s %8.3f s\n' "cellar, torch_dtype=float32" "${T[cellar32]}"
printf '  %-34s %8.3f s\n' "python loader + .to(float32)" "${T[python32]}"
echo "ratios:"
echo "  cellar / python mmap loader     $(ratio "${T[cellar]}" "${T[python]}")   (target <= 0.5)"
echo "  cellar / torch.load             $(ratio "${T[cellar]}" "${T[torchload]}")   (target <= 0.25)"
echo "  cellar .bin / torch.load .bin   $(ratio "${T[cellarbin]}" "${T[torchload]}")"
echo "  cellar f32 / python .to(f32)    $(ratio "${T[cellar32]}" "${T[python32]}")   (target <= 0.5)"
peak=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["peak_over_kb"]*1024, d["anon_over_kb"]*1024)' "$D/cellar.json")
read -r peak_b anon_b <<<"$peak"
echo "memory of the zero-copy load (over python + torch):"
echo "  peak RSS +$(numfmt --to=iec "$peak_b"), anonymous +$(numfmt --to=iec "$anon_b"); files $(numfmt --to=iec "$st_bytes"); limit files + 50 MB: $([ "$peak_b" -le $((st_bytes + 50000000)) ] && echo met || echo MISSED)"
