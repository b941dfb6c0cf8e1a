"""Writes PyTorch checkpoints for test_load.c's checkpoint cases.

usage: /usr/bin/python3 load_pt_gen.py DIR
Each tensor's expected row-major bytes go to DIR/exp/<file>/<name> (bf16 as
its raw 16-bit words). Exit 77 when this python has no torch.
"""
import os
import sys

try:
    import torch
except ImportError:
    sys.exit(77)

D = sys.argv[1]
torch.manual_seed(7)


def expect(fname, sd):
    d = os.path.join(D, "exp", fname)
    os.makedirs(d, exist_ok=True)
    for k, t in sd.items():
        if not isinstance(t, torch.Tensor):
            continue
        c = t.detach().contiguous()
        if c.dtype == torch.bfloat16:
            c = c.view(torch.int16)
        with open(os.path.join(d, k), "wb") as f:
            f.write(c.numpy().tobytes())


base = torch.randn(6, 8)
tied = torch.randn(16, 16)
sd = {
    "w": torch.randn(300, 257),
    "bf": torch.randn(1000, 33).to(torch.bfloat16),
    "half": torch.randn(77).half(),
    "i": torch.arange(4099, dtype=torch.int64),
    "tr": base.t(),                # a transpose: gathered
    "sl": base[1:4, 2:6],          # a slice: gathered
    "row": base[2],                # contiguous view into a shared storage
    "emb": tied,
    "head": tied,                  # tied weights
    "trt1": tied.t(),              # tied non-contiguous views: one copy
    "trt2": tied.t(),
    "empty": torch.zeros(0, 3),
}
torch.save(sd, os.path.join(D, "zip.bin"))
expect("zip.bin", sd)
torch.save(sd, os.path.join(D, "legacy.pt"), _use_new_zipfile_serialization=False)
expect("legacy.pt", sd)

lt = {"model.a": torch.randn(4, 5), "model.b": torch.randn(5).to(torch.bfloat16)}
torch.save({"state_dict": lt, "epoch": 3, "global_step": 10}, os.path.join(D, "lightning.ckpt"))
expect("lightning.ckpt", lt)

# Another file sharing a name with zip.bin, for the merge rules.
torch.save({"w": torch.ones(2), "other": torch.ones(3)}, os.path.join(D, "dup.bin"))


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + os.path.join(D, "MARKER"),))


torch.save({"w": torch.ones(2), "x": Evil()}, os.path.join(D, "evil.bin"))


class Box:  # an unknown global holding a tensor
    def __init__(self):
        self.t = torch.ones(3)


torch.save({"w": torch.ones(2), "box": Box()}, os.path.join(D, "unknown.bin"))
