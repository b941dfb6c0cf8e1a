#!/usr/bin/env python3
"""Generates the fixture repositories the test Hub serves.

Layout: ROOT/<org>/<name>/<revision>/<files...>; an empty file
ROOT/<org>/<name>/.gated marks a gated repo. Contents are deterministic
pseudo-random bytes seeded by name, so two repos that share a component
(same seed) hold byte-identical files, as real pipelines sharing a VAE or a
text encoder do.

  make_fixtures.py ROOT                      the test set (a few MB)
  make_fixtures.py ROOT --bench BYTES SHARE  two pipelines of BYTES each,
                                             the second sharing SHARE (0..1)
                                             of its bytes with the first
"""
import json
import os
import random
import sys

CHUNK = 1 << 20


def write_random(path, size, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(CHUNK, left)
            f.write(rng.randbytes(n))
            left -= n


def write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def pipeline(root, org, name, rev, unet_seed, unet_size, extra=""):
    base = os.path.join(root, org, name, rev)
    write_text(os.path.join(base, "model_index.json"),
               json.dumps({"_class_name": "StableDiffusionPipeline", "name": name + extra},
                          indent=2) + "\n")
    write_text(os.path.join(base, "vae/config.json"), '{"latent_channels": 4}\n')
    write_random(os.path.join(base, "vae/diffusion_pytorch_model.safetensors"), 300_000, "vae")
    write_text(os.path.join(base, "text_encoder/config.json"), '{"hidden_size": 768}\n')
    write_random(os.path.join(base, "text_encoder/model.safetensors"), 700_000, "text_encoder")
    write_text(os.path.join(base, "tokenizer/vocab.txt"), "".join("tok%d\n" % i for i in range(500)))
    write_text(os.path.join(base, "scheduler/scheduler_config.json"), '{"beta_start": 0.00085}\n')
    write_text(os.path.join(base, "unet/config.json"), '{"sample_size": 64, "seed": "%s"}\n' % unet_seed)
    write_random(os.path.join(base, "unet/diffusion_pytorch_model.safetensors"), unet_size, unet_seed)


def test_set(root):
    pipeline(root, "pipe", "alpha", "main", "unet-alpha", 1_500_000)
    pipeline(root, "pipe", "beta", "main", "unet-beta", 1_200_000)
    # Shares vae and text encoder with alpha and beta, unet with nobody.
    pipeline(root, "pipe", "gamma", "main", "unet-gamma", 900_000)
    base = os.path.join(root, "corp", "secret", "main")
    write_text(os.path.join(base, "README.md"), "# gated\n")
    write_random(os.path.join(base, "weights.safetensors"), 50_000, "secret")
    write_text(os.path.join(root, "corp", "secret", ".gated"), "")
    # A repo with a second branch: v2 changes the weights and the config.
    base = os.path.join(root, "lab", "branched")
    write_text(os.path.join(base, "main", "config.json"), '{"v": 1}\n')
    write_random(os.path.join(base, "main", "model.safetensors"), 80_000, "branched-v1")
    write_text(os.path.join(base, "v2", "config.json"), '{"v": 2}\n')
    write_random(os.path.join(base, "v2", "model.safetensors"), 90_000, "branched-v2")
    # Many small files, to exercise the tree listing's pagination.
    base = os.path.join(root, "lab", "many", "main")
    for i in range(12):
        write_text(os.path.join(base, "part%02d/info.txt" % i), "part %d\n" % i)


def bench_set(root, total, share):
    """Pipelines bench/a and bench/b of `total` bytes each; b reuses a's
    vae and text encoder, sized so they are `share` of the total."""
    shared = int(total * share)
    vae = shared // 4
    te = shared - vae
    unet = total - shared
    for name, seed in (("a", "bench-unet-a"), ("b", "bench-unet-b")):
        base = os.path.join(root, "bench", name, "main")
        write_text(os.path.join(base, "model_index.json"), '{"name": "%s"}\n' % name)
        write_random(os.path.join(base, "vae/diffusion_pytorch_model.safetensors"), vae, "bench-vae")
        write_random(os.path.join(base, "text_encoder/model.safetensors"), te, "bench-te")
        # Split the unet in shards as large checkpoints are.
        n = 4
        for i in range(n):
            size = unet // n + (unet % n if i == n - 1 else 0)
            write_random(os.path.join(base, "unet/diffusion_pytorch_model-%05d-of-%05d.safetensors"
                                      % (i + 1, n)), size, "%s-%d" % (seed, i))


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    root = args[0]
    if len(args) == 4 and args[1] == "--bench":
        bench_set(root, int(args[2]), float(args[3]))
    elif len(args) == 1:
        test_set(root)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
