/* The model loader (src/load): references and resolution, the merged map
 * (duplicates, a missing shard, a truncated file), zero-copy data through a
 * private mapping, threaded populate and reads (every byte, conversions, the
 * ready callback), dtype conversion against an independent reference, DDUF
 * components and identification. */
#include "cellar.h"
#include "testutil.h"
#include "util.h"

#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31u + seed * 7u + (i >> 9));
}

static char *pj(const char *dir, const char *name)
{
    static char buf[8][4400];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Writes one file holding the given tensors; data are the bytes fill()
 * makes with the tensor's seed. */
typedef struct spec {
    const char *name;
    cellar_dtype dt;
    uint64_t shape[2];
    size_t rank;
    uint8_t seed;
} spec;

static size_t spec_bytes(const spec *s)
{
    uint64_t n = 1;
    for (size_t i = 0; i < s->rank; i++)
        n *= s->shape[i];
    return (size_t)(n * cellar_dtype_bits(s->dt) / 8);
}

static void write_st(const char *path, const spec *specs, size_t n)
{
    cellar_st_writer *w;
    CHECK(cellar_st_writer_new(&w) == 0);
    uint8_t *bufs[16];
    for (size_t i = 0; i < n; i++) {
        size_t b = spec_bytes(&specs[i]);
        bufs[i] = malloc(b ? b : 1);
        fill(bufs[i], b, specs[i].seed);
        CHECK(cellar_st_writer_add(w, specs[i].name, strlen(specs[i].name), specs[i].dt,
                                   specs[i].rank, specs[i].shape, bufs[i], b) == 0);
    }
    CHECK_MSG(cellar_st_writer_write(w, path) == 0, "%s", cellar_error_last());
    cellar_st_writer_free(w);
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
}

static void write_text(const char *path, const char *text)
{
    CHECK(cellar_write_file_atomic(path, text, strlen(text), 0644) == 0);
}

static const spec shard1[] = {
    {"a.weight", CELLAR_DTYPE_F32, {3, 5}, 2, 1},
    {"b.half", CELLAR_DTYPE_F16, {7}, 1, 2},
    {"c.bf", CELLAR_DTYPE_BF16, {4, 4}, 2, 3},
};
static const spec shard2[] = {
    {"d.ids", CELLAR_DTYPE_I64, {6}, 1, 4},
    {"e.mask", CELLAR_DTYPE_BOOL, {9}, 1, 5},
    {"f.scalar", CELLAR_DTYPE_F32, {0}, 0, 6},
};

static void make_set(const char *dir)
{
    write_st(pj(dir, "model-00001-of-00002.safetensors"), shard1, 3);
    write_st(pj(dir, "model-00002-of-00002.safetensors"), shard2, 3);
    write_text(pj(dir, "model.safetensors.index.json"),
               "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {"
               "\"a.weight\": \"model-00001-of-00002.safetensors\","
               "\"b.half\": \"model-00001-of-00002.safetensors\","
               "\"c.bf\": \"model-00001-of-00002.safetensors\","
               "\"d.ids\": \"model-00002-of-00002.safetensors\","
               "\"e.mask\": \"model-00002-of-00002.safetensors\","
               "\"f.scalar\": \"model-00002-of-00002.safetensors\"}}");
}

static const spec *find_spec(const char *name)
{
    for (size_t i = 0; i < 3; i++) {
        if (!strcmp(shard1[i].name, name))
            return &shard1[i];
        if (!strcmp(shard2[i].name, name))
            return &shard2[i];
    }
    return NULL;
}

static void test_merged_map(const char *tmp)
{
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/set", tmp);
    mkdir(dir, 0755);
    make_set(dir);

    cellar_ref *ref;
    CHECK(cellar_ref_path(&ref, dir) == 0);
    char **files;
    size_t nf;
    CHECK_MSG(cellar_ref_resolve(&files, &nf, ref, NULL, NULL) == 0, "%s", cellar_error_last());
    CHECK(nf == 2 && files[2] == NULL);
    if (nf == 2) {
        CHECK(strstr(files[0], "00001-of") && strstr(files[1], "00002-of"));
    }
    cellar_free(files);

    cellar_model *m;
    CHECK_MSG(cellar_model_open(&m, ref, NULL) == 0, "%s", cellar_error_last());
    cellar_ref_free(ref);
    if (!m)
        return;
    CHECK(cellar_model_count(m) == 6);
    CHECK(cellar_model_nfiles(m) == 2);
    const char *prev = "";
    for (size_t i = 0; i < cellar_model_count(m); i++) {
        const cellar_model_tensor *t = cellar_model_tensor_at(m, i);
        CHECK(strcmp(prev, t->name) < 0);
        prev = t->name;
        const spec *s = find_spec(t->name);
        CHECK(s != NULL);
        if (!s)
            continue;
        CHECK(t->dtype == s->dt && t->rank == s->rank && t->nbytes == spec_bytes(s));
        CHECK(t->file == (s->seed <= 3 ? 0u : 1u));
        void *data;
        CHECK(cellar_model_data(&data, m, i) == 0);
        uint8_t want[256];
        fill(want, spec_bytes(s), s->seed);
        CHECK_MSG(!memcmp(data, want, spec_bytes(s)), "tensor %s bytes", t->name);
        /* Independent check of the offset: pread the file there. */
        uint8_t got[256];
        FILE *f = fopen(cellar_model_file_path(m, t->file), "rb");
        CHECK(f && fseek(f, (long)t->offset, SEEK_SET) == 0 &&
              fread(got, 1, spec_bytes(s), f) == spec_bytes(s) && !memcmp(got, want, spec_bytes(s)));
        if (f)
            fclose(f);
    }
    size_t idx;
    CHECK(cellar_model_find(&idx, m, "d.ids", 5) == 0 &&
          !strcmp(cellar_model_tensor_at(m, idx)->name, "d.ids"));
    CHECK_ERR(cellar_model_find(&idx, m, "zz", 2), CELLAR_ENOTFOUND, "zz");

    /* Copy-on-write: writing through the pointer never reaches the file. */
    CHECK(cellar_model_find(&idx, m, "a.weight", 8) == 0);
    uint8_t *p;
    CHECK(cellar_model_data((void **)&p, m, idx) == 0);
    uint8_t before = p[0];
    p[0] = (uint8_t)(before ^ 0xFF);
    cellar_model *m2;
    cellar_ref *r2;
    CHECK(cellar_ref_path(&r2, dir) == 0);
    CHECK(cellar_model_open(&m2, r2, NULL) == 0);
    uint8_t *q;
    CHECK(cellar_model_data((void **)&q, m2, idx) == 0 && q[0] == before);
    cellar_model_free(m2);
    cellar_ref_free(r2);

    /* Identify: the structural hash of the merged map is the shard set's. */
    char h1[33], h2[33];
    const cellar_model_info *info = (const cellar_model_info *)1;
    CHECK(cellar_model_identify(h1, &info, m, NULL) == 0 && info == NULL);
    CHECK(cellar_structural_hash(h2, dir) == 0);
    CHECK_STR(h1, h2);
    cellar_model_free(m);

    /* An explicit list of the two shard files gives the same map. */
    const char *list[2] = {pj(dir, "model-00002-of-00002.safetensors"),
                           pj(dir, "model-00001-of-00002.safetensors")};
    CHECK(cellar_ref_files(&ref, list, 2) == 0);
    CHECK(cellar_ref_resolve(&files, &nf, ref, NULL, NULL) == 0 && nf == 2 &&
          strstr(files[0], "00002-of")); /* the caller's order is kept */
    cellar_free(files);
    CHECK(cellar_model_open(&m, ref, NULL) == 0 && cellar_model_count(m) == 6);
    cellar_model_free(m);
    cellar_ref_free(ref);
}

static void test_errors(const char *tmp)
{
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/dup", tmp);
    mkdir(dir, 0755);
    static const spec one[] = {{"x", CELLAR_DTYPE_F32, {2}, 1, 10}, {"y", CELLAR_DTYPE_F32, {2}, 1, 11}};
    static const spec two[] = {{"x", CELLAR_DTYPE_F16, {3}, 1, 12}};
    write_st(pj(dir, "one.safetensors"), one, 2);
    write_st(pj(dir, "two.safetensors"), two, 1);
    const char *list[2] = {pj(dir, "one.safetensors"), pj(dir, "two.safetensors")};
    cellar_ref *ref;
    cellar_model *m;
    CHECK(cellar_ref_files(&ref, list, 2) == 0);
    int rc = cellar_model_open(&m, ref, NULL);
    CHECK_ERR(rc, CELLAR_EFORMAT, "tensor 'x' is in both");
    CHECK(strstr(cellar_error_last(), "one.safetensors") && strstr(cellar_error_last(), "two.safetensors"));
    CHECK(m == NULL);
    cellar_model_opts o = CELLAR_MODEL_OPTS_INIT;
    o.flags = CELLAR_MODEL_LAST_WINS;
    CHECK(cellar_model_open(&m, ref, &o) == 0);
    if (m) {
        size_t i;
        CHECK(cellar_model_count(m) == 2);
        CHECK(cellar_model_find(&i, m, "x", 1) == 0 && cellar_model_tensor_at(m, i)->file == 1 &&
              cellar_model_tensor_at(m, i)->dtype == CELLAR_DTYPE_F16);
    }
    cellar_model_free(m);
    cellar_ref_free(ref);

    /* An index naming a shard that is not there. */
    snprintf(dir, sizeof dir, "%s/missing", tmp);
    mkdir(dir, 0755);
    write_st(pj(dir, "model-00001-of-00002.safetensors"), one, 2);
    write_text(pj(dir, "model.safetensors.index.json"),
               "{\"metadata\": {}, \"weight_map\": {\"x\": \"model-00001-of-00002.safetensors\","
               "\"y\": \"model-00001-of-00002.safetensors\", \"z\": \"model-00002-of-00002.safetensors\"}}");
    CHECK(cellar_ref_path(&ref, pj(dir, "model.safetensors.index.json")) == 0);
    rc = cellar_model_open(&m, ref, NULL);
    CHECK_ERR(rc, CELLAR_ENOTFOUND, "model-00002-of-00002.safetensors");
    cellar_ref_free(ref);

    /* A truncated file. */
    snprintf(dir, sizeof dir, "%s/trunc.safetensors", tmp);
    write_st(dir, one, 2);
    struct stat st;
    CHECK(stat(dir, &st) == 0 && truncate(dir, st.st_size - 3) == 0);
    CHECK(cellar_ref_path(&ref, dir) == 0);
    rc = cellar_model_open(&m, ref, NULL);
    CHECK_MSG(rc == CELLAR_EFORMAT && strstr(cellar_error_last(), "trunc.safetensors"), "%d %s", rc,
              cellar_error_last());
    cellar_ref_free(ref);

    /* A Hub reference must be resolved first; bad names are refused. */
    CHECK(cellar_ref_repo(&ref, "org/name", NULL, "sub/") == 0);
    CHECK_ERR(cellar_model_open(&m, ref, NULL), CELLAR_EINVAL, "resolved");
    cellar_ref_free(ref);
    CHECK(cellar_ref_repo(&ref, "noslash", NULL, NULL) == CELLAR_EINVAL && !ref);
    CHECK(cellar_ref_repo(&ref, "../x/y", NULL, NULL) == CELLAR_EINVAL);
}

static void test_skip_download(const char *tmp)
{
    char base[4400];
    snprintf(base, sizeof base, "%s/models", tmp);
    static const spec one[] = {{"w", CELLAR_DTYPE_F32, {2}, 1, 9}};
    CHECK(cellar_mkdirs(pj(base, "org/repo/vae"), 0755) == 0);
    CHECK(cellar_mkdirs(pj(base, "org/repo/unet"), 0755) == 0);
    write_st(pj(base, "org/repo/vae/b.safetensors"), one, 1);
    write_st(pj(base, "org/repo/vae/a.safetensors"), one, 1);
    write_st(pj(base, "org/repo/unet/u.safetensors"), one, 1);
    write_text(pj(base, "org/repo/vae/config.json"), "{}");
    cellar_resolve_opts o = CELLAR_RESOLVE_OPTS_INIT;
    o.base_dir = base;
    o.skip_download = 1;
    struct {
        const char *pattern;
        size_t n;
        const char *first;
    } cases[] = {
        {"vae/", 3, "org/repo/vae/a.safetensors"},
        {"vae/*.safetensors", 2, "org/repo/vae/a.safetensors"},
        {"*.safetensors", 3, "org/repo/unet/u.safetensors"}, /* '*' crosses '/' */
        {"", 4, "org/repo/unet/u.safetensors"},
        {"./", 4, "org/repo/unet/u.safetensors"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cellar_ref *ref;
        CHECK(cellar_ref_repo(&ref, "org/repo", NULL, cases[i].pattern) == 0);
        char **files = NULL;
        size_t n = 0;
        int rc = cellar_ref_resolve(&files, &n, ref, NULL, &o);
        CHECK_MSG(rc == 0 && n == cases[i].n, "pattern '%s': rc %d n %zu %s", cases[i].pattern,
                  rc, n, cellar_error_last());
        if (!rc && n) {
            CHECK_STR(files[0], pj(base, cases[i].first));
            for (size_t k = 1; k < n; k++)
                CHECK(strcmp(files[k - 1], files[k]) < 0);
        }
        cellar_free(files);
        cellar_ref_free(ref);
    }
    cellar_ref *ref;
    CHECK(cellar_ref_repo(&ref, "org/repo", NULL, "text_encoder/") == 0);
    char **files;
    size_t n;
    CHECK_ERR(cellar_ref_resolve(&files, &n, ref, NULL, &o), CELLAR_ENOTFOUND,
              "downloads are skipped");
    cellar_ref_free(ref);
}

/* ---- conversion ---- */

/* An independent reference: round to nearest even in double arithmetic. */
static uint16_t ref_round(float x, int mant_bits, int emin, int emax, int ebias)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint16_t sign = (uint16_t)((u >> 31) << 15);
    double a = fabs((double)x);
    if (isnan(x))
        return 0xFFFF;
    if (isinf(x))
        return (uint16_t)(sign | (((1u << (15 - mant_bits)) - 1) << mant_bits));
    int e;
    (void)frexp(a, &e);
    e -= 1; /* a = 1.m * 2^e */
    if (a == 0 || e < emin) {
        double q = nearbyint(ldexp(a, -(emin - mant_bits))); /* subnormal steps */
        return (uint16_t)(sign | (uint16_t)q);
    }
    double q = nearbyint(ldexp(a, mant_bits - e));
    if (q >= ldexp(1, mant_bits + 1)) {
        q /= 2;
        e++;
    }
    if (e > emax)
        return (uint16_t)(sign | (((1u << (15 - mant_bits)) - 1) << mant_bits));
    return (uint16_t)(sign | (uint16_t)((unsigned)(e + ebias) << mant_bits) |
                      (uint16_t)((uint64_t)q - (1ull << mant_bits)));
}

static int f16_is_nan(uint16_t h) { return (h & 0x7C00) == 0x7C00 && (h & 0x3FF); }
static int bf16_is_nan(uint16_t h) { return (h & 0x7F80) == 0x7F80 && (h & 0x7F); }

static void test_convert(void)
{
    static uint16_t all[65536], back[65536];
    static float f[65536];
    for (uint32_t i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    /* Every F16 value through F32 and back (NaN stays NaN). */
    CHECK(cellar_convert(f, CELLAR_DTYPE_F32, all, CELLAR_DTYPE_F16, 65536) == 0);
    CHECK(cellar_convert(back, CELLAR_DTYPE_F16, f, CELLAR_DTYPE_F32, 65536) == 0);
    size_t bad = 0;
    for (uint32_t i = 0; i < 65536; i++)
        bad += f16_is_nan(all[i]) ? !(f16_is_nan(back[i]) && isnan(f[i])) : back[i] != all[i];
    CHECK_MSG(bad == 0, "%zu F16 values do not round trip", bad);
    /* F16 -> F32 is exact: compare with ldexp. */
    bad = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        if (f16_is_nan(all[i]))
            continue;
        int e = (all[i] >> 10) & 31, mnt = all[i] & 1023;
        double v = e == 31 ? INFINITY : e ? ldexp(1024 + mnt, e - 25) : ldexp(mnt, -24);
        if (all[i] & 0x8000)
            v = -v;
        bad += (double)f[i] != v;
    }
    CHECK_MSG(bad == 0, "%zu F16 values decode wrong", bad);
    /* Every BF16 value. */
    CHECK(cellar_convert(f, CELLAR_DTYPE_F32, all, CELLAR_DTYPE_BF16, 65536) == 0);
    CHECK(cellar_convert(back, CELLAR_DTYPE_BF16, f, CELLAR_DTYPE_F32, 65536) == 0);
    bad = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        uint32_t u;
        memcpy(&u, &f[i], 4);
        bad += u != (uint32_t)all[i] << 16;
        bad += bf16_is_nan(all[i]) ? back[i] != 0x7FC0 : back[i] != all[i];
    }
    CHECK_MSG(bad == 0, "%zu BF16 values do not round trip", bad);

    /* F32 -> F16 / BF16 on random values of every magnitude, ties included,
     * against the reference rounding. */
    enum { N = 200000 };
    float *src = malloc(N * sizeof *src);
    uint16_t *h = malloc(N * 2), *b = malloc(N * 2), *hb = malloc(N * 2);
    for (size_t i = 0; i < N; i++) {
        uint32_t u = (uint32_t)next_rand();
        if (i % 4 == 1)
            u &= 0xFFFF0000u | 0x8000u; /* BF16 ties */
        if (i % 4 == 2)
            u = (u & 0x8FFFE000u) | 0x00001000u | 0x30000000u; /* F16-range ties */
        if (i % 8 == 3)
            u = (u & 0x807FFFFFu) | ((uint32_t)(100 + next_rand() % 50) << 23); /* subnormal F16 */
        memcpy(&src[i], &u, 4);
    }
    CHECK(cellar_convert(h, CELLAR_DTYPE_F16, src, CELLAR_DTYPE_F32, N) == 0);
    CHECK(cellar_convert(b, CELLAR_DTYPE_BF16, src, CELLAR_DTYPE_F32, N) == 0);
    size_t bad_h = 0, bad_b = 0;
    for (size_t i = 0; i < N; i++) {
        if (isnan(src[i])) {
            bad_h += !f16_is_nan(h[i]);
            bad_b += b[i] != 0x7FC0;
            continue;
        }
        uint16_t rh = ref_round(src[i], 10, -14, 15, 15);
        uint16_t rb = ref_round(src[i], 7, -126, 127, 127);
        if (rh != h[i] && bad_h++ < 3)
            fprintf(stderr, "f16 %a: got %04x want %04x\n", (double)src[i], h[i], rh);
        if (rb != b[i] && bad_b++ < 3)
            fprintf(stderr, "bf16 %a: got %04x want %04x\n", (double)src[i], b[i], rb);
    }
    /* One element at a time takes the scalar code even where F16C is used
     * for whole vectors: both must give the same bits. */
    size_t bad_s = 0;
    for (size_t i = 0; i < N; i++) {
        uint16_t one;
        cellar_convert(&one, CELLAR_DTYPE_F16, &src[i], CELLAR_DTYPE_F32, 1);
        bad_s += one != h[i];
    }
    static float g[65536];
    CHECK(cellar_convert(g, CELLAR_DTYPE_F32, all, CELLAR_DTYPE_F16, 65536) == 0);
    for (uint32_t i = 0; i < 65536; i++) {
        float one;
        cellar_convert(&one, CELLAR_DTYPE_F32, &all[i], CELLAR_DTYPE_F16, 1);
        bad_s += f16_is_nan(all[i]) ? !(isnan(one) && isnan(g[i])) : memcmp(&one, &g[i], 4) != 0;
    }
    CHECK_MSG(bad_s == 0, "%zu scalar/vector differences", bad_s);
    CHECK_MSG(bad_h == 0, "%zu F32->F16 differ", bad_h);
    CHECK_MSG(bad_b == 0, "%zu F32->BF16 differ", bad_b);
    /* F16 <-> BF16 go through F32. */
    CHECK(cellar_convert(hb, CELLAR_DTYPE_BF16, h, CELLAR_DTYPE_F16, N) == 0);
    bad = 0;
    for (size_t i = 0; i < N; i++) {
        float x;
        uint16_t want;
        cellar_convert(&x, CELLAR_DTYPE_F32, &h[i], CELLAR_DTYPE_F16, 1);
        cellar_convert(&want, CELLAR_DTYPE_BF16, &x, CELLAR_DTYPE_F32, 1);
        bad += hb[i] != want;
    }
    CHECK(bad == 0);
    CHECK_ERR(cellar_convert(h, CELLAR_DTYPE_I64, src, CELLAR_DTYPE_F32, 1), CELLAR_EINVAL,
              "not offered");
    free(src);
    free(h);
    free(b);
    free(hb);
}

/* ---- threaded bulk loading ---- */

typedef struct ready {
    size_t n;
    unsigned seen[64];
    size_t stop_after;
} ready;

static int on_ready(size_t item, void *ctx)
{
    ready *r = ctx;
    if (item < 64)
        r->seen[item]++;
    r->n++;
    return r->stop_after && r->n >= r->stop_after;
}

static void test_bulk(const char *tmp)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/big.safetensors", tmp);
    static const spec big[] = {
        {"h1", CELLAR_DTYPE_F16, {1024, 1531}, 2, 21},
        {"h2", CELLAR_DTYPE_F16, {333}, 1, 22},
        {"b1", CELLAR_DTYPE_BF16, {700, 999}, 2, 23},
        {"f1", CELLAR_DTYPE_F32, {512, 777}, 2, 24},
        {"i1", CELLAR_DTYPE_I64, {4099}, 1, 25},
        {"z", CELLAR_DTYPE_F32, {0, 3}, 2, 26},
    };
    write_st(path, big, 6);
    cellar_ref *ref;
    cellar_model *m;
    CHECK(cellar_ref_path(&ref, path) == 0);
    CHECK(cellar_model_open(&m, ref, NULL) == 0);
    cellar_ref_free(ref);
    if (!m)
        return;
    size_t n = cellar_model_count(m);
    CHECK(n == 6);
    cellar_load_opts lo = CELLAR_LOAD_OPTS_INIT;
    lo.nthreads = 4;
    lo.chunk = 65536 + 8; /* many pieces, not page-aligned */

    /* Same dtype: every byte equal to the file's. */
    cellar_read_item items[6];
    void *bufs[6];
    for (size_t i = 0; i < n; i++) {
        const cellar_model_tensor *t = cellar_model_tensor_at(m, i);
        bufs[i] = malloc(t->nbytes ? t->nbytes : 1);
        memset(bufs[i], 0xAB, t->nbytes);
        items[i] = (cellar_read_item){.tensor = i, .dst = bufs[i], .dtype = t->dtype};
    }
    ready r = {0};
    CHECK_MSG(cellar_model_read(m, items, n, &lo, on_ready, &r) == 0, "%s", cellar_error_last());
    CHECK(r.n == n);
    for (size_t i = 0; i < n; i++) {
        const cellar_model_tensor *t = cellar_model_tensor_at(m, i);
        const spec *s = NULL;
        for (size_t k = 0; k < 6; k++)
            if (!strcmp(big[k].name, t->name))
                s = &big[k];
        uint8_t *want = malloc(t->nbytes ? t->nbytes : 1);
        fill(want, t->nbytes, s->seed);
        CHECK_MSG(!memcmp(bufs[i], want, t->nbytes), "read %s", t->name);
        CHECK(r.seen[i] == 1);
        free(want);
        free(bufs[i]);
    }

    /* With conversion to F32 (ints stay): equal to a one-call conversion of
     * the zero-copy bytes. */
    for (size_t i = 0; i < n; i++) {
        const cellar_model_tensor *t = cellar_model_tensor_at(m, i);
        int fl = t->dtype == CELLAR_DTYPE_F16 || t->dtype == CELLAR_DTYPE_BF16 || t->dtype == CELLAR_DTYPE_F32;
        cellar_dtype to = fl ? CELLAR_DTYPE_F32 : t->dtype;
        bufs[i] = malloc(t->nelem * cellar_dtype_bits(to) / 8 + 1);
        items[i] = (cellar_read_item){.tensor = i, .dst = bufs[i], .dtype = to};
    }
    memset(&r, 0, sizeof r);
    CHECK_MSG(cellar_model_read(m, items, n, &lo, on_ready, &r) == 0, "%s", cellar_error_last());
    for (size_t i = 0; i < n; i++) {
        const cellar_model_tensor *t = cellar_model_tensor_at(m, i);
        size_t outb = (size_t)(t->nelem * cellar_dtype_bits(items[i].dtype) / 8);
        uint8_t *want = malloc(outb + 1);
        void *src;
        cellar_model_data(&src, m, i);
        CHECK(cellar_convert(want, items[i].dtype, src, t->dtype, (size_t)t->nelem) == 0);
        CHECK_MSG(!memcmp(bufs[i], want, outb), "converted %s", t->name);
        free(want);
        free(bufs[i]);
    }
    /* A version 1 options struct (before flags) is taken; so is the flag
     * asking for huge pages under the destination: the same bytes either
     * way (h1 to F32 is 6 MiB, enough to be advised). */
    size_t hi;
    CHECK(cellar_model_find(&hi, m, "h1", 2) == 0);
    const cellar_model_tensor *ht = cellar_model_tensor_at(m, hi);
    float *a = malloc((size_t)ht->nelem * 4), *b = malloc((size_t)ht->nelem * 4);
    cellar_load_opts v1 = {.version = 1, .nthreads = 2};
    cellar_read_item hit = {.tensor = hi, .dst = a, .dtype = CELLAR_DTYPE_F32};
    CHECK(cellar_model_read(m, &hit, 1, &v1, NULL, NULL) == 0);
    cellar_load_opts flat = lo;
    flat.flags = CELLAR_LOAD_HUGE_PAGES;
    hit.dst = b;
    CHECK(cellar_model_read(m, &hit, 1, &flat, NULL, NULL) == 0);
    CHECK(!memcmp(a, b, (size_t)ht->nelem * 4));
    cellar_load_opts v9 = {.version = 9};
    CHECK_ERR(cellar_model_read(m, &hit, 1, &v9, NULL, NULL), CELLAR_EINVAL, "version 9");
    free(a);
    free(b);

    /* A conversion not offered, and a bad index. */
    size_t ii;
    CHECK(cellar_model_find(&ii, m, "i1", 2) == 0);
    double dummy[8];
    cellar_read_item bad = {.tensor = ii, .dst = dummy, .dtype = CELLAR_DTYPE_F32};
    CHECK_ERR(cellar_model_read(m, &bad, 1, &lo, NULL, NULL), CELLAR_EINVAL, "not offered");
    bad.tensor = 99;
    CHECK_ERR(cellar_model_read(m, &bad, 1, &lo, NULL, NULL), CELLAR_EINVAL, "out of range");

    /* Populate: every tensor reported once; data then equal. */
    memset(&r, 0, sizeof r);
    CHECK(cellar_model_populate(m, NULL, 0, &lo, on_ready, &r) == 0);
    CHECK(r.n == n);
    for (size_t i = 0; i < n; i++)
        CHECK(r.seen[i] == 1);
    size_t subset[2] = {0, 3};
    memset(&r, 0, sizeof r);
    CHECK(cellar_model_populate(m, subset, 2, &lo, on_ready, &r) == 0 && r.n == 2 &&
          r.seen[0] == 1 && r.seen[1] == 1);
    /* A callback that stops the load. */
    memset(&r, 0, sizeof r);
    r.stop_after = 1;
    CHECK_ERR(cellar_model_populate(m, NULL, 0, &lo, on_ready, &r), CELLAR_EUSER, "stopped");
    cellar_model_free(m);
}

static void test_dduf(const char *tmp)
{
    char st1[4400], st2[4400], dduf[4400];
    snprintf(st1, sizeof st1, "%s/vae.safetensors", tmp);
    snprintf(st2, sizeof st2, "%s/unet.safetensors", tmp);
    snprintf(dduf, sizeof dduf, "%s/pipe.dduf", tmp);
    static const spec v[] = {{"enc", CELLAR_DTYPE_F16, {5}, 1, 31}};
    static const spec u[] = {{"blk", CELLAR_DTYPE_BF16, {3, 2}, 2, 32}};
    write_st(st1, v, 1);
    write_st(st2, u, 1);
    static const char idx[] = "{\"_class_name\":\"P\",\"vae\":[\"d\",\"A\"],\"unet\":[\"d\",\"U\"]}";
    cellar_dduf_source src[] = {
        {"model_index.json", NULL, idx, strlen(idx)},
        {"unet/config.json", NULL, "{}", 2},
        {"unet/diffusion_pytorch_model.safetensors", st2, NULL, 0},
        {"vae/config.json", NULL, "{}", 2},
        {"vae/diffusion_pytorch_model.safetensors", st1, NULL, 0},
    };
    CHECK_MSG(cellar_dduf_write(dduf, src, 5, 0, NULL, NULL) == 0, "%s", cellar_error_last());
    cellar_ref *ref;
    cellar_model *m;
    CHECK(cellar_ref_dduf(&ref, dduf, "vae") == 0);
    CHECK_MSG(cellar_model_open(&m, ref, NULL) == 0, "%s", cellar_error_last());
    cellar_ref_free(ref);
    if (m) {
        CHECK(cellar_model_count(m) == 1);
        const cellar_model_tensor *t = cellar_model_tensor_at(m, 0);
        CHECK(!strcmp(t->name, "enc") && t->nbytes == 10);
        uint8_t want[10], got[10];
        fill(want, 10, 31);
        void *p;
        CHECK(cellar_model_data(&p, m, 0) == 0 && !memcmp(p, want, 10));
        FILE *f = fopen(dduf, "rb");
        CHECK(f && fseek(f, (long)t->offset, SEEK_SET) == 0 && fread(got, 1, 10, f) == 10 &&
              !memcmp(got, want, 10));
        if (f)
            fclose(f);
        cellar_read_item it = {.tensor = 0, .dst = got, .dtype = CELLAR_DTYPE_F16};
        memset(got, 0, 10);
        CHECK(cellar_model_read(m, &it, 1, NULL, NULL, NULL) == 0 && !memcmp(got, want, 10));
        CHECK(strstr(cellar_model_file_path(m, 0), "pipe.dduf/vae/"));
    }
    cellar_model_free(m);
    CHECK(cellar_ref_dduf(&ref, dduf, "text_encoder") == 0);
    CHECK_ERR(cellar_model_open(&m, ref, NULL), CELLAR_ENOTFOUND, "text_encoder");
    cellar_ref_free(ref);
}

/* ---- PyTorch checkpoints (generated by tests/load_pt_gen.py) ---------- */

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(b, 1, (size_t)(n > 0 ? n : 0), f);
    fclose(f);
    return b;
}

static int pt_skipped;

/* Every tensor of file name equals its expected bytes: zero-copy pointer,
 * bulk read (threads, small pieces), conversion to F32 of floats. */
static void check_pt_file(const char *dir, const char *name, size_t want_n)
{
    cellar_ref *ref;
    cellar_model *m = NULL;
    CHECK(cellar_ref_path(&ref, pj(dir, name)) == 0);
    int rc = cellar_model_open(&m, ref, NULL);
    CHECK_MSG(rc == 0, "%s: %s", name, cellar_error_last());
    cellar_ref_free(ref);
    if (!m)
        return;
    size_t n = cellar_model_count(m);
    CHECK_MSG(n == want_n, "%s: %zu tensors", name, n);
    CHECK(cellar_model_file_st(m, 0) == NULL);
    CHECK(cellar_model_populate(m, NULL, 0, NULL, NULL, NULL) == 0);
    cellar_load_opts lo = CELLAR_LOAD_OPTS_INIT;
    lo.nthreads = 3;
    lo.chunk = 4096 + 8;
    char expdir[4400];
    snprintf(expdir, sizeof expdir, "%s/exp/%s", dir, name);
    for (size_t i = 0; i < n; i++) {
        const cellar_model_tensor *t = cellar_model_tensor_at(m, i);
        size_t elen = 0;
        uint8_t *exp = slurp(pj(expdir, t->name), &elen);
        CHECK_MSG(exp && elen == t->nbytes, "%s/%s: %zu bytes expected, %llu listed", name,
                  t->name, elen, (unsigned long long)t->nbytes);
        if (!exp || elen != t->nbytes) {
            free(exp);
            continue;
        }
        void *p;
        CHECK(cellar_model_data(&p, m, i) == 0 && !memcmp(p, exp, elen));
        uint8_t *got = malloc(elen + 1);
        cellar_read_item it = {.tensor = i, .dst = got, .dtype = t->dtype};
        CHECK_MSG(cellar_model_read(m, &it, 1, &lo, NULL, NULL) == 0 && !memcmp(got, exp, elen),
                  "%s/%s read", name, t->name);
        if (t->dtype == CELLAR_DTYPE_BF16 || t->dtype == CELLAR_DTYPE_F16) {
            float *f = malloc(t->nelem * 4 + 4), *g = malloc(t->nelem * 4 + 4);
            cellar_read_item it2 = {.tensor = i, .dst = f, .dtype = CELLAR_DTYPE_F32};
            CHECK(cellar_model_read(m, &it2, 1, &lo, NULL, NULL) == 0);
            CHECK(cellar_convert(g, CELLAR_DTYPE_F32, exp, t->dtype, (size_t)t->nelem) == 0);
            CHECK_MSG(!memcmp(f, g, (size_t)t->nelem * 4), "%s/%s to F32", name, t->name);
            free(f);
            free(g);
        }
        free(got);
        free(exp);
    }
    /* Tied non-contiguous views share their one gathered copy. */
    size_t a, b;
    if (cellar_model_find(&a, m, "trt1", 4) == 0 && cellar_model_find(&b, m, "trt2", 4) == 0) {
        void *pa, *pb;
        cellar_model_data(&pa, m, a);
        cellar_model_data(&pb, m, b);
        CHECK(pa == pb);
        void *base;
        size_t len;
        CHECK(cellar_model_file_map(&base, &len, m, 0) == 0 &&
              (uint8_t *)pa >= (uint8_t *)base && (uint8_t *)pa < (uint8_t *)base + len);
        struct stat st;
        CHECK(stat(pj(dir, name), &st) == 0 &&
              cellar_model_tensor_at(m, a)->offset >= (uint64_t)st.st_size);
    }
    char hash[33];
    CHECK(cellar_model_identify(hash, NULL, m, NULL) == 0 && strlen(hash) == 32);
    cellar_model_free(m);
}

static void test_checkpoints(const char *tmp)
{
    char dir[4400], cmd[9000];
    snprintf(dir, sizeof dir, "%s/pt", tmp);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && /usr/bin/python3 '%s/tests/load_pt_gen.py' '%s' 2>/dev/null", dir,
             CELLAR_SRC_DIR, dir);
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        printf("SKIP: checkpoint cases (no /usr/bin/python3 with torch)\n");
        pt_skipped = 1;
        return;
    }
    check_pt_file(dir, "zip.bin", 12);
    check_pt_file(dir, "legacy.pt", 12);
    check_pt_file(dir, "lightning.ckpt", 2);

    /* Merged with another checkpoint and a safetensors file. */
    static const spec extra[] = {{"st.only", CELLAR_DTYPE_F32, {3}, 1, 9}};
    write_st(pj(dir, "extra.safetensors"), extra, 1);
    const char *files[] = {pj(dir, "lightning.ckpt"), pj(dir, "extra.safetensors"),
                           pj(dir, "zip.bin")};
    cellar_ref *ref;
    cellar_model *m = NULL;
    CHECK(cellar_ref_files(&ref, files, 3) == 0);
    CHECK_MSG(cellar_model_open(&m, ref, NULL) == 0, "%s", cellar_error_last());
    CHECK(m && cellar_model_count(m) == 15 && cellar_model_nfiles(m) == 3);
    CHECK(m && cellar_model_file_st(m, 1) != NULL);
    size_t k;
    CHECK(m && cellar_model_find(&k, m, "st.only", 7) == 0 && cellar_model_tensor_at(m, k)->file == 1);
    cellar_model_free(m);
    cellar_ref_free(ref);
    char **rf;
    size_t rn;
    CHECK(cellar_ref_files(&ref, files, 3) == 0);
    CHECK(cellar_ref_resolve(&rf, &rn, ref, NULL, NULL) == 0 && rn == 3 &&
          !strcmp(rf[2], files[2]));
    cellar_free(rf);
    cellar_ref_free(ref);

    const char *dup[] = {pj(dir, "zip.bin"), pj(dir, "dup.bin")};
    CHECK(cellar_ref_files(&ref, dup, 2) == 0);
    CHECK_ERR(cellar_model_open(&m, ref, NULL), CELLAR_EFORMAT, "'w' is in both");
    cellar_model_opts mo = CELLAR_MODEL_OPTS_INIT;
    mo.flags = CELLAR_MODEL_LAST_WINS;
    CHECK(cellar_model_open(&m, ref, &mo) == 0);
    if (m) {
        CHECK(cellar_model_find(&k, m, "w", 1) == 0 && cellar_model_tensor_at(m, k)->file == 1 &&
              cellar_model_tensor_at(m, k)->nelem == 2);
        cellar_model_free(m);
    }
    cellar_ref_free(ref);

    /* A folder whose only weights are pytorch_model.bin stands for it. */
    CHECK(mkdir(pj(dir, "tf"), 0755) == 0);
    CHECK(link(pj(dir, "zip.bin"), pj(dir, "tf/pytorch_model.bin")) == 0);
    CHECK(cellar_ref_path(&ref, pj(dir, "tf")) == 0);
    CHECK_MSG(cellar_model_open(&m, ref, NULL) == 0, "%s", cellar_error_last());
    CHECK(m && cellar_model_count(m) == 12);
    cellar_model_free(m);
    CHECK(cellar_ref_resolve(&rf, &rn, ref, NULL, NULL) == 0 && rn == 1 &&
          strstr(rf[0], "tf/pytorch_model.bin"));
    cellar_free(rf);
    cellar_ref_free(ref);

    /* A sharded checkpoint: pytorch_model.bin.index.json (zip.bin and
     * lightning.ckpt's names are disjoint). */
    CHECK(mkdir(pj(dir, "sh"), 0755) == 0);
    CHECK(link(pj(dir, "zip.bin"), pj(dir, "sh/pytorch_model-00001-of-00002.bin")) == 0);
    CHECK(link(pj(dir, "dup.bin"), pj(dir, "sh/pytorch_model-00002-of-00002.bin")) == 0);
    write_text(pj(dir, "sh/pytorch_model.bin.index.json"),
               "{\"weight_map\": {\"w\": \"pytorch_model-00002-of-00002.bin\"}}");
    CHECK(cellar_ref_path(&ref, pj(dir, "sh")) == 0);
    CHECK_ERR(cellar_model_open(&m, ref, NULL), CELLAR_EFORMAT, "is not in the index");
    cellar_ref_free(ref);
    {
        char idx[8192] = "{\"metadata\": {}, \"weight_map\": {";
        const char *one[] = {"w", "bf", "half", "i", "tr", "sl", "row", "emb", "head",
                             "trt1", "trt2", "empty"};
        for (size_t i = 0; i < 12; i++)
            snprintf(idx + strlen(idx), sizeof idx - strlen(idx),
                     "\"%s\": \"pytorch_model-00001-of-00002.bin\", ", one[i]);
        strcat(idx, "\"other\": \"pytorch_model-00002-of-00002.bin\"}}");
        write_text(pj(dir, "sh/pytorch_model.bin.index.json"), idx);
    }
    /* Shard 2 holds a "w" too, which the index places in shard 1. */
    CHECK(cellar_ref_path(&ref, pj(dir, "sh")) == 0);
    CHECK_ERR(cellar_model_open(&m, ref, NULL), CELLAR_EFORMAT,
              "places tensor 'w' elsewhere, but it is in pytorch_model-00002-of-00002.bin");
    cellar_ref_free(ref);
    CHECK(unlink(pj(dir, "sh/pytorch_model-00002-of-00002.bin")) == 0);
    CHECK(link(pj(dir, "lightning.ckpt"), pj(dir, "sh/pytorch_model-00002-of-00002.bin")) == 0);
    {
        char idx[8192] = "{\"weight_map\": {";
        const char *one[] = {"w", "bf", "half", "i", "tr", "sl", "row", "emb", "head",
                             "trt1", "trt2", "empty"};
        for (size_t i = 0; i < 12; i++)
            snprintf(idx + strlen(idx), sizeof idx - strlen(idx),
                     "\"%s\": \"pytorch_model-00001-of-00002.bin\", ", one[i]);
        strcat(idx, "\"model.a\": \"pytorch_model-00002-of-00002.bin\", "
                    "\"model.b\": \"pytorch_model-00002-of-00002.bin\"}}");
        write_text(pj(dir, "sh/pytorch_model.bin.index.json"), idx);
    }
    CHECK(cellar_ref_path(&ref, pj(dir, "sh")) == 0);
    CHECK_MSG(cellar_model_open(&m, ref, NULL) == 0, "%s", cellar_error_last());
    CHECK(m && cellar_model_count(m) == 14 && cellar_model_nfiles(m) == 2);
    cellar_model_free(m);
    CHECK(cellar_ref_resolve(&rf, &rn, ref, NULL, NULL) == 0 && rn == 2 &&
          strstr(rf[1], "pytorch_model-00002-of-00002.bin"));
    cellar_free(rf);
    cellar_ref_free(ref);
    CHECK(cellar_ref_path(&ref, pj(dir, "sh/pytorch_model.bin.index.json")) == 0);
    CHECK_MSG(cellar_model_open(&m, ref, NULL) == 0, "%s", cellar_error_last());
    CHECK(m && cellar_model_count(m) == 14);
    cellar_model_free(m);
    cellar_ref_free(ref);

    /* Hostile files: refused, naming the global; nothing runs. */
    CHECK(cellar_ref_path(&ref, pj(dir, "evil.bin")) == 0);
    m = NULL;
    CHECK_ERR(cellar_model_open(&m, ref, NULL), CELLAR_EUNSUPPORTED, "dangerous global posix.system");
    CHECK(!m);
    cellar_ref_free(ref);
    CHECK(access(pj(dir, "MARKER"), F_OK) != 0);
    CHECK(cellar_ref_path(&ref, pj(dir, "unknown.bin")) == 0);
    CHECK_ERR(cellar_model_open(&m, ref, NULL), CELLAR_EUNSUPPORTED, "__main__.Box");
    mo.flags = CELLAR_MODEL_ALLOW_UNKNOWN;
    CHECK_MSG(cellar_model_open(&m, ref, &mo) == 0, "%s", cellar_error_last());
    CHECK(m && cellar_model_count(m) == 1);
    cellar_model_free(m);
    cellar_ref_free(ref);
}

int main(void)
{
    const char *tmp = test_tmpdir("load");
    test_merged_map(tmp);
    test_errors(tmp);
    test_skip_download(tmp);
    test_convert();
    test_bulk(tmp);
    test_dduf(tmp);
    test_checkpoints(tmp);
    int rc = test_summary();
    return rc == 0 && pt_skipped ? 77 : rc;
}
