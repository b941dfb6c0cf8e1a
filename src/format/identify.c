/* Identification: what a weight file is, from its tensor list (names,
 * dtypes, shapes), its metadata and a few scalar values.
 *
 * Evidence, strongest first (IDENTIFY.md (d)): the structural hash of the
 * whole list in the registry, then of its top-level key groups (DiffSynth
 * 1.x's split), then the key-and-shape rules of identify_rules.c (one
 * engine, below, evaluates that table), then declared metadata. The
 * engine looks names up in a hash table (exact keys) or scans the sorted
 * names from a wildcard pattern's literal prefix, so a 10,000-tensor header
 * costs a sort and a few hundred lookups. */
#include "identify.h"

#include "registry.h"
#include "structural.h"

#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

/* ---- the tensor list, indexed ---- */

/* More top-level key groups than this: no group hashes (see hash_evidence). */
#define CELLAR_ID_MAX_GROUPS 64

typedef struct ctx {
    const cellar_tensor_desc *t;
    size_t n;
    size_t *sorted; /* indices by name bytes */
    size_t *table;  /* open addressing: index + 1, 0 empty */
    size_t mask;
    const char *P; /* the diffusion prefix */
    const cellar_identify_input *in;
} ctx;

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* qsort has no context argument in C11: each thread sorts with its own. */
static _Thread_local const ctx *sort_ctx;

static int cmp_sorted(const void *a, const void *b)
{
    const cellar_tensor_desc *x = &sort_ctx->t[*(const size_t *)a];
    const cellar_tensor_desc *y = &sort_ctx->t[*(const size_t *)b];
    return cellar_st_name_cmp(x->name, x->name_len, y->name, y->name_len);
}

static int ctx_init(ctx *c, const cellar_identify_input *in)
{
    memset(c, 0, sizeof *c);
    c->t = in->tensors;
    c->n = in->ntensors;
    c->in = in;
    c->P = "";
    size_t cap = 16;
    while (cap < 2 * c->n + 16)
        cap *= 2;
    c->sorted = cellar_calloc(c->n ? c->n : 1, sizeof *c->sorted);
    c->table = cellar_calloc(cap, sizeof *c->table);
    if (!c->sorted || !c->table)
        return CELLAR_ENOMEM;
    c->mask = cap - 1;
    for (size_t i = 0; i < c->n; i++) {
        c->sorted[i] = i;
        size_t h = (size_t)fnv1a(c->t[i].name, c->t[i].name_len) & c->mask;
        while (c->table[h])
            h = (h + 1) & c->mask;
        c->table[h] = i + 1;
    }
    return 0;
}

static void ctx_free(ctx *c)
{
    free(c->sorted);
    free(c->table);
}

static const cellar_tensor_desc *lookup(const ctx *c, const char *name, size_t len)
{
    size_t h = (size_t)fnv1a(name, len) & c->mask;
    for (size_t k; (k = c->table[h]) != 0; h = (h + 1) & c->mask) {
        const cellar_tensor_desc *t = &c->t[k - 1];
        if (t->name_len == len && memcmp(t->name, name, len) == 0)
            return t;
    }
    return NULL;
}

/* First sorted position whose name is >= key. */
static size_t lower_bound(const ctx *c, const char *key, size_t len)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const cellar_tensor_desc *t = &c->t[c->sorted[mid]];
        if (cellar_st_name_cmp(t->name, t->name_len, key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool starts_with(const cellar_tensor_desc *t, const char *p, size_t len)
{
    return t->name_len >= len && memcmp(t->name, p, len) == 0;
}

/* '*' any run, '?' any one byte. prefix: the name may go on past the
 * pattern's end. */
static bool glob(const char *p, size_t pl, const char *s, size_t sl, bool prefix)
{
    size_t i = 0, j = 0, star = (size_t)-1, mark = 0;
    while (j < sl) {
        if (i == pl && prefix)
            return true;
        if (i < pl && (p[i] == '?' || p[i] == s[j])) {
            i++;
            j++;
        } else if (i < pl && p[i] == '*') {
            star = i++;
            mark = j;
        } else if (star != (size_t)-1) {
            i = star + 1;
            j = ++mark;
        } else {
            return false;
        }
    }
    while (i < pl && p[i] == '*')
        i++;
    return i == pl;
}

/* One alternative of a key (no '|'): "$" expanded, then an exact lookup, a
 * prefix test, or a scan from the literal prefix. */
static const cellar_tensor_desc *resolve_one(const ctx *c, const char *k, size_t kl, bool prefix)
{
    char buf[512];
    size_t pl = 0;
    if (kl && k[0] == '$') {
        pl = strlen(c->P);
        k++;
        kl--;
    }
    if (pl + kl >= sizeof buf)
        return NULL;
    memcpy(buf, c->P, pl);
    memcpy(buf + pl, k, kl);
    size_t len = pl + kl;
    size_t lit = 0;
    while (lit < len && buf[lit] != '*' && buf[lit] != '?')
        lit++;
    if (lit == len && !prefix)
        return lookup(c, buf, len);
    /* "*suffix": a byte comparison per name instead of the glob. */
    if (lit == 0 && len > 1 && buf[0] == '*' && !prefix && !memchr(buf + 1, '*', len - 1) &&
        !memchr(buf + 1, '?', len - 1)) {
        const char *suf = buf + 1;
        size_t sl = len - 1;
        for (size_t i = 0; i < c->n; i++) {
            const cellar_tensor_desc *t = &c->t[c->sorted[i]];
            if (t->name_len >= sl && !memcmp(t->name + t->name_len - sl, suf, sl))
                return t;
        }
        return NULL;
    }
    for (size_t i = lower_bound(c, buf, lit); i < c->n; i++) {
        const cellar_tensor_desc *t = &c->t[c->sorted[i]];
        if (!starts_with(t, buf, lit))
            break;
        if (lit == len || glob(buf + lit, len - lit, t->name + lit, t->name_len - lit, prefix))
            return t;
    }
    return NULL;
}

/* A key with alternatives: the first that resolves. */
static const cellar_tensor_desc *resolve(const ctx *c, const char *key, bool prefix)
{
    for (const char *a = key;;) {
        const char *bar = strchr(a, '|');
        size_t len = bar ? (size_t)(bar - a) : strlen(a);
        const cellar_tensor_desc *t = resolve_one(c, a, len, prefix);
        if (t || !bar)
            return t;
        a = bar + 1;
    }
}

static const char *meta_get(const ctx *c, const char *key)
{
    const cellar_identify_input *in = c->in;
    for (size_t i = 0; in->meta_keys && in->meta_values && i < in->nmeta; i++)
        if (in->meta_keys[i] && in->meta_values[i] && strcmp(in->meta_keys[i], key) == 0)
            return in->meta_values[i];
    return NULL;
}

/* A DIM predicate's test on one resolved tensor. */
static bool dim_in(const cellar_tensor_desc *t, int axis, const uint64_t v[4])
{
    if (!t || t->rank == 0)
        return false;
    size_t a = axis < 0 ? t->rank - 1 : (size_t)axis;
    if (a >= t->rank)
        return false;
    for (int i = 0; i < 4 && v[i]; i++)
        if (t->shape[a] == v[i])
            return true;
    /* A set holding only 0 (never written: values are > 0) is "any". */
    return false;
}

/* For DIM, each alternative of the key is tried until one resolves AND
 * has the dimension: "lora_te_..|text_encoder.." reads "whichever of these
 * the file has". */
static bool pred_dim(const ctx *c, const id_pred *p)
{
    for (const char *a = p->key;;) {
        const char *bar = strchr(a, '|');
        size_t len = bar ? (size_t)(bar - a) : strlen(a);
        const cellar_tensor_desc *t = resolve_one(c, a, len, false);
        if (t)
            return dim_in(t, p->axis, p->v);
        if (!bar)
            return false;
        a = bar + 1;
    }
}

static bool pred_holds(const ctx *c, const id_pred *p)
{
    switch (p->op) {
    case ID_HAS:
        return resolve(c, p->key, false) != NULL;
    case ID_ABSENT:
        return resolve(c, p->key, false) == NULL;
    case ID_DIM:
        return pred_dim(c, p);
    case ID_PREFIX:
        return resolve(c, p->key, true) != NULL;
    case ID_NOPREFIX:
        return resolve(c, p->key, true) == NULL;
    case ID_RANK: {
        const cellar_tensor_desc *t = resolve(c, p->key, false);
        return t && t->rank == p->v[0];
    }
    case ID_META: {
        const char *v = meta_get(c, p->key);
        return v && strncmp(v, p->v_str, strlen(p->v_str)) == 0;
    }
    default:
        return true;
    }
}

static bool preds_hold(const ctx *c, const id_pred *when)
{
    for (int i = 0; i < ID_MAX_PREDS && when[i].op != ID_END; i++)
        if (!pred_holds(c, &when[i]))
            return false;
    return true;
}

/* ---- the result ---- */

struct cellar_identity {
    cellar_identity_info info;
    char **own; /* strings and arrays freed with the result */
    size_t nown;
    cellar_identity **children; /* a pipeline's components */
    size_t nchildren;
};

static const char *keep(cellar_identity *id, char *s, int *rc)
{
    if (!s) {
        *rc = CELLAR_ENOMEM;
        return NULL;
    }
    char **n = cellar_realloc(id->own, (id->nown + 1) * sizeof *n);
    if (!n) {
        free(s);
        *rc = CELLAR_ENOMEM;
        return NULL;
    }
    id->own = n;
    id->own[id->nown++] = s;
    return s;
}

/* Takes the buffer's bytes (b is left empty). */
static const char *keep_buf(cellar_identity *id, cellar_buf *b, int *rc)
{
    if (*rc) {
        cellar_buf_free(b);
        return NULL;
    }
    char *s = b->data ? b->data : cellar_strdup("");
    b->data = NULL;
    cellar_buf_free(b);
    return keep(id, s, rc);
}

void cellar_identity_free(cellar_identity *id)
{
    if (!id)
        return;
    for (size_t i = 0; i < id->nown; i++)
        free(id->own[i]);
    free(id->own);
    for (size_t i = 0; i < id->nchildren; i++)
        cellar_identity_free(id->children[i]);
    free(id->children);
    free(id);
}

const cellar_identity_info *cellar_identity_get(const cellar_identity *id)
{
    return id ? &id->info : NULL;
}

const char *cellar_identity_text(const cellar_identity *id)
{
    return id && id->info.text ? id->info.text : "";
}

const char *cellar_model_kind_name(cellar_model_kind k)
{
    static const char *const names[] = {
        "unknown", "checkpoint", "diffusion model", "VAE", "text encoder", "LoRA",
        "embedding", "ControlNet", "IP-Adapter", "pipeline", "other",
    };
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "unknown";
}

/* Appends word to a separator-joined list in b unless already there. */
static int join_word(cellar_buf *b, const char *sep, const char *word)
{
    if (!word || !*word)
        return 0;
    size_t wl = strlen(word), sl = strlen(sep);
    for (const char *p = b->data; p && *p;) {
        const char *e = strstr(p, sep);
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == wl && memcmp(p, word, wl) == 0)
            return 0;
        if (!e)
            break;
        p = e + sl;
    }
    int rc = b->len ? cellar_buf_append(b, sep, sl) : 0;
    return rc ? rc : cellar_buf_append(b, word, wl);
}

/* ---- precision: the dtype holding most elements, and a runner-up that
 * holds at least a tenth of them ---- */

static const char *precision(cellar_identity *id, const ctx *c, int *rc)
{
    struct dtype_elems {
        const char *name;
        uint64_t elems;
    } d[8];
    size_t nd = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < c->n; i++) {
        const char *name = c->t[i].dtype;
        if (!name)
            continue;
        uint64_t e = 1;
        for (size_t k = 0; k < c->t[i].rank; k++)
            if (ck_mul(e, c->t[i].shape[k], &e))
                e = UINT64_MAX / 2;
        size_t j = 0;
        while (j < nd && strcmp(d[j].name, name) != 0)
            j++;
        if (j == nd) {
            if (nd == sizeof d / sizeof *d)
                continue;
            d[nd++] = (struct dtype_elems){name, 0};
        }
        d[j].elems += e;
        total += e;
    }
    if (nd == 0)
        return NULL;
    size_t a = 0, b = (size_t)-1;
    for (size_t j = 1; j < nd; j++)
        if (d[j].elems > d[a].elems)
            a = j;
    for (size_t j = 0; j < nd; j++)
        if (j != a && (b == (size_t)-1 || d[j].elems > d[b].elems))
            b = j;
    cellar_buf s;
    cellar_buf_init(&s, 0);
    int r = cellar_buf_append(&s, d[a].name, strlen(d[a].name));
    if (r == 0 && b != (size_t)-1 && d[b].elems >= total / 10)
        r = cellar_buf_printf(&s, "+%s", d[b].name);
    if (r)
        *rc = r;
    return keep_buf(id, &s, rc);
}

/* ---- the steps ---- */

/* The diffusion prefix (IDENTIFY.md (b)): the most frequent of the
 * candidates if it holds more than 5 keys, else none. */
static void find_prefix(ctx *c)
{
    static const char *const cand[] = {"model.diffusion_model.", "model.model.", "net."};
    size_t best = 0;
    for (size_t k = 0; k < sizeof cand / sizeof *cand; k++) {
        size_t len = strlen(cand[k]), count = 0;
        for (size_t i = lower_bound(c, cand[k], len); i < c->n; i++, count++)
            if (!starts_with(&c->t[c->sorted[i]], cand[k], len))
                break;
        if (count > 5 && count > best) {
            best = count;
            c->P = cand[k];
        }
    }
}

/* Runs the rule table. */
static int apply_rules(cellar_identity *id, const ctx *c)
{
    const id_rule *top = NULL;
    for (size_t i = 0; i < cellar_id_rules_len && !top; i++)
        if (!cellar_id_rules[i].parent && preds_hold(c, cellar_id_rules[i].when))
            top = &cellar_id_rules[i];
    if (!top)
        return 0;
    cellar_identity_info *f = &id->info;
    f->kind = top->kind;
    f->base = top->base;
    f->component = top->component;
    f->layout = top->layout;
    cellar_buf variant, rules;
    cellar_buf_init(&variant, 0);
    cellar_buf_init(&rules, 0);
    int rc = join_word(&variant, " ", top->variant);
    if (rc == 0)
        rc = join_word(&rules, " ", top->id);
    for (size_t i = 0; i < cellar_id_rules_len && rc == 0; i++) {
        const id_rule *r = &cellar_id_rules[i];
        if (!r->parent || strcmp(r->parent, top->id) != 0 || !preds_hold(c, r->when))
            continue;
        if (r->base)
            f->base = r->base;
        if (r->component)
            f->component = r->component;
        if (r->layout)
            f->layout = r->layout;
        rc = join_word(&variant, " ", r->variant);
        if (rc == 0)
            rc = join_word(&rules, " ", r->id);
    }
    f->variant = variant.len ? keep_buf(id, &variant, &rc) : NULL;
    cellar_buf_free(&variant);
    f->rule = keep_buf(id, &rules, &rc);
    f->evidence |= CELLAR_EVIDENCE_RULE;
    return rc;
}

/* A single file's parts (UNet+VAE+CLIP...). */
static int find_parts(cellar_identity *id, const ctx *c)
{
    cellar_buf parts;
    cellar_buf_init(&parts, 0);
    int rc = 0, n = 0;
    for (size_t i = 0; i < cellar_id_parts_len && rc == 0; i++)
        if (resolve(c, cellar_id_parts[i].prefix, true)) {
            const char *name = cellar_id_parts[i].name;
            /* The diffusion part is called what the rules call it. */
            if (!strcmp(cellar_id_parts[i].prefix, "model.diffusion_model.") && id->info.component)
                name = id->info.component;
            size_t before = parts.len;
            rc = join_word(&parts, "+", name);
            n += parts.len != before;
        }
    if (rc == 0 && n >= 2) {
        id->info.parts = keep_buf(id, &parts, &rc);
        if (id->info.kind == CELLAR_KIND_UNKNOWN) {
            id->info.evidence |= CELLAR_EVIDENCE_RULE;
            id->info.rule = "parts";
        }
        if (id->info.kind == CELLAR_KIND_DIFFUSION || id->info.kind == CELLAR_KIND_UNKNOWN)
            id->info.kind = CELLAR_KIND_CHECKPOINT;
    }
    cellar_buf_free(&parts);
    return rc;
}

static double parse_double(const char *s, bool *ok)
{
    char *end;
    double v = s ? strtod(s, &end) : 0;
    *ok = s && end != s;
    return v;
}

/* Format, rank, alpha and targets of a LoRA. */
static int lora_details(cellar_identity *id, const ctx *c)
{
    cellar_identity_info *f = &id->info;
    const id_lora_format *fmt = NULL;
    for (size_t i = 0; i < cellar_id_lora_formats_len && !fmt; i++)
        if (preds_hold(c, cellar_id_lora_formats[i].when))
            fmt = &cellar_id_lora_formats[i];
    if (fmt) {
        f->lora_format = fmt->format;
        const cellar_tensor_desc *t = fmt->rank_key ? resolve(c, fmt->rank_key, false) : NULL;
        if (t && t->rank > (size_t)fmt->rank_axis && t->shape[fmt->rank_axis] <= 0xffffffffu)
            f->lora_rank = (unsigned)t->shape[fmt->rank_axis];
    }
    /* alpha: the scalar "X.alpha" values (the first module's), else the
     * metadata; rank from the metadata when shapes gave none. */
    for (size_t i = 0; i < c->n && !f->lora_has_alpha; i++) {
        const cellar_tensor_desc *t = &c->t[c->sorted[i]];
        if (t->has_value && t->name_len > 6 && !memcmp(t->name + t->name_len - 6, ".alpha", 6)) {
            f->lora_has_alpha = 1;
            f->lora_alpha = t->value;
        }
    }
    bool ok;
    double v = parse_double(meta_get(c, "ss_network_alpha"), &ok);
    if (!f->lora_has_alpha && ok) {
        f->lora_has_alpha = 1;
        f->lora_alpha = v;
        f->evidence |= CELLAR_EVIDENCE_METADATA;
    }
    v = parse_double(meta_get(c, "ss_network_dim"), &ok);
    if (!f->lora_rank && ok && v >= 1 && v < 4294967296.0) {
        f->lora_rank = (unsigned)v;
        f->evidence |= CELLAR_EVIDENCE_METADATA;
    }
    cellar_buf targets;
    cellar_buf_init(&targets, 0);
    int rc = 0;
    for (size_t i = 0; i < cellar_id_lora_targets_len && rc == 0; i++)
        if (resolve(c, cellar_id_lora_targets[i].prefix, true))
            rc = join_word(&targets, "+", cellar_id_lora_targets[i].name);
    if (targets.len)
        f->lora_targets = keep_buf(id, &targets, &rc);
    cellar_buf_free(&targets);
    return rc;
}

static cellar_model_kind kind_of_component(const char *comp)
{
    if (strchr(comp, '+'))
        return strstr(comp, "unet") || strstr(comp, "dit") ? CELLAR_KIND_CHECKPOINT
                                                          : CELLAR_KIND_OTHER;
    if (!strcmp(comp, "dit") || !strcmp(comp, "unet"))
        return CELLAR_KIND_DIFFUSION;
    if (!strncmp(comp, "vae", 3))
        return CELLAR_KIND_VAE;
    if (!strcmp(comp, "text_encoder"))
        return CELLAR_KIND_TEXT_ENCODER;
    if (!strcmp(comp, "controlnet"))
        return CELLAR_KIND_CONTROLNET;
    if (!strcmp(comp, "ip_adapter"))
        return CELLAR_KIND_IP_ADAPTER;
    return CELLAR_KIND_OTHER;
}

/* The whole list's hash, then (on a miss) its top-level groups'. */
static int hash_evidence(cellar_identity *id, const ctx *c, const cellar_registry *reg)
{
    cellar_identity_info *f = &id->info;
    const cellar_tensor_desc **byname = c->n ? cellar_calloc(c->n, sizeof *byname) : NULL;
    if (c->n && !byname)
        return CELLAR_ENOMEM;
    for (size_t i = 0; i < c->n; i++)
        byname[i] = &c->t[c->sorted[i]];
    int rc = cellar_structural_hash_ptrs(f->structural, byname, c->n, true);
    if (rc) {
        free(byname);
        return rc;
    }
    size_t n = cellar_registry_find_all(NULL, 0, reg, f->structural);
    if (n) {
        free(byname);
        const cellar_model_info **m = cellar_calloc(n, sizeof *m);
        if (!keep(id, (char *)m, &rc))
            return rc;
        f->nmatches = cellar_registry_find_all(m, n, reg, f->structural);
        f->matches = m;
        f->evidence |= CELLAR_EVIDENCE_HASH;
        return 0;
    }
    /* Groups by first dotted part, in sorted order (a group is a run). A
     * checkpoint has a handful; a file with hundreds (a kohya LoRA's
     * "lora_unet_..." modules) is not what DiffSynth splits. */
    size_t runs = 0;
    for (size_t i = 0; i < c->n && runs <= CELLAR_ID_MAX_GROUPS; i++) {
        const cellar_tensor_desc *t = &c->t[c->sorted[i]];
        const char *dot = memchr(t->name, '.', t->name_len);
        size_t plen = dot ? (size_t)(dot - t->name) + 1 : t->name_len;
        const cellar_tensor_desc *prev = i ? &c->t[c->sorted[i - 1]] : NULL;
        if (!prev || !starts_with(prev, t->name, plen) || (!dot && prev->name_len != plen))
            runs++;
    }
    if (runs > CELLAR_ID_MAX_GROUPS) {
        free(byname);
        return 0;
    }
    cellar_group_match *gm = NULL;
    size_t ngm = 0, ngroups = 0;
    for (size_t i = 0; i < c->n && rc == 0;) {
        const cellar_tensor_desc *first = &c->t[c->sorted[i]];
        const char *dot = memchr(first->name, '.', first->name_len);
        size_t plen = dot ? (size_t)(dot - first->name) + 1 : first->name_len;
        size_t k = 0, start = i;
        for (; i < c->n; i++, k++) {
            const cellar_tensor_desc *t = &c->t[c->sorted[i]];
            bool same = dot ? starts_with(t, first->name, plen)
                            : t->name_len == plen && !memcmp(t->name, first->name, plen);
            if (!same)
                break;
        }
        ngroups++;
        if (k == c->n)
            break; /* one group: the whole file, already looked up */
        char h[33];
        if ((rc = cellar_structural_hash_ptrs(h, byname + start, k, true)) != 0)
            break;
        size_t nm = cellar_registry_find_all(NULL, 0, reg, h);
        if (!nm)
            continue;
        const cellar_model_info **m = cellar_calloc(nm, sizeof *m);
        cellar_group_match *ngm_p = cellar_realloc(gm, (ngm + nm) * sizeof *gm);
        char *gname = cellar_strndup(first->name, dot ? plen - 1 : plen);
        if (!m || !ngm_p || !gname) {
            free(m);
            free(gname);
            if (ngm_p)
                gm = ngm_p;
            rc = CELLAR_ENOMEM;
            break;
        }
        gm = ngm_p;
        cellar_registry_find_all(m, nm, reg, h);
        const char *kept = keep(id, gname, &rc);
        for (size_t j = 0; j < nm && kept; j++)
            gm[ngm++] = (cellar_group_match){kept, k, m[j]};
        free(m);
    }
    free(byname);
    if (gm && !keep(id, (char *)gm, &rc))
        return rc;
    if (rc == 0 && ngm) {
        f->groups = gm;
        f->ngroups = ngm;
        f->evidence |= CELLAR_EVIDENCE_GROUP_HASH;
    }
    return rc;
}

/* Declared metadata: fills what the rules left unknown; disagreement is a
 * conflict, shown. */
static int declared_evidence(cellar_identity *id, const ctx *c, cellar_buf *conflict)
{
    cellar_identity_info *f = &id->info;
    const id_declared *d = NULL;
    const char *value = NULL;
    for (size_t i = 0; i < cellar_id_declared_len && !d; i++) {
        const char *v = meta_get(c, cellar_id_declared[i].key);
        if (v && !strncmp(v, cellar_id_declared[i].value_prefix,
                          strlen(cellar_id_declared[i].value_prefix))) {
            d = &cellar_id_declared[i];
            value = v;
        }
    }
    if (!value)
        value = meta_get(c, "modelspec.architecture");
    if (!value)
        value = meta_get(c, "ss_base_model_version");
    int rc = 0;
    if (value)
        f->declared = keep(id, cellar_strdup(value), &rc);
    if (rc)
        return rc;
    if (f->kind == CELLAR_KIND_UNKNOWN && value) {
        if (strstr(value, "/lora") || meta_get(c, "ss_network_dim"))
            f->kind = CELLAR_KIND_LORA;
        else if (strstr(value, "/textual-inversion"))
            f->kind = CELLAR_KIND_EMBEDDING;
        if (f->kind != CELLAR_KIND_UNKNOWN || d)
            f->evidence |= CELLAR_EVIDENCE_METADATA;
    }
    if (!d)
        return 0;
    if (!f->base) {
        f->base = d->base;
        if (!f->variant)
            f->variant = d->variant;
        f->evidence |= CELLAR_EVIDENCE_METADATA;
    } else if (!strstr(f->base, d->base) && !strstr(d->base, f->base)) {
        rc = cellar_buf_printf(conflict, "%smetadata declares %s", conflict->len ? "; " : "",
                               value);
    }
    return rc;
}

/* Registry meanings for the text: "family component (model_name)", each
 * once (the 1.x, 2.x and HASHES.md rows of one hash often agree). */
static int put_meanings(cellar_buf *s, const cellar_model_info *const *m, size_t n)
{
    int rc = 0;
    bool any = false;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const cellar_model_info *e = m[i];
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = !strcmp(m[j]->family, e->family) && !strcmp(m[j]->component, e->component) &&
                  (!*e->model_name || !strcmp(m[j]->model_name, e->model_name));
        if (dup)
            continue;
        rc = cellar_buf_printf(s, "%s%s %s", any ? "; " : "", e->family, e->component);
        any = true;
        if (rc == 0 && e->model_name && *e->model_name)
            rc = cellar_buf_printf(s, " (%s)", e->model_name);
        else if (rc == 0 && *e->description)
            rc = cellar_buf_printf(s, " (%s)", e->description);
    }
    return rc;
}

static int put_evidence(cellar_buf *s, const cellar_identity_info *f)
{
    int rc = cellar_buf_append(s, " (", 2);
    const char *sep = "";
    if (rc == 0 && (f->evidence & CELLAR_EVIDENCE_HASH)) {
        rc = cellar_buf_printf(s, "hash %.8s", f->structural);
        sep = ", ";
    }
    for (size_t i = 0; rc == 0 && i < f->ngroups; i++)
        if (i == 0 || strcmp(f->groups[i].group, f->groups[i - 1].group)) {
            rc = cellar_buf_printf(s, "%sgroup-hash %s", sep, f->groups[i].group);
            sep = ", ";
        }
    if (rc == 0 && (f->evidence & CELLAR_EVIDENCE_RULE)) {
        rc = cellar_buf_printf(s, "%srule", sep);
        sep = ", ";
    }
    if (rc == 0 && (f->evidence & CELLAR_EVIDENCE_METADATA))
        rc = cellar_buf_printf(s, "%sdeclared", sep);
    return rc ? rc : cellar_buf_append(s, ")", 1);
}

static int put_alpha(cellar_buf *s, double a)
{
    return cellar_buf_printf(s, ", alpha %.6g", a);
}

/* The one-line summary, IDENTIFY.md (d). */
static int format_text(cellar_identity *id)
{
    cellar_identity_info *f = &id->info;
    cellar_buf s;
    cellar_buf_init(&s, 0);
    int rc = 0;
    const char *base = f->base, *variant = f->variant;
    if (f->evidence == 0 && f->kind != CELLAR_KIND_PIPELINE) {
        rc = cellar_buf_printf(&s, "unknown (structural %.8s..., %zu tensors)", f->structural,
                               f->tensors);
    } else if (f->kind == CELLAR_KIND_LORA) {
        const char *fmt = f->lora_format ? f->lora_format : "unknown format";
        bool lyco = f->lora_format && (!strcmp(fmt, "LoHa") || !strcmp(fmt, "LoKr") ||
                                       !strcmp(fmt, "OFT") || !strcmp(fmt, "LyCORIS full"));
        rc = cellar_buf_printf(&s, "%s (%s) for %s%s%s", lyco ? "LyCORIS" : "LoRA", fmt,
                               base ? base : "an unknown base", variant ? " " : "",
                               variant ? variant : "");
        if (rc == 0 && f->lora_rank)
            rc = cellar_buf_printf(&s, ", rank %u", f->lora_rank);
        if (rc == 0 && f->lora_has_alpha)
            rc = put_alpha(&s, f->lora_alpha);
        if (rc == 0 && f->lora_targets)
            rc = cellar_buf_printf(&s, ", %s", f->lora_targets);
    } else if (f->evidence & CELLAR_EVIDENCE_RULE || f->kind == CELLAR_KIND_PIPELINE) {
        /* what: "<base> <variant> <component>"; a VAE's or a text encoder's
         * base is a note in parentheses ("cannot tell from shapes"). */
        bool note = base && (f->kind == CELLAR_KIND_VAE || f->kind == CELLAR_KIND_TEXT_ENCODER ||
                             f->kind == CELLAR_KIND_EMBEDDING || f->kind == CELLAR_KIND_CONTROLNET ||
                             f->kind == CELLAR_KIND_IP_ADAPTER);
        if (!note && base)
            rc = cellar_buf_printf(&s, "%s ", base);
        if (rc == 0 && variant)
            rc = cellar_buf_printf(&s, "%s ", variant);
        if (rc == 0 && f->kind == CELLAR_KIND_CHECKPOINT) {
            if (s.len)
                s.data[--s.len] = '\0';
            rc = cellar_buf_printf(&s, "%ssingle-file (%s)", s.len ? ", " : "", f->parts);
        } else if (rc == 0 && f->kind == CELLAR_KIND_PIPELINE) {
            rc = cellar_buf_printf(&s, "pipeline, %s (%s)", f->layout ? f->layout : "folder",
                                   f->parts ? f->parts : "");
        } else if (rc == 0) {
            rc = cellar_buf_printf(&s, "%s", f->component ? f->component : "model");
            if (rc == 0 && note)
                rc = cellar_buf_printf(&s, " (%s)", base);
            if (rc == 0 && f->layout)
                rc = cellar_buf_printf(&s, ", %s layout", f->layout);
        }
    } else if (f->evidence & (CELLAR_EVIDENCE_HASH | CELLAR_EVIDENCE_GROUP_HASH)) {
        if (f->nmatches)
            rc = put_meanings(&s, f->matches, f->nmatches);
        for (size_t i = 0; rc == 0 && i < f->ngroups; i++) {
            rc = cellar_buf_printf(&s, "%s%s: ", i ? "; " : "", f->groups[i].group);
            const cellar_model_info *e = f->groups[i].entry;
            if (rc == 0)
                rc = put_meanings(&s, &e, 1);
        }
        if (rc == 0 && f->matches && f->matches[0]->layout && *f->matches[0]->layout)
            rc = cellar_buf_printf(&s, ", %s layout", f->matches[0]->layout);
    } else {
        /* declared only */
        rc = cellar_buf_printf(&s, "%s%s%s %s", base ? base : "", variant ? " " : "",
                               variant ? variant : "",
                               f->kind == CELLAR_KIND_UNKNOWN ? "model" : cellar_model_kind_name(f->kind));
    }
    if (rc == 0 && f->evidence && f->kind != CELLAR_KIND_LORA && f->precision)
        rc = cellar_buf_printf(&s, ", %s", f->precision);
    if (rc == 0 && f->evidence && f->kind != CELLAR_KIND_LORA)
        rc = put_evidence(&s, f);
    if (rc == 0 && f->kind == CELLAR_KIND_LORA && (f->evidence & ~CELLAR_EVIDENCE_RULE))
        rc = put_evidence(&s, f);
    /* The hash's meaning next to a rule's answer. */
    if (rc == 0 && (f->evidence & CELLAR_EVIDENCE_RULE) && f->nmatches) {
        rc = cellar_buf_append(&s, "; registry: ", 12);
        if (rc == 0)
            rc = put_meanings(&s, f->matches, f->nmatches);
    }
    if (rc == 0 && f->conflict)
        rc = cellar_buf_printf(&s, "; conflict: %s", f->conflict);
    f->text = keep_buf(id, &s, &rc);
    return rc;
}

/* Whether the registry family fam and the rules' base agree: some word of
 * the base ("SD3/FLUX.1", "SD1/SD2/SDXL: cannot...") starts the family
 * or one of its '+' parts, or the other way round. */
static bool family_agrees(const char *fam, const char *base)
{
    for (const char *b = base; *b;) {
        size_t bl = strcspn(b, "/ :()");
        for (const char *p = fam; bl >= 2 && *p;) {
            size_t pl = strcspn(p, "+");
            size_t k = bl < pl ? bl : pl;
            if (k >= 2 && !strncmp(p, b, k))
                return true;
            p += pl + (p[pl] == '+');
        }
        b += bl;
        b += strspn(b, "/ :()");
    }
    return false;
}

/* Hash and rule disagree when both name a base and no registry meaning
 * agrees with the rules'. */
static int hash_rule_conflict(const cellar_identity_info *f, cellar_buf *conflict)
{
    if (!(f->evidence & CELLAR_EVIDENCE_RULE) || !f->nmatches || !f->base)
        return 0;
    for (size_t i = 0; i < f->nmatches; i++)
        if (family_agrees(f->matches[i]->family, f->base))
            return 0;
    return cellar_buf_printf(conflict, "%shash says %s %s, rules say %s", conflict->len ? "; " : "",
                             f->matches[0]->family, f->matches[0]->component, f->base);
}

static int identify(cellar_identity **out, const cellar_identify_input *in)
{
    *out = NULL;
    if (!in || in->version < 1 || (in->ntensors && !in->tensors))
        return cellar_fail(CELLAR_EINVAL, "identify: bad input (version %u)", in ? in->version : 0);
    cellar_identity *id = cellar_calloc(1, sizeof *id);
    if (!id)
        return CELLAR_ENOMEM;
    cellar_identity_info *f = &id->info;
    f->version = CELLAR_IDENTITY_VERSION;
    f->tensors = in->ntensors;
    ctx c;
    int rc = ctx_init(&c, in);
    cellar_buf conflict;
    cellar_buf_init(&conflict, 0);
    if (rc == 0 && c.n) {
        sort_ctx = &c;
        qsort(c.sorted, c.n, sizeof *c.sorted, cmp_sorted);
        sort_ctx = NULL;
    }
    if (rc == 0) {
        find_prefix(&c);
        rc = apply_rules(id, &c);
    }
    if (rc == 0)
        rc = find_parts(id, &c);
    if (rc == 0 && *c.P && f->kind != CELLAR_KIND_UNKNOWN)
        f->layout = "original single-file";
    if (rc == 0)
        rc = hash_evidence(id, &c, in->registry);
    if (rc == 0 && f->kind == CELLAR_KIND_UNKNOWN && f->nmatches) {
        f->kind = kind_of_component(f->matches[0]->component);
        f->base = f->matches[0]->family;
        f->layout = *f->matches[0]->layout ? f->matches[0]->layout : NULL;
    }
    if (rc == 0 && f->kind == CELLAR_KIND_UNKNOWN && f->ngroups)
        f->kind = CELLAR_KIND_CHECKPOINT;
    if (rc == 0)
        rc = hash_rule_conflict(f, &conflict);
    if (rc == 0)
        rc = declared_evidence(id, &c, &conflict);
    if (rc == 0 && f->kind == CELLAR_KIND_LORA)
        rc = lora_details(id, &c);
    if (rc == 0)
        f->precision = precision(id, &c, &rc);
    if (rc == 0 && conflict.len)
        f->conflict = keep_buf(id, &conflict, &rc);
    cellar_buf_free(&conflict);
    if (rc == 0) {
        f->kind_name = cellar_model_kind_name(f->kind);
        if (f->evidence & (CELLAR_EVIDENCE_HASH | CELLAR_EVIDENCE_GROUP_HASH))
            f->confidence = CELLAR_CONFIDENCE_HIGH;
        else if (f->evidence & CELLAR_EVIDENCE_RULE)
            f->confidence = CELLAR_CONFIDENCE_MEDIUM;
        else if (f->evidence)
            f->confidence = CELLAR_CONFIDENCE_LOW;
        rc = format_text(id);
    }
    ctx_free(&c);
    if (rc) {
        cellar_identity_free(id);
        return rc;
    }
    *out = id;
    return 0;
}

int cellar_identify_list(cellar_identity **out, const cellar_identify_input *in)
{
    return identify(out, in);
}

int cellar_identity_pipeline(cellar_identity **out, const char *const *names,
                             cellar_identity **children, size_t n, const char *layout)
{
    *out = NULL;
    cellar_identity *id = cellar_calloc(1, sizeof *id);
    const char **nm = cellar_calloc(n ? n : 1, sizeof *nm);
    if (!id || !nm) {
        free(id);
        free(nm);
        for (size_t i = 0; i < n; i++)
            cellar_identity_free(children[i]);
        return CELLAR_ENOMEM;
    }
    id->children = children;
    id->nchildren = n;
    cellar_identity_info *f = &id->info;
    int rc = 0;
    keep(id, (char *)nm, &rc);
    for (size_t i = 0; i < n && rc == 0; i++)
        nm[i] = keep(id, cellar_strdup(names[i]), &rc);
    f->version = CELLAR_IDENTITY_VERSION;
    f->kind = CELLAR_KIND_PIPELINE;
    f->kind_name = cellar_model_kind_name(f->kind);
    f->layout = layout;
    f->ncomponents = n;
    f->component_names = nm;
    f->components = (const cellar_identity *const *)children;
    /* The diffusion component speaks for the pipeline. */
    const cellar_identity_info *main = NULL;
    for (size_t i = 0; i < n && !main; i++)
        if (children[i]->info.kind == CELLAR_KIND_DIFFUSION ||
            children[i]->info.kind == CELLAR_KIND_CHECKPOINT)
            main = &children[i]->info;
    cellar_buf parts;
    cellar_buf_init(&parts, 0);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = join_word(&parts, "+", names[i]);
    f->parts = keep_buf(id, &parts, &rc);
    for (size_t i = 0; i < n; i++)
        f->tensors += children[i]->info.tensors;
    if (main) {
        f->base = main->base;
        f->variant = main->variant;
        f->component = main->component;
        f->precision = main->precision;
        f->evidence = main->evidence;
        f->confidence = main->confidence;
        f->rule = main->rule;
        f->matches = main->matches;
        f->nmatches = main->nmatches;
        f->conflict = main->conflict;
        memcpy(f->structural, main->structural, sizeof f->structural);
    }
    if (rc == 0)
        rc = format_text(id);
    if (rc) {
        cellar_identity_free(id);
        return rc;
    }
    *out = id;
    return 0;
}
