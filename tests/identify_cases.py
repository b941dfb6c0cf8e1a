"""Identification cases for cli_identify.sh: writes each model layout of
model_keys.py as a sparse safetensors file (real names and shapes, data
never written except LoRA alphas), runs `cellar inspect --json` on it and
checks what the "model" object says. Prints one line per failure and a
"N passed, N failed" summary; exits 1 on any failure.

  identify_cases.py CELLAR_BIN SCRATCH_DIR"""
import json, os, re, struct, subprocess, sys

import model_keys as m

BIN, T = sys.argv[1], sys.argv[2]
BITS = {"F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1}
passed = failed = 0


def write(name, keys, dtype="F16", meta=None, values=None):
    """Sparse safetensors: header, the values' bytes first, the rest a hole."""
    values = values or {}
    hdr = {"__metadata__": dict({"format": "pt"}, **(meta or {}))}
    at, data = 0, b""
    order = sorted(keys, key=lambda k: (k not in values, k))
    for k in order:
        shape = keys[k]
        dt = "F32" if k in values else dtype
        n = 1
        for s in shape:
            n *= s
        size = n * BITS[dt]
        hdr[k] = {"dtype": dt, "shape": shape, "data_offsets": [at, at + size]}
        if k in values:
            data += struct.pack("<f", values[k])
        at += size
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    path = os.path.join(T, name)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
        f.truncate(8 + len(h) + at)
    return path


def inspect(path):
    out = subprocess.run([BIN, "inspect", "--json", path], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    j = json.loads(out.stdout)
    return j["model"] if "model" in j and j["model"] else j["components"][0]["model"]


def case(what, path, **want):
    global passed, failed
    try:
        got = inspect(path)
    except Exception as e:  # a crash or bad JSON is a failure, named
        failed += 1
        print(f"FAIL: {what}: {e}")
        return None
    bad = []
    for k, v in want.items():
        if k == "text":
            if not re.search(v, got["text"]):
                bad.append(f"text {got['text']!r} !~ {v!r}")
        elif k == "lora":
            for lk, lv in v.items():
                if got.get("lora", {}).get(lk) != lv:
                    bad.append(f"lora.{lk} {got.get('lora', {}).get(lk)!r} != {lv!r}")
        elif k == "evidence_has":
            if v not in got["evidence"]:
                bad.append(f"evidence {got['evidence']} lacks {v}")
        elif k == "registry_has":
            names = [r["model_name"] for r in got["registry"]] + [g["entry"]["model_name"] for g in got["groups"]]
            if not any(v in n for n in names):
                bad.append(f"registry {names} lacks {v}")
        elif got.get(k) != v:
            bad.append(f"{k} {got.get(k)!r} != {v!r}")
    if bad:
        failed += 1
        print(f"FAIL: {what}: " + "; ".join(bad) + f"  [text: {got['text']}]")
    else:
        passed += 1
    return got


os.makedirs(T, exist_ok=True)
# ---- UNets and DiTs ----
case("SD1 UNet", write("sd1_unet.safetensors", m.sd1_unet()),
     kind="diffusion model", base="SD1.x", component="UNet", layout="original",
     text=r"^SD1\.x UNet, original layout, F16 \(rule\)$")
case("SD1 inpaint UNet", write("sd1_inpaint.safetensors", m.ldm_unet(in_ch=9)),
     base="SD1.x", variant="inpaint")
case("SD2 UNet", write("sd2_unet.safetensors", m.sd2_unet()), base="SD2.x", component="UNet")
v = m.sd2_unet()
v["v_pred"] = []
case("SD2 v-pred UNet", write("sd2_vpred.safetensors", v), base="SD2.x", variant="v-pred")
case("SDXL base UNet", write("sdxl_unet.safetensors", m.sdxl_unet()),
     base="SDXL", variant="base", text=r"^SDXL base UNet, original layout, F16 \(rule\)$")
case("SDXL refiner UNet", write("sdxl_refiner.safetensors", m.sdxl_refiner_unet()),
     base="SDXL", variant="refiner")
case("SDXL UNet in model.diffusion_model. (DiffSynth group hash)",
     write("sdxl_unet_prefixed.safetensors", m.prefixed("model.diffusion_model.", m.sdxl_unet())),
     base="SDXL", layout="original single-file", registry_has="sdxl_unet", evidence_has="rule")
case("SD3 Medium", write("sd3_medium.safetensors", m.sd3_mmdit(24)), base="SD3", variant="Medium")
case("SD3.5 Medium", write("sd35_medium.safetensors", m.sd3_mmdit(24, True, 13)), base="SD3.5", variant="Medium")
case("SD3.5 Large", write("sd35_large.safetensors", m.sd3_mmdit(38, True)), base="SD3.5", variant="Large")
case("FLUX.1 dev (hash a29710fe, rebuilt from BFL's model)", write("flux1-dev.safetensors", m.flux(), "BF16"),
     base="FLUX.1", variant="dev", component="transformer", confidence="high",
     evidence_has="hash", registry_has="flux_dit",
     text=r"^FLUX\.1 dev transformer, original layout, BF16 \(hash a29710fe, rule\)")
case("FLUX.1 schnell (hash 57b02550)", write("flux1-schnell.safetensors", m.flux(False), "BF16"),
     base="FLUX.1", variant="schnell", evidence_has="hash")
case("FLUX.1 Fill", write("flux1-fill.safetensors", m.flux(True, 384)), variant="dev Fill")
case("FLUX.1 in a ComfyUI checkpoint", write("flux1-comfy.safetensors", m.prefixed("model.diffusion_model.", m.flux())),
     base="FLUX.1", layout="original single-file")
case("Wan2.1 1.3B T2V", write("wan_1.3b.safetensors", m.wan_dit()), base="Wan2.1", variant="1.3B T2V")
case("Wan 14B T2V", write("wan_14b_t2v.safetensors", m.wan_dit(5120, 40, ffn=13824)), base="Wan2.1/2.2", variant="14B T2V")
case("Wan 14B I2V", write("wan_14b_i2v.safetensors", m.wan_dit(5120, 40, 36, True, 13824)), variant="14B I2V")
case("Qwen-Image DiT", write("qwen_image.safetensors", m.qwen_image_dit()), base="Qwen-Image", component="DiT")
# ---- VAEs ----
case("FLUX VAE (hash 21ea55f4, rebuilt from the LDM autoencoder)", write("ae.safetensors", m.ldm_vae(), "F32"),
     kind="VAE", base="SD3/FLUX.1", evidence_has="hash", registry_has="flux_vae")
case("SD VAE", write("sd_vae.safetensors", m.ldm_vae(z=4, quant=True), "F32"),
     kind="VAE", base="SD1/SD2/SDXL: cannot tell from shapes",
     text=r"^VAE \(SD1/SD2/SDXL: cannot tell from shapes\), original layout, F32 \(rule\)$")
case("SD VAE, diffusers layout", write("sd_vae_diffusers.safetensors", m.diffusers_vae()),
     kind="VAE", layout="diffusers")
case("Wan2.1 VAE", write("wan21_vae.safetensors", m.wan_vae()), kind="VAE", base="Wan2.1 (or Qwen-Image: same shapes)")
case("Wan2.2 VAE", write("wan22_vae.safetensors", m.wan_vae(True)), kind="VAE", base="Wan2.2")
# ---- text encoders ----
case("CLIP-L (hash 94eefa3d: FLUX, SDXL and SD3 meanings)", write("clip_l.safetensors", m.clip_text()),
     kind="text encoder", component="CLIP-L", registry_has="flux_text_encoder_clip")
got = inspect(os.path.join(T, "clip_l.safetensors"))
names = " ".join(r["model_name"] for r in got["registry"])
if "sd3_text_encoder_1" in names and "stable_diffusion_text_encoder" in names:
    passed += 1
else:
    failed += 1
    print(f"FAIL: CLIP-L hash reports every meaning: {names}")
case("CLIP-G", write("clip_g.safetensors", m.clip_text(32, 1280, 5120, proj=1280)), component="CLIP-G (OpenCLIP bigG)")
case("CLIP-H", write("clip_h.safetensors", m.clip_text(24, 1024, 4096)), component="CLIP-H (OpenCLIP ViT-H)")
case("T5-XXL", write("t5xxl.safetensors", m.t5_enc()), component="T5-XXL")
case("FLUX's T5-XXL, tied embedding dropped (hash 22540b49)", write("t5xxl_flux.safetensors", m.t5_enc(embed=False)),
     component="T5-XXL", evidence_has="hash", registry_has="flux_text_encoder_t5")
# ---- single-file checkpoints ----
sd1 = {}
sd1.update(m.prefixed("model.diffusion_model.", m.sd1_unet()))
sd1.update(m.ldm_vae(z=4, quant=True, pre="first_stage_model."))
sd1.update(m.clip_text(pre="cond_stage_model.transformer.", posids=True))
case("SD1 checkpoint (hash 03343c60, rebuilt from the LDM configs)", write("sd15.safetensors", sd1),
     kind="checkpoint", base="SD1.x", parts="UNet+VAE+CLIP-L", evidence_has="hash", registry_has="sd_unet",
     text=r"^SD1\.x, single-file \(UNet\+VAE\+CLIP-L\), F16 \(hash 03343c60, rule\)")
xl = {}
xl.update(m.prefixed("model.diffusion_model.", m.sdxl_unet()))
xl.update(m.ldm_vae(z=4, quant=True, pre="first_stage_model."))
xl.update(m.clip_text(pre="conditioner.embedders.0.transformer."))
xl.update(m.open_clip_text(32, 1280, "conditioner.embedders.1.model."))
xl["alphas_cumprod"] = [1000]
case("SDXL checkpoint (DiffSynth group hashes)", write("sdxl.safetensors", xl),
     kind="checkpoint", base="SDXL", variant="base", parts="UNet+VAE+CLIP-L+CLIP-G", evidence_has="group-hash",
     text=r"^SDXL base, single-file \(UNet\+VAE\+CLIP-L\+CLIP-G\), F16 \(group-hash first_stage_model, group-hash model, rule\)")
# ---- LoRAs ----
sd1_mods = [("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 768, 320),
            ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 320, 320),
            ("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 768, 768)]
k = m.lora(sd1_mods, "kohya", 16)
case("kohya LoRA for SD1", write("lora_sd1.safetensors", k, values={n: 8.0 for n in k if n.endswith(".alpha")}),
     kind="LoRA", base="SD1.x", lora={"format": "kohya", "rank": 16, "alpha": 8.0, "targets": "unet+te"},
     text=r"^LoRA \(kohya\) for SD1\.x, rank 16, alpha 8, unet\+te$")
xl_mods = [("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 2048, 640),
           ("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768),
           ("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 1280, 1280)]
k = m.lora(xl_mods, "kohya", 32)
case("kohya LoRA for SDXL", write("lora_sdxl.safetensors", k, values={n: 16.0 for n in k if n.endswith(".alpha")},
                                  meta={"ss_network_dim": "32", "ss_network_alpha": "16.0", "ss_base_model_version": "sdxl_base_v1-0"}),
     base="SDXL", lora={"format": "kohya", "rank": 32, "alpha": 16.0, "targets": "unet+te1+te2"},
     text=r"^LoRA \(kohya\) for SDXL, rank 32, alpha 16, unet\+te1\+te2")
k = m.lora([("lora_unet_double_blocks_0_img_attn_qkv", 3072, 9216), ("lora_unet_single_blocks_0_linear1", 3072, 21504)], "kohya", 4)
case("kohya LoRA for FLUX", write("lora_flux_kohya.safetensors", k), base="FLUX.1",
     lora={"format": "kohya", "rank": 4, "targets": "unet"})
k = m.lora([("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", 768, 320),
            ("text_encoder.text_model.encoder.layers.0.self_attn.q_proj", 768, 768)], "peft", 8)
case("PEFT LoRA for SD1", write("lora_sd1_peft.safetensors", k), base="SD1.x",
     lora={"format": "PEFT", "rank": 8, "targets": "unet+te1"})
k = m.lora([("unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", 2048, 640),
            ("text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj", 1280, 1280)], "peft", 64)
case("PEFT LoRA for SDXL", write("lora_sdxl_peft.safetensors", k), base="SDXL",
     lora={"format": "PEFT", "rank": 64, "targets": "unet+te2"})
k = m.lora([("transformer.single_transformer_blocks.0.attn.to_q", 3072, 3072),
            ("transformer.transformer_blocks.0.attn.to_q", 3072, 3072)], "peft", 16)
case("PEFT LoRA for FLUX", write("lora_flux_peft.safetensors", k), base="FLUX.1",
     lora={"format": "PEFT", "rank": 16, "targets": "transformer"})
k = m.lora(sd1_mods, "loha", 8)
case("LoHa for SD1", write("loha_sd1.safetensors", k, values={n: 4.0 for n in k if n.endswith(".alpha")}),
     base="SD1.x", lora={"format": "LoHa", "rank": 8, "alpha": 4.0},
     text=r"^LyCORIS \(LoHa\) for SD1\.x, rank 8, alpha 4")
# ---- embeddings, ControlNet ----
case("SD1 embedding", write("emb_sd1.safetensors", {"emb_params": [8, 768]}), kind="embedding", base="SD1.x")
case("SDXL embedding", write("emb_sdxl.safetensors", {"clip_l": [4, 768], "clip_g": [4, 1280]}), kind="embedding", base="SDXL")
cn = m.prefixed("control_model.", m.ldm_unet(mult=(1, 2, 4, 4)))
cn["control_model.input_hint_block.0.weight"] = [16, 3, 3, 3]
case("SD1 ControlNet", write("controlnet_sd1.safetensors", cn), kind="ControlNet", base="SD1.x")
# ---- declared only, unknown ----
case("metadata only", write("declared.safetensors", {"w.weight": [4, 4]}, meta={"modelspec.architecture": "stable-diffusion-xl-v1-base"}),
     base="SDXL", confidence="low", evidence_has="metadata")
case("unknown", write("unknown.safetensors", {"encoder.weight": [3, 4], "head.bias": [3]}),
     kind="unknown", confidence="none", base=None,
     text=r"^unknown \(structural [0-9a-f]{8}\.\.\., 2 tensors\)$")

# ---- the other rules of IDENTIFY.md (b), from their rule keys ----
P = "model.diffusion_model."
def few(*pairs):
    return {k: v for k, v in pairs}
case("Stable Cascade", write("cascade.safetensors", few(("clf.1.weight", [2048, 1536]), ("down_blocks.0.0.weight", [2048]))),
     base="Stable Cascade")
case("HunyuanDiT", write("hunyuan_dit.safetensors", few(("mlp_t5.0.weight", [4096, 2048]), ("x_embedder.proj.weight", [1408, 4, 2, 2]))),
     base="HunyuanDiT")
case("HunyuanVideo I2V", write("hunyuan_video.safetensors", few(("txt_in.individual_token_refiner.blocks.0.norm1.weight", [3072]),
     ("img_in.proj.weight", [3072, 33, 1, 2, 2]), ("double_blocks.0.img_attn_q_norm.weight", [128]))),
     base="HunyuanVideo", variant="I2V")
chroma = m.flux(False)
chroma["distilled_guidance_layer.in_proj.weight"] = [5120, 64]
case("Chroma", write("chroma.safetensors", chroma), base="Chroma")
case("LTX-Video", write("ltx.safetensors", few(("adaln_single.emb.timestep_embedder.linear_1.bias", [2048]), ("patchify_proj.weight", [2048, 128]))),
     base="LTX-Video")
case("Lumina2", write("lumina2.safetensors", few(("cap_embedder.1.weight", [2304, 2304]), ("x_embedder.weight", [2304, 16]))), base="Lumina2")
case("Z-Image", write("z_image.safetensors", m.prefixed(P, few(*[(f"layers.{i}.attention.qkv.weight", [11520, 3840]) for i in range(6)],
     ("cap_embedder.1.weight", [3840, 2560])))), base="Z-Image", layout="original single-file")
case("HiDream", write("hidream.safetensors", few(("caption_projection.0.linear.weight", [2560, 4096]))), base="HiDream")
w = m.wan_dit(5120, 2, 36, True, 13824)
w["img_emb.emb_pos"] = [1, 514, 1280]
case("Wan FLF2V", write("wan_flf2v.safetensors", w), variant="14B FLF2V")
w = m.wan_dit(1536, 2)
w["vace_patch_embedding.weight"] = [1536, 96, 1, 2, 2]
case("Wan VACE", write("wan_vace.safetensors", w), variant="1.3B VACE")
case("Wan2.2 5B", write("wan_5b.safetensors", m.wan_dit(3072, 2, 48)), base="Wan2.2", variant="5B TI2V/Fun")
# diffusers layouts
dflux = {"x_embedder.weight": [3072, 64], "context_embedder.weight": [3072, 4096],
         "single_transformer_blocks.0.attn.to_q.weight": [3072, 3072],
         "time_text_embed.guidance_embedder.linear_1.weight": [3072, 256]}
case("FLUX.1 dev, diffusers layout", write("flux_diffusers.safetensors", dflux), base="FLUX.1", variant="dev", layout="diffusers")
dxl = {"conv_in.weight": [320, 4, 3, 3], "down_blocks.0.resnets.0.conv1.weight": [320, 320, 3, 3],
       "time_embedding.linear_1.weight": [1280, 320], "add_embedding.linear_1.weight": [1280, 2816],
       "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight": [640, 2048]}
case("SDXL UNet, diffusers layout", write("sdxl_diffusers.safetensors", dxl), base="SDXL", variant="base", layout="diffusers")
case("SD3, diffusers layout", write("sd3_diffusers.safetensors", {"pos_embed.proj.weight": [1536, 16, 2, 2],
     "transformer_blocks.0.attn.add_q_proj.weight": [1536, 1536]}), base="SD3", variant="Medium", layout="diffusers")
case("ControlNet, diffusers layout", write("cn_diffusers.safetensors", {"controlnet_cond_embedding.conv_in.weight": [16, 3, 3, 3],
     "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight": [320, 768]}), kind="ControlNet", base="SD1.x", layout="diffusers")
case("IP-Adapter SDXL", write("ipa.safetensors", {"image_proj.proj.weight": [8192, 1280], "ip_adapter.1.to_k_ip.weight": [640, 2048]}),
     kind="IP-Adapter", base="SDXL")
k = m.lora(sd1_mods, "kohya", 16)
k.update({n[:-len(".lora_down.weight")] + ".dora_scale": [1, 320] for n in list(k) if n.endswith(".lora_down.weight")})
case("DoRA", write("dora.safetensors", k), base="SD1.x", lora={"format": "DoRA", "rank": 16})
case("LoKr", write("lokr.safetensors", {"lora_unet_down_blocks_0_attentions_0_proj_in.lokr_w1": [8, 8],
     "lora_unet_down_blocks_0_attentions_0_proj_in.lokr_w2_a": [40, 4], "lora_unet_down_blocks_0_attentions_0_proj_in.lokr_w2_b": [4, 40]}),
     lora={"format": "LoKr", "rank": 4})
case("CLIP-L in a ComfyUI single file? no: parts only", write("parts.safetensors",
     dict(m.ldm_vae(z=4, quant=True, pre="first_stage_model."), **m.clip_text(pre="cond_stage_model.transformer."))),
     kind="checkpoint", parts="VAE+CLIP-L")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
