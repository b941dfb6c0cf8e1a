"""cellar.identify(path, full=True): what a file is, as `cellar inspect
--json` says it (issue 10)."""
import json
import struct

import cellar


def write(path, tensors, meta=None, values=None):
    """A small safetensors file: name -> shape, F32; values fill tensors."""
    values = values or {}
    hdr, data, at = {"__metadata__": dict({"format": "pt"}, **(meta or {}))}, b"", 0
    for name, shape in tensors.items():
        n = 1
        for d in shape:
            n *= d
        hdr[name] = {"dtype": "F32", "shape": shape, "data_offsets": [at, at + 4 * n]}
        data += struct.pack("<%df" % n, *([values.get(name, 0.0)] * n))
        at += 4 * n
    h = json.dumps(hdr).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)
    return str(path)


def test_lora_full(tmp_path):
    m = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"
    p = write(tmp_path / "l.safetensors",
              {m + ".lora_down.weight": [4, 2048], m + ".lora_up.weight": [640, 4], m + ".alpha": [],
               "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": [4, 1280]},
              values={m + ".alpha": 2.0})
    r = cellar.identify(p, full=True)
    assert r["kind"] == "LoRA" and r["base"] == "SDXL", r
    assert r["lora"] == {"format": "kohya", "rank": 4, "alpha": 2.0, "targets": "unet+te2"}, r
    assert r["text"] == "LoRA (kohya) for SDXL, rank 4, alpha 2, unet+te2"
    assert r["evidence"] == ["rule"] and r["confidence"] == "medium"


def test_unknown_and_hash(tmp_path):
    p = write(tmp_path / "u.safetensors", {"a.bias": [2], "a.weight": [2, 3], "scale": []})
    r = cellar.identify(p, full=True)
    assert r["kind"] == "unknown" and r["structural"] == "cdf0726fd23f31be0c8f82e838646a79"
    assert r["text"].startswith("unknown (structural cdf0726f...")
    assert cellar.identify(p) is None  # the short form: registry entries only
