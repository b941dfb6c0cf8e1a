/* The identification rules, as data: IDENTIFY.md (b), after ComfyUI's
 * model_detection.py, diffusers' single_file_utils.py and InvokeAI's
 * probes. identify.h says how a rule reads; identify.c evaluates them.
 * Order matters among top-level rules: the first that holds wins. */
#include "identify.h"

#define HAS(k) {ID_HAS, 0, k, {0}, NULL}
#define ABSENT(k) {ID_ABSENT, 0, k, {0}, NULL}
#define DIM(k, ax, ...) {ID_DIM, ax, k, {__VA_ARGS__}, NULL}
#define PREFIX(k) {ID_PREFIX, 0, k, {0}, NULL}
#define NOPREFIX(k) {ID_NOPREFIX, 0, k, {0}, NULL}
#define RANK(k, r) {ID_RANK, 0, k, {r}, NULL}
#define META(k, v) {ID_META, 0, k, {0}, v}

#define K_DIFF CELLAR_KIND_DIFFUSION
#define K_VAE CELLAR_KIND_VAE
#define K_TE CELLAR_KIND_TEXT_ENCODER
#define K_LORA CELLAR_KIND_LORA
#define K_EMB CELLAR_KIND_EMBEDDING
#define K_CN CELLAR_KIND_CONTROLNET
#define K_IPA CELLAR_KIND_IP_ADAPTER
#define K_KEEP CELLAR_KIND_UNKNOWN

/* Any LoRA/LyCORIS weight name (IDENTIFY.md (b), LoRA names). */
#define LORA_ANY                                                                                   \
    "*.lora_down.weight|*.lora_A.weight|*.lora_A.default.weight|*_lora.down.weight|"               \
    "*.lora.down.weight|*.lora_linear_layer.down.weight|*.hada_w1_a|*.lokr_w1|*.lokr_w1_a|"       \
    "*.oft_blocks|*.oft_diag|*.dora_scale|*.diff"
/* A LoRA's down/A matrix of a cross-attention key projection. */
#define LORA_ATTN2_K                                                                               \
    "lora_unet_*attn2_to_k.lora_down.weight|*attn2.to_k.lora_A.weight|"                            \
    "*attn2.to_k.lora.down.weight|*attn2.to_k.lora_linear_layer.down.weight|"                      \
    "*attn2_to_k.hada_w1_b|*attn2.to_k.lora_down.weight|*attn2.processor.to_k_lora.down.weight"
#define LORA_TE_Q                                                                                  \
    "lora_te_*self_attn_q_proj.lora_down.weight|lora_te1_*self_attn_q_proj.lora_down.weight|"      \
    "text_encoder.*self_attn.q_proj.lora_A.weight|text_encoder.*self_attn.q_proj.lora_linear_layer.down.weight|" \
    "lora_te_*self_attn_q_proj.hada_w1_b"
#define LORA_FLUX_IN                                                                               \
    "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight|"                                     \
    "*double_blocks.0.img_attn.qkv.lora_A.weight|*single_transformer_blocks.0.attn.to_q.lora_A.weight|" \
    "lora_transformer_single_transformer_blocks_0_attn_to_q.lora_down.weight|"                     \
    "*single_transformer_blocks.0.attn.to_q.lora.down.weight|"                                     \
    "lora_unet_single_blocks_0_linear1.lora_down.weight|*single_blocks.0.linear1.lora_A.weight"
#define LORA_WAN_Q                                                                                 \
    "*blocks.0.self_attn.q.lora_A.weight|*blocks_0_self_attn_q.lora_down.weight|"                  \
    "*blocks.0.self_attn.q.lora_down.weight"

const id_rule cellar_id_rules[] = {
    /* ---- diffusion models, IDENTIFY.md (b) 1-9 ---- */
    {"sd3", NULL, {HAS("$joint_blocks.0.context_block.attn.qkv.weight")}, K_DIFF, "SD3", NULL, "MMDiT", "original"},
    {"sd3-medium", "sd3", {DIM("$x_embedder.proj.weight", 0, 1536), ABSENT("$joint_blocks.0.x_block.attn.ln_q.weight")}, K_KEEP, NULL, "Medium", NULL, NULL},
    {"sd3.5-medium", "sd3", {DIM("$x_embedder.proj.weight", 0, 1536), HAS("$joint_blocks.0.x_block.attn.ln_q.weight"), HAS("$joint_blocks.0.x_block.attn2.qkv.weight")}, K_KEEP, "SD3.5", "Medium", NULL, NULL},
    {"sd3.5-large", "sd3", {DIM("$x_embedder.proj.weight", 0, 2432), HAS("$joint_blocks.0.x_block.attn.ln_q.weight")}, K_KEEP, "SD3.5", "Large", NULL, NULL},

    {"stable-cascade", NULL, {HAS("$clf.1.weight")}, K_DIFF, "Stable Cascade", NULL, "UNet", "original"},
    {"hunyuan-dit", NULL, {HAS("$mlp_t5.0.weight")}, K_DIFF, "HunyuanDiT", NULL, "DiT", "original"},

    {"hunyuan-video", NULL, {HAS("$txt_in.individual_token_refiner.blocks.0.norm1.weight")}, K_DIFF, "HunyuanVideo", NULL, "DiT", "original"},
    {"hunyuan-video-t2v", "hunyuan-video", {DIM("$img_in.proj.weight", 1, 16)}, K_KEEP, NULL, "T2V", NULL, NULL},
    {"hunyuan-video-i2v", "hunyuan-video", {DIM("$img_in.proj.weight", 1, 33)}, K_KEEP, NULL, "I2V", NULL, NULL},

    {"flux2", NULL, {HAS("$double_stream_modulation_img.lin.weight")}, K_DIFF, "FLUX.2", NULL, "transformer", "original"},
    {"chroma", NULL, {HAS("$double_blocks.0.img_attn.norm.key_norm.scale"), PREFIX("$distilled_guidance_layer.")}, K_DIFF, "Chroma", NULL, "transformer", "original"},
    {"flux", NULL, {HAS("$double_blocks.0.img_attn.norm.key_norm.scale"), HAS("$img_in.weight")}, K_DIFF, "FLUX.1", NULL, "transformer", "original"},
    {"flux-dev", "flux", {PREFIX("$guidance_in.")}, K_KEEP, NULL, "dev", NULL, NULL},
    {"flux-schnell", "flux", {NOPREFIX("$guidance_in.")}, K_KEEP, NULL, "schnell", NULL, NULL},
    {"flux-fill", "flux", {DIM("$img_in.weight", 1, 384)}, K_KEEP, NULL, "Fill", NULL, NULL},
    {"flux-depth", "flux", {DIM("$img_in.weight", 1, 128)}, K_KEEP, NULL, "Depth", NULL, NULL},
    {"flux-nf4", "flux", {DIM("$img_in.weight", 1, 1)}, K_KEEP, NULL, "nf4", NULL, NULL},

    {"ltx-video", NULL, {HAS("$adaln_single.emb.timestep_embedder.linear_1.bias")}, K_DIFF, "LTX-Video", NULL, "transformer", "original"},
    {"lumina2", NULL, {DIM("$cap_embedder.1.weight", 0, 2304)}, K_DIFF, "Lumina2", NULL, "DiT", "original"},
    {"z-image", NULL, {DIM("$cap_embedder.1.weight", 0, 3840)}, K_DIFF, "Z-Image", NULL, "DiT", "original"},
    {"lumina-like", NULL, {HAS("$cap_embedder.1.weight")}, K_DIFF, "Lumina2-like", NULL, "DiT", "original"},

    {"wan", NULL, {HAS("$head.modulation")}, K_DIFF, "Wan", NULL, "DiT", "original"},
    {"wan-1.3b", "wan", {DIM("$head.modulation", -1, 1536)}, K_KEEP, "Wan2.1", "1.3B", NULL, NULL},
    {"wan-5b", "wan", {DIM("$head.modulation", -1, 3072)}, K_KEEP, "Wan2.2", "5B", NULL, NULL},
    {"wan-14b", "wan", {DIM("$head.modulation", -1, 5120)}, K_KEEP, "Wan2.1/2.2", "14B", NULL, NULL},
    {"wan-t2v", "wan", {DIM("$patch_embedding.weight", 1, 16), ABSENT("$vace_patch_embedding.weight")}, K_KEEP, NULL, "T2V", NULL, NULL},
    {"wan-i2v", "wan", {DIM("$patch_embedding.weight", 1, 36), HAS("$img_emb.proj.0.bias"), ABSENT("$img_emb.emb_pos")}, K_KEEP, NULL, "I2V", NULL, NULL},
    {"wan-flf2v", "wan", {HAS("$img_emb.emb_pos")}, K_KEEP, NULL, "FLF2V", NULL, NULL},
    {"wan-fun-inp", "wan", {DIM("$patch_embedding.weight", 1, 36), ABSENT("$img_emb.proj.0.bias")}, K_KEEP, NULL, "Fun-InP", NULL, NULL},
    {"wan-48ch", "wan", {DIM("$patch_embedding.weight", 1, 48)}, K_KEEP, NULL, "TI2V/Fun", NULL, NULL},
    {"wan-vace", "wan", {HAS("$vace_patch_embedding.weight")}, K_KEEP, NULL, "VACE", NULL, NULL},
    {"wan-s2v", "wan", {PREFIX("$casual_audio_encoder.")}, K_KEEP, "Wan2.2", "S2V", NULL, NULL},
    {"wan-animate", "wan", {PREFIX("$face_adapter.")}, K_KEEP, "Wan2.2", "Animate", NULL, NULL},

    {"hidream", NULL, {HAS("$caption_projection.0.linear.weight")}, K_DIFF, "HiDream", NULL, "DiT", "original"},
    {"qwen-image", NULL, {HAS("$txt_norm.weight"), HAS("$img_in.weight")}, K_DIFF, "Qwen-Image", NULL, "DiT", "original"},

    {"sd-unet", NULL, {HAS("$input_blocks.0.0.weight")}, K_DIFF, "SD", NULL, "UNet", "original"},
    {"sd1", "sd-unet", {DIM("$input_blocks.*.1.transformer_blocks.0.attn2.to_k.weight", 1, 768)}, K_KEEP, "SD1.x", NULL, NULL, NULL},
    {"sd2", "sd-unet", {DIM("$input_blocks.*.1.transformer_blocks.0.attn2.to_k.weight", 1, 1024)}, K_KEEP, "SD2.x", NULL, NULL, NULL},
    {"sdxl-base", "sd-unet", {DIM("$input_blocks.*.1.transformer_blocks.0.attn2.to_k.weight", 1, 2048), DIM("$label_emb.0.0.weight", 1, 2816)}, K_KEEP, "SDXL", "base", NULL, NULL},
    {"sdxl-refiner", "sd-unet", {DIM("$input_blocks.*.1.transformer_blocks.0.attn2.to_k.weight", 1, 1280), DIM("$label_emb.0.0.weight", 1, 2560)}, K_KEEP, "SDXL", "refiner", NULL, NULL},
    {"sd-inpaint", "sd-unet", {DIM("$input_blocks.0.0.weight", 1, 9)}, K_KEEP, NULL, "inpaint", NULL, NULL},
    {"sd-ip2p", "sd-unet", {DIM("$input_blocks.0.0.weight", 1, 8)}, K_KEEP, NULL, "instruct-pix2pix", NULL, NULL},
    {"sd-depth", "sd-unet", {DIM("$input_blocks.0.0.weight", 1, 5)}, K_KEEP, NULL, "depth", NULL, NULL},
    {"sd-v-pred", "sd-unet", {HAS("v_pred|edm_vpred.sigma_max")}, K_KEEP, NULL, "v-pred", NULL, NULL},
    {"sd-edm", "sd-unet", {HAS("edm_mean")}, K_KEEP, NULL, "EDM", NULL, NULL},

    /* diffusers layouts (no prefix) */
    {"diffusers-unet", NULL, {HAS("conv_in.weight"), HAS("down_blocks.0.resnets.0.conv1.weight"), HAS("time_embedding.linear_1.weight")}, K_DIFF, "SD", NULL, "UNet", "diffusers"},
    {"diffusers-sd1", "diffusers-unet", {DIM("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", 1, 768)}, K_KEEP, "SD1.x", NULL, NULL, NULL},
    {"diffusers-sd2", "diffusers-unet", {DIM("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", 1, 1024)}, K_KEEP, "SD2.x", NULL, NULL, NULL},
    {"diffusers-sdxl-base", "diffusers-unet", {DIM("add_embedding.linear_1.weight", 1, 2816)}, K_KEEP, "SDXL", "base", NULL, NULL},
    {"diffusers-sdxl-refiner", "diffusers-unet", {DIM("add_embedding.linear_1.weight", 1, 2560)}, K_KEEP, "SDXL", "refiner", NULL, NULL},
    {"diffusers-inpaint", "diffusers-unet", {DIM("conv_in.weight", 1, 9)}, K_KEEP, NULL, "inpaint", NULL, NULL},
    {"diffusers-flux", NULL, {HAS("x_embedder.weight"), HAS("single_transformer_blocks.0.attn.to_q.weight"), HAS("context_embedder.weight")}, K_DIFF, "FLUX.1", NULL, "transformer", "diffusers"},
    {"diffusers-flux-dev", "diffusers-flux", {PREFIX("time_text_embed.guidance_embedder.")}, K_KEEP, NULL, "dev", NULL, NULL},
    {"diffusers-flux-schnell", "diffusers-flux", {NOPREFIX("time_text_embed.guidance_embedder.")}, K_KEEP, NULL, "schnell", NULL, NULL},
    {"diffusers-flux-fill", "diffusers-flux", {DIM("x_embedder.weight", 1, 384)}, K_KEEP, NULL, "Fill", NULL, NULL},
    {"diffusers-flux-depth", "diffusers-flux", {DIM("x_embedder.weight", 1, 128)}, K_KEEP, NULL, "Depth", NULL, NULL},
    {"diffusers-qwen-image", NULL, {HAS("txt_norm.weight"), HAS("transformer_blocks.0.img_mod.1.weight")}, K_DIFF, "Qwen-Image", NULL, "DiT", "diffusers"},
    {"diffusers-sd3", NULL, {HAS("transformer_blocks.0.attn.add_q_proj.weight"), HAS("pos_embed.proj.weight"), NOPREFIX("single_transformer_blocks.")}, K_DIFF, "SD3", NULL, "MMDiT", "diffusers"},
    {"diffusers-sd3.5-large", "diffusers-sd3", {DIM("pos_embed.proj.weight", 0, 2432)}, K_KEEP, "SD3.5", "Large", NULL, NULL},
    {"diffusers-sd3-medium", "diffusers-sd3", {DIM("pos_embed.proj.weight", 0, 1536)}, K_KEEP, NULL, "Medium", NULL, NULL},
    {"diffusers-wan", NULL, {HAS("condition_embedder.text_embedder.linear_1.weight"), HAS("blocks.0.attn1.to_q.weight")}, K_DIFF, "Wan", NULL, "DiT", "diffusers"},
    {"diffusers-wan-1.3b", "diffusers-wan", {DIM("blocks.0.attn1.to_q.weight", 0, 1536)}, K_KEEP, "Wan2.1", "1.3B", NULL, NULL},
    {"diffusers-wan-5b", "diffusers-wan", {DIM("blocks.0.attn1.to_q.weight", 0, 3072)}, K_KEEP, "Wan2.2", "5B", NULL, NULL},
    {"diffusers-wan-14b", "diffusers-wan", {DIM("blocks.0.attn1.to_q.weight", 0, 5120)}, K_KEEP, "Wan2.1/2.2", "14B", NULL, NULL},

    /* ---- ControlNets, IP-Adapters (before VAEs: they hold no decoder) ---- */
    {"controlnet", NULL, {PREFIX("control_model.|input_hint_block.")}, K_CN, NULL, NULL, "ControlNet", "original"},
    {"controlnet-sd1", "controlnet", {DIM("control_model.input_blocks.*.1.transformer_blocks.0.attn2.to_k.weight|input_blocks.*.1.transformer_blocks.0.attn2.to_k.weight", 1, 768)}, K_KEEP, "SD1.x", NULL, NULL, NULL},
    {"controlnet-sd2", "controlnet", {DIM("control_model.input_blocks.*.1.transformer_blocks.0.attn2.to_k.weight|input_blocks.*.1.transformer_blocks.0.attn2.to_k.weight", 1, 1024)}, K_KEEP, "SD2.x", NULL, NULL, NULL},
    {"controlnet-sdxl", "controlnet", {DIM("control_model.input_blocks.*.1.transformer_blocks.0.attn2.to_k.weight|input_blocks.*.1.transformer_blocks.0.attn2.to_k.weight", 1, 2048)}, K_KEEP, "SDXL", NULL, NULL, NULL},
    {"controlnet-diffusers", NULL, {PREFIX("controlnet_cond_embedding.")}, K_CN, NULL, NULL, "ControlNet", "diffusers"},
    {"controlnet-diffusers-sd1", "controlnet-diffusers", {DIM("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", 1, 768)}, K_KEEP, "SD1.x", NULL, NULL, NULL},
    {"controlnet-diffusers-sd2", "controlnet-diffusers", {DIM("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", 1, 1024)}, K_KEEP, "SD2.x", NULL, NULL, NULL},
    {"controlnet-diffusers-sdxl", "controlnet-diffusers", {DIM("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight", 1, 2048)}, K_KEEP, "SDXL", NULL, NULL, NULL},
    {"controlnet-flux", NULL, {PREFIX("controlnet_x_embedder.|controlnet_blocks.")}, K_CN, NULL, NULL, "ControlNet", "diffusers"},
    {"controlnet-flux-base", "controlnet-flux", {PREFIX("single_transformer_blocks.|transformer_blocks.")}, K_KEEP, "FLUX.1", NULL, NULL, NULL},
    {"ip-adapter", NULL, {PREFIX("image_proj."), PREFIX("ip_adapter.")}, K_IPA, NULL, NULL, "IP-Adapter", "original"},
    {"ip-adapter-sd1", "ip-adapter", {DIM("ip_adapter.1.to_k_ip.weight", 1, 768)}, K_KEEP, "SD1.x", NULL, NULL, NULL},
    {"ip-adapter-sd2", "ip-adapter", {DIM("ip_adapter.1.to_k_ip.weight", 1, 1024)}, K_KEEP, "SD2.x", NULL, NULL, NULL},
    {"ip-adapter-sdxl", "ip-adapter", {DIM("ip_adapter.1.to_k_ip.weight", 1, 2048)}, K_KEEP, "SDXL", NULL, NULL, NULL},
    {"ip-adapter-plus", "ip-adapter", {PREFIX("image_proj.latents|image_proj.layers.")}, K_KEEP, NULL, "plus", NULL, NULL},
    {"ip-adapter-faceid", "ip-adapter", {PREFIX("image_proj.proj.0.|image_proj.norm.")}, K_KEEP, NULL, NULL, NULL, NULL},

    /* ---- VAEs: decoder.conv_in's in = latent channels ---- */
    {"wan-vae", NULL, {HAS("decoder.middle.0.residual.0.gamma")}, K_VAE, "Wan2.1", NULL, "VAE", "original"},
    {"wan2.2-vae", "wan-vae", {HAS("decoder.upsamples.0.upsamples.0.residual.2.weight")}, K_KEEP, "Wan2.2", NULL, NULL, NULL},
    {"wan2.1-vae", "wan-vae", {ABSENT("decoder.upsamples.0.upsamples.0.residual.2.weight")}, K_KEEP, "Wan2.1 (or Qwen-Image: same shapes)", NULL, NULL, NULL},
    {"vae", NULL, {HAS("decoder.conv_in.weight"), HAS("encoder.conv_in.weight|post_quant_conv.weight|decoder.conv_out.weight")}, K_VAE, NULL, NULL, "VAE", "original"},
    {"vae-4ch", "vae", {DIM("decoder.conv_in.weight", 1, 4)}, K_KEEP, "SD1/SD2/SDXL: cannot tell from shapes", NULL, NULL, NULL},
    {"vae-16ch", "vae", {DIM("decoder.conv_in.weight", 1, 16), ABSENT("decoder.conv_in.conv.weight")}, K_KEEP, "SD3/FLUX.1", NULL, NULL, NULL},
    {"vae-32ch-flux2", "vae", {DIM("decoder.conv_in.weight", 1, 32), PREFIX("bn.running_mean")}, K_KEEP, "FLUX.2", NULL, NULL, NULL},
    {"vae-diffusers", "vae", {PREFIX("decoder.up_blocks.")}, K_KEEP, NULL, NULL, NULL, "diffusers"},

    /* ---- text encoders ---- */
    {"clip-g", NULL, {HAS("text_model.encoder.layers.30.self_attn.q_proj.weight")}, K_TE, NULL, NULL, "CLIP-G (OpenCLIP bigG)", "transformers"},
    {"clip-h", NULL, {HAS("text_model.encoder.layers.22.self_attn.q_proj.weight")}, K_TE, NULL, NULL, "CLIP-H (OpenCLIP ViT-H)", "transformers"},
    {"clip-l", NULL, {DIM("text_model.encoder.layers.0.self_attn.q_proj.weight", 0, 768)}, K_TE, NULL, NULL, "CLIP-L", "transformers"},
    {"clip", NULL, {HAS("text_model.encoder.layers.0.self_attn.q_proj.weight")}, K_TE, NULL, NULL, "CLIP text encoder", "transformers"},
    {"open-clip-g", NULL, {HAS("transformer.resblocks.30.attn.in_proj_weight")}, K_TE, NULL, NULL, "CLIP-G (OpenCLIP bigG)", "open_clip"},
    {"open-clip-h", NULL, {HAS("transformer.resblocks.22.attn.in_proj_weight")}, K_TE, NULL, NULL, "CLIP-H (OpenCLIP ViT-H)", "open_clip"},
    {"t5-xxl", NULL, {DIM("encoder.block.23.layer.1.DenseReluDense.wi_1.weight", -1, 4096)}, K_TE, NULL, NULL, "T5-XXL", "transformers"},
    {"t5", NULL, {HAS("encoder.block.0.layer.0.SelfAttention.q.weight")}, K_TE, NULL, NULL, "T5 encoder", "transformers"},
    {"umt5-xxl", NULL, {DIM("token_embedding.weight", 0, 256384), HAS("blocks.0.attn.q.weight")}, K_TE, "Wan", NULL, "UMT5-XXL", "original"},
    {"qwen2.5-vl-7b", NULL, {DIM("model.embed_tokens.weight", 1, 3584), PREFIX("visual.|model.visual.")}, K_TE, "Qwen-Image", NULL, "Qwen2.5-VL 7B", "transformers"},
    {"qwen3-4b", NULL, {DIM("model.embed_tokens.weight", 1, 2560), HAS("model.layers.0.self_attn.q_norm.weight")}, K_TE, "Z-Image", NULL, "Qwen3 4B", "transformers"},
    {"llama-hunyuan", NULL, {DIM("model.embed_tokens.weight", 1, 4096), HAS("model.layers.31.mlp.gate_proj.weight")}, K_TE, NULL, NULL, "Llama-like 8B LM", "transformers"},

    /* ---- LoRAs (after every exact-key rule: the scan is dearer) ---- */
    {"lora", NULL, {HAS(LORA_ANY)}, K_LORA, NULL, NULL, "LoRA", NULL},
    {"lora-sd1", "lora", {DIM(LORA_ATTN2_K "|" LORA_TE_Q, 1, 768), NOPREFIX("lora_te2_|text_encoder_2.")}, K_KEEP, "SD1.x", NULL, NULL, NULL},
    {"lora-sd2", "lora", {DIM(LORA_ATTN2_K "|" LORA_TE_Q, 1, 1024), NOPREFIX("lora_te2_|text_encoder_2.")}, K_KEEP, "SD2.x", NULL, NULL, NULL},
    {"lora-sdxl", "lora", {DIM(LORA_ATTN2_K, 1, 2048, 1280)}, K_KEEP, "SDXL", NULL, NULL, NULL},
    {"lora-sdxl-te", "lora", {ABSENT(LORA_ATTN2_K), PREFIX("lora_te2_|text_encoder_2.")}, K_KEEP, "SDXL", NULL, NULL, NULL},
    {"lora-flux", "lora", {DIM(LORA_FLUX_IN, 1, 3072)}, K_KEEP, "FLUX.1", NULL, NULL, NULL},
    {"lora-sd3", "lora", {HAS("*joint_blocks_0_*|*joint_blocks.0.*")}, K_KEEP, "SD3", NULL, NULL, NULL},
    {"lora-wan-1.3b", "lora", {DIM(LORA_WAN_Q, 1, 1536)}, K_KEEP, "Wan2.1", "1.3B", NULL, NULL},
    {"lora-wan-14b", "lora", {DIM(LORA_WAN_Q, 1, 5120)}, K_KEEP, "Wan", "14B", NULL, NULL},
    {"lora-wan-5b", "lora", {DIM(LORA_WAN_Q, 1, 3072)}, K_KEEP, "Wan2.2", "5B", NULL, NULL},
    {"lora-z-image", "lora", {HAS("*layers.0.attention.*|*layers_0_attention_*")}, K_KEEP, "Z-Image", NULL, NULL, NULL},
    {"lora-qwen-image", "lora", {HAS("*transformer_blocks.0.img_mlp.*|*transformer_blocks_0_img_mlp_*")}, K_KEEP, "Qwen-Image", NULL, NULL, NULL},

    /* ---- textual-inversion embeddings ---- */
    {"embedding-sdxl", NULL, {HAS("clip_l"), HAS("clip_g")}, K_EMB, "SDXL", NULL, "embedding", NULL},
    {"embedding", NULL, {HAS("emb_params|string_to_param.*")}, K_EMB, NULL, NULL, "embedding", NULL},
    {"embedding-sd1", "embedding", {DIM("emb_params|string_to_param.*", -1, 768)}, K_KEEP, "SD1.x", NULL, NULL, NULL},
    {"embedding-sd2", "embedding", {DIM("emb_params|string_to_param.*", -1, 1024)}, K_KEEP, "SD2.x", NULL, NULL, NULL},
    {"embedding-sdxl-g", "embedding", {DIM("emb_params|string_to_param.*", -1, 1280)}, K_KEEP, "SDXL", NULL, NULL, NULL},
};
const size_t cellar_id_rules_len = sizeof cellar_id_rules / sizeof *cellar_id_rules;

const id_lora_format cellar_id_lora_formats[] = {
    {"DoRA", {HAS("*.dora_scale")}, "*.lora_down.weight|*.lora_A.weight", 0},
    {"LoHa", {HAS("*.hada_w1_a")}, "*.hada_w1_b", 0},
    {"LoKr", {HAS("*.lokr_w1|*.lokr_w1_a")}, "*.lokr_w2_b|*.lokr_w1_b", 0},
    {"OFT", {HAS("*.oft_blocks|*.oft_diag")}, NULL, 0},
    {"kohya", {PREFIX("lora_unet_|lora_te_|lora_te1_|lora_te2_|lora_te3_|lora_transformer_|lycoris_"), HAS("*.lora_down.weight")}, "*.lora_down.weight", 0},
    {"LyCORIS full", {HAS("*.diff"), NOPREFIX("*.lora_down.weight")}, NULL, 0},
    {"PEFT", {HAS("*.lora_A.weight|*.lora_A.default.weight")}, "*.lora_A.weight|*.lora_A.default.weight", 0},
    {"diffusers", {HAS("*.lora.down.weight|*.lora_linear_layer.down.weight|*_lora.down.weight")}, "*.lora.down.weight|*.lora_linear_layer.down.weight|*_lora.down.weight", 0},
    {"LoRA", {HAS("*.lora_down.weight")}, "*.lora_down.weight", 0},
};
const size_t cellar_id_lora_formats_len = sizeof cellar_id_lora_formats / sizeof *cellar_id_lora_formats;

const id_prefix_name cellar_id_lora_targets[] = {
    {"lora_unet_", "unet"},
    {"lora_te_", "te"},
    {"lora_te1_", "te1"},
    {"lora_te2_", "te2"},
    {"lora_te3_", "te3"},
    {"lora_transformer_", "transformer"},
    {"unet.", "unet"},
    {"text_encoder.", "te1"},
    {"text_encoder_2.", "te2"},
    {"transformer.", "transformer"},
    {"diffusion_model.", "diffusion_model"},
    {"base_model.model.", "model"},
    {"lycoris_", "lycoris"},
};
const size_t cellar_id_lora_targets_len = sizeof cellar_id_lora_targets / sizeof *cellar_id_lora_targets;

/* IDENTIFY.md (b): the other parts of a single file. */
const id_prefix_name cellar_id_parts[] = {
    {"model.diffusion_model.", "UNet"},
    {"first_stage_model.", "VAE"},
    {"cond_stage_model.transformer.", "CLIP-L"},
    {"cond_stage_model.model.", "CLIP-H"},
    {"conditioner.embedders.0.transformer.", "CLIP-L"},
    {"conditioner.embedders.1.model.", "CLIP-G"},
    {"conditioner.embedders.0.model.", "CLIP-G"},
    {"text_encoders.clip_l.", "CLIP-L"},
    {"text_encoders.clip_g.", "CLIP-G"},
    {"text_encoders.t5xxl.", "T5-XXL"},
    {"vae.", "VAE"},
    {"control_model.", "ControlNet"},
};
const size_t cellar_id_parts_len = sizeof cellar_id_parts / sizeof *cellar_id_parts;

/* kohya's sai_model_spec.py architecture names and ss_base_model_version. */
const id_declared cellar_id_declared[] = {
    {"modelspec.architecture", "stable-diffusion-xl-v1-base", "SDXL", "base"},
    {"modelspec.architecture", "stable-diffusion-xl-v1-refiner", "SDXL", "refiner"},
    {"modelspec.architecture", "stable-diffusion-xl", "SDXL", NULL},
    {"modelspec.architecture", "stable-diffusion-v2-768-v", "SD2.x", "v-pred"},
    {"modelspec.architecture", "stable-diffusion-v2", "SD2.x", NULL},
    {"modelspec.architecture", "stable-diffusion-v1", "SD1.x", NULL},
    {"modelspec.architecture", "stable-diffusion-3.5-large", "SD3.5", "Large"},
    {"modelspec.architecture", "stable-diffusion-3.5-medium", "SD3.5", "Medium"},
    {"modelspec.architecture", "stable-diffusion-3", "SD3", NULL},
    {"modelspec.architecture", "flux-1-dev", "FLUX.1", "dev"},
    {"modelspec.architecture", "flux-1-schnell", "FLUX.1", "schnell"},
    {"modelspec.architecture", "flux-1", "FLUX.1", NULL},
    {"modelspec.architecture", "chroma", "Chroma", NULL},
    {"modelspec.architecture", "lumina-2", "Lumina2", NULL},
    {"ss_base_model_version", "sdxl_base", "SDXL", "base"},
    {"ss_base_model_version", "sdxl_refiner", "SDXL", "refiner"},
    {"ss_base_model_version", "sdxl", "SDXL", NULL},
    {"ss_base_model_version", "sd_v2", "SD2.x", NULL},
    {"ss_base_model_version", "sd_v1", "SD1.x", NULL},
    {"ss_base_model_version", "sd3", "SD3", NULL},
    {"ss_base_model_version", "flux1", "FLUX.1", NULL},
    {"ss_base_model_version", "lumina2", "Lumina2", NULL},
};
const size_t cellar_id_declared_len = sizeof cellar_id_declared / sizeof *cellar_id_declared;
