/* verify: re-reads objects and checks their bytes against their names (and
 * the other digests and size the index recorded). It only reports: a
 * damaged object is still linked from users' folders, and deciding what to
 * do with their files is theirs. */
#include "store.h"

#include "store_index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct verify_ctx {
    cellar_store *s;
    cellar_verify_cb cb;
    void *ctx;
};

/* Tells the caller; a non-zero answer stops verify. */
static int tell(struct verify_ctx *c, const uint8_t sha256[32], int status, const char *msg)
{
    return c->cb(sha256, status, msg, c->ctx) ? cellar_stopped("verify") : 0;
}

/* Checks one object; CELLAR_EUSER if cb stopped it, or a store failure. */
static int check_one(const uint8_t sha256[32], const char *path, const struct stat *st,
                     void *vctx)
{
    struct verify_ctx *c = vctx;
    char hex[65], got[65];
    cellar_hex(hex, sha256, 32);
    cellar_digests rec;
    int known = index_blob_get(c->s->db, sha256, &rec);
    if (known < 0)
        return known;
    uint32_t algos = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256);
    if (known)
        algos |= rec.have & (CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3) | CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cellar_fail_errno(errno, "%s", path);
        return tell(c, sha256, CELLAR_EIO, cellar_error_last());
    }
    cellar_digests d;
    int rc = store_hash_fd(fd, path, st, algos, &d);
    close(fd);
    if (rc)
        return tell(c, sha256, rc, cellar_error_last());
    char msg[512];
    if (memcmp(d.d[CELLAR_ALGO_SHA256], sha256, 32) != 0) {
        cellar_hex(got, d.d[CELLAR_ALGO_SHA256], 32);
        snprintf(msg, sizeof msg, "object %s: its bytes hash to sha256 %s", hex, got);
        return tell(c, sha256, CELLAR_EMISMATCH, msg);
    }
    if (known && rec.size != d.size) {
        snprintf(msg, sizeof msg, "object %s: %llu bytes, the index says %llu", hex,
                 (unsigned long long)d.size, (unsigned long long)rec.size);
        return tell(c, sha256, CELLAR_EMISMATCH, msg);
    }
    for (int a = 0; known && a < CELLAR_ALGO__COUNT; a++) {
        if (a == CELLAR_ALGO_SHA256 || !(algos & CELLAR_ALGO_BIT(a)))
            continue;
        if (memcmp(d.d[a], rec.d[a], cellar_algo_len((cellar_algo)a)) != 0) {
            cellar_digest_hex(got, &d, (cellar_algo)a);
            snprintf(msg, sizeof msg, "object %s: its %s is %s, not the one recorded", hex,
                     cellar_algo_name((cellar_algo)a), got);
            return tell(c, sha256, CELLAR_EMISMATCH, msg);
        }
    }
    return tell(c, sha256, 0, "");
}

int cellar_store_verify(cellar_store *s, size_t n, const uint8_t (*sha256s)[32],
                        cellar_verify_cb cb, void *ctx)
{
    struct verify_ctx c = {s, cb, ctx};
    if (n == 0)
        return store_foreach_object(s, check_one, &c);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct stat st;
        int r = store_object_stat(s, sha256s[i], &st);
        if (r < 0)
            return r;
        char *path = store_object_path(s, sha256s[i]);
        if (!path)
            return CELLAR_ENOMEM;
        if (r == 0) {
            char hex[65], msg[128];
            cellar_hex(hex, sha256s[i], 32);
            snprintf(msg, sizeof msg, "sha256:%s: not in the store", hex);
            rc = tell(&c, sha256s[i], CELLAR_ENOTFOUND, msg);
        } else {
            rc = check_one(sha256s[i], path, &st, &c);
        }
        free(path);
    }
    return rc;
}
