/* cellar_inspect(): what a weight file or model folder holds, built once as
 * a tree (cellar.h, "inspect section"). Each format's reader below fills
 * the same pieces through the helpers of the first half (a component's
 * head, its figures, metadata, hash and model, a tensor row), so the
 * tensor list, the summary and the component block exist once; printers
 * (the CLI's text and JSON, the Python binding) know no format. */
#include "cellar.h"
#include "json.h"
#include "tree.h"
#include "util.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Text views cut longer strings (embedded configs): JSON has them whole. */
#define TEXT_CUT 200

struct ctx {
    cellar_tree *t;
    const cellar_registry *reg;
    bool tensors;
    cellar_node *root;
    cellar_node *format; /* the root's */
    cellar_node *warnings; /* made on the first warning */
};

/* ---- text views of numbers ---- */

static void human(char *buf, size_t size, uint64_t v, const char *const units[])
{
    double x = (double)v;
    int u = 0;
    while (x >= 1000 && units[u + 1]) {
        x /= 1000;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%" PRIu64 "%s", v, units[0]);
    else
        snprintf(buf, size, "%.2f %s", x, units[u]);
}

static void human_bytes(char *buf, size_t size, uint64_t v)
{
    static const char *const units[] = {" B", "kB", "MB", "GB", "TB", "PB", NULL};
    human(buf, size, v, units);
}

/* "204 bytes", "5000000000 bytes (5.00 GB)". */
static cellar_node *bytes_node(struct ctx *c, cellar_node *parent, const char *key, uint64_t v)
{
    char h[32];
    human_bytes(h, sizeof h, v);
    cellar_node *n = tree_u64(c->t, parent, key, v);
    return v < 1000 ? tree_text(c->t, n, "%" PRIu64 " bytes", v)
                    : tree_text(c->t, n, "%" PRIu64 " bytes (%s)", v, h);
}

/* A string member whose text view is cut at TEXT_CUT bytes. */
static cellar_node *long_str(struct ctx *c, cellar_node *parent, const char *key, const char *s,
                             size_t len)
{
    cellar_node *n = tree_str(c->t, parent, key, s, len);
    if (len > TEXT_CUT)
        tree_text(c->t, n, "%.*s...", TEXT_CUT, s);
    return n;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

/* A warning: the root's "warnings" list (printers show it on their side). */
__attribute__((format(printf, 2, 3))) static void warn(struct ctx *c, const char *fmt, ...)
{
    if (!c->warnings)
        c->warnings = tree_hint(tree_array(c->t, c->root, "warnings"), CELLAR_NODE_HIDDEN);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tree_strz(c->t, c->warnings, NULL, msg);
}

/* An identification that failed is a warning, not the inspection's
 * failure; out of memory is (the tree, half made, would mislead). */
static void identify_failed(struct ctx *c)
{
    if (cellar_error_code() == CELLAR_ENOMEM)
        tree_fail(c->t, CELLAR_ENOMEM);
    else
        warn(c, "identify: %s", cellar_error_last());
    cellar_error_clear();
}

/* ---- the model: an identification as a tree ---- */

/* String fields of a struct, by key and offset, in the order JSON shows them. */
struct str_field {
    const char *key;
    size_t offset;
};

static void str_fields(cellar_tree *t, cellar_node *o, const void *base,
                       const struct str_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tree_strz(t, o, f[i].key, *(const char *const *)((const char *)base + f[i].offset));
}

#define FIELD(T, m) {#m, offsetof(T, m)}

static cellar_node *entry_node(cellar_tree *t, cellar_node *parent, const char *key,
                               const cellar_model_info *m)
{
    static const struct str_field f[] = {
        FIELD(cellar_model_info, hash),       FIELD(cellar_model_info, family),
        FIELD(cellar_model_info, component),  FIELD(cellar_model_info, layout),
        FIELD(cellar_model_info, model_name), FIELD(cellar_model_info, model_class),
        FIELD(cellar_model_info, source),     FIELD(cellar_model_info, description),
    };
    cellar_node *o = tree_object(t, parent, key);
    str_fields(t, o, m, f, sizeof f / sizeof *f);
    return o;
}

/* What id says, as an object whose text view is its one-line summary;
 * null ("unknown") without one. */
static cellar_node *identity_node(cellar_tree *t, cellar_node *parent, const char *key,
                                  const cellar_identity *id)
{
    const cellar_identity_info *x = cellar_identity_get(id);
    if (!x)
        return tree_text(t, tree_null(t, parent, key), "unknown");
    static const struct str_field what[] = {
        FIELD(cellar_identity_info, text),      {"kind", offsetof(cellar_identity_info, kind_name)},
        FIELD(cellar_identity_info, base),      FIELD(cellar_identity_info, variant),
        FIELD(cellar_identity_info, component), FIELD(cellar_identity_info, layout),
        FIELD(cellar_identity_info, precision), FIELD(cellar_identity_info, parts),
    };
    static const struct str_field why[] = {
        FIELD(cellar_identity_info, rule),
        FIELD(cellar_identity_info, declared),
        FIELD(cellar_identity_info, conflict),
    };
    static const char *const conf[] = {"none", "low", "medium", "high"};
    static const struct {
        unsigned bit;
        const char *name;
    } ev[] = {{CELLAR_EVIDENCE_HASH, "hash"},
              {CELLAR_EVIDENCE_GROUP_HASH, "group-hash"},
              {CELLAR_EVIDENCE_RULE, "rule"},
              {CELLAR_EVIDENCE_METADATA, "metadata"}};
    cellar_node *o = tree_object(t, parent, key);
    tree_text(t, o, "%s", x->text);
    str_fields(t, o, x, what, sizeof what / sizeof *what);
    tree_strz(t, o, "confidence",
              x->confidence >= 0 && x->confidence < 4 ? conf[x->confidence] : "none");
    cellar_node *e = tree_array(t, o, "evidence");
    for (size_t i = 0; i < sizeof ev / sizeof *ev; i++)
        if (x->evidence & ev[i].bit)
            tree_strz(t, e, NULL, ev[i].name);
    str_fields(t, o, x, why, sizeof why / sizeof *why);
    tree_strz(t, o, "structural", *x->structural ? x->structural : NULL);
    tree_u64(t, o, "tensors", x->tensors);
    cellar_node *r = tree_array(t, o, "registry");
    for (size_t i = 0; i < x->nmatches; i++)
        entry_node(t, r, NULL, x->matches[i]);
    cellar_node *g = tree_array(t, o, "groups");
    for (size_t i = 0; i < x->ngroups; i++) {
        cellar_node *m = tree_object(t, g, NULL);
        tree_strz(t, m, "group", x->groups[i].group);
        tree_u64(t, m, "tensors", x->groups[i].tensors);
        entry_node(t, m, "entry", x->groups[i].entry);
    }
    if (x->kind == CELLAR_KIND_LORA) {
        cellar_node *l = tree_object(t, o, "lora");
        tree_strz(t, l, "format", x->lora_format);
        if (x->lora_rank)
            tree_u64(t, l, "rank", x->lora_rank);
        else
            tree_null(t, l, "rank");
        if (x->lora_has_alpha)
            tree_f64(t, l, "alpha", x->lora_alpha);
        else
            tree_null(t, l, "alpha");
        tree_strz(t, l, "targets", x->lora_targets);
    }
    if (x->kind == CELLAR_KIND_PIPELINE) {
        cellar_node *cs = tree_object(t, o, "components");
        for (size_t i = 0; i < x->ncomponents; i++)
            tree_key(t, identity_node(t, cs, NULL, x->components[i]), x->component_names[i],
                     strlen(x->component_names[i]));
    }
    return o;
}

int cellar_identity_tree(cellar_tree **out, const cellar_identity *id)
{
    int rc = tree_new(out);
    if (rc)
        return rc;
    /* Built as the root's only member, then lifted to be the root (the
     * tree is complete: nothing is appended to the root after). */
    cellar_node *root = tree_root(*out);
    cellar_node *n = identity_node(*out, root, NULL, id);
    if ((rc = tree_status(*out)) != 0) {
        cellar_tree_free(*out);
        *out = NULL;
        return cellar_fail(rc, "identification tree: out of memory");
    }
    *root = *n;
    return 0;
}

/* Identifies what path holds; a failure is a warning, not the inspection's. */
static cellar_identity *identify_path(struct ctx *c, const char *path)
{
    cellar_identity *id = NULL;
    if (cellar_identify_path(&id, path, c->reg) != 0) {
        identify_failed(c);
    }
    return id;
}

/* The root's "model": what a pipeline (a folder or DDUF) at path is. */
static void pipeline_model(struct ctx *c, const char *path)
{
    cellar_identity *id = identify_path(c, path);
    identity_node(c->t, c->root, "model", id);
    cellar_identity_free(id);
}

/* ---- the pieces every component has ---- */

/* A component's object: its name, path (the block's heading in a text view,
 * shown there instead) and format (format_text: its text view, or NULL). */
static cellar_node *component_open(struct ctx *c, cellar_node *comps, const char *name,
                                   const char *path, const char *format,
                                   const char *format_text)
{
    cellar_node *o = tree_object(c->t, comps, NULL);
    if (*name && path)
        tree_text(c->t, o, "[%s] %s", name, path);
    else if (*name)
        tree_text(c->t, o, "[%s]", name);
    tree_hint(tree_strz(c->t, o, "component", name), CELLAR_NODE_HIDDEN);
    if (path)
        tree_hint(tree_strz(c->t, o, "path", path), CELLAR_NODE_HIDDEN);
    cellar_node *f = tree_strz(c->t, o, "format", format);
    if (format_text)
        tree_text(c->t, f, "%s", format_text);
    return o;
}

/* The sum of the components' sizes: the totals' size. */
static uint64_t components_size(const cellar_node *comps)
{
    uint64_t size = 0;
    for (const cellar_node *k = comps ? comps->v.list.first : NULL; k; k = k->next) {
        const cellar_node *n = tree_member(k, "size");
        size += n ? n->v.u : 0;
    }
    return size;
}

/* A file is one component: the root's format line is the component's,
 * which a text view then leaves out. */
static void one_component(struct ctx *c, cellar_node *comps)
{
    /* Nodes are NULL after an allocation failed (the tree's error is
     * sticky and checked at the end): every use here tolerates that. */
    cellar_node *f = comps ? (cellar_node *)tree_member(comps->v.list.first, "format") : NULL;
    if (f && c->format) {
        c->format->text = f->text;
        tree_hint(f, CELLAR_NODE_HIDDEN);
    }
}

/* tensors, parameters, tensor_bytes, size, dtypes: the figures of a
 * component, or the totals of a result (hidden from a text view when the
 * one component already shows them). */
static void summary(struct ctx *c, cellar_node *o, const cellar_tensor_stats *s, uint64_t size,
                    unsigned hints)
{
    cellar_tensor_totals tot;
    cellar_tensor_stats_totals(&tot, s);
    char h[32];
    static const char *const units[] = {"", "K", "M", "B", "T", NULL};
    human(h, sizeof h, tot.params, units);
    tree_hint(tree_u64(c->t, o, "tensors", tot.tensors), hints);
    cellar_node *p = tree_hint(tree_u64(c->t, o, "parameters", tot.params), hints);
    tree_text(c->t, p, "%" PRIu64 "%s%s%s%s", tot.params, tot.params >= 1000 ? " (" : "",
              tot.params >= 1000 ? h : "", tot.params >= 1000 ? ")" : "",
              tot.params_overflow ? " (overflowed)" : "");
    tree_hint(bytes_node(c, o, "tensor_bytes", tot.bytes), hints);
    tree_hint(bytes_node(c, o, "size", size), hints);
    /* {"F32": {"tensors": 3, "bytes": 36}}, shown "F32 x3 (36 B)". */
    cellar_node *d = tree_hint(tree_object(c->t, o, "dtypes"), hints);
    cellar_buf text;
    cellar_buf_init(&text, 0);
    size_t n = cellar_tensor_stats_type_count(s);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        uint64_t tensors, bytes;
        if (cellar_tensor_stats_type_at(&name, &tensors, &bytes, s, i) != 0)
            continue;
        cellar_node *row = tree_key(c->t, tree_object(c->t, d, NULL), name, strlen(name));
        tree_u64(c->t, row, "tensors", tensors);
        tree_u64(c->t, row, "bytes", bytes);
        human_bytes(h, sizeof h, bytes);
        if (cellar_buf_printf(&text, "%s%s x%" PRIu64 " (%s)", i ? ", " : "", name, tensors, h))
            tree_fail(c->t, CELLAR_ENOMEM);
    }
    tree_text(c->t, d, "%s", text.len ? text.data : "none");
    cellar_buf_free(&text);
}

/* A metadata object (hidden from a text view when empty). */
static cellar_node *metadata_open(struct ctx *c, cellar_node *o, size_t n)
{
    return tree_hint(tree_object(c->t, o, "metadata"), n ? 0 : CELLAR_NODE_HIDDEN);
}

/* The component's structural hash; text "none (why)" when there is none. */
static void structural(struct ctx *c, cellar_node *o, const char *hash, const char *why)
{
    cellar_node *n = tree_strz(c->t, o, "structural_hash", hash && *hash ? hash : NULL);
    if (!(hash && *hash))
        tree_text(c->t, n, why && *why ? "none (%s)" : "none", why);
}

/* The "files" or "entries" list: rows, hidden from a text view when the
 * component is a single file the heading already names. */
static cellar_node *files_open(struct ctx *c, cellar_node *o, const char *key, size_t n,
                               bool show_one)
{
    return tree_hint(tree_array(c->t, o, key),
                     CELLAR_NODE_ROWS | (n == 1 && !show_one ? CELLAR_NODE_HIDDEN : 0u));
}

/* One tensor row: name, dtype, shape, bytes, offset (null when the bytes
 * are not contiguous in the file), file (an index into the component's
 * files; its name in a text view when there are several). Returns the row
 * for a format's extra fields. */
static cellar_node *tensor_row(struct ctx *c, cellar_node *list, const char *name,
                               size_t name_len, const char *dtype, size_t rank,
                               const uint64_t *shape, uint64_t bytes, const uint64_t *offset,
                               size_t file, const char *file_label)
{
    cellar_node *r = tree_object(c->t, list, NULL);
    tree_str(c->t, r, "name", name, name_len);
    tree_strz(c->t, r, "dtype", dtype);
    cellar_node *s = tree_array(c->t, r, "shape");
    for (size_t d = 0; d < rank; d++)
        tree_u64(c->t, s, NULL, shape[d]);
    tree_u64(c->t, r, "bytes", bytes);
    tree_hint(offset ? tree_u64(c->t, r, "offset", *offset) : tree_null(c->t, r, "offset"),
              CELLAR_NODE_HIDDEN);
    cellar_node *f = tree_u64(c->t, r, "file", file);
    if (file_label)
        tree_text(c->t, f, "%s", file_label);
    else
        tree_hint(f, CELLAR_NODE_HIDDEN);
    return r;
}

static cellar_node *tensor_list_open(struct ctx *c, cellar_node *o)
{
    return c->tensors ? tree_hint(tree_array(c->t, o, "tensor_list"), CELLAR_NODE_ROWS) : NULL;
}

/* ---- safetensors: a file, a shard set, DDUF entries ---- */

/* Open safetensors files taken as one component. */
struct st_set {
    cellar_st **files;
    size_t n;
    const char **labels;          /* each file's path or entry name */
    uint64_t *base;               /* added to tensor offsets (DDUF), or NULL */
    const cellar_shards *shards;  /* the merged view, or NULL: files in order */
    uint64_t size;
};

/* Room for n files (and their offsets in an archive when with_base). */
static int st_set_alloc(struct st_set *s, size_t n, bool with_base)
{
    memset(s, 0, sizeof *s);
    s->files = cellar_calloc(n ? n : 1, sizeof *s->files);
    s->labels = cellar_calloc(n ? n : 1, sizeof *s->labels);
    s->base = with_base ? cellar_calloc(n ? n : 1, sizeof *s->base) : NULL;
    return s->files && s->labels && (s->base || !with_base) ? 0 : CELLAR_ENOMEM;
}

/* Frees the arrays, and the files when the set opened them (DDUF entries;
 * a shard set's belong to it). */
static void st_set_free(struct st_set *s, bool close_files)
{
    for (size_t i = 0; close_files && s->files && i < s->n; i++)
        cellar_st_free(s->files[i]);
    free(s->files);
    free(s->labels);
    free(s->base);
}

/* The figures, metadata (of the first file: shards repeat it), hash, model
 * and tensor list of a set of safetensors files. */
static int st_component(struct ctx *c, cellar_node *o, const struct st_set *s,
                        cellar_tensor_stats *total)
{
    cellar_tensor_stats *stats = NULL;
    int rc = cellar_tensor_stats_new(&stats);
    for (size_t i = 0; rc == 0 && i < s->n; i++)
        rc = cellar_tensor_stats_add_st(stats, s->files[i]);
    if (rc == 0)
        rc = cellar_tensor_stats_merge(total, stats);
    if (rc) {
        cellar_tensor_stats_free(stats);
        return rc;
    }
    summary(c, o, stats, s->size, 0);
    cellar_tensor_stats_free(stats);

    cellar_st *meta = s->n ? s->files[0] : NULL;
    size_t nmeta = meta ? cellar_st_metadata_count(meta) : 0;
    cellar_node *m = metadata_open(c, o, nmeta);
    for (size_t i = 0; i < nmeta; i++) {
        const char *k, *v;
        size_t kl, vl;
        cellar_st_metadata_at(&k, &kl, &v, &vl, meta, i);
        tree_key(c->t, long_str(c, m, NULL, v, vl), k, kl);
    }

    char hash[33] = "";
    cellar_identity *id = NULL;
    if (s->n && cellar_identify_st(&id, s->files, s->n, c->reg) != 0) {
        identify_failed(c);
    }
    /* The identification hashed the tensors already. */
    if (id)
        memcpy(hash, cellar_identity_get(id)->structural, sizeof hash);
    else if (s->n && (rc = cellar_structural_hash_st(hash, s->files, s->n)) != 0)
        return rc;
    structural(c, o, hash, NULL);
    identity_node(c->t, o, "model", id);
    cellar_identity_free(id);

    cellar_node *list = tensor_list_open(c, o);
    bool several = s->n > 1;
    if (list && s->shards) {
        for (size_t i = 0; i < cellar_shards_count(s->shards); i++) {
            size_t f;
            const cellar_st_tensor *x = cellar_shards_tensor(s->shards, i, &f);
            tensor_row(c, list, x->name, x->name_len, x->dtype_name, x->rank, x->shape,
                       x->end - x->begin, &x->offset, f,
                       several ? base_name(s->labels[f]) : NULL);
        }
    } else {
        for (size_t f = 0; list && f < s->n; f++)
            for (size_t i = 0; i < cellar_st_count(s->files[f]); i++) {
                const cellar_st_tensor *x = cellar_st_tensor_at(s->files[f], i);
                uint64_t at = x->offset + (s->base ? s->base[f] : 0);
                tensor_row(c, list, x->name, x->name_len, x->dtype_name, x->rank, x->shape,
                           x->end - x->begin, &at, f, several ? s->labels[f] : NULL);
            }
    }
    return 0;
}

/* ---- PyTorch checkpoints ---- */

/* A checkpoint as a component: the figures, hashes and model of the state
 * dict, read without running the pickle. */
static int pt_component(struct ctx *c, cellar_node *comps, const char *name, const char *path,
                        const cellar_pt *pt, cellar_tensor_stats *total)
{
    char what[96];
    snprintf(what, sizeof what, "PyTorch checkpoint (%s container, pickle protocol %u)",
             cellar_pt_format(pt), cellar_pt_protocol(pt));
    cellar_node *o = component_open(c, comps, name, path, "pytorch", what);
    tree_hint(tree_strz(c->t, o, "container", cellar_pt_format(pt)), CELLAR_NODE_HIDDEN);
    struct stat st;
    uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    size_t nt = cellar_pt_count(pt);

    cellar_node *files = files_open(c, o, "files", 1, false);
    cellar_node *f = tree_object(c->t, files, NULL);
    tree_strz(c->t, f, "path", path);
    tree_u64(c->t, f, "size", size);
    tree_u64(c->t, f, "tensors", nt);
    tree_u64(c->t, f, "storages", cellar_pt_storage_count(pt));

    cellar_tensor_stats *stats = NULL;
    int rc = cellar_tensor_stats_new(&stats);
    if (rc == 0)
        rc = cellar_tensor_stats_add_pt(stats, pt);
    if (rc == 0)
        rc = cellar_tensor_stats_merge(total, stats);
    if (rc == 0)
        summary(c, o, stats, size, 0);
    cellar_tensor_stats_free(stats);
    if (rc)
        return rc;
    metadata_open(c, o, 0);

    const char *problem = cellar_pt_problem(pt);
    cellar_pt_hash h = {0};
    bool have_hash = !problem && cellar_pt_structural_hash(&h, pt) == 0;
    if (!have_hash)
        cellar_error_clear();
    structural(c, o, have_hash ? h.diffsynth : NULL, have_hash ? h.problem : problem);
    tree_strz(c->t, o, "state_dict_hash", have_hash ? h.state_dict : NULL);
    tree_hint(tree_strz(c->t, o, "diffsynth_problem", have_hash && h.problem[0] ? h.problem : NULL),
              CELLAR_NODE_HIDDEN);
    cellar_identity *id = problem ? NULL : identify_path(c, path);
    tree_hint(tree_strz(c->t, o, "identity", id ? cellar_identity_text(id) : NULL),
              CELLAR_NODE_HIDDEN);
    identity_node(c->t, o, "model", id);
    cellar_identity_free(id);
    if (cellar_pt_duplicate_count(pt))
        warn(c, "%s: %zu tensor names appear twice; the last value of each is listed", path,
             cellar_pt_duplicate_count(pt));

    /* safetensors' fields, then torch's view of each tensor. */
    cellar_node *list = tensor_list_open(c, o);
    for (size_t i = 0; list && i < nt; i++) {
        const cellar_pt_tensor *x = cellar_pt_tensor_at(pt, i);
        const cellar_pt_storage *s = cellar_pt_storage_at(pt, x->storage);
        cellar_node *r = tensor_row(c, list, x->name, x->name_len, x->dtype_name, x->rank,
                                    x->shape, x->nbytes, x->contiguous ? &x->offset : NULL, 0,
                                    NULL);
        tree_hint(tree_strz(c->t, r, "torch_dtype", x->torch_dtype), CELLAR_NODE_HIDDEN);
        cellar_node *stride = tree_hint(tree_array(c->t, r, "stride"), CELLAR_NODE_HIDDEN);
        for (size_t k = 0; k < x->rank; k++)
            tree_u64(c->t, stride, NULL, x->stride[k]);
        tree_hint(tree_u64(c->t, r, "storage_offset", x->storage_offset), CELLAR_NODE_HIDDEN);
        tree_hint(tree_strz(c->t, r, "storage", s->key), CELLAR_NODE_HIDDEN);
        tree_hint(tree_u64(c->t, r, "storage_bytes", s->nbytes), CELLAR_NODE_HIDDEN);
        tree_hint(tree_bool(c->t, r, "contiguous", x->contiguous), CELLAR_NODE_HIDDEN);
        if (x->alias != i) {
            const cellar_pt_tensor *a = cellar_pt_tensor_at(pt, x->alias);
            tree_text(c->t, tree_str(c->t, r, "alias", a->name, a->name_len),
                      "(alias of %.*s)", (int)a->name_len, a->name);
        } else {
            tree_null(c->t, r, "alias");
        }
    }
    return 0;
}

/* A checkpoint file: one component, plus the container, the globals the
 * pickle names with their verdict and what they hold. A file that breaks a
 * rule still lists its globals, and then fails. */
static int inspect_pt(struct ctx *c, const char *path)
{
    cellar_pt *pt;
    int rc = cellar_pt_open(&pt, path, CELLAR_PT_KEEP_GOING);
    if (rc)
        return rc;
    cellar_node *root = c->root;
    tree_hint(tree_strz(c->t, root, "container", cellar_pt_format(pt)), CELLAR_NODE_HIDDEN);
    tree_hint(tree_u64(c->t, root, "protocol", cellar_pt_protocol(pt)), CELLAR_NODE_HIDDEN);
    cellar_node *comps = tree_array(c->t, root, "components");
    cellar_tensor_stats *total = NULL;
    if ((rc = cellar_tensor_stats_new(&total)) == 0 &&
        (rc = pt_component(c, comps, "", path, pt, total)) == 0) {
        one_component(c, comps);
        summary(c, root, total, components_size(comps), CELLAR_NODE_HIDDEN);
    }
    cellar_tensor_stats_free(total);
    const char *problem = cellar_pt_problem(pt);
    tree_strz(c->t, root, "problem", problem);
    tree_u64(c->t, root, "dangerous", cellar_pt_dangerous_count(pt));
    cellar_node *gl = tree_hint(tree_array(c->t, root, "globals"), CELLAR_NODE_ROWS);
    for (size_t i = 0; i < cellar_pt_global_count(pt); i++) {
        const cellar_pt_global *g = cellar_pt_global_at(pt, i);
        cellar_node *r = tree_object(c->t, gl, NULL);
        tree_text(c->t, r, "%-9s  %s.%s", cellar_pt_class_name(g->cls), g->module, g->name);
        tree_strz(c->t, r, "module", g->module);
        tree_strz(c->t, r, "name", g->name);
        tree_strz(c->t, r, "class", cellar_pt_class_name(g->cls));
        tree_u64(c->t, r, "count", g->count);
        tree_u64(c->t, r, "offset", g->offset);
    }
    cellar_node *bl = tree_hint(tree_array(c->t, root, "blocked"), CELLAR_NODE_ROWS);
    for (size_t i = 0; i < cellar_pt_blocked_count(pt); i++) {
        const char *p;
        const cellar_pt_global *g;
        cellar_pt_blocked_at(pt, i, &p, &g);
        cellar_node *r = tree_object(c->t, bl, NULL);
        tree_text(c->t, r, "tensors under '%s' are held by %s%s%s", p, g ? g->module : "an object",
                  g ? "." : "", g ? g->name : "");
        tree_strz(c->t, r, "path", p);
        char *gname = g ? cellar_sprintf("%s.%s", g->module, g->name) : NULL;
        tree_strz(c->t, r, "global", gname);
        free(gname);
    }
    if (rc == 0 && problem)
        rc = cellar_fail(CELLAR_EFORMAT, "%s", problem);
    cellar_pt_free(pt);
    return rc;
}

/* ---- GGUF: header only (key/values and tensor infos) ---- */

/* Key/value i: scalars and strings as themselves, an array as its item
 * type and length. */
static void gguf_value(struct ctx *c, cellar_node *m, const cellar_gguf *g, size_t i)
{
    const cellar_gguf_kv *kv = cellar_gguf_kv_at(g, i);
    cellar_gguf_value v;
    cellar_node *n;
    if (kv->type == CELLAR_GGUF_ARRAY) {
        n = tree_object(c->t, m, NULL);
        tree_strz(c->t, n, "array", cellar_gguf_type_name(kv->item_type));
        tree_u64(c->t, n, "count", kv->count);
        tree_text(c->t, n, "[%s x %" PRIu64 "]", cellar_gguf_type_name(kv->item_type), kv->count);
    } else if (cellar_gguf_kv_value(&v, g, i, 0) != 0) {
        cellar_error_clear();
        n = tree_null(c->t, m, NULL);
    } else {
        switch (v.type) {
        case CELLAR_GGUF_STRING:
            n = long_str(c, m, NULL, v.str, v.str_len);
            break;
        case CELLAR_GGUF_BOOL:
            n = tree_bool(c->t, m, NULL, v.u != 0);
            break;
        case CELLAR_GGUF_I8:
        case CELLAR_GGUF_I16:
        case CELLAR_GGUF_I32:
        case CELLAR_GGUF_I64:
            n = tree_i64(c->t, m, NULL, v.i);
            break;
        case CELLAR_GGUF_F32:
        case CELLAR_GGUF_F64:
            n = tree_f64(c->t, m, NULL, v.f);
            break;
        default:
            n = tree_u64(c->t, m, NULL, v.u);
        }
    }
    tree_key(c->t, n, kv->key, kv->key_len);
}

static int inspect_gguf(struct ctx *c, const char *path)
{
    cellar_gguf *g;
    int rc = cellar_gguf_open(&g, path);
    if (rc)
        return rc;
    cellar_node *root = c->root;
    size_t nkv = cellar_gguf_kv_count(g), nt = cellar_gguf_tensor_count(g);
    struct stat st;
    uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    tree_hint(tree_u64(c->t, root, "version", cellar_gguf_version(g)), CELLAR_NODE_HIDDEN);
    tree_hint(tree_u64(c->t, root, "alignment", cellar_gguf_alignment(g)), CELLAR_NODE_HIDDEN);
    tree_hint(tree_u64(c->t, root, "data_offset", cellar_gguf_data_offset(g)),
              CELLAR_NODE_HIDDEN);
    /* The key/values describe the file: the root's metadata. */
    cellar_node *m = metadata_open(c, root, nkv);
    for (size_t i = 0; i < nkv; i++)
        gguf_value(c, m, g, i);

    char what[96];
    snprintf(what, sizeof what, "GGUF v%u, alignment %u, data at byte %" PRIu64,
             cellar_gguf_version(g), cellar_gguf_alignment(g), cellar_gguf_data_offset(g));
    cellar_node *comps = tree_array(c->t, root, "components");
    cellar_node *o = component_open(c, comps, "", path, "gguf", what);
    cellar_node *f = tree_object(c->t, files_open(c, o, "files", 1, false), NULL);
    tree_strz(c->t, f, "path", path);
    tree_u64(c->t, f, "size", size);
    tree_u64(c->t, f, "tensors", nt);
    cellar_tensor_stats *stats = NULL;
    if ((rc = cellar_tensor_stats_new(&stats)) == 0 &&
        (rc = cellar_tensor_stats_add_gguf(stats, g)) == 0) {
        summary(c, o, stats, size, 0);
        cellar_identity *id = identify_path(c, path);
        structural(c, o, id ? cellar_identity_get(id)->structural : NULL, NULL);
        identity_node(c->t, o, "model", id);
        cellar_identity_free(id);
        /* Shapes as GGUF has them: ne[0] (innermost) first. */
        cellar_node *list = tensor_list_open(c, o);
        for (size_t i = 0; list && i < nt; i++) {
            const cellar_gguf_tensor *x = cellar_gguf_tensor_at(g, i);
            uint64_t at = cellar_gguf_data_offset(g) + x->offset;
            tensor_row(c, list, x->name, x->name_len, x->type_name, x->n_dims, x->dims, x->size,
                       &at, 0, NULL);
        }
        one_component(c, comps);
        summary(c, root, stats, components_size(comps), CELLAR_NODE_HIDDEN);
    }
    cellar_tensor_stats_free(stats);
    cellar_gguf_free(g);
    return rc;
}

/* ---- DDUF: one component per top-level folder and weights variant, its
 * .safetensors entries read in place from the archive's mapping ---- */

/* One weight set of a component (cellar_dduf_weight_sets() groups them by
 * variant with the rule folders use). */
static int dduf_component(struct ctx *c, cellar_node *comps, const cellar_dduf *d,
                          const char *comp, const cellar_dduf_weights *set,
                          cellar_tensor_stats *total)
{
    size_t n = set->n;
    struct st_set s;
    int rc = st_set_alloc(&s, n, true);
    cellar_node *o = component_open(c, comps, comp, NULL, "safetensors", NULL);
    if (*set->variant)
        tree_text(c->t, o, "[%s, variant %s]", comp, set->variant);
    tree_hint(tree_strz(c->t, o, "variant", *set->variant ? set->variant : NULL),
              CELLAR_NODE_HIDDEN);
    cellar_node *entries = files_open(c, o, "entries", n, true);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        const cellar_dduf_entry *e = cellar_dduf_entry_at(d, set->entries[k]);
        if ((rc = cellar_dduf_open_safetensors(&s.files[s.n], d, set->entries[k])) != 0)
            break;
        s.labels[s.n] = e->name;
        s.base[s.n] = e->offset;
        s.size += e->size;
        size_t nt = cellar_st_count(s.files[s.n++]);
        cellar_node *r = tree_object(c->t, entries, NULL);
        tree_text(c->t, r, "%s (offset %" PRIu64 ", %" PRIu64 " bytes, %zu tensor%s)", e->name,
                  e->offset, e->size, nt, nt == 1 ? "" : "s");
        tree_str(c->t, r, "name", e->name, e->name_len);
        tree_u64(c->t, r, "offset", e->offset);
        tree_u64(c->t, r, "size", e->size);
        tree_u64(c->t, r, "tensors", nt);
    }
    if (rc == 0)
        rc = st_component(c, o, &s, total);
    st_set_free(&s, true);
    return rc;
}

static int inspect_dduf(struct ctx *c, const char *path)
{
    cellar_dduf *d;
    int rc = cellar_dduf_open(&d, path, 0);
    if (rc)
        return rc;
    cellar_node *root = c->root;
    size_t nc = cellar_dduf_component_count(d);
    tree_text(c->t, c->format, "DDUF, %zu entries, %zu components", cellar_dduf_entry_count(d),
              nc);
    tree_hint(tree_u64(c->t, root, "entries", cellar_dduf_entry_count(d)), CELLAR_NODE_HIDDEN);
    /* The reader parsed model_index.json strictly already. */
    const cellar_dduf_entry *index = NULL;
    cellar_json_doc *doc = NULL;
    if (cellar_dduf_find(&index, d, "model_index.json") == 0 &&
        cellar_json_parse(&doc, index->data, (size_t)index->size, 0, "model_index.json",
                          NULL) == 0) {
        tree_hint(tree_json(c->t, root, "model_index", cellar_json_root(doc)),
                  CELLAR_NODE_HIDDEN);
    } else {
        cellar_error_clear();
        tree_null(c->t, root, "model_index");
    }
    cellar_json_free(doc);
    pipeline_model(c, path);
    cellar_node *comps = tree_array(c->t, root, "components");
    cellar_tensor_stats *total = NULL;
    rc = cellar_tensor_stats_new(&total);
    for (size_t i = 0; i < nc && rc == 0; i++) {
        const char *comp = cellar_dduf_component_at(d, i);
        cellar_dduf_weights *sets;
        size_t nsets;
        if ((rc = cellar_dduf_weight_sets(&sets, &nsets, d, comp)) != 0)
            break;
        for (size_t k = 0; k < nsets && rc == 0; k++)
            rc = dduf_component(c, comps, d, comp, &sets[k], total);
        cellar_dduf_weight_sets_free(sets, nsets);
    }
    if (rc == 0)
        summary(c, root, total, components_size(comps), 0);
    cellar_tensor_stats_free(total);
    cellar_dduf_free(d);
    return rc;
}

/* ---- safetensors files, shard sets and model folders ---- */

/* One component: a safetensors file or a shard set, or a checkpoint. */
static int weights_component(struct ctx *c, cellar_node *comps, const cellar_component *cp,
                             cellar_tensor_stats *total)
{
    struct stat pst;
    if (stat(cp->path, &pst) == 0 && S_ISREG(pst.st_mode) && cellar_pt_sniff(cp->path)) {
        cellar_pt *pt;
        int rc = cellar_pt_open(&pt, cp->path, 0);
        if (rc == 0)
            rc = pt_component(c, comps, cp->name, cp->path, pt, total);
        cellar_pt_free(pt);
        return rc;
    }
    cellar_shards *sh;
    int rc = cellar_shards_open(&sh, cp->path);
    if (rc)
        return rc;
    size_t n = cellar_shards_nfiles(sh);
    struct st_set s;
    if ((rc = st_set_alloc(&s, n, false)) != 0) {
        st_set_free(&s, false);
        cellar_shards_free(sh);
        return rc;
    }
    s.n = n;
    s.shards = sh;
    s.size = cellar_shards_size(sh);
    char what[64];
    if (cellar_shards_indexed(sh))
        snprintf(what, sizeof what, "safetensors (sharded), %zu files", n);
    else
        snprintf(what, sizeof what, "safetensors, header %" PRIu64 " bytes",
                 n ? cellar_st_header_len(cellar_shards_file(sh, 0)) : 0);
    cellar_node *o = component_open(c, comps, cp->name, cp->path,
                                    cellar_shards_indexed(sh) ? "safetensors (sharded)"
                                                              : "safetensors",
                                    what);
    cellar_node *fl = files_open(c, o, "files", n, false);
    for (size_t i = 0; i < n; i++) {
        cellar_st *f = s.files[i] = cellar_shards_file(sh, i);
        s.labels[i] = cellar_shards_path(sh, i);
        size_t nt = cellar_st_count(f);
        cellar_node *r = tree_object(c->t, fl, NULL);
        tree_text(c->t, r, "%s (%" PRIu64 " bytes, header %" PRIu64 " bytes, %zu tensor%s)",
                  base_name(s.labels[i]), cellar_st_file_size(f), cellar_st_header_len(f), nt,
                  nt == 1 ? "" : "s");
        tree_strz(c->t, r, "path", s.labels[i]);
        tree_u64(c->t, r, "size", cellar_st_file_size(f));
        tree_u64(c->t, r, "header_bytes", cellar_st_header_len(f));
        tree_u64(c->t, r, "tensors", nt);
    }
    rc = st_component(c, o, &s, total);
    st_set_free(&s, false);
    cellar_shards_free(sh);
    return rc;
}

static int inspect_weights(struct ctx *c, const char *path)
{
    cellar_component *comps;
    size_t n;
    int rc = cellar_components(&comps, &n, path);
    if (rc)
        return rc;
    cellar_node *root = c->root;
    bool folder = n > 1 || (n == 1 && *comps[0].name);
    /* A static string: it outlives the tree. */
    if (c->format) {
        c->format->v.str.s = folder ? "diffusers" : "safetensors";
        c->format->v.str.len = strlen(c->format->v.str.s);
    }
    if (folder) {
        tree_text(c->t, c->format, "diffusers folder, %zu weight components", n);
        pipeline_model(c, path);
    }
    cellar_node *list = tree_array(c->t, root, "components");
    cellar_tensor_stats *total = NULL;
    rc = cellar_tensor_stats_new(&total);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = weights_component(c, list, &comps[i], total);
    if (rc == 0) {
        if (!folder && n == 1)
            one_component(c, list);
        summary(c, root, total, components_size(list), folder ? 0 : CELLAR_NODE_HIDDEN);
    }
    cellar_tensor_stats_free(total);
    cellar_components_free(comps, n);
    return rc;
}

/* ---- the entry point ---- */

/* Which reader builds the tree for what cellar_detect_format() found. */
static const struct {
    cellar_format format;
    int (*inspect)(struct ctx *c, const char *path);
} readers[] = {
    {CELLAR_FORMAT_GGUF, inspect_gguf},
    {CELLAR_FORMAT_PYTORCH, inspect_pt},
    {CELLAR_FORMAT_DDUF, inspect_dduf},
    {CELLAR_FORMAT_SAFETENSORS, inspect_weights},
    {CELLAR_FORMAT_FOLDER, inspect_weights},
};

int cellar_inspect(cellar_tree **out, const char *path, const cellar_inspect_opts *opts)
{
    *out = NULL;
    static const cellar_inspect_opts defaults = CELLAR_INSPECT_OPTS_INIT;
    if (!opts)
        opts = &defaults;
    CELLAR_OPTS_CHECK(opts, "cellar_inspect_opts", CELLAR_INSPECT_OPTS_VERSION,
                      "CELLAR_INSPECT_OPTS_INIT");
    RETURN_ERROR_IF(!path, CELLAR_EINVAL, "cellar_inspect: no path");
    cellar_format format;
    int rc = cellar_detect_format(&format, path);
    if (rc)
        return rc;
    size_t r = 0;
    while (r < sizeof readers / sizeof *readers && readers[r].format != format)
        r++;
    RETURN_ERROR_IF(r == sizeof readers / sizeof *readers, CELLAR_EUNSUPPORTED,
                    "%s: not a weight file or model folder cellar knows", path);
    if ((rc = tree_new(out)) != 0)
        return cellar_fail(rc, "%s: out of memory", path);
    struct ctx c = {*out, opts->registry, (opts->flags & CELLAR_INSPECT_TENSORS) != 0,
                    tree_root(*out), NULL, NULL};
    tree_strz(c.t, c.root, "path", path);
    c.format = tree_strz(c.t, c.root, "format", cellar_format_name(format));
    rc = readers[r].inspect(&c, path);
    if (rc == 0 && (rc = tree_status(c.t)) != 0)
        rc = cellar_fail(rc, "%s: out of memory", path);
    if (rc) {
        /* Keep what was read, saying why it stops there. */
        const char *msg = cellar_error_last();
        if (tree_status(c.t) ||
            !tree_hint(tree_strz(c.t, c.root, "error", msg), CELLAR_NODE_HIDDEN)) {
            cellar_tree_free(*out);
            *out = NULL;
        }
    }
    return rc;
}
