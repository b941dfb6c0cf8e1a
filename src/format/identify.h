/* Identification rules as data (identify_rules.c), evaluated by one engine
 * (identify.c). The public API is in cellar.h.
 *
 * A predicate tests the tensor list: a key present or absent, a dimension
 * in a set of values, a prefix present or absent. Keys:
 *   - "$rest" means P + rest, P being the diffusion prefix of the file
 *     ("model.diffusion_model.", "model.model.", "net." when it holds more
 *     than 5 keys, else none);
 *   - '*' matches any run of characters, '?' any one character; a key with
 *     wildcards resolves to the first matching name in byte order;
 *   - "a|b" tries each alternative in turn, the first that resolves wins. */
#ifndef CELLAR_IDENTIFY_H
#define CELLAR_IDENTIFY_H

#include "util.h"

enum id_op {
    ID_END = 0,
    ID_HAS,      /* the key resolves */
    ID_ABSENT,   /* it does not */
    ID_DIM,      /* it resolves and shape[axis] is one of v[] (axis -1: the last) */
    ID_PREFIX,   /* some name starts with key */
    ID_NOPREFIX, /* none does */
    ID_RANK,     /* it resolves and has rank v[0] */
    ID_META,     /* metadata key present and its value starts with v_str */
};

typedef struct id_pred {
    unsigned char op;
    signed char axis;
    const char *key;
    uint64_t v[4]; /* a set of values, 0-terminated when shorter */
    const char *v_str;
} id_pred;

#define ID_MAX_PREDS 5

/* A rule. Top-level rules (parent NULL) are tried in table order; the
 * first whose predicates all hold decides kind, base, component and layout.
 * Then every rule refining it (parent == its id), in table order: each that
 * holds may replace base, component or layout, and adds its variant word. */
typedef struct id_rule {
    const char *id;
    const char *parent;
    id_pred when[ID_MAX_PREDS];
    cellar_model_kind kind;
    const char *base, *variant, *component, *layout;
} id_rule;

extern const id_rule cellar_id_rules[];
extern const size_t cellar_id_rules_len;

/* LoRA formats: first match decides the format; rank_key's dim 0 is the
 * rank (rank_axis: which dimension). */
typedef struct id_lora_format {
    const char *format;
    id_pred when[ID_MAX_PREDS];
    const char *rank_key;
    signed char rank_axis;
} id_lora_format;
extern const id_lora_format cellar_id_lora_formats[];
extern const size_t cellar_id_lora_formats_len;

/* LoRA targets: a name prefix -> the part it patches. */
typedef struct id_prefix_name {
    const char *prefix, *name;
} id_prefix_name;
extern const id_prefix_name cellar_id_lora_targets[];
extern const size_t cellar_id_lora_targets_len;

/* Parts of a single-file checkpoint: a name prefix -> the part. */
extern const id_prefix_name cellar_id_parts[];
extern const size_t cellar_id_parts_len;

/* Declared metadata: a value prefix of modelspec.architecture or
 * ss_base_model_version -> base and variant. */
typedef struct id_declared {
    const char *key, *value_prefix, *base, *variant;
} id_declared;
extern const id_declared cellar_id_declared[];
extern const size_t cellar_id_declared_len;


/* identify.c: a pipeline's result from its components' (children taken
 * over, freed with it, also on error; names copied). layout: "diffusers
 * folder", "DDUF". */
int cellar_identity_pipeline(cellar_identity **out, const char *const *names,
                             cellar_identity **children, size_t n, const char *layout);

#endif
