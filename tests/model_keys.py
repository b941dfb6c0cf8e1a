"""Key lists (name -> shape) of real model layouts, built from their
published structure (BFL's flux/model.py, the LDM autoencoder, transformers'
CLIPTextModel and T5EncoderModel, the LDM/SGM UNet, ...), for the
identification tests: cli_identify.sh writes them as sparse safetensors
files. shash() is DiffSynth's structural hash (HASHES.md), so a builder
that reproduces a published hash shows the layout is the real one."""
import hashlib


def shash(d):
    e=[]
    for k,s in d.items():
        e.append(k+":"+"_".join(map(str,s))); e.append(k)
    e.sort(key=lambda x:x.encode())
    return hashlib.md5(",".join(e).encode()).hexdigest()

def flux(guidance=True, inch=64, nd=19, ns=38, h=3072):
    d={}
    for i in range(nd):
        for s in ("img","txt"):
            p=f"double_blocks.{i}.{s}_"
            d[p+"attn.norm.key_norm.scale"]=[128]; d[p+"attn.norm.query_norm.scale"]=[128]
            d[p+"attn.proj.bias"]=[h]; d[p+"attn.proj.weight"]=[h,h]
            d[p+"attn.qkv.bias"]=[3*h]; d[p+"attn.qkv.weight"]=[3*h,h]
            d[p+"mlp.0.bias"]=[4*h]; d[p+"mlp.0.weight"]=[4*h,h]
            d[p+"mlp.2.bias"]=[h]; d[p+"mlp.2.weight"]=[h,4*h]
            d[p+"mod.lin.bias"]=[6*h]; d[p+"mod.lin.weight"]=[6*h,h]
    for i in range(ns):
        p=f"single_blocks.{i}."
        d[p+"linear1.bias"]=[7*h]; d[p+"linear1.weight"]=[7*h,h]
        d[p+"linear2.bias"]=[h]; d[p+"linear2.weight"]=[h,5*h]
        d[p+"modulation.lin.bias"]=[3*h]; d[p+"modulation.lin.weight"]=[3*h,h]
        d[p+"norm.key_norm.scale"]=[128]; d[p+"norm.query_norm.scale"]=[128]
    d["final_layer.adaLN_modulation.1.bias"]=[2*h]; d["final_layer.adaLN_modulation.1.weight"]=[2*h,h]
    d["final_layer.linear.bias"]=[64]; d["final_layer.linear.weight"]=[64,h]
    mlps=[("time_in",256),("vector_in",768)]+([("guidance_in",256)] if guidance else [])
    for n,i in mlps:
        d[n+".in_layer.bias"]=[h]; d[n+".in_layer.weight"]=[h,i]
        d[n+".out_layer.bias"]=[h]; d[n+".out_layer.weight"]=[h,h]
    d["img_in.bias"]=[h]; d["img_in.weight"]=[h,inch]
    d["txt_in.bias"]=[h]; d["txt_in.weight"]=[h,4096]
    return d

def ldm_vae(z=16, ch=128, mult=(1,2,4,4), nres=2, quant=False, pre=""):
    d={}
    def res(p,i,o):
        d[p+"norm1.weight"]=[i]; d[p+"norm1.bias"]=[i]
        d[p+"conv1.weight"]=[o,i,3,3]; d[p+"conv1.bias"]=[o]
        d[p+"norm2.weight"]=[o]; d[p+"norm2.bias"]=[o]
        d[p+"conv2.weight"]=[o,o,3,3]; d[p+"conv2.bias"]=[o]
        if i!=o: d[p+"nin_shortcut.weight"]=[o,i,1,1]; d[p+"nin_shortcut.bias"]=[o]
    def attn(p,c):
        for n in ("norm",): d[p+n+".weight"]=[c]; d[p+n+".bias"]=[c]
        for n in ("q","k","v","proj_out"): d[p+n+".weight"]=[c,c,1,1]; d[p+n+".bias"]=[c]
    e=pre+"encoder."
    d[e+"conv_in.weight"]=[ch,3,3,3]; d[e+"conv_in.bias"]=[ch]
    cin=ch
    for i,m in enumerate(mult):
        co=ch*m
        for b in range(nres):
            res(f"{e}down.{i}.block.{b}.",cin,co); cin=co
        if i!=len(mult)-1:
            d[f"{e}down.{i}.downsample.conv.weight"]=[co,co,3,3]; d[f"{e}down.{i}.downsample.conv.bias"]=[co]
    res(e+"mid.block_1.",cin,cin); attn(e+"mid.attn_1.",cin); res(e+"mid.block_2.",cin,cin)
    d[e+"norm_out.weight"]=[cin]; d[e+"norm_out.bias"]=[cin]
    d[e+"conv_out.weight"]=[2*z,cin,3,3]; d[e+"conv_out.bias"]=[2*z]
    dd=pre+"decoder."
    cin=ch*mult[-1]
    d[dd+"conv_in.weight"]=[cin,z,3,3]; d[dd+"conv_in.bias"]=[cin]
    res(dd+"mid.block_1.",cin,cin); attn(dd+"mid.attn_1.",cin); res(dd+"mid.block_2.",cin,cin)
    for i in reversed(range(len(mult))):
        co=ch*mult[i]
        for b in range(nres+1):
            res(f"{dd}up.{i}.block.{b}.",cin,co); cin=co
        if i!=0:
            d[f"{dd}up.{i}.upsample.conv.weight"]=[co,co,3,3]; d[f"{dd}up.{i}.upsample.conv.bias"]=[co]
    d[dd+"norm_out.weight"]=[cin]; d[dd+"norm_out.bias"]=[cin]
    d[dd+"conv_out.weight"]=[3,cin,3,3]; d[dd+"conv_out.bias"]=[3]
    if quant:
        d[pre+"quant_conv.weight"]=[2*z,2*z,1,1]; d[pre+"quant_conv.bias"]=[2*z]
        d[pre+"post_quant_conv.weight"]=[z,z,1,1]; d[pre+"post_quant_conv.bias"]=[z]
    return d

def clip_text(layers=12, w=768, ff=3072, vocab=49408, pos=77, posids=False, proj=None, pre=""):
    d={}
    t=pre+"text_model."
    d[t+"embeddings.token_embedding.weight"]=[vocab,w]
    d[t+"embeddings.position_embedding.weight"]=[pos,w]
    if posids: d[t+"embeddings.position_ids"]=[1,pos]
    for i in range(layers):
        p=f"{t}encoder.layers.{i}."
        for n in ("q_proj","k_proj","v_proj","out_proj"):
            d[p+f"self_attn.{n}.weight"]=[w,w]; d[p+f"self_attn.{n}.bias"]=[w]
        for n in ("layer_norm1","layer_norm2"):
            d[p+n+".weight"]=[w]; d[p+n+".bias"]=[w]
        d[p+"mlp.fc1.weight"]=[ff,w]; d[p+"mlp.fc1.bias"]=[ff]
        d[p+"mlp.fc2.weight"]=[w,ff]; d[p+"mlp.fc2.bias"]=[w]
    d[t+"final_layer_norm.weight"]=[w]; d[t+"final_layer_norm.bias"]=[w]
    if proj: d[pre+"text_projection.weight"]=[proj,w]
    return d

def t5_enc(layers=24, d_model=4096, ff=10240, heads=64, vocab=32128, shared=True, embed=True):
    """transformers' T5EncoderModel; FLUX's text_encoder_2 keeps shared.weight
    and drops the tied encoder.embed_tokens.weight (embed=False)."""
    d={}
    if shared: d["shared.weight"]=[vocab,d_model]
    if embed: d["encoder.embed_tokens.weight"]=[vocab,d_model]
    for i in range(layers):
        p=f"encoder.block.{i}.layer."
        for n in "qkvo": d[p+f"0.SelfAttention.{n}.weight"]=[d_model,d_model] if n!='o' else [d_model,d_model]
        if i==0: d[p+"0.SelfAttention.relative_attention_bias.weight"]=[32,heads]
        d[p+"0.layer_norm.weight"]=[d_model]
        d[p+"1.DenseReluDense.wi_0.weight"]=[ff,d_model]; d[p+"1.DenseReluDense.wi_1.weight"]=[ff,d_model]
        d[p+"1.DenseReluDense.wo.weight"]=[d_model,ff]
        d[p+"1.layer_norm.weight"]=[d_model]
    d["encoder.final_layer_norm.weight"]=[d_model]
    return d


def ldm_unet(ch=320, mult=(1, 2, 4, 4), attn=(1, 1, 1, 0), depth=(1, 1, 1, 0), ctx=768,
             linear=False, adm=0, in_ch=4, nres=2, head_ch=None, pre=""):
    """The LDM/SGM openaimodel UNet (original key layout)."""
    d = {}
    te = ch * 4

    def res(p, i, o):
        d[p + "in_layers.0.weight"] = [i]; d[p + "in_layers.0.bias"] = [i]
        d[p + "in_layers.2.weight"] = [o, i, 3, 3]; d[p + "in_layers.2.bias"] = [o]
        d[p + "emb_layers.1.weight"] = [o, te]; d[p + "emb_layers.1.bias"] = [o]
        d[p + "out_layers.0.weight"] = [o]; d[p + "out_layers.0.bias"] = [o]
        d[p + "out_layers.3.weight"] = [o, o, 3, 3]; d[p + "out_layers.3.bias"] = [o]
        if i != o:
            d[p + "skip_connection.weight"] = [o, i, 1, 1]; d[p + "skip_connection.bias"] = [o]

    def st(p, c, n):
        d[p + "norm.weight"] = [c]; d[p + "norm.bias"] = [c]
        pw = [c, c] if linear else [c, c, 1, 1]
        d[p + "proj_in.weight"] = pw; d[p + "proj_in.bias"] = [c]
        d[p + "proj_out.weight"] = pw; d[p + "proj_out.bias"] = [c]
        for b in range(n):
            q = f"{p}transformer_blocks.{b}."
            for a, kv in (("attn1", c), ("attn2", ctx)):
                d[q + a + ".to_q.weight"] = [c, c]
                d[q + a + ".to_k.weight"] = [c, kv]
                d[q + a + ".to_v.weight"] = [c, kv]
                d[q + a + ".to_out.0.weight"] = [c, c]; d[q + a + ".to_out.0.bias"] = [c]
            d[q + "ff.net.0.proj.weight"] = [8 * c, c]; d[q + "ff.net.0.proj.bias"] = [8 * c]
            d[q + "ff.net.2.weight"] = [c, 4 * c]; d[q + "ff.net.2.bias"] = [c]
            for nn in ("norm1", "norm2", "norm3"):
                d[q + nn + ".weight"] = [c]; d[q + nn + ".bias"] = [c]

    P = pre
    d[P + "time_embed.0.weight"] = [te, ch]; d[P + "time_embed.0.bias"] = [te]
    d[P + "time_embed.2.weight"] = [te, te]; d[P + "time_embed.2.bias"] = [te]
    if adm:
        d[P + "label_emb.0.0.weight"] = [te, adm]; d[P + "label_emb.0.0.bias"] = [te]
        d[P + "label_emb.0.2.weight"] = [te, te]; d[P + "label_emb.0.2.bias"] = [te]
    d[P + "input_blocks.0.0.weight"] = [ch, in_ch, 3, 3]; d[P + "input_blocks.0.0.bias"] = [ch]
    chans = [ch]
    cur = ch
    k = 1
    for lvl, m in enumerate(mult):
        for _ in range(nres):
            res(f"{P}input_blocks.{k}.0.", cur, ch * m)
            cur = ch * m
            if attn[lvl]:
                st(f"{P}input_blocks.{k}.1.", cur, depth[lvl])
            chans.append(cur)
            k += 1
        if lvl != len(mult) - 1:
            d[f"{P}input_blocks.{k}.0.op.weight"] = [cur, cur, 3, 3]
            d[f"{P}input_blocks.{k}.0.op.bias"] = [cur]
            chans.append(cur)
            k += 1
    res(P + "middle_block.0.", cur, cur)
    st(P + "middle_block.1.", cur, depth[-1] if depth[-1] else max(depth))
    res(P + "middle_block.2.", cur, cur)
    k = 0
    for lvl in reversed(range(len(mult))):
        for i in range(nres + 1):
            skip = chans.pop()
            res(f"{P}output_blocks.{k}.0.", cur + skip, ch * mult[lvl])
            cur = ch * mult[lvl]
            j = 1
            if attn[lvl]:
                st(f"{P}output_blocks.{k}.1.", cur, depth[lvl])
                j = 2
            if lvl and i == nres:
                d[f"{P}output_blocks.{k}.{j}.conv.weight"] = [cur, cur, 3, 3]
                d[f"{P}output_blocks.{k}.{j}.conv.bias"] = [cur]
            k += 1
    d[P + "out.0.weight"] = [cur]; d[P + "out.0.bias"] = [cur]
    d[P + "out.2.weight"] = [4, cur, 3, 3]; d[P + "out.2.bias"] = [4]
    return d


def sd1_unet(**kw):
    return ldm_unet(**kw)


def sd2_unet(**kw):
    return ldm_unet(ctx=1024, linear=True, **kw)


def sdxl_unet(**kw):
    return ldm_unet(mult=(1, 2, 4), attn=(0, 1, 1), depth=(0, 2, 10), ctx=2048, linear=True,
                    adm=2816, **kw)


def sdxl_refiner_unet(**kw):
    return ldm_unet(ch=384, mult=(1, 2, 4, 4), attn=(0, 1, 1, 0), depth=(0, 4, 4, 0), ctx=1280,
                    linear=True, adm=2560, **kw)


def prefixed(pre, d):
    return {pre + k: v for k, v in d.items()}


def open_clip_text(layers, w, pre=""):
    """open_clip's text tower (SD2's ViT-H, SDXL's bigG in original files)."""
    d = {pre + "positional_embedding": [77, w], pre + "text_projection": [w, w],
         pre + "token_embedding.weight": [49408, w],
         pre + "ln_final.weight": [w], pre + "ln_final.bias": [w]}
    for i in range(layers):
        p = f"{pre}transformer.resblocks.{i}."
        d[p + "attn.in_proj_weight"] = [3 * w, w]; d[p + "attn.in_proj_bias"] = [3 * w]
        d[p + "attn.out_proj.weight"] = [w, w]; d[p + "attn.out_proj.bias"] = [w]
        for n in ("ln_1", "ln_2"):
            d[p + n + ".weight"] = [w]; d[p + n + ".bias"] = [w]
        d[p + "mlp.c_fc.weight"] = [4 * w, w]; d[p + "mlp.c_fc.bias"] = [4 * w]
        d[p + "mlp.c_proj.weight"] = [w, 4 * w]; d[p + "mlp.c_proj.bias"] = [w]
    return d


def sd3_mmdit(depth=24, ln_q=False, attn2_blocks=0):
    h = 64 * depth
    d = {"x_embedder.proj.weight": [h, 16, 2, 2], "x_embedder.proj.bias": [h],
         "pos_embed": [1, 36864, h], "context_embedder.weight": [h, 4096],
         "t_embedder.mlp.0.weight": [h, 256], "y_embedder.mlp.0.weight": [h, 2048],
         "final_layer.linear.weight": [64, h], "final_layer.adaLN_modulation.1.weight": [2 * h, h]}
    for i in range(depth):
        for b in ("context_block", "x_block"):
            p = f"joint_blocks.{i}.{b}."
            d[p + "attn.qkv.weight"] = [3 * h, h]; d[p + "attn.qkv.bias"] = [3 * h]
            d[p + "attn.proj.weight"] = [h, h]
            d[p + "adaLN_modulation.1.weight"] = [6 * h, h]
            d[p + "mlp.fc1.weight"] = [4 * h, h]; d[p + "mlp.fc2.weight"] = [h, 4 * h]
            if ln_q:
                d[p + "attn.ln_q.weight"] = [64]; d[p + "attn.ln_k.weight"] = [64]
        if i < attn2_blocks:
            d[f"joint_blocks.{i}.x_block.attn2.qkv.weight"] = [3 * h, h]
            d[f"joint_blocks.{i}.x_block.attn2.proj.weight"] = [h, h]
    return d


def wan_dit(dim=1536, layers=30, in_ch=16, i2v=False, ffn=8960, heads_dim=128):
    d = {"patch_embedding.weight": [dim, in_ch, 1, 2, 2], "patch_embedding.bias": [dim],
         "text_embedding.0.weight": [dim, 4096], "text_embedding.2.weight": [dim, dim],
         "time_embedding.0.weight": [dim, 256], "time_embedding.2.weight": [dim, dim],
         "time_projection.1.weight": [6 * dim, dim],
         "head.head.weight": [64, dim], "head.head.bias": [64], "head.modulation": [1, 2, dim]}
    for i in range(layers):
        p = f"blocks.{i}."
        for a in ("self_attn", "cross_attn"):
            for n in "qkvo":
                d[p + f"{a}.{n}.weight"] = [dim, dim]; d[p + f"{a}.{n}.bias"] = [dim]
            d[p + f"{a}.norm_q.weight"] = [dim]; d[p + f"{a}.norm_k.weight"] = [dim]
        if i2v:
            d[p + "cross_attn.k_img.weight"] = [dim, dim]; d[p + "cross_attn.v_img.weight"] = [dim, dim]
        d[p + "norm3.weight"] = [dim]; d[p + "norm3.bias"] = [dim]
        d[p + "ffn.0.weight"] = [ffn, dim]; d[p + "ffn.2.weight"] = [dim, ffn]
        d[p + "modulation"] = [1, 6, dim]
    if i2v:
        d["img_emb.proj.0.weight"] = [1280]; d["img_emb.proj.0.bias"] = [1280]
        d["img_emb.proj.1.weight"] = [1280, 1280]; d["img_emb.proj.3.weight"] = [dim, 1280]
    return d


def qwen_image_dit(layers=60, h=3072):
    d = {"img_in.weight": [h, 64], "img_in.bias": [h], "txt_in.weight": [h, 3584],
         "txt_norm.weight": [3584], "norm_out.linear.weight": [2 * h, h], "proj_out.weight": [64, h],
         "time_text_embed.timestep_embedder.linear_1.weight": [h, 256]}
    for i in range(layers):
        p = f"transformer_blocks.{i}."
        for s in ("img", "txt"):
            d[p + f"{s}_mod.1.weight"] = [6 * h, h]
            d[p + f"{s}_mlp.net.0.proj.weight"] = [4 * h, h]
            d[p + f"{s}_mlp.net.2.weight"] = [h, 4 * h]
        for n in ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj"):
            d[p + f"attn.{n}.weight"] = [h, h]
    return d


def wan_vae(v22=False):
    z = 48 if v22 else 16
    d = {"encoder.conv1.weight": [96, 3, 3, 3, 3], "decoder.conv1.weight": [384, z, 3, 3, 3],
         "conv1.weight": [2 * z, 2 * z, 1, 1, 1], "conv2.weight": [z, z, 1, 1, 1],
         "decoder.middle.0.residual.0.gamma": [384, 1, 1, 1],
         "decoder.middle.0.residual.2.weight": [384, 384, 3, 3, 3],
         "decoder.head.2.weight": [12 if v22 else 3, 96, 3, 3, 3]}
    if v22:
        d["decoder.upsamples.0.upsamples.0.residual.2.weight"] = [384, 384, 3, 3, 3]
    else:
        d["decoder.upsamples.0.residual.2.weight"] = [384, 384, 3, 3, 3]
    return d


def diffusers_vae(z=4):
    d = {"encoder.conv_in.weight": [128, 3, 3, 3], "decoder.conv_in.weight": [512, z, 3, 3],
         "decoder.conv_out.weight": [3, 128, 3, 3], "quant_conv.weight": [2 * z, 2 * z, 1, 1],
         "post_quant_conv.weight": [z, z, 1, 1]}
    for i in range(4):
        for b in range(3):
            d[f"decoder.up_blocks.{i}.resnets.{b}.conv1.weight"] = [512, 512, 3, 3]
        d[f"encoder.down_blocks.{i}.resnets.0.conv1.weight"] = [128, 128, 3, 3]
    return d


def lora(modules, fmt, rank, extra=None):
    """modules: list of (name, in, out). fmt: kohya | peft | diffusers | loha."""
    d = {}
    for name, i, o in modules:
        if fmt == "kohya":
            d[name + ".lora_down.weight"] = [rank, i]; d[name + ".lora_up.weight"] = [o, rank]
            d[name + ".alpha"] = []
        elif fmt == "peft":
            d[name + ".lora_A.weight"] = [rank, i]; d[name + ".lora_B.weight"] = [o, rank]
        elif fmt == "loha":
            d[name + ".hada_w1_a"] = [o, rank]; d[name + ".hada_w1_b"] = [rank, i]
            d[name + ".hada_w2_a"] = [o, rank]; d[name + ".hada_w2_b"] = [rank, i]
            d[name + ".alpha"] = []
    d.update(extra or {})
    return d
