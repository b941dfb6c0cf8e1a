"""safetensors dtype names <-> torch / numpy dtypes."""

_ELEM = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
         "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "C64": 8, "F64": 8, "I64": 8, "U64": 8}

_torch_maps = None


def torch_maps():
    """(name -> torch dtype, torch dtype -> name), for what this torch has."""
    global _torch_maps
    if _torch_maps is None:
        import torch
        pairs = [("F64", "float64"), ("F32", "float32"), ("F16", "float16"),
                 ("BF16", "bfloat16"), ("I64", "int64"), ("I32", "int32"), ("I16", "int16"),
                 ("I8", "int8"), ("U8", "uint8"), ("BOOL", "bool"), ("C64", "complex64"),
                 ("U16", "uint16"), ("U32", "uint32"), ("U64", "uint64"),
                 ("F8_E5M2", "float8_e5m2"), ("F8_E4M3", "float8_e4m3fn")]
        to_torch = {}
        for name, attr in pairs:
            dt = getattr(torch, attr, None)
            if dt is not None:
                to_torch[name] = dt
        _torch_maps = (to_torch, {v: k for k, v in to_torch.items()})
    return _torch_maps


def to_torch(name):
    m = torch_maps()[0]
    if name not in m:
        raise TypeError(f"dtype {name} has no torch equivalent in this torch version")
    return m[name]


def from_torch(dtype):
    m = torch_maps()[1]
    if dtype not in m:
        raise TypeError(f"torch dtype {dtype} cannot be stored in safetensors")
    return m[dtype]


def to_numpy(name):
    """numpy has no bfloat16 or float8: those come as uint16 / uint8."""
    import numpy as np
    m = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
         "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
         "BOOL": np.bool_, "C64": np.complex64, "U16": np.uint16, "U32": np.uint32,
         "U64": np.uint64, "F8_E5M2": np.uint8, "F8_E4M3": np.uint8}
    if name not in m:
        raise TypeError(f"dtype {name} has no numpy equivalent")
    return m[name]


def from_numpy(dtype):
    import numpy as np
    m = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
         np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
         np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL",
         np.dtype(np.complex64): "C64", np.dtype(np.uint16): "U16", np.dtype(np.uint32): "U32",
         np.dtype(np.uint64): "U64"}
    d = np.dtype(dtype)
    if d not in m:
        raise TypeError(f"numpy dtype {d} cannot be stored in safetensors")
    return m[d]


def elem_size(name):
    return _ELEM[name]


CONVERTIBLE = ("F32", "F16", "BF16")
