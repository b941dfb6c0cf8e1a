"""Saving (safetensors' save_file, huggingface_hub's save_torch_state_dict)
and huggingface_hub's load_torch_model."""
import json
import os
import re
from collections import defaultdict, namedtuple

from . import _cellar
from . import _dtypes

SAFETENSORS_PATTERN = "model{suffix}.safetensors"
PYTORCH_PATTERN = "pytorch_model{suffix}.bin"
MAX_SHARD_SIZE = "5GB"


def _is_torch(t):
    try:
        import torch
    except ImportError:
        return False
    return isinstance(t, torch.Tensor)


def _storage(t):
    s = t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()
    return s


def storage_ptr(t):
    try:
        return _storage(t).data_ptr()
    except Exception:
        return 0


def get_torch_storage_size(t):
    try:
        s = _storage(t)
        return s.nbytes() if hasattr(s, "nbytes") else s.size() * t.element_size()
    except NotImplementedError:
        return t.nelement() * t.element_size()


def get_torch_storage_id(t):
    if t.device.type == "meta":
        return None
    return (t.device, storage_ptr(t), get_torch_storage_size(t))


def _item(name, t):
    if _is_torch(t):
        if t.layout != __import__("torch").strided:
            raise ValueError(f"You are trying to save a sparse tensor: `{name}` which this library does not support.")
        if not t.is_contiguous():
            raise ValueError(f"You are trying to save a non contiguous tensor: `{name}` which is not allowed. It either means you are trying to save tensors which are reference of each other in which case it's recommended to save only the full tensors, and reslice at load time, or simply call `.contiguous()` on your tensor to pack it before saving.")
        if t.device.type != "cpu":
            t = t.to("cpu")
        dt = _dtypes.from_torch(t.dtype)
        return t, (name, dt, list(t.shape), t.data_ptr(), t.numel() * t.element_size())
    import numpy as np
    a = np.ascontiguousarray(t)
    dt = _dtypes.from_numpy(a.dtype)
    return a, (name, dt, list(a.shape), a.ctypes.data, a.nbytes)


def _shared_groups(tensors):
    groups = defaultdict(set)
    for k, v in tensors.items():
        if _is_torch(v) and v.device.type != "meta":
            groups[(storage_ptr(v), v.device)].add(k)
    return [g for g in groups.values() if len(g) > 1]


def save_file(tensors, filename, metadata=None):
    """safetensors.torch.save_file (also takes numpy arrays): the canonical
    layout, written atomically. Tensors sharing memory are refused, as
    safetensors does. One difference: the header always holds
    "format": "pt" unless metadata sets "format" (libcellar's writer)."""
    if not isinstance(tensors, dict):
        raise ValueError(f"Expected a dict of [str, torch.Tensor] but received {type(tensors)}")
    shared = _shared_groups(tensors)
    if shared:
        raise RuntimeError(
            f"Some tensors share memory, this will lead to duplicate memory on disk and potential differences when loading them again: {shared}.\n"
            "A potential way to correctly save your model is to use `save_model`.\n"
            "More information at https://huggingface.co/docs/safetensors/torch_shared_tensors")
    keep, items = [], []
    for name, t in tensors.items():
        if not isinstance(name, str):
            raise ValueError(f"Key `{name}` is invalid, expected str but received {type(name)}")
        obj, it = _item(name, t)
        keep.append(obj)
        items.append(it)
    _cellar.save_file(os.fspath(filename), items, metadata)
    del keep


# ---- huggingface_hub's shared-tensor rules ---------------------------------

def _end_ptr(t):
    if t.nelement():
        return t.view(-1)[-1].data_ptr() + t.element_size()
    return t.data_ptr()


def _filter_shared_not_shared(groups, state_dict):
    out = []
    for shared in groups:
        if len(shared) < 2:
            out.append(shared)
            continue
        areas = sorted((state_dict[n].data_ptr(), _end_ptr(state_dict[n]), n) for n in shared)
        _, last_stop, last_name = areas[0]
        out.append({last_name})
        for start, stop, name in areas[1:]:
            if start >= last_stop:
                out.append({name})
            else:
                out[-1].add(name)
            last_stop = stop
    return out


def _find_shared_tensors(state_dict):
    import torch
    groups = defaultdict(set)
    for k, v in state_dict.items():
        if v.device != torch.device("meta") and storage_ptr(v) != 0 and get_torch_storage_size(v) != 0:
            groups[(v.device, storage_ptr(v), get_torch_storage_size(v))].add(k)
    return _filter_shared_not_shared(list(sorted(groups.values(), key=sorted)), state_dict)


def _is_complete(t):
    return t.data_ptr() == storage_ptr(t) and t.nelement() * t.element_size() == get_torch_storage_size(t)


def _remove_duplicate_names(state_dict, *, preferred_names=None, discard_names=None):
    preferred = set(preferred_names or [])
    discard = set(discard_names or [])
    to_remove = defaultdict(list)
    for shared in _find_shared_tensors(state_dict):
        complete = {n for n in shared if _is_complete(state_dict[n])}
        if not complete:
            raise RuntimeError(
                "Error while trying to find names to remove to save state dict, but found no suitable name to keep"
                f" for saving amongst: {shared}. None is covering the entire storage. Refusing to save/load the model"
                " since you could be storing much more memory than needed. Please refer to"
                " https://huggingface.co/docs/safetensors/torch_shared_tensors for more information. Or open an"
                " issue.")
        keep = sorted(complete)[0]
        p = complete.difference(discard)
        if p:
            keep = sorted(p)[0]
        if preferred:
            p = preferred.intersection(complete)
            if p:
                keep = sorted(p)[0]
        for name in sorted(shared):
            if name != keep:
                to_remove[keep].append(name)
    return to_remove


def _clean_state_dict_for_safetensors(state_dict, metadata, force_contiguous=True,
                                      shared_tensors_to_discard=None):
    to_removes = _remove_duplicate_names(state_dict, discard_names=shared_tensors_to_discard)
    state_dict = dict(state_dict)
    for kept, group in to_removes.items():
        for name in group:
            if metadata is not None and name not in metadata:
                metadata[name] = kept
            del state_dict[name]
    if force_contiguous:
        state_dict = {k: v.contiguous() for k, v in state_dict.items()}
    return state_dict


StateDictSplit = namedtuple("StateDictSplit", "is_sharded metadata filename_to_tensors tensor_to_filename")


def _parse_size(size):
    if isinstance(size, int):
        return size
    return _cellar.parse_size(size)


def split_torch_state_dict_into_shards(state_dict, *, filename_pattern=SAFETENSORS_PATTERN,
                                       max_shard_size=MAX_SHARD_SIZE):
    """huggingface_hub's split_state_dict_into_shards_factory: insertion order,
    a tensor over the limit alone, a shard closed when current + size > max,
    tensors sharing storage follow the first one's shard uncounted."""
    max_size = _parse_size(max_shard_size)
    shards, current, current_size, total = [], {}, 0, 0
    by_storage = {}
    for key, t in state_dict.items():
        if isinstance(t, str):
            continue
        sid = get_torch_storage_id(t)
        if sid is not None:
            if sid in by_storage:
                by_storage[sid].append(key)
                continue
            by_storage[sid] = [key]
        size = get_torch_storage_size(t)
        if size > max_size:
            total += size
            shards.append({key: t})
            continue
        if current_size + size > max_size:
            shards.append(current)
            current, current_size = {}, 0
        current[key] = t
        current_size += size
        total += size
    if current:
        shards.append(current)
    for keys in by_storage.values():
        for shard in shards:
            if keys[0] in shard:
                for k in keys:
                    shard[k] = state_dict[k]
                break
    if len(shards) == 1:
        name = filename_pattern.format(suffix="")
        return StateDictSplit(False, {"total_size": total}, {name: list(state_dict.keys())},
                              {k: name for k in state_dict.keys()})
    t2f, f2t = {}, {}
    for i, shard in enumerate(shards):
        name = filename_pattern.format(suffix=f"-{i + 1:05d}-of-{len(shards):05d}")
        for k in shard:
            t2f[k] = name
    for k, name in t2f.items():
        f2t.setdefault(name, []).append(k)
    return StateDictSplit(True, {"total_size": total}, f2t, t2f)


def save_torch_state_dict(state_dict, save_directory, *, filename_pattern=None,
                          force_contiguous=True, max_shard_size=MAX_SHARD_SIZE, metadata=None,
                          safe_serialization=True, is_main_process=True,
                          shared_tensors_to_discard=None):
    """huggingface_hub's save_torch_state_dict: tied weights stored once under
    the alphabetically first complete name (dropped names recorded in the
    metadata), shards of at most max_shard_size ("5GB" = 5e9 bytes) with
    model.safetensors.index.json, earlier shard files removed."""
    import torch
    save_directory = os.fspath(save_directory)
    if filename_pattern is None:
        filename_pattern = SAFETENSORS_PATTERN if safe_serialization else PYTORCH_PATTERN
    if metadata is None:
        metadata = {}
    else:
        metadata = dict(metadata)
    if safe_serialization:
        state_dict = _clean_state_dict_for_safetensors(
            state_dict, metadata, force_contiguous=force_contiguous,
            shared_tensors_to_discard=shared_tensors_to_discard)
    split = split_torch_state_dict_into_shards(state_dict, filename_pattern=filename_pattern,
                                               max_shard_size=max_shard_size)
    if not is_main_process:
        return
    os.makedirs(save_directory, exist_ok=True)
    existing = re.compile(filename_pattern.format(suffix=r"(-\d{5}-of-\d{5})?") + r"(\.index\.json)?")
    for name in os.listdir(save_directory):
        if existing.match(name):
            try:
                os.remove(os.path.join(save_directory, name))
            except OSError:
                pass
    per_file = {"format": "pt"}
    if not split.is_sharded:
        per_file.update(metadata)
    for name, keys in split.filename_to_tensors.items():
        shard = {k: state_dict[k] for k in keys}
        path = os.path.join(save_directory, name)
        if safe_serialization:
            save_file(shard, path, metadata=per_file)
        else:
            torch.save(shard, path)
    if split.is_sharded:
        index = {"metadata": {**split.metadata, **metadata}, "weight_map": split.tensor_to_filename}
        with open(os.path.join(save_directory, filename_pattern.format(suffix="") + ".index.json"), "w") as f:
            json.dump(index, f, indent=2)


def save_torch_model(model, save_directory, **kwargs):
    save_torch_state_dict(model.state_dict(), save_directory, **kwargs)


def load_state_dict_from_file(checkpoint_file, map_location=None, weights_only=False, mmap=False):
    from ._load import load_file
    import torch
    p = os.fspath(checkpoint_file)
    if p.endswith(".safetensors"):
        from ._load import safe_open
        with safe_open(p) as f:
            md = f.metadata()
        if md is None or md.get("format") not in ("pt", "mlx"):
            raise OSError(f"The safetensors archive passed at {p} does not contain the valid metadata. "
                          "Make sure you save your model with the `save_torch_model` method.")
        return load_file(p, device=map_location or "cpu")
    # A PyTorch checkpoint: read by libcellar, never unpickled (weights_only
    # is always in force, stricter than torch's).
    return load_file(p, device=map_location or "cpu")


IncompatibleKeys = namedtuple("IncompatibleKeys", "missing_keys unexpected_keys")


def _index_file_safe(name):
    return not (os.path.isabs(name) or ".." in name.replace("\\", "/").split("/") or
                name.startswith("/") or re.match(r"^[A-Za-z]:", name))


def load_torch_model(model, checkpoint_path, *, strict=False, safe=True, weights_only=False,
                     map_location=None, mmap=False, filename_pattern=None):
    """huggingface_hub's load_torch_model: a file, or a folder with
    model.safetensors or model.safetensors.index.json (shards named there
    must stay in the folder). strict checks the keys against the model first
    (RuntimeError). Returns (missing_keys, unexpected_keys)."""
    p = os.fspath(checkpoint_path)
    if os.path.isfile(p):
        sd = load_state_dict_from_file(p, map_location=map_location, weights_only=weights_only)
        r = model.load_state_dict(sd, strict=strict)
        return IncompatibleKeys(list(r.missing_keys), list(r.unexpected_keys))
    if filename_pattern is None:
        filename_pattern = SAFETENSORS_PATTERN if safe else PYTORCH_PATTERN
    index = os.path.join(p, filename_pattern.format(suffix="") + ".index.json")
    single = os.path.join(p, filename_pattern.format(suffix=""))
    if os.path.isfile(index):
        with open(index) as f:
            idx = json.load(f)
        weight_map = idx.get("weight_map", {})
        shards = sorted(set(weight_map.values()))
        for s in shards:
            if not _index_file_safe(s):
                raise ValueError(f"Invalid shard file name in index: {s}")
        model_keys = set(model.state_dict().keys())
        loaded = set(weight_map.keys())
        missing = sorted(model_keys - loaded)
        unexpected = sorted(loaded - model_keys)
        if strict and (missing or unexpected):
            msg = f"Error(s) in loading state_dict for {model.__class__.__name__}:"
            if missing:
                msg += "\nMissing key(s): " + ", ".join(f'"{k}"' for k in missing) + "."
            if unexpected:
                msg += "\nUnexpected key(s): " + ", ".join(f'"{k}"' for k in unexpected) + "."
            raise RuntimeError(msg)
        for s in shards:
            sd = load_state_dict_from_file(os.path.join(p, s), map_location=map_location,
                                           weights_only=weights_only)
            model.load_state_dict(sd, strict=False)
            del sd
        return IncompatibleKeys(missing, unexpected)
    if os.path.isfile(single):
        return load_torch_model(model, single, strict=strict, weights_only=weights_only,
                                map_location=map_location)
    raise ValueError(f"Could not find checkpoint file '{filename_pattern.format(suffix='')}' or its "
                     f"index in '{p}'.")
