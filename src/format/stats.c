/* Tensor statistics: counts of tensors, parameters and bytes, in total and
 * per element type, over safetensors files and GGUF files (what inspect
 * prints, and a binding's summary). */
#include "cellar.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* ggml type ids are small (the reader refuses unknown ones). */
#define GGML_TYPES 64

struct type_count {
    uint64_t tensors, bytes;
};

struct cellar_tensor_stats {
    cellar_tensor_totals total;
    struct type_count dtype[CELLAR_DTYPE__COUNT];
    struct type_count ggml[GGML_TYPES];
    /* Checkpoint tensors of a dtype safetensors lacks (complex128): one row,
     * named by the first one's torch dtype ("other" once names differ). */
    struct type_count other;
    const char *other_name;
};

int cellar_tensor_stats_new(cellar_tensor_stats **out)
{
    *out = cellar_calloc(1, sizeof **out);
    return *out ? 0 : CELLAR_ENOMEM;
}

void cellar_tensor_stats_free(cellar_tensor_stats *s)
{
    free(s);
}

static void add(cellar_tensor_stats *s, struct type_count *c, uint64_t nelem, uint64_t bytes)
{
    s->total.tensors++;
    if (ck_add(s->total.params, nelem, &s->total.params))
        s->total.params_overflow = 1;
    s->total.bytes += bytes;
    c->tensors++;
    c->bytes += bytes;
}

static void name_other(cellar_tensor_stats *s, const char *name)
{
    if (!s->other_name)
        s->other_name = name;
    else if (strcmp(s->other_name, name) != 0)
        s->other_name = "other";
}

int cellar_tensor_stats_add_st(cellar_tensor_stats *s, const cellar_st *st)
{
    RETURN_ERROR_IF(!s || !st, CELLAR_EINVAL, "cellar_tensor_stats_add_st: no stats or file");
    for (size_t i = 0; i < cellar_st_count(st); i++) {
        const cellar_st_tensor *t = cellar_st_tensor_at(st, i);
        RETURN_ERROR_IF((unsigned)t->dtype >= CELLAR_DTYPE__COUNT, CELLAR_EINVAL,
                        "%s: tensor %zu has no known dtype", cellar_st_label(st), i);
        add(s, &s->dtype[t->dtype], t->nelem, t->end - t->begin);
    }
    return 0;
}

int cellar_tensor_stats_add_gguf(cellar_tensor_stats *s, const cellar_gguf *g)
{
    RETURN_ERROR_IF(!s || !g, CELLAR_EINVAL, "cellar_tensor_stats_add_gguf: no stats or file");
    for (size_t i = 0; i < cellar_gguf_tensor_count(g); i++) {
        const cellar_gguf_tensor *t = cellar_gguf_tensor_at(g, i);
        RETURN_ERROR_IF(t->type >= GGML_TYPES, CELLAR_EUNSUPPORTED,
                        "tensor %zu: ggml type %u is beyond the ones cellar counts", i, t->type);
        add(s, &s->ggml[t->type], t->elements, t->size);
    }
    return 0;
}

int cellar_tensor_stats_add_pt(cellar_tensor_stats *s, const cellar_pt *pt)
{
    RETURN_ERROR_IF(!s || !pt, CELLAR_EINVAL, "cellar_tensor_stats_add_pt: no stats or file");
    for (size_t i = 0; i < cellar_pt_count(pt); i++) {
        const cellar_pt_tensor *t = cellar_pt_tensor_at(pt, i);
        if ((unsigned)t->dtype < CELLAR_DTYPE__COUNT) {
            add(s, &s->dtype[t->dtype], t->nelem, t->nbytes);
            continue;
        }
        name_other(s, t->dtype_name);
        add(s, &s->other, t->nelem, t->nbytes);
    }
    return 0;
}

int cellar_tensor_stats_merge(cellar_tensor_stats *into, const cellar_tensor_stats *from)
{
    RETURN_ERROR_IF(!into || !from, CELLAR_EINVAL, "cellar_tensor_stats_merge: no stats");
    into->total.tensors += from->total.tensors;
    if (ck_add(into->total.params, from->total.params, &into->total.params) ||
        from->total.params_overflow)
        into->total.params_overflow = 1;
    into->total.bytes += from->total.bytes;
    for (size_t i = 0; i < CELLAR_DTYPE__COUNT; i++) {
        into->dtype[i].tensors += from->dtype[i].tensors;
        into->dtype[i].bytes += from->dtype[i].bytes;
    }
    for (size_t i = 0; i < GGML_TYPES; i++) {
        into->ggml[i].tensors += from->ggml[i].tensors;
        into->ggml[i].bytes += from->ggml[i].bytes;
    }
    if (from->other.tensors) {
        name_other(into, from->other_name);
        into->other.tensors += from->other.tensors;
        into->other.bytes += from->other.bytes;
    }
    return 0;
}

void cellar_tensor_stats_totals(cellar_tensor_totals *out, const cellar_tensor_stats *s)
{
    memset(out, 0, sizeof *out);
    if (s)
        *out = s->total;
}

/* The i-th non-empty row: safetensors dtypes in enum order, then ggml types
 * by id, then the other row. */
static const struct type_count *row(const cellar_tensor_stats *s, size_t i, const char **name)
{
    for (size_t d = 0; d < CELLAR_DTYPE__COUNT; d++)
        if (s->dtype[d].tensors && i-- == 0) {
            *name = cellar_dtype_name((cellar_dtype)d);
            return &s->dtype[d];
        }
    for (uint32_t t = 0; t < GGML_TYPES; t++)
        if (s->ggml[t].tensors && i-- == 0) {
            *name = cellar_ggml_type_name(t);
            return &s->ggml[t];
        }
    if (s->other.tensors && i == 0) {
        *name = s->other_name;
        return &s->other;
    }
    return NULL;
}

size_t cellar_tensor_stats_type_count(const cellar_tensor_stats *s)
{
    size_t n = 0;
    for (size_t d = 0; s && d < CELLAR_DTYPE__COUNT; d++)
        n += s->dtype[d].tensors != 0;
    for (size_t t = 0; s && t < GGML_TYPES; t++)
        n += s->ggml[t].tensors != 0;
    return n + (s && s->other.tensors != 0);
}

int cellar_tensor_stats_type_at(const char **name, uint64_t *tensors, uint64_t *bytes,
                                const cellar_tensor_stats *s, size_t i)
{
    const char *nm = NULL;
    const struct type_count *c = s ? row(s, i, &nm) : NULL;
    RETURN_ERROR_IF(!c, CELLAR_EINVAL, "tensor statistics: no type row %zu", i);
    *name = nm;
    *tensors = c->tensors;
    *bytes = c->bytes;
    return 0;
}
