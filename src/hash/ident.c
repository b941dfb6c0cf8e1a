/* The ecosystem's identifiers of model files (see HASHES.md): CivitAI's
 * six, AUTOMATIC1111's and kohya's forms of them, ModelSpec's hash, and
 * InvokeAI's file and folder hash.
 *
 * Every CivitAI value comes from one pass over the file: sha256, BLAKE3 and
 * crc32 of the whole, sha256 of file[0x100000:0x110000] (AutoV1) and of the
 * safetensors tensor data file[8+N:] (AutoV3) are lanes of the same pass.
 * Each is cached under its own label, so an unchanged file costs a stat. */
#include "digest.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AUTOV1_START 0x100000u
#define AUTOV1_LEN 0x10000u
#define AUTOV1_MIN_SIZE 0x200000u /* CivitAI gives no AutoV1 below 2 MiB */

enum { L_SHA256, L_BLAKE3, L_CRC32, L_AUTOV1, L_AUTOV3, L__COUNT };

static const struct {
    const char *cache_label;
    cellar_algo algo;
} ident_lanes[L__COUNT] = {
    [L_SHA256] = {"sha256", CELLAR_ALGO_SHA256},
    [L_BLAKE3] = {"blake3", CELLAR_ALGO_BLAKE3},
    [L_CRC32] = {"crc32", CELLAR_ALGO_CRC32},
    [L_AUTOV1] = {"autov1", CELLAR_ALGO_SHA256},
    [L_AUTOV3] = {"autov3", CELLAR_ALGO_SHA256},
};

static void upper(char *s)
{
    for (; *s; s++)
        *s = (char)toupper((unsigned char)*s);
}

static void hex_prefix(char *out, const uint8_t *d, size_t bytes, size_t chars)
{
    char hex[2 * CELLAR_DIGEST_MAX + 1];
    cellar_hex(hex, d, bytes);
    memcpy(out, hex, chars);
    out[chars] = '\0';
}

/* Where the tensor data of a safetensors file starts: 8 + N, N being the
 * little-endian u64 in file[0:8], if the bytes look like safetensors (a
 * JSON object header that fits in the file). 0 otherwise. */
static int tensor_data_start(uint64_t *start, int fd, const char *path, uint64_t size)
{
    *start = 0;
    uint8_t head[9];
    if (size < sizeof head)
        return 0;
    ssize_t got = cellar_full_pread(fd, head, sizeof head, 0);
    if (got < 0)
        return cellar_fail_errno(errno, "%s", path);
    if ((size_t)got < sizeof head)
        return cellar_fail(CELLAR_ECHANGED, "%s: file shrank while it was read", path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | head[i];
    uint64_t end;
    if (head[8] != '{' || ck_add(n, 8, &end) || end > size)
        return 0;
    *start = end;
    return 0;
}

static void fill(cellar_ident *out, uint8_t d[L__COUNT][CELLAR_DIGEST_MAX], bool has_v3)
{
    char hex[2 * CELLAR_DIGEST_MAX + 1];
    cellar_hex(hex, d[L_SHA256], 32);
    memcpy(out->a1111_shorthash, hex, 10);
    out->a1111_shorthash[10] = '\0';
    upper(hex);
    memcpy(out->sha256, hex, 65);
    memcpy(out->autov2, hex, 10);
    out->autov2[10] = '\0';

    hex_prefix(out->a1111_model_hash, d[L_AUTOV1], 32, 8);
    if (out->size >= AUTOV1_MIN_SIZE) {
        memcpy(out->autov1, out->a1111_model_hash, 9);
        upper(out->autov1);
    }

    if (has_v3) {
        cellar_hex(out->sshs_model_hash, d[L_AUTOV3], 32);
        memcpy(out->lora_shorthash, out->sshs_model_hash, 12);
        out->lora_shorthash[12] = '\0';
        snprintf(out->modelspec_hash, sizeof out->modelspec_hash, "0x%s", out->sshs_model_hash);
        memcpy(out->autov3, out->sshs_model_hash, 65);
        upper(out->autov3);
    }

    cellar_hex(out->blake3, d[L_BLAKE3], 32);
    upper(out->blake3);

    cellar_hex(out->crc32_zlib, d[L_CRC32], 4);
    upper(out->crc32_zlib);
    const uint8_t *c = d[L_CRC32];
    const uint8_t le[4] = {c[3], c[2], c[1], c[0]};
    cellar_hex(out->crc32, le, 4);
    upper(out->crc32);
}

int cellar_ident_file(cellar_ident *out, const char *path, const cellar_hash_opts *opts)
{
    memset(out, 0, sizeof *out);
    int rc = digest_opts_check(opts);
    if (rc)
        return rc;
    uint32_t flags = opts ? opts->flags : 0;
    const cellar_hash_cache *cache = digest_cache_of(opts);
    uint8_t d[L__COUNT][CELLAR_DIGEST_MAX] = {{0}};
    cellar_hash_cache_entry e[L__COUNT];
    struct stat pre;

    if (cache) {
        if (stat(path, &pre) != 0)
            return cellar_fail_errno(errno, "%s", path);
        bool all = S_ISREG(pre.st_mode);
        if (all) {
            for (int i = 0; i < L__COUNT; i++) {
                e[i] = (cellar_hash_cache_entry){.label = ident_lanes[i].cache_label};
                digest_file_id(&e[i].file, &pre);
            }
            digest_cache_lookup(cache, e, L__COUNT);
        }
        for (int i = 0; all && i < L__COUNT; i++) {
            int len = e[i].len;
            all = len == 32 || (i == L_CRC32 && len == 4) || (i == L_AUTOV3 && len == 0);
            if (all)
                memcpy(d[i], e[i].digest, (size_t)len);
        }
        if (all) {
            out->size = (uint64_t)pre.st_size;
            fill(out, d, e[L_AUTOV3].len == 32);
            return 0;
        }
    }

    int fd;
    struct stat st;
    rc = digest_open(&fd, &st, path);
    if (rc)
        return rc;
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cellar_fail(CELLAR_EUNSUPPORTED, "%s: identifiers need a regular file", path);
    }
    uint64_t size = (uint64_t)st.st_size;
    uint64_t v3;
    if ((rc = tensor_data_start(&v3, fd, path, size))) {
        close(fd);
        return rc;
    }
    digest_lane lanes[L__COUNT];
    size_t n = 0;
    for (int i = 0; i < L__COUNT; i++)
        lanes[n++] = (digest_lane){.algo = ident_lanes[i].algo, .start = 0, .end = UINT64_MAX};
    lanes[L_AUTOV1].start = AUTOV1_START;
    lanes[L_AUTOV1].end = AUTOV1_START + AUTOV1_LEN;
    if (v3)
        lanes[L_AUTOV3].start = v3;
    else
        n--; /* L_AUTOV3 is last: not a safetensors file, no lane */
    digest_progress pr = {.fn = opts ? opts->progress : NULL, .ctx = opts ? opts->progress_ctx : NULL};
    rc = digest_lanes_fd(lanes, n, fd, path, &st, flags, opts ? opts->nthreads : 0, &pr);
    close(fd);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        memcpy(d[i], lanes[i].out, cellar_algo_len(lanes[i].algo));
    if (cache && digest_stat_cacheable(&st)) {
        for (int i = 0; i < L__COUNT; i++) {
            size_t len = i == L_AUTOV3 && !v3 ? 0 : cellar_algo_len(ident_lanes[i].algo);
            e[i] = (cellar_hash_cache_entry){.label = ident_lanes[i].cache_label, .len = (int)len};
            digest_file_id(&e[i].file, &st);
            memcpy(e[i].digest, d[i], len);
        }
        digest_cache_record(cache, e, L__COUNT);
    }
    out->size = size;
    fill(out, d, v3 != 0);
    return 0;
}

/* ---- InvokeAI ------------------------------------------------------------- */

static bool invokeai_model_name(const char *name)
{
    static const char *const exts[] = {".ckpt", ".safetensors", ".bin", ".pt", ".pth"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t e = strlen(exts[i]);
        if (n >= e && memcmp(name + n - e, exts[i], e) == 0)
            return true;
    }
    return false;
}

/* Component-wise order: comparing bytes with '/' below every other byte is
 * the same as comparing the lists of components element by element. */
static int path_cmp(const void *pa, const void *pb)
{
    const unsigned char *a = *(const unsigned char *const *)pa;
    const unsigned char *b = *(const unsigned char *const *)pb;
    for (;; a++, b++) {
        unsigned ca = *a == '/' ? 1u : *a == 0 ? 0u : (unsigned)*a + 1;
        unsigned cb = *b == '/' ? 1u : *b == 0 ? 0u : (unsigned)*b + 1;
        if (ca != cb)
            return ca < cb ? -1 : 1;
        if (!ca)
            return 0;
    }
}

struct path_list {
    char **v;
    size_t n, cap;
};

static int list_add(struct path_list *l, char *p)
{
    int rc = cellar_grow(&l->v, &l->cap, l->n, sizeof *l->v, 64);
    if (rc)
        return rc;
    l->v[l->n++] = p;
    return 0;
}

static void list_free(struct path_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* Walks dir as Python's os.walk(followlinks=False) does: symlinked folders
 * are listed, not entered; kept files are regular files and symlinks to
 * them with a model extension. */
static int walk(struct path_list *out, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return cellar_fail_errno(errno, "%s", dir);
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                rc = cellar_fail_errno(errno, "%s", dir);
            break;
        }
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = cellar_path_join(dir, e->d_name);
        if (!p) {
            rc = CELLAR_ENOMEM;
            break;
        }
        struct stat ls, st;
        if (lstat(p, &ls) != 0) {
            rc = cellar_fail_errno(errno, "%s", p);
            free(p);
            break;
        }
        if (S_ISDIR(ls.st_mode)) {
            rc = walk(out, p);
            free(p);
        } else if (invokeai_model_name(e->d_name) &&
                   (S_ISREG(ls.st_mode) ||
                    (S_ISLNK(ls.st_mode) && stat(p, &st) == 0 && S_ISREG(st.st_mode)))) {
            rc = list_add(out, p);
            if (rc)
                free(p);
        } else {
            free(p);
        }
        if (rc)
            break;
    }
    closedir(d);
    return rc;
}

struct concat {
    cellar_buf hex;
    cellar_algo algo;
    int rc;
    const char *const *paths;
};

/* Never stops the run: the first failure is kept in c->rc with its
 * message, which a stop would replace. */
static int concat_one(size_t i, int rc, const cellar_digests *d, const char *message, void *ctx)
{
    struct concat *c = ctx;
    if (c->rc)
        return 0;
    if (rc) {
        c->rc = cellar_fail(rc, "%s", message);
        return 0;
    }
    char hex[2 * CELLAR_DIGEST_MAX + 1];
    cellar_digest_hex(hex, d, c->algo);
    c->rc = cellar_buf_append(&c->hex, hex, strlen(hex));
    (void)i;
    return 0;
}

int cellar_invokeai_hash(char **out, const char *path, cellar_algo algo,
                         const cellar_hash_opts *opts)
{
    *out = NULL;
    RETURN_ERROR_IF(algo != CELLAR_ALGO_BLAKE3 && algo != CELLAR_ALGO_SHA256 &&
                        algo != CELLAR_ALGO_SHA1 && algo != CELLAR_ALGO_MD5,
                    CELLAR_EINVAL, "InvokeAI hashes with blake3, sha256, sha1 or md5, not %s",
                    cellar_algo_name(algo));
    int rc = digest_opts_check(opts);
    if (rc)
        return rc;
    cellar_hash_opts o = CELLAR_HASH_OPTS_INIT;
    if (opts)
        o = *opts;
    o.algos = CELLAR_ALGO_BIT(algo);
    struct stat st;
    if (stat(path, &st) != 0)
        return cellar_fail_errno(errno, "%s", path);
    char hex[2 * CELLAR_DIGEST_MAX + 1];
    if (!S_ISDIR(st.st_mode)) {
        cellar_digests d;
        rc = cellar_hash_path(&d, path, &o);
        if (rc)
            return rc;
        cellar_digest_hex(hex, &d, algo);
        *out = cellar_sprintf("%s:%s", cellar_algo_name(algo), hex);
        return *out ? 0 : CELLAR_ENOMEM;
    }

    struct path_list files = {0};
    struct concat c = {.algo = algo};
    cellar_buf_init(&c.hex, 0);
    rc = walk(&files, path);
    if (rc == 0) {
        if (files.n)
            qsort(files.v, files.n, sizeof *files.v, path_cmp);
        rc = cellar_hash_paths((const char *const *)files.v, files.n, &o, concat_one, &c);
        if (rc == 0)
            rc = c.rc;
    }
    if (rc == 0) {
        cellar_blake3 b3;
        uint8_t digest[CELLAR_BLAKE3_OUT_LEN];
        cellar_blake3_init(&b3);
        cellar_blake3_update(&b3, c.hex.data ? c.hex.data : "", c.hex.len);
        cellar_blake3_finalize(&b3, digest, sizeof digest);
        cellar_hex(hex, digest, sizeof digest);
        *out = cellar_sprintf("%s:%s", cellar_algo_name(algo), hex);
        if (!*out)
            rc = CELLAR_ENOMEM;
    }
    cellar_buf_free(&c.hex);
    list_free(&files);
    return rc;
}
