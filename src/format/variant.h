/* The one rule for diffusers weight variants, shared by the model-folder
 * components (structural.c) and the DDUF weight sets (dduf.c), so a folder
 * and its DDUF pack group their files the same way. */
#ifndef CELLAR_VARIANT_H
#define CELLAR_VARIANT_H

#include <stdbool.h>
#include <stddef.h>

/* If name (n bytes, no folder) is a weights file, ".safetensors" or
 * ".safetensors.index.json", returns the length of its stem (the name
 * without that extension) and sets *index; else returns 0. */
size_t cellar_weights_stem(const char *name, size_t n, bool *index);

/* Whether a weights file's stem names a variant, as diffusers names them
 * (weights "diffusion_pytorch_model", variant "fp16"):
 *   diffusion_pytorch_model                         no variant
 *   diffusion_pytorch_model.fp16                    fp16
 *   diffusion_pytorch_model.fp16-00001-of-00002     fp16, a shard
 *   diffusion_pytorch_model-00001-of-00002.fp16     fp16 (older shards)
 * A stem holding a '.' (past a trailing -NNNNN-of-NNNNN shard suffix,
 * which holds none) has a variant: the text after its last '.' (*variant,
 * *len; it may be empty). Loaded without a variant, diffusers takes the
 * files whose stem has none. */
bool cellar_weights_variant(const char *stem, size_t n, const char **variant, size_t *len);

#endif
