/* The hashing engine: known answers for every algorithm (git blob id too),
 * the streaming hasher fed in odd pieces against one shot, one pass of
 * several digests against separate runs on every path (threaded, single
 * thread, mapped, BLAKE3 tree, byte ranges), files changing under the
 * hasher, the hash cache and the database's schema handling. */
#include "db.h"
#include "digest.h"
#include "testutil.h"
#include "util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void hex_of(char *out, const cellar_digests *d, cellar_algo a)
{
    cellar_digest_hex(out, d, a);
}

static void oneshot(cellar_digests *d, uint32_t algos, const void *p, size_t n)
{
    cellar_hasher *h;
    int rc = cellar_hasher_new(&h, algos, n);
    CHECK(rc == 0);
    if (rc)
        return;
    cellar_hasher_update(h, p, n);
    CHECK(cellar_hasher_final(d, h) == 0);
    cellar_hasher_free(h);
}

/* A hash cache in memory, through the public two-function interface: the
 * engine must work with any implementation, not only the store's. */
#define MEMCACHE_MAX 256
static struct memcache {
    cellar_hash_cache_entry rows[MEMCACHE_MAX];
    char labels[MEMCACHE_MAX][16];
    size_t n;
    size_t lookups, records; /* calls */
    bool fail;               /* every call fails: hashing must not care */
} mem;

static bool same_key(const cellar_hash_cache_entry *a, const cellar_hash_cache_entry *b)
{
    return a->file.dev == b->file.dev && a->file.ino == b->file.ino && !strcmp(a->label, b->label);
}

static int mem_lookup(cellar_hash_cache_entry *e, size_t n, void *ctx)
{
    struct memcache *m = ctx;
    m->lookups++;
    if (m->fail)
        return CELLAR_EIO;
    for (size_t i = 0; i < n; i++) {
        e[i].len = -1;
        for (size_t k = 0; k < m->n; k++)
            if (same_key(&m->rows[k], &e[i]) && !memcmp(&m->rows[k].file, &e[i].file,
                                                        sizeof e[i].file)) {
                e[i].len = m->rows[k].len;
                memcpy(e[i].digest, m->rows[k].digest, (size_t)e[i].len);
            }
    }
    return 0;
}

static int mem_record(const cellar_hash_cache_entry *e, size_t n, void *ctx)
{
    struct memcache *m = ctx;
    m->records++;
    if (m->fail)
        return CELLAR_EIO;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < m->n && !same_key(&m->rows[k], &e[i]))
            k++;
        if (k == MEMCACHE_MAX)
            return CELLAR_ENOMEM;
        m->rows[k] = e[i];
        snprintf(m->labels[k], sizeof m->labels[k], "%s", e[i].label);
        m->rows[k].label = m->labels[k];
        if (k == m->n)
            m->n++;
    }
    return 0;
}

static const cellar_hash_cache memcache = {CELLAR_HASH_CACHE_VERSION, mem_lookup, mem_record, &mem};

/* The digest mem holds for the file st and label, length or -1. */
static int mem_get(const struct stat *st, const char *label, uint8_t *out)
{
    cellar_hash_cache_entry e = {.label = label};
    digest_file_id(&e.file, st);
    mem_lookup(&e, 1, &mem);
    if (e.len > 0)
        memcpy(out, e.digest, (size_t)e.len);
    return e.len;
}

static void test_known_answers(void)
{
    static const struct {
        const char *input;
        cellar_algo algo;
        const char *hex;
    } kat[] = {
        {"", CELLAR_ALGO_BLAKE3, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
        {"", CELLAR_ALGO_SHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"", CELLAR_ALGO_SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"", CELLAR_ALGO_MD5, "d41d8cd98f00b204e9800998ecf8427e"},
        {"", CELLAR_ALGO_CRC32, "00000000"},
        {"", CELLAR_ALGO_GITSHA1, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"},
        {"hello world", CELLAR_ALGO_BLAKE3,
         "d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24"},
        {"hello world", CELLAR_ALGO_SHA256,
         "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"},
        {"hello world", CELLAR_ALGO_SHA1, "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"},
        {"hello world", CELLAR_ALGO_MD5, "5eb63bbbe01eeed093cb22bb8f5acdc3"},
        {"hello world", CELLAR_ALGO_CRC32, "0d4a1185"},
        {"hello world", CELLAR_ALGO_GITSHA1, "95d09f2b10159347eece71399a7e2e907ea3df4f"},
        {"hello world\n", CELLAR_ALGO_GITSHA1, "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"},
        {"abc", CELLAR_ALGO_SHA256,
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        cellar_digests d;
        char hex[2 * CELLAR_DIGEST_MAX + 1];
        oneshot(&d, CELLAR_ALGO_BIT(kat[i].algo), kat[i].input, strlen(kat[i].input));
        hex_of(hex, &d, kat[i].algo);
        CHECK_STR(hex, kat[i].hex);
        CHECK(d.size == strlen(kat[i].input));
    }
}

static void test_names(void)
{
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++) {
        cellar_algo back;
        CHECK(cellar_algo_parse(&back, cellar_algo_name((cellar_algo)a)) == 0 && back == a);
        CHECK(cellar_algo_len((cellar_algo)a) > 0 &&
              cellar_algo_len((cellar_algo)a) <= CELLAR_DIGEST_MAX);
    }
    cellar_algo a;
    CHECK_ERR(cellar_algo_parse(&a, "sha512"), CELLAR_EINVAL, "unknown algorithm 'sha512'");
    CHECK(cellar_algo_len(CELLAR_ALGO_CRC32) == 4);
    CHECK_STR(cellar_algo_name(CELLAR_ALGO_GITSHA1), "git-sha1");

    cellar_hasher *h;
    CHECK_ERR(cellar_hasher_new(&h, 0, 0), CELLAR_EINVAL, "no known algorithm");
    CHECK_ERR(cellar_hasher_new(&h, CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1), UINT64_MAX),
              CELLAR_EUNSUPPORTED, "needs the size");
    CHECK(cellar_hasher_new(&h, CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1), 5) == 0);
    cellar_hasher_update(h, "abcd", 4);
    cellar_digests d;
    CHECK_ERR(cellar_hasher_final(&d, h), CELLAR_EMISMATCH, "4 bytes hashed, 5 announced");
    cellar_hasher_free(h);
    cellar_hasher_free(NULL);
}

static uint8_t *pattern(size_t n, uint32_t seed)
{
    uint8_t *p = malloc(n);
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (uint8_t)(x >> 24);
    }
    return p;
}

static void test_pieces(void)
{
    const size_t n = 3 * 1024 * 1024 + 17;
    uint8_t *p = pattern(n, 1);
    cellar_digests whole, pieces, alone;
    oneshot(&whole, CELLAR_ALGO_ALL, p, n);
    static const size_t sizes[] = {1, 7, 63, 64, 65, 1023, 1024, 1025, 4096, 65537, 300001};
    cellar_hasher *h;
    CHECK(cellar_hasher_new(&h, CELLAR_ALGO_ALL, n) == 0);
    for (size_t off = 0, k = 0; off < n; k++) {
        size_t len = sizes[k % (sizeof sizes / sizeof sizes[0])];
        if (len > n - off)
            len = n - off;
        cellar_hasher_update(h, p + off, len);
        off += len;
    }
    CHECK(cellar_hasher_final(&pieces, h) == 0);
    cellar_hasher_free(h);
    CHECK(pieces.have == CELLAR_ALGO_ALL && pieces.size == n);
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++) {
        CHECK_MSG(!memcmp(whole.d[a], pieces.d[a], CELLAR_DIGEST_MAX), "%s pieces",
                  cellar_algo_name((cellar_algo)a));
        oneshot(&alone, CELLAR_ALGO_BIT(a), p, n);
        CHECK_MSG(!memcmp(whole.d[a], alone.d[a], cellar_algo_len((cellar_algo)a)),
                  "%s alone vs together", cellar_algo_name((cellar_algo)a));
    }
    free(p);
}

static char *write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char *path = cellar_path_join(dir, name);
    CHECK(cellar_write_file_atomic(path, p, n, 0644) == 0);
    return path;
}

/* Every way through the file engine gives the hasher's digests. */
static void test_files(const char *dir)
{
    /* Over THREAD_MIN (16 MiB) so that lanes go to threads. */
    const size_t n = 20 * 1024 * 1024 + 3;
    uint8_t *p = pattern(n, 2);
    char *path = write_file(dir, "big.bin", p, n);
    cellar_digests want;
    oneshot(&want, CELLAR_ALGO_ALL, p, n);

    static const struct {
        uint32_t flags;
        unsigned nthreads;
    } ways[] = {{CELLAR_HASH_NO_CACHE, 0},
                {CELLAR_HASH_NO_CACHE, 1},
                {CELLAR_HASH_NO_CACHE, 3},
                {CELLAR_HASH_NO_CACHE | CELLAR_HASH_MMAP, 1},
                {CELLAR_HASH_NO_CACHE | CELLAR_HASH_MMAP, 2}};
    for (size_t w = 0; w < sizeof ways / sizeof ways[0]; w++) {
        cellar_hash_opts o = {.version = CELLAR_HASH_OPTS_VERSION, .algos = CELLAR_ALGO_ALL, .flags = ways[w].flags,
                              .nthreads = ways[w].nthreads};
        cellar_digests got;
        CHECK(cellar_hash_path(&got, path, &o) == 0);
        CHECK(got.have == CELLAR_ALGO_ALL && got.size == n && got.cached == 0);
        for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++)
            CHECK_MSG(!memcmp(want.d[a], got.d[a], cellar_algo_len((cellar_algo)a)),
                      "%s, way %zu", cellar_algo_name((cellar_algo)a), w);
        /* each algorithm on its own: blake3 alone takes the mapped tree path */
        for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++) {
            o.algos = CELLAR_ALGO_BIT(a);
            CHECK(cellar_hash_path(&got, path, &o) == 0);
            CHECK_MSG(!memcmp(want.d[a], got.d[a], cellar_algo_len((cellar_algo)a)),
                      "%s alone, way %zu", cellar_algo_name((cellar_algo)a), w);
        }
    }

    /* byte ranges, clamped like Python slices */
    int fd;
    struct stat st;
    CHECK(digest_open(&fd, &st, path) == 0);
    digest_lane lanes[] = {
        {.algo = CELLAR_ALGO_SHA256, .start = 0x100000, .end = 0x110000},
        {.algo = CELLAR_ALGO_SHA256, .start = 12345, .end = UINT64_MAX},
        {.algo = CELLAR_ALGO_MD5, .start = n - 5, .end = n + 100},
        {.algo = CELLAR_ALGO_CRC32, .start = n + 1, .end = n + 2},
        {.algo = CELLAR_ALGO_BLAKE3, .start = 0, .end = UINT64_MAX},
    };
    for (unsigned threads = 1; threads <= 2; threads++) {
        CHECK(digest_lanes_fd(lanes, 5, fd, path, &st, 0, threads, NULL) == 0);
        cellar_digests d;
        oneshot(&d, CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256), p + 0x100000, 0x10000);
        CHECK(!memcmp(lanes[0].out, d.d[CELLAR_ALGO_SHA256], 32));
        oneshot(&d, CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256), p + 12345, n - 12345);
        CHECK(!memcmp(lanes[1].out, d.d[CELLAR_ALGO_SHA256], 32));
        oneshot(&d, CELLAR_ALGO_BIT(CELLAR_ALGO_MD5), p + n - 5, 5);
        CHECK(!memcmp(lanes[2].out, d.d[CELLAR_ALGO_MD5], 16));
        oneshot(&d, CELLAR_ALGO_BIT(CELLAR_ALGO_CRC32), "", 0);
        CHECK(!memcmp(lanes[3].out, d.d[CELLAR_ALGO_CRC32], 4));
        CHECK(!memcmp(lanes[4].out, want.d[CELLAR_ALGO_BLAKE3], 32));
    }
    close(fd);

    /* A stream (a pipe): read to the end; git-sha1 cannot be streamed. */
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    CHECK(write(pfd[1], "hello world", 11) == 11);
    close(pfd[1]);
    cellar_hash_opts o = {.version = CELLAR_HASH_OPTS_VERSION, .algos = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256)};
    cellar_digests got;
    char hex[65];
    CHECK(cellar_hash_fd(&got, pfd[0], "pipe", &o) == 0);
    hex_of(hex, &got, CELLAR_ALGO_SHA256);
    CHECK_STR(hex, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
    close(pfd[0]);
    CHECK(pipe(pfd) == 0);
    close(pfd[1]);
    o.algos = CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1);
    CHECK_ERR(cellar_hash_fd(&got, pfd[0], "pipe", &o), CELLAR_EUNSUPPORTED, "needs the size");
    close(pfd[0]);

    free(path);
    free(p);
}

static void wait_past_racy_window(void);

struct scribbler {
    const char *path;
    atomic_bool stop;
};

static void *scribble(void *arg)
{
    struct scribbler *s = arg;
    int fd = open(s->path, O_WRONLY);
    for (unsigned i = 0; !atomic_load(&s->stop); i++) {
        uint8_t b = (uint8_t)i;
        if (pwrite(fd, &b, 1, 4096) != 1)
            break;
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL);
    }
    close(fd);
    return NULL;
}

static void test_changes(const char *dir)
{
    const size_t n = 4 * 1024 * 1024;
    uint8_t *p = pattern(n, 3);
    char *path = write_file(dir, "moving.bin", p, n);
    int fd;
    struct stat st;

    /* Grows after the stat the pass started from. */
    CHECK(digest_open(&fd, &st, path) == 0);
    int afd = open(path, O_WRONLY | O_APPEND);
    CHECK(write(afd, "x", 1) == 1);
    close(afd);
    digest_lane lane = {.algo = CELLAR_ALGO_SHA256, .start = 0, .end = UINT64_MAX};
    CHECK_ERR(digest_lanes_fd(&lane, 1, fd, path, &st, 0, 1, NULL), CELLAR_ECHANGED,
              "moving.bin: file changed while it was hashed");
    close(fd);

    /* Shrinks below the size the pass expects. */
    CHECK(digest_open(&fd, &st, path) == 0);
    CHECK(truncate(path, 1000) == 0);
    lane = (digest_lane){.algo = CELLAR_ALGO_MD5, .start = 0, .end = UINT64_MAX};
    CHECK_ERR(digest_lanes_fd(&lane, 1, fd, path, &st, 0, 2, NULL), CELLAR_ECHANGED,
              "moving.bin: file shrank while it was read");
    close(fd);

    /* Written to (same size) by another thread while it is hashed. */
    free(path);
    path = write_file(dir, "moving.bin", p, n);
    struct scribbler s = {.path = path};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, scribble, &s) == 0);
    struct timespec pause = {0, 20000000};
    nanosleep(&pause, NULL);
    cellar_hash_opts o = {.version = CELLAR_HASH_OPTS_VERSION,
                          .algos = CELLAR_ALGO_BIT(CELLAR_ALGO_MD5) | CELLAR_ALGO_BIT(CELLAR_ALGO_SHA1),
                          .cache = &memcache};
    cellar_digests d;
    /* On a loaded machine the writer may not run during a pass, so try for
     * a while (bounded) rather than a fixed number of passes. */
    int rc = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        rc = cellar_hash_path(&d, path, &o);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (rc == 0 && now.tv_sec - t0.tv_sec < 20);
    atomic_store(&s.stop, true);
    pthread_join(t, NULL);
    CHECK_ERR(rc, CELLAR_ECHANGED, "changed while it was hashed");
    /* Whatever the passes that saw no change cached, the cache never holds a
     * digest other than the file's current one. */
    wait_past_racy_window();
    CHECK(stat(path, &st) == 0);
    uint8_t out[CELLAR_DIGEST_MAX];
    if (mem_get(&st, "md5", out) >= 0) {
        cellar_hash_opts fresh = {.version = CELLAR_HASH_OPTS_VERSION, .algos = CELLAR_ALGO_BIT(CELLAR_ALGO_MD5),
                                  .flags = CELLAR_HASH_NO_CACHE};
        CHECK(cellar_hash_path(&d, path, &fresh) == 0);
        CHECK(memcmp(out, d.d[CELLAR_ALGO_MD5], 16) == 0);
    }
    free(path);
    free(p);
}

/* The cache ignores files changed within the last clock tick or so. */
static void wait_past_racy_window(void)
{
    struct timespec t = {0, 120000000};
    nanosleep(&t, NULL);
}

static void test_cache(const char *dir)
{
    char *path = write_file(dir, "cached.bin", "cache me", 8);
    wait_past_racy_window();
    cellar_hash_opts o = {.version = CELLAR_HASH_OPTS_VERSION,
                          .algos = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256) |
                                   CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3),
                          .cache = &memcache};
    cellar_digests first, second, third;
    CHECK(cellar_hash_path(&first, path, &o) == 0);
    CHECK(first.cached == 0);
    CHECK(cellar_hash_path(&second, path, &o) == 0);
    CHECK(second.cached == o.algos && second.have == o.algos && second.size == 8);
    CHECK(!memcmp(first.d, second.d, sizeof first.d));
    /* one more algorithm: the cached one is reused, the other computed */
    o.algos |= CELLAR_ALGO_BIT(CELLAR_ALGO_MD5);
    CHECK(cellar_hash_path(&third, path, &o) == 0);
    CHECK(third.cached == (o.algos & ~CELLAR_ALGO_BIT(CELLAR_ALGO_MD5)));
    char hex[33];
    hex_of(hex, &third, CELLAR_ALGO_MD5);
    cellar_digests want;
    oneshot(&want, CELLAR_ALGO_BIT(CELLAR_ALGO_MD5), "cache me", 8);
    CHECK(!memcmp(third.d[CELLAR_ALGO_MD5], want.d[CELLAR_ALGO_MD5], 16));
    /* --no-cache bypasses it */
    o.flags = CELLAR_HASH_NO_CACHE;
    CHECK(cellar_hash_path(&third, path, &o) == 0 && third.cached == 0);
    o.flags = 0;

    /* same size, new content: a miss, and the new digest */
    free(path);
    path = write_file(dir, "cached.bin", "cache it", 8);
    wait_past_racy_window();
    CHECK(cellar_hash_path(&third, path, &o) == 0);
    CHECK(third.cached == 0);
    oneshot(&want, CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256), "cache it", 8);
    CHECK(!memcmp(third.d[CELLAR_ALGO_SHA256], want.d[CELLAR_ALGO_SHA256], 32));

    /* just written: hashed, not cached (a write in the same tick would
     * leave mtime and ctime as they are) */
    free(path);
    path = write_file(dir, "fresh.bin", "fresh", 5);
    CHECK(cellar_hash_path(&first, path, &o) == 0);
    CHECK(cellar_hash_path(&second, path, &o) == 0);
    CHECK(second.cached == 0);

    /* no cache given: nothing consulted or recorded */
    size_t calls = mem.lookups + mem.records;
    o.cache = NULL;
    CHECK(cellar_hash_path(&third, path, &o) == 0 && third.cached == 0);
    CHECK(cellar_hash_path(&third, path, NULL) == 0 && third.cached == 0);
    CHECK(mem.lookups + mem.records == calls);
    /* a failing cache costs time, never a result, and leaves no error */
    wait_past_racy_window();
    o.cache = &memcache;
    mem.fail = true;
    cellar_error_clear();
    CHECK(cellar_hash_path(&third, path, &o) == 0 && third.cached == 0);
    CHECK(cellar_error_code() == 0);
    CHECK(mem.lookups + mem.records == calls + 2);
    mem.fail = false;
    /* options of an unknown version are refused */
    o.version = 99;
    CHECK_ERR(cellar_hash_path(&third, path, &o), CELLAR_EINVAL, "CELLAR_HASH_OPTS_INIT");
    cellar_hash_opts init = CELLAR_HASH_OPTS_INIT;
    CHECK(init.version == CELLAR_HASH_OPTS_VERSION && init.cache == NULL && init.algos == 0);
    free(path);
}

struct seen {
    size_t stop_at; /* 0: never; else stop after that many calls */
    size_t calls, cached;
    bool in_order;
    int rcs[4];
    char hex[4][65];
};

static int each(size_t i, int rc, const cellar_digests *d, const char *message, void *ctx)
{
    struct seen *s = ctx;
    s->in_order &= i == s->calls;
    s->calls++;
    s->cached += rc == 0 && d->cached == d->have;
    if (i < 4) {
        s->rcs[i] = rc;
        cellar_digest_hex(s->hex[i], d, CELLAR_ALGO_SHA256);
        if (i == 1)
            CHECK(strstr(message, "nope.bin: No such file or directory") != NULL);
        if (i == 3)
            CHECK(strstr(message, "digest: Is a directory") != NULL);
    }
    return s->stop_at && s->calls >= s->stop_at;
}

static void test_many(const char *dir)
{
    char *a = write_file(dir, "a.txt", "abc", 3);
    char *b = write_file(dir, "b.txt", "", 0);
    char *missing = cellar_path_join(dir, "nope.bin");
    const char *paths[] = {a, missing, b, dir};
    struct seen s = {.in_order = true};
    cellar_hash_opts o = {.version = CELLAR_HASH_OPTS_VERSION,
                          .algos = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256),
                          .nthreads = 3,
                          .cache = &memcache};
    size_t lookups = mem.lookups;
    CHECK(cellar_hash_paths(paths, 4, &o, each, &s) == 0);
    CHECK(mem.lookups == lookups + 1); /* the window's files in one call */
    CHECK(s.calls == 4 && s.in_order);
    CHECK(s.rcs[0] == 0 && s.rcs[1] == CELLAR_ENOTFOUND && s.rcs[2] == 0 &&
          s.rcs[3] == CELLAR_EUNSUPPORTED);
    CHECK_STR(s.hex[0], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_STR(s.hex[2], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(s.cached == 0);
    /* Again, past the racy window: both files come from the cache. */
    struct timespec t = {0, 120000000};
    nanosleep(&t, NULL);
    CHECK(cellar_hash_paths(paths, 4, &o, each, &(struct seen){.in_order = true}) == 0);
    s = (struct seen){.in_order = true};
    CHECK(cellar_hash_paths(paths, 4, &o, each, &s) == 0);
    CHECK(s.calls == 4 && s.in_order && s.cached == 2);
    CHECK_STR(s.hex[0], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(s.rcs[1] == CELLAR_ENOTFOUND && s.rcs[3] == CELLAR_EUNSUPPORTED);
    /* A non-zero answer stops the run: CELLAR_EUSER, no call after it. */
    s = (struct seen){.in_order = true, .stop_at = 2};
    CHECK_ERR(cellar_hash_paths(paths, 4, &o, each, &s), CELLAR_EUSER, "stopped by the caller");
    CHECK(s.calls == 2 && s.in_order);
    free(a);
    free(b);
    free(missing);
}

static const char *const steps_v2[] = {"CREATE TABLE t1 (a INTEGER)",
                                      "CREATE TABLE t2 (b INTEGER)"};

static int64_t query(cellar_db *db, const char *sql)
{
    cellar_db_stmt *s;
    int64_t v = -1;
    if (cellar_db_prepare(&s, db, sql) == 0 && cellar_db_step(s) == 1)
        v = cellar_db_column_int64(s, 0);
    cellar_db_finalize(s);
    return v;
}

static void test_db(const char *dir)
{
    char *path = cellar_path_join(dir, "sub/dir/test.db");
    cellar_db *db;
    CHECK(cellar_db_open(&db, path) == 0);
    cellar_db_stmt *s;
    CHECK(cellar_db_prepare(&s, db, "PRAGMA journal_mode") == 0);
    CHECK(cellar_db_step(s) == 1 && !strcmp(cellar_db_column_text(s, 0), "wal"));
    cellar_db_finalize(s);
    /* each module its own list; a rerun changes nothing */
    CHECK(cellar_db_migrate(db, "mod", steps_v2, 1) == 0);
    CHECK(query(db, "SELECT version FROM cellar_schema WHERE module = 'mod'") == 1);
    CHECK(cellar_db_migrate(db, "mod", steps_v2, 2) == 0);
    CHECK(cellar_db_migrate(db, "mod", steps_v2, 2) == 0);
    CHECK(query(db, "SELECT count(*) FROM t2") == 0);
    CHECK(cellar_db_migrate(db, "other", steps_v2, 0) == 0);
    /* a module newer than this code is refused, not downgraded */
    CHECK_ERR(cellar_db_migrate(db, "mod", steps_v2, 1), CELLAR_EDB,
              "mod schema version 2 is newer");
    CHECK_ERR(cellar_db_exec(db, "SELECT * FROM no_such_table"), CELLAR_EDB, "no_such_table");
    /* and so is a database from a newer cellar */
    CHECK(cellar_db_exec(db, "PRAGMA user_version = 9999") == 0);
    CHECK_ERR(cellar_db_migrate(db, "new", steps_v2, 1), CELLAR_EDB,
              "schema version 9999 is newer");
    cellar_db_close(db);
    cellar_db_close(NULL);

    /* cellar 0.1's numbering (user_version 2: hash cache and store index)
     * carries over: the modules' first migrations are not run again */
    char *old = cellar_path_join(dir, "old.db");
    CHECK(cellar_db_open(&db, old) == 0);
    CHECK(cellar_db_exec(db, "CREATE TABLE hash_cache (x); CREATE TABLE blobs (y);"
                             "PRAGMA user_version = 2") == 0);
    static const char *const again[] = {"CREATE TABLE hash_cache (x)"};
    static const char *const again2[] = {"CREATE TABLE blobs (y)", "CREATE TABLE z (z)"};
    CHECK(cellar_db_migrate(db, "hash_cache", again, 1) == 0);
    CHECK(cellar_db_migrate(db, "store_index", again2, 2) == 0);
    CHECK(query(db, "SELECT count(*) FROM z") == 0);
    CHECK(query(db, "PRAGMA user_version") == 3);
    cellar_db_close(db);
    free(old);

    /* after fork() the child gets a connection of its own */
    CHECK(cellar_db_open(&db, path) == 0);
    CHECK(cellar_db_exec(db, "CREATE TABLE IF NOT EXISTS f (pid INTEGER)") == 0);
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "INSERT INTO f VALUES (%d)", (int)getpid());
        _exit(cellar_db_exec(db, sql) == 0 ? 0 : 1);
    }
    int status = -1;
    CHECK(child > 0 && waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(query(db, "SELECT count(*) FROM f") == 1);
    cellar_db_close(db);

    CHECK_ERR(cellar_db_open(&db, NULL), CELLAR_EINVAL, "no path");
    char *blocked = cellar_path_join(dir, "a.txt/x.db"); /* a.txt is a file */
    CHECK(cellar_db_open(&db, blocked) != 0);
    free(blocked);
    free(path);
}

/* Progress: calls counted, the last report kept, stop after `stop_after`
 * calls (0: never). */
struct prog {
    int calls, stop_after;
    cellar_progress last;
    char path[256];
};

static int on_prog(const cellar_progress *p, void *ctx)
{
    struct prog *g = ctx;
    g->calls++;
    g->last = *p;
    snprintf(g->path, sizeof g->path, "%s", p->path ? p->path : "");
    return g->stop_after && g->calls >= g->stop_after;
}

/* Every way a file is read (one thread, lanes on threads, the BLAKE3 tree,
 * a pipe) reports its bytes and stops at the first non-zero answer with
 * CELLAR_EUSER naming the file; a run left alone ends with a report of the
 * whole file and the same digests as without a callback. */
static void test_progress(const char *dir)
{
    size_t n = (20u << 20) + 5; /* over THREAD_MIN: threads and the tree apply */
    uint8_t *p = pattern(n, 7);
    char *path = write_file(dir, "progress.bin", p, n);
    static const struct {
        uint32_t algos;
        unsigned nthreads;
    } ways[] = {
        {CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3), 2}, /* the tree */
        {CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256) | CELLAR_ALGO_BIT(CELLAR_ALGO_MD5), 2}, /* lanes */
        {CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256), 1}, /* one thread */
    };
    for (size_t w = 0; w < sizeof ways / sizeof *ways; w++) {
        cellar_hash_opts o = CELLAR_HASH_OPTS_INIT;
        o.algos = ways[w].algos;
        o.nthreads = ways[w].nthreads;
        o.flags = CELLAR_HASH_NO_CACHE;
        cellar_digests want, got;
        CHECK(cellar_hash_path(&want, path, &o) == 0);
        struct prog g = {.stop_after = 1};
        o.progress = on_prog;
        o.progress_ctx = &g;
        CHECK_ERR(cellar_hash_path(&got, path, &o), CELLAR_EUSER, "progress.bin: stopped");
        CHECK_MSG(g.calls == 1 && g.last.bytes_total == n && g.last.bytes_done < n,
                  "way %zu: %d calls, %llu of %llu", w, g.calls,
                  (unsigned long long)g.last.bytes_done, (unsigned long long)g.last.bytes_total);
        g = (struct prog){0};
        CHECK(cellar_hash_path(&got, path, &o) == 0);
        CHECK(g.calls >= 1 && g.last.bytes_done == n && g.last.bytes_total == n &&
              strstr(g.path, "progress.bin") != NULL);
        CHECK(got.have == want.have && !memcmp(got.d, want.d, sizeof got.d));
    }
    /* A stream: bytes so far, no total. */
    int fds[2];
    CHECK(pipe(fds) == 0);
    CHECK(write(fds[1], p, 4096) == 4096);
    close(fds[1]);
    struct prog g = {.stop_after = 1};
    cellar_hash_opts o = CELLAR_HASH_OPTS_INIT;
    o.progress = on_prog;
    o.progress_ctx = &g;
    cellar_digests d;
    CHECK_ERR(cellar_hash_fd(&d, fds[0], "the pipe", &o), CELLAR_EUSER, "the pipe: stopped");
    CHECK(g.calls == 1 && g.last.bytes_done == 4096 && g.last.bytes_total == 0);
    close(fds[0]);
    unlink(path);
    free(path);
    free(p);
}

int main(void)
{
    const char *dir = test_tmpdir("digest");
    test_known_answers();
    test_names();
    test_pieces();
    test_files(dir);
    test_changes(dir);
    test_cache(dir);
    test_many(dir);
    test_progress(dir);
    test_db(dir);
    return test_summary();
}
