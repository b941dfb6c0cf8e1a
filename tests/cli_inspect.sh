#!/usr/bin/env bash
# cellar inspect / shard / merge against files generated here with Python's
# standard library, which also cross-checks every file cellar writes
# (header parsed with json.loads, offsets, padding, canonical order).
set -euo pipefail

. "$(dirname "$0")/lib.sh"
test_dir cli_inspect

# gen.py OUT SPEC: SPEC is a JSON list of [name, dtype, shape]; tensors get
# consecutive offsets in the given order; extra=N appends N stray bytes.
cat > "$T/gen.py" <<'EOF'
import json, struct, sys
out, spec = sys.argv[1], json.loads(sys.argv[2])
extra = int(sys.argv[3]) if len(sys.argv) > 3 else 0
bits = {"F32": 32, "BF16": 16, "F16": 16, "U8": 8, "I64": 64}
hdr, data, at = {"__metadata__": {"format": "pt", "origin": "gen.py"}}, b"", 0
for name, dt, shape in spec:
    n = 1
    for d in shape:
        n *= d
    size = n * bits[dt] // 8
    hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [at, at + size]}
    data += bytes((at + i) * 31 % 251 for i in range(size))
    at += size
h = json.dumps(hdr).encode()
open(out, "wb").write(struct.pack("<Q", len(h)) + h + data + b"\0" * extra)
EOF

# check.py FILE...: every file follows the writer rules.
cat > "$T/check.py" <<'EOF'
import json, os, struct, sys
order = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
         "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
         "C64", "F64", "I64", "U64"]
for path in sys.argv[1:]:
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    assert n % 8 == 0, (path, "header length not a multiple of 8")
    text = raw[8:8 + n].decode()
    assert len(text) - len(text.rstrip(" ")) < 8, (path, "more padding than needed")
    assert "\0" not in text, (path, "NUL in header")
    hdr = json.loads(text)
    keys = list(hdr)
    assert keys[0] == "__metadata__" and hdr["__metadata__"]["format"] == "pt", (path, keys[:1])
    assert text.rstrip(" ") == json.dumps(hdr, separators=(",", ":"), ensure_ascii=False), (path, "not compact")
    tensors = [(k, v) for k, v in hdr.items() if k != "__metadata__"]
    want = sorted(tensors, key=lambda kv: (-order.index(kv[1]["dtype"]), kv[0].encode()))
    assert [k for k, _ in tensors] == [k for k, _ in want], (path, "not in canonical order")
    at = 0
    for k, v in tensors:
        b, e = v["data_offsets"]
        assert b == at, (path, k, "gap")
        at = e
    assert 8 + n + at == len(raw), (path, "not fully covered")
EOF

# tensor_bytes.py A B: the two files hold the same tensors with the same bytes.
cat > "$T/same_tensors.py" <<'EOF'
import json, struct, sys
def load(p):
    raw = open(p, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    hdr.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in hdr.items()}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a == b, "tensors differ"
EOF

python3 "$T/gen.py" "$T/ex.safetensors" '[["scale","F32",[]],["a.weight","F32",[2,3]],["a.bias","F32",[2]]]'

# --- inspect, text ---
out=$("$BIN" inspect "$T/ex.safetensors")
check "tensor count" grep -q '^tensors: *3$' <<<"$out"
check "parameter count" grep -q '^parameters: *9$' <<<"$out"
check "dtype histogram" grep -q '^dtypes: *F32 x3 (36 B)$' <<<"$out"
check "metadata" grep -q 'origin = gen.py' <<<"$out"
check "structural hash (HASHES.md example)" grep -q '^structural_hash: cdf0726fd23f31be0c8f82e838646a79$' <<<"$out"
check "unknown model" grep -q '^model: *unknown (structural cdf0726f\.\.\., 3 tensors)$' <<<"$out"
out=$("$BIN" inspect --tensors "$T/ex.safetensors")
check "--tensors" grep -q '  a.weight  F32  \[2, 3\]  24$' <<<"$out"

# --- identification through an extra registry file ($CELLAR_REGISTRY) ---
mkdir -p "$T/data"
printf 'cdf0726fd23f31be0c8f82e838646a79\tToyNet\tall\tToy model from HASHES.md\n' > "$T/data/registry.tsv"
out=$(CELLAR_REGISTRY="$T/data/registry.tsv" "$BIN" inspect "$T/ex.safetensors")
check "identified" grep -q '^model: *ToyNet all (Toy model from HASHES.md), F32 (hash cdf0726f)$' <<<"$out"

# --- --json ---
CELLAR_REGISTRY="$T/data/registry.tsv" "$BIN" inspect --json --tensors "$T/ex.safetensors" > "$T/ex.json"
check "--json fields" python3 - "$T/ex.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
c = j["components"][0]
assert j["tensors"] == 3 and j["parameters"] == 9, j
assert c["structural_hash"] == "cdf0726fd23f31be0c8f82e838646a79"
assert c["model"]["registry"][0]["family"] == "ToyNet" and c["model"]["evidence"] == ["hash"]
assert c["model"]["confidence"] == "high" and c["model"]["kind"] == "other"
assert c["dtypes"] == {"F32": {"tensors": 3, "bytes": 36}}
assert c["metadata"] == {"format": "pt", "origin": "gen.py"}
assert {t["name"]: t["shape"] for t in c["tensor_list"]} == {"a.bias": [2], "a.weight": [2, 3], "scale": []}
EOF

# --- invalid files: the rule, exit 1 ---
python3 "$T/gen.py" "$T/trailing.safetensors" '[["a","U8",[3]]]' 1
set +e
err=$("$BIN" inspect "$T/trailing.safetensors" 2>&1 >/dev/null); rc=$?
set -e
check "trailing byte exit 1" test "$rc" = 1
check "trailing byte rule" grep -q "^cellar: $T/trailing.safetensors: incomplete metadata, file not fully covered" <<<"$err"
set +e
"$BIN" inspect --json "$T/trailing.safetensors" > "$T/err.json" 2>/dev/null; rc=$?
set -e
check "--json error exit 1" test "$rc" = 1
check "--json error object" python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert "not fully covered" in j["error"], j' "$T/err.json"
printf 'abc' > "$T/short.safetensors"
set +e
err=$("$BIN" inspect "$T/short.safetensors" 2>&1 >/dev/null); rc=$?
set -e
check "short file" test "$rc" = 1
check "short file rule" grep -q "header too small" <<<"$err"
python3 - "$T/nulpad.safetensors" <<'EOF'
import struct, sys
h = b'{}\0\0\0\0\0\0'
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h)
EOF
set +e
err=$("$BIN" inspect "$T/nulpad.safetensors" 2>&1 >/dev/null); rc=$?
set -e
check "NUL padding" test "$rc" = 1
check "NUL padding rule" grep -q "invalid header deserialization: trailing characters" <<<"$err"

# --- shard and merge ---
spec='[["b.w","F32",[4,4]],["a.w","BF16",[10]],["c","U8",[7]],["d.e","I64",[3]],["a.b","F32",[5]]]'
python3 "$T/gen.py" "$T/full.safetensors" "$spec"
out=$("$BIN" shard "$T/full.safetensors" --max-size 0.03KB -o "$T/shards")
check "shard" test "$out" = "4 shards written to $T/shards"
check "shard files follow the writer rules" python3 "$T/check.py" "$T"/shards/model-*.safetensors
check "index JSON" python3 - "$T/shards" <<'EOF'
import json, os, sys
d = sys.argv[1]
text = open(os.path.join(d, "model.safetensors.index.json")).read()
idx = json.loads(text)
# Exactly what huggingface_hub writes: json.dumps(index, indent=2).
assert text == json.dumps(idx, indent=2), "not json.dumps(indent=2)"
assert idx["metadata"]["total_size"] == 64 + 20 + 7 + 24 + 20
files = sorted(set(idx["weight_map"].values()))
n = len(files)
assert files == ["model-%05d-of-%05d.safetensors" % (i + 1, n) for i in range(n)], files
# Greedy in name order, limit 30: a.b (20); a.w (20) closes it; b.w (64)
# goes alone at once while a.w's shard stays open; c (7) joins a.w; d.e
# (24) closes that one.
assert n == 4, files
assert list(idx["weight_map"].items()) == [
    ("a.b", files[0]), ("b.w", files[1]), ("a.w", files[2]), ("c", files[2]), ("d.e", files[3])], idx
EOF
out=$("$BIN" merge "$T/shards" -o "$T/merged.safetensors")
check "merge" test "$out" = "5 tensors from 4 files merged into $T/merged.safetensors"
check "merged file follows the writer rules" python3 "$T/check.py" "$T/merged.safetensors"
check "merged tensors equal the original" python3 "$T/same_tensors.py" "$T/full.safetensors" "$T/merged.safetensors"
"$BIN" shard "$T/merged.safetensors" --max-size 30 -o "$T/shards2" >/dev/null
"$BIN" merge "$T/shards2/model.safetensors.index.json" -o "$T/merged2.safetensors" >/dev/null
check "round trip byte-exact" cmp -s "$T/merged.safetensors" "$T/merged2.safetensors"
h1=$("$BIN" inspect "$T/full.safetensors" | sed -n 's/^structural_hash: *//p')
h2=$("$BIN" inspect "$T/shards" | sed -n 's/^structural_hash: *//p')
check "shard set hashes as the file" test -n "$h1" -a "$h1" = "$h2"
out=$("$BIN" inspect "$T/shards")
check "shard set format" grep -q '^format: *safetensors (sharded), 4 files$' <<<"$out"

# --- a diffusers folder ---
mkdir -p "$T/pipe/vae" "$T/pipe/scheduler"
echo '{}' > "$T/pipe/model_index.json"
echo '{}' > "$T/pipe/scheduler/scheduler_config.json"
cp "$T/ex.safetensors" "$T/pipe/vae/diffusion_pytorch_model.safetensors"
cp -r "$T/shards" "$T/pipe/transformer"
out=$("$BIN" inspect "$T/pipe")
check "components" grep -q '^format: *diffusers folder, 2 weight components$' <<<"$out"
check "component hash" grep -q '^  structural_hash: cdf0726fd23f31be0c8f82e838646a79$' <<<"$out"
check "total" grep -q '^tensors: *8$' <<<"$out"

# --- cellar hash -a structural ---
out=$("$BIN" hash -a structural "$T/ex.safetensors" "$T/pipe")
check "hash -a structural" test "$out" = "cdf0726fd23f31be0c8f82e838646a79  $T/ex.safetensors
$h1  $T/pipe/transformer
cdf0726fd23f31be0c8f82e838646a79  $T/pipe/vae"
out=$("$BIN" hash --json -a structural "$T/shards")
check "hash -a structural --json" test "$out" = "{\"path\":\"$T/shards\",\"structural\":\"$h1\"}"
set +e
"$BIN" hash -a structural "$T/trailing.safetensors" >/dev/null 2>&1; rc1=$?
"$BIN" hash -a structural,sha256 "$T/ex.safetensors" >/dev/null 2>&1; rc2=$?
set -e
check "hash -a structural of a broken file" test "$rc1" = 1
check "structural with digests" test "$rc2" = 2

# --- usage ---
set +e
err=$("$BIN" shard "$T/full.safetensors" --max-size 5GiB -o "$T/x" 2>&1); rc=$?
set -e
check "5GiB refused" test "$rc" = 2
check "5GiB message" grep -q "unit 'IB' not supported" <<<"$err"
set +e
"$BIN" inspect >/dev/null 2>&1; rc1=$?
"$BIN" merge "$T/shards" >/dev/null 2>&1; rc2=$?
set -e
check "inspect without PATH" test "$rc1" = 2
check "merge without -o" test "$rc2" = 2
for v in inspect shard merge; do
    check "$v --help" "$BIN" "$v" --help >/dev/null
    # A refused option is one "cellar <verb>: ..." message naming it, exit 2.
    set +e
    err=$("$BIN" "$v" --bogus x 2>&1 >/dev/null); rc=$?
    set -e
    check "$v --bogus exits 2" test "$rc" = 2
    check "$v --bogus message" test "$(head -n 1 <<<"$err")" = "cellar $v: unknown option '--bogus'"
done
set +e
err=$("$BIN" shard -o 2>&1 >/dev/null); rc=$?
set -e
check "shard -o without a value" test "$rc:$(head -n 1 <<<"$err")" = "2:cellar shard: option '-o' needs a value"

# --- every format: the JSON parses, and text and JSON agree ---
# One result is built per path and printed twice: each component's tensor
# and parameter counts, the totals where the text shows them, and the
# --tensors rows must be the same in both. Names and key/values carry an
# ESC and bytes that are not UTF-8, which the text shows escaped and the
# JSON as \u escapes (U+FFFD for the bad bytes).
cat > "$T/agree.py" <<'EOF2'
import json, re, sys
def agree(text, js):
    assert b"\x1b" not in text, "a raw ESC in the text"
    assert all(b < 0x80 for b in js), "JSON is not ASCII"
    j = json.loads(js)
    comps = j["components"]
    totals = j["format"] in ("diffusers", "dduf")
    want = [c["tensors"] for c in comps] + ([j["tensors"]] if totals else [])
    text = text.decode("utf-8", "replace")
    got = [int(n) for n in re.findall(r"^ *tensors: +(\d+)$", text, re.M)]
    assert got == want, ("tensors", got, want)
    want = [c["parameters"] for c in comps] + ([j["parameters"]] if totals else [])
    got = [int(n) for n in re.findall(r"^ *parameters: +(\d+)", text, re.M)]
    assert got == want, ("parameters", got, want)
    assert j["tensors"] == sum(c["tensors"] for c in comps), "totals"
    rows = re.findall(r"^( *)tensor_list: +(\d+)$((?:\n\1  .*)*)", text, re.M)
    assert [int(n) for _, n, _ in rows] == [len(c["tensor_list"]) for c in comps], "rows"
    for (_, n, body), c in zip(rows, comps):
        assert body.count("\n") == int(n) == c["tensors"], ("row lines", body)
        for line, t in zip(body.strip("\n").split("\n"), c["tensor_list"]):
            # name  dtype  [shape]  bytes  [file]
            cols = line.strip().split("  ")
            assert cols[1:4] == [t["dtype"], str(t["shape"]).replace("'", ""), str(t["bytes"])], (line, t)
    print(j["format"], len(comps), "components", j["tensors"], "tensors")
# agree.py TEXT JSON...: each pair, every failure named.
bad = 0
for t, j in zip(sys.argv[1::2], sys.argv[2::2]):
    try:
        agree(open(t, "rb").read(), open(j, "rb").read())
    except Exception as e:
        bad += 1
        print("FAIL:", t, repr(e))
sys.exit(bad != 0)
EOF2
/usr/bin/python3 - "$T" <<'EOF2'
import json, struct, sys
T = sys.argv[1]
def st(path, names):
    hdr, at = {"__metadata__": {"note": "\x1b[31mred"}}, 0
    for n in names:
        hdr[n] = {"dtype": "F16", "shape": [2, 2], "data_offsets": [at, at + 8]}
        at += 8
    h = json.dumps(hdr).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + bytes(at))
st(T + "/esc.safetensors", ["evil\x1b[2J.weight", "ok.bias"])
def s(x): return struct.pack("<Q", len(x)) + x
kv = s(b"general.name") + struct.pack("<I", 8) + s(b"bad \xff\xfe \x1b[2J")
kv += s(b"tok.list") + struct.pack("<IIQ", 9, 8, 2) + s(b"a") + s(b"b")
ti = s(b"w\x1b\xff") + struct.pack("<IQQIQ", 2, 32, 2, 1, 0)  # F16 [32, 2]
ti += s(b"norm") + struct.pack("<IQIQ", 1, 8, 0, 128)        # F32 [8]
h = b"GGUF" + struct.pack("<IQQ", 3, 2, 2) + kv + ti
h += b"\0" * (-len(h) % 32)
open(T + "/hostile.gguf", "wb").write(h + b"\1" * 128 + b"\2" * 32)
EOF2
cp -r "$T/pipe" "$T/pipe_d"
echo '{"transformer": ["diffusers", "T"], "vae": ["diffusers", "V"], "scheduler": ["diffusers", "S"]}' >"$T/pipe_d/model_index.json"
echo '{}' >"$T/pipe_d/vae/config.json"
echo '{}' >"$T/pipe_d/transformer/config.json"
"$BIN" dduf pack "$T/pipe_d" "$T/pipe.dduf" >/dev/null
fixtures="$T/esc.safetensors $T/shards $T/shards/model.safetensors.index.json $T/pipe $T/pipe.dduf $T/hostile.gguf"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 -c 'import sys, torch; a = torch.zeros(2, 3); torch.save({"w": a, "tied": a, "b\x1b": torch.ones(4, dtype=torch.float16)}, sys.argv[1])' "$T/m.pt"
    mkdir -p "$T/pipe_pt/vae" && cp "$T/m.pt" "$T/pipe_pt/vae/diffusion_pytorch_model.bin"
    cp -r "$T/pipe/transformer" "$T/pipe_pt/"
    fixtures="$fixtures $T/m.pt $T/pipe_pt"
else
    skip "inspect of a PyTorch checkpoint: /usr/bin/python3 has no torch"
fi
pairs=()
n=0
for f in $fixtures; do
    n=$((n + 1))
    "$BIN" inspect --tensors "$f" >"$T/agree$n.txt"
    "$BIN" inspect --tensors --json "$f" >"$T/agree$n.json"
    pairs+=("$T/agree$n.txt" "$T/agree$n.json")
done
check "text and JSON agree for $n paths" /usr/bin/python3 "$T/agree.py" "${pairs[@]}"
out=$("$BIN" inspect "$T/hostile.gguf")
check "GGUF key/value escaped" env LC_ALL=C grep -aq 'general.name = bad .* \\x1b\[2J$' <<<"$out"
out=$("$BIN" inspect --json "$T/hostile.gguf")
check "GGUF bad bytes as U+FFFD" /usr/bin/python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["metadata"]["general.name"] == "bad \ufffd\ufffd \x1b[2J", j["metadata"]' "$out"

test_end
