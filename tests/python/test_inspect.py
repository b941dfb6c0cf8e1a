"""cellar.inspect(path, tensors=False): the dict `cellar inspect --json`
prints, built by libcellar's cellar_inspect() (issue 13)."""
import json
import os
import struct
import subprocess

import pytest

import cellar


def write(path, tensors, meta=None):
    """A safetensors file: name -> (dtype, shape), zero bytes."""
    size = {"F32": 4, "F16": 2}
    hdr, at = {"__metadata__": dict({"format": "pt"}, **(meta or {}))}, 0
    for name, (dt, shape) in tensors.items():
        n = size[dt]
        for d in shape:
            n *= d
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [at, at + n]}
        at += n
    h = json.dumps(hdr).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + bytes(at))
    return str(path)


def test_file(tmp_path):
    p = write(tmp_path / "m.safetensors",
              {"a.weight": ("F32", [2, 3]), "a.bias": ("F16", [2]), "scale": ("F32", [])},
              {"origin": "test\x1b[2J"})
    r = cellar.inspect(p)
    assert r["format"] == "safetensors" and r["path"] == p
    assert (r["tensors"], r["parameters"], r["tensor_bytes"]) == (3, 9, 32)
    c, = r["components"]
    assert c["component"] == "" and c["structural_hash"] == "cdf0726fd23f31be0c8f82e838646a79"
    assert c["dtypes"] == {"F16": {"tensors": 1, "bytes": 4}, "F32": {"tensors": 2, "bytes": 28}}
    assert c["metadata"] == {"format": "pt", "origin": "test\x1b[2J"}
    assert c["model"]["kind"] == "unknown" and "tensor_list" not in c
    rows = cellar.inspect(p, tensors=True)["components"][0]["tensor_list"]
    assert {t["name"]: (t["dtype"], t["shape"], t["bytes"]) for t in rows} == {
        "a.weight": ("F32", [2, 3], 24), "a.bias": ("F16", [2], 4), "scale": ("F32", [], 4)}
    # Offsets point at the bytes in the file.
    raw = open(p, "rb").read()
    start = 8 + struct.unpack("<Q", raw[:8])[0]
    assert min(t["offset"] for t in rows) == start


def test_same_as_cli(tmp_path):
    """The binding and `cellar inspect --json` print the same tree."""
    d = tmp_path / "pipe"
    (d / "vae").mkdir(parents=True)
    (d / "unet").mkdir()
    (d / "model_index.json").write_text('{"vae": ["diffusers", "AutoencoderKL"]}')
    write(d / "vae" / "diffusion_pytorch_model.safetensors", {"w": ("F32", [4])})
    write(d / "unet" / "diffusion_pytorch_model.safetensors", {"x": ("F16", [2, 2])})
    r = cellar.inspect(d, tensors=True)
    assert r["format"] == "diffusers" and [c["component"] for c in r["components"]] == ["unet", "vae"]
    out = subprocess.run([os.environ["CELLAR_BIN"], "inspect", "--json", "--tensors", str(d)],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == r


def test_invalid(tmp_path):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(b"abc")
    with pytest.raises(cellar.CellarError, match="header too small"):
        cellar.inspect(p)
    with pytest.raises(cellar.CellarNotFound):
        cellar.inspect(tmp_path / "missing.safetensors")
