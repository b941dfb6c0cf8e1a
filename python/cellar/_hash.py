"""Hashes: DiffSynth's structural hash, the registry, InvokeAI's model hash."""
import os

from . import _cellar


def _registry():
    d = os.environ.get("CELLAR_DATA_DIR")
    if d:
        return os.path.join(d, "registry.tsv")
    return None


def hash_model_file(path, with_shape=True):
    """DiffSynth-Studio's hash_model_file: md5 of the sorted "name:d0_d1" and
    "name" entries of a file, a shard set, an index or a list of files."""
    if not with_shape:
        import hashlib
        from ._load import _open
        names = sorted(info[0] for info in _open(path, last_wins=True).infos())
        return hashlib.md5(",".join(names).encode("utf-8")).hexdigest()
    if isinstance(path, (list, tuple)):
        from ._load import _open
        return _open(path, last_wins=True).identify(lookup=False)[0]
    # A PyTorch checkpoint too: read by libcellar, never unpickled.
    return _cellar.structural_hash(os.fspath(path))


def identify(path, full=False):
    """The registry entry of a model's structural hash, as a dict (hash,
    family, component, description), or None when unknown.

    full=True: what the file is, as `cellar inspect --json` says it (text,
    kind, base, variant, component, layout, precision, evidence, confidence,
    registry meanings, group hashes, lora {format, rank, alpha, targets},
    a pipeline's components), for a file, shard set, diffusers folder, DDUF
    or GGUF path; never None ("unknown" is a kind)."""
    if full:
        return _cellar.identify_path(os.fspath(path), _registry())
    from ._load import _open
    h, info = _open(path, last_wins=True).identify(registry=_registry())
    if info is None:
        return None
    return dict(zip(("hash", "family", "component", "description"), info))


def model_hash(path, algorithm="blake3"):
    """InvokeAI's model hash of a file or folder: "blake3:<hex>"..."""
    return _cellar.invokeai_hash(os.fspath(path), algorithm)
