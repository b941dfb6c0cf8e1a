/* DDUF: archives built by a small independent ZIP builder (with and without
 * ZIP64) and by cellar's writer read back entry by entry; one named
 * corruption per rule, each rejected with its own message; the writer's
 * refusals leave nothing behind; pack and unpack round trips. */
#include "cellar.h"
#include "testutil.h"
#include "util.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---- an independent ZIP builder ---- */

struct zent {
    const char *name;
    const void *data;
    size_t len;
    uint16_t method, flags;
    const char *local_name; /* NULL: same as name */
    long long at;           /* >= 0: no local header written, the central entry points here */
    long long csize;        /* >= 0: compressed size to record instead of len */
};

struct zb {
    uint8_t *buf;
    size_t len, cap;
};

static void zput(struct zb *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->buf = realloc(b->buf, b->cap);
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
}

static void zle(struct zb *b, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        zput(b, &c, 1);
    }
}

/* Central entries with every size and offset moved into a ZIP64 extra, as
 * zipfile writes them for files and offsets past 2 GiB - 1. */
static bool central_zip64;

/* zip64: ZIP64 extras in every local header (as Python's force_zip64) and
 * ZIP64 end records. */
static void build_zip(struct zb *b, const struct zent *e, size_t n, bool zip64)
{
    uint64_t *off = calloc(n, sizeof *off);
    b->len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *ln = e[i].local_name ? e[i].local_name : e[i].name;
        uint32_t crc = (uint32_t)crc32(0, e[i].data, (uInt)e[i].len);
        uint64_t cs = e[i].csize >= 0 ? (uint64_t)e[i].csize : e[i].len;
        if (e[i].at >= 0) {
            off[i] = (uint64_t)e[i].at;
            continue;
        }
        off[i] = b->len;
        zle(b, 0x04034b50, 4);
        zle(b, zip64 ? 45 : 20, 2);
        zle(b, e[i].flags, 2);
        zle(b, e[i].method, 2);
        zle(b, 0, 4);
        zle(b, crc, 4);
        zle(b, zip64 ? 0xffffffff : cs, 4);
        zle(b, zip64 ? 0xffffffff : e[i].len, 4);
        zle(b, strlen(ln), 2);
        zle(b, zip64 ? 20 : 0, 2);
        zput(b, ln, strlen(ln));
        if (zip64) {
            zle(b, 1, 2);
            zle(b, 16, 2);
            zle(b, e[i].len, 8);
            zle(b, cs, 8);
        }
        zput(b, e[i].data, e[i].len);
    }
    uint64_t cd = b->len;
    for (size_t i = 0; i < n; i++) {
        uint64_t cs = e[i].csize >= 0 ? (uint64_t)e[i].csize : e[i].len;
        zle(b, 0x02014b50, 4);
        zle(b, 0x0314, 2);
        zle(b, 20, 2);
        zle(b, e[i].flags, 2);
        zle(b, e[i].method, 2);
        zle(b, 0, 4);
        zle(b, (uint32_t)crc32(0, e[i].data, (uInt)e[i].len), 4);
        zle(b, central_zip64 ? 0xffffffff : cs, 4);
        zle(b, central_zip64 ? 0xffffffff : e[i].len, 4);
        zle(b, strlen(e[i].name), 2);
        zle(b, central_zip64 ? 28 : 0, 2);
        zle(b, 0, 2);
        zle(b, 0, 2);
        zle(b, 0, 2);
        zle(b, 0, 4);
        zle(b, central_zip64 ? 0xffffffff : off[i], 4);
        zput(b, e[i].name, strlen(e[i].name));
        if (central_zip64) {
            zle(b, 1, 2);
            zle(b, 24, 2);
            zle(b, e[i].len, 8);
            zle(b, cs, 8);
            zle(b, off[i], 8);
        }
    }
    uint64_t cd_size = b->len - cd;
    if (zip64) {
        uint64_t rec = b->len;
        zle(b, 0x06064b50, 4);
        zle(b, 44, 8);
        zle(b, 45, 2);
        zle(b, 45, 2);
        zle(b, 0, 4);
        zle(b, 0, 4);
        zle(b, n, 8);
        zle(b, n, 8);
        zle(b, cd_size, 8);
        zle(b, cd, 8);
        zle(b, 0x07064b50, 4);
        zle(b, 0, 4);
        zle(b, rec, 8);
        zle(b, 1, 4);
    }
    zle(b, 0x06054b50, 4);
    zle(b, 0, 4);
    zle(b, n, 2);
    zle(b, n, 2);
    zle(b, cd_size, 4);
    zle(b, cd, 4);
    zle(b, 0, 2);
    free(off);
}

/* ---- a valid pipeline ---- */

static const char index_json[] =
    "{\"_class_name\":\"P\",\"vae\":[\"diffusers\",\"AutoencoderKL\"],"
    "\"scheduler\":[\"diffusers\",\"S\"]}";
static uint8_t st_file[8 + 64 + 8];
static size_t st_len;

/* A safetensors file: one F32 tensor 'w' of shape [2] holding 1.0, 2.0. */
static void make_st(void)
{
    const char *h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t n = strlen(h), padded = (n + 7) / 8 * 8;
    memset(st_file, ' ', sizeof st_file);
    for (int i = 0; i < 8; i++)
        st_file[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(st_file + 8, h, n);
    const float v[2] = {1.0f, 2.0f};
    memcpy(st_file + 8 + padded, v, 8);
    st_len = 8 + padded + 8;
}

static void valid_entries(struct zent *e)
{
    memset(e, 0, 5 * sizeof *e);
    e[0] = (struct zent){"model_index.json", index_json, strlen(index_json), 0, 0, NULL, -1, -1};
    e[1] = (struct zent){"vae/config.json", "{}", 2, 0, 0, NULL, -1, -1};
    e[2] = (struct zent){"vae/diffusion_pytorch_model.safetensors", st_file, st_len, 0, 0, NULL,
                         -1, -1};
    e[3] = (struct zent){"scheduler/scheduler_config.json", "{}", 2, 0, 0, NULL, -1, -1};
    e[4] = (struct zent){"notes.txt", "hello", 5, 0, 0, NULL, -1, -1};
}

static int open_zb(cellar_dduf **d, const struct zb *b, unsigned flags)
{
    return cellar_dduf_open_buffer(d, b->buf, b->len, "t.dduf", flags);
}

static void test_read(bool zip64)
{
    struct zent e[5];
    struct zb b = {0};
    valid_entries(e);
    build_zip(&b, e, 5, zip64);
    cellar_dduf *d = NULL;
    CHECK_MSG(open_zb(&d, &b, CELLAR_DDUF_CRC) == 0, "%s", cellar_error_last());
    if (!d)
        goto done;
    CHECK(cellar_dduf_entry_count(d) == 5);
    const cellar_dduf_entry *x = cellar_dduf_entry_at(d, 0);
    CHECK(x && !strcmp(x->name, "model_index.json") && x->header_offset == 0);
    CHECK(x && x->offset == (zip64 ? 66u : 46u) && x->size == strlen(index_json));
    CHECK(x && x->data == b.buf + x->offset); /* zero-copy */
    CHECK(cellar_dduf_find(&x, d, "notes.txt") == 0);
    CHECK(x && x->size == 5 && !memcmp(x->data, "hello", 5));
    CHECK(x && x->crc32 == (uint32_t)crc32(0, (const Bytef *)"hello", 5));
    CHECK_ERR(cellar_dduf_find(&x, d, "nope.txt"), CELLAR_ENOTFOUND, "no entry 'nope.txt'");
    CHECK(x == NULL);
    CHECK(cellar_dduf_component_count(d) == 2);
    CHECK(!strcmp(cellar_dduf_component_at(d, 0), "vae"));
    CHECK(!strcmp(cellar_dduf_component_at(d, 1), "scheduler"));
    CHECK(cellar_dduf_component_at(d, 2) == NULL);

    /* The embedded safetensors file, read in place. */
    cellar_st *st = NULL;
    CHECK(cellar_dduf_open_safetensors(&st, d, 2) == 0);
    if (st) {
        CHECK(cellar_st_count(st) == 1);
        const cellar_st_tensor *t = cellar_st_tensor_at(st, 0);
        CHECK(t && t->name_len == 1 && t->name[0] == 'w' && t->rank == 1 && t->shape[0] == 2);
        const void *p = NULL;
        CHECK(cellar_st_data(&p, st, 0) == 0);
        const cellar_dduf_entry *w = cellar_dduf_entry_at(d, 2);
        CHECK(p == (const uint8_t *)w->data + (st_len - 8));
        float v[2] = {0, 0};
        if (p)
            memcpy(v, p, 8);
        CHECK(v[0] == 1.0f && v[1] == 2.0f);
    }
    cellar_st_free(st);
    CHECK_ERR(cellar_dduf_open_safetensors(&st, d, 9), CELLAR_EINVAL, "out of range");
done:
    cellar_dduf_free(d);
    cellar_dduf_free(NULL);
    free(b.buf);
}

/* Rejected with EFORMAT (or code) and a message holding needle. */
#define REJECT_CODE(name, code, flags, needle)                                                     \
    do {                                                                                           \
        cellar_dduf *d_ = NULL;                                                                    \
        int rc_ = open_zb(&d_, &b, flags);                                                         \
        CHECK_MSG(rc_ == (code) && d_ == NULL && strstr(cellar_error_last(), needle) != NULL,      \
                  "%s: rc=%d message \"%s\" (want \"%s\")", name, rc_, cellar_error_last(),        \
                  needle);                                                                         \
        cellar_dduf_free(d_);                                                                      \
    } while (0)
#define REJECT(name, needle) REJECT_CODE(name, CELLAR_EFORMAT, 0, needle)

static void set32(struct zb *b, size_t at, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b->buf[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void set64(struct zb *b, size_t at, uint64_t v)
{
    set32(b, at, (uint32_t)v);
    set32(b, at + 4, (uint32_t)(v >> 32));
}

static void test_corruptions(void)
{
    struct zent e[6];
    struct zb b = {0};

    valid_entries(e);
    build_zip(&b, e, 5, true);
    size_t full = b.len;
    /* Truncated archive: every proper prefix fails cleanly (copied to an
     * exact-size allocation for ASan). */
    size_t bad = 0;
    for (size_t n = 0; n < full; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, b.buf, n);
        cellar_dduf *d = NULL;
        if (cellar_dduf_open_buffer(&d, copy, n, "cut.dduf", 0) != CELLAR_EFORMAT || d)
            bad++;
        cellar_dduf_free(d);
        free(copy);
    }
    CHECK_MSG(bad == 0, "%zu truncations accepted", bad);
    b.len = 10;
    REJECT("truncated archive", "truncated archive: 10 bytes");
    b.len = full - 1;
    REJECT("truncated end record", "bad end record: no end of central directory");

    b.len = full;
    b.buf[full - 22 + 16] ^= 1; /* central directory offset */
    REJECT("bad end record", "bad end record");
    b.buf[full - 22 + 16] ^= 1;
    zput(&b, "x", 1);
    REJECT("trailing bytes", "does not end the file");
    b.len = full;

    /* ZIP64 fields out of range: the end record's directory offset, its
     * entry count, and a ZIP64 extra's size. */
    size_t z64 = full - 22 - 20 - 56;
    set32(&b, full - 22 + 16, 0xffffffff);
    set64(&b, z64 + 48, UINT64_C(1) << 40);
    REJECT("zip64 directory offset out of range", "does not end where the end record starts");
    valid_entries(e);
    build_zip(&b, e, 5, true);
    set32(&b, full - 22 + 8, 0xffffffff); /* counts become placeholders */
    b.buf[full - 22 + 8] = b.buf[full - 22 + 9] = b.buf[full - 22 + 10] =
        b.buf[full - 22 + 11] = 0xff;
    set64(&b, z64 + 24, UINT64_C(1) << 40);
    set64(&b, z64 + 32, UINT64_C(1) << 40);
    REJECT("zip64 entry count out of range", "entries cannot fit");
    valid_entries(e);
    build_zip(&b, e, 5, true);
    set64(&b, 30 + 16 + 4, UINT64_C(1) << 50); /* model_index.json's local ZIP64 size */
    REJECT("zip64 local size out of range", "local header sizes or CRC differ");
    valid_entries(e);
    build_zip(&b, e, 5, true);
    set64(&b, z64 + 40, 12);
    REJECT("zip64 record disagrees", "disagrees with the ZIP64 end record");
    valid_entries(e);
    build_zip(&b, e, 5, true);
    set64(&b, full - 22 - 20 + 8, 5);
    REJECT("zip64 locator out of range", "bad ZIP64 end record: no signature");

    central_zip64 = true;
    valid_entries(e);
    build_zip(&b, e, 5, true);
    for (size_t i = 0; i + 4 <= b.len; i++)
        if (!memcmp(b.buf + i, "\x01\x00\x18\x00", 4)) {
            b.buf[i + 2] = 8; /* the first central ZIP64 extra now holds one value */
            break;
        }
    REJECT("central zip64 extra too short", "ZIP64 extra field of 8 bytes is too short");
    central_zip64 = false;

    valid_entries(e);
    e[4].method = 8;
    build_zip(&b, e, 5, false);
    REJECT("compressed entry", "entry 'notes.txt': Data must not be compressed in DDUF file.");

    valid_entries(e);
    e[4].csize = 3;
    build_zip(&b, e, 5, false);
    REJECT("sizes differ", "compressed size 3 differs from size 5");

    valid_entries(e);
    e[4].flags = 1;
    build_zip(&b, e, 5, false);
    REJECT("encrypted entry", "entry 'notes.txt' is encrypted");

    static const char *const bad_names[] = {
        "vae\\x.json", "../x.json", "x.bin",    "/notes.txt", "notes.txt/",  "vae/",
        "./x.json",    "x",         "x.JSON",   "a//b.json",  "../vae.json", "..",
    };
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        valid_entries(e);
        e[4].name = bad_names[i];
        build_zip(&b, e, 5, false);
        char want[128];
        snprintf(want, sizeof want, "Invalid entry name in DDUF file: %s", bad_names[i]);
        REJECT(bad_names[i], want);
    }

    valid_entries(e);
    e[4].name = "vae/sub/config.json";
    build_zip(&b, e, 5, false);
    REJECT("nested folder", "Invalid entry name in DDUF file: vae/sub/config.json");

    valid_entries(e);
    e[0].name = "index.json";
    build_zip(&b, e, 5, false);
    REJECT("missing index", "Missing required 'model_index.json' entry in DDUF file.");

    valid_entries(e);
    e[0].name = "other/model_index.json";
    build_zip(&b, e, 5, false);
    REJECT("index not at the root", "Missing required 'model_index.json' entry");

    valid_entries(e);
    e[0].data = "[1,2]";
    e[0].len = 5;
    build_zip(&b, e, 5, false);
    REJECT("index not an object", "Invalid 'model_index.json' content");

    valid_entries(e);
    e[0].data = "{\"vae\":1,}";
    e[0].len = 10;
    build_zip(&b, e, 5, false);
    REJECT("index not JSON", "model_index.json: invalid JSON");

    valid_entries(e);
    e[4].name = "text_encoder/config.json";
    build_zip(&b, e, 5, false);
    REJECT("folder missing from the index",
           "Missing required entry 'text_encoder' in 'model_index.json'.");

    valid_entries(e);
    e[1].name = "vae/other.json";
    build_zip(&b, e, 5, false);
    REJECT("missing config", "Missing required file in folder 'vae'.");

    valid_entries(e);
    e[4].local_name = "notes.txX";
    build_zip(&b, e, 5, false);
    REJECT("local/central mismatch", "local header name 'notes.txX' differs");

    valid_entries(e);
    build_zip(&b, e, 5, false);
    b.buf[0] = 'Q';
    REJECT("bad local signature", "Invalid local header signature at offset 0");

    valid_entries(e);
    e[5] = e[4];
    build_zip(&b, e, 6, false);
    REJECT("duplicate entry", "duplicate entry name 'notes.txt'");

    /* Overlapping entries: the central directory points a second entry at
     * the first one's local header. */
    valid_entries(e);
    e[5] = e[4];
    e[5].name = "notes2.txt";
    build_zip(&b, e, 5, false);
    for (size_t i = 0; i + 9 <= b.len; i++)
        if (!memcmp(b.buf + i, "notes.txt", 9)) {
            e[5].at = (long long)i - 30; /* notes.txt's local header */
            break;
        }
    e[5].local_name = NULL;
    build_zip(&b, e, 6, false);
    REJECT("central entry on another's header", "local header name 'notes.txt' differs");
    /* ...and a file hidden inside another's data (a crafted quine). */
    {
        struct zb inner = {0};
        struct zent in[1] = {{"inner.txt", "abc", 3, 0, 0, NULL, -1, -1}};
        build_zip(&inner, in, 1, false);
        size_t hdr = 30 + strlen("inner.txt") + 3; /* its local header + data */
        valid_entries(e);
        e[4].data = inner.buf;
        e[4].len = hdr;
        build_zip(&b, e, 5, false);
        size_t notes_data = b.len;
        /* find notes.txt's data: after its local header */
        for (size_t i = 0; i + 9 <= b.len; i++)
            if (!memcmp(b.buf + i, "notes.txt", 9)) {
                notes_data = i + 9;
                break;
            }
        e[5] = in[0];
        e[5].at = (long long)notes_data;
        build_zip(&b, e, 6, false);
        REJECT("overlapping entries", "overlap");
        free(inner.buf);
    }

    valid_entries(e);
    e[2].data = "\x08\0\0\0\0\0\0\0[]      ";
    e[2].len = 16;
    build_zip(&b, e, 5, false);
    REJECT("invalid embedded safetensors", "vae/diffusion_pytorch_model.safetensors");

    valid_entries(e);
    build_zip(&b, e, 5, false);
    for (size_t i = 0; i + 5 <= b.len; i++)
        if (!memcmp(b.buf + i, "hello", 5)) {
            b.buf[i] = 'j';
            break;
        }
    cellar_dduf *d = NULL;
    CHECK(open_zb(&d, &b, 0) == 0); /* CRC is only checked on request */
    cellar_dduf_free(d);
    REJECT_CODE("bad CRC", CELLAR_EMISMATCH, CELLAR_DDUF_CRC, "entry 'notes.txt': CRC-32 is");

    /* Prepended bytes move every offset: refused. */
    valid_entries(e);
    build_zip(&b, e, 5, false);
    struct zb pre = {0};
    zput(&pre, "PREFIX", 6);
    zput(&pre, b.buf, b.len);
    free(b.buf);
    b = pre;
    REJECT("prepended bytes", "does not end where the end record starts");
    free(b.buf);
}

/* ---- writer ---- */

static size_t count_files(const char *dir)
{
    size_t n = 0;
    DIR *dh = opendir(dir);
    struct dirent *de;
    while (dh && (de = readdir(dh)))
        if (de->d_name[0] != '.')
            n++;
    if (dh)
        closedir(dh);
    return n;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static int count_progress(const cellar_progress *pr, void *ctx);

static void test_write(void)
{
    const char *tmp = test_tmpdir("dduf_write");
    char dir[4096], out[4200], path[4300];
    snprintf(dir, sizeof dir, "%s", tmp);
    snprintf(out, sizeof out, "%s/out", dir);
    mkdir(out, 0755);
    snprintf(path, sizeof path, "%s/st.safetensors", dir);
    write_file(path, st_file, st_len);

    cellar_dduf_source src[5] = {
        {"model_index.json", NULL, index_json, strlen(index_json)},
        {"vae/config.json", NULL, "{}", 2},
        {"vae/diffusion_pytorch_model.safetensors", path, NULL, 0},
        {"scheduler/scheduler_config.json", NULL, "{}", 2},
        {"notes.txt", NULL, "hello", 5},
    };
    char dduf[4400];
    snprintf(dduf, sizeof dduf, "%s/p.dduf", out);
    CHECK_MSG(cellar_dduf_write(dduf, src, 5, 0, NULL, NULL) == 0, "%s", cellar_error_last());
    cellar_dduf *d = NULL;
    CHECK(cellar_dduf_open(&d, dduf, CELLAR_DDUF_CRC) == 0);
    if (d) {
        CHECK(cellar_dduf_entry_count(d) == 5);
        const cellar_dduf_entry *x = cellar_dduf_entry_at(d, 0);
        CHECK(x && x->offset == 66); /* as the reference writer */
        x = cellar_dduf_entry_at(d, 2);
        CHECK(x && x->size == st_len && !memcmp(x->data, st_file, st_len));
        CHECK(!strcmp(cellar_dduf_entry_at(d, 4)->name, "notes.txt")); /* caller's order */
    }
    cellar_dduf_free(d);
    CHECK_ERR(cellar_dduf_write(dduf, src, 5, 0, NULL, NULL), CELLAR_EEXISTS, "already exists");
    CHECK(cellar_dduf_write(dduf, src, 4, CELLAR_DDUF_REPLACE, NULL, NULL) == 0);
    /* Progress over the entries; stopped from it: CELLAR_EUSER, nothing written. */
    int calls = 0;
    CHECK(cellar_dduf_write(dduf, src, 4, CELLAR_DDUF_REPLACE, count_progress, &calls) == 0 &&
          calls >= 1);
    char stopped[4400];
    snprintf(stopped, sizeof stopped, "%s/stopped.dduf", out);
    calls = -1; /* stop at the first report */
    CHECK_ERR(cellar_dduf_write(stopped, src, 4, 0, count_progress, &calls), CELLAR_EUSER,
              "stopped");
    CHECK(access(stopped, F_OK) != 0);

    /* Refusals: nothing written, no temp file left. */
    snprintf(dduf, sizeof dduf, "%s/bad.dduf", out);
    cellar_dduf_source s2[5];
    memcpy(s2, src, sizeof s2);
    s2[4].name = "notes.bin";
    CHECK_ERR(cellar_dduf_write(dduf, s2, 5, 0, NULL, NULL), CELLAR_EFORMAT, "Invalid entry name: notes.bin");
    memcpy(s2, src, sizeof s2);
    s2[4].name = "vae/config.json";
    CHECK_ERR(cellar_dduf_write(dduf, s2, 5, 0, NULL, NULL), CELLAR_EFORMAT,
              "Can't add duplicate entry: vae/config.json");
    CHECK_ERR(cellar_dduf_write(dduf, src + 1, 4, 0, NULL, NULL), CELLAR_EFORMAT,
              "Missing required 'model_index.json' entry in DDUF file.");
    memcpy(s2, src, sizeof s2);
    s2[0].data = "[]";
    s2[0].len = 2;
    CHECK_ERR(cellar_dduf_write(dduf, s2, 5, 0, NULL, NULL), CELLAR_EFORMAT,
              "Invalid 'model_index.json' content");
    memcpy(s2, src, sizeof s2);
    s2[3].name = "scheduler/x.json";
    CHECK_ERR(cellar_dduf_write(dduf, s2, 5, 0, NULL, NULL), CELLAR_EFORMAT,
              "Missing required file in folder 'scheduler'");
    memcpy(s2, src, sizeof s2);
    s2[4].name = "unet/config.json";
    CHECK_ERR(cellar_dduf_write(dduf, s2, 5, 0, NULL, NULL), CELLAR_EFORMAT,
              "Missing required entry 'unet' in 'model_index.json'.");
    memcpy(s2, src, sizeof s2);
    s2[2].path = NULL;
    s2[2].data = "\x02\0\0\0\0\0\0\0{}x";
    s2[2].len = 11;
    CHECK_ERR(cellar_dduf_write(dduf, s2, 5, 0, NULL, NULL), CELLAR_EFORMAT,
              "entry 'vae/diffusion_pytorch_model.safetensors'");
    CHECK(count_files(out) == 1);

    /* A file and a component folder of the same name: a valid DDUF, but
     * no directory can hold both; unpack refuses before writing any. */
    static const char clash_index[] = "{\"a.json\": [\"x\", \"Y\"]}";
    cellar_dduf_source clash[3] = {
        {"model_index.json", NULL, clash_index, sizeof clash_index - 1},
        {"a.json", NULL, "{}", 2},
        {"a.json/config.json", NULL, "{}", 2},
    };
    char un[4400];
    snprintf(dduf, sizeof dduf, "%s/clash.dduf", out);
    snprintf(un, sizeof un, "%s/clash", out);
    CHECK_MSG(cellar_dduf_write(dduf, clash, 3, 0, NULL, NULL) == 0, "%s", cellar_error_last());
    CHECK(cellar_dduf_open(&d, dduf, 0) == 0);
    if (d)
        CHECK_ERR(cellar_dduf_unpack(d, un, 0), CELLAR_EEXISTS,
                  "'a.json' is both a file and a component folder");
    cellar_dduf_free(d);
    CHECK(access(un, F_OK) != 0);

    /* More than 65,535 entries: ZIP64 end records, still readable. */
    size_t many = 65536 + 2;
    cellar_dduf_source *ms = calloc(many, sizeof *ms);
    char (*names)[16] = calloc(many, sizeof *names);
    ms[0] = src[0];
    for (size_t i = 1; i < many; i++) {
        snprintf(names[i], sizeof names[i], "e%06zu.txt", i);
        ms[i] = (cellar_dduf_source){names[i], NULL, "x", 1};
    }
    snprintf(dduf, sizeof dduf, "%s/many.dduf", out);
    CHECK_MSG(cellar_dduf_write(dduf, ms, many, 0, NULL, NULL) == 0, "%s", cellar_error_last());
    CHECK(cellar_dduf_open(&d, dduf, 0) == 0 && cellar_dduf_entry_count(d) == many);
    cellar_dduf_free(d);
    free(ms);
    free(names);
}

struct skips {
    char text[1024];
};

static int note_skip(const char *name, const char *why, void *ctx)
{
    struct skips *sk = ctx;
    size_t n = strlen(sk->text);
    snprintf(sk->text + n, sizeof sk->text - n, "%s (%s)\n", name, why);
    return 0;
}

/* Counts reports; a count of -1 stops at the first. */
static int count_progress(const cellar_progress *pr, void *ctx)
{
    int *calls = ctx;
    if (*calls < 0)
        return 1;
    (*calls)++;
    return pr->bytes_done > pr->bytes_total || pr->files_done > pr->files_total;
}

static int stop_skip(const char *name, const char *why, void *ctx)
{
    (void)name;
    (void)why;
    (void)ctx;
    return 1;
}

static void test_pack_unpack(void)
{
    const char *tmp = test_tmpdir("dduf_pack");
    char p[4096], f[4300], dduf[4300], un[4300];
    snprintf(p, sizeof p, "%s/pipe", tmp);
    snprintf(dduf, sizeof dduf, "%s/pipe.dduf", tmp);
    snprintf(un, sizeof un, "%s/un", tmp);
    mkdir(p, 0755);
    snprintf(f, sizeof f, "%s/vae", p);
    mkdir(f, 0755);
    snprintf(f, sizeof f, "%s/scheduler", p);
    mkdir(f, 0755);
    snprintf(f, sizeof f, "%s/vae/config.json", p);
    write_file(f, "{}", 2);
    snprintf(f, sizeof f, "%s/vae/diffusion_pytorch_model.safetensors", p);
    write_file(f, st_file, st_len);
    snprintf(f, sizeof f, "%s/scheduler/scheduler_config.json", p);
    write_file(f, "{}", 2);
    snprintf(f, sizeof f, "%s/model_index.json", p);
    write_file(f, index_json, strlen(index_json));

    CHECK_MSG(cellar_dduf_pack(dduf, p, 0, NULL, NULL, NULL) == 0, "%s", cellar_error_last());
    cellar_dduf *d = NULL;
    CHECK(cellar_dduf_open(&d, dduf, CELLAR_DDUF_CRC) == 0);
    if (!d)
        return;
    CHECK(!strcmp(cellar_dduf_entry_at(d, 0)->name, "model_index.json"));
    CHECK(!strcmp(cellar_dduf_entry_at(d, 1)->name, "scheduler/scheduler_config.json"));
    CHECK(cellar_dduf_entry_at(d, 0)->offset == 66);

    CHECK(cellar_dduf_unpack(d, un, 0) == 0);
    snprintf(f, sizeof f, "%s/vae/diffusion_pytorch_model.safetensors", un);
    char *back = NULL;
    size_t back_len = 0;
    CHECK(cellar_read_file(&back, &back_len, f, 1 << 20) == 0 && back_len == st_len &&
          !memcmp(back, st_file, st_len));
    free(back);
    CHECK_ERR(cellar_dduf_unpack(d, un, 0), CELLAR_EEXISTS, "already exists");
    CHECK(cellar_dduf_unpack(d, un, CELLAR_DDUF_REPLACE) == 0);

    /* A component folder that is a symlink would lead outside DIR. */
    char un2[4400], outside[4400];
    snprintf(un2, sizeof un2, "%s/un2", tmp);
    snprintf(outside, sizeof outside, "%s/outside", tmp);
    mkdir(un2, 0755);
    mkdir(outside, 0755);
    snprintf(f, sizeof f, "%s/vae", un2);
    CHECK(symlink(outside, f) == 0);
    CHECK_ERR(cellar_dduf_unpack(d, un2, CELLAR_DDUF_REPLACE), CELLAR_EEXISTS,
              "is not a directory");
    CHECK(count_files(outside) == 0);
    cellar_dduf_free(d);

    /* What a Hub snapshot holds beside the pipeline is left out, and
     * reported, sorted; the archive is the same as without it. */
    char bad[4400];
    snprintf(bad, sizeof bad, "%s/bad.dduf", tmp);
    static const char *const extra[] = {"README.md", ".gitattributes", "vae/notes.bin",
                                        "vae/.hidden.json", ".cache/x.json", "assets/logo.png",
                                        "vae/nested/readme.md"};
    snprintf(f, sizeof f, "%s/.cache", p);
    mkdir(f, 0755);
    snprintf(f, sizeof f, "%s/assets", p);
    mkdir(f, 0755);
    snprintf(f, sizeof f, "%s/vae/nested", p);
    mkdir(f, 0755);
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        snprintf(f, sizeof f, "%s/%s", p, extra[i]);
        write_file(f, "x", 1);
    }
    struct skips sk = {0};
    char with[4400];
    snprintf(with, sizeof with, "%s/with_extra.dduf", tmp);
    CHECK_MSG(cellar_dduf_pack(with, p, 0, note_skip, NULL, &sk) == 0, "%s", cellar_error_last());
    CHECK_MSG(!strcmp(sk.text, ".cache (hidden)\n.gitattributes (hidden)\nREADME.md (file type "
                               "not allowed in a DDUF)\nassets/logo.png (file type not allowed "
                               "in a DDUF)\nvae/.hidden.json (hidden)\nvae/nested (folder "
                               "nested in a component, holding no DDUF file)\nvae/notes.bin "
                               "(file type not allowed in a DDUF)\n"),
              "%s", sk.text);
    CHECK(cellar_dduf_open(&d, with, CELLAR_DDUF_CRC) == 0);
    CHECK(d && cellar_dduf_entry_count(d) == 4 && cellar_dduf_component_count(d) == 2);
    cellar_dduf_free(d);
    /* Stopped from the callback: CELLAR_EUSER, nothing written. */
    char stopped[4400];
    snprintf(stopped, sizeof stopped, "%s/stopped.dduf", tmp);
    CHECK_ERR(cellar_dduf_pack(stopped, p, 0, stop_skip, NULL, NULL), CELLAR_EUSER, "stopped");
    CHECK(access(stopped, F_OK) != 0);
    /* Progress over the entries' bytes; stopped from it, nothing written. */
    int calls = 0;
    CHECK(cellar_dduf_pack(stopped, p, 0, NULL, count_progress, &calls) == 0 && calls >= 1);
    CHECK(unlink(stopped) == 0);
    calls = -1; /* stop at the first report */
    CHECK_ERR(cellar_dduf_pack(stopped, p, 0, NULL, count_progress, &calls), CELLAR_EUSER,
              "stopped.dduf: stopped");
    CHECK(access(stopped, F_OK) != 0);

    /* Folders that would make an invalid DDUF are refused, nothing written. */
    snprintf(f, sizeof f, "%s/vae/nested/config.json", p);
    write_file(f, "{}", 2);
    CHECK_ERR(cellar_dduf_pack(bad, p, 0, NULL, NULL, NULL), CELLAR_EFORMAT,
              "1 level of directory (found 'vae/nested/config.json' in folder 'vae/nested')");
    unlink(f);
    snprintf(f, sizeof f, "%s/vae/b\\a.json", p);
    write_file(f, "{}", 2);
    CHECK_ERR(cellar_dduf_pack(bad, p, 0, NULL, NULL, NULL), CELLAR_EFORMAT, "Invalid entry name");
    unlink(f);
    snprintf(f, sizeof f, "%s/vae/config.json", p);
    unlink(f);
    CHECK_ERR(cellar_dduf_pack(bad, p, 0, NULL, NULL, NULL), CELLAR_EFORMAT,
              "Missing required file in folder 'vae'");
    snprintf(f, sizeof f, "%s/model_index.json", p);
    unlink(f);
    CHECK_ERR(cellar_dduf_pack(bad, p, 0, NULL, NULL, NULL), CELLAR_EFORMAT,
              "Missing required 'model_index.json'");
    /* Nothing at all to pack. */
    snprintf(f, sizeof f, "%s/empty", tmp);
    mkdir(f, 0755);
    CHECK_ERR(cellar_dduf_pack(bad, f, 0, NULL, NULL, NULL), CELLAR_EFORMAT,
              "Missing required 'model_index.json'");
    CHECK(access(bad, F_OK) != 0);
}

/* Weight sets: one per variant, by the rule folders use (variant.c). */
static void test_weight_sets(void)
{
    const char *dir = test_tmpdir("dduf_weight_sets");
    char dduf[4200];
    snprintf(dduf, sizeof dduf, "%s/v.dduf", dir);
    cellar_dduf_source src[] = {
        {"model_index.json", NULL, index_json, strlen(index_json)},
        {"vae/config.json", NULL, "{}", 2},
        {"vae/diffusion_pytorch_model.fp16-00001-of-00002.safetensors", NULL, st_file, st_len},
        {"vae/diffusion_pytorch_model.safetensors", NULL, st_file, st_len},
        {"vae/diffusion_pytorch_model.fp16-00002-of-00002.safetensors", NULL, st_file, st_len},
        {"vae/diffusion_pytorch_model-00001-of-00001.bf16.safetensors", NULL, st_file, st_len},
        {"vae/diffusion_pytorch_model.safetensors.index.json", NULL, "{}", 2},
        {"scheduler/scheduler_config.json", NULL, "{}", 2},
    };
    size_t nsrc = sizeof src / sizeof src[0];
    CHECK_MSG(cellar_dduf_write(dduf, src, nsrc, 0, NULL, NULL) == 0, "%s", cellar_error_last());
    cellar_dduf *d = NULL;
    CHECK(cellar_dduf_open(&d, dduf, 0) == 0);
    if (!d)
        return;
    cellar_dduf_weights *w;
    size_t n;
    CHECK(cellar_dduf_weight_sets(&w, &n, d, "vae") == 0);
    CHECK(n == 3);
    if (n == 3) {
        CHECK_STR(w[0].variant, "");
        CHECK(w[0].n == 1 && w[0].entries[0] == 3);
        CHECK_STR(w[1].variant, "fp16");
        CHECK(w[1].n == 2 && w[1].entries[0] == 2 && w[1].entries[1] == 4);
        CHECK_STR(w[2].variant, "bf16");
        CHECK(w[2].n == 1 && w[2].entries[0] == 5);
    }
    cellar_dduf_weight_sets_free(w, n);
    /* no weights: one empty default set; "va" is not "vae" */
    CHECK(cellar_dduf_weight_sets(&w, &n, d, "scheduler") == 0);
    CHECK(n == 1 && w[0].n == 0 && !strcmp(w[0].variant, ""));
    cellar_dduf_weight_sets_free(w, n);
    CHECK(cellar_dduf_weight_sets(&w, &n, d, "va") == 0);
    CHECK(n == 1 && w[0].n == 0);
    cellar_dduf_weight_sets_free(w, n);
    cellar_dduf_weight_sets_free(NULL, 0);
    cellar_dduf_free(d);

    /* only variants: no default set */
    cellar_dduf_source only[] = {
        {"model_index.json", NULL, index_json, strlen(index_json)},
        {"vae/config.json", NULL, "{}", 2},
        {"vae/diffusion_pytorch_model.fp16.safetensors", NULL, st_file, st_len},
        {"scheduler/scheduler_config.json", NULL, "{}", 2},
    };
    CHECK(cellar_dduf_write(dduf, only, 4, CELLAR_DDUF_REPLACE, NULL, NULL) == 0);
    CHECK(cellar_dduf_open(&d, dduf, 0) == 0);
    if (!d)
        return;
    CHECK(cellar_dduf_weight_sets(&w, &n, d, "vae") == 0);
    CHECK(n == 1 && !strcmp(w[0].variant, "fp16") && w[0].n == 1 && w[0].entries[0] == 2);
    cellar_dduf_weight_sets_free(w, n);
    cellar_dduf_free(d);
}

int main(void)
{
    make_st();
    test_weight_sets();
    test_read(false);
    test_read(true);
    central_zip64 = true;
    test_read(true);
    central_zip64 = false;
    test_corruptions();
    test_write();
    test_pack_unpack();
    return test_summary();
}
