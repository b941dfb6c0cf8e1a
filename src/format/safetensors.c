/* safetensors: the strict reader (the canonical writer is in
 * safetensors_write.c).
 *
 * The reader follows huggingface/safetensors' read_metadata() step by step
 * (FORMATS.md reader rules 1-14, in that order), so the first rule a file
 * breaks is the one reported, with the reference's wording:
 *   1-3  the 8-byte length N and the header's extent,
 *   4    UTF-8 of the whole header,
 *   5    strict JSON (serde_json: depth limit, no trailing bytes),
 *   6-10 deserialization: object at the top, __metadata__ first (serde
 *        handles the named field while it buffers the flattened tensors),
 *        then every tensor entry in document order,
 *   11   duplicates: the last entry of a name wins,
 *   12   offsets walked in (begin, end) order with checked sizes,
 *   13   the data buffer covered exactly.
 * Only the header is read at open; data is mapped on first request. */
#include "json.h"
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- dtypes ---- */

static const struct {
    const char *name;
    unsigned bits;
    /* Place in the reference's Dtype enum, which its writer sorts by
     * (descending). Private, so a dtype the reference inserts mid-list
     * renumbers ranks here while its public value is appended. */
    unsigned rank;
} dtypes[CELLAR_DTYPE__COUNT] = {
    [CELLAR_DTYPE_BOOL] = {"BOOL", 8, 0},
    [CELLAR_DTYPE_F4] = {"F4", 4, 1},
    [CELLAR_DTYPE_F6_E2M3] = {"F6_E2M3", 6, 2},
    [CELLAR_DTYPE_F6_E3M2] = {"F6_E3M2", 6, 3},
    [CELLAR_DTYPE_U8] = {"U8", 8, 4},
    [CELLAR_DTYPE_I8] = {"I8", 8, 5},
    [CELLAR_DTYPE_F8_E5M2] = {"F8_E5M2", 8, 6},
    [CELLAR_DTYPE_F8_E4M3] = {"F8_E4M3", 8, 7},
    [CELLAR_DTYPE_F8_E8M0] = {"F8_E8M0", 8, 8},
    [CELLAR_DTYPE_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8, 9},
    [CELLAR_DTYPE_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8, 10},
    [CELLAR_DTYPE_I16] = {"I16", 16, 11},
    [CELLAR_DTYPE_U16] = {"U16", 16, 12},
    [CELLAR_DTYPE_F16] = {"F16", 16, 13},
    [CELLAR_DTYPE_BF16] = {"BF16", 16, 14},
    [CELLAR_DTYPE_I32] = {"I32", 32, 15},
    [CELLAR_DTYPE_U32] = {"U32", 32, 16},
    [CELLAR_DTYPE_F32] = {"F32", 32, 17},
    [CELLAR_DTYPE_C64] = {"C64", 64, 18},
    [CELLAR_DTYPE_F64] = {"F64", 64, 19},
    [CELLAR_DTYPE_I64] = {"I64", 64, 20},
    [CELLAR_DTYPE_U64] = {"U64", 64, 21},
};

const char *cellar_dtype_name(cellar_dtype d)
{
    return (unsigned)d < CELLAR_DTYPE__COUNT ? dtypes[d].name : "?";
}

unsigned cellar_dtype_bits(cellar_dtype d)
{
    return (unsigned)d < CELLAR_DTYPE__COUNT ? dtypes[d].bits : 0;
}

unsigned cellar_dtype_rank(cellar_dtype d)
{
    return (unsigned)d < CELLAR_DTYPE__COUNT ? dtypes[d].rank : 0;
}

int cellar_dtype_parse(cellar_dtype *out, const char *name, size_t len)
{
    for (int i = 0; i < CELLAR_DTYPE__COUNT; i++)
        if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, name, len) == 0) {
            *out = (cellar_dtype)i;
            return 0;
        }
    return cellar_fail(CELLAR_EINVAL, "unknown dtype '%.*s'", (int)(len > 64 ? 64 : len), name);
}

int cellar_st_nbytes(uint64_t *nelem, uint64_t *nbytes, cellar_dtype dtype, size_t rank,
                     const uint64_t *shape)
{
    uint64_t n = 1, bits;
    for (size_t i = 0; i < rank; i++)
        if (ck_mul(n, shape[i], &n))
            return CELLAR_ERANGE;
    if (ck_mul(n, (uint64_t)cellar_dtype_bits(dtype), &bits))
        return CELLAR_ERANGE;
    *nelem = n;
    if (bits % 8)
        return CELLAR_EINVAL;
    *nbytes = bits / 8;
    return 0;
}

void cellar_st_quote(char *out, size_t size, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F || c == '\\' || c == '\'')
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
        if (i + 1 < len && o + 5 >= size) {
            memcpy(out + o - (o >= 3 ? 3 : o), "...", 3);
            break;
        }
    }
    out[o < size ? o : size - 1] = '\0';
}

/* ---- the handle ---- */

typedef struct meta_entry {
    const char *key, *value;
    size_t key_len, value_len;
    size_t pos; /* document order */
} meta_entry;

struct cellar_st {
    char *label;
    int fd;             /* -1 when reading from a buffer */
    const uint8_t *buf; /* the whole file, when opened from a buffer */
    uint64_t file_size, header_len;
    void *map;
    cellar_json_doc *doc;
    cellar_st_tensor *tensors;
    size_t count;
    size_t *by_name; /* tensor indices sorted by name */
    uint64_t *dims;
    meta_entry *meta;
    size_t nmeta;
};

static int bad(const cellar_st *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(const cellar_st *st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cellar_fail(CELLAR_EFORMAT, "%s: %s", st->label, msg);
}

int cellar_st_name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* A tensor entry as deserialized, before duplicates are resolved. */
typedef struct pending {
    const char *name;
    size_t name_len;
    cellar_dtype dtype;
    size_t rank, dims_at;
    uint64_t begin, end;
    size_t pos;
} pending;

typedef struct dimvec {
    uint64_t *v;
    size_t n, cap;
} dimvec;

static int dims_push(dimvec *d, uint64_t x)
{
    int rc = cellar_grow(&d->v, &d->cap, d->n, sizeof *d->v, 256);
    if (rc)
        return rc;
    d->v[d->n++] = x;
    return 0;
}

static const char *type_word(const cellar_json *v)
{
    switch (v->type) {
    case CELLAR_JSON_NULL: return "null";
    case CELLAR_JSON_FALSE:
    case CELLAR_JSON_TRUE: return "a boolean";
    case CELLAR_JSON_NUMBER: return "a number";
    case CELLAR_JSON_STRING: return "a string";
    case CELLAR_JSON_ARRAY: return "an array";
    case CELLAR_JSON_OBJECT: return "an object";
    }
    return "?";
}

/* Rule 9: a JSON integer in [0, 2^64). */
static int want_u64(const cellar_st *st, const char *tname, const char *what, const cellar_json *v,
                    uint64_t *out)
{
    if (cellar_json_u64(v, out))
        return 0;
    if (v->type == CELLAR_JSON_NUMBER)
        return bad(st, "invalid header deserialization: tensor '%s': %s is %.40s, not an integer in [0, 2^64)",
                   tname, what, v->u.str);
    return bad(st, "invalid header deserialization: tensor '%s': %s is %s, not an integer", tname,
               what, type_word(v));
}

static int read_dtype(const cellar_st *st, const char *tname, const cellar_json *v, pending *t)
{
    /* serde reads a buffered enum also in its externally tagged form, a
     * one-key object {"F32": null}; a unit variant's payload may be null or
     * {} (serde's ContentDeserializer::deserialize_unit), so the reference
     * accepts those too. */
    if (v->type == CELLAR_JSON_OBJECT && v->count == 1) {
        const cellar_json *payload = &v->u.members[0].value;
        if (payload->type != CELLAR_JSON_NULL &&
            !(payload->type == CELLAR_JSON_OBJECT && payload->count == 0))
            return bad(st, "invalid header deserialization: tensor '%s': dtype variant payload is %s, not null",
                       tname, type_word(payload));
        cellar_json name = {.type = CELLAR_JSON_STRING, .len = v->u.members[0].key_len};
        name.u.str = v->u.members[0].key;
        return read_dtype(st, tname, &name, t);
    }
    if (v->type != CELLAR_JSON_STRING)
        return bad(st, "invalid header deserialization: tensor '%s': dtype is %s, not a string",
                   tname, type_word(v));
    for (int i = 0; i < CELLAR_DTYPE__COUNT; i++)
        if (cellar_json_str_eq(v, dtypes[i].name)) {
            t->dtype = (cellar_dtype)i;
            return 0;
        }
    char shown[64];
    cellar_st_quote(shown, sizeof shown, v->u.str, v->len);
    return bad(st, "invalid header deserialization: tensor '%s': unknown dtype '%s'", tname, shown);
}

static int read_shape(const cellar_st *st, const char *tname, const cellar_json *v, pending *t,
                      dimvec *dims)
{
    if (v->type != CELLAR_JSON_ARRAY)
        return bad(st, "invalid header deserialization: tensor '%s': shape is %s, not an array",
                   tname, type_word(v));
    t->dims_at = dims->n;
    t->rank = v->count;
    for (size_t i = 0; i < v->count; i++) {
        uint64_t x;
        char what[40];
        snprintf(what, sizeof what, "shape[%zu]", i);
        int rc = want_u64(st, tname, what, &v->u.items[i], &x);
        if (rc || (rc = dims_push(dims, x)))
            return rc;
    }
    return 0;
}

static int read_offsets(const cellar_st *st, const char *tname, const cellar_json *v, pending *t)
{
    if (v->type != CELLAR_JSON_ARRAY)
        return bad(st, "invalid header deserialization: tensor '%s': data_offsets is %s, not an array",
                   tname, type_word(v));
    if (v->count != 2)
        return bad(st, "invalid header deserialization: tensor '%s': data_offsets has %u entries, not 2",
                   tname, v->count);
    int rc = want_u64(st, tname, "data_offsets[0]", &v->u.items[0], &t->begin);
    return rc ? rc : want_u64(st, tname, "data_offsets[1]", &v->u.items[1], &t->end);
}

/* Rules 8-10 for one entry: an object with dtype, shape and data_offsets
 * (each exactly once, none null; others ignored), or the 3-array form. */
static int read_tensor(const cellar_st *st, const cellar_json_member *m, pending *t, dimvec *dims)
{
    char tname[CELLAR_ST_NAME_SHOWN];
    cellar_st_quote(tname, sizeof tname, m->key, m->key_len);
    t->name = m->key;
    t->name_len = m->key_len;
    const cellar_json *v = &m->value;
    int rc;
    if (v->type == CELLAR_JSON_ARRAY) {
        if (v->count != 3)
            return bad(st, "invalid header deserialization: tensor '%s': array form has %u entries, "
                           "not 3 (dtype, shape, data_offsets)",
                       tname, v->count);
        if ((rc = read_dtype(st, tname, &v->u.items[0], t)) ||
            (rc = read_shape(st, tname, &v->u.items[1], t, dims)))
            return rc;
        return read_offsets(st, tname, &v->u.items[2], t);
    }
    if (v->type != CELLAR_JSON_OBJECT)
        return bad(st, "invalid header deserialization: tensor '%s' is %s, not an object", tname,
                   type_word(v));
    bool seen[3] = {false, false, false};
    static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
    for (size_t i = 0; i < v->count; i++) {
        const cellar_json_member *f = &v->u.members[i];
        int which = -1;
        for (int k = 0; k < 3; k++)
            if (f->key_len == strlen(fields[k]) && memcmp(f->key, fields[k], f->key_len) == 0)
                which = k;
        if (which < 0)
            continue;
        if (seen[which])
            return bad(st, "invalid header deserialization: tensor '%s': duplicate field `%s`",
                       tname, fields[which]);
        seen[which] = true;
        if (which == 0)
            rc = read_dtype(st, tname, &f->value, t);
        else if (which == 1)
            rc = read_shape(st, tname, &f->value, t, dims);
        else
            rc = read_offsets(st, tname, &f->value, t);
        if (rc)
            return rc;
    }
    for (int k = 0; k < 3; k++)
        if (!seen[k])
            return bad(st, "invalid header deserialization: tensor '%s': missing field `%s`", tname,
                       fields[k]);
    return 0;
}

static int cmp_meta_key(const void *a, const void *b)
{
    const meta_entry *x = a, *y = b;
    int c = cellar_st_name_cmp(x->key, x->key_len, y->key, y->key_len);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

static int cmp_meta_pos(const void *a, const void *b)
{
    const meta_entry *x = a, *y = b;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Duplicate keys: the last value wins, at the first key's position. */
static void dedup_meta(meta_entry *e, size_t *n)
{
    qsort(e, *n, sizeof *e, cmp_meta_key);
    size_t out = 0;
    for (size_t i = 0; i < *n; i++) {
        if (out && cellar_st_name_cmp(e[out - 1].key, e[out - 1].key_len, e[i].key, e[i].key_len) == 0) {
            e[out - 1].value = e[i].value;
            e[out - 1].value_len = e[i].value_len;
            continue;
        }
        e[out++] = e[i];
    }
    qsort(e, out, sizeof *e, cmp_meta_pos);
    *n = out;
}

/* Rule 7. */
static int read_metadata(cellar_st *st, const cellar_json *root)
{
    const cellar_json *md = NULL;
    for (size_t i = 0; i < root->count; i++) {
        const cellar_json_member *m = &root->u.members[i];
        if (m->key_len != 12 || memcmp(m->key, "__metadata__", 12) != 0)
            continue;
        if (md)
            return bad(st, "invalid header deserialization: duplicate field `__metadata__`");
        md = &m->value;
        if (md->type == CELLAR_JSON_NULL)
            continue;
        if (md->type != CELLAR_JSON_OBJECT)
            return bad(st, "invalid header deserialization: __metadata__ is %s, not an object of strings",
                       type_word(md));
        for (size_t k = 0; k < md->count; k++)
            if (md->u.members[k].value.type != CELLAR_JSON_STRING) {
                char key[CELLAR_ST_NAME_SHOWN];
                cellar_st_quote(key, sizeof key, md->u.members[k].key, md->u.members[k].key_len);
                return bad(st, "invalid header deserialization: __metadata__ value of '%s' is %s, not a string",
                           key, type_word(&md->u.members[k].value));
            }
    }
    if (!md || md->type == CELLAR_JSON_NULL || md->count == 0)
        return 0;
    meta_entry *e = cellar_calloc(md->count, sizeof *e);
    if (!e)
        return CELLAR_ENOMEM;
    for (size_t k = 0; k < md->count; k++) {
        const cellar_json_member *m = &md->u.members[k];
        e[k] = (meta_entry){m->key, m->value.u.str, m->key_len, m->value.len, k};
    }
    st->meta = e;
    st->nmeta = md->count;
    dedup_meta(st->meta, &st->nmeta);
    return 0;
}

static int cmp_pending_name(const void *a, const void *b)
{
    const pending *x = a, *y = b;
    int c = cellar_st_name_cmp(x->name, x->name_len, y->name, y->name_len);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

static int cmp_pending_offsets(const void *a, const void *b)
{
    const pending *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int cmp_index_name(const void *a, const void *b, void *ctx)
{
    const cellar_st_tensor *x = &((const cellar_st *)ctx)->tensors[*(const size_t *)a];
    const cellar_st_tensor *y = &((const cellar_st *)ctx)->tensors[*(const size_t *)b];
    return cellar_st_name_cmp(x->name, x->name_len, y->name, y->name_len);
}

/* Rules 4-13 on the header bytes (hdr, st->header_len of them). */
static int parse_header(cellar_st *st, const uint8_t *hdr)
{
    size_t n = (size_t)st->header_len;
    /* Rule 4. */
    size_t badu = cellar_utf8_check(hdr, n);
    if (badu != n)
        return bad(st, "invalid header: not valid UTF-8 at header byte %zu", badu);
    /* Rule 5: serde_json's limit of 128 counts down before each container
     * and fails on reaching 0, so 127 nested containers pass, 128 fail. */
    cellar_json_error jerr;
    int rc = cellar_json_parse(&st->doc, hdr, n, 127, st->label, &jerr);
    if (rc == CELLAR_EFORMAT)
        return bad(st, "invalid header deserialization: %s at header byte %zu", jerr.what,
                   jerr.offset);
    if (rc)
        return rc;
    const cellar_json *root = cellar_json_root(st->doc);
    /* Rule 6. */
    if (root->type != CELLAR_JSON_OBJECT)
        return bad(st, "invalid header deserialization: the header is %s, not an object",
                   type_word(root));
    /* Rule 7. */
    if ((rc = read_metadata(st, root)))
        return rc;
    /* Rules 8-10, in document order. */
    pending *p = cellar_calloc(root->count, sizeof *p);
    dimvec dims = {0};
    size_t np = 0;
    if (!p)
        return CELLAR_ENOMEM;
    for (size_t i = 0; i < root->count; i++) {
        const cellar_json_member *m = &root->u.members[i];
        if (m->key_len == 12 && memcmp(m->key, "__metadata__", 12) == 0)
            continue;
        p[np].pos = i;
        if ((rc = read_tensor(st, m, &p[np], &dims)))
            goto done;
        np++;
    }
    /* Rule 11: the last entry of a name wins. */
    qsort(p, np, sizeof *p, cmp_pending_name);
    size_t nu = 0;
    for (size_t i = 0; i < np; i++) {
        if (i + 1 < np && cellar_st_name_cmp(p[i].name, p[i].name_len, p[i + 1].name, p[i + 1].name_len) == 0)
            continue;
        p[nu++] = p[i];
    }
    /* Rule 12: walk in (begin, end) order. */
    qsort(p, nu, sizeof *p, cmp_pending_offsets);
    st->tensors = cellar_calloc(nu, sizeof *st->tensors);
    st->by_name = cellar_calloc(nu, sizeof *st->by_name);
    if (!st->tensors || !st->by_name) {
        rc = CELLAR_ENOMEM;
        goto done;
    }
    st->dims = dims.v;
    dims.v = NULL;
    uint64_t at = 0, data_start = 8 + st->header_len;
    for (size_t i = 0; i < nu; i++) {
        const pending *t = &p[i];
        char tname[CELLAR_ST_NAME_SHOWN];
        cellar_st_quote(tname, sizeof tname, t->name, t->name_len);
        if (t->begin != at || t->end < t->begin) {
            rc = bad(st, "invalid offset for tensor '%s': data_offsets [%llu, %llu], expected it to begin at %llu",
                     tname, (unsigned long long)t->begin, (unsigned long long)t->end,
                     (unsigned long long)at);
            goto done;
        }
        at = t->end;
        cellar_st_tensor *o = &st->tensors[i];
        /* Scalars only: no dims array at all (NULL + 0 is undefined). */
        const uint64_t *shape = st->dims ? st->dims + t->dims_at : NULL;
        uint64_t nbytes;
        rc = cellar_st_nbytes(&o->nelem, &nbytes, t->dtype, t->rank, shape);
        if (rc == CELLAR_ERANGE) {
            rc = bad(st, "tensor '%s': overflow computing the size of its %zu-dimensional %s shape",
                     tname, t->rank, dtypes[t->dtype].name);
            goto done;
        }
        if (rc) {
            rc = bad(st, "tensor '%s': misaligned: %llu elements of %s are not a whole number of bytes",
                     tname, (unsigned long long)o->nelem, dtypes[t->dtype].name);
            goto done;
        }
        if (t->end - t->begin != nbytes) {
            rc = bad(st, "tensor '%s': invalid shape, dtype or offsets: data_offsets span %llu bytes, "
                         "%llu elements of %s need %llu",
                     tname, (unsigned long long)(t->end - t->begin), (unsigned long long)o->nelem,
                     dtypes[t->dtype].name, (unsigned long long)nbytes);
            goto done;
        }
        o->name = t->name;
        o->name_len = t->name_len;
        o->dtype = t->dtype;
        o->dtype_name = dtypes[t->dtype].name;
        o->rank = t->rank;
        o->shape = shape;
        o->begin = t->begin;
        o->end = t->end;
        o->offset = data_start + t->begin; /* <= file size once rule 13 holds */
        st->by_name[i] = i;
    }
    st->count = nu;
    /* Rule 13. */
    if (st->file_size - data_start != at) {
        rc = bad(st, "incomplete metadata, file not fully covered: the tensors end at data byte %llu, "
                     "the file has %llu data bytes",
                 (unsigned long long)at, (unsigned long long)(st->file_size - data_start));
        goto done;
    }
    qsort_r(st->by_name, nu, sizeof *st->by_name, cmp_index_name, st);
done:
    free(p);
    free(dims.v);
    return rc;
}

/* Rules 1-3 on the first 8 bytes and the file size. */
static int check_length(cellar_st *st, const uint8_t head[8], uint64_t avail)
{
    if (avail < 8)
        return bad(st, "header too small: the file is %llu bytes, the length prefix alone is 8",
                   (unsigned long long)avail);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | head[i];
    if (n > CELLAR_ST_MAX_HEADER)
        return bad(st, "header too large: %llu bytes, the limit is %u", (unsigned long long)n,
                   CELLAR_ST_MAX_HEADER);
    if (8 + n > avail)
        return bad(st, "invalid header length: 8 + %llu header bytes pass the end of the %llu-byte file",
                   (unsigned long long)n, (unsigned long long)avail);
    st->header_len = n;
    return 0;
}

static cellar_st *st_new(const char *label)
{
    cellar_st *st = cellar_calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->fd = -1;
    st->label = cellar_strdup(label ? label : "safetensors");
    if (!st->label) {
        free(st);
        return NULL;
    }
    return st;
}

int cellar_st_open_buffer(cellar_st **out, const void *data, size_t len, const char *label)
{
    *out = NULL;
    cellar_st *st = st_new(label);
    if (!st)
        return CELLAR_ENOMEM;
    st->buf = data;
    st->file_size = len;
    int rc = check_length(st, data, len);
    if (rc == 0)
        rc = parse_header(st, st->buf + 8);
    if (rc) {
        cellar_st_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

static int open_fd_owned(cellar_st **out, int fd, const char *label)
{
    cellar_st *st = st_new(label);
    if (!st) {
        close(fd);
        return CELLAR_ENOMEM;
    }
    st->fd = fd;
    int rc = 0;
    uint8_t head[8];
    uint8_t *hdr = NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        rc = cellar_fail_errno(errno, "%s", st->label);
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = cellar_fail(CELLAR_EUNSUPPORTED, "%s: not a regular file", st->label);
        goto done;
    }
    st->file_size = (uint64_t)sb.st_size;
    ssize_t got = st->file_size >= 8 ? cellar_full_pread(fd, head, 8, 0) : 0;
    if (got < 0) {
        rc = cellar_fail_errno(errno, "%s: read", st->label);
        goto done;
    }
    if (st->file_size >= 8 && got != 8) {
        rc = cellar_fail(CELLAR_ECHANGED, "%s: the file shrank while its header was read", st->label);
        goto done;
    }
    if ((rc = check_length(st, head, st->file_size)))
        goto done;
    hdr = cellar_malloc((size_t)st->header_len + 1);
    if (!hdr) {
        rc = CELLAR_ENOMEM;
        goto done;
    }
    got = cellar_full_pread(fd, hdr, (size_t)st->header_len, 8);
    if (got < 0) {
        rc = cellar_fail_errno(errno, "%s: read", st->label);
        goto done;
    }
    if ((uint64_t)got != st->header_len) {
        rc = cellar_fail(CELLAR_ECHANGED, "%s: the file shrank while its header was read", st->label);
        goto done;
    }
    rc = parse_header(st, hdr);
done:
    free(hdr);
    if (rc) {
        cellar_st_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

int cellar_st_open(cellar_st **out, const char *path)
{
    *out = NULL;
    int fd;
    int rc = cellar_open_regular(&fd, path);
    if (rc)
        return rc;
    return open_fd_owned(out, fd, path);
}

int cellar_st_open_fd(cellar_st **out, int fd, const char *label)
{
    *out = NULL;
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0)
        return cellar_fail_errno(errno, "%s: dup", label ? label : "safetensors");
    return open_fd_owned(out, dup, label);
}

void cellar_st_free(cellar_st *st)
{
    if (!st)
        return;
    if (st->map)
        munmap(st->map, (size_t)st->file_size);
    if (st->fd >= 0)
        close(st->fd);
    cellar_json_free(st->doc);
    free(st->tensors);
    free(st->by_name);
    free(st->dims);
    free(st->meta);
    free(st->label);
    free(st);
}

size_t cellar_st_count(const cellar_st *st)
{
    return st->count;
}

const cellar_st_tensor *cellar_st_tensor_at(const cellar_st *st, size_t i)
{
    return i < st->count ? &st->tensors[i] : NULL;
}

int cellar_st_find(size_t *index, const cellar_st *st, const char *name, size_t name_len)
{
    size_t lo = 0, hi = st->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const cellar_st_tensor *t = &st->tensors[st->by_name[mid]];
        int c = cellar_st_name_cmp(t->name, t->name_len, name, name_len);
        if (c == 0) {
            *index = st->by_name[mid];
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    char shown[CELLAR_ST_NAME_SHOWN];
    cellar_st_quote(shown, sizeof shown, name, name_len);
    return cellar_fail(CELLAR_ENOTFOUND, "%s: no tensor '%s'", st->label, shown);
}

int cellar_st_data(const void **out, cellar_st *st, size_t i)
{
    *out = NULL;
    if (i >= st->count)
        return cellar_fail(CELLAR_EINVAL, "%s: no tensor %zu", st->label, i);
    if (st->buf) {
        *out = st->buf + st->tensors[i].offset;
        return 0;
    }
    void *map = __atomic_load_n(&st->map, __ATOMIC_ACQUIRE);
    if (!map) {
        if (st->file_size > SIZE_MAX)
            return cellar_fail(CELLAR_ERANGE, "%s: too large to map", st->label);
        void *m = mmap(NULL, (size_t)st->file_size, PROT_READ, MAP_SHARED, st->fd, 0);
        if (m == MAP_FAILED)
            return cellar_fail_errno(errno, "%s: mmap", st->label);
        /* Threads may race to map first: one mapping wins, the others go. */
        if (__atomic_compare_exchange_n(&st->map, &map, m, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            map = m;
        else
            munmap(m, (size_t)st->file_size);
    }
    *out = (const uint8_t *)map + st->tensors[i].offset;
    return 0;
}

size_t cellar_st_metadata_count(const cellar_st *st)
{
    return st->nmeta;
}

int cellar_st_metadata_at(const char **key, size_t *key_len, const char **value, size_t *value_len,
                          const cellar_st *st, size_t i)
{
    if (i >= st->nmeta)
        return cellar_fail(CELLAR_EINVAL, "%s: no metadata entry %zu", st->label, i);
    *key = st->meta[i].key;
    *key_len = st->meta[i].key_len;
    *value = st->meta[i].value;
    *value_len = st->meta[i].value_len;
    return 0;
}

int cellar_st_metadata_find(const char **value, const cellar_st *st, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < st->nmeta; i++)
        if (st->meta[i].key_len == n && memcmp(st->meta[i].key, key, n) == 0) {
            *value = st->meta[i].value;
            return 0;
        }
    *value = NULL;
    char shown[CELLAR_ST_NAME_SHOWN];
    cellar_st_quote(shown, sizeof shown, key, n);
    return cellar_fail(CELLAR_ENOTFOUND, "%s: no metadata key '%s'", st->label, shown);
}

uint64_t cellar_st_header_len(const cellar_st *st)
{
    return st->header_len;
}

uint64_t cellar_st_data_start(const cellar_st *st)
{
    return 8 + st->header_len;
}

uint64_t cellar_st_file_size(const cellar_st *st)
{
    return st->file_size;
}

const char *cellar_st_label(const cellar_st *st)
{
    return st->label;
}

int cellar_st_source(int *fd, const uint8_t **buf, const cellar_st *st)
{
    *fd = st->fd;
    *buf = st->buf;
    return 0;
}
