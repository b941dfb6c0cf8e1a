"""save_file, save_torch_state_dict and load_torch_model against the
independent reader and huggingface_hub's rules."""
import json
import os

import pytest

import cellar
from conftest import from_bytes, make_tensors, st_read, tensor_bytes, torch


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and tensor_bytes(a) == tensor_bytes(b)


def test_save_file_read_independently(tmp_path):
    ts = make_tensors(4)
    p = tmp_path / "s.safetensors"
    cellar.save_file(ts, str(p), metadata={"hello": "world"})
    got, meta = st_read(p)
    assert meta == {"format": "pt", "hello": "world"}
    assert sorted(got) == sorted(ts)
    for k, (dt, shape, data) in got.items():
        assert same(from_bytes(dt, shape, data), ts[k]), k
    # Round trip through cellar, and numpy input.
    import numpy as np
    cellar.save_file({"a": np.arange(6, dtype=np.int32).reshape(2, 3)}, str(tmp_path / "n.safetensors"))
    got, _ = st_read(tmp_path / "n.safetensors")
    assert got["a"][0] == "I32" and got["a"][1] == (2, 3)


def test_save_file_refuses_shared_and_strided(tmp_path):
    w = torch.randn(4, 4)
    with pytest.raises(RuntimeError, match="share memory"):
        cellar.save_file({"a": w, "b": w}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ValueError, match="non contiguous"):
        cellar.save_file({"a": w.t()}, str(tmp_path / "x.safetensors"))
    assert not (tmp_path / "x.safetensors").exists()


def test_tied_weights_and_single_file(tmp_path):
    w = torch.randn(3, 3)
    sd = {"lm_head.weight": w, "embed.weight": w, "z.bias": torch.randn(3)}
    cellar.save_torch_state_dict(sd, str(tmp_path), metadata={"note": "x"})
    got, meta = st_read(tmp_path / "model.safetensors")
    assert sorted(got) == ["embed.weight", "z.bias"]   # alphabetically first complete name
    assert meta == {"format": "pt", "note": "x", "lm_head.weight": "embed.weight"}
    assert not (tmp_path / "model.safetensors.index.json").exists()
    # shared_tensors_to_discard moves the choice.
    cellar.save_torch_state_dict(sd, str(tmp_path / "d"), shared_tensors_to_discard=["embed.weight"])
    got, meta = st_read(tmp_path / "d" / "model.safetensors")
    assert "lm_head.weight" in got and meta["embed.weight"] == "lm_head.weight"


def test_shards_and_index(tmp_path):
    # 126 float32 = 504 bytes each: "1KB" is 1000 bytes (two do not fit),
    # "1KiB" would hold two.
    sd = {"t%d" % i: torch.full((126,), float(i)) for i in range(5)}
    sd["big"] = torch.zeros(400)  # 1600 bytes: a shard of its own
    sd = {k: sd[k] for k in ["t0", "t1", "big", "t2", "t3", "t4"]}
    (tmp_path / "model-00009-of-00009.safetensors").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("x")
    cellar.save_torch_state_dict(sd, str(tmp_path), max_shard_size="1KB", metadata={"m": "v"})
    assert not (tmp_path / "model-00009-of-00009.safetensors").exists()
    assert (tmp_path / "keep.txt").exists()
    idx = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    # Insertion order, each 504 > 1000 - 504; "big" becomes a shard at once
    # while t1's shard stays open (huggingface_hub's factory): t0 | big | t1 ...
    n = 6
    names = ["model-%05d-of-%05d.safetensors" % (i + 1, n) for i in range(n)]
    assert idx["weight_map"] == dict(zip(["t0", "big", "t1", "t2", "t3", "t4"], names))
    assert idx["metadata"] == {"total_size": 5 * 504 + 1600, "m": "v"}
    for name in names:
        _, meta = st_read(tmp_path / name)
        assert meta == {"format": "pt"}   # user metadata only when one file
    with open(tmp_path / "model.safetensors.index.json") as f:
        assert f.read() == json.dumps(idx, indent=2)
    split = cellar.split_torch_state_dict_into_shards(sd, max_shard_size="5GB")
    assert not split.is_sharded
    assert cellar.split_torch_state_dict_into_shards(sd, max_shard_size=2 * 504).is_sharded
    loaded = cellar.load_state_dict(str(tmp_path))
    for k, v in sd.items():
        assert same(loaded[k], v)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(8, 16)
        self.b = torch.nn.Linear(16, 4)


def test_load_torch_model(tmp_path):
    torch.manual_seed(0)
    src = Net()
    cellar.save_torch_model(src, str(tmp_path), max_shard_size=300)
    assert (tmp_path / "model.safetensors.index.json").exists()
    dst = Net()
    r = cellar.load_torch_model(dst, str(tmp_path), strict=True)
    assert r.missing_keys == [] and r.unexpected_keys == []
    for k, v in src.state_dict().items():
        assert same(dst.state_dict()[k], v)

    class Bigger(Net):
        def __init__(self):
            super().__init__()
            self.c = torch.nn.Linear(2, 2)

    with pytest.raises(RuntimeError, match="Missing key"):
        cellar.load_torch_model(Bigger(), str(tmp_path), strict=True)
    r = cellar.load_torch_model(Bigger(), str(tmp_path))
    assert r.missing_keys == ["c.bias", "c.weight"]
    # One file.
    single = tmp_path / "one"
    cellar.save_torch_model(src, str(single))
    dst = Net()
    cellar.load_torch_model(dst, str(single))
    assert same(dst.a.weight.detach(), src.a.weight.detach())
    with pytest.raises(ValueError):
        cellar.load_torch_model(Net(), str(tmp_path / "nothing-here"))
