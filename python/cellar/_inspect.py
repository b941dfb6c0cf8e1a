"""What a weight file or model folder holds, as `cellar inspect --json`."""
import os

from . import _cellar
from ._hash import _registry


def inspect(path, tensors=False):
    """What path holds (a safetensors file, a shard set or its index, a
    diffusers folder, a DDUF, a GGUF or a PyTorch checkpoint, read without
    running its pickle), as the dict `cellar inspect --json` prints: path,
    format, components [{component, path, format, files, tensors,
    parameters, tensor_bytes, size, dtypes, metadata, structural_hash,
    model, tensor_list}], the totals, and the format's own fields.
    tensors=True adds each component's tensor_list [{name, dtype, shape,
    bytes, offset, file}]. An invalid file raises CellarError naming the
    rule it breaks."""
    return _cellar.inspect(os.fspath(path), bool(tensors), _registry())
