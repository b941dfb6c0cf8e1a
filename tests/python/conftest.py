"""Shared helpers for the cellar package's tests: an independent safetensors
reader and writer (struct + json, nothing from cellar), generated shard
sets, and the test Hub."""
import json
import os
import struct
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ELEM = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "BOOL": 1, "U8": 1, "I32": 4, "F64": 8}
TORCH = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
         "I64": torch.int64, "BOOL": torch.bool, "U8": torch.uint8, "I32": torch.int32,
         "F64": torch.float64}


def st_read(path):
    """(tensors {name: (dtype, shape, bytes)}, metadata or None)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, h in header.items():
        a, b = h["data_offsets"]
        out[name] = (h["dtype"], tuple(h["shape"]), raw[base + a:base + b])
    return out, meta


def st_write(path, tensors, metadata=None):
    """tensors: {name: (dtype, shape, bytes)}, written in the given order."""
    header, off, blobs = {}, 0, []
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dt, shape, data) in tensors.items():
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def tensor_bytes(t):
    """Raw bytes of a tensor (bf16 included) without cellar."""
    t = t.contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        return t.view(torch.int16).numpy().tobytes()
    if t.dtype == torch.bool:
        return t.to(torch.uint8).numpy().tobytes()
    return t.numpy().tobytes()


def from_bytes(dt, shape, data):
    """A torch tensor from raw bytes, without cellar."""
    if dt in ("BF16", "F16"):
        a = np.frombuffer(data, dtype=np.int16).copy()
        return torch.from_numpy(a).view(TORCH[dt]).reshape(shape)
    if dt == "BOOL":
        return torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy()).to(torch.bool).reshape(shape)
    npdt = {"F32": np.float32, "I64": np.int64, "U8": np.uint8, "I32": np.int32, "F64": np.float64}[dt]
    return torch.from_numpy(np.frombuffer(data, dtype=npdt).copy()).reshape(shape)


def make_tensors(seed, prefix=""):
    g = torch.Generator().manual_seed(seed)
    ts = {
        prefix + "w.f32": torch.randn(7, 5, generator=g),
        prefix + "w.f16": torch.randn(33, generator=g).half(),
        prefix + "w.bf16": torch.randn(4, 9, generator=g).to(torch.bfloat16),
        prefix + "ids.i64": torch.randint(-2**40, 2**40, (11,), generator=g),
        prefix + "mask.bool": torch.rand(3, 3, generator=g) > 0.5,
        prefix + "scalar": torch.tensor(3.25),
        prefix + "empty": torch.zeros(0, 4),
    }
    return ts


def dtype_name(t):
    return {v: k for k, v in TORCH.items()}[t.dtype]


def write_torch(path, ts, metadata=None):
    st_write(path, {k: (dtype_name(v), tuple(v.shape), tensor_bytes(v)) for k, v in ts.items()},
             metadata)


@pytest.fixture
def shard_set(tmp_path):
    """A two-shard set with an index, written by the independent writer.
    Returns (folder, {name: tensor})."""
    a, b = make_tensors(1, "a."), make_tensors(2, "b.")
    write_torch(tmp_path / "model-00001-of-00002.safetensors", a, {"format": "pt"})
    write_torch(tmp_path / "model-00002-of-00002.safetensors", b, {"format": "pt"})
    wm = {k: "model-00001-of-00002.safetensors" for k in a}
    wm.update({k: "model-00002-of-00002.safetensors" for k in b})
    with open(tmp_path / "model.safetensors.index.json", "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, f)
    return tmp_path, {**a, **b}


class Hub:
    def __init__(self, root, tmp):
        self.proc = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/hub/hubserver.py"),
                                      str(root)], stdout=subprocess.PIPE, stderr=open(tmp / "hub.log", "w"))
        line = self.proc.stdout.readline()
        self.port = json.loads(line)["hub"]
        self.url = "http://127.0.0.1:%d" % self.port

    def stats(self, q=""):
        with urllib.request.urlopen(self.url + "/_stats" + q) as r:
            return r.read().decode()

    def served(self, suffix=""):
        return int(self.stats("?sum=" + suffix))

    def field(self, name):
        return int(self.stats("?field=" + name))

    def reset(self):
        self.stats("?reset=1")

    def control(self, **q):
        """A fault switched on (mode, count, match, rate) or cleared (clear=1)."""
        with urllib.request.urlopen(self.url + "/_control?" + urllib.parse.urlencode(q)) as r:
            r.read()

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """Two pipelines sharing a VAE on the test Hub; the environment pointed
    at it, a fresh store and a fresh model base."""
    root = tmp_path / "fx"
    shared_vae = make_tensors(7, "vae.")
    for name, unet_seed in (("one", 11), ("two", 12)):
        base = root / "pipe" / name / "main"
        (base / "vae").mkdir(parents=True)
        (base / "unet").mkdir(parents=True)
        write_torch(base / "vae" / "diffusion_pytorch_model.safetensors", shared_vae, {"format": "pt"})
        (base / "vae" / "config.json").write_text('{"latent_channels": 4}\n')
        write_torch(base / "unet" / "diffusion_pytorch_model.safetensors", make_tensors(unet_seed, "unet."),
                    {"format": "pt"})
        (base / "model_index.json").write_text(json.dumps({"_class_name": "P", "name": name}))
    h = Hub(root, tmp_path)
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("CELLAR_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("DIFFSYNTH_MODEL_BASE_PATH", str(tmp_path / "models"))
    monkeypatch.delenv("DIFFSYNTH_SKIP_DOWNLOAD", raising=False)
    h.root = root
    h.shared_vae = shared_vae
    yield h
    h.close()
