/*
 * GGUF header reader (versions 2 and 3), validated as ggml's gguf.cpp does.
 *
 * Layout, all little-endian:
 *
 *   "GGUF"  u32 version  u64 n_tensors  u64 n_kv
 *   n_kv x      { string key, u32 type, value }
 *   n_tensors x { string name, u32 n_dims, n_dims x u64 ne, u32 ggml_type,
 *                 u64 offset }
 *   zero padding to general.alignment (u32, a power of two, default 32)
 *   tensor data: tensor i at data_offset + offset_i
 *
 * A string is a u64 byte count then the bytes (no NUL, any bytes). A value
 * is a scalar of types 0..7, 10..12, a string (8), or an array (9): u32 item
 * type, u64 count, items; arrays never nest.
 *
 * The reader keeps a cursor and the bytes left, and checks every declared
 * length or count against them before allocating or reading, so a hostile
 * header can neither read out of bounds nor make us allocate more than a
 * small multiple of the file's own size. Tensor data is never touched: a
 * path is mmapped and only the header pages are faulted in.
 */
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NAME 64 /* ggml's GGML_MAX_NAME: names are shorter */
#define GGUF_MAX_STRING ((uint64_t)1 << 30)
#define GGUF_MAX_ARRAY ((uint64_t)1 << 30)
#define GGUF_DEFAULT_ALIGNMENT 32
/* Smallest encodings, to bound counts by the bytes left before allocating. */
#define GGUF_MIN_KV_BYTES (8 + 4 + 1)
#define GGUF_MIN_TENSOR_BYTES (8 + 4 + 4 + 8)

/* ggml's type traits: block size in elements and bytes per block. Removed
 * ids (4, 5, 31-33, 36-38) have no entry and are rejected like unknown ones. */
struct ggml_type_traits {
    const char *name;
    uint32_t blck;
    uint32_t size;
};

static const struct ggml_type_traits ggml_types[] = {
    [0] = {"F32", 1, 4},         [1] = {"F16", 1, 2},         [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},      [6] = {"Q5_0", 32, 22},      [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},      [9] = {"Q8_1", 32, 36},      [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},   [12] = {"Q4_K", 256, 144},   [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},   [15] = {"Q8_K", 256, 292},   [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74},  [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},   [21] = {"IQ3_S", 256, 110},  [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},         [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},        [27] = {"I64", 1, 8},        [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},   [30] = {"BF16", 1, 2},       [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},   [39] = {"MXFP4", 32, 17},
};
#define GGML_TYPE_COUNT (sizeof ggml_types / sizeof ggml_types[0])

static const struct ggml_type_traits *ggml_type_get(uint32_t type)
{
    if (type >= GGML_TYPE_COUNT || !ggml_types[type].name)
        return NULL;
    return &ggml_types[type];
}

static const char *const value_type_names[] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
static const uint8_t value_type_sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
#define GGUF_TYPE_COUNT (sizeof value_type_sizes)

/* A key/value: the public view plus where its value sits in the buffer. */
struct gguf_kv {
    cellar_gguf_kv pub;
    const uint8_t *value;
    uint64_t *str_offsets; /* string arrays: item i's u64 length at value + str_offsets[i] */
};

struct cellar_gguf {
    char *label;
    const uint8_t *data;
    size_t len;
    void *map; /* our own mapping of a path, else NULL (buffer borrowed) */
    size_t map_len;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    uint64_t data_size;
    struct gguf_kv *kv;
    size_t n_kv;
    cellar_gguf_tensor *tensors;
    size_t n_tensors;
};

/* The cursor over the header. */
struct reader {
    const cellar_gguf *g;
    const uint8_t *p;
    size_t left;
};

static uint64_t reader_pos(const struct reader *r)
{
    return (uint64_t)(r->p - r->g->data);
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

static int read_le(struct reader *r, uint64_t *out, unsigned n, const char *what)
{
    *out = 0;
    RETURN_ERROR_IF(r->left < n, CELLAR_EFORMAT,
                    "%s: file ends at offset %llu while reading %s (truncated header)", r->g->label,
                    (unsigned long long)reader_pos(r), what);
    *out = le(r->p, n);
    r->p += n;
    r->left -= n;
    return 0;
}

static int read_u32(struct reader *r, uint32_t *out, const char *what)
{
    uint64_t v = 0;
    int rc = read_le(r, &v, 4, what);
    *out = (uint32_t)v;
    return rc;
}

/* A string's bytes stay in the buffer; only its bounds are returned. */
static int read_str(struct reader *r, const char **out, size_t *out_len, const char *what)
{
    uint64_t n = 0;
    int rc = read_le(r, &n, 8, what);
    if (rc < 0)
        return rc;
    RETURN_ERROR_IF(n > GGUF_MAX_STRING, CELLAR_EFORMAT,
                    "%s: %s at offset %llu declares %llu bytes, more than the 1 GiB string limit",
                    r->g->label, what, (unsigned long long)(reader_pos(r) - 8),
                    (unsigned long long)n);
    RETURN_ERROR_IF(n > r->left, CELLAR_EFORMAT,
                    "%s: %s at offset %llu declares %llu bytes, only %zu bytes are left",
                    r->g->label, what, (unsigned long long)(reader_pos(r) - 8),
                    (unsigned long long)n, r->left);
    *out = (const char *)r->p;
    *out_len = (size_t)n;
    r->p += n;
    r->left -= (size_t)n;
    return 0;
}

/* Skips one value of a scalar or string type (never an array). */
static int skip_value(struct reader *r, uint32_t type, const cellar_gguf_kv *kv)
{
    if (type == CELLAR_GGUF_STRING) {
        const char *s;
        size_t n;
        return read_str(r, &s, &n, "string value");
    }
    size_t n = value_type_sizes[type];
    RETURN_ERROR_IF(r->left < n, CELLAR_EFORMAT,
                    "%s: file ends at offset %llu inside the value of key '%.*s' (truncated header)",
                    r->g->label, (unsigned long long)reader_pos(r), (int)kv->key_len, kv->key);
    r->p += n;
    r->left -= n;
    return 0;
}

static int read_array(struct reader *r, struct gguf_kv *kv)
{
    cellar_gguf_kv *pub = &kv->pub;
    uint32_t type = 0;
    uint64_t count = 0;
    int rc;
    if ((rc = read_u32(r, &type, "an array's item type")) < 0 ||
        (rc = read_le(r, &count, 8, "an array's item count")) < 0)
        return rc;
    RETURN_ERROR_IF(type == CELLAR_GGUF_ARRAY, CELLAR_EFORMAT,
                    "%s: key '%.*s' is an array of arrays (nested arrays are not allowed)",
                    r->g->label, (int)pub->key_len, pub->key);
    RETURN_ERROR_IF(type >= GGUF_TYPE_COUNT, CELLAR_EFORMAT,
                    "%s: key '%.*s' is an array of unknown type %u", r->g->label,
                    (int)pub->key_len, pub->key, type);
    RETURN_ERROR_IF(count > GGUF_MAX_ARRAY, CELLAR_EFORMAT,
                    "%s: key '%.*s' declares %llu array items, more than the limit of 2^30",
                    r->g->label, (int)pub->key_len, pub->key, (unsigned long long)count);
    pub->item_type = (cellar_gguf_type)type;
    pub->count = count;
    kv->value = r->p;
    if (type != CELLAR_GGUF_STRING) {
        uint64_t bytes = count * value_type_sizes[type]; /* <= 2^33: no overflow */
        RETURN_ERROR_IF(bytes > r->left, CELLAR_EFORMAT,
                        "%s: array '%.*s' of %llu items needs %llu bytes, only %zu are left",
                        r->g->label, (int)pub->key_len, pub->key, (unsigned long long)count,
                        (unsigned long long)bytes, r->left);
        r->p += bytes;
        r->left -= (size_t)bytes;
        return 0;
    }
    /* Each string takes at least its 8-byte length: bound the table first. */
    RETURN_ERROR_IF(count > r->left / 8, CELLAR_EFORMAT,
                    "%s: array '%.*s' declares %llu strings, only %zu bytes are left",
                    r->g->label, (int)pub->key_len, pub->key, (unsigned long long)count, r->left);
    if (count) {
        kv->str_offsets = cellar_malloc((size_t)count * sizeof *kv->str_offsets);
        if (!kv->str_offsets)
            return CELLAR_ENOMEM;
    }
    for (uint64_t i = 0; i < count; i++) {
        const char *s;
        size_t n;
        kv->str_offsets[i] = (uint64_t)(r->p - kv->value);
        if ((rc = read_str(r, &s, &n, "array string")) < 0)
            return cellar_fail_prefix("array '%.*s' item %llu", (int)pub->key_len, pub->key,
                                      (unsigned long long)i);
    }
    return 0;
}

static int read_kv(struct reader *r, struct gguf_kv *kv)
{
    cellar_gguf_kv *pub = &kv->pub;
    uint32_t type;
    int rc;
    if ((rc = read_str(r, &pub->key, &pub->key_len, "key")) < 0)
        return rc;
    RETURN_ERROR_IF(pub->key_len == 0, CELLAR_EFORMAT, "%s: empty key at offset %llu",
                    r->g->label, (unsigned long long)(reader_pos(r) - 8));
    if ((rc = read_u32(r, &type, "a value type")) < 0)
        return rc;
    RETURN_ERROR_IF(type >= GGUF_TYPE_COUNT, CELLAR_EFORMAT,
                    "%s: key '%.*s' has unknown value type %u", r->g->label, (int)pub->key_len,
                    pub->key, type);
    pub->type = (cellar_gguf_type)type;
    if (type == CELLAR_GGUF_ARRAY)
        return read_array(r, kv);
    pub->item_type = pub->type;
    pub->count = 1;
    kv->value = r->p;
    return skip_value(r, type, pub);
}

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

static int cmp_kv(const void *a, const void *b)
{
    const cellar_gguf_kv *x = &(*(const struct gguf_kv *const *)a)->pub;
    const cellar_gguf_kv *y = &(*(const struct gguf_kv *const *)b)->pub;
    return cmp_bytes(x->key, x->key_len, y->key, y->key_len);
}

static int cmp_tensor(const void *a, const void *b)
{
    const cellar_gguf_tensor *x = *(const cellar_gguf_tensor *const *)a;
    const cellar_gguf_tensor *y = *(const cellar_gguf_tensor *const *)b;
    return cmp_bytes(x->name, x->name_len, y->name, y->name_len);
}

/* Sorting pointers finds duplicates in n log n, where ggml's pairwise scan
 * would let a crafted header with a million keys take minutes. */
static int check_unique(cellar_gguf *g, bool tensors)
{
    size_t n = tensors ? g->n_tensors : g->n_kv;
    if (n < 2)
        return 0;
    const void **v = cellar_malloc(n * sizeof *v);
    if (!v)
        return CELLAR_ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = tensors ? (const void *)&g->tensors[i] : (const void *)&g->kv[i];
    qsort(v, n, sizeof *v, tensors ? cmp_tensor : cmp_kv);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++) {
        if (tensors) {
            const cellar_gguf_tensor *a = v[i - 1], *b = v[i];
            if (!cmp_tensor(&a, &b))
                rc = cellar_fail(CELLAR_EFORMAT, "%s: duplicate tensor name '%.*s'", g->label,
                                 (int)a->name_len, a->name);
        } else {
            const struct gguf_kv *a = v[i - 1], *b = v[i];
            if (!cmp_kv(&a, &b))
                rc = cellar_fail(CELLAR_EFORMAT, "%s: duplicate key '%.*s'", g->label,
                                 (int)a->pub.key_len, a->pub.key);
        }
    }
    free(v);
    return rc;
}

static int find_key(const cellar_gguf *g, const char *key, size_t len)
{
    for (size_t i = 0; i < g->n_kv; i++)
        if (!cmp_bytes(g->kv[i].pub.key, g->kv[i].pub.key_len, key, len))
            return (int)i;
    return -1;
}

static int read_alignment(cellar_gguf *g)
{
    static const char key[] = "general.alignment";
    int i = find_key(g, key, sizeof key - 1);
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (i < 0)
        return 0;
    const struct gguf_kv *kv = &g->kv[i];
    RETURN_ERROR_IF(kv->pub.type != CELLAR_GGUF_U32, CELLAR_EFORMAT,
                    "%s: general.alignment has type %s, it must be u32", g->label,
                    value_type_names[kv->pub.type]);
    uint32_t a = (uint32_t)le(kv->value, 4);
    RETURN_ERROR_IF(a == 0 || (a & (a - 1)) != 0, CELLAR_EFORMAT,
                    "%s: general.alignment %u is not a power of two", g->label, a);
    g->alignment = a;
    return 0;
}

/* Element count and bytes of one tensor, overflow-checked against the
 * int64 ggml stores them in. */
static int tensor_size(const cellar_gguf *g, cellar_gguf_tensor *t)
{
    const struct ggml_type_traits *tt = ggml_type_get(t->type);
    RETURN_ERROR_IF(!tt, CELLAR_EFORMAT, "%s: tensor '%.*s' has unknown ggml type %u", g->label,
                    (int)t->name_len, t->name, t->type);
    t->type_name = tt->name;
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        /* ggml reads dimensions as int64 and rejects negative ones, even
         * where another dimension of 0 makes the product fit. */
        RETURN_ERROR_IF(t->dims[d] > INT64_MAX, CELLAR_EFORMAT,
                        "%s: tensor '%.*s': dimension %u is %llu, past int64", g->label,
                        (int)t->name_len, t->name, d, (unsigned long long)t->dims[d]);
        RETURN_ERROR_IF(ck_mul(n, t->dims[d], &n) || n > INT64_MAX, CELLAR_EFORMAT,
                        "%s: tensor '%.*s': element count overflows (dimension %u is %llu)",
                        g->label, (int)t->name_len, t->name, d,
                        (unsigned long long)t->dims[d]);
    }
    uint64_t ne0 = t->n_dims ? t->dims[0] : 1;
    RETURN_ERROR_IF(ne0 % tt->blck != 0, CELLAR_EFORMAT,
                    "%s: tensor '%.*s': ne[0] = %llu is not a multiple of the %s block size %u",
                    g->label, (int)t->name_len, t->name, (unsigned long long)ne0, tt->name,
                    tt->blck);
    t->elements = n;
    RETURN_ERROR_IF(ck_mul(n / tt->blck, (uint64_t)tt->size, &t->size), CELLAR_EFORMAT,
                    "%s: tensor '%.*s': byte size overflows", g->label, (int)t->name_len,
                    t->name);
    return 0;
}

static int read_tensor(struct reader *r, cellar_gguf_tensor *t)
{
    const cellar_gguf *g = r->g;
    int rc;
    if ((rc = read_str(r, &t->name, &t->name_len, "tensor name")) < 0)
        return rc;
    RETURN_ERROR_IF(t->name_len >= GGUF_MAX_NAME, CELLAR_EFORMAT,
                    "%s: tensor name '%.*s' is %zu bytes, names must be shorter than %d",
                    g->label, (int)t->name_len, t->name, t->name_len, GGUF_MAX_NAME);
    if ((rc = read_u32(r, &t->n_dims, "a tensor's dimension count")) < 0)
        return rc;
    RETURN_ERROR_IF(t->n_dims > GGUF_MAX_DIMS, CELLAR_EFORMAT,
                    "%s: tensor '%.*s' has %u dimensions, at most %d are allowed", g->label,
                    (int)t->name_len, t->name, t->n_dims, GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < t->n_dims; d++)
        if ((rc = read_le(r, &t->dims[d], 8, "a tensor dimension")) < 0)
            return rc;
    for (uint32_t d = t->n_dims; d < GGUF_MAX_DIMS; d++)
        t->dims[d] = 1;
    if ((rc = read_u32(r, &t->type, "a tensor type")) < 0 ||
        (rc = read_le(r, &t->offset, 8, "a tensor offset")) < 0)
        return rc;
    return tensor_size(g, t);
}

static uint64_t pad_to(uint64_t x, uint32_t align, bool *overflow)
{
    uint64_t r;
    *overflow = ck_add(x, (uint64_t)align - 1, &r);
    return r & ~((uint64_t)align - 1);
}

static int parse(cellar_gguf *g)
{
    struct reader r = {g, g->data, g->len};
    uint64_t magic, n_tensors = 0, n_kv = 0;
    int rc;

    if ((rc = read_le(&r, &magic, 4, "the magic")) < 0)
        return rc;
    RETURN_ERROR_IF(memcmp(g->data, "GGUF", 4) != 0, CELLAR_EFORMAT,
                    "%s: invalid magic characters (not a GGUF file)", g->label);
    if ((rc = read_u32(&r, &g->version, "the version")) < 0)
        return rc;
    RETURN_ERROR_IF(g->version == 1, CELLAR_EFORMAT,
                    "%s: GGUF version 1 is not supported (only versions 2 and 3)", g->label);
    RETURN_ERROR_IF(g->version != 2 && g->version != 3, CELLAR_EFORMAT,
                    "%s: unsupported GGUF version %u (only versions 2 and 3)", g->label,
                    g->version);
    if ((rc = read_le(&r, &n_tensors, 8, "the tensor count")) < 0 ||
        (rc = read_le(&r, &n_kv, 8, "the key/value count")) < 0)
        return rc;

    RETURN_ERROR_IF(n_kv > r.left / GGUF_MIN_KV_BYTES, CELLAR_EFORMAT,
                    "%s: %llu key/values cannot fit in the %zu bytes left", g->label,
                    (unsigned long long)n_kv, r.left);
    if (n_kv && !(g->kv = cellar_calloc((size_t)n_kv, sizeof *g->kv)))
        return CELLAR_ENOMEM;
    /* Counted before it is read, so a failed entry's allocation is freed. */
    while (g->n_kv < n_kv)
        if ((rc = read_kv(&r, &g->kv[g->n_kv++])) < 0)
            return rc;
    if ((rc = check_unique(g, false)) < 0 || (rc = read_alignment(g)) < 0)
        return rc;

    RETURN_ERROR_IF(n_tensors > r.left / GGUF_MIN_TENSOR_BYTES, CELLAR_EFORMAT,
                    "%s: %llu tensor infos cannot fit in the %zu bytes left", g->label,
                    (unsigned long long)n_tensors, r.left);
    if (n_tensors && !(g->tensors = cellar_calloc((size_t)n_tensors, sizeof *g->tensors)))
        return CELLAR_ENOMEM;
    for (; g->n_tensors < n_tensors; g->n_tensors++)
        if ((rc = read_tensor(&r, &g->tensors[g->n_tensors])) < 0)
            return rc;
    if ((rc = check_unique(g, true)) < 0)
        return rc;

    /* Offsets must be exactly the running sum of padded sizes: no gaps, no
     * overlaps, no aliasing, as ggml requires. */
    bool ovf;
    uint64_t expect = 0;
    for (size_t i = 0; i < g->n_tensors; i++) {
        const cellar_gguf_tensor *t = &g->tensors[i];
        RETURN_ERROR_IF(t->offset != expect, CELLAR_EFORMAT,
                        "%s: tensor '%.*s' has offset %llu, expected %llu", g->label,
                        (int)t->name_len, t->name, (unsigned long long)t->offset,
                        (unsigned long long)expect);
        uint64_t padded = pad_to(t->size, g->alignment, &ovf);
        RETURN_ERROR_IF(ovf || ck_add(expect, padded, &expect), CELLAR_EFORMAT,
                        "%s: tensor '%.*s': data section size overflows", g->label,
                        (int)t->name_len, t->name);
    }
    g->data_size = expect;
    g->data_offset = pad_to(reader_pos(&r), g->alignment, &ovf);
    for (size_t i = 0; i < g->n_tensors; i++) {
        const cellar_gguf_tensor *t = &g->tensors[i];
        uint64_t end;
        RETURN_ERROR_IF(ck_add(g->data_offset, t->offset, &end) || ck_add(end, t->size, &end) ||
                            end > g->len,
                        CELLAR_EFORMAT,
                        "%s: tensor '%.*s' data ends past the end of the file (%zu bytes)",
                        g->label, (int)t->name_len, t->name, g->len);
    }
    return 0;
}

static int gguf_new(cellar_gguf **out, const char *label)
{
    cellar_gguf *g = cellar_calloc(1, sizeof *g);
    if (!g)
        return CELLAR_ENOMEM;
    if (!(g->label = cellar_strdup(label ? label : "<buffer>"))) {
        free(g);
        return CELLAR_ENOMEM;
    }
    *out = g;
    return 0;
}

static int gguf_finish(cellar_gguf **out, cellar_gguf *g)
{
    int rc = parse(g);
    if (rc < 0) {
        cellar_gguf_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

int cellar_gguf_open_buffer(cellar_gguf **out, const void *data, size_t len, const char *label)
{
    RETURN_ERROR_IF(!out || (!data && len), CELLAR_EINVAL, "cellar_gguf_open_buffer: bad argument");
    *out = NULL;
    cellar_gguf *g;
    int rc = gguf_new(&g, label);
    if (rc < 0)
        return rc;
    g->data = data;
    g->len = len;
    return gguf_finish(out, g);
}

int cellar_gguf_open(cellar_gguf **out, const char *path)
{
    RETURN_ERROR_IF(!out || !path, CELLAR_EINVAL, "cellar_gguf_open: bad argument");
    *out = NULL;
    cellar_gguf *g;
    int rc = gguf_new(&g, path);
    if (rc < 0)
        return rc;
    if ((rc = cellar_map_file(&g->map, &g->map_len, path)) < 0) {
        cellar_gguf_free(g);
        return rc;
    }
    g->data = g->map;
    g->len = g->map_len;
    return gguf_finish(out, g);
}

void cellar_gguf_free(cellar_gguf *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_kv; i++)
        free(g->kv[i].str_offsets);
    free(g->kv);
    free(g->tensors);
    if (g->map)
        munmap(g->map, g->map_len);
    free(g->label);
    free(g);
}

uint32_t cellar_gguf_version(const cellar_gguf *g)
{
    return g->version;
}

uint32_t cellar_gguf_alignment(const cellar_gguf *g)
{
    return g->alignment;
}

uint64_t cellar_gguf_data_offset(const cellar_gguf *g)
{
    return g->data_offset;
}

uint64_t cellar_gguf_data_size(const cellar_gguf *g)
{
    return g->data_size;
}

size_t cellar_gguf_kv_count(const cellar_gguf *g)
{
    return g->n_kv;
}

const cellar_gguf_kv *cellar_gguf_kv_at(const cellar_gguf *g, size_t i)
{
    return i < g->n_kv ? &g->kv[i].pub : NULL;
}

int cellar_gguf_find(size_t *out, const cellar_gguf *g, const char *key)
{
    int i = find_key(g, key, strlen(key));
    RETURN_ERROR_IF(i < 0, CELLAR_ENOTFOUND, "%s: no key '%s'", g->label, key);
    *out = (size_t)i;
    return 0;
}

int cellar_gguf_kv_value(cellar_gguf_value *out, const cellar_gguf *g, size_t i, uint64_t item)
{
    RETURN_ERROR_IF(i >= g->n_kv, CELLAR_EINVAL, "%s: key/value index %zu out of range",
                    g->label, i);
    const struct gguf_kv *kv = &g->kv[i];
    RETURN_ERROR_IF(item >= kv->pub.count, CELLAR_EINVAL,
                    "%s: key '%.*s' has %llu items, asked for item %llu", g->label,
                    (int)kv->pub.key_len, kv->pub.key, (unsigned long long)kv->pub.count,
                    (unsigned long long)item);
    memset(out, 0, sizeof *out);
    cellar_gguf_type t = kv->pub.item_type;
    out->type = t;
    if (t == CELLAR_GGUF_STRING) {
        const uint8_t *p = kv->value + (kv->str_offsets ? kv->str_offsets[item] : 0);
        out->str_len = (size_t)le(p, 8);
        out->str = (const char *)p + 8;
        return 0;
    }
    unsigned n = value_type_sizes[t];
    uint64_t raw = le(kv->value + item * n, n);
    switch (t) {
    case CELLAR_GGUF_I8:
        out->i = (int8_t)raw;
        break;
    case CELLAR_GGUF_I16:
        out->i = (int16_t)raw;
        break;
    case CELLAR_GGUF_I32:
        out->i = (int32_t)raw;
        break;
    case CELLAR_GGUF_I64:
        out->i = (int64_t)raw;
        break;
    case CELLAR_GGUF_F32: {
        uint32_t bits = (uint32_t)raw;
        float f;
        memcpy(&f, &bits, sizeof f);
        out->f = f;
        break;
    }
    case CELLAR_GGUF_F64:
        memcpy(&out->f, &raw, sizeof out->f);
        break;
    default:
        out->u = raw;
        break;
    }
    return 0;
}

size_t cellar_gguf_tensor_count(const cellar_gguf *g)
{
    return g->n_tensors;
}

const cellar_gguf_tensor *cellar_gguf_tensor_at(const cellar_gguf *g, size_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const char *cellar_gguf_type_name(cellar_gguf_type t)
{
    return (unsigned)t < GGUF_TYPE_COUNT ? value_type_names[t] : "unknown";
}

const char *cellar_ggml_type_name(uint32_t type)
{
    const struct ggml_type_traits *tt = ggml_type_get(type);
    return tt ? tt->name : "unknown";
}
