"""Loading: safe_open, load_file, load_state_dict, DiskMap (zero-copy views of
libcellar's private copy-on-write mappings)."""
import os

from . import _cellar
from . import _dtypes


def _paths(path_or_list):
    if isinstance(path_or_list, (list, tuple)):
        return [os.fspath(p) for p in path_or_list]
    return [os.fspath(path_or_list)]


class _Views:
    """Tensors of an open _cellar.Model, built on its per-file buffers."""

    def __init__(self, model):
        self.model = model
        self.infos = model.infos()
        self.index = {info[0]: i for i, info in enumerate(self.infos)}
        self._bufs = {}

    def _buf(self, f):
        b = self._bufs.get(f)
        if b is None:
            b = self._bufs[f] = self.model.buffer(f)
        return b

    def find(self, name):
        i = self.index.get(name)
        if i is None:
            raise KeyError(f"tensor '{name}' not found in {', '.join(self.model.files())}")
        return i

    def _view(self, i, to_dtype, empty, frombuffer):
        name, dt, shape, nbytes, f, off = self.infos[i]
        d = to_dtype(dt)
        if nbytes == 0:
            return empty(shape, dtype=d)
        n = nbytes // _dtypes.elem_size(dt)
        return frombuffer(self._buf(f), dtype=d, count=n, offset=off).reshape(shape)

    def torch_view(self, i):
        import torch
        return self._view(i, _dtypes.to_torch, torch.empty, torch.frombuffer)

    def numpy_view(self, i):
        import numpy as np
        return self._view(i, _dtypes.to_numpy, np.empty, np.frombuffer)

    def torch_copy(self, i, torch_dtype=None, nthreads=0):
        """A fresh tensor (never aliasing the mapping), converted by libcellar
        when it can, else by torch."""
        import torch
        name, dt, shape, nbytes, f, off = self.infos[i]
        src = _dtypes.to_torch(dt)
        want = torch_dtype or src
        if want == src or (dt in _dtypes.CONVERTIBLE and want in _CONV_TARGETS()):
            t = torch.empty(shape, dtype=want)
            self.model.read_into([(i, t.data_ptr(), _dtypes.from_torch(want))], nthreads=nthreads)
            return t
        return self.torch_view(i).to(want)


def _CONV_TARGETS():
    import torch
    return (torch.float32, torch.float16, torch.bfloat16)


def _open(path_or_list, last_wins=False, component=None, allow_unknown=False):
    """A Model over files (safetensors or PyTorch checkpoints, whose pickle
    libcellar reads without running it), a shard folder or index, or (a
    .dduf path) one component of a DDUF archive, read in place."""
    paths = _paths(path_or_list)
    if len(paths) == 1 and (component is not None or paths[0].endswith(".dduf")):
        return _cellar.Model(dduf=paths[0], component=component or "", last_wins=last_wins)
    if component is not None:
        raise ValueError("component names a part of one .dduf file")
    return _cellar.Model(paths, last_wins=last_wins, allow_unknown=allow_unknown)


class _Slice:
    def __init__(self, views, i, framework):
        self._v, self._i, self._fw = views, i, framework

    def get_shape(self):
        return list(self._v.infos[self._i][2])

    def get_dtype(self):
        return self._v.infos[self._i][1]

    def __getitem__(self, idx):
        if self._fw == "pt":
            return self._v.torch_view(self._i)[idx].clone()
        import numpy as np
        return np.array(self._v.numpy_view(self._i)[idx], copy=True)


class safe_open:
    """safetensors' safe_open: keys() sorted, get_tensor, get_slice(name)[...],
    metadata(). Tensors are zero-copy views of a private copy-on-write mapping
    (writable; the file never changes) and stay valid after the file is closed.
    framework: "pt" (torch) or "np" (numpy; bf16 as uint16)."""

    def __init__(self, filename, framework="pt", device="cpu"):
        fw = {"pt": "pt", "torch": "pt", "pytorch": "pt", "np": "np", "numpy": "np"}.get(framework)
        if fw is None:
            raise ValueError(f"framework {framework!r} is not supported (pt or np)")
        if fw == "np" and str(device) != "cpu":
            raise ValueError("numpy tensors live on the cpu")
        self._fw = fw
        self._device = device
        self._v = _Views(_open(filename))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._v = None
        return False

    def _views(self):
        if self._v is None:
            raise ValueError("safe_open is closed")
        return self._v

    def keys(self):
        return [info[0] for info in self._views().infos]

    def offset_keys(self):
        v = self._views()
        return [info[0] for info in sorted(v.infos, key=lambda x: (x[4], x[5]))]

    def metadata(self):
        return self._views().model.metadata(0)

    def get_tensor(self, name):
        v = self._views()
        i = v.find(name)
        if self._fw == "np":
            return v.numpy_view(i)
        t = v.torch_view(i)
        return t if str(self._device) == "cpu" else t.to(self._device)

    def get_slice(self, name):
        v = self._views()
        return _Slice(v, v.find(name), self._fw)


def load_file(filename, device="cpu"):
    """safetensors.torch.load_file: every tensor, zero-copy, its pages read in
    across threads before returning."""
    v = _Views(_open(filename))
    v.model.populate()
    out = {info[0]: v.torch_view(i) for i, info in enumerate(v.infos)}
    if str(device) != "cpu":
        out = {k: t.to(device) for k, t in out.items()}
    return out


def load_state_dict(file_path, torch_dtype=None, device="cpu", pin_memory=False,
                    last_wins=False, nthreads=0, component=None, allow_unknown=False):
    """DiffSynth-Studio's load_state_dict over a file, a list of files, a shard
    folder or an index. Tensors in the dtype asked (or their own) are
    zero-copy views, made resident across threads; F32/F16/BF16 conversions
    are read and converted by libcellar across threads (round to nearest
    even, as torch); other conversions use torch's .to(). A name in two
    files is an error naming both, unless last_wins (DiffSynth's silent
    behaviour). A .dduf path loads one component (component="vae") in
    place from the archive.

    PyTorch checkpoints (.bin/.pt/.pth/.ckpt, known by content) are read by
    libcellar without running their pickle (never torch.load): the state
    dict's tensors (a Lightning 'state_dict' unwrapped), zero-copy where the
    view is contiguous, a non-contiguous view as a contiguous copy with the
    same values. A dangerous global (os.system...) is refused, and so is an
    object of an unknown class holding tensors unless allow_unknown
    (cellar.CellarError naming the global)."""
    import torch
    paths = _paths(file_path)
    v = _Views(_open(paths, last_wins=last_wins, component=component, allow_unknown=allow_unknown))
    out = {}
    zero, reads = [], []
    targets = _CONV_TARGETS()
    for i, (name, dt, shape, nbytes, f, off) in enumerate(v.infos):
        src = _dtypes.to_torch(dt)
        if torch_dtype is None or torch_dtype == src:
            out[name] = v.torch_view(i)
            zero.append(i)
        elif dt in _dtypes.CONVERTIBLE and torch_dtype in targets:
            t = torch.empty(shape, dtype=torch_dtype, pin_memory=bool(pin_memory))
            out[name] = t
            if t.numel():
                reads.append((i, t.data_ptr(), _dtypes.from_torch(torch_dtype)))
        else:
            out[name] = v.torch_view(i).to(torch_dtype)
    if zero:
        v.model.populate(zero, nthreads=nthreads)
    if reads:
        v.model.read_into(reads, nthreads=nthreads)
    if str(device) != "cpu":
        out = {k: t.to(device) for k, t in out.items()}
    elif pin_memory:
        out = {k: (t if t.is_pinned() else t.pin_memory()) for k, t in out.items()}
    return out


class DiskMap:
    """DiffSynth-Studio's DiskMap: headers only at open (a later file's name
    wins, as DiffSynth's name map does); a tensor's bytes are read on
    __getitem__ into fresh memory (never aliasing the file's mapping),
    converted to torch_dtype. state_dict_converter is run once on
    {name: name} and gives the rename table (new name -> stored name)."""

    def __init__(self, path, device="cpu", torch_dtype=None, state_dict_converter=None,
                 buffer_size=10**9, component=None, allow_unknown=False):
        self.path = _paths(path)
        self.device = device
        self.torch_dtype = torch_dtype
        self.buffer_size = buffer_size
        self._v = _Views(_open(self.path, last_wins=True, component=component,
                               allow_unknown=allow_unknown))
        self.name_map = {info[0]: info[4] for info in self._v.infos}
        self.rename_dict = None
        if state_dict_converter is not None:
            self.rename_dict = state_dict_converter({k: k for k in self.name_map})
        self.num_params = 0

    def __getitem__(self, name):
        if self.rename_dict is not None:
            name = self.rename_dict[name]
        i = self._v.find(name)
        t = self._v.torch_copy(i, self.torch_dtype)
        self.num_params += t.numel()
        if str(self.device) != "cpu":
            t = t.to(self.device)
        return t

    def keys(self):
        return list(self.rename_dict if self.rename_dict is not None else self.name_map)

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.rename_dict if self.rename_dict is not None else self.name_map)

    def __contains__(self, x):
        return x in (self.rename_dict if self.rename_dict is not None else self.name_map)

    def items(self):
        for k in self.keys():
            yield k, self[k]

    def values(self):
        for k in self.keys():
            yield self[k]
