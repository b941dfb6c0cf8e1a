"""PyTorch checkpoints through cellar's loader: read by libcellar's pickle
reader, never by torch.load; compared with torch.load(weights_only=True)."""
import os
import pickle

import pytest

import cellar
from conftest import torch


def views_sd():
    torch.manual_seed(3)
    base = torch.randn(6, 8)
    tied = torch.randn(16, 4)
    return {
        "w": torch.randn(33, 17),
        "bf": torch.randn(40, 3).to(torch.bfloat16),
        "half": torch.randn(7).half(),
        "i": torch.arange(100, dtype=torch.int64),
        "flag": torch.tensor([True, False, True]),
        "tr": base.t(),
        "sl": base[1:4, 2:6],
        "row": base[2],
        "emb": tied,
        "head": tied,
        "tt1": tied.t(),
        "tt2": tied.t(),
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(2.5),
    }


@pytest.fixture(params=["zip", "legacy"])
def checkpoint(request, tmp_path):
    p = tmp_path / ("model.bin" if request.param == "zip" else "model.pt")
    torch.save(views_sd(), p, _use_new_zipfile_serialization=request.param == "zip")
    return str(p)


def assert_same(got, want):
    assert sorted(got) == sorted(want)
    for k, t in want.items():
        g = got[k]
        assert g.dtype == t.dtype, k
        assert g.shape == t.shape, k
        assert g.is_contiguous(), k
        assert torch.equal(g, t), k


def test_load_state_dict_matches_torch(checkpoint):
    want = torch.load(checkpoint, weights_only=True)
    sd = cellar.load_state_dict(checkpoint)
    assert_same(sd, want)
    assert sd["bf"].dtype == torch.bfloat16
    # Tied weights stay tied, as torch.load's share their storage.
    assert sd["emb"].data_ptr() == sd["head"].data_ptr()
    assert sd["tt1"].data_ptr() == sd["tt2"].data_ptr()


def test_never_calls_torch_load(checkpoint, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("torch.load called")
    monkeypatch.setattr(torch, "load", boom)
    sd = cellar.load_state_dict(checkpoint)
    assert "w" in sd
    m = torch.nn.Linear(17, 33, bias=False)
    torch.save({"weight": torch.ones(33, 17)}, checkpoint + ".lin.bin")
    r = cellar.load_torch_model(m, checkpoint + ".lin.bin")
    assert r.missing_keys == [] and torch.equal(m.weight, torch.ones(33, 17))
    cellar.DiskMap(checkpoint)["w"]


def test_dtype_conversion(checkpoint):
    want = torch.load(checkpoint, weights_only=True)
    sd = cellar.load_state_dict(checkpoint, torch_dtype=torch.float32)
    for k in ("w", "bf", "half", "tr", "sl"):
        assert sd[k].dtype == torch.float32
        assert torch.equal(sd[k], want[k].float()), k
    sd = cellar.load_state_dict(checkpoint, torch_dtype=torch.bfloat16)
    assert torch.equal(sd["tr"], want["tr"].to(torch.bfloat16))


def test_diskmap_and_safe_open(checkpoint):
    want = torch.load(checkpoint, weights_only=True)
    d = cellar.DiskMap(checkpoint, torch_dtype=torch.float16)
    assert sorted(d.keys()) == sorted(want)
    assert torch.equal(d["sl"], want["sl"].half())
    assert torch.equal(d["i"], want["i"])
    with cellar.safe_open(checkpoint) as f:
        assert f.metadata() is None
        assert torch.equal(f.get_tensor("tr"), want["tr"])
        assert torch.equal(f.get_slice("w")[2:5], want["w"][2:5])


def test_lightning_state_dict(tmp_path):
    inner = {"model.a": torch.randn(4, 5), "model.b": torch.randn(5).to(torch.bfloat16)}
    p = tmp_path / "last.ckpt"
    torch.save({"state_dict": inner, "epoch": 3, "optimizer_states": []}, p)
    assert_same(cellar.load_state_dict(str(p)), inner)


def test_mixed_with_safetensors_and_hash(tmp_path):
    a = {"x.w": torch.randn(3, 2)}
    b = {"y.w": torch.randn(4)}
    torch.save(a, tmp_path / "a.bin")
    cellar.save_file(b, str(tmp_path / "b.safetensors"))
    sd = cellar.load_state_dict([str(tmp_path / "a.bin"), str(tmp_path / "b.safetensors")])
    assert_same(sd, {**a, **b})
    # The hash of a checkpoint is that of the same tensors in safetensors.
    cellar.save_file(a, str(tmp_path / "a.safetensors"))
    assert (cellar.hash_model_file(str(tmp_path / "a.bin")) ==
            cellar.hash_model_file(str(tmp_path / "a.safetensors")))
    torch.save(a, tmp_path / "dup.bin")
    with pytest.raises(cellar.CellarError, match="in both"):
        cellar.load_state_dict([str(tmp_path / "a.bin"), str(tmp_path / "dup.bin")])


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


def test_malicious_checkpoint_refused(tmp_path):
    marker = str(tmp_path / "PWNED")
    p = tmp_path / "evil.bin"
    torch.save({"w": torch.ones(2), "x": Payload(marker)}, p)
    for load in (cellar.load_state_dict, cellar.DiskMap, cellar.safe_open, cellar.identify):
        with pytest.raises(cellar.CellarError, match=r"dangerous global posix\.system"):
            load(str(p))
    # Hashing reads names and shapes only: allowed, and runs nothing.
    assert len(cellar.hash_model_file(str(p))) == 32
    with pytest.raises(cellar.CellarError, match="system"):
        cellar.load_torch_model(torch.nn.Linear(1, 1), str(p))
    assert not os.path.exists(marker)
    # A bare pickle with the payload, too.
    q = tmp_path / "evil.pt"
    with open(q, "wb") as f:
        pickle.dump({"x": Payload(marker)}, f, protocol=2)
    with pytest.raises(cellar.CellarError, match="system"):
        cellar.load_state_dict(str(q))
    assert not os.path.exists(marker)


class Box:
    def __init__(self):
        self.t = torch.ones(3)


def test_unknown_global(tmp_path):
    p = tmp_path / "box.bin"
    torch.save({"w": torch.ones(2), "box": Box()}, p)
    with pytest.raises(cellar.CellarError, match="Box"):
        cellar.load_state_dict(str(p))
    sd = cellar.load_state_dict(str(p), allow_unknown=True)
    assert list(sd) == ["w"]


def test_diffusers_folder_with_bins(tmp_path):
    """Components whose weights are diffusion_pytorch_model.bin (diffusers'
    fallback without safetensors) are seen by identify and the hash."""
    import json
    import subprocess
    root = tmp_path / "pipe"
    (root / "vae").mkdir(parents=True)
    (root / "unet").mkdir()
    (root / "model_index.json").write_text(json.dumps({"_class_name": "X"}))
    vae = {"decoder.w": torch.randn(4, 3)}
    unet = {"conv.w": torch.randn(2, 2)}
    torch.save(vae, root / "vae" / "diffusion_pytorch_model.bin")
    torch.save(unet, root / "unet" / "diffusion_pytorch_model.bin")
    cellar.save_file(unet, str(root / "unet" / "diffusion_pytorch_model.fp16.safetensors"))
    cellar.save_file(vae, str(tmp_path / "vae.safetensors"))
    want = cellar.hash_model_file(str(tmp_path / "vae.safetensors"))
    assert cellar.hash_model_file(str(root / "vae" / "diffusion_pytorch_model.bin")) == want
    ident = cellar.identify(str(root), full=True)
    assert ident["components"], ident
    p = subprocess.run([os.environ["CELLAR_BIN"], "hash", "-a", "structural", str(root)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lines = dict(reversed(line.split("  ", 1)) for line in p.stdout.splitlines())
    assert lines[str(root / "vae" / "diffusion_pytorch_model.bin")] == want
    # A transformers-style folder holding only pytorch_model.bin.
    (tmp_path / "tf").mkdir()
    torch.save(vae, tmp_path / "tf" / "pytorch_model.bin")
    p = subprocess.run([os.environ["CELLAR_BIN"], "hash", "-a", "structural", str(tmp_path / "tf")],
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.split()[0] == want, p.stderr
    p = subprocess.run([os.environ["CELLAR_BIN"], "inspect", "--json", str(root)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    comps = {c["component"]: c for c in json.loads(p.stdout)["components"]}
    assert comps["vae"]["format"] == "pytorch" and comps["vae"]["structural_hash"] == want
    assert comps["vae"]["tensors"] == 1


def test_transformers_folder_and_load_torch_model(tmp_path, monkeypatch):
    m = torch.nn.Linear(3, 2)
    torch.save(m.state_dict(), tmp_path / "pytorch_model.bin")
    monkeypatch.setattr(torch, "load", lambda *a, **k: (_ for _ in ()).throw(AssertionError("torch.load")))
    sd = cellar.load_state_dict(str(tmp_path))
    assert_same(sd, m.state_dict())
    m2 = torch.nn.Linear(3, 2)
    r = cellar.load_torch_model(m2, str(tmp_path), safe=False, strict=True)
    assert not r.missing_keys and torch.equal(m2.weight, m.weight)
