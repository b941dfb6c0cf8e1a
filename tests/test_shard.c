/* Sharded checkpoints: huggingface_hub's split (the FORMATS.md example),
 * size strings, the index file, index path escapes and wrong shards, the
 * byte-exact split/merge round trip; the structural hash (HASHES.md
 * example, shard sets equal to the merged file), components, registry. */
#include "json.h"
#include "safetensors.h"
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>

struct prog {
    bool stop;
    size_t calls;
    cellar_progress last;
};

static int on_prog(const cellar_progress *p, void *ctx)
{
    struct prog *pg = ctx;
    pg->calls++;
    pg->last = *p;
    return pg->stop;
}

static char *join(const char *dir, const char *name)
{
    static char buf[4][4300];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_text(const char *path, const char *text)
{
    CHECK(cellar_write_file_atomic(path, text, strlen(text), 0644) == 0);
}

/* U8 tensors l1..l5 of 6, 10, 30, 2, 2 bytes (FORMATS.md's example). */
static void make_example(const char *path)
{
    static const uint64_t sizes[] = {6, 10, 30, 2, 2};
    static uint8_t data[50];
    for (int i = 0; i < 50; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    cellar_st_writer *w;
    CHECK(cellar_st_writer_new(&w) == 0);
    size_t at = 0;
    for (int i = 0; i < 5; i++) {
        char name[8];
        snprintf(name, sizeof name, "l%d", i + 1);
        CHECK(cellar_st_writer_add(w, name, strlen(name), CELLAR_DTYPE_U8, 1, &sizes[i], data + at, sizes[i]) == 0);
        at += sizes[i];
    }
    CHECK(cellar_st_writer_set_metadata(w, "note", "example") == 0);
    CHECK(cellar_st_writer_write(w, path) == 0);
    cellar_st_writer_free(w);
}

static void shard_names(const char *path, char *out, size_t size)
{
    cellar_st *st;
    out[0] = '\0';
    CHECK(cellar_st_open(&st, path) == 0);
    if (!st)
        return;
    for (size_t i = 0; i < cellar_st_count(st); i++) {
        size_t n = strlen(out);
        snprintf(out + n, size - n, "%s%s", i ? "," : "", cellar_st_tensor_at(st, i)->name);
    }
    cellar_st_free(st);
}

static bool same_file(const char *a, const char *b)
{
    char *x, *y;
    size_t lx, ly;
    if (cellar_read_file(&x, &lx, a, 0) || cellar_read_file(&y, &ly, b, 0))
        return false;
    bool same = lx == ly && memcmp(x, y, lx) == 0;
    free(x);
    free(y);
    return same;
}

static void test_split_example(void)
{
    const char *dir = test_tmpdir("shard-example");
    char src[4300], out[4300], merged[4300];
    snprintf(src, sizeof src, "%s/full.safetensors", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(merged, sizeof merged, "%s/merged.safetensors", dir);
    make_example(src);
    size_t n = 0;
    CHECK(cellar_shard_split(&n, src, out, 10, NULL, NULL) == 0);
    CHECK(n == 4);
    char names[256];
    shard_names(join(out, "model-00001-of-00004.safetensors"), names, sizeof names);
    CHECK_STR(names, "l1");
    shard_names(join(out, "model-00002-of-00004.safetensors"), names, sizeof names);
    CHECK_STR(names, "l3");
    shard_names(join(out, "model-00003-of-00004.safetensors"), names, sizeof names);
    CHECK_STR(names, "l2");
    shard_names(join(out, "model-00004-of-00004.safetensors"), names, sizeof names);
    CHECK_STR(names, "l4,l5");
    char *index;
    CHECK(cellar_read_file(&index, NULL, join(out, "model.safetensors.index.json"), 0) == 0);
    CHECK_STR(index, "{\n  \"metadata\": {\n    \"total_size\": 50\n  },\n  \"weight_map\": {\n"
                     "    \"l1\": \"model-00001-of-00004.safetensors\",\n"
                     "    \"l3\": \"model-00002-of-00004.safetensors\",\n"
                     "    \"l2\": \"model-00003-of-00004.safetensors\",\n"
                     "    \"l4\": \"model-00004-of-00004.safetensors\",\n"
                     "    \"l5\": \"model-00004-of-00004.safetensors\"\n  }\n}");
    free(index);

    /* The set reads as one: directory and index alike. */
    cellar_shards *s;
    CHECK(cellar_shards_open(&s, out) == 0);
    CHECK(s && cellar_shards_count(s) == 5 && cellar_shards_nfiles(s) == 4 && cellar_shards_indexed(s));
    size_t file = 9;
    const cellar_st_tensor *t = s ? cellar_shards_tensor(s, 2, &file) : NULL;
    CHECK(t && strcmp(t->name, "l3") == 0 && file == 1);
    cellar_shards_free(s);
    CHECK(cellar_shards_open(&s, join(out, "model.safetensors.index.json")) == 0);
    CHECK(s && cellar_shards_count(s) == 5);
    cellar_shards_free(s);

    /* Merge gives back the original byte for byte (canonical writer,
     * metadata carried through every shard), checked below. Progress:
     * every byte, the last report complete; a stop leaves no file. */
    struct prog pg = {0};
    CHECK(cellar_shard_merge(out, merged, on_prog, &pg) == 0);
    CHECK(pg.calls >= 1 && pg.last.bytes_done == pg.last.bytes_total &&
          pg.last.files_done == 1 && pg.last.files_total == 1);
    char *stopped = join(dir, "stopped.safetensors");
    pg = (struct prog){.stop = true};
    CHECK_ERR(cellar_shard_merge(out, stopped, on_prog, &pg), CELLAR_EUSER, "stopped");
    CHECK(access(stopped, F_OK) != 0);
    char *split2 = join(dir, "split2");
    pg = (struct prog){0};
    CHECK(cellar_shard_split(&n, src, split2, 10, on_prog, &pg) == 0);
    CHECK(pg.last.files_done == n && pg.last.files_total == n && n > 1 &&
          pg.last.bytes_done == pg.last.bytes_total);
    CHECK(same_file(src, merged));

    /* Structural hash: the same for the file, the set, the merged file. */
    char h1[33], h2[33], h3[33];
    CHECK(cellar_structural_hash(h1, src) == 0);
    CHECK(cellar_structural_hash(h2, out) == 0);
    CHECK(cellar_structural_hash(h3, merged) == 0);
    CHECK_STR(h1, h2);
    CHECK_STR(h1, h3);

    /* Re-splitting into the same folder leaves no file of the old split. */
    CHECK(cellar_shard_split(&n, src, out, 16, NULL, NULL) == 0 && n == 3);
    CHECK(access(join(out, "model-00004-of-00004.safetensors"), F_OK) != 0);
    CHECK(access(join(out, "model-00001-of-00003.safetensors"), F_OK) == 0);
    CHECK(cellar_shard_split(&n, src, out, 1000, NULL, NULL) == 0 && n == 1);
    CHECK(access(join(out, "model.safetensors.index.json"), F_OK) != 0);
    CHECK(access(join(out, "model-00001-of-00003.safetensors"), F_OK) != 0);
    cellar_shards *again;
    CHECK(cellar_shards_open(&again, out) == 0 && cellar_shards_count(again) == 5);
    cellar_shards_free(again);

    /* A limit everything fits under: one model.safetensors, no index. */
    char one[4300];
    snprintf(one, sizeof one, "%s/one", dir);
    CHECK(cellar_shard_split(&n, src, one, 50, NULL, NULL) == 0 && n == 1);
    CHECK(access(join(one, "model.safetensors"), F_OK) == 0);
    CHECK(access(join(one, "model.safetensors.index.json"), F_OK) != 0);
    CHECK(same_file(src, join(one, "model.safetensors")));
    /* Strictly greater: 6 + 10 = 16 fits a limit of 16. */
    char sixteen[4300];
    snprintf(sixteen, sizeof sixteen, "%s/sixteen", dir);
    CHECK(cellar_shard_split(&n, src, sixteen, 16, NULL, NULL) == 0 && n == 3);
    shard_names(join(sixteen, "model-00001-of-00003.safetensors"), names, sizeof names);
    CHECK_STR(names, "l3");
    shard_names(join(sixteen, "model-00002-of-00003.safetensors"), names, sizeof names);
    CHECK_STR(names, "l1,l2");
}

static void test_sizes(void)
{
    static const struct {
        const char *s;
        int rc;
        uint64_t v;
    } c[] = {
        {"5GB", 0, 5000000000ull},   {"5gb", 0, 5000000000ull}, {" 10 MB ", 0, 10000000},
        {"1.5KB", 0, 1500},          {"2TB", 0, 2000000000000ull}, {"0.0000001KB", 0, 0},
        {"1.1GB", 0, 1100000000},    {"1_000KB", 0, 1000000},   {"1__0KB", CELLAR_EINVAL, 0},
        {"_1KB", CELLAR_EINVAL, 0},    {"1e3KB", 0, 1000000},     {"12345", 0, 12345},
        {"5GiB", CELLAR_EINVAL, 0},  {"5G", CELLAR_EINVAL, 0},   {"GB", CELLAR_EINVAL, 0},
        {"xGB", CELLAR_EINVAL, 0},   {"infGB", CELLAR_EINVAL, 0}, {"0x10GB", CELLAR_EINVAL, 0},
        {"-1GB", CELLAR_EINVAL, 0},  {"", CELLAR_EINVAL, 0},     {"5 PB", CELLAR_EINVAL, 0},
        {"99999999999TB", CELLAR_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        uint64_t v = 777;
        int rc = cellar_shard_size_parse(&v, c[i].s);
        CHECK_MSG(rc == c[i].rc, "'%s': rc %d", c[i].s, rc);
        if (rc == 0)
            CHECK_MSG(v == c[i].v, "'%s': %llu", c[i].s, (unsigned long long)v);
    }
    uint64_t v;
    CHECK_ERR(cellar_shard_size_parse(&v, "5GiB"), CELLAR_EINVAL, "unit 'IB' not supported");
}

static void test_index_checks(void)
{
    const char *dir = test_tmpdir("shard-index");
    make_example(join(dir, "a.safetensors"));
    char *idx = join(dir, "model.safetensors.index.json");
    static const struct {
        const char *file, *want;
    } bad[] = {
        {"/etc/a.safetensors", "is absolute"},
        {"\\\\a.safetensors", "is absolute"},
        {"C:a.safetensors", "has a drive"},
        {"../a.safetensors", "climbs out with '..'"},
        {"sub/../../a.safetensors", "climbs out with '..'"},
        {"sub\\\\..\\\\a.safetensors", "climbs out with '..'"},
        {"a.bin", "is not a .safetensors file"},
        {"a.safetensors.json", "is not a .safetensors file"},
        {"", "is empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[512];
        snprintf(text, sizeof text, "{\"weight_map\":{\"l1\":\"%s\"}}", bad[i].file);
        write_text(idx, text);
        cellar_shards *s = NULL;
        int rc = cellar_shards_open(&s, dir);
        CHECK_MSG(rc == CELLAR_EFORMAT && strstr(cellar_error_last(), bad[i].want),
                  "%s: %d %s", bad[i].file, rc, cellar_error_last());
        cellar_shards_free(s);
    }
    /* A second shard; the index misplaces l1. */
    cellar_st_writer *w;
    uint64_t shape = 1;
    CHECK(cellar_st_writer_new(&w) == 0);
    CHECK(cellar_st_writer_add(w, "m1", 2, CELLAR_DTYPE_U8, 1, &shape, "x", 1) == 0);
    CHECK(cellar_st_writer_write(w, join(dir, "b.safetensors")) == 0);
    cellar_st_writer_free(w);
    cellar_shards *s = NULL;
    write_text(idx, "{\"weight_map\":{\"l1\":\"b.safetensors\",\"l2\":\"a.safetensors\",\"l3\":\"a.safetensors\","
                    "\"l4\":\"a.safetensors\",\"l5\":\"a.safetensors\",\"m1\":\"b.safetensors\"}}");
    CHECK_ERR(cellar_shards_open(&s, dir), CELLAR_EFORMAT, "the index places tensor 'l1' in b.safetensors, but it is in a.safetensors");
    write_text(idx, "{\"weight_map\":{\"l1\":\"a.safetensors\",\"l2\":\"a.safetensors\",\"l3\":\"a.safetensors\","
                    "\"l4\":\"a.safetensors\",\"l5\":\"a.safetensors\",\"m1\":\"b.safetensors\",\"zz\":\"b.safetensors\"}}");
    CHECK_ERR(cellar_shards_open(&s, dir), CELLAR_EFORMAT, "the index places tensor 'zz' in b.safetensors, which does not hold it");
    write_text(idx, "{\"weight_map\":{\"l1\":\"a.safetensors\",\"l2\":\"a.safetensors\",\"l3\":\"a.safetensors\","
                    "\"l4\":\"a.safetensors\",\"m1\":\"b.safetensors\"}}");
    CHECK_ERR(cellar_shards_open(&s, dir), CELLAR_EFORMAT, "tensor 'l5' of a.safetensors is not in the index");
    write_text(idx, "{\"weight_map\":[]}");
    CHECK_ERR(cellar_shards_open(&s, dir), CELLAR_EFORMAT, "no \"weight_map\" object");
    write_text(idx, "{\"weight_map\":{\"l1\":\"c.safetensors\"}}");
    CHECK_ERR(cellar_shards_open(&s, dir), CELLAR_ENOTFOUND, "c.safetensors");
    write_text(idx, "{\"metadata\":{\"total_size\":51},\"weight_map\":{\"l1\":\"a.safetensors\",\"l2\":\"a.safetensors\","
                    "\"l3\":\"a.safetensors\",\"l4\":\"a.safetensors\",\"l5\":\"a.safetensors\",\"m1\":\"b.safetensors\"}}");
    CHECK(cellar_shards_open(&s, dir) == 0);
    CHECK(s && cellar_shards_count(s) == 6 && cellar_shards_nfiles(s) == 2);
    cellar_shards_free(s);
    /* Without an index, two .safetensors files are ambiguous. */
    unlink(idx);
    CHECK_ERR(cellar_shards_open(&s, dir), CELLAR_EFORMAT, "2 .safetensors files and no");
    unlink(join(dir, "b.safetensors"));
    CHECK(cellar_shards_open(&s, dir) == 0 && cellar_shards_count(s) == 5 && !cellar_shards_indexed(s));
    cellar_shards_free(s);
    const char *empty = test_tmpdir("shard-empty");
    CHECK_ERR(cellar_shards_open(&s, empty), CELLAR_ENOTFOUND, "no .safetensors file");
}

/* A larger round trip: many tensors of mixed dtypes, a limit that makes a
 * dozen shards, merged back byte-exact. */
static void test_round_trip(void)
{
    const char *dir = test_tmpdir("shard-roundtrip");
    static uint8_t data[1 << 16];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    cellar_st_writer *w;
    CHECK(cellar_st_writer_new(&w) == 0);
    static const cellar_dtype dt[] = {CELLAR_DTYPE_F32, CELLAR_DTYPE_BF16, CELLAR_DTYPE_U8, CELLAR_DTYPE_I64};
    size_t at = 0;
    for (int i = 0; i < 200; i++) {
        char name[64];
        snprintf(name, sizeof name, "layers.%d.w\xC3\xA9ight", i);
        cellar_dtype d = dt[i % 4];
        uint64_t shape[2] = {(uint64_t)(i % 7 + 1), (uint64_t)(i % 5)};
        uint64_t bytes = shape[0] * shape[1] * cellar_dtype_bits(d) / 8;
        CHECK(cellar_st_writer_add(w, name, strlen(name), d, 2, shape, data + at, bytes) == 0);
        at += bytes;
    }
    CHECK(cellar_st_writer_set_metadata(w, "modelspec.title", "round trip") == 0);
    char *src = join(dir, "full.safetensors");
    CHECK(cellar_st_writer_write(w, src) == 0);
    cellar_st_writer_free(w);
    size_t n;
    CHECK(cellar_shard_split(&n, src, join(dir, "shards"), 1000, NULL, NULL) == 0);
    CHECK(n > 5);
    CHECK(cellar_shard_merge(join(dir, "shards"), join(dir, "merged.safetensors"), NULL, NULL) == 0);
    CHECK(same_file(src, join(dir, "merged.safetensors")));
    /* Index is ASCII-escaped like Python's json.dumps. */
    char *index;
    CHECK(cellar_read_file(&index, NULL, join(join(dir, "shards"), "model.safetensors.index.json"), 0) == 0);
    CHECK(strstr(index, "\"layers.0.w\\u00e9ight\": \"model-00001-of-") != NULL);
    free(index);
}

static cellar_st *example_st(const char *const *names, const uint64_t *const *shapes, const size_t *ranks,
                             size_t n, const char *path)
{
    cellar_st_writer *w;
    static uint8_t zero[64];
    cellar_st_writer_new(&w);
    for (size_t i = 0; i < n; i++) {
        uint64_t ne = 1;
        for (size_t k = 0; k < ranks[i]; k++)
            ne *= shapes[i][k];
        cellar_st_writer_add(w, names[i], strlen(names[i]), CELLAR_DTYPE_F32, ranks[i], shapes[i], zero, ne * 4);
    }
    CHECK(cellar_st_writer_write(w, path) == 0);
    cellar_st_writer_free(w);
    cellar_st *st = NULL;
    CHECK(cellar_st_open(&st, path) == 0);
    return st;
}

static void test_structural(void)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", test_tmpdir("structural"));
    static const uint64_t s2[] = {2}, s23[] = {2, 3};
    const char *names[] = {"a.bias", "a.weight", "scale"};
    const uint64_t *shapes[] = {s2, s23, NULL};
    const size_t ranks[] = {1, 2, 0};
    cellar_st *st = example_st(names, shapes, ranks, 3, join(dir, "ex.safetensors"));
    char h[33];
    CHECK(cellar_structural_hash_st(h, &st, 1) == 0);
    CHECK_STR(h, "cdf0726fd23f31be0c8f82e838646a79");
    /* Split across two files (a duplicate in the later file replaces the
     * earlier): the same hash. */
    cellar_st *parts[2];
    const char *n1[] = {"a.bias", "scale"}, *n2[] = {"a.weight", "scale"};
    const uint64_t *sh1[] = {s2, s2}, *sh2[] = {s23, NULL};
    const size_t r1[] = {1, 1}, r2[] = {2, 0};
    parts[0] = example_st(n1, sh1, r1, 2, join(dir, "p1.safetensors"));
    parts[1] = example_st(n2, sh2, r2, 2, join(dir, "p2.safetensors"));
    char h2[33];
    CHECK(cellar_structural_hash_st(h2, parts, 2) == 0);
    CHECK_STR(h2, "cdf0726fd23f31be0c8f82e838646a79");
    /* No tensors: md5 of the empty string. */
    CHECK(cellar_structural_hash_st(h2, parts, 0) == 0);
    CHECK_STR(h2, "d41d8cd98f00b204e9800998ecf8427e");
    cellar_st_free(parts[0]);
    cellar_st_free(parts[1]);
    cellar_st_free(st);

    /* A diffusers-style folder: one component per weighted sub-folder. */
    const char *model = test_tmpdir("structural-diffusers");
    char sub[4300];
    snprintf(sub, sizeof sub, "%s/vae", model);
    mkdir(sub, 0755);
    cellar_st_free(example_st(names, shapes, ranks, 3, join(sub, "diffusion_pytorch_model.safetensors")));
    snprintf(sub, sizeof sub, "%s/scheduler", model);
    mkdir(sub, 0755);
    write_text(join(sub, "scheduler_config.json"), "{}");
    snprintf(sub, sizeof sub, "%s/transformer", model);
    CHECK(cellar_shard_split(NULL, join(dir, "ex.safetensors"), sub, 10, NULL, NULL) == 0);
    write_text(join(model, "model_index.json"), "{}");
    /* Variants beside the plain files (as diffusers repos ship fp16): the
     * plain file or index is the component. */
    snprintf(sub, sizeof sub, "%s/vae", model);
    cellar_st_free(example_st(n1, sh1, r1, 2, join(sub, "diffusion_pytorch_model.fp16.safetensors")));
    snprintf(sub, sizeof sub, "%s/transformer", model);
    write_text(join(sub, "model.fp16.safetensors.index.json"), "{}");
    cellar_component *c;
    size_t nc;
    CHECK(cellar_components(&c, &nc, model) == 0);
    CHECK(nc == 2 && strcmp(c[0].name, "transformer") == 0 && strcmp(c[1].name, "vae") == 0);
    for (size_t i = 0; i < nc; i++) {
        CHECK(cellar_structural_hash(h, c[i].path) == 0);
        CHECK_STR(h, "cdf0726fd23f31be0c8f82e838646a79");
    }
    cellar_components_free(c, nc);
    CHECK(cellar_components(&c, &nc, join(dir, "ex.safetensors")) == 0);
    CHECK(nc == 1 && strcmp(c[0].name, "") == 0);
    cellar_components_free(c, nc);
}

static void test_registry(void)
{
    const char *dir = test_tmpdir("registry");
    cellar_registry *r;
    write_text(join(dir, "registry.tsv"), "# comment\n\ncdf0726fd23f31be0c8f82e838646a79\tToy\tall\tThe HASHES.md example\r\n");
    CHECK(cellar_registry_open(&r, join(dir, "registry.tsv")) == 0);
    const cellar_model_info *m;
    CHECK(cellar_registry_find(&m, r, "cdf0726fd23f31be0c8f82e838646a79") == 0);
    CHECK(m && strcmp(m->family, "Toy") == 0 && strcmp(m->description, "The HASHES.md example") == 0);
    CHECK_ERR(cellar_registry_find(&m, r, "00000000000000000000000000000000"), CELLAR_ENOTFOUND,
              "00000000000000000000000000000000");
    CHECK(m == NULL);
    cellar_registry_free(r);
    write_text(join(dir, "bad.tsv"), "nothex\ta\tb\tc\n");
    CHECK_ERR(cellar_registry_open(&r, join(dir, "bad.tsv")), CELLAR_EFORMAT, "bad.tsv:1: expected");
    /* The compiled table knows FLUX, with every meaning of a hash (CLIP-L is
     * SD3's text encoder 1 in DiffSynth 1.x, FLUX's and SDXL's in 2.x), and
     * an extra file's rows come first. */
    CHECK(cellar_registry_open(&r, NULL) == 0);
    CHECK(cellar_registry_find(&m, r, "a29710fea6dddb0314663ee823598e50") == 0);
    CHECK(m && strcmp(m->family, "FLUX.1") == 0 && strcmp(m->component, "dit") == 0);
    const cellar_model_info *all[8];
    size_t n = cellar_registry_find_all(all, 8, r, "94eefa3dac9cec93cb1ebaf1747d7b78");
    CHECK(n == 3);
    bool flux = false, sd3 = false;
    for (size_t i = 0; i < n && i < 8; i++) {
        flux |= strstr(all[i]->model_name, "flux_text_encoder_clip") != NULL;
        sd3 |= strstr(all[i]->model_name, "sd3_text_encoder_1") != NULL;
    }
    CHECK(flux && sd3);
    CHECK(cellar_registry_count(r) >= 214);
    /* Sorted and every row a hash: the generator checked it; check the first. */
    CHECK(strlen(cellar_registry_at(r, 0)->hash) == 32);
    cellar_registry_free(r);
    CHECK(cellar_registry_find(&m, NULL, "a29710fea6dddb0314663ee823598e50") == 0 && m);
    CHECK(cellar_registry_open(&r, join(dir, "registry.tsv")) == 0);
    CHECK(cellar_registry_count(r) == cellar_registry_count(NULL) + 1);
    CHECK(cellar_registry_find(&m, r, "cdf0726fd23f31be0c8f82e838646a79") == 0 &&
          m == cellar_registry_at(r, 0));
    CHECK(cellar_registry_find(&m, r, "a29710fea6dddb0314663ee823598e50") == 0 && m);
    cellar_registry_free(r);
}

int main(void)
{
    test_split_example();
    test_sizes();
    test_index_checks();
    test_round_trip();
    test_structural();
    test_registry();
    return test_summary();
}
