"""cellar: load, save, hash and fetch model weights through libcellar.

Names follow the libraries they replace, so switching is an import away:
safetensors (safe_open, load_file, save_file), DiffSynth-Studio
(load_state_dict, DiskMap, ModelConfig, hash_model_file), huggingface_hub
(save_torch_state_dict, load_torch_model, snapshot_download, DDUF helpers)
and InvokeAI (model_hash)."""
from ._cellar import CellarError, CellarNotFound, version as __version__  # noqa: F401
from ._load import safe_open, load_file, load_state_dict, DiskMap  # noqa: F401
from ._save import (save_file, save_torch_state_dict, save_torch_model,  # noqa: F401
                    split_torch_state_dict_into_shards, load_torch_model,
                    load_state_dict_from_file)
from ._hub import ModelConfig, snapshot_download  # noqa: F401
from ._dduf import DDUFEntry, read_dduf_file, export_folder_as_dduf, export_entries_as_dduf  # noqa: F401
from ._hash import hash_model_file, identify, model_hash  # noqa: F401
from ._inspect import inspect  # noqa: F401

__all__ = [
    "CellarError", "CellarNotFound", "safe_open", "load_file", "load_state_dict", "DiskMap",
    "save_file", "save_torch_state_dict", "save_torch_model", "split_torch_state_dict_into_shards",
    "load_torch_model", "load_state_dict_from_file", "ModelConfig", "snapshot_download",
    "DDUFEntry", "read_dduf_file", "export_folder_as_dduf", "export_entries_as_dduf",
    "hash_model_file", "identify", "model_hash",
    "inspect",
]
