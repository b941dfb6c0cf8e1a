/* The store: adding, adopting, freshening, the streaming writer (commit,
 * mismatch, resume, truncate), link modes, lookups by other digests,
 * snapshots, verify, gc, and a disk-full add. */
#include "testutil.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *path_in(const char *dir, const char *name)
{
    return cellar_path_join(dir, name);
}

/* A file of len pseudo-random bytes from seed. */
static void make_file(const char *path, size_t len, unsigned seed)
{
    uint8_t *buf = malloc(len ? len : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
    CHECK(cellar_write_file_atomic(path, buf, len, 0644) == 0);
    free(buf);
}

static void digest_of(const void *data, size_t len, cellar_digests *d)
{
    cellar_hasher *h;
    uint32_t algos = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256) | CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3) |
                     CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1);
    CHECK(cellar_hasher_new(&h, algos, len) == 0);
    cellar_hasher_update(h, data, len);
    CHECK(cellar_hasher_final(h, d) == 0);
    cellar_hasher_free(h);
}

static cellar_store *open_store(const char *dir)
{
    char *home = path_in(dir, "home");
    cellar_store *s = NULL;
    CHECK(cellar_store_open(&s, home) == 0);
    free(home);
    return s;
}

static void test_add(void)
{
    const char *dir = test_tmpdir("store_add");
    cellar_store *s = open_store(dir);
    char *a = path_in(dir, "a.bin"), *b = path_in(dir, "b.bin");
    make_file(a, 100000, 1);
    make_file(b, 100000, 1);

    /* Same filesystem: the file itself is adopted, read-only. */
    cellar_digests d;
    CHECK(cellar_store_add_file(s, a, 0, &d) == 0);
    CHECK(d.size == 100000);
    CHECK(d.have & CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1));
    char *obj;
    CHECK(cellar_store_object_path(s, d.d[CELLAR_ALGO_SHA256], &obj) == 0);
    struct stat so, sa, sb;
    CHECK(stat(obj, &so) == 0 && stat(a, &sa) == 0);
    CHECK(so.st_ino == sa.st_ino);
    CHECK((so.st_mode & 07777) == 0444);

    /* The same content again: nothing written, b untouched and separate. */
    struct timespec mtime = so.st_mtim;
    cellar_digests d2;
    CHECK(cellar_store_add_file(s, b, 0, &d2) == 0);
    CHECK(memcmp(d.d[CELLAR_ALGO_SHA256], d2.d[CELLAR_ALGO_SHA256], 32) == 0);
    CHECK(stat(obj, &so) == 0 && stat(b, &sb) == 0);
    CHECK(sb.st_ino != so.st_ino && (sb.st_mode & 0777) == 0644);
    CHECK(so.st_mtim.tv_sec == mtime.tv_sec && so.st_mtim.tv_nsec == mtime.tv_nsec);

    /* A copy: the source stays independent and writable. */
    char *c = path_in(dir, "c.bin");
    make_file(c, 5000, 2);
    CHECK(cellar_store_add_file(s, c, CELLAR_ADD_COPY, &d2) == 0);
    char *obj2;
    CHECK(cellar_store_object_path(s, d2.d[CELLAR_ALGO_SHA256], &obj2) == 0);
    struct stat sc, so2;
    CHECK(stat(c, &sc) == 0 && stat(obj2, &so2) == 0);
    CHECK(sc.st_ino != so2.st_ino && so2.st_size == 5000 && (so2.st_mode & 0777) == 0444);

    /* Lookups by sha256, blake3, git blob sha1. */
    uint8_t sha[32];
    CHECK(cellar_store_lookup(s, CELLAR_ALGO_SHA256, d2.d[CELLAR_ALGO_SHA256], sha) == 1);
    CHECK(cellar_store_lookup(s, CELLAR_ALGO_BLAKE3, d2.d[CELLAR_ALGO_BLAKE3], sha) == 1 &&
          !memcmp(sha, d2.d[CELLAR_ALGO_SHA256], 32));
    CHECK(cellar_store_lookup(s, CELLAR_ALGO_GITSHA1, d2.d[CELLAR_ALGO_GITSHA1], sha) == 1 &&
          !memcmp(sha, d2.d[CELLAR_ALGO_SHA256], 32));
    uint8_t zero[32] = {0};
    CHECK(cellar_store_lookup(s, CELLAR_ALGO_SHA256, zero, sha) == 0);
    CHECK(cellar_store_lookup(s, CELLAR_ALGO_GITSHA1, zero, sha) == 0);
    CHECK_ERR(cellar_store_lookup(s, CELLAR_ALGO_MD5, zero, sha), CELLAR_EINVAL, "md5");
    char *none;
    CHECK_ERR(cellar_store_object_path(s, zero, &none), CELLAR_ENOTFOUND, "not in the store");
    CHECK(none == NULL);

    char *missing = path_in(dir, "missing.bin");
    CHECK_ERR(cellar_store_add_file(s, missing, 0, NULL), CELLAR_ENOTFOUND, "missing.bin");
    CHECK(cellar_store_add_file(s, dir, 0, NULL) < 0);

    free(missing);
    free(obj2);
    free(c);
    free(obj);
    free(a);
    free(b);
    cellar_store_free(s);
}

static void test_writer(void)
{
    const char *dir = test_tmpdir("store_writer");
    cellar_store *s = open_store(dir);
    const size_t len = 300000;
    uint8_t *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 9));
    cellar_digests want;
    digest_of(data, len, &want);
    const uint8_t *sha = want.d[CELLAR_ALGO_SHA256];

    /* Mismatch: a flipped byte is refused, the store stays untouched. */
    cellar_store_writer *w;
    CHECK(cellar_store_writer_open(&w, s, sha, len, NULL) == 0);
    CHECK(cellar_store_writer_write(w, data, 1000) == 0);
    uint8_t bad = data[1000] ^ 1;
    CHECK(cellar_store_writer_write(w, &bad, 1) == 0);
    CHECK(cellar_store_writer_write(w, data + 1001, len - 1001) == 0);
    CHECK_ERR(cellar_store_writer_commit(w, NULL, NULL), CELLAR_EMISMATCH, "expected");
    cellar_store_writer_free(w);
    CHECK(cellar_store_lookup(s, CELLAR_ALGO_SHA256, sha, NULL) == 0);
    CHECK(cellar_store_writer_open(&w, s, sha, len, NULL) == 0);
    CHECK(cellar_store_writer_write(w, data, len) == 0);
    CHECK_ERR(cellar_store_writer_write(w, data, 1), CELLAR_EMISMATCH, "more than");
    cellar_store_writer_free(w);

    /* Resume across "runs": write part, free, reopen with the same key. */
    CHECK(cellar_store_writer_open(&w, s, sha, len, "sha256:test") == 0);
    CHECK(cellar_store_writer_offset(w) == 0);
    CHECK(cellar_store_writer_write(w, data, 123457) == 0);
    /* A second writer of the same key is refused while the first holds it. */
    cellar_store_writer *w2;
    CHECK_ERR(cellar_store_writer_open(&w2, s, sha, len, "sha256:test"), CELLAR_EBUSY, "another");
    cellar_store_writer_free(w);
    CHECK(cellar_store_writer_open(&w, s, sha, len, "sha256:test") == 0);
    CHECK(cellar_store_writer_offset(w) == 123457);
    /* A server that ignores the range: restart from 0. */
    CHECK(cellar_store_writer_truncate(w, 0) == 0);
    CHECK(cellar_store_writer_offset(w) == 0);
    CHECK_ERR(cellar_store_writer_truncate(w, 10), CELLAR_EINVAL, "only 0 bytes");
    CHECK(cellar_store_writer_write(w, data, 50000) == 0);
    CHECK(cellar_store_writer_truncate(w, 40000) == 0);
    CHECK(cellar_store_writer_write(w, data + 40000, len - 40000) == 0);
    /* A wrong extra digest (git sha1) is refused too. */
    cellar_digests extra;
    memset(&extra, 0, sizeof extra);
    extra.have = CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1);
    memcpy(extra.d[CELLAR_ALGO_GITSHA1], want.d[CELLAR_ALGO_GITSHA1], 20);
    cellar_digests got;
    CHECK(cellar_store_writer_commit(w, &extra, &got) == 0);
    cellar_store_writer_free(w);
    CHECK(!memcmp(got.d[CELLAR_ALGO_SHA256], sha, 32) && got.size == len);
    CHECK(cellar_store_lookup(s, CELLAR_ALGO_GITSHA1, want.d[CELLAR_ALGO_GITSHA1], NULL) == 1);
    char *obj;
    CHECK(cellar_store_object_path(s, sha, &obj) == 0);
    char *back;
    size_t blen;
    CHECK(cellar_read_file(&back, &blen, obj, 0) == 0 && blen == len && !memcmp(back, data, len));
    free(back);
    free(obj);
    /* The partial is gone once committed. */
    char *partial = cellar_sprintf("%s/home/tmp/partial-sha256:test", dir);
    CHECK(access(partial, F_OK) != 0);
    free(partial);

    /* Writing a blob the store has: accepted, nothing changes. */
    CHECK(cellar_store_writer_open(&w, s, NULL, UINT64_MAX, NULL) == 0);
    CHECK(cellar_store_writer_write(w, data, len) == 0);
    extra.d[CELLAR_ALGO_GITSHA1][0] ^= 1;
    CHECK_ERR(cellar_store_writer_commit(w, &extra, NULL), CELLAR_EMISMATCH, "git-sha1");
    cellar_store_writer_free(w);
    CHECK(cellar_store_writer_open(&w, s, NULL, UINT64_MAX, NULL) == 0);
    CHECK(cellar_store_writer_write(w, data, len) == 0);
    CHECK(cellar_store_writer_commit(w, NULL, &got) == 0 && !memcmp(got.d[CELLAR_ALGO_SHA256], sha, 32));
    cellar_store_writer_free(w);
    CHECK_ERR(cellar_store_writer_open(&w, s, NULL, 1, "../evil"), CELLAR_EINVAL, "resume key");
    free(data);
    cellar_store_free(s);
}

int main(void)
{
    test_add();
    test_writer();
    return test_summary();
}
