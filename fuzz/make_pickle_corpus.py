"""Writes the seed corpus of fuzz/fuzz_pickle.c (small files, committed):
torch.save output in both containers and pickle protocols 2 and 4, views,
tied weights, a Lightning-style checkpoint, and hostile pickles.

usage: /usr/bin/python3 fuzz/make_pickle_corpus.py [fuzz/corpus/fuzz_pickle]
"""
import collections
import os
import pickle
import sys
import types

import torch

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                         "corpus", "fuzz_pickle")
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
sd = collections.OrderedDict(
    [("w", base), ("v", base[1:, 1:3]), ("t", base.t()), ("tied", base),
     ("i", torch.arange(4, dtype=torch.int64)), ("h", torch.ones(2, dtype=torch.bfloat16)),
     ("s", torch.tensor(1.0)), ("e", torch.zeros(0, 2)),
     ("p", torch.nn.Parameter(torch.zeros(2))), ("n", {"x": torch.ones(1)})])
for proto in (2, 4):
    for legacy in (False, True):
        torch.save(sd, os.path.join(out, f"views_p{proto}_{'legacy' if legacy else 'zip'}.pt"),
                   pickle_protocol=proto, _use_new_zipfile_serialization=not legacy)

mod = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")


class ModelCheckpoint:
    pass


ModelCheckpoint.__module__ = mod.__name__
mod.ModelCheckpoint = ModelCheckpoint
for m in ("pytorch_lightning", "pytorch_lightning.callbacks"):
    sys.modules.setdefault(m, types.ModuleType(m))
sys.modules[mod.__name__] = mod
ckpt = {"epoch": 1, "lr": 0.5, "state_dict": {"a": torch.ones(2, 2).half()},
        "callbacks": {ModelCheckpoint: {"monitor": "loss"}}}
torch.save(ckpt, os.path.join(out, "lightning.ckpt"))


class Evil:
    def __reduce__(self):
        return (os.system, ("true",))


with open(os.path.join(out, "evil_bare.pkl"), "wb") as f:
    pickle.dump({"x": Evil(), "b": b"\x00\x01", "f": 1.5, "s": {1, 2}, "l": [1, (2, 3)]}, f,
                protocol=4)
with open(os.path.join(out, "evil_p2.pkl"), "wb") as f:
    pickle.dump([Evil(), 2 ** 40, -1, "x" * 300], f, protocol=2)
torch.save({"x": Evil(), "w": torch.ones(1)}, os.path.join(out, "evil_legacy.pt"),
           _use_new_zipfile_serialization=False)

# Globals after an opcode the interpreter refuses (INST), through the memo,
# and in a second pickle: the scan that lists them.
with open(os.path.join(out, "hidden_after_inst.pkl"), "wb") as f:
    f.write(b"\x80\x02(ievil\nX\ncos\nsystem\n\x8c\x0asubprocess\x94\x8c\x04call\x94"
            b"h\x00h\x01\x93.\x80\x04\x8c\x08builtins\x8c\x04exec\x93.")
