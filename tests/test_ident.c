/* The ecosystem's identifiers against every example of HASHES.md, and
 * against Python's hashlib on generated files: CivitAI's six, AUTOMATIC1111's
 * and kohya's forms, ModelSpec, InvokeAI's file and folder hash (component
 * order, symlinks, extensions, the empty folder). */
#include "digest.h"
#include "testutil.h"
#include "util.h"

#include <sys/stat.h>
#include <unistd.h>

static char *write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char *path = cellar_path_join(dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    CHECK(cellar_mkdirs(path, 0755) == 0);
    *slash = '/';
    CHECK(cellar_write_file_atomic(path, p, n, 0644) == 0);
    return path;
}

/* Python's answers (one interpreter per file: it is slow to start) for
 * expressions over d = the file's bytes, into want[i]. */
#define NEXPR 6
static void python(char want[NEXPR][80], const char *path, const char *const *exprs, size_t n)
{
    char cmd[8192];
    size_t len = (size_t)snprintf(cmd, sizeof cmd,
                                  "python3 -c 'import hashlib,sys,zlib; "
                                  "d=open(sys.argv[1],\"rb\").read(); print(");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(cmd + len, sizeof cmd - len, "%s%s", i ? ", " : "", exprs[i]);
    snprintf(cmd + len, sizeof cmd - len, ")' '%s'", path);
    for (size_t i = 0; i < NEXPR; i++)
        want[i][0] = '\0';
    FILE *f = popen(cmd, "r");
    char line[1024] = "";
    if (f) {
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        pclose(f);
    }
    char *save = NULL, *tok = strtok_r(line, " \n", &save);
    for (size_t i = 0; i < n && tok; i++, tok = strtok_r(NULL, " \n", &save))
        snprintf(want[i], sizeof want[i], "%s", tok);
    CHECK_MSG(want[n - 1][0] != '\0', "python3 gave too little for %s", path);
}

static cellar_store *store;

static void test_hello_world(const char *dir)
{
    char *path = write_file(dir, "hello.txt", "hello world", 11);
    cellar_ident id;
    cellar_hash_opts o = {.version = CELLAR_HASH_OPTS_VERSION, .flags = CELLAR_HASH_NO_CACHE};
    CHECK(cellar_ident_file(&id, path, &o) == 0);
    CHECK_STR(id.sha256, "B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9");
    CHECK_STR(id.autov2, "B94D27B993");
    CHECK_STR(id.blake3, "D74981EFA70A0C880B8D8C1985D075DBCBF679B99A5F9914E5AAF96B831A9E24");
    CHECK_STR(id.crc32, "85114A0D");
    CHECK_STR(id.crc32_zlib, "0D4A1185");
    CHECK_STR(id.autov1, "");
    CHECK_STR(id.autov3, "");
    CHECK_STR(id.a1111_shorthash, "b94d27b993");
    /* A1111's old hash has no minimum: sha256 of the empty slice */
    CHECK_STR(id.a1111_model_hash, "e3b0c442");
    CHECK_STR(id.sshs_model_hash, "");
    CHECK_STR(id.modelspec_hash, "");
    CHECK(id.size == 11);

    /* Again through a store's cache (after the racy window), same
     * answers; the second time without reading (AutoV3's "not defined" is
     * cached too). */
    usleep(120000);
    cellar_ident cached;
    cellar_hash_opts c = CELLAR_HASH_OPTS_INIT;
    c.cache = cellar_store_hash_cache(store);
    CHECK(cellar_ident_file(&id, path, &c) == 0);
    CHECK(cellar_ident_file(&cached, path, &c) == 0);
    CHECK(!memcmp(&id, &cached, sizeof id));
    cellar_hash_cache_entry e = {.label = "autov3"};
    struct stat st;
    CHECK(stat(path, &st) == 0);
    e.file = (cellar_file_id){(uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_size,
                              st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                              st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec};
    CHECK(c.cache->lookup(&e, 1, c.cache->ctx) == 0 && e.len == 0);
    free(path);
}

static uint8_t *pattern(size_t n, uint32_t seed)
{
    uint8_t *p = malloc(n);
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
    return p;
}

static void test_autov1(const char *dir)
{
    /* 3 MiB: over CivitAI's 2 MiB minimum */
    const size_t n = 3 * 1024 * 1024;
    uint8_t *p = pattern(n, 7);
    char *path = write_file(dir, "three.ckpt", p, n);
    cellar_ident id;
    cellar_hash_opts o = {.version = CELLAR_HASH_OPTS_VERSION, .flags = CELLAR_HASH_NO_CACHE};
    CHECK(cellar_ident_file(&id, path, &o) == 0);
    static const char *const exprs[] = {
        "hashlib.sha256(d[0x100000:0x110000]).hexdigest()[:8]",
        "hashlib.sha256(d[0x100000:0x110000]).hexdigest()[:8].upper()",
        "hashlib.sha256(d).hexdigest().upper()",
        "zlib.crc32(d).to_bytes(4, \"little\").hex().upper()",
    };
    char want[NEXPR][80];
    python(want, path, exprs, 4);
    CHECK_STR(id.a1111_model_hash, want[0]);
    CHECK_STR(id.autov1, want[1]);
    CHECK_STR(id.sha256, want[2]);
    CHECK_STR(id.crc32, want[3]);
    CHECK_STR(id.autov3, ""); /* file[0:8] is no safetensors header */

    /* Just under 2 MiB: no AutoV1, but A1111's hash all the same. */
    free(path);
    path = write_file(dir, "under.ckpt", p, 0x200000 - 1);
    CHECK(cellar_ident_file(&id, path, &o) == 0);
    CHECK_STR(id.autov1, "");
    python(want, path, exprs, 1);
    CHECK_STR(id.a1111_model_hash, want[0]);
    /* Exactly 2 MiB: AutoV1 given. */
    free(path);
    path = write_file(dir, "exact.ckpt", p, 0x200000);
    CHECK(cellar_ident_file(&id, path, &o) == 0);
    CHECK(strlen(id.autov1) == 8);
    free(path);
    free(p);
}

static void test_autov3(const char *dir)
{
    const char header[] = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                          "\"__metadata__\":{\"format\":\"pt\"}}  ";
    size_t hn = sizeof header - 1;
    size_t n = 8 + hn + 16;
    uint8_t *p = malloc(n);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(p + 8, header, hn);
    for (size_t i = 0; i < 16; i++)
        p[8 + hn + i] = (uint8_t)(i * 37 + 1);
    char *path = write_file(dir, "lora.safetensors", p, n);
    cellar_ident id;
    cellar_hash_opts o = {.version = CELLAR_HASH_OPTS_VERSION, .flags = CELLAR_HASH_NO_CACHE};
    CHECK(cellar_ident_file(&id, path, &o) == 0);
#define TAIL "hashlib.sha256(d[8 + int.from_bytes(d[:8], \"little\"):]).hexdigest()"
    static const char *const exprs[] = {TAIL, (TAIL ".upper()"), (TAIL "[:12]"), ("\"0x\" + " TAIL)};
#undef TAIL
    char want[NEXPR][80];
    python(want, path, exprs, 4);
    CHECK_STR(id.sshs_model_hash, want[0]);
    CHECK_STR(id.autov3, want[1]);
    CHECK_STR(id.lora_shorthash, want[2]);
    CHECK_STR(id.modelspec_hash, want[3]);

    /* A header length past the end of the file: not safetensors, no AutoV3. */
    p[0] = 0xff;
    p[1] = 0xff;
    free(path);
    path = write_file(dir, "broken.safetensors", p, n);
    CHECK(cellar_ident_file(&id, path, &o) == 0);
    CHECK_STR(id.autov3, "");
    CHECK(strlen(id.sha256) == 64);
    free(path);
    free(p);

    char *missing = cellar_path_join(dir, "missing.safetensors");
    CHECK_ERR(cellar_ident_file(&id, missing, &o), CELLAR_ENOTFOUND, "missing.safetensors");
    free(missing);
}

static void invokeai(char *out, size_t cap, const char *path, cellar_algo a)
{
    char *h = NULL;
    int rc = cellar_invokeai_hash(&h, path, a, NULL);
    CHECK_MSG(rc == 0, "%s: %s", path, cellar_error_last());
    snprintf(out, cap, "%s", h ? h : "");
    free(h);
}

static void blake3_hex(char *out, const char *s)
{
    cellar_blake3 b;
    uint8_t d[32];
    cellar_blake3_init(&b);
    cellar_blake3_update(&b, s, strlen(s));
    cellar_blake3_finalize(&b, d, sizeof d);
    cellar_hex(out, d, sizeof d);
}

static void test_invokeai(const char *dir)
{
    char got[256];
    char *md = write_file(dir, "md/model.bin", "model data", 10);
    invokeai(got, sizeof got, md, CELLAR_ALGO_BLAKE3);
    CHECK_STR(got, "blake3:ce3f0c5f3c05d119f4a5dcaf209b50d3149046a0d3a9adee9fed4c83cad6b4d0");
    invokeai(got, sizeof got, md, CELLAR_ALGO_SHA256);
    CHECK_STR(got, "sha256:6dbdb6a147ad4d808455652bf5a10120161678395f6bfbd21eb6fe4e731aceeb");
    invokeai(got, sizeof got, md, CELLAR_ALGO_MD5);
    CHECK_STR(got, "md5:a0cd925fc063f98dbf029eee315060c3");
    char *h;
    CHECK_ERR(cellar_invokeai_hash(&h, md, CELLAR_ALGO_CRC32, NULL), CELLAR_EINVAL, "not crc32");
    free(md);

    /* five files 0.bin..4.bin holding "data" */
    char five[4200];
    snprintf(five, sizeof five, "%s/five", dir);
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "five/%d.bin", i);
        free(write_file(dir, name, "data", 4));
    }
    invokeai(got, sizeof got, five, CELLAR_ALGO_BLAKE3);
    CHECK_STR(got, "blake3:6856c8d405a339f7bd4908794b3851a6abdb1d192a3f7e46026d48db6c59336f");
    /* ignored: other extensions, upper-case ones, a symlinked folder;
     * kept: a symlink to a model file */
    free(write_file(dir, "five/config.json", "{}", 2));
    free(write_file(dir, "five/UPPER.BIN", "other", 5));
    free(write_file(dir, "five/w.Safetensors", "other", 5));
    free(write_file(dir, "five/model.gguf", "other", 5));
    free(write_file(dir, "elsewhere/inside.bin", "other", 5));
    char link[4300], target[4300];
    snprintf(link, sizeof link, "%s/five/linked", dir);
    snprintf(target, sizeof target, "%s/elsewhere", dir);
    CHECK(symlink(target, link) == 0);
    invokeai(got, sizeof got, five, CELLAR_ALGO_BLAKE3);
    CHECK_STR(got, "blake3:6856c8d405a339f7bd4908794b3851a6abdb1d192a3f7e46026d48db6c59336f");
    snprintf(link, sizeof link, "%s/five/5.bin", dir);
    snprintf(target, sizeof target, "%s/elsewhere/inside.bin", dir);
    CHECK(symlink(target, link) == 0);
    invokeai(got, sizeof got, five, CELLAR_ALGO_BLAKE3);
    char concat[8 * 65] = "", hex[65], want[80];
    for (int i = 0; i < 5; i++) {
        blake3_hex(hex, "data");
        strcat(concat, hex);
    }
    blake3_hex(hex, "other");
    strcat(concat, hex);
    blake3_hex(hex, concat);
    snprintf(want, sizeof want, "blake3:%s", hex);
    CHECK_STR(got, want);

    /* Component-wise order: vae/a.bin < vae-fp16/a.bin < vae.x/a.bin
     * (plain string order would put vae/ last). sha256 per file, the outer
     * hash BLAKE3 all the same, the prefix that of the per-file algorithm. */
    free(write_file(dir, "order/vae/a.bin", "1", 1));
    free(write_file(dir, "order/vae-fp16/a.bin", "2", 1));
    free(write_file(dir, "order/vae.x/a.bin", "3", 1));
    char order[4200];
    snprintf(order, sizeof order, "%s/order", dir);
    invokeai(got, sizeof got, order, CELLAR_ALGO_SHA256);
    const char *sha1 = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
                       "d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35"
                       "4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce";
    blake3_hex(hex, sha1);
    snprintf(want, sizeof want, "sha256:%s", hex);
    CHECK_STR(got, want);

    /* the empty folder */
    char empty[4200];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    CHECK(cellar_mkdirs(empty, 0755) == 0);
    invokeai(got, sizeof got, empty, CELLAR_ALGO_BLAKE3);
    CHECK_STR(got, "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
}

int main(void)
{
    const char *dir = test_tmpdir("ident");
    char home[4200];
    snprintf(home, sizeof home, "%s/store", dir);
    if (cellar_store_open(&store, home) != 0) {
        fprintf(stderr, "%s\n", cellar_error_last());
        return 1;
    }
    test_hello_world(dir);
    test_autov1(dir);
    test_autov3(dir);
    test_invokeai(dir);
    cellar_store_free(store);
    return test_summary();
}
