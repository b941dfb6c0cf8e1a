/* safetensors: one named, generated corruption per reader rule (each
 * rejected with its own message), the accepted edge cases, the three ways
 * to open a file, and the writer's canonical output read back. */
#include "json.h"
#include "safetensors.h"
#include "testutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* [u64 N][header][data_len bytes of 0xAB] in a malloc'd buffer. */
static uint8_t *mk(const char *hdr, size_t hdr_len, size_t data_len, size_t *len)
{
    *len = 8 + hdr_len + data_len;
    uint8_t *b = malloc(*len);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)hdr_len >> (8 * i));
    memcpy(b + 8, hdr, hdr_len);
    memset(b + 8 + hdr_len, 0xAB, data_len);
    return b;
}

static int open_hdr(cellar_st **st, const char *hdr, size_t hdr_len, size_t data_len)
{
    size_t len;
    uint8_t *b = mk(hdr, hdr_len, data_len, &len);
    /* A copy the handle can keep: tests free it with the handle below. */
    int rc = cellar_st_open_buffer(st, b, len, "m.safetensors");
    if (rc)
        free(b);
    return rc;
}

static void close_hdr(cellar_st *st)
{
    if (!st)
        return;
    int fd;
    const uint8_t *buf;
    cellar_st_source(&fd, &buf, st);
    cellar_st_free(st);
    free((void *)buf);
}

struct bad_case {
    const char *name;
    const char *header; /* NULL: raw bytes below */
    size_t data_len;
    const char *want;
};

#define T1 "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static const struct bad_case bad_cases[] = {
    /* rule 5: JSON */
    {"empty header", "", 0, "invalid header deserialization: expected a value at header byte 0"},
    {"NUL padding", "{}\0\0\0\0\0\0", 0, "invalid header deserialization: trailing characters at header byte 2"},
    {"VT padding", "{}\v", 0, "trailing characters at header byte 2"},
    {"FF padding", "{}\f", 0, "trailing characters"},
    {"two values", "{}{}", 0, "trailing characters"},
    {"BOM", "\xEF\xBB\xBF{}", 0, "invalid header deserialization: expected a value at header byte 0"},
    {"comment", "{/*x*/}", 0, "invalid header deserialization: expected a string key"},
    {"trailing comma", "{" T1 ",}", 8, "expected a string key"},
    {"raw control char", "{\"a\tb\":{}}", 0, "control character in string"},
    {"lone surrogate", "{\"\\ud800\":[\"F32\",[],[0,4]]}", 4, "lone surrogate"},
    /* rule 6 */
    {"top-level array", "[]", 0, "the header is an array, not an object"},
    {"top-level string", "\"x\"", 0, "the header is a string, not an object"},
    /* rule 7 */
    {"metadata number", "{\"__metadata__\":{\"a\":1}}", 0, "__metadata__ value of 'a' is a number, not a string"},
    {"metadata null value", "{\"__metadata__\":{\"a\":null}}", 0, "__metadata__ value of 'a' is null"},
    {"metadata array", "{\"__metadata__\":[]}", 0, "__metadata__ is an array, not an object"},
    {"metadata string", "{\"__metadata__\":\"x\"}", 0, "__metadata__ is a string"},
    {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate field `__metadata__`"},
    {"metadata twice null", "{\"__metadata__\":null,\"__metadata__\":null}", 0, "duplicate field `__metadata__`"},
    /* rule 8 */
    {"tensor not object", "{\"t\":5}", 0, "tensor 't' is a number, not an object"},
    {"tensor missing dtype", "{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 't': missing field `dtype`"},
    {"tensor missing shape", "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "missing field `shape`"},
    {"tensor missing offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing field `data_offsets`"},
    {"tensor dup dtype", "{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "duplicate field `dtype`"},
    {"tensor dup offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"data_offsets\":[0,8]}}", 8, "duplicate field `data_offsets`"},
    {"tensor null dtype", "{\"t\":{\"dtype\":null,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype is null, not a string"},
    {"tensor null shape", "{\"t\":{\"dtype\":\"F32\",\"shape\":null,\"data_offsets\":[0,8]}}", 8, "shape is null, not an array"},
    {"tensor null offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":null}}", 8, "data_offsets is null, not an array"},
    {"array form short", "{\"t\":[\"F32\",[2]]}", 8, "array form has 2 entries, not 3"},
    {"array form long", "{\"t\":[\"F32\",[2],[0,8],1]}", 8, "array form has 4 entries, not 3"},
    /* rule 9 */
    {"float shape", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "shape[0] is 2.0, not an integer"},
    {"float offset", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.0]}}", 8, "data_offsets[1] is 8.0, not an integer"},
    {"exponent offset", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8e0]}}", 8, "data_offsets[1] is 8e0"},
    {"negative zero", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-0,8]}}", 8, "data_offsets[0] is -0"},
    {"negative", "{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0] is -2"},
    {"leading zero", "{\"t\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8, "number with a leading zero"},
    {"string number", "{\"t\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, "shape[0] is a string, not an integer"},
    {"boolean number", "{\"t\":{\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,8]}}", 8, "shape[0] is a boolean"},
    {"2^64", "{\"t\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,8]}}", 8, "not an integer in [0, 2^64)"},
    {"three offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, "data_offsets has 3 entries, not 2"},
    {"one offset", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets has 1 entries, not 2"},
    /* rule 10 */
    {"unknown dtype", "{\"t\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 't': unknown dtype 'Q4'"},
    {"dtype object two keys", "{\"t\":{\"dtype\":{\"F32\":null,\"U8\":null},\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype is an object, not a string"},
    {"dtype object payload", "{\"t\":{\"dtype\":{\"F32\":1},\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype variant payload is a number"},
    {"dtype object unknown", "{\"t\":{\"dtype\":{\"Q4\":null},\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype 'Q4'"},
    {"lower-case dtype", "{\"t\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype 'f32'"},
    /* rule 11 */
    {"different duplicates", "{" T1 ",\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "incomplete metadata, file not fully covered"},
    {"escaped duplicate", "{\"A\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"\\u0041\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "invalid offset for tensor 'A'"},
    /* rule 12 */
    {"gap at start", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "invalid offset for tensor 't': data_offsets [4, 12], expected it to begin at 0"},
    {"gap between", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "invalid offset for tensor 'b'"},
    {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "invalid offset for tensor 'b'"},
    {"end before begin", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"c\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"d\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8, "invalid offset for tensor 'd'"},
    {"shape overflow", "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "tensor 't': overflow computing the size"},
    {"bits overflow", "{\"t\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8, "overflow"},
    {"sub-byte misaligned", "{\"t\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, "misaligned: 3 elements of F4"},
    {"size mismatch", "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "tensor 't': invalid shape, dtype or offsets: data_offsets span 8 bytes, 3 elements of F32 need 12"},
    /* rule 13 */
    {"trailing bytes", "{" T1 "}", 9, "incomplete metadata, file not fully covered: the tensors end at data byte 8, the file has 9 data bytes"},
    {"hidden payload", "{}", 100, "incomplete metadata, file not fully covered"},
};

static void test_bad_cases(void)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        const struct bad_case *c = &bad_cases[i];
        size_t hl = strlen(c->header);
        if (strcmp(c->name, "NUL padding") == 0)
            hl = 8;
        cellar_st *st = NULL;
        int rc = open_hdr(&st, c->header, hl, c->data_len);
        CHECK_MSG(rc == CELLAR_EFORMAT && strstr(cellar_error_last(), c->want) &&
                      strncmp(cellar_error_last(), "m.safetensors: ", 15) == 0,
                  "%s: rc=%d message \"%s\" (want \"%s\")", c->name, rc, cellar_error_last(), c->want);
        close_hdr(st);
    }
}

static void test_length_rules(void)
{
    cellar_st *st = NULL;
    uint8_t b[64] = {0};
    /* rule 1 */
    CHECK_ERR(cellar_st_open_buffer(&st, b, 7, "m.safetensors"), CELLAR_EFORMAT, "m.safetensors: header too small");
    CHECK_ERR(cellar_st_open_buffer(&st, b, 0, "m.safetensors"), CELLAR_EFORMAT, "header too small");
    /* rule 2, checked before the length is compared with the file */
    uint64_t n = 100000001;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(n >> (8 * i));
    CHECK_ERR(cellar_st_open_buffer(&st, b, 16, "m.safetensors"), CELLAR_EFORMAT, "header too large");
    memset(b, 0xFF, 8);
    CHECK_ERR(cellar_st_open_buffer(&st, b, 16, "m.safetensors"), CELLAR_EFORMAT, "header too large");
    /* rule 3 */
    memset(b, 0, 8);
    b[0] = 9;
    memcpy(b + 8, "{}      ", 8);
    CHECK_ERR(cellar_st_open_buffer(&st, b, 16, "m.safetensors"), CELLAR_EFORMAT, "invalid header length");
    n = 100000000;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(n >> (8 * i));
    CHECK_ERR(cellar_st_open_buffer(&st, b, 16, "m.safetensors"), CELLAR_EFORMAT, "invalid header length");
    /* rule 4: invalid UTF-8 anywhere in the header, even in padding */
    static const char *const bad_utf8[] = {"{}  \xFF", "{\"\xC0\x80\":1}", "{\"\xED\xA0\x80\":1}"};
    for (size_t i = 0; i < 3; i++) {
        int rc = open_hdr(&st, bad_utf8[i], strlen(bad_utf8[i]), 0);
        CHECK_ERR(rc, CELLAR_EFORMAT, "m.safetensors: invalid header: not valid UTF-8 at header byte");
    }
}

static void test_accepted(void)
{
    static const struct {
        const char *name, *header;
        size_t data_len, count;
    } ok[] = {
        {"empty object", "{}", 0, 0},
        {"whitespace around", " \t\r\n{}\n  \t", 0, 0},
        {"metadata null", "{\"__metadata__\":null}", 0, 0},
        {"metadata dup keys", "{\"__metadata__\":{\"a\":\"1\",\"b\":\"2\",\"a\":\"3\"}}", 0, 0},
        {"array form", "{\"t\":[\"I32\",[2,2],[0,16]]}", 16, 1},
        {"extra fields ignored", "{\"t\":{\"x\":[[{}]],\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"y\":null}}", 8, 1},
        {"identical duplicates", "{" T1 "," T1 "}", 8, 1},
        {"dtype as serde enum object", "{\"t\":{\"dtype\":{\"F32\":null},\"shape\":[2],\"data_offsets\":[0,8]},\"u\":[{\"U8\":{}},[1],[8,9]]}", 9, 2},
        {"rank 0", "{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}", 8, 1},
        {"zero size", "{\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]},\"y\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, 2},
        {"empty and NUL names", "{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, 2},
        {"sub-byte", "{\"t\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[0,2]},\"u\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[2,5]}}", 5, 2},
        {"out of order in JSON", "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 2, 2},
        {"u64 max zero dim", "{\"t\":{\"dtype\":\"U8\",\"shape\":[18446744073709551615,0],\"data_offsets\":[0,0]}}", 0, 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        cellar_st *st = NULL;
        int rc = open_hdr(&st, ok[i].header, strlen(ok[i].header), ok[i].data_len);
        CHECK_MSG(rc == 0, "%s: %s", ok[i].name, cellar_error_last());
        if (rc == 0)
            CHECK_MSG(cellar_st_count(st) == ok[i].count, "%s: %zu tensors", ok[i].name, cellar_st_count(st));
        close_hdr(st);
    }

    /* Depth: serde_json's limit counts the top-level object, so 127 nested
     * containers pass and 128 fail. */
    for (int depth = 126; depth <= 129; depth++) {
        char h[400];
        size_t o = 0;
        o += (size_t)sprintf(h, "{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":");
        for (int k = 0; k < depth - 2; k++)
            h[o++] = '[';
        for (int k = 0; k < depth - 2; k++)
            h[o++] = ']';
        h[o++] = '}';
        h[o++] = '}';
        cellar_st *st = NULL;
        int rc = open_hdr(&st, h, o, 0);
        if (depth <= 127)
            CHECK_MSG(rc == 0, "depth %d: %s", depth, cellar_error_last());
        else
            CHECK_ERR(rc, CELLAR_EFORMAT, "recursion limit exceeded");
        close_hdr(st);
    }

    /* Tensor details, metadata, lookups, data pointers (unaligned). */
    const char *h = "{\"__metadata__\":{\"format\":\"pt\",\"k\":\"v\",\"format\":\"mlx\"},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[2,8]},"
                    "\"a\\u0000x\":{\"dtype\":\"U8\",\"shape\":[2,1],\"data_offsets\":[0,2]}}";
    cellar_st *st = NULL;
    CHECK(open_hdr(&st, h, strlen(h), 8) == 0);
    if (st) {
        CHECK(cellar_st_count(st) == 2);
        const cellar_st_tensor *t0 = cellar_st_tensor_at(st, 0), *t1 = cellar_st_tensor_at(st, 1);
        CHECK(t0->name_len == 3 && memcmp(t0->name, "a\0x", 3) == 0);
        CHECK(t0->rank == 2 && t0->shape[0] == 2 && t0->shape[1] == 1 && t0->nelem == 2);
        CHECK(t1->dtype == CELLAR_DTYPE_BF16 && strcmp(t1->dtype_name, "BF16") == 0);
        CHECK(t1->begin == 2 && t1->end == 8 && t1->offset == 8 + strlen(h) + 2);
        CHECK(cellar_st_tensor_at(st, 2) == NULL);
        size_t idx = 9;
        CHECK(cellar_st_find(&idx, st, "b", 1) == 0 && idx == 1);
        CHECK(cellar_st_find(&idx, st, "a\0x", 3) == 0 && idx == 0);
        CHECK_ERR(cellar_st_find(&idx, st, "a", 1), CELLAR_ENOTFOUND, "no tensor 'a'");
        CHECK(cellar_st_metadata_count(st) == 2);
        const char *k, *v;
        CHECK(cellar_st_metadata_find(&v, st, "format") == 0);
        CHECK_STR(v, "mlx");
        CHECK_ERR(cellar_st_metadata_find(&v, st, "nope"), CELLAR_ENOTFOUND, "no metadata key 'nope'");
        CHECK(v == NULL);
        size_t kl, vl;
        CHECK(cellar_st_metadata_at(&k, &kl, &v, &vl, st, 0) == 0 && strcmp(k, "format") == 0);
        CHECK(cellar_st_metadata_at(&k, &kl, &v, &vl, st, 1) == 0 && strcmp(v, "v") == 0);
        CHECK(cellar_st_header_len(st) == strlen(h));
        const void *d;
        CHECK(cellar_st_data(&d, st, 1) == 0 && ((const uint8_t *)d)[0] == 0xAB);
        CHECK(cellar_st_data(&d, st, 5) == CELLAR_EINVAL);
    }
    close_hdr(st);
}

static void test_path_and_fd(void)
{
    const char *dir = test_tmpdir("safetensors");
    char path[4200];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    size_t len;
    const char *h = "{\"t\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}";
    uint8_t *b = mk(h, strlen(h), 3, &len);
    b[len - 1] = 7;
    CHECK(cellar_write_file_atomic(path, b, len, 0644) == 0);
    cellar_st *st = NULL;
    CHECK(cellar_st_open(&st, path) == 0);
    const void *d = NULL;
    CHECK(st && cellar_st_data(&d, st, 0) == 0 && ((const uint8_t *)d)[2] == 7);
    CHECK(st && strcmp(cellar_st_label(st), path) == 0 && cellar_st_file_size(st) == len);
    cellar_st_free(st);
    int fd = open(path, O_RDONLY);
    CHECK(cellar_st_open_fd(&st, fd, "via-fd") == 0);
    CHECK(st && cellar_st_data(&d, st, 0) == 0 && ((const uint8_t *)d)[2] == 7);
    cellar_st_free(st);
    CHECK(close(fd) == 0); /* still ours: the handle used a duplicate */
    /* A truncated copy: the tensors now pass the end. */
    CHECK(truncate(path, (off_t)len - 1) == 0);
    CHECK_ERR(cellar_st_open(&st, path), CELLAR_EFORMAT, "incomplete metadata, file not fully covered");
    CHECK(truncate(path, 5) == 0);
    CHECK_ERR(cellar_st_open(&st, path), CELLAR_EFORMAT, "header too small");
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    CHECK_ERR(cellar_st_open(&st, path), CELLAR_ENOTFOUND, "missing.safetensors");
    CHECK_ERR(cellar_st_open(&st, dir), CELLAR_EUNSUPPORTED, "not a regular file");
    free(b);
}

static void test_writer(void)
{
    const char *dir = test_tmpdir("safetensors-writer");
    char path[4200];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    cellar_st_writer *w;
    CHECK(cellar_st_writer_new(&w) == 0);
    uint8_t bytes[64];
    for (int i = 0; i < 64; i++)
        bytes[i] = (uint8_t)i;
    uint64_t s2[] = {2}, s23[] = {2, 3}, s4[] = {4};
    CHECK(cellar_st_writer_add(w, "z.small", 7, CELLAR_DTYPE_U8, 1, s2, bytes, 2) == 0);
    CHECK(cellar_st_writer_add(w, "b", 1, CELLAR_DTYPE_F32, 2, s23, bytes + 2, 24) == 0);
    CHECK(cellar_st_writer_add(w, "a", 1, CELLAR_DTYPE_F32, 1, s2, bytes + 26, 8) == 0);
    CHECK(cellar_st_writer_add(w, "i\"64", 4, CELLAR_DTYPE_I64, 0, NULL, bytes + 34, 8) == 0);
    CHECK(cellar_st_writer_add(w, "h", 1, CELLAR_DTYPE_F4, 1, s4, bytes + 42, 2) == 0);
    CHECK_ERR(cellar_st_writer_add(w, "__metadata__", 12, CELLAR_DTYPE_U8, 1, s2, bytes, 2), CELLAR_EINVAL, "__metadata__");
    CHECK_ERR(cellar_st_writer_add(w, "q", 1, CELLAR_DTYPE_F32, 1, s2, bytes, 7), CELLAR_EINVAL, "7 bytes given");
    /* The header is JSON text: bytes that are not UTF-8 would make a file
     * no reader accepts (rule 4). */
    CHECK_ERR(cellar_st_writer_add(w, "bad\xff", 4, CELLAR_DTYPE_U8, 1, s2, bytes, 2), CELLAR_EINVAL, "not valid UTF-8");
    CHECK_ERR(cellar_st_writer_set_metadata(w, "k\xc3", "v"), CELLAR_EINVAL, "not valid UTF-8");
    CHECK_ERR(cellar_st_writer_set_metadata(w, "k", "\xed\xa0\x80"), CELLAR_EINVAL, "not valid UTF-8");
    CHECK(cellar_st_writer_set_metadata(w, "zkey", "v\n") == 0);
    CHECK(cellar_st_writer_data_size(w) == 44);
    CHECK(cellar_st_writer_write(w, path) == 0);
    cellar_st_writer_free(w);

    char *file;
    size_t len;
    CHECK(cellar_read_file(&file, &len, path, 0) == 0);
    /* Canonical: I64 first, then F32 by name, U8, F4 last; __metadata__
     * first with format pt and keys sorted; compact; space padding to 8. */
    const char *want = "{\"__metadata__\":{\"format\":\"pt\",\"zkey\":\"v\\n\"},"
                       "\"i\\\"64\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[16,40]},"
                       "\"z.small\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[40,42]},"
                       "\"h\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[42,44]}}";
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | (uint8_t)file[i];
    CHECK(n % 8 == 0 && n >= strlen(want) && n - strlen(want) < 8);
    CHECK(memcmp(file + 8, want, strlen(want)) == 0);
    for (size_t i = 8 + strlen(want); i < 8 + n; i++)
        CHECK(file[i] == ' ');
    CHECK(len == 8 + n + 44);
    CHECK(memcmp(file + 8 + n, bytes + 34, 8) == 0);      /* i"64 */
    CHECK(memcmp(file + 8 + n + 8, bytes + 26, 8) == 0);  /* a */
    CHECK(memcmp(file + 8 + n + 42, bytes + 42, 2) == 0); /* h */
    free(file);

    /* Read back, and rewrite through add_from: byte-identical. */
    cellar_st *st;
    CHECK(cellar_st_open(&st, path) == 0);
    CHECK(cellar_st_count(st) == 5);
    CHECK(cellar_st_writer_new(&w) == 0);
    for (size_t i = cellar_st_count(st); i-- > 0;)
        CHECK(cellar_st_writer_add_from(w, st, i) == 0);
    CHECK(cellar_st_writer_set_metadata(w, "zkey", "v\n") == 0);
    char path2[4300];
    snprintf(path2, sizeof path2, "%s/w2.safetensors", dir);
    CHECK(cellar_st_writer_write(w, path2) == 0);
    cellar_st_writer_free(w);
    cellar_st_free(st);
    char *f1 = NULL, *f2 = NULL;
    size_t l1 = 0, l2 = 0;
    CHECK(cellar_read_file(&f1, &l1, path, 0) == 0 && cellar_read_file(&f2, &l2, path2, 0) == 0);
    CHECK(l1 == l2 && memcmp(f1, f2, l1) == 0);
    free(f1);
    free(f2);

    /* Duplicates across dtypes are refused at write; nothing is left behind. */
    CHECK(cellar_st_writer_new(&w) == 0);
    CHECK(cellar_st_writer_add(w, "x", 1, CELLAR_DTYPE_U8, 1, s2, bytes, 2) == 0);
    CHECK(cellar_st_writer_add(w, "x", 1, CELLAR_DTYPE_F32, 1, s2, bytes, 8) == 0);
    snprintf(path2, sizeof path2, "%s/dup.safetensors", dir);
    CHECK_ERR(cellar_st_writer_write(w, path2), CELLAR_EINVAL, "two tensors named 'x'");
    CHECK(access(path2, F_OK) != 0);
    cellar_st_writer_free(w);

    /* An empty writer gives a valid file with only metadata. */
    CHECK(cellar_st_writer_new(&w) == 0);
    snprintf(path2, sizeof path2, "%s/empty.safetensors", dir);
    CHECK(cellar_st_writer_write(w, path2) == 0);
    cellar_st_writer_free(w);
    CHECK(cellar_st_open(&st, path2) == 0);
    const char *fmt = NULL;
    CHECK(st && cellar_st_count(st) == 0 && cellar_st_metadata_find(&fmt, st, "format") == 0 &&
          strcmp(fmt, "pt") == 0);
    cellar_st_free(st);
}

static void test_dtypes(void)
{
    cellar_dtype d;
    CHECK(cellar_dtype_parse(&d, "F8_E4M3FNUZ", 11) == 0 && d == CELLAR_DTYPE_F8_E4M3FNUZ);
    CHECK(cellar_dtype_parse(&d, "bf16", 4) == CELLAR_EINVAL);
    CHECK(cellar_dtype_bits(CELLAR_DTYPE_F6_E3M2) == 6 && cellar_dtype_bits(CELLAR_DTYPE_C64) == 64);
    CHECK(strcmp(cellar_dtype_name(CELLAR_DTYPE_U64), "U64") == 0);
    CHECK(strcmp(cellar_dtype_name((cellar_dtype)99), "?") == 0);
}

int main(void)
{
    test_bad_cases();
    test_length_rules();
    test_accepted();
    test_path_and_fd();
    test_writer();
    test_dtypes();
    return test_summary();
}
