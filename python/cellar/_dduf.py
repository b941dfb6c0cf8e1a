"""DDUF with huggingface_hub's names, on libcellar's checked reader and
writer."""
import mmap
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass

from . import _cellar


@dataclass
class DDUFEntry:
    filename: str
    length: int
    offset: int
    dduf_path: str

    @contextmanager
    def as_mmap(self):
        with open(self.dduf_path, "rb") as f:
            with mmap.mmap(f.fileno(), length=0, access=mmap.ACCESS_READ) as mm:
                yield mm[self.offset:self.offset + self.length]

    def read_text(self, encoding="utf-8"):
        with open(self.dduf_path, "rb") as f:
            f.seek(self.offset)
            return f.read(self.length).decode(encoding=encoding)


def read_dduf_file(dduf_path):
    """Every entry of a DDUF file (all of its rules checked), by name."""
    p = os.fspath(dduf_path)
    return {name: DDUFEntry(filename=name, length=size, offset=off, dduf_path=p)
            for name, off, size in _cellar.dduf_entries(p)}


def export_folder_as_dduf(dduf_path, folder_path):
    """Packs a diffusers folder (model_index.json first, then the files sorted;
    files a DDUF does not take left out)."""
    _cellar.dduf_pack(os.fspath(dduf_path), os.fspath(folder_path))


def export_entries_as_dduf(dduf_path, entries):
    """Writes (name, path) or (name, bytes) pairs from any iterable; bytes
    are spilled to a temporary file so one entry at a time is in memory."""
    tmp = tempfile.mkdtemp(prefix=".cellar-dduf-", dir=os.path.dirname(os.path.abspath(os.fspath(dduf_path))))
    try:
        items = []
        for i, (name, content) in enumerate(entries):
            if isinstance(content, (bytes, bytearray, memoryview)):
                p = os.path.join(tmp, str(i))
                with open(p, "wb") as f:
                    f.write(content)
                items.append((name, p))
            else:
                items.append((name, os.fspath(content)))
            del content
        _cellar.dduf_write(os.fspath(dduf_path), items)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
