/* GGUF reader: a valid file read back value by value, then one generated
 * corruption per ggml rule, each rejected with its own message, and the
 * valid file truncated at every byte. */
#include "cellar.h"
#include "testutil.h"

#include <stdint.h>

/* A little-endian byte builder for hand-made headers. */
struct gb {
    uint8_t buf[8192];
    size_t len;
};

static void put(struct gb *b, const void *p, size_t n)
{
    if (b->len + n > sizeof b->buf) {
        fprintf(stderr, "test builder overflow\n");
        exit(1);
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
}

static void put_le(struct gb *b, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        put(b, &c, 1);
    }
}

static void put_u32(struct gb *b, uint32_t v)
{
    put_le(b, v, 4);
}

static void put_u64(struct gb *b, uint64_t v)
{
    put_le(b, v, 8);
}

static void put_str(struct gb *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

static void start(struct gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    b->len = 0;
    put(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, n_tensors);
    put_u64(b, n_kv);
}

static void kv_u32(struct gb *b, const char *key, uint32_t v)
{
    put_str(b, key);
    put_u32(b, 4);
    put_u32(b, v);
}

static void kv_str(struct gb *b, const char *key, const char *v)
{
    put_str(b, key);
    put_u32(b, 8);
    put_str(b, v);
}

static void tensor(struct gb *b, const char *name, uint32_t n_dims, const uint64_t *dims,
                   uint32_t type, uint64_t offset)
{
    put_str(b, name);
    put_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++)
        put_u64(b, dims[i]);
    put_u32(b, type);
    put_u64(b, offset);
}

/* Zero padding to align, then n data bytes (a recognisable pattern). */
static void data(struct gb *b, uint32_t align, size_t n)
{
    while (b->len % align)
        put(b, "", 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)(i * 7 + 1);
        put(b, &c, 1);
    }
}

static int open_gb(cellar_gguf **g, const struct gb *b)
{
    return cellar_gguf_open_buffer(g, b->buf, b->len, "t.gguf");
}

static const uint64_t d8[] = {8}, d64[] = {64}, d16x1[] = {16, 1};

/* Three tensors: F32 [8] = 32 bytes, Q4_0 [64] = 36 bytes padded to 64,
 * F16 [16,1] = 32 bytes; 128 data bytes, the file ends with the last one. */
static void build_valid(struct gb *b, uint32_t version)
{
    start(b, version, 3, 8);
    kv_str(b, "general.architecture", "llama");
    kv_u32(b, "general.alignment", 32);
    put_str(b, "tokenizer.ggml.tokens"); /* array of strings */
    put_u32(b, 9);
    put_u32(b, 8);
    put_u64(b, 3);
    put_str(b, "<s>");
    put_str(b, "");
    put_str(b, "hello");
    put_str(b, "scores"); /* array of i32 */
    put_u32(b, 9);
    put_u32(b, 5);
    put_u64(b, 2);
    put_u32(b, (uint32_t)-7);
    put_u32(b, 9);
    put_str(b, "f"); /* f32 1.5 */
    put_u32(b, 6);
    put_u32(b, 0x3fc00000);
    put_str(b, "b"); /* bool */
    put_u32(b, 7);
    put(b, "\1", 1);
    put_str(b, "big"); /* u64 */
    put_u32(b, 10);
    put_u64(b, UINT64_C(1) << 40);
    put_str(b, "neg"); /* i8 */
    put_u32(b, 1);
    put(b, "\xfe", 1);
    tensor(b, "a", 1, d8, 0, 0);
    tensor(b, "b", 1, d64, 2, 32);
    tensor(b, "c", 2, d16x1, 1, 96);
    data(b, 32, 128);
}

static void test_valid(void)
{
    struct gb b;
    cellar_gguf *g = NULL;
    build_valid(&b, 3);
    CHECK(open_gb(&g, &b) == 0);
    if (!g) {
        fprintf(stderr, "%s\n", cellar_error_last());
        return;
    }
    CHECK(cellar_gguf_version(g) == 3);
    CHECK(cellar_gguf_alignment(g) == 32);
    CHECK(cellar_gguf_kv_count(g) == 8);
    CHECK(cellar_gguf_tensor_count(g) == 3);
    CHECK(cellar_gguf_data_offset(g) == b.len - 128);
    CHECK(cellar_gguf_data_offset(g) % 32 == 0);
    CHECK(cellar_gguf_data_size(g) == 128);

    size_t i;
    cellar_gguf_value v;
    CHECK(cellar_gguf_find(&i, g, "general.architecture") == 0 && i == 0);
    CHECK(cellar_gguf_kv_value(&v, g, i, 0) == 0 && v.str_len == 5 && !memcmp(v.str, "llama", 5));
    CHECK(cellar_gguf_find(&i, g, "tokenizer.ggml.tokens") == 0);
    const cellar_gguf_kv *kv = cellar_gguf_kv_at(g, i);
    CHECK(kv->type == CELLAR_GGUF_ARRAY && kv->item_type == CELLAR_GGUF_STRING && kv->count == 3);
    CHECK(cellar_gguf_kv_value(&v, g, i, 1) == 0 && v.str_len == 0);
    CHECK(cellar_gguf_kv_value(&v, g, i, 2) == 0 && v.str_len == 5 && !memcmp(v.str, "hello", 5));
    CHECK_ERR(cellar_gguf_kv_value(&v, g, i, 3), CELLAR_EINVAL, "has 3 items");
    CHECK(cellar_gguf_find(&i, g, "scores") == 0);
    CHECK(cellar_gguf_kv_value(&v, g, i, 0) == 0 && v.i == -7);
    CHECK(cellar_gguf_kv_value(&v, g, i, 1) == 0 && v.i == 9);
    CHECK(cellar_gguf_find(&i, g, "f") == 0 && cellar_gguf_kv_value(&v, g, i, 0) == 0 &&
          v.f == 1.5);
    CHECK(cellar_gguf_find(&i, g, "b") == 0 && cellar_gguf_kv_value(&v, g, i, 0) == 0 &&
          v.u == 1);
    CHECK(cellar_gguf_find(&i, g, "big") == 0 && cellar_gguf_kv_value(&v, g, i, 0) == 0 &&
          v.u == UINT64_C(1) << 40);
    CHECK(cellar_gguf_find(&i, g, "neg") == 0 && cellar_gguf_kv_value(&v, g, i, 0) == 0 &&
          v.i == -2);
    CHECK_ERR(cellar_gguf_find(&i, g, "missing"), CELLAR_ENOTFOUND, "no key 'missing'");

    const cellar_gguf_tensor *t = cellar_gguf_tensor_at(g, 1);
    CHECK(t && t->name_len == 1 && t->name[0] == 'b' && !strcmp(t->type_name, "Q4_0"));
    CHECK(t && t->size == 36 && t->offset == 32 && t->elements == 64 && t->n_dims == 1);
    t = cellar_gguf_tensor_at(g, 2);
    CHECK(t && t->dims[0] == 16 && t->dims[1] == 1 && t->dims[3] == 1 && t->size == 32);
    CHECK(cellar_gguf_tensor_at(g, 3) == NULL);
    cellar_gguf_free(g);

    build_valid(&b, 2);
    CHECK(open_gb(&g, &b) == 0 && cellar_gguf_version(g) == 2);
    cellar_gguf_free(g);
    cellar_gguf_free(NULL);

    /* No tensors and no key/values: a header alone is a valid file. */
    start(&b, 3, 0, 0);
    CHECK(open_gb(&g, &b) == 0 && cellar_gguf_tensor_count(g) == 0);
    cellar_gguf_free(g);

    /* Zero-size tensors take no room; names of 63 bytes are fine. */
    const uint64_t d0[] = {0, 5};
    start(&b, 3, 2, 0);
    tensor(&b, "zero", 2, d0, 12, 0);
    tensor(&b, "012345678901234567890123456789012345678901234567890123456789012", 1, d8, 0, 0);
    data(&b, 32, 32);
    CHECK(open_gb(&g, &b) == 0);
    cellar_gguf_free(g);

    /* A 64-byte alignment moves the data and the padding between tensors. */
    start(&b, 3, 2, 1);
    kv_u32(&b, "general.alignment", 64);
    tensor(&b, "a", 1, d8, 0, 0);
    tensor(&b, "b", 1, d8, 0, 64);
    data(&b, 64, 96);
    CHECK(open_gb(&g, &b) == 0 && cellar_gguf_alignment(g) == 64 &&
          cellar_gguf_data_offset(g) % 64 == 0);
    cellar_gguf_free(g);
}

static void test_path(void)
{
    const char *dir = test_tmpdir("gguf");
    char path[4200];
    struct gb b;
    cellar_gguf *g = NULL;
    build_valid(&b, 3);
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b.buf, 1, b.len, f) == b.len);
    if (f)
        fclose(f);
    CHECK(cellar_gguf_open(&g, path) == 0 && cellar_gguf_tensor_count(g) == 3);
    cellar_gguf_free(g);
    snprintf(path, sizeof path, "%s/none.gguf", dir);
    CHECK_ERR(cellar_gguf_open(&g, path), CELLAR_ENOTFOUND, "none.gguf");
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    f = fopen(path, "wb");
    if (f)
        fclose(f);
    CHECK_ERR(cellar_gguf_open(&g, path), CELLAR_EFORMAT, "reading the magic");
}

/* Expects the buffer to be rejected with EFORMAT and a message holding
 * needle; named for the report. */
#define REJECT(name, needle)                                                                       \
    do {                                                                                           \
        cellar_gguf *g_ = NULL;                                                                    \
        int rc_ = open_gb(&g_, &b);                                                                \
        CHECK_MSG(rc_ == CELLAR_EFORMAT && g_ == NULL &&                                           \
                      strstr(cellar_error_last(), needle) != NULL,                                 \
                  "%s: rc=%d message \"%s\" (want \"%s\")", name, rc_, cellar_error_last(),        \
                  needle);                                                                         \
        cellar_gguf_free(g_);                                                                      \
    } while (0)

static void test_corruptions(void)
{
    struct gb b;

    build_valid(&b, 3);
    b.buf[0] = 'X';
    REJECT("bad magic", "invalid magic characters");

    build_valid(&b, 3);
    b.buf[4] = 1;
    REJECT("version 1", "GGUF version 1 is not supported");
    b.buf[4] = 4;
    REJECT("version 4", "unsupported GGUF version 4");
    b.buf[4] = 0;
    REJECT("version 0", "unsupported GGUF version 0");

    start(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, 13);
    put_u32(&b, 0);
    REJECT("unknown kv type", "key 'k' has unknown value type 13");

    start(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, 9);
    put_u32(&b, 9);
    put_u64(&b, 1);
    put_u32(&b, 4);
    put_u64(&b, 1);
    put_u32(&b, 1);
    REJECT("nested array", "nested arrays are not allowed");

    start(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, 9);
    put_u32(&b, 77);
    put_u64(&b, 0);
    REJECT("unknown array type", "array of unknown type 77");

    start(&b, 3, 0, 3);
    kv_u32(&b, "a", 1);
    kv_u32(&b, "b", 1);
    kv_u32(&b, "a", 2);
    REJECT("duplicate key", "duplicate key 'a'");

    start(&b, 3, 0, 1);
    kv_u32(&b, "", 1);
    REJECT("empty key", "empty key at offset 24");

    start(&b, 3, 0, 1);
    put_u64(&b, 1000);
    put(&b, "abcdefghijklmnopqrst", 20);
    REJECT("string longer than remaining", "declares 1000 bytes, only 20 bytes are left");

    start(&b, 3, 0, 1);
    put_u64(&b, (UINT64_C(1) << 30) + 1);
    put(&b, "abcdefghijklmnop", 16);
    REJECT("string over 1 GiB", "more than the 1 GiB string limit");

    start(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, 9);
    put_u32(&b, 4);
    put_u64(&b, (UINT64_C(1) << 30) + 1);
    REJECT("huge array count", "more than the limit of 2^30");

    start(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, 9);
    put_u32(&b, 4);
    put_u64(&b, 1000);
    put_u32(&b, 1);
    REJECT("array past the end", "array 'k' of 1000 items needs 4000 bytes");

    start(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, 9);
    put_u32(&b, 8);
    put_u64(&b, 1000);
    put_str(&b, "x");
    REJECT("string array past the end", "declares 1000 strings");

    start(&b, 3, 0, UINT64_C(1) << 40);
    REJECT("huge kv count", "key/values cannot fit");

    start(&b, 3, UINT64_C(1) << 40, 0);
    REJECT("huge tensor count", "tensor infos cannot fit");

    start(&b, 3, 1, 0);
    tensor(&b, "t", 1, d8, 4, 0);
    data(&b, 32, 32);
    REJECT("removed tensor type", "tensor 't' has unknown ggml type 4");
    start(&b, 3, 1, 0);
    tensor(&b, "t", 1, d8, 40, 0);
    data(&b, 32, 32);
    REJECT("unknown tensor type", "tensor 't' has unknown ggml type 40");

    const uint64_t d33[] = {33};
    start(&b, 3, 1, 0);
    tensor(&b, "t", 1, d33, 2, 0);
    data(&b, 32, 64);
    REJECT("ne[0] not divisible", "ne[0] = 33 is not a multiple of the Q4_0 block size 32");

    const uint64_t dbig[] = {UINT64_C(1) << 32, UINT64_C(1) << 32};
    start(&b, 3, 1, 0);
    tensor(&b, "t", 2, dbig, 0, 0);
    REJECT("dims overflow", "element count overflows");

    const uint64_t dneg[] = {UINT64_C(1) << 63};
    start(&b, 3, 1, 0);
    tensor(&b, "t", 1, dneg, 0, 0);
    REJECT("dimension past int64", "past int64");

    /* A negative int64 dimension beside a zero one: the product is 0, but
     * ggml rejects any ne[j] < 0. */
    const uint64_t dneg0[] = {0, UINT64_C(1) << 63};
    start(&b, 3, 1, 0);
    tensor(&b, "t", 2, dneg0, 0, 0);
    REJECT("negative dimension beside 0", "dimension 1 is 9223372036854775808, past int64");

    const uint64_t dbytes[] = {UINT64_C(1) << 62, 1};
    start(&b, 3, 1, 0);
    tensor(&b, "t", 2, dbytes, 0, 0);
    REJECT("byte size overflow", "byte size overflows");

    const uint64_t d5[] = {1, 1, 1, 1, 1};
    start(&b, 3, 1, 0);
    tensor(&b, "t", 5, d5, 0, 0);
    REJECT("n_dims > 4", "tensor 't' has 5 dimensions, at most 4 are allowed");

    start(&b, 3, 1, 0);
    tensor(&b, "0123456789012345678901234567890123456789012345678901234567890123", 1, d8, 0, 0);
    data(&b, 32, 32);
    REJECT("name too long", "is 64 bytes, names must be shorter than 64");

    start(&b, 3, 2, 0);
    tensor(&b, "t", 1, d8, 0, 0);
    tensor(&b, "t", 1, d8, 0, 32);
    data(&b, 32, 64);
    REJECT("duplicate tensor name", "duplicate tensor name 't'");

    start(&b, 3, 1, 1);
    kv_u32(&b, "general.alignment", 0);
    tensor(&b, "t", 1, d8, 0, 0);
    data(&b, 32, 32);
    REJECT("alignment zero", "general.alignment 0 is not a power of two");

    start(&b, 3, 1, 1);
    kv_u32(&b, "general.alignment", 48);
    tensor(&b, "t", 1, d8, 0, 0);
    data(&b, 16, 32);
    REJECT("alignment not a power of two", "general.alignment 48 is not a power of two");

    start(&b, 3, 0, 1);
    put_str(&b, "general.alignment");
    put_u32(&b, 10);
    put_u64(&b, 32);
    REJECT("alignment not u32", "general.alignment has type u64, it must be u32");

    start(&b, 3, 1, 0);
    tensor(&b, "t", 1, d8, 0, 32);
    data(&b, 32, 64);
    REJECT("first offset not zero", "tensor 't' has offset 32, expected 0");

    start(&b, 3, 2, 0);
    tensor(&b, "a", 1, d8, 0, 0);
    tensor(&b, "b", 1, d8, 0, 0);
    data(&b, 32, 64);
    REJECT("overlapping offsets", "tensor 'b' has offset 0, expected 32");

    start(&b, 3, 2, 0);
    tensor(&b, "a", 1, d8, 0, 0);
    tensor(&b, "b", 1, d8, 0, 64);
    data(&b, 32, 96);
    REJECT("gap between tensors", "tensor 'b' has offset 64, expected 32");

    start(&b, 3, 2, 0);
    tensor(&b, "a", 1, d64, 2, 0);
    tensor(&b, "b", 1, d8, 0, 36);
    data(&b, 32, 96);
    REJECT("offset not padded", "tensor 'b' has offset 36, expected 64");

    build_valid(&b, 3);
    b.len -= 1;
    REJECT("data past end", "tensor 'c' data ends past the end of the file");
}

/* Every proper prefix of a valid file fails cleanly (the last tensor ends
 * the file, so no prefix is itself valid), and never reads past its end:
 * each prefix is copied into an exact-size allocation for ASan to watch. */
static void test_truncation(void)
{
    struct gb b;
    build_valid(&b, 3);
    size_t bad = 0;
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, b.buf, n);
        cellar_gguf *g = NULL;
        int rc = cellar_gguf_open_buffer(&g, copy, n, "cut.gguf");
        if (rc != CELLAR_EFORMAT || g != NULL)
            bad++;
        cellar_gguf_free(g);
        free(copy);
    }
    CHECK_MSG(bad == 0, "%zu prefixes were not rejected", bad);
}

int main(void)
{
    test_valid();
    test_path();
    test_corruptions();
    test_truncation();
    return test_summary();
}
