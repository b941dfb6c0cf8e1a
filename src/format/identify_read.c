/* Identification entry points over what cellar reads: every reader turns
 * its file into the generic tensor list of cellar_identify_list() (names,
 * dtypes, shapes in PyTorch order, metadata, one-element values). A new
 * reader (PyTorch pickles) adds one row to the readers[] table below. */
#include "identify.h"

#include "safetensors.h"
#include "shard.h"
#include "structural.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A little-endian scalar's value, for the dtypes LoRA alphas come in. */
static bool scalar_value(double *out, const void *p, cellar_dtype dt)
{
    const unsigned char *b = p;
    switch (dt) {
    case CELLAR_DTYPE_F32: {
        float f;
        memcpy(&f, b, 4);
        *out = f;
        return true;
    }
    case CELLAR_DTYPE_F64:
        memcpy(out, b, 8);
        return true;
    case CELLAR_DTYPE_F16: {
        unsigned h = (unsigned)b[0] | (unsigned)b[1] << 8;
        unsigned e = (h >> 10) & 0x1f, m = h & 0x3ff;
        double v = e == 0 ? m / 1024.0 / 16384.0
                          : e == 31 ? HUGE_VAL : (1 + m / 1024.0) * (double)(1u << e) / 32768.0;
        *out = (h & 0x8000) ? -v : v;
        return true;
    }
    case CELLAR_DTYPE_BF16: {
        uint32_t u = ((uint32_t)b[0] | (uint32_t)b[1] << 8) << 16;
        float f;
        memcpy(&f, &u, 4);
        *out = f;
        return true;
    }
    case CELLAR_DTYPE_I32: {
        int32_t i;
        memcpy(&i, b, 4);
        *out = i;
        return true;
    }
    case CELLAR_DTYPE_I64: {
        int64_t i;
        memcpy(&i, b, 8);
        *out = (double)i;
        return true;
    }
    default:
        return false;
    }
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

int cellar_identify_st(cellar_identity **out, cellar_st *const *files, size_t nfiles,
                       const cellar_registry *reg)
{
    *out = NULL;
    cellar_st_member *all = NULL;
    size_t nt = 0;
    int rc = cellar_st_union(&all, &nt, files, nfiles);
    if (rc)
        return rc;
    cellar_tensor_desc *t = cellar_calloc(nt ? nt : 1, sizeof *t);
    size_t nmeta = nfiles ? cellar_st_metadata_count(files[0]) : 0;
    const char **mk = cellar_calloc(nmeta ? nmeta : 1, sizeof *mk);
    const char **mv = cellar_calloc(nmeta ? nmeta : 1, sizeof *mv);
    rc = t && mk && mv ? 0 : CELLAR_ENOMEM;
    if (rc)
        goto done;
    for (size_t i = 0; i < nt; i++) {
        const cellar_st_tensor *s = all[i].t;
        cellar_tensor_desc *d = &t[i];
        *d = (cellar_tensor_desc){.name = s->name, .name_len = s->name_len,
                                  .dtype = s->dtype_name, .rank = s->rank, .shape = s->shape};
        /* LoRA alphas: one-element tensors named "*.alpha" (the only values
         * the rules read; reading them maps the file). */
        if (s->nelem == 1 && ends_with(s->name, s->name_len, ".alpha")) {
            cellar_st *st = files[all[i].file];
            size_t idx;
            const void *p;
            if (cellar_st_find(&idx, st, s->name, s->name_len) == 0 &&
                cellar_st_data(&p, st, idx) == 0)
                d->has_value = scalar_value(&d->value, p, s->dtype);
            else
                cellar_error_clear(); /* no value: alpha from the metadata */
        }
    }
    for (size_t i = 0; i < nmeta; i++) {
        size_t kl, vl;
        cellar_st_metadata_at(&mk[i], &kl, &mv[i], &vl, files[0], i);
    }
    cellar_identify_input in = {.version = CELLAR_IDENTIFY_INPUT_VERSION};
    in.tensors = t;
    in.ntensors = nt;
    in.meta_keys = mk;
    in.meta_values = mv;
    in.nmeta = nmeta;
    in.registry = reg;
    rc = cellar_identify_list(out, &in);
done:
    free(all);
    free(t);
    free(mk);
    free(mv);
    return rc;
}

/* ---- readers ---- */

static int identify_pt(cellar_identity **out, const char *path, const cellar_registry *reg);

static int identify_shards(cellar_identity **out, const char *path, const cellar_registry *reg)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && cellar_pt_sniff(path))
        return identify_pt(out, path, reg); /* a component's pytorch_model.bin */
    cellar_shards *s;
    int rc = cellar_shards_open(&s, path);
    if (rc)
        return rc;
    size_t n = cellar_shards_nfiles(s);
    cellar_st **files = cellar_calloc(n ? n : 1, sizeof *files);
    if (!files) {
        cellar_shards_free(s);
        return CELLAR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        files[i] = cellar_shards_file(s, i);
    rc = cellar_identify_st(out, files, n, reg);
    free(files);
    cellar_shards_free(s);
    return rc;
}

static int identify_gguf(cellar_identity **out, const char *path, const cellar_registry *reg)
{
    cellar_gguf *g;
    int rc = cellar_gguf_open(&g, path);
    if (rc)
        return rc;
    size_t nt = cellar_gguf_tensor_count(g), nkv = cellar_gguf_kv_count(g);
    cellar_tensor_desc *t = cellar_calloc(nt ? nt : 1, sizeof *t);
    uint64_t *shapes = cellar_calloc(nt ? 4 * nt : 1, sizeof *shapes);
    char **mk = cellar_calloc(nkv ? nkv : 1, sizeof *mk);
    char **mv = cellar_calloc(nkv ? nkv : 1, sizeof *mv);
    size_t nm = 0;
    rc = t && shapes && mk && mv ? 0 : CELLAR_ENOMEM;
    for (size_t i = 0; i < nt && rc == 0; i++) {
        const cellar_gguf_tensor *x = cellar_gguf_tensor_at(g, i);
        uint64_t *sh = shapes + 4 * i;
        for (uint32_t d = 0; d < x->n_dims && d < 4; d++)
            sh[d] = x->dims[x->n_dims - 1 - d]; /* ne[0] is innermost */
        t[i] = (cellar_tensor_desc){.name = x->name, .name_len = x->name_len,
                                    .dtype = x->type_name, .rank = x->n_dims, .shape = sh};
    }
    /* String key/values are the metadata (general.architecture...). */
    for (size_t i = 0; i < nkv && rc == 0; i++) {
        const cellar_gguf_kv *kv = cellar_gguf_kv_at(g, i);
        cellar_gguf_value v;
        if (kv->type != CELLAR_GGUF_STRING || cellar_gguf_kv_value(&v, g, i, 0) != 0)
            continue;
        mk[nm] = cellar_strndup(kv->key, kv->key_len);
        mv[nm] = cellar_strndup(v.str, v.str_len);
        if (!mk[nm] || !mv[nm])
            rc = CELLAR_ENOMEM;
        nm++;
    }
    if (rc == 0) {
        cellar_identify_input in = {.version = CELLAR_IDENTIFY_INPUT_VERSION};
        in.tensors = t;
        in.ntensors = nt;
        in.meta_keys = (const char *const *)mk;
        in.meta_values = (const char *const *)mv;
        in.nmeta = nm;
        in.registry = reg;
        rc = cellar_identify_list(out, &in);
    }
    for (size_t i = 0; i < nm; i++) {
        free(mk[i]);
        free(mv[i]);
    }
    free(mk);
    free(mv);
    free(t);
    free(shapes);
    cellar_gguf_free(g);
    return rc;
}

/* A PyTorch checkpoint: the state dict's tensors (src/format/pickle.c),
 * read without running the pickle; LoRA alphas read from the file. */
static int identify_pt(cellar_identity **out, const char *path, const cellar_registry *reg)
{
    cellar_pt *pt;
    int rc = cellar_pt_open(&pt, path, 0);
    if (rc)
        return rc;
    size_t nt = cellar_pt_count(pt);
    cellar_tensor_desc *t = cellar_calloc(nt ? nt : 1, sizeof *t);
    rc = t ? 0 : CELLAR_ENOMEM;
    for (size_t i = 0; i < nt && rc == 0; i++) {
        const cellar_pt_tensor *x = cellar_pt_tensor_at(pt, i);
        t[i] = (cellar_tensor_desc){.name = x->name, .name_len = x->name_len,
                                    .dtype = x->dtype_name, .rank = x->rank, .shape = x->shape};
        unsigned char v[16];
        if (x->nelem == 1 && x->nbytes <= sizeof v && x->dtype != CELLAR_DTYPE__COUNT &&
            ends_with(x->name, x->name_len, ".alpha") && cellar_pt_read(v, sizeof v, pt, i) == 0)
            t[i].has_value = scalar_value(&t[i].value, v, x->dtype);
    }
    if (rc == 0) {
        cellar_identify_input in = {.version = CELLAR_IDENTIFY_INPUT_VERSION};
        in.tensors = t;
        in.ntensors = nt;
        in.registry = reg;
        rc = cellar_identify_list(out, &in);
    }
    free(t);
    cellar_pt_free(pt);
    return rc;
}

/* A name "comp/stem.safetensors" whose stem carries no variant (".fp16")
 * beyond a shard suffix: the files diffusers loads by default. */
static bool dduf_default_weights(const cellar_dduf_entry *e, const char *comp)
{
    size_t cl = strlen(comp);
    static const char ext[] = ".safetensors";
    if (e->name_len <= cl + 1 + sizeof ext - 1 || memcmp(e->name, comp, cl) || e->name[cl] != '/' ||
        !ends_with(e->name, e->name_len, ext))
        return false;
    const char *base = e->name + cl + 1;
    size_t bl = e->name_len - cl - 1 - (sizeof ext - 1);
    return memchr(base, '/', bl) == NULL && memchr(base, '.', bl) == NULL;
}

static int identify_dduf(cellar_identity **out, const char *path, const cellar_registry *reg)
{
    cellar_dduf *d;
    int rc = cellar_dduf_open(&d, path, 0);
    if (rc)
        return rc;
    size_t nc = cellar_dduf_component_count(d), ne = cellar_dduf_entry_count(d), n = 0;
    cellar_identity **kids = cellar_calloc(nc ? nc : 1, sizeof *kids);
    const char **names = cellar_calloc(nc ? nc : 1, sizeof *names);
    cellar_st **files = cellar_calloc(ne ? ne : 1, sizeof *files);
    rc = kids && names && files ? 0 : CELLAR_ENOMEM;
    for (size_t c = 0; c < nc && rc == 0; c++) {
        const char *comp = cellar_dduf_component_at(d, c);
        size_t nf = 0;
        for (size_t i = 0; i < ne && rc == 0; i++)
            if (dduf_default_weights(cellar_dduf_entry_at(d, i), comp))
                rc = cellar_dduf_open_safetensors(&files[nf++], d, i);
        if (rc == 0 && nf) {
            rc = cellar_identify_st(&kids[n], files, nf, reg);
            names[n] = comp;
            n += rc == 0;
        }
        for (size_t i = 0; i < nf; i++) {
            cellar_st_free(files[i]);
            files[i] = NULL;
        }
    }
    free(files);
    if (rc == 0) {
        rc = cellar_identity_pipeline(out, names, kids, n, "DDUF");
    } else {
        for (size_t i = 0; i < n; i++)
            cellar_identity_free(kids[i]);
        free(kids);
    }
    free(names);
    cellar_dduf_free(d);
    return rc;
}

static int identify_folder(cellar_identity **out, const char *path, const cellar_registry *reg)
{
    cellar_component *c;
    size_t nc;
    int rc = cellar_components(&c, &nc, path);
    if (rc)
        return rc;
    if (nc == 1 && !*c[0].name) {
        rc = identify_shards(out, c[0].path, reg);
        cellar_components_free(c, nc);
        return rc;
    }
    cellar_identity **kids = cellar_calloc(nc ? nc : 1, sizeof *kids);
    const char **names = cellar_calloc(nc ? nc : 1, sizeof *names);
    size_t n = 0;
    rc = kids && names ? 0 : CELLAR_ENOMEM;
    for (size_t i = 0; i < nc && rc == 0; i++) {
        rc = identify_shards(&kids[n], c[i].path, reg);
        names[n] = c[i].name;
        n += rc == 0;
    }
    if (rc == 0) {
        rc = cellar_identity_pipeline(out, names, kids, n, "diffusers folder");
    } else {
        for (size_t i = 0; i < n; i++)
            cellar_identity_free(kids[i]);
        free(kids);
    }
    free(names);
    cellar_components_free(c, nc);
    return rc;
}

/* Which reader takes a path: by its first bytes, then its name; the
 * safetensors/shard reader takes what no row above claims (no magic). A
 * PyTorch pickle reader goes in as one more row. */
struct reader {
    bool (*match)(const char *path, const struct stat *st, const unsigned char *head, size_t n);
    int (*identify)(cellar_identity **out, const char *path, const cellar_registry *reg);
};

static bool match_gguf(const char *path, const struct stat *st, const unsigned char *head, size_t n)
{
    (void)path;
    return S_ISREG(st->st_mode) && n >= 4 && !memcmp(head, "GGUF", 4);
}

static bool match_dduf(const char *path, const struct stat *st, const unsigned char *head, size_t n)
{
    size_t len = strlen(path);
    return S_ISREG(st->st_mode) && ((n >= 4 && !memcmp(head, "PK\x03\x04", 4)) ||
                                    (len > 5 && !strcmp(path + len - 5, ".dduf")));
}

static bool match_pt(const char *path, const struct stat *st, const unsigned char *head, size_t n)
{
    (void)head, (void)n;
    return S_ISREG(st->st_mode) && cellar_pt_sniff(path);
}

static bool match_any(const char *path, const struct stat *st, const unsigned char *head, size_t n)
{
    (void)path, (void)head, (void)n;
    return S_ISREG(st->st_mode) || S_ISDIR(st->st_mode);
}

static const struct reader readers[] = {
    {match_gguf, identify_gguf},
    {match_pt, identify_pt},
    {match_dduf, identify_dduf},
    {match_any, identify_folder},
};

int cellar_identify_path(cellar_identity **out, const char *path, const cellar_registry *reg)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return cellar_fail_errno(errno, "%s", path);
    unsigned char head[16] = {0};
    size_t n = 0;
    if (S_ISREG(st.st_mode)) {
        FILE *f = fopen(path, "rb");
        if (!f)
            return cellar_fail_errno(errno, "%s", path);
        n = fread(head, 1, sizeof head, f);
        fclose(f);
    }
    for (size_t i = 0; i < sizeof readers / sizeof *readers; i++)
        if (readers[i].match(path, &st, head, n))
            return readers[i].identify(out, path, reg);
    return cellar_fail(CELLAR_EUNSUPPORTED, "%s: not a weight file or model folder cellar reads",
                       path);
}
