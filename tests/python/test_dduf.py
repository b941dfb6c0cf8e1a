"""DDUF helpers with huggingface_hub's names, and loading a component."""
import json
import zipfile

import pytest

import cellar
from conftest import make_tensors, st_read, tensor_bytes, torch, write_torch


def make_folder(root):
    (root / "vae").mkdir(parents=True)
    (root / "scheduler").mkdir()
    (root / "model_index.json").write_text(json.dumps({"_class_name": "P", "vae": ["d", "A"],
                                                       "scheduler": ["d", "S"]}))
    (root / "vae" / "config.json").write_text("{}")
    write_torch(root / "vae" / "diffusion_pytorch_model.safetensors", make_tensors(3, "v."))
    (root / "scheduler" / "scheduler_config.json").write_text('{"x": 1}')
    (root / "README.md").write_text("not taken")


def test_export_folder_and_read(tmp_path):
    make_folder(tmp_path / "pipe")
    out = tmp_path / "pipe.dduf"
    cellar.export_folder_as_dduf(str(out), str(tmp_path / "pipe"))
    entries = cellar.read_dduf_file(str(out))
    assert sorted(entries) == ["model_index.json", "scheduler/scheduler_config.json",
                               "vae/config.json", "vae/diffusion_pytorch_model.safetensors"]
    # Independent check with zipfile: names, offsets, bytes.
    with zipfile.ZipFile(out) as z:
        for info in z.infolist():
            e = entries[info.filename]
            assert e.length == info.file_size
            assert info.compress_type == zipfile.ZIP_STORED
            assert z.read(info.filename) == open(out, "rb").read()[e.offset:e.offset + e.length]
    assert entries["scheduler/scheduler_config.json"].read_text() == '{"x": 1}'
    with entries["vae/diffusion_pytorch_model.safetensors"].as_mmap() as mm:
        assert mm == (tmp_path / "pipe" / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    # A component loads straight from the archive, zero-copy.
    want = make_tensors(3, "v.")
    sd = cellar.load_state_dict(str(out), component="vae")
    assert list(sd) == sorted(want)
    raw = open(out, "rb").read()
    for k, v in want.items():
        assert tensor_bytes(sd[k]) == tensor_bytes(v)
    sd["v.w.f32"].add_(1)
    assert open(out, "rb").read() == raw
    dm = cellar.DiskMap(str(out), "cpu", torch_dtype=torch.float32, component="vae")
    assert tensor_bytes(dm["v.w.bf16"]) == tensor_bytes(want["v.w.bf16"].float())
    with pytest.raises(cellar.CellarNotFound, match="text_encoder"):
        cellar.load_state_dict(str(out), component="text_encoder")


def test_export_entries(tmp_path):
    make_folder(tmp_path / "pipe")
    st = tmp_path / "pipe" / "vae" / "diffusion_pytorch_model.safetensors"

    def gen():
        yield "model_index.json", (tmp_path / "pipe" / "model_index.json").read_bytes()
        yield "vae/config.json", b"{}"
        yield "vae/diffusion_pytorch_model.safetensors", str(st)
        yield "scheduler/scheduler_config.json", str(tmp_path / "pipe" / "scheduler" / "scheduler_config.json")

    out = tmp_path / "e.dduf"
    cellar.export_entries_as_dduf(str(out), gen())
    entries = cellar.read_dduf_file(str(out))
    assert list(entries) == ["model_index.json", "vae/config.json",
                             "vae/diffusion_pytorch_model.safetensors",
                             "scheduler/scheduler_config.json"]
    with entries["vae/diffusion_pytorch_model.safetensors"].as_mmap() as mm:
        assert mm == st.read_bytes()
    # A broken entry is refused and nothing is left behind.
    with pytest.raises(cellar.CellarError):
        cellar.export_entries_as_dduf(str(tmp_path / "bad.dduf"),
                                      [("model_index.json", b"{}"), ("x.safetensors", b"junk")])
    assert not (tmp_path / "bad.dduf").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cellar-dduf")] == []
