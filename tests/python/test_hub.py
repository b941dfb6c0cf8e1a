"""ModelConfig and snapshot_download against the test Hub: only missing
blobs cross the wire, a shared component is one inode, skip-download makes
no request."""
import os

import pytest

import cellar
from conftest import tensor_bytes, torch

VAE = "vae/diffusion_pytorch_model.safetensors"


def test_model_config_shares_and_skips(hub, tmp_path, monkeypatch):
    base = tmp_path / "models"
    hub.reset()
    c1 = cellar.ModelConfig(model_id="pipe/one", origin_file_pattern="vae/")
    c1.download_if_necessary()
    assert c1.path == str(base / "pipe/one") + "/vae/"   # DiffSynth: glob of "vae/"
    assert (base / "pipe/one" / VAE).exists() and not (base / "pipe/one/unet").exists()
    assert hub.served() == os.path.getsize(hub.root / "pipe/one/main" / VAE) + \
        os.path.getsize(hub.root / "pipe/one/main/vae/config.json")
    sd = cellar.load_state_dict(c1.path + "diffusion_pytorch_model.safetensors")
    for k, v in hub.shared_vae.items():
        assert tensor_bytes(sd[k]) == tensor_bytes(v)

    hub.reset()
    c2 = cellar.ModelConfig(model_id="pipe/two", origin_file_pattern=VAE)
    c2.download_if_necessary()
    assert c2.path == str(base / "pipe/two" / VAE)
    assert hub.served() == 0                            # the store had it
    assert os.stat(c2.path).st_ino == os.stat(base / "pipe/one" / VAE).st_ino

    # No pattern: the whole repo, path is the folder.
    c3 = cellar.ModelConfig(model_id="pipe/two")
    c3.download_if_necessary()
    assert c3.path == str(base / "pipe/two")
    assert (base / "pipe/two/unet/diffusion_pytorch_model.safetensors").exists()

    # Skip download: no request at all; a missing file is a clear error.
    monkeypatch.setenv("DIFFSYNTH_SKIP_DOWNLOAD", "TRUE")
    hub.reset()
    before = hub.field("api")
    c4 = cellar.ModelConfig(model_id="pipe/one", origin_file_pattern=VAE)
    c4.download_if_necessary()
    assert c4.path == [str(base / "pipe/one" / VAE)][0]
    with pytest.raises(cellar.CellarNotFound, match="downloads are skipped"):
        cellar.ModelConfig(model_id="pipe/one", origin_file_pattern="unet/*.safetensors").download_if_necessary()
    assert hub.field("api") == before and hub.served() == 0
    # Explicit skip_download=False beats the environment.
    c5 = cellar.ModelConfig(model_id="pipe/one", origin_file_pattern="unet/*.safetensors",
                            skip_download=False)
    c5.download_if_necessary()
    assert c5.path == str(base / "pipe/one/unet/diffusion_pytorch_model.safetensors")
    # A given path is left alone.
    c6 = cellar.ModelConfig(path=["x"])
    c6.download_if_necessary()
    assert c6.path == "x"


def test_model_config_offline(hub, tmp_path, monkeypatch):
    """HF_HUB_OFFLINE=1: a repo an earlier download recorded is laid out
    again, in a fresh base, from the store alone, with no request."""
    cellar.ModelConfig(model_id="pipe/one", origin_file_pattern="vae/").download_if_necessary()
    base2 = tmp_path / "models-offline"
    monkeypatch.setenv("DIFFSYNTH_MODEL_BASE_PATH", str(base2))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.reset()
    before = hub.field("api")
    c = cellar.ModelConfig(model_id="pipe/one", origin_file_pattern="vae/")
    c.download_if_necessary()
    assert c.path == str(base2 / "pipe/one") + "/vae/"
    assert os.stat(base2 / "pipe/one" / VAE).st_ino == \
        os.stat(tmp_path / "models/pipe/one" / VAE).st_ino
    assert hub.field("api") == before and hub.served() == 0
    # A repo never downloaded: not found, and still no request.
    with pytest.raises(cellar.CellarNotFound):
        cellar.ModelConfig(model_id="pipe/two", origin_file_pattern="vae/").download_if_necessary()
    assert hub.field("api") == before


def test_snapshot_download(hub, tmp_path):
    hf = tmp_path / "hf"
    hub.reset()
    d1 = cellar.snapshot_download("pipe/one", cache_dir=str(hf))
    assert d1.startswith(str(hf / "models--pipe--one" / "snapshots"))
    assert sorted(os.path.relpath(os.path.join(r, f), d1) for r, _, fs in os.walk(d1) for f in fs) == \
        ["model_index.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json", VAE]
    hub.reset()
    d2 = cellar.snapshot_download("pipe/two", cache_dir=str(hf), allow_patterns=["vae/*"])
    assert hub.served(VAE) == 0
    assert os.stat(os.path.join(d1, VAE)).st_ino == os.stat(os.path.join(d2, VAE)).st_ino
    assert not os.path.exists(os.path.join(d2, "unet"))
    local = tmp_path / "local"
    d3 = cellar.snapshot_download("pipe/two", local_dir=str(local), ignore_patterns="unet/*")
    assert d3 == os.path.realpath(local)
    assert os.stat(local / VAE).st_ino == os.stat(os.path.join(d1, VAE)).st_ino
    assert not (local / "unet").exists()
    with pytest.raises(cellar.CellarNotFound):
        cellar.snapshot_download("pipe/missing", cache_dir=str(hf))


def test_env_folders_as_the_cli(monkeypatch, tmp_path):
    """The package asks libcellar for the store and HF cache folders, so it
    honours every variable the CLI does (HUGGINGFACE_HUB_CACHE,
    XDG_CACHE_HOME), in huggingface_hub's order."""
    from cellar import _hub
    for v in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "CELLAR_HOME"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _hub.hf_cache_dir() == str(tmp_path / "xdg/huggingface/hub")
    assert _hub.store_home() == str(tmp_path / "xdg/cellar")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfhome"))
    assert _hub.hf_cache_dir() == str(tmp_path / "hfhome/hub")
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(tmp_path / "old"))
    assert _hub.hf_cache_dir() == str(tmp_path / "old")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "new"))
    assert _hub.hf_cache_dir() == str(tmp_path / "new")
