"""cellar's PyTorch checkpoint reader against torch itself.

usage: /usr/bin/python3 pickle_check.py CELLAR WORKDIR

Writes fixtures with torch 1.13 (zip and legacy containers, pickle protocols
2 and 4, every dtype torch can save, scalars, empty tensors, views, tied
weights, a Lightning-style checkpoint, malicious pickles, crafted and
corrupt files), then checks for each that `cellar inspect --json --tensors`
equals what torch.load sees, that `cellar convert` writes each tensor's
contiguous bytes, that the structural hash follows the Python rule, and
that hostile files are reported and refused without anything running.
Exit 77 (a skip) when this python has no torch.
"""
import collections
import hashlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import types
import zipfile

try:
    import torch
except ImportError:
    print("SKIP: /usr/bin/python3 has no torch (apt-get install python3-torch)")
    sys.exit(77)

CELLAR, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)
failures = []
passed = 0


def check(cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def run(*args):
    p = subprocess.run([CELLAR, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def path(name):
    return os.path.join(WORK, name)


# ---- the Python side: what torch.load sees ----------------------------------

def flatten(obj, prefix=""):
    """Names as cellar lists them: nested dicts (and lists) joined by '.'."""
    out = collections.OrderedDict()
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                continue
            name = f"{prefix}.{k}" if prefix else str(k)
            out.update(flatten(v, name))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            name = f"{prefix}.{i}" if prefix else str(i)
            out.update(flatten(v, name))
    return out


def state_dict_of(obj):
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        return obj["state_dict"]
    return obj


def view_key(t):
    return (t.storage().data_ptr(), t.dtype, t.storage_offset(), tuple(t.shape), t.stride())


def expected(obj):
    tensors = flatten(state_dict_of(obj))
    canon = {}
    for name in sorted(tensors, key=lambda n: n.encode()):
        canon.setdefault(view_key(tensors[name]), name)
    rows = []
    for name, t in tensors.items():
        c = canon[view_key(t)]
        rows.append({
            "name": name,
            "torch_dtype": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "stride": list(t.stride()),
            "storage_offset": t.storage_offset(),
            "bytes": t.numel() * t.element_size(),
            "alias": None if c == name else c,
            # Empty storages all have address 0: each is its own.
            "storage_ptr": t.storage().data_ptr() if t.storage().size() else ("empty", name),
        })
    return rows


def md5_entries(entries):
    return hashlib.md5(",".join(sorted(entries)).encode()).hexdigest()


def state_dict_hash(rows):
    e = []
    for r in rows:
        e += [r["name"] + ":" + "_".join(map(str, r["shape"])), r["name"]]
    return md5_entries(e)


def diffsynth_hash(p):
    """DiffSynth-Studio 2.x hash_model_file for a .bin/.ckpt, None if it fails."""
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
        if len(sd) == 1:
            for k in ("state_dict", "module", "model_state"):
                if k in sd:
                    sd = sd[k]
                    break

        def keys_dict(d):
            return {k: list(v.shape) if isinstance(v, torch.Tensor) else keys_dict(v)
                    for k, v in d.items()}

        def single(d):
            keys = []
            for k, v in d.items():
                if isinstance(k, str):
                    if isinstance(v, dict):
                        keys.append(k + "|" + single(v))
                    else:
                        keys.append(k + ":" + "_".join(map(str, v)))
                        keys.append(k)
            keys.sort()
            return ",".join(keys)

        return hashlib.md5(single(keys_dict(sd)).encode()).hexdigest()
    except Exception:
        return None


def tensor_bytes(t):
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def read_safetensors(p):
    with open(p, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {k: (v, data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
           for k, v in header.items()}
    return out, meta


# ---- checks -------------------------------------------------------------

def check_inspect(name, obj, convertible=True):
    p = path(name)
    rc, out, err = run("inspect", "--json", "--tensors", p)
    check(rc == 0, f"{name}: inspect exits 0 ({err.strip()})")
    if rc:
        return
    top = json.loads(out)
    check(top["format"] == "pytorch" and len(top["components"]) == 1, f"{name}: format pytorch")
    got = top["components"][0]
    want = expected(obj)
    rows = got["tensor_list"]
    check(got["tensors"] == top["tensors"] == len(want), f"{name}: tensor count")
    # Every tensor in the dtype histogram (complex128 has a row of its own).
    hist = {k: v["tensors"] for k, v in got["dtypes"].items()}
    check(sum(hist.values()) == len(want) and all(k in hist for k in {r["dtype"] for r in got["tensor_list"]}),
          f"{name}: dtype histogram {hist}")
    check([r["name"] for r in rows] == [w["name"] for w in want],
          f"{name}: tensor names {[r['name'] for r in rows]} == {[w['name'] for w in want]}")
    for r, w in zip(rows, want):
        for k in ("torch_dtype", "shape", "stride", "storage_offset", "bytes", "alias"):
            check(r[k] == w[k], f"{name}: {w['name']}.{k} {r[k]} == {w[k]}")
    # The same partition into storages.
    by_ptr, by_key = {}, {}
    for r, w in zip(rows, want):
        by_ptr.setdefault(w["storage_ptr"], set()).add(w["name"])
        by_key.setdefault(r["storage"], set()).add(r["name"])
    check(sorted(map(sorted, by_ptr.values())) == sorted(map(sorted, by_key.values())),
          f"{name}: shared storages")
    check(got["state_dict_hash"] == state_dict_hash(want), f"{name}: state dict hash")
    check(got["structural_hash"] == diffsynth_hash(p),
          f"{name}: structural hash {got['structural_hash']} == DiffSynth's {diffsynth_hash(p)}")
    rc, out, err = run("hash", "-a", "structural", p)
    ds = diffsynth_hash(p)
    check(rc == 0 and out.split()[0] == (ds or state_dict_hash(want)),
          f"{name}: hash -a structural")
    if convertible:
        check_convert(name, obj)


def check_convert(name, obj):
    p, dst = path(name), path(name + ".safetensors")
    rc, out, err = run("convert", "-o", dst, p)
    check(rc == 0, f"{name}: convert exits 0 ({err.strip()})")
    if rc:
        return
    tensors, meta = read_safetensors(dst)
    check(meta.get("format") == "pt", f"{name}: format pt in metadata")
    sd = flatten(state_dict_of(obj))
    for row in expected(obj):
        t = sd[row["name"]]
        if row["alias"]:
            check(row["name"] not in tensors and meta.get(row["name"]) == row["alias"],
                  f"{name}: alias {row['name']} -> {row['alias']} in metadata")
            continue
        h, data = tensors.get(row["name"], (None, None))
        check(h is not None and h["shape"] == row["shape"] and data == tensor_bytes(t),
              f"{name}: {row['name']} converted bytes")


# ---- fixtures -------------------------------------------------------------

torch.manual_seed(0)


def all_dtypes():
    d = collections.OrderedDict()
    for dt in (torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64,
               torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64):
        if dt.is_floating_point or dt.is_complex:
            d[str(dt)[6:]] = torch.randn(3, 5).to(dt)
        elif dt == torch.bool:
            d["bool"] = torch.randn(3, 5) > 0
        else:
            d[str(dt)[6:]] = torch.randint(0, 100, (3, 5)).to(dt)
    d["scalar"] = torch.tensor(3.5)
    d["scalar_i64"] = torch.tensor(7)
    d["empty"] = torch.zeros(0, 3)
    d["empty2"] = torch.zeros(2, 0, dtype=torch.float16)
    d["param"] = torch.nn.Parameter(torch.randn(2, 2))
    return d


def views():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    line = torch.arange(10, dtype=torch.int32)
    d = collections.OrderedDict()
    d["base"] = base
    d["rows"] = base[1:3]
    d["cols"] = base[:, 2:5]
    d["t"] = base.t()
    d["row2"] = base[2]
    d["step"] = base[::2, ::3]
    d["expand"] = torch.arange(3.0).expand(4, 3)
    d["narrow"] = line[3:7]
    d["line"] = line
    d["z_tied"] = base  # the same object: an exact alias, kept under "base"
    d["a_tied"] = base.view(4, 6)  # another object, same view: kept under "a_tied"
    d["nested"] = {"inner": torch.ones(2), "deeper": {"x": torch.zeros(1, 1)}}
    return d


def save_all(stem, obj, protocols=(2, 4)):
    names = []
    for proto in protocols:
        for legacy in (False, True):
            n = f"{stem}_p{proto}_{'legacy' if legacy else 'zip'}.pt"
            torch.save(obj, path(n), pickle_protocol=proto,
                       _use_new_zipfile_serialization=not legacy)
            names.append(n)
    return names


for n in save_all("dtypes", all_dtypes()):
    check_inspect(n, torch.load(path(n)))
for n in save_all("views", views()):
    check_inspect(n, torch.load(path(n)))

# complex128 has no safetensors dtype: listed, but convert refuses naming it.
torch.save({"c": torch.randn(2, dtype=torch.complex128)}, path("c128.pt"))
check_inspect("c128.pt", torch.load(path("c128.pt")), convertible=False)
rc, out, err = run("convert", "-o", path("c128.safetensors"), path("c128.pt"))
check(rc == 1 and "complex128" in err, f"c128: convert refuses ({err.strip()})")

# Quantized and sparse tensors have rebuilds cellar does not model: named.
torch.save({"q": torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint8)}, path("q.pt"))
rc, out, err = run("inspect", path("q.pt"))
check(rc == 1 and "unsupported tensor rebuild torch._utils._rebuild_qtensor" in err,
      f"qint8: named refusal ({err.strip()})")
torch.save({"s": torch.eye(3).to_sparse()}, path("sparse.pt"))
rc, out, err = run("inspect", path("sparse.pt"))
check(rc == 1 and "_rebuild_sparse_tensor" in err, f"sparse: named refusal ({err.strip()})")
# A conjugate view is resolved by torch 1.13 at save: plain bytes.
torch.save({"c": torch.randn(3, dtype=torch.complex64).conj()}, path("conj.pt"))
check_inspect("conj.pt", torch.load(path("conj.pt")))

# Wrapped state dicts: a one-key 'module' (DiffSynth unwraps it, cellar lists
# module.*), and nested dicts (DiffSynth's "key|..." strings).
torch.save({"module": {"a": torch.zeros(2, 3), "b": torch.zeros(4)}}, path("module.pt"))
check_inspect("module.pt", torch.load(path("module.pt")))
torch.save({"a": torch.zeros(2), "sub": {"b": torch.zeros(3, 1), "c": {}}}, path("nested.pt"))
check_inspect("nested.pt", torch.load(path("nested.pt")))

# Flattened names that collide: the last value, in the first one's place,
# and a warning.
torch.save({"a.b": torch.zeros(1), "c": torch.zeros(2), "a": {"b": torch.zeros(3, 3)}},
           path("collide.pt"))
check_inspect("collide.pt", torch.load(path("collide.pt")))
rc, out, err = run("inspect", path("collide.pt"))
check(rc == 0 and "appear twice" in err, f"collide: a warning ({err.strip()})")

# Lightning: state_dict beside non-tensor entries, callbacks keyed by class
# (a stub module stands in for pytorch_lightning).
mod = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")


class ModelCheckpoint:
    pass


ModelCheckpoint.__module__ = mod.__name__
mod.ModelCheckpoint = ModelCheckpoint
for m in ("pytorch_lightning", "pytorch_lightning.callbacks", mod.__name__):
    sys.modules.setdefault(m, types.ModuleType(m))
sys.modules[mod.__name__] = mod
sd = collections.OrderedDict()
sd["model.diffusion_model.input_blocks.0.0.weight"] = torch.randn(8, 4, 3, 3).half()
sd["model.diffusion_model.input_blocks.0.0.bias"] = torch.randn(8).half()
sd["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77)[None]
sd["first_stage_model.decoder.conv_out.weight"] = torch.randn(3, 8, 3, 3)
ckpt = {"epoch": 6, "global_step": 840000, "pytorch-lightning_version": "1.4.2",
        "state_dict": sd, "lr": 0.0001,
        "callbacks": {ModelCheckpoint: {"best_model_score": None, "monitor": "val/loss"}},
        "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": []}]}
for proto in (2, 4):
    for legacy in (False, True):
        n = f"lightning_p{proto}_{'legacy' if legacy else 'zip'}.ckpt"
        torch.save(ckpt, path(n), pickle_protocol=proto,
                   _use_new_zipfile_serialization=not legacy)
        check_inspect(n, torch.load(path(n)))
        rc, out, err = run("inspect", "--json", path(n))
        g = json.loads(out)["globals"] if rc == 0 else []
        check(any(x["module"] == mod.__name__ and x["class"] == "unknown" for x in g),
              f"{n}: ModelCheckpoint listed as unknown")
        ident = json.loads(out)["components"][0]["identity"] if rc == 0 else None
        check(ident is not None and "single-file" in ident,
              f"{n}: identified as a single-file checkpoint ({ident})")

# An object of an unknown class holding a tensor: refused, --allow-unknown
# converts the rest.
holder = types.ModuleType("thirdparty.holders")


class Holder:
    def __init__(self):
        self.t = torch.ones(2)


Holder.__module__ = holder.__name__
holder.Holder = Holder
sys.modules["thirdparty"] = types.ModuleType("thirdparty")
sys.modules[holder.__name__] = holder
torch.save({"w": torch.zeros(3), "h": Holder()}, path("holder.pt"))
rc, out, err = run("convert", "-o", path("holder.safetensors"), path("holder.pt"))
check(rc == 1 and "thirdparty.holders.Holder" in err and "unknown global" in err,
      f"holder: convert refuses an unknown object holding tensors ({err.strip()})")
rc, out, err = run("convert", "--allow-unknown", "-o", path("holder.safetensors"), path("holder.pt"))
check(rc == 0, f"holder: --allow-unknown converts ({err.strip()})")
if rc == 0:
    t, _ = read_safetensors(path("holder.safetensors"))
    check(list(t) == ["w"], f"holder: only w converted ({list(t)})")

# Sharded output.
rc, out, err = run("convert", "--max-size", "200", "-o", path("shards"),
                   path("views_p2_zip.pt"))
check(rc == 0 and os.path.exists(path("shards/model.safetensors.index.json")),
      f"convert --max-size writes shards and an index ({err.strip()})")

# A safetensors file whose 8-byte header length starts 80 02 (640 bytes) is
# still safetensors, not a pickle.
hdr = json.dumps({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}).encode()
hdr += b" " * (0x280 - len(hdr))
open(path("st640.safetensors"), "wb").write(struct.pack("<Q", len(hdr)) + hdr + b"\x01")
rc, out, err = run("inspect", "--json", path("st640.safetensors"))
check(rc == 0 and json.loads(out)["format"] == "safetensors",
      f"a 640-byte safetensors header is not taken for a pickle ({err.strip()})")

# ---- malicious pickles ------------------------------------------------------

MARKER = path("PWNED")


class EvilSystem:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


class EvilEval:
    def __reduce__(self):
        return (eval, (f"open({MARKER!r}, 'w')",))


class EvilSubprocess:
    def __reduce__(self):
        return (subprocess.call, (["touch", MARKER],))


evil = [("system", EvilSystem, "posix.system"), ("eval", EvilEval, "builtins.eval"),
        ("subprocess", EvilSubprocess, "subprocess.call")]
evil_files = []
for tag, cls, glob in evil:
    for kind in ("zip", "legacy", "bare2", "bare4"):
        n = f"evil_{tag}_{kind}.pt"
        if kind.startswith("bare"):
            with open(path(n), "wb") as f:
                pickle.dump({"w": cls()}, f, protocol=int(kind[-1]))
        else:
            torch.save({"w": torch.ones(2), "x": cls()}, path(n),
                       _use_new_zipfile_serialization=kind == "zip")
        evil_files.append(n)
        rc, out, err = run("inspect", "--json", path(n))
        check(rc == 0, f"{n}: inspect reads it ({err.strip()})")
        if rc == 0:
            g = json.loads(out)
            names = {x["module"] + "." + x["name"]: x["class"] for x in g["globals"]}
            check(names.get(glob) == "dangerous" and g["dangerous"] >= 1,
                  f"{n}: {glob} reported dangerous ({names})")
        rc, out, err = run("convert", "-o", path(n + ".safetensors"), path(n))
        check(rc == 1 and "dangerous global" in err and glob in err,
              f"{n}: convert refuses naming {glob} ({err.strip()})")
        check(not os.path.exists(path(n + ".safetensors")), f"{n}: nothing written")
        rc, out, err = run("scan", path(n))
        check(rc == 1 and "dangerous" in out, f"{n}: scan exits 1")
        rc, out, err = run("hash", "-a", "structural", path(n))
        check(rc in (0, 1), f"{n}: hash does not crash")
os.makedirs(path("scandir/sub"), exist_ok=True)
os.replace(path("evil_eval_zip.pt"), path("scandir/sub/model.bin"))
torch.save({"a": torch.zeros(1)}, path("scandir/ok.ckpt"))
rc, out, err = run("scan", path("scandir"))
check(rc == 1 and "model.bin: dangerous" in out and "ok.ckpt: safe" in out,
      f"scan of a folder ({out.strip()})")
rc, out, err = run("scan", path("scandir/ok.ckpt"))
check(rc == 0, "scan of a safe file exits 0")
check(not os.path.exists(MARKER), "no payload ran: the marker file never appeared")

# ---- crafted and corrupt files ----------------------------------------------


class FakeStorage:
    def __init__(self, key, numel, typ=torch.FloatStorage):
        self.key, self.numel, self.typ = key, numel, typ


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False,
                     collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class CraftPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", obj.typ, obj.key, "cpu", obj.numel)
        return None


def craft_zip(name, obj, storages):
    buf = io.BytesIO()
    CraftPickler(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path(name), "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for k, data in storages.items():
            z.writestr(f"archive/data/{k}", data)
        z.writestr("archive/version", "3\n")


def expect_error(name, words):
    rc, out, err = run("inspect", path(name))
    ok = rc == 1 and all(w in err for w in words)
    check(ok, f"{name}: named error {words} ({err.strip() or out.strip()})")


s = FakeStorage("0", 6)
craft_zip("crafted_ok.pt", {"a": FakeTensor(s, 2, (2, 2), (2, 1))}, {"0": bytes(24)})
rc, out, err = run("inspect", "--json", "--tensors", path("crafted_ok.pt"))
check(rc == 0 and json.loads(out)["components"][0]["tensor_list"][0]["storage_offset"] == 2,
      f"crafted zip reads ({err.strip()})")
craft_zip("view_past.pt", {"a": FakeTensor(s, 4, (2, 2), (2, 1))}, {"0": bytes(24)})
expect_error("view_past.pt", ["storage shorter than the view", "at offset"])
craft_zip("short_record.pt", {"a": FakeTensor(s, 0, (2,), (1,))}, {"0": bytes(8)})
expect_error("short_record.pt", ["shorter than its type needs"])
craft_zip("no_record.pt", {"a": FakeTensor(s, 0, (2,), (1,))}, {})
expect_error("no_record.pt", ["no record data/0"])
# A legacy storage view (pre-1.0 storage slicing): the tensor's offset
# counts from the view; torch.load sees the same values.
class LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", obj.typ, obj.key, "cpu", obj.numel, obj.view)
        return None


def legacy_file(name, view):
    root = FakeStorage("100", 10)
    root.view = view
    body = io.BytesIO()
    LegacyPickler(body, protocol=2).dump({"v": FakeTensor(root, 1, (2,), (1,))})
    open(path(name), "wb").write(b"".join([
        pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2), pickle.dumps(1001, protocol=2),
        pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
        body.getvalue(), pickle.dumps(["100"], protocol=2), struct.pack("<q", 10),
        struct.pack("<10f", *range(10))]))


# A view key of its own: elements 4.. of the root; the root's own key: the
# root itself (torch keeps both in one dict by key).
for name, view, want in (("legacy_view.pt", ("v1", 4, 4), [5.0, 6.0]),
                         ("legacy_view_root.pt", ("100", 4, 4), [1.0, 2.0])):
    legacy_file(name, view)
    lv = torch.load(path(name))["v"]
    check(lv.tolist() == want, f"{name}: torch sees {lv.tolist()}")
    rc, out, err = run("convert", "-o", path(name + ".safetensors"), path(name))
    check(rc == 0 and read_safetensors(path(name + ".safetensors"))[0]["v"][1] == tensor_bytes(lv),
          f"{name}: converted bytes ({err.strip()})")
legacy_file("legacy_view_bad.pt", ("v1", 8, 4))  # runs past the root's 10 elements
expect_error("legacy_view_bad.pt", ["storage view is not (key, offset, size) inside its storage"])

whole = open(path("views_p2_zip.pt"), "rb").read()
open(path("truncated.pt"), "wb").write(whole[:len(whole) // 2])
expect_error("truncated.pt", ["truncated zip"])
# The ZIP64 end record's central directory offset pushed past the end, and
# the 32-bit end record disagreeing with it.
z64 = whole.rfind(b"PK\x06\x06")
bad = bytearray(whole)
bad[z64 + 48:z64 + 56] = struct.pack("<Q", len(whole) + 100)
eocd = whole.rfind(b"PK\x05\x06")
bad[eocd + 16:eocd + 20] = struct.pack("<I", len(whole) + 100)
open(path("cd_past.pt"), "wb").write(bytes(bad))
expect_error("cd_past.pt", ["outside the file"])
eocd = whole.rfind(b"PK\x05\x06")
bad = bytearray(whole)
bad[eocd + 16:eocd + 20] = struct.pack("<I", len(whole) + 100)
open(path("cd_disagree.pt"), "wb").write(bytes(bad))
expect_error("cd_disagree.pt", ["disagrees with the ZIP64"])
# A storage record's local header offset past the end.
cd = whole.rfind(b"PK\x01\x02")
bad = bytearray(whole)
bad[cd + 42:cd + 46] = struct.pack("<I", len(whole) + 5)
open(path("local_past.pt"), "wb").write(bytes(bad))
expect_error("local_past.pt", ["no local header"])
leg = open(path("views_p2_legacy.pt"), "rb").read()
open(path("legacy_cut.pt"), "wb").write(leg[:-10])
expect_error("legacy_cut.pt", ["truncated legacy file"])
open(path("legacy_pickle_cut.pt"), "wb").write(leg[:60])
expect_error("legacy_pickle_cut.pt", ["truncated pickle"])
# TorchScript archives are refused.
craft_zip("script.pt", {}, {})
with zipfile.ZipFile(path("script.pt"), "a") as z:
    z.writestr("archive/constants.pkl", b"\x80\x02).")
expect_error("script.pt", ["TorchScript"])
# An opcode outside the subset (INST, protocol 0).
open(path("proto0.pkl"), "wb").write(b"\x80\x02(i__main__\nX\n.")
expect_error("proto0.pkl", ["unsupported pickle opcode 0x69", "at offset 3"])

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
