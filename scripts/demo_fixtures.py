#!/usr/bin/env python3
"""Generates the repositories `make demo` serves from a local test Hub.

Two diffusers-style pipelines, demo/sd-alpha and demo/sd-beta, that share
their VAE and text encoder byte for byte and differ in their UNet, as real
pipeline variants do. Every .safetensors file is a real, canonical
safetensors file (header JSON + tensor data), so `cellar inspect` can read
it. Layout: ROOT/<org>/<name>/<revision>/<path>, as tests/hub/hubserver.py
expects.

  demo_fixtures.py ROOT [MIB_PER_COMPONENT]
"""
import json
import os
import random
import struct
import sys


def safetensors(path, tensors, seed):
    """tensors: list of (name, dtype, shape); dtype F32/F16 only here."""
    rng = random.Random(seed)
    size_of = {"F32": 4, "F16": 2}
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, dtype, shape in sorted(tensors, key=lambda t: (-size_of[t[1]], t[0])):
        n = size_of[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
        blobs.append(n)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for n in blobs:
            f.write(rng.randbytes(n))


def text(path, s):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(s)


def pipeline(root, name, unet_seed, mib):
    base = os.path.join(root, "demo", name, "main")
    text(os.path.join(base, "model_index.json"), json.dumps({
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.31.0",
        "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"],
        "unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "PNDMScheduler"],
        "tokenizer": ["transformers", "CLIPTokenizer"]}, indent=2) + "\n")
    text(os.path.join(base, "scheduler/scheduler_config.json"), '{"beta_start": 0.00085}\n')
    text(os.path.join(base, "tokenizer/tokenizer_config.json"), '{"model_max_length": 77}\n')
    text(os.path.join(base, "tokenizer/vocab.json"),
         json.dumps({"tok%d" % i: i for i in range(2000)}) + "\n")
    text(os.path.join(base, "vae/config.json"), '{"latent_channels": 4}\n')
    text(os.path.join(base, "text_encoder/config.json"), '{"hidden_size": 768}\n')
    text(os.path.join(base, "unet/config.json"), '{"sample_size": 64}\n')
    # Sizes scale with mib: each component's big tensor takes most of it.
    width = max(64, int((mib * (1 << 20) / 4) ** 0.5))
    safetensors(os.path.join(base, "vae/diffusion_pytorch_model.safetensors"),
                [("decoder.conv_in.weight", "F32", [width, width]),
                 ("decoder.conv_in.bias", "F32", [width]),
                 ("encoder.conv_in.weight", "F32", [128, 3, 3, 3])], "vae")
    safetensors(os.path.join(base, "text_encoder/model.safetensors"),
                [("text_model.embeddings.token_embedding.weight", "F16", [width, width * 2]),
                 ("text_model.final_layer_norm.weight", "F32", [768]),
                 ("text_model.final_layer_norm.bias", "F32", [768])], "clip")
    safetensors(os.path.join(base, "unet/diffusion_pytorch_model.safetensors"),
                [("conv_in.weight", "F32", [320, 4, 3, 3]),
                 ("down_blocks.0.attentions.0.proj_in.weight", "F32", [width, width]),
                 ("mid_block.resnets.0.conv1.weight", "F16", [width, width])], unet_seed)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    pipeline(root, "sd-alpha", "unet-alpha", mib)
    pipeline(root, "sd-beta", "unet-beta", mib)


if __name__ == "__main__":
    main()
