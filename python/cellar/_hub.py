"""Hub references: DiffSynth-Studio's ModelConfig and huggingface_hub's
snapshot_download, pulled through cellar's store (one copy per sha256,
hard links). The environment is read here, not in libcellar."""
import glob
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, List, Optional, Union

from . import _cellar


def store_home():
    """$CELLAR_HOME, else $XDG_CACHE_HOME/cellar, else ~/.cache/cellar: the
    library's cellar_store_home_from_env(), as the CLI reads it."""
    return _cellar.store_home_from_env()


def env_endpoint():
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def env_token():
    return os.environ.get("HF_TOKEN") or ""


def hf_cache_dir():
    """$HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
    $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub: the
    library's cellar_hf_cache_from_env(), as the CLI and huggingface_hub."""
    return _cellar.hf_cache_from_env()


class _Progress:
    """A one-line progress display on a terminal (stderr); silent otherwise."""

    def __init__(self, label):
        self.label = label
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.files = 0
        self.drew = False

    def __call__(self, kind, path, done, total, nfiles):
        if kind in (1, 5):  # REUSED, FINISH
            self.files += 1
        now = time.monotonic()
        if not self.tty or (kind == 3 and now - self.last < 0.1):
            return
        self.last = now
        self.drew = True
        sys.stderr.write(f"\r\033[K{self.label}: [{self.files}/{nfiles}] "
                         f"{done / 1e6:.1f} / {total / 1e6:.1f} MB {path or ''}")
        sys.stderr.flush()

    def end(self):
        if self.drew:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _env_skip():
    v = os.environ.get("DIFFSYNTH_SKIP_DOWNLOAD")
    if v is None:
        return False
    if v.lower() == "true":
        return True
    if v.lower() == "false":
        return False
    return None  # DiffSynth: neither true nor false gives None (falsy)


@dataclass
class ModelConfig:
    """DiffSynth-Studio's ModelConfig. download_if_necessary() pulls the files
    of model_id matching origin_file_pattern through cellar's store (only
    blobs the store lacks cross the wire) and lays them out as hard links
    under <base>/<model_id>/<path>: <base> is $DIFFSYNTH_MODEL_BASE_PATH,
    else local_model_path, else ./models. skip_download (else
    $DIFFSYNTH_SKIP_DOWNLOAD=true) makes no request at all. .path is then
    what DiffSynth gives: the folder when there is no pattern, else the
    matching files (sorted; a single one as a str)."""
    path: Union[str, List[str], None] = None
    model_id: Optional[str] = None
    origin_file_pattern: Union[str, List[str], None] = None
    download_source: Optional[str] = None
    local_model_path: Optional[str] = None
    skip_download: Optional[bool] = None
    offload_device: Any = None
    offload_dtype: Any = None
    onload_device: Any = None
    onload_dtype: Any = None
    preparing_device: Any = None
    preparing_dtype: Any = None
    computation_device: Any = None
    computation_dtype: Any = None
    clear_parameters: bool = False
    revision: Optional[str] = None

    def check_input(self):
        if self.path is None and self.model_id is None:
            raise ValueError('No valid model files. Please use `ModelConfig(path="xxx")` or '
                             '`ModelConfig(model_id="xxx/yyy", origin_file_pattern="zzz")`.')

    def parse_original_file_pattern(self):
        p = self.origin_file_pattern
        if p is None or p == "" or p == "./":
            return "*"
        if p.endswith("/"):
            return p + "*"
        return p

    def parse_skip_download(self):
        if self.skip_download is None:
            return _env_skip()
        return self.skip_download

    def reset_local_model_path(self):
        if os.environ.get("DIFFSYNTH_MODEL_BASE_PATH") is not None:
            self.local_model_path = os.environ["DIFFSYNTH_MODEL_BASE_PATH"]
        elif self.local_model_path is None:
            self.local_model_path = "./models"

    def require_downloading(self):
        return self.path is None and not self.parse_skip_download()

    def download(self):
        prog = _Progress(self.model_id)
        try:
            return _cellar.resolve_repo(
                self.model_id, self.revision, self.origin_file_pattern or None,
                self.local_model_path, False, store_home(), env_endpoint(), env_token(), prog)
        finally:
            prog.end()

    def download_if_necessary(self):
        self.check_input()
        self.reset_local_model_path()
        if self.require_downloading():
            self.download()
        if self.path is None:
            root = os.path.join(self.local_model_path, self.model_id)
            if self.origin_file_pattern is None or self.origin_file_pattern == "":
                self.path = root
            elif self.parse_skip_download():
                # Nothing is fetched: files already there, or a clear error.
                files = _cellar.resolve_repo(self.model_id, self.revision,
                                             self.origin_file_pattern, self.local_model_path,
                                             True)
                self.path = root + "/" + self.origin_file_pattern if self.origin_file_pattern.endswith("/") else files
            else:
                self.path = sorted(glob.glob(os.path.join(root, self.origin_file_pattern)))
        if isinstance(self.path, list) and len(self.path) == 1:
            self.path = self.path[0]

    def vram_config(self):
        return {k: getattr(self, k) for k in (
            "offload_device", "offload_dtype", "onload_device", "onload_dtype",
            "preparing_device", "preparing_dtype", "computation_device", "computation_dtype")}


def snapshot_download(repo_id, revision=None, allow_patterns=None, ignore_patterns=None,
                      cache_dir=None, local_dir=None, repo_type=None, token=None,
                      endpoint=None, **kwargs):
    """huggingface_hub's snapshot_download through cellar's store: only blobs
    the store lacks are downloaded, and every file is a hard link to the
    store's copy, so two repos sharing a component share one inode. Returns
    local_dir, else the snapshot folder in the HF cache layout (cache_dir,
    else $HF_HUB_CACHE...), which DiffusionPipeline.from_pretrained takes."""
    if repo_type not in (None, "model"):
        raise ValueError("only model repos are supported")
    if isinstance(allow_patterns, str):
        allow_patterns = [allow_patterns]
    if isinstance(ignore_patterns, str):
        ignore_patterns = [ignore_patterns]
    hf_cache = None
    if local_dir is None:
        hf_cache = os.fspath(cache_dir) if cache_dir is not None else hf_cache_dir()
    prog = _Progress(repo_id)
    try:
        commit, _ = _cellar.pull(
            repo_id, revision, allow_patterns, ignore_patterns,
            os.fspath(local_dir) if local_dir is not None else None, hf_cache, store_home(),
            endpoint or env_endpoint(),
            token if isinstance(token, str) else ("" if token is False else env_token()), prog)
    finally:
        prog.end()
    if local_dir is not None:
        return os.path.realpath(os.fspath(local_dir))
    org, name = repo_id.split("/", 1)
    return os.path.join(hf_cache, f"models--{org}--{name}", "snapshots", commit)
