/* Digests: sha256, sha1, md5 (OpenSSL's libcrypto, which uses the SHA
 * extensions where the CPU has them), crc32 (ours, carry-less multiply:
 * crc32.c), the git blob id, BLAKE3 (ours), and the file-hashing engine on
 * top of them.
 *
 * The only file that includes OpenSSL headers.
 *
 * A pass over a file feeds "lanes" (an algorithm over a byte range), so
 * that several digests cost one read. Bytes are pread into a buffer that
 * stays in L2 while every lane of a thread hashes it: with the page cache
 * warm, that is faster than hashing a memory map straight out of DRAM
 * (sha256 1.6x here; BLAKE3 about 2x, see docs/blake3.md), so mapping is an
 * option (CELLAR_HASH_MMAP), not the default. Lanes of a large file are
 * spread over threads by estimated cost; each thread reads for itself and
 * stays within STEP_WINDOW of the slowest, so a cold file is still read
 * from disk about once. A lone BLAKE3 of a large file runs on the tree
 * hasher's threads instead. Before and after a pass fstat must agree: a
 * file that changed under us is reported, never cached. */
#include "digest.h"

#include "blake3.h"
#include "crc32.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define MMAP_MIN ((uint64_t)1 << 20)      /* below this mapping costs more than it saves */
#define THREAD_MIN ((uint64_t)16 << 20)   /* below this threads cost more than they save */
#define READ_BUF ((size_t)256 << 10)      /* stays in L2 while every lane hashes it */
#define STEP ((uint64_t)8 << 20)          /* threaded walk: progress published per step */
#define STEP_WINDOW ((uint64_t)256 << 20) /* max lead of a lane over the slowest */
#define RACY_NS 50000000LL                /* > one tick of the kernel's coarse clock */
#define STORE_BATCH 4096                  /* cache rows written per transaction, at most */
#define BATCH_WINDOW 8192                 /* paths in flight at once: bounds memory */

/* ---- algorithms ---------------------------------------------------------- */

static const struct algo_info {
    const char *name;
    size_t len;
    double cost; /* relative CPU time per byte, for spreading lanes over threads */
} algos[CELLAR_ALGO__COUNT] = {
    [CELLAR_ALGO_BLAKE3] = {"blake3", 32, 0.3},
    [CELLAR_ALGO_SHA256] = {"sha256", 32, 1.0},
    [CELLAR_ALGO_SHA1] = {"sha1", 20, 0.9},
    [CELLAR_ALGO_MD5] = {"md5", 16, 1.2},
    [CELLAR_ALGO_CRC32] = {"crc32", 4, 0.15},
    [CELLAR_ALGO_GITSHA1] = {"git-sha1", 20, 0.9},
};

const char *cellar_algo_name(cellar_algo a)
{
    return (unsigned)a < CELLAR_ALGO__COUNT ? algos[a].name : "unknown";
}

size_t cellar_algo_len(cellar_algo a)
{
    return (unsigned)a < CELLAR_ALGO__COUNT ? algos[a].len : 0;
}

int cellar_algo_parse(cellar_algo *out, const char *name)
{
    if (!name)
        return cellar_fail(CELLAR_EINVAL, "no algorithm name");
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++) {
        if (!strcmp(name, algos[a].name)) {
            *out = (cellar_algo)a;
            return 0;
        }
    }
    /* git's own spelling of the blob id, and b3sum's */
    if (!strcmp(name, "gitsha1") || !strcmp(name, "git")) {
        *out = CELLAR_ALGO_GITSHA1;
        return 0;
    }
    if (!strcmp(name, "b3")) {
        *out = CELLAR_ALGO_BLAKE3;
        return 0;
    }
    return cellar_fail(CELLAR_EINVAL,
                       "unknown algorithm '%s' (blake3, sha256, sha1, md5, crc32, git-sha1)", name);
}

_Static_assert(CELLAR_ALGO__COUNT <= CELLAR_DIGEST_SLOTS, "cellar_digests has no room left");

const uint8_t *cellar_digest_get(const cellar_digests *d, cellar_algo a)
{
    if (!d || (unsigned)a >= CELLAR_ALGO__COUNT || !(d->have & CELLAR_ALGO_BIT(a)))
        return NULL;
    return d->d[a];
}

void cellar_digest_hex(char *out, const cellar_digests *d, cellar_algo a)
{
    if ((unsigned)a >= CELLAR_ALGO__COUNT || !(d->have & CELLAR_ALGO_BIT(a))) {
        out[0] = '\0';
        return;
    }
    cellar_hex(out, d->d[a], algos[a].len);
}

/* ---- the streaming multi-digest ------------------------------------------ */

struct cellar_hasher {
    uint32_t algos;
    uint64_t expected, seen;
    EVP_MD_CTX *md[CELLAR_ALGO__COUNT]; /* sha256, sha1, md5, git-sha1 */
    uint32_t crc;
    cellar_blake3 b3;
};

static const EVP_MD *evp_of(unsigned a)
{
    switch (a) {
    case CELLAR_ALGO_SHA256:
        return EVP_sha256();
    case CELLAR_ALGO_SHA1:
    case CELLAR_ALGO_GITSHA1:
        return EVP_sha1();
    case CELLAR_ALGO_MD5:
        return EVP_md5();
    default:
        return NULL;
    }
}

int cellar_hasher_new(cellar_hasher **out, uint32_t algos_wanted, uint64_t expected_size)
{
    *out = NULL;
    RETURN_ERROR_IF(algos_wanted == 0 || (algos_wanted & ~CELLAR_ALGO_ALL), CELLAR_EINVAL,
                    "hasher: no known algorithm in set 0x%x", algos_wanted);
    RETURN_ERROR_IF((algos_wanted & CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1)) &&
                        expected_size == UINT64_MAX,
                    CELLAR_EUNSUPPORTED, "git-sha1 needs the size before the content");
    cellar_hasher *h = cellar_calloc(1, sizeof *h);
    if (!h)
        return CELLAR_ENOMEM;
    h->algos = algos_wanted;
    h->expected = expected_size;
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++) {
        const EVP_MD *md = evp_of(a);
        if (!md || !(algos_wanted & CELLAR_ALGO_BIT(a)))
            continue;
        h->md[a] = EVP_MD_CTX_new();
        if (!h->md[a] || EVP_DigestInit_ex(h->md[a], md, NULL) != 1) {
            cellar_hasher_free(h);
            return cellar_fail(CELLAR_ENOMEM, "hasher: OpenSSL could not set up %s",
                               algos[a].name);
        }
    }
    if (h->md[CELLAR_ALGO_GITSHA1]) {
        char head[40];
        int n = snprintf(head, sizeof head, "blob %llu", (unsigned long long)expected_size);
        EVP_DigestUpdate(h->md[CELLAR_ALGO_GITSHA1], head, (size_t)n + 1); /* with the NUL */
    }
    h->crc = 0;
    if (algos_wanted & CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3))
        cellar_blake3_init(&h->b3);
    *out = h;
    return 0;
}

void cellar_hasher_update(cellar_hasher *h, const void *data, size_t len)
{
    h->seen += len;
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++)
        if (h->md[a])
            EVP_DigestUpdate(h->md[a], data, len);
    if (h->algos & CELLAR_ALGO_BIT(CELLAR_ALGO_CRC32))
        h->crc = cellar_crc32(h->crc, data, len);
    if (h->algos & CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3))
        cellar_blake3_update(&h->b3, data, len);
}

int cellar_hasher_final(cellar_digests *out, cellar_hasher *h)
{
    memset(out, 0, sizeof *out);
    RETURN_ERROR_IF(h->md[CELLAR_ALGO_GITSHA1] && h->seen != h->expected, CELLAR_EMISMATCH,
                    "git-sha1: %llu bytes hashed, %llu announced", (unsigned long long)h->seen,
                    (unsigned long long)h->expected);
    out->size = h->seen;
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++) {
        if (!h->md[a])
            continue;
        unsigned n = 0;
        if (EVP_DigestFinal_ex(h->md[a], out->d[a], &n) != 1 || n != algos[a].len)
            return cellar_fail(CELLAR_EIO, "hasher: OpenSSL failed to finish %s", algos[a].name);
    }
    if (h->algos & CELLAR_ALGO_BIT(CELLAR_ALGO_CRC32)) {
        uint32_t c = (uint32_t)h->crc;
        /* big-endian, as zlib's %08X prints it */
        out->d[CELLAR_ALGO_CRC32][0] = (uint8_t)(c >> 24);
        out->d[CELLAR_ALGO_CRC32][1] = (uint8_t)(c >> 16);
        out->d[CELLAR_ALGO_CRC32][2] = (uint8_t)(c >> 8);
        out->d[CELLAR_ALGO_CRC32][3] = (uint8_t)c;
    }
    if (h->algos & CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3))
        cellar_blake3_finalize(&h->b3, out->d[CELLAR_ALGO_BLAKE3], CELLAR_BLAKE3_OUT_LEN);
    out->have = h->algos;
    return 0;
}

void cellar_hasher_free(cellar_hasher *h)
{
    if (!h)
        return;
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++)
        EVP_MD_CTX_free(h->md[a]);
    free(h);
}

/* ---- files ---------------------------------------------------------------- */

/* Effective thread count: n, or all cores for 0. */
static unsigned digest_threads(unsigned n)
{
    return n ? n : cellar_ncpus();
}

static int64_t ns_of(struct timespec t)
{
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

bool digest_stat_same(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           ns_of(a->st_mtim) == ns_of(b->st_mtim) && ns_of(a->st_ctim) == ns_of(b->st_ctim);
}

bool digest_stat_cacheable(const struct stat *st)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t last = ns_of(st->st_mtim) > ns_of(st->st_ctim) ? ns_of(st->st_mtim)
                                                           : ns_of(st->st_ctim);
    return last < ns_of(now) - RACY_NS;
}

int digest_open(int *fd, struct stat *st, const char *path)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer here. */
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (f < 0)
        return cellar_fail_errno(errno, "%s", path);
    if (fstat(f, st) != 0) {
        int rc = cellar_fail_errno(errno, "%s", path);
        close(f);
        return rc;
    }
    /* A FIFO by name is refused too: with no writer it reads as empty and
     * would print the digest of nothing (stdin is hashed by descriptor). */
    if (!S_ISREG(st->st_mode)) {
        close(f);
        if (S_ISDIR(st->st_mode)) /* as sha256sum words it */
            return cellar_fail(CELLAR_EUNSUPPORTED, "%s: Is a directory", path);
        return cellar_fail(CELLAR_EUNSUPPORTED, "%s: %s, not a regular file", path,
                           cellar_file_kind(st->st_mode));
    }
    int fl = fcntl(f, F_GETFL);
    if (fl >= 0)
        fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
    *fd = f;
    return 0;
}

static void lane_clamp(digest_lane *l, uint64_t size)
{
    if (l->end > size)
        l->end = size;
    if (l->start > l->end)
        l->start = l->end;
}

static int lanes_start(cellar_hasher **h, digest_lane *lanes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = cellar_hasher_new(&h[i], CELLAR_ALGO_BIT(lanes[i].algo),
                                   lanes[i].end - lanes[i].start);
        if (rc)
            return rc;
    }
    return 0;
}

static int lanes_finish(cellar_hasher **h, digest_lane *lanes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cellar_digests d;
        int rc = cellar_hasher_final(&d, h[i]);
        if (rc)
            return rc;
        memcpy(lanes[i].out, d.d[lanes[i].algo], algos[lanes[i].algo].len);
    }
    return 0;
}

/* Feeds the bytes [off, off+len) of the file to every lane covering them. */
static void lanes_feed(cellar_hasher **h, const digest_lane *lanes, size_t n, const uint8_t *p,
                       uint64_t off, uint64_t len)
{
    uint64_t end = off + len;
    for (size_t i = 0; i < n; i++) {
        uint64_t s = lanes[i].start > off ? lanes[i].start : off;
        uint64_t e = lanes[i].end < end ? lanes[i].end : end;
        if (s < e)
            cellar_hasher_update(h[i], p + (s - off), (size_t)(e - s));
    }
}

static void lanes_span(const digest_lane *lanes, size_t n, uint64_t *lo, uint64_t *hi)
{
    *lo = UINT64_MAX;
    *hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (lanes[i].start == lanes[i].end)
            continue;
        if (lanes[i].start < *lo)
            *lo = lanes[i].start;
        if (lanes[i].end > *hi)
            *hi = lanes[i].end;
    }
    if (*lo > *hi)
        *lo = *hi;
}

/* Where a pass gets the bytes: read into the caller's buffer, or, with
 * CELLAR_HASH_MMAP, straight from a mapping of the file. */
struct source {
    int fd;
    const char *name;
    const uint8_t *map;
};

static int source_get(const struct source *src, uint8_t *buf, uint64_t off, size_t want,
                      const uint8_t **out)
{
    if (src->map) {
        *out = src->map + off;
        return 0;
    }
    ssize_t got = cellar_full_pread(src->fd, buf, want, off);
    if (got < 0)
        return cellar_fail_errno(errno, "%s", src->name);
    if ((size_t)got < want)
        return cellar_fail(CELLAR_ECHANGED, "%s: file shrank while it was read", src->name);
    *out = buf;
    return 0;
}

int digest_report(digest_progress *pr, const char *path, uint64_t done, uint64_t total,
                  bool force)
{
    if (!pr || !pr->fn || !(cellar_tick(&pr->last, 100) || force))
        return 0;
    cellar_progress p = {.bytes_done = done, .bytes_total = total, .files_total = 1, .path = path};
    return pr->fn(&p, pr->ctx) ? cellar_stopped(path) : 0;
}

static int pass_one_thread(cellar_hasher **h, const digest_lane *lanes, size_t n,
                           const struct source *src, uint64_t size, digest_progress *pr)
{
    uint64_t lo, hi;
    lanes_span(lanes, n, &lo, &hi);
    if (lo == hi)
        return 0;
    uint8_t *buf = cellar_malloc(READ_BUF);
    if (!buf)
        return CELLAR_ENOMEM;
    int rc = 0;
    for (uint64_t off = lo; off < hi && rc == 0; off += READ_BUF) {
        size_t want = hi - off < READ_BUF ? (size_t)(hi - off) : READ_BUF;
        const uint8_t *p;
        if ((rc = source_get(src, buf, off, want, &p)) == 0) {
            lanes_feed(h, lanes, n, p, off, want);
            rc = digest_report(pr, src->name, off + want, size, false);
        }
    }
    free(buf);
    return rc;
}

/* The threaded pass: lanes go to threads by estimated cost; each thread
 * reads the file into its own small buffer (hashing from L2 beats hashing a
 * mapping straight from memory by more than the copy costs) and keeps
 * within STEP_WINDOW of the slowest thread. */
struct walk {
    const struct source *src;
    cellar_hasher **h;
    const digest_lane *lanes;
    size_t n;
    unsigned *owner; /* lane -> thread */
    unsigned nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t *pos; /* per thread; UINT64_MAX once done */
    digest_progress *pr; /* reported by thread 0, the caller */
    uint64_t size;
    atomic_bool stop;    /* thread 0 was asked to stop */
};

struct walker {
    struct walk *w;
    unsigned t;
    int rc;
    char message[512];
};

static uint64_t walk_slowest(const struct walk *w)
{
    uint64_t m = UINT64_MAX;
    for (unsigned t = 0; t < w->nthreads; t++)
        if (w->pos[t] < m)
            m = w->pos[t];
    return m;
}

static int walk_lanes(struct walker *me, uint8_t *buf)
{
    struct walk *w = me->w;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (w->owner[i] != me->t || w->lanes[i].start == w->lanes[i].end)
            continue;
        if (w->lanes[i].start < lo)
            lo = w->lanes[i].start;
        if (w->lanes[i].end > hi)
            hi = w->lanes[i].end;
    }
    for (uint64_t off = lo; off < hi; off += READ_BUF) {
        if ((off - lo) % STEP == 0) {
            pthread_mutex_lock(&w->mu);
            w->pos[me->t] = off;
            pthread_cond_broadcast(&w->cv);
            while (off > walk_slowest(w) + STEP_WINDOW && !atomic_load(&w->stop))
                pthread_cond_wait(&w->cv, &w->mu);
            uint64_t slowest = walk_slowest(w);
            pthread_mutex_unlock(&w->mu);
            int rc = me->t == 0 ? digest_report(w->pr, w->src->name, slowest, w->size, false) : 0;
            if (rc) {
                atomic_store(&w->stop, true);
                return rc;
            }
            if (atomic_load(&w->stop))
                return cellar_stopped(w->src->name);
        }
        size_t want = hi - off < READ_BUF ? (size_t)(hi - off) : READ_BUF;
        const uint8_t *p;
        int rc = source_get(w->src, buf, off, want, &p);
        if (rc)
            return rc;
        for (size_t i = 0; i < w->n; i++)
            if (w->owner[i] == me->t)
                lanes_feed(&w->h[i], &w->lanes[i], 1, p, off, want);
    }
    return 0;
}

static void *walk_thread(void *arg)
{
    struct walker *me = arg;
    struct walk *w = me->w;
    uint8_t *buf = cellar_malloc(READ_BUF);
    me->rc = buf ? walk_lanes(me, buf) : CELLAR_ENOMEM;
    if (me->rc) /* the message is thread-local: carry it to the caller */
        snprintf(me->message, sizeof me->message, "%s", cellar_error_last());
    free(buf);
    pthread_mutex_lock(&w->mu);
    w->pos[me->t] = UINT64_MAX;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int pass_threads(cellar_hasher **h, const digest_lane *lanes, size_t n,
                        const struct source *src, unsigned nthreads, uint64_t size,
                        digest_progress *pr)
{
    int rc = 0;
    unsigned *owner = cellar_calloc(n, sizeof *owner);
    double *load = cellar_calloc(nthreads, sizeof *load);
    uint64_t *pos = cellar_calloc(nthreads, sizeof *pos);
    struct walker *ws = cellar_calloc(nthreads, sizeof *ws);
    pthread_t *tid = cellar_calloc(nthreads, sizeof *tid);
    bool *started = cellar_calloc(nthreads, sizeof *started);
    bool *placed = cellar_calloc(n, sizeof *placed);
    if (!owner || !load || !pos || !ws || !tid || !started || !placed) {
        rc = CELLAR_ENOMEM;
        goto done;
    }
    /* Longest processing time first: the costliest lane to the least loaded
     * thread. n is small (a handful of lanes). */
    for (size_t k = 0; k < n; k++) {
        size_t best = 0;
        double best_cost = -1;
        for (size_t i = 0; i < n; i++) {
            double c = algos[lanes[i].algo].cost * (double)(lanes[i].end - lanes[i].start);
            if (!placed[i] && c > best_cost) {
                best = i;
                best_cost = c;
            }
        }
        unsigned t = 0;
        for (unsigned u = 1; u < nthreads; u++)
            if (load[u] < load[t])
                t = u;
        owner[best] = t;
        load[t] += best_cost;
        placed[best] = true;
    }

    struct walk w = {.src = src, .h = h, .lanes = lanes, .n = n, .owner = owner,
                     .nthreads = nthreads, .pos = pos, .pr = pr, .size = size};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    for (unsigned t = 0; t < nthreads; t++) {
        ws[t] = (struct walker){.w = &w, .t = t};
        if (t > 0 && pthread_create(&tid[t], NULL, walk_thread, &ws[t]) == 0)
            started[t] = true;
        else if (t > 0) /* no thread: its lanes run on this one afterwards */
            pos[t] = UINT64_MAX;
    }
    walk_thread(&ws[0]);
    for (unsigned t = 1; t < nthreads; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            walk_thread(&ws[t]);
    }
    for (unsigned t = 0; t < nthreads && !rc; t++)
        if (ws[t].rc)
            rc = cellar_fail(ws[t].rc, "%s", ws[t].message);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
done:
    free(owner);
    free(load);
    free(pos);
    free(ws);
    free(tid);
    free(started);
    free(placed);
    return rc;
}

/* A lone BLAKE3 of a whole file, on the tree hasher's threads: reading
 * subtrees into per-thread buffers, or over the mapping. Returns whether it
 * applied (the digest is then in the lane). */
struct tree_tick {
    digest_progress *pr;
    const char *name;
};

static int tree_tick(const cellar_progress *p, void *ctx)
{
    struct tree_tick *t = ctx;
    return digest_report(t->pr, t->name, p->bytes_done, p->bytes_total, false) != 0;
}

static bool pass_blake3_tree(int *rc, digest_lane *lanes, size_t n, const struct source *src,
                             uint64_t size, unsigned nthreads, digest_progress *pr)
{
    if (n != 1 || lanes[0].algo != CELLAR_ALGO_BLAKE3 || lanes[0].start != 0 ||
        lanes[0].end != size || nthreads < 2 || size < THREAD_MIN)
        return false;
    cellar_blake3 b3;
    cellar_blake3_init(&b3);
    if (src->map)
        blake3_update_parallel(&b3, src->map, (size_t)size, nthreads);
    else if ((*rc = blake3_update_fd(&b3, src->fd, size, nthreads, src->name,
                                     pr && pr->fn ? tree_tick : NULL,
                                     &(struct tree_tick){pr, src->name})))
        return true;
    cellar_blake3_finalize(&b3, lanes[0].out, CELLAR_BLAKE3_OUT_LEN);
    return true;
}

int digest_lanes_fd(digest_lane *lanes, size_t n, int fd, const char *name, const struct stat *st,
                    uint32_t flags, unsigned nthreads, digest_progress *pr)
{
    uint64_t size = (uint64_t)st->st_size;
    for (size_t i = 0; i < n; i++)
        lane_clamp(&lanes[i], size);
    nthreads = digest_threads(nthreads);

    struct source src = {.fd = fd, .name = name};
    void *map = MAP_FAILED;
    if ((flags & CELLAR_HASH_MMAP) && size >= MMAP_MIN && size <= SIZE_MAX) {
        map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
        if (map != MAP_FAILED) {
            madvise(map, (size_t)size, MADV_SEQUENTIAL);
            src.map = map;
        }
    }
    cellar_hasher **h = cellar_calloc(n ? n : 1, sizeof *h);
    int rc = h ? lanes_start(h, lanes, n) : CELLAR_ENOMEM;
    if (rc == 0 && !pass_blake3_tree(&rc, lanes, n, &src, size, nthreads, pr)) {
        size_t busy = 0; /* lanes long enough to be worth a thread */
        for (size_t i = 0; i < n; i++)
            busy += lanes[i].end - lanes[i].start >= THREAD_MIN;
        if (nthreads > busy)
            nthreads = (unsigned)busy;
        rc = nthreads > 1 ? pass_threads(h, lanes, n, &src, nthreads, size, pr)
                          : pass_one_thread(h, lanes, n, &src, size, pr);
        if (rc == 0)
            rc = lanes_finish(h, lanes, n);
    }
    if (map != MAP_FAILED)
        munmap(map, (size_t)size);
    if (rc == 0) {
        struct stat after;
        if (fstat(fd, &after) != 0)
            rc = cellar_fail_errno(errno, "%s", name);
        else if (!digest_stat_same(st, &after))
            rc = cellar_fail(CELLAR_ECHANGED, "%s: file changed while it was hashed (size %llu -> %llu)",
                             name, (unsigned long long)st->st_size,
                             (unsigned long long)after.st_size);
    }
    for (size_t i = 0; h && i < n; i++)
        cellar_hasher_free(h[i]);
    free(h);
    return rc;
}

/* ---- the cache --------------------------------------------------------- */

void digest_file_id(cellar_file_id *id, const struct stat *st)
{
    *id = (cellar_file_id){
        .dev = (uint64_t)st->st_dev,
        .ino = (uint64_t)st->st_ino,
        .size = (uint64_t)st->st_size,
        .mtime_ns = ns_of(st->st_mtim),
        .ctime_ns = ns_of(st->st_ctim),
    };
}

const cellar_hash_cache *digest_cache_of(const cellar_hash_opts *o)
{
    if (!o || (o->flags & CELLAR_HASH_NO_CACHE) || !o->cache ||
        o->cache->version != CELLAR_HASH_CACHE_VERSION || !o->cache->lookup || !o->cache->record)
        return NULL;
    return o->cache;
}

int digest_opts_check(const cellar_hash_opts *o)
{
    CELLAR_OPTS_CHECK(o, "cellar_hash_opts", CELLAR_HASH_OPTS_VERSION, "CELLAR_HASH_OPTS_INIT");
    return 0;
}

int digest_cache_lookup(const cellar_hash_cache *c, cellar_hash_cache_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        e[i].len = -1;
    if (!c || n == 0)
        return 0;
    int rc = c->lookup(e, n, c->ctx);
    for (size_t i = 0; i < n; i++)
        if (rc || e[i].len > CELLAR_DIGEST_MAX || e[i].len < -1)
            e[i].len = -1; /* a failed or nonsensical answer is a miss */
    /* The cache's failure is not the caller's: hashing goes on. */
    cellar_error_clear();
    return 0;
}

void digest_cache_record(const cellar_hash_cache *c, const cellar_hash_cache_entry *e, size_t n)
{
    if (!c || n == 0)
        return;
    c->record(e, n, c->ctx);
    cellar_error_clear();
}

/* ---- the public file API ----------------------------------------------- */

static uint32_t algos_of(const cellar_hash_opts *o)
{
    return o && o->algos ? o->algos : CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3);
}
/* The progress of one file's hashing, from the options. */
static digest_progress progress_of(const cellar_hash_opts *o)
{
    bool has = o && o->version >= 2; /* version 1 had no progress */
    return (digest_progress){.fn = has ? o->progress : NULL, .ctx = has ? o->progress_ctx : NULL};
}

static int hash_stream(cellar_digests *out, int fd, const char *name, uint32_t want,
                       digest_progress *pr)
{
    cellar_hasher *h;
    int rc = cellar_hasher_new(&h, want, UINT64_MAX);
    if (rc)
        return cellar_fail_prefix("%s", name);
    uint8_t *buf = cellar_malloc(READ_BUF);
    if (!buf) {
        cellar_hasher_free(h);
        return CELLAR_ENOMEM;
    }
    uint64_t seen = 0;
    for (;;) {
        ssize_t got = read(fd, buf, READ_BUF);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = cellar_fail_errno(errno, "%s", name);
            break;
        }
        if (got == 0)
            break;
        cellar_hasher_update(h, buf, (size_t)got);
        seen += (uint64_t)got;
        if ((rc = digest_report(pr, name, seen, 0, false)) != 0)
            break;
    }
    free(buf);
    if (rc == 0) rc = cellar_hasher_final(out, h);
    cellar_hasher_free(h);
    return rc;
}

/* Hashes the algorithms in want (not cached) of an open regular file. */
static int hash_regular(cellar_digests *out, int fd, const char *name, const struct stat *st,
                        uint32_t want, const cellar_hash_opts *o)
{
    digest_lane lanes[CELLAR_ALGO__COUNT];
    size_t n = 0;
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++)
        if (want & CELLAR_ALGO_BIT(a))
            lanes[n++] = (digest_lane){.algo = (cellar_algo)a, .start = 0, .end = UINT64_MAX};
    digest_progress pr = progress_of(o);
    int rc = digest_lanes_fd(lanes, n, fd, name, st, o ? o->flags : 0, o ? o->nthreads : 0, &pr);
    if (rc == 0)
        rc = digest_report(&pr, name, (uint64_t)st->st_size, (uint64_t)st->st_size, true);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        memcpy(out->d[lanes[i].algo], lanes[i].out, algos[lanes[i].algo].len);
        out->have |= CELLAR_ALGO_BIT(lanes[i].algo);
    }
    out->size = (uint64_t)st->st_size;
    return 0;
}

int cellar_hash_fd(cellar_digests *out, int fd, const char *name, const cellar_hash_opts *opts)
{
    memset(out, 0, sizeof *out);
    int rc = digest_opts_check(opts);
    if (rc)
        return rc;
    if (!name)
        name = "(fd)";
    struct stat st;
    if (fstat(fd, &st) != 0)
        return cellar_fail_errno(errno, "%s", name);
    RETURN_ERROR_IF(S_ISDIR(st.st_mode), CELLAR_EUNSUPPORTED, "%s: Is a directory", name);
    if (!S_ISREG(st.st_mode)) {
        digest_progress pr = progress_of(opts);
        return hash_stream(out, fd, name, algos_of(opts), &pr);
    }
    return hash_regular(out, fd, name, &st, algos_of(opts), opts);
}

/* Cache entries for the algorithms of want of the file st describes:
 * fills e (room for CELLAR_ALGO__COUNT), returns how many. */
static size_t cache_entries(cellar_hash_cache_entry *e, const struct stat *st, uint32_t want)
{
    size_t n = 0;
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++) {
        if (!(want & CELLAR_ALGO_BIT(a)))
            continue;
        e[n] = (cellar_hash_cache_entry){.label = algos[a].name, .len = -1};
        digest_file_id(&e[n].file, st);
        n++;
    }
    return n;
}

/* Takes the answers of a lookup of cache_entries(pre, want) into out:
 * sets out->cached and out->have to the digests found. */
static void cache_take(cellar_digests *out, const cellar_hash_cache_entry *e,
                       const struct stat *pre, uint32_t want)
{
    size_t k = 0;
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++) {
        if (!(want & CELLAR_ALGO_BIT(a)))
            continue;
        if (e[k].len == (int)algos[a].len) {
            memcpy(out->d[a], e[k].digest, algos[a].len);
            out->cached |= CELLAR_ALGO_BIT(a);
        }
        k++;
    }
    out->have = out->cached;
    out->size = (uint64_t)pre->st_size;
}

/* Entries recording the computed digests of d (file st); returns how many
 * (0 when st is too recent to be cached). */
static size_t cache_record_entries(cellar_hash_cache_entry *e, const cellar_digests *d,
                                   const struct stat *st, uint32_t computed)
{
    if (!digest_stat_cacheable(st))
        return 0;
    size_t n = 0;
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++) {
        if (!(computed & CELLAR_ALGO_BIT(a)))
            continue;
        e[n] = (cellar_hash_cache_entry){.label = algos[a].name, .len = (int)algos[a].len};
        digest_file_id(&e[n].file, st);
        memcpy(e[n].digest, d->d[a], algos[a].len);
        n++;
    }
    return n;
}

/* What hashing one path did, for the caller to cache: the fstat the
 * digests belong to and which digests were computed (not cached). */
struct hashed {
    struct stat st;
    uint32_t computed;
};

/* Hashes path given what a cache lookup already found in *out (digests
 * valid for the file *pre described; pre NULL: none). */
static int hash_uncached(cellar_digests *out, struct hashed *done, const char *path,
                         const struct stat *pre, const cellar_hash_opts *o)
{
    uint32_t want = algos_of(o);
    done->computed = 0;
    int fd;
    int rc = digest_open(&fd, &done->st, path);
    if (rc)
        return rc;
    if (S_ISFIFO(done->st.st_mode)) {
        digest_progress pr = progress_of(o);
        rc = hash_stream(out, fd, path, want, &pr);
        close(fd);
        return rc;
    }
    /* Between the stat and the open the file may have been replaced or
     * written: cached digests count only if they describe this one. */
    if (!pre || !digest_stat_same(pre, &done->st))
        out->have = out->cached = 0;
    uint32_t todo = want & ~out->cached;
    rc = hash_regular(out, fd, path, &done->st, todo, o);
    close(fd);
    if (rc == 0)
        done->computed = todo;
    return rc;
}

int cellar_hash_path(cellar_digests *out, const char *path, const cellar_hash_opts *opts)
{
    memset(out, 0, sizeof *out);
    int rc = digest_opts_check(opts);
    if (rc)
        return rc;
    uint32_t want = algos_of(opts);
    const cellar_hash_cache *cache = digest_cache_of(opts);
    cellar_hash_cache_entry e[CELLAR_ALGO__COUNT];
    struct stat pre;
    if (cache) {
        /* The cheap path: one stat, then the cache answers. */
        if (stat(path, &pre) != 0)
            return cellar_fail_errno(errno, "%s", path);
        if (S_ISREG(pre.st_mode)) {
            size_t n = cache_entries(e, &pre, want);
            digest_cache_lookup(cache, e, n);
            cache_take(out, e, &pre, want);
            if (out->cached == want)
                return 0;
        }
    }
    struct hashed done;
    rc = hash_uncached(out, &done, path, cache ? &pre : NULL, opts);
    if (rc == 0 && cache)
        digest_cache_record(cache, e, cache_record_entries(e, out, &done.st, done.computed));
    return rc;
}

/* ---- many files at once --------------------------------------------------- */

/* The calling thread does all cache work, in few transactions: a first pass
 * looks every file up (one stat and one query each, in one read
 * transaction), so an unchanged tree never wakes a worker; workers hash
 * the misses; each run of results found ready is stored in one write
 * transaction, then reported in order. */
struct batch_slot {
    cellar_digests d;
    struct stat pre;
    bool looked_up;
    struct hashed done;
    int rc;
    atomic_bool ready;
    char *message;
};

struct batch {
    const char *const *paths;
    size_t n;
    cellar_hash_opts opts; /* per file: nthreads already divided */
    struct batch_slot *slots;
    atomic_size_t next;
    atomic_bool stopping; /* the caller's progress asked to stop: files in flight too */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* The workers' progress callback: only whether to stop. */
static int batch_stopping(const cellar_progress *p, void *ctx)
{
    (void)p;
    struct batch *b = ctx;
    return atomic_load(&b->stopping);
}

/* Waits for slot i, telling the caller's progress (files done of total)
 * every 100 ms meanwhile. Returns non-zero if it asked to stop. */
static int batch_wait(struct batch *b, size_t i, const cellar_hash_opts *opts, size_t done,
                      size_t total)
{
    int stop = 0;
    pthread_mutex_lock(&b->mu);
    while (!atomic_load(&b->slots[i].ready) && !stop) {
        if (!opts || opts->version < 2 || !opts->progress) {
            pthread_cond_wait(&b->cv, &b->mu);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&b->cv, &b->mu, &until) == 0)
            continue;
        cellar_progress p = {.files_done = done, .files_total = total, .path = b->paths[i]};
        pthread_mutex_unlock(&b->mu);
        stop = opts->progress(&p, opts->progress_ctx) != 0;
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return stop;
}

static void *batch_thread(void *arg)
{
    struct batch *b = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&b->next, 1);
        if (i >= b->n)
            break;
        struct batch_slot *s = &b->slots[i];
        if (atomic_load(&s->ready))
            continue;
        cellar_error_clear();
        s->rc = hash_uncached(&s->d, &s->done, b->paths[i], s->looked_up ? &s->pre : NULL,
                              &b->opts);
        if (s->rc)
            s->message = strdup(cellar_error_last());
        pthread_mutex_lock(&b->mu);
        atomic_store(&s->ready, true);
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
    }
    return NULL;
}

/* Stat and look up every path (one lookup call for the window); slots
 * answered in full are ready. */
static void batch_lookup(struct batch *b, const cellar_hash_cache *cache)
{
    uint32_t want = algos_of(&b->opts);
    size_t per = 0;
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++)
        per += (want & CELLAR_ALGO_BIT(a)) != 0;
    cellar_hash_cache_entry *e = cellar_calloc(b->n * per, sizeof *e);
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct batch_slot *s = &b->slots[i];
        if (stat(b->paths[i], &s->pre) != 0) {
            s->rc = cellar_fail_errno(errno, "%s", b->paths[i]);
            s->message = strdup(cellar_error_last());
            atomic_store(&s->ready, true);
            continue;
        }
        if (!S_ISREG(s->pre.st_mode))
            continue; /* the worker reports or streams it */
        s->looked_up = true;
        if (e)
            n += cache_entries(e + n, &s->pre, want);
    }
    if (!e)
        return; /* no memory for the lookup: every file is a miss */
    digest_cache_lookup(cache, e, n);
    n = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct batch_slot *s = &b->slots[i];
        if (!s->looked_up)
            continue;
        cache_take(&s->d, e + n, &s->pre, want);
        n += per;
        if (s->d.cached == want)
            atomic_store(&s->ready, true);
    }
    free(e);
}

/* Records the digests computed for slots [from, to), all ready, in one
 * call. Never made across a wait or a callback. */
static void batch_store(struct batch *b, const cellar_hash_cache *cache, size_t from, size_t to)
{
    size_t n = 0;
    for (size_t i = from; i < to; i++)
        if (b->slots[i].rc == 0 && b->slots[i].done.computed)
            n++;
    if (n == 0)
        return;
    cellar_hash_cache_entry *e = cellar_calloc(n * CELLAR_ALGO__COUNT, sizeof *e);
    if (!e)
        return; /* not cached: costs a re-hash next time */
    n = 0;
    for (size_t i = from; i < to; i++) {
        const struct batch_slot *s = &b->slots[i];
        if (s->rc == 0 && s->done.computed)
            n += cache_record_entries(e + n, &s->d, &s->done.st, s->done.computed);
    }
    digest_cache_record(cache, e, n);
    free(e);
}

/* One window of paths: index base + i of the caller's list is paths[i]. */
static int hash_window(const char *const *paths, size_t n, size_t base, size_t nall,
                       const cellar_hash_opts *opts, unsigned total, cellar_hash_each_fn each,
                       void *ctx)
{
    unsigned workers = n < total ? (unsigned)n : total;
    struct batch b = {.paths = paths, .n = n};
    if (opts)
        b.opts = *opts;
    /* Few files: each gets several threads; many: one each. */
    b.opts.nthreads = total / workers ? total / workers : 1;
    b.opts.progress = batch_stopping;
    b.opts.progress_ctx = &b;
    b.slots = cellar_calloc(n, sizeof *b.slots);
    pthread_t *tid = cellar_calloc(workers, sizeof *tid);
    if (!b.slots || !tid) {
        free(b.slots);
        free(tid);
        return CELLAR_ENOMEM;
    }
    const cellar_hash_cache *cache = digest_cache_of(opts);
    if (cache)
        batch_lookup(&b, cache);

    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    unsigned started = 0;
    for (unsigned t = 0; t < workers; t++)
        if (pthread_create(&tid[t], NULL, batch_thread, &b) == 0)
            started++;
        else
            break;
    if (started == 0) /* no threads to be had: do the work here */
        batch_thread(&b);
    bool stopped = false;
    size_t i = 0;
    while (i < n && !stopped) {
        if (batch_wait(&b, i, opts, base + i, nall)) {
            stopped = true;
            atomic_store(&b.stopping, true);
            atomic_store(&b.next, n);
            break;
        }
        size_t j = i + 1;
        while (j < n && j - i < STORE_BATCH && atomic_load(&b.slots[j].ready))
            j++;
        if (cache)
            batch_store(&b, cache, i, j);
        for (; i < j && !stopped; i++) {
            struct batch_slot *s = &b.slots[i];
            stopped = each(base + i, s->rc, &s->d,
                           s->rc ? (s->message ? s->message : "out of memory") : "", ctx) != 0;
        }
        if (stopped) { /* workers take no new file; those in flight stop */
            atomic_store(&b.stopping, true);
            atomic_store(&b.next, n);
        }
    }
    for (unsigned t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    for (size_t k = 0; k < n; k++)
        free(b.slots[k].message);
    pthread_cond_destroy(&b.cv);
    pthread_mutex_destroy(&b.mu);
    free(b.slots);
    free(tid);
    if (stopped)
        return cellar_fail(CELLAR_EUSER, "hashing stopped by the caller after %zu files", base + i);
    return 0;
}

int cellar_hash_paths(const char *const *paths, size_t n, const cellar_hash_opts *opts,
                      cellar_hash_each_fn each, void *ctx)
{
    int rc = digest_opts_check(opts);
    if (rc)
        return rc;
    unsigned total = digest_threads(opts ? opts->nthreads : 0);
    for (size_t off = 0; off < n; off += BATCH_WINDOW) {
        size_t m = n - off < BATCH_WINDOW ? n - off : BATCH_WINDOW;
        rc = hash_window(paths + off, m, off, n, opts, total, each, ctx);
        if (rc)
            return rc;
    }
    return 0;
}
