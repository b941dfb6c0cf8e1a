"""cellar's loading functions against the independent reader/writer in
conftest.py: load_state_dict, safe_open, load_file, DiskMap."""
import hashlib
import os

import pytest

import cellar
from conftest import (from_bytes, make_tensors, np, st_read, tensor_bytes, torch, write_torch)


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and tensor_bytes(a) == tensor_bytes(b)


def file_digest(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


@pytest.mark.parametrize("how", ["folder", "index", "list", "file"])
def test_load_state_dict_zero_copy(shard_set, how):
    folder, want = shard_set
    shards = sorted(str(p) for p in folder.glob("*.safetensors"))
    arg = {"folder": str(folder), "index": str(folder / "model.safetensors.index.json"),
           "list": shards, "file": shards[0]}[how]
    sd = cellar.load_state_dict(arg)
    expect = {k: v for k, v in want.items() if how != "file" or k.startswith("a.")}
    assert list(sd) == sorted(expect)
    for k, v in expect.items():
        assert same(sd[k], v), k
    assert sd["a.w.bf16"].dtype == torch.bfloat16
    # Independent check of the bytes: the file's own.
    for p in shards if how != "file" else shards[:1]:
        tensors, meta = st_read(p)
        assert meta == {"format": "pt"}
        for name, (dt, shape, data) in tensors.items():
            assert tensor_bytes(sd[name]) == data


def test_in_place_ops_never_touch_the_file(shard_set):
    folder, want = shard_set
    before = {p: file_digest(p) for p in folder.glob("*.safetensors")}
    sd = cellar.load_state_dict(str(folder))
    for t in sd.values():
        if t.dtype.is_floating_point:
            t.mul_(3).add_(1)   # would SIGSEGV on a read-only mapping
    assert not same(sd["a.w.f32"], want["a.w.f32"])
    assert {p: file_digest(p) for p in folder.glob("*.safetensors")} == before
    again = cellar.load_state_dict(str(folder))
    assert same(again["a.w.f32"], want["a.w.f32"])


def test_views_share_the_mapping(shard_set):
    folder, want = shard_set
    with cellar.safe_open(str(folder / "model-00001-of-00002.safetensors")) as f:
        t1 = f.get_tensor("a.w.f32")
        t1[0, 0] = 1234.5
        t2 = f.get_tensor("a.w.f32")
    assert t2[0, 0].item() == 1234.5   # zero-copy: one private mapping
    del f
    assert t1.sum().item() == t2.sum().item()   # alive after the file is closed


def test_torch_dtype_conversions_match_torch(tmp_path):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(5000, generator=g) * torch.logspace(-30, 30, 5000)
    # Exact ties for both target formats.
    ties = torch.tensor([1 + 2**-11, 1 + 3 * 2**-11, 1 + 2**-8, 1 + 3 * 2**-8, 65520.0, 2**-25,
                         3 * 2**-25, -0.0, float("inf"), -float("inf")], dtype=torch.float32)
    ts = {"f32": torch.cat([x, ties]), "f16": (x.clamp(-6e4, 6e4)).half(),
          "bf16": x.to(torch.bfloat16), "i64": torch.arange(-5, 5), "b": torch.tensor([True, False])}
    p = tmp_path / "c.safetensors"
    write_torch(p, ts)
    for dt in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        sd = cellar.load_state_dict(str(p), torch_dtype=dt)
        for k, v in ts.items():
            assert sd[k].dtype == dt
            assert same(sd[k], v.to(dt)), (k, dt)


def test_duplicate_names_across_shards(tmp_path):
    write_torch(tmp_path / "one.safetensors", {"x": torch.ones(2), "y": torch.zeros(1)})
    write_torch(tmp_path / "two.safetensors", {"x": torch.full((3,), 7.0)})
    files = [str(tmp_path / "one.safetensors"), str(tmp_path / "two.safetensors")]
    with pytest.raises(cellar.CellarError) as e:
        cellar.load_state_dict(files)
    assert "one.safetensors" in str(e.value) and "two.safetensors" in str(e.value)
    assert "'x'" in str(e.value)
    sd = cellar.load_state_dict(files, last_wins=True)
    assert same(sd["x"], torch.full((3,), 7.0))
    # DiskMap: DiffSynth's name map, a later file wins.
    dm = cellar.DiskMap(files, "cpu")
    assert same(dm["x"], torch.full((3,), 7.0))


def test_index_naming_a_missing_shard(shard_set):
    folder, _ = shard_set
    os.remove(folder / "model-00002-of-00002.safetensors")
    with pytest.raises(cellar.CellarNotFound) as e:
        cellar.load_state_dict(str(folder))
    assert "model-00002-of-00002.safetensors" in str(e.value)
    assert isinstance(e.value, cellar.CellarError)


def test_truncated_file(tmp_path):
    p = tmp_path / "t.safetensors"
    write_torch(p, make_tensors(3))
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.truncate(size - 5)
    with pytest.raises(cellar.CellarError) as e:
        cellar.load_file(str(p))
    assert "t.safetensors" in str(e.value)
    with pytest.raises(cellar.CellarError):
        cellar.safe_open(str(p))


def test_safe_open(shard_set):
    folder, want = shard_set
    p = str(folder / "model-00002-of-00002.safetensors")
    indep, meta = st_read(p)
    with cellar.safe_open(p, framework="pt") as f:
        assert f.keys() == sorted(indep)
        assert f.metadata() == meta
        for k in f.keys():
            assert same(f.get_tensor(k), want[k])
        sl = f.get_slice("b.w.f32")
        assert sl.get_shape() == [7, 5] and sl.get_dtype() == "F32"
        assert same(sl[2:5, 1:], want["b.w.f32"][2:5, 1:].contiguous())
        assert same(sl[1], want["b.w.f32"][1].contiguous())
        with pytest.raises(KeyError):
            f.get_tensor("nope")
    with cellar.safe_open(p, framework="np") as f:
        bf = f.get_tensor("b.w.bf16")
        assert bf.dtype == np.uint16 and bf.tobytes() == indep["b.w.bf16"][2]
        m = f.get_tensor("b.mask.bool")
        assert m.dtype == np.bool_ and (m == want["b.mask.bool"].numpy()).all()
        assert (f.get_slice("b.ids.i64")[3:6] == want["b.ids.i64"][3:6].numpy()).all()
    with pytest.raises(ValueError):
        cellar.safe_open(p, framework="tf")


def test_load_file(shard_set):
    folder, want = shard_set
    p = str(folder / "model-00001-of-00002.safetensors")
    sd = cellar.load_file(p)
    indep, _ = st_read(p)
    assert sorted(sd) == sorted(indep)
    for k, (dt, shape, data) in indep.items():
        assert same(sd[k], from_bytes(dt, shape, data))


def test_diskmap_lazy_and_converting(shard_set):
    folder, want = shard_set
    dm = cellar.DiskMap(str(folder), "cpu", torch_dtype=torch.float16)
    assert set(dm) == set(want) and len(dm) == len(want)
    assert "a.w.f32" in dm and "zz" not in dm
    t = dm["a.w.f32"]
    assert same(t, want["a.w.f32"].half())
    assert same(dm["b.ids.i64"], want["b.ids.i64"].half())  # .to() on ints too, as DiffSynth
    # A copy: writing to it changes nothing seen later.
    t.fill_(0)
    assert same(dm["a.w.f32"], want["a.w.f32"].half())
    plain = cellar.DiskMap(str(folder), "cpu")
    u = plain["a.w.bf16"]
    assert same(u, want["a.w.bf16"])
    u.fill_(1)
    assert same(plain["a.w.bf16"], want["a.w.bf16"])
    # The converter is run once on {name: name}: new name -> stored name.
    conv = lambda sd: {"model." + k: v for k, v in sd.items() if k.startswith("a.")}
    r = cellar.DiskMap(str(folder), "cpu", state_dict_converter=conv)
    assert sorted(r.keys()) == sorted("model." + k for k in want if k.startswith("a."))
    assert same(r["model.a.w.f16"], want["a.w.f16"])


def test_load_state_dict_from_bin(tmp_path):
    ts = make_tensors(9)
    torch.save(ts, tmp_path / "w.bin")
    sd = cellar.load_state_dict(str(tmp_path / "w.bin"), torch_dtype=torch.float32)
    assert same(sd["w.f16"], ts["w.f16"].float())


def test_hash_model_file_and_identify(shard_set, tmp_path, monkeypatch):
    folder, want = shard_set
    entries = []
    for k, v in want.items():
        entries.append(k + ":" + "_".join(str(d) for d in v.shape))
        entries.append(k)
    expect = hashlib.md5(",".join(sorted(entries)).encode()).hexdigest()
    assert cellar.hash_model_file(str(folder)) == expect
    shards = sorted(str(p) for p in folder.glob("*.safetensors"))
    assert cellar.hash_model_file(shards) == expect
    assert cellar.hash_model_file(str(folder / "model.safetensors.index.json")) == expect
    names = hashlib.md5(",".join(sorted(want)).encode()).hexdigest()
    assert cellar.hash_model_file(shards, with_shape=False) == names
    data = tmp_path / "data"
    data.mkdir()
    (data / "registry.tsv").write_text("# test\n%s\tfam\tcomp\ta test model\n" % expect)
    monkeypatch.setenv("CELLAR_DATA_DIR", str(data))
    assert cellar.identify(str(folder)) == {"hash": expect, "family": "fam", "component": "comp",
                                            "description": "a test model"}
    assert cellar.identify(shards[:1]) is None


def test_model_hash(shard_set):
    folder, _ = shard_set
    p = str(folder / "model-00001-of-00002.safetensors")
    raw = open(p, "rb").read()
    assert cellar.model_hash(p, "sha256") == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert cellar.model_hash(p, "md5") == "md5:" + hashlib.md5(raw).hexdigest()
    assert cellar.model_hash(p).startswith("blake3:")
    assert len(cellar.model_hash(str(folder))) == len("blake3:") + 64
