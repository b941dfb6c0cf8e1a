/* dedup: identical files in existing folders become hard links to the one
 * stored copy.
 *
 * Only files whose size another file (or a stored blob) shares are read;
 * a file already sharing a stored object's inode is known from the index
 * without reading it, and the hash cache answers for unchanged files, so a
 * second run reads nothing. Each replacement is a link to a temp name beside
 * the file and a rename over it: at every moment the name holds either the
 * old inode or the stored one, both with the same bytes, so a crash (or a
 * kill -9) at any point loses nothing. */
#include "store.h"

#include "digest.h"
#include "inoset.h"
#include "store_index.h"
#include "walk.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dfile {
    char *path;
    struct stat st;
};

/* One inode among the files (all its names are consecutive in files[]). */
struct dnode {
    size_t first, count;
    cellar_digests d;
    bool hashed, object, bad;
    bool computed;              /* d was hashed here (not found): worth caching */
    struct timespec read_ctime; /* of the file read (the rest is as walked) */
    int rc;                     /* a reader's failure, reported by the caller's thread */
    char *message;
};

struct dedup {
    cellar_store *s;
    const cellar_dedup_opts *o;
    cellar_dedup_stats *stats;
    struct dfile *files;
    size_t nfiles, cap;
    struct dnode *nodes;
    size_t nnodes;
    char **roots; /* with -L: the real paths of the folders given */
    size_t nroots;
    /* The caller's callbacks: a non-zero answer sets stop, which readers
     * check between chunks and the linking loop between groups. */
    atomic_bool stop;
    pthread_t caller;               /* only its thread calls back */
    _Atomic uint64_t bytes_read;    /* by every reader */
    uint64_t bytes_to_read;
    uint64_t files_done, files_total;
    struct timespec tick;
};

/* With -L, a file reached through a symlink is acted on only if it lies
 * inside one of the folders given: following a link must not change files
 * elsewhere (another user's tree, /usr). */
static bool inside_roots(const struct dedup *dd, const char *real)
{
    for (size_t i = 0; i < dd->nroots; i++) {
        size_t n = strlen(dd->roots[i]);
        if (!strncmp(real, dd->roots[i], n) &&
            (real[n] == '/' || real[n] == '\0' || (n == 1 && dd->roots[i][0] == '/')))
            return true;
    }
    return false;
}

static void event(struct dedup *dd, cellar_dedup_event_kind kind, const char *path, uint64_t size,
                  const char *message)
{
    if (kind == CELLAR_DEDUP_ERROR)
        dd->stats->errors++;
    if (!dd->o->cb || atomic_load(&dd->stop))
        return;
    /* Every message names its file. */
    char buf[1024];
    if (message && strncmp(message, path, strlen(path)) != 0) {
        snprintf(buf, sizeof buf, "%s: %s", path, message);
        message = buf;
    }
    if (dd->o->cb(kind, path, size, message, dd->o->ctx))
        atomic_store(&dd->stop, true);
}

/* Progress, throttled, from the caller's thread only (a reader on another
 * thread just counts its bytes). end: the phase's last report. */
static void progress(struct dedup *dd, const char *path, bool end)
{
    if (!dd->o->progress || !pthread_equal(pthread_self(), dd->caller))
        return;
    if (!end && !cellar_tick(&dd->tick, 100))
        return;
    /* A copy that drops out of a round late is read again in a later one:
     * the estimate of bytes to read is a floor. */
    uint64_t done = atomic_load(&dd->bytes_read);
    cellar_progress p = {.bytes_done = done < dd->bytes_to_read ? done : dd->bytes_to_read,
                         .bytes_total = dd->bytes_to_read,
                         .files_done = dd->files_done,
                         .files_total = dd->files_total,
                         .path = path};
    if (dd->o->progress(&p, dd->o->progress_ctx))
        atomic_store(&dd->stop, true);
}

static bool is_temp_name(const char *name)
{
    return strstr(name, ".cellar-tmp.") != NULL || strncmp(name, ".cellar-link.", 13) == 0;
}

static int collect(const char *path, const char *name, const struct stat *st, void *ctx)
{
    struct dedup *dd = ctx;
    if (!S_ISREG(st->st_mode))
        return 0;
    if (is_temp_name(name)) {
        /* A crashed run's temp link to an object: clear it. */
        link_clear_leftover(dd->s, path, name);
        return 0;
    }
    if (st->st_size <= 0 || (uint64_t)st->st_size < dd->o->min_size)
        return 0;
    int rc = cellar_grow(&dd->files, &dd->cap, dd->nfiles, sizeof *dd->files, 256);
    if (rc)
        return rc;
    /* Followed (-L): act on the file the symlinks lead to, never replace a
     * symlink itself, and only inside the folders given. */
    bool follow = dd->o->flags & CELLAR_DEDUP_FOLLOW_SYMLINKS;
    char *real = follow ? realpath(path, NULL) : cellar_strdup(path);
    if (!real)
        return follow ? 0 : CELLAR_ENOMEM;
    if (follow && !inside_roots(dd, real)) {
        event(dd, CELLAR_DEDUP_SKIPPED, path, (uint64_t)st->st_size,
              "a symlink leads outside the folders given; left alone");
        free(real);
        return 0;
    }
    dd->files[dd->nfiles].path = real;
    dd->files[dd->nfiles].st = *st;
    dd->nfiles++;
    dd->stats->files++;
    return 0;
}

/* Drops names listed twice (a file reached directly and through a symlink
 * with -L); files[] is sorted, so they are adjacent. */
static void drop_repeats(struct dedup *dd)
{
    size_t keep = 0;
    for (size_t i = 0; i < dd->nfiles; i++) {
        if (keep && !strcmp(dd->files[keep - 1].path, dd->files[i].path) &&
            dd->files[keep - 1].st.st_ino == dd->files[i].st.st_ino) {
            free(dd->files[i].path);
            dd->stats->files--;
            continue;
        }
        dd->files[keep++] = dd->files[i];
    }
    dd->nfiles = keep;
}

static void walk_error(const char *path, const char *message, void *ctx)
{
    event(ctx, CELLAR_DEDUP_ERROR, path, 0, message);
}

static int cmp_file(const void *pa, const void *pb)
{
    const struct stat *a = &((const struct dfile *)pa)->st, *b = &((const struct dfile *)pb)->st;
    if (a->st_size != b->st_size)
        return a->st_size < b->st_size ? -1 : 1;
    if (a->st_dev != b->st_dev)
        return a->st_dev < b->st_dev ? -1 : 1;
    if (a->st_ino != b->st_ino)
        return a->st_ino < b->st_ino ? -1 : 1;
    return strcmp(((const struct dfile *)pa)->path, ((const struct dfile *)pb)->path);
}

/* Bytes on disk of the files' inodes, each counted once; restat: look at
 * the files as they are now rather than as walked. */
/* Bytes on disk of the walked files' inodes, each once, into *out; their
 * inodes into seen. With before (the set of the first pass), an inode the
 * names now share that was not among them (a stored object that already
 * held these bytes) was on disk all along: its blocks are added to
 * *also_before, so "saved" counts what was really freed. */
static int disk_bytes(struct dedup *dd, bool restat, inoset *seen, uint64_t *out,
                      const inoset *before, uint64_t *also_before)
{
    uint64_t total = 0;
    for (size_t i = 0; i < dd->nfiles; i++) {
        struct stat now, *st = &dd->files[i].st;
        if (restat) {
            if (lstat(dd->files[i].path, &now) != 0)
                continue;
            st = &now;
        }
        int added = inoset_add(seen, (uint64_t)st->st_dev, (uint64_t)st->st_ino);
        if (added < 0)
            return added;
        if (!added)
            continue;
        total += (uint64_t)st->st_blocks * 512;
        if (before && !inoset_has(before, (uint64_t)st->st_dev, (uint64_t)st->st_ino))
            *also_before += (uint64_t)st->st_blocks * 512;
    }
    *out = total;
    return 0;
}

/* now is the very inode walked as was, with the same content: size, mtime
 * and ctime (a rewrite that restores mtime, as cp -p or rsync -t do, still
 * moves ctime). */
static bool same_file(const struct stat *now, const struct stat *was)
{
    return now->st_dev == was->st_dev && now->st_ino == was->st_ino &&
           now->st_size == was->st_size && now->st_mtim.tv_sec == was->st_mtim.tv_sec &&
           now->st_mtim.tv_nsec == was->st_mtim.tv_nsec &&
           now->st_ctim.tv_sec == was->st_ctim.tv_sec &&
           now->st_ctim.tv_nsec == was->st_ctim.tv_nsec;
}

/* The file at path still is the one walked, unchanged. */
static bool unchanged(const char *path, const struct stat *was)
{
    struct stat now;
    return lstat(path, &now) == 0 && same_file(&now, was);
}

/* Why a file may not share the store's inode, or NULL if it may. */
static const char *ineligible(const struct stat *st)
{
    if (store_may_share(st))
        return NULL;
    if (st->st_uid != geteuid())
        return "owned by another user; left alone";
    return "its permissions (private or executable) differ from the store's read-only 0444;"
           " left alone";
}

/* Comparison buffers of --paranoid: small enough to stay in cache. */
#define CMP_CHUNK (256u * 1024)

/* Byte-for-byte comparison of two files with two CMP_CHUNK buffers: 1 same,
 * 0 differ, < 0 on a failure. Stops at the first differing chunk. */
static int same_bytes(const char *a, const char *b, char *ba, char *bb)
{
    int fa = open(a, O_RDONLY | O_CLOEXEC);
    if (fa < 0)
        return cellar_fail_errno(errno, "%s", a);
    int fb = open(b, O_RDONLY | O_CLOEXEC);
    if (fb < 0) {
        int rc = cellar_fail_errno(errno, "%s", b);
        close(fa);
        return rc;
    }
    int rc = 1;
    for (;;) {
        ssize_t ra = cellar_full_read(fa, ba, CMP_CHUNK), rb = cellar_full_read(fb, bb, CMP_CHUNK);
        if (ra < 0 || rb < 0) {
            rc = cellar_fail_errno(errno, "%s", ra < 0 ? a : b);
            break;
        }
        if (ra != rb || memcmp(ba, bb, (size_t)ra) != 0) {
            rc = 0;
            break;
        }
        if (ra == 0)
            break;
    }
    close(fa);
    close(fb);
    return rc;
}

/* same_bytes with buffers of its own (--paranoid, once per file). */
static int same_bytes_alloc(const char *a, const char *b)
{
    char *buf = cellar_malloc(2 * CMP_CHUNK);
    if (!buf)
        return CELLAR_ENOMEM;
    int rc = same_bytes(a, b, buf, buf + CMP_CHUNK);
    free(buf);
    return rc;
}

/* Adopts the file at path (walked as st, digests d) as the object. The
 * caller holds the blob's lock. */
static int adopt_path(cellar_store *s, const char *path, const struct stat *st,
                      const cellar_digests *d)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return cellar_fail_errno(errno, "%s", path);
    struct stat now;
    int rc;
    if (fstat(fd, &now) != 0)
        rc = cellar_fail_errno(errno, "%s", path);
    else if (!same_file(&now, st))
        rc = cellar_fail(CELLAR_ECHANGED, "%s: changed during dedup; left alone", path);
    else
        rc = store_adopt(s, path, fd, &now, d);
    close(fd);
    return rc;
}

/* Replaces path (walked as st) by a hard link to obj (the object, or the
 * copy chosen on another filesystem), recording the place if it is the
 * object. */
static int replace_path(cellar_store *s, const char *path, const struct stat *st, const char *obj,
                        const struct stat *obj_st, const uint8_t sha256[32], unsigned flags,
                        bool record)
{
    if (!unchanged(path, st))
        return cellar_fail(CELLAR_ECHANGED, "%s: changed during dedup; left alone", path);
    if (flags & CELLAR_DEDUP_PARANOID) {
        int same = same_bytes_alloc(path, obj);
        if (same < 0)
            return same;
        if (!same)
            return cellar_fail(CELLAR_EMISMATCH,
                               "%s: same sha256 as %s but different bytes; left alone", path, obj);
    }
    /* A name a process holds open for writing is left to it: replaced, its
     * later writes would land in an inode no name shows. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return cellar_fail_errno(errno, "%s", path);
    struct stat now;
    int rc = 0;
    if (fstat(fd, &now) != 0)
        rc = cellar_fail_errno(errno, "%s", path);
    else if (!same_file(&now, st))
        rc = cellar_fail(CELLAR_ECHANGED, "%s: changed during dedup; left alone", path);
    else if ((rc = store_no_writers(fd, path)) == CELLAR_EBUSY)
        rc = CELLAR_ECHANGED; /* reported as skipped, with the message */
    else if (rc) {
        /* No leases here (another filesystem type): replacing the name
         * cannot change any other file, so it goes on as before. */
        cellar_error_clear();
        rc = 0;
    }
    close(fd);
    if (rc)
        return rc;
    rc = link_hard_replace(s, obj, obj_st, sha256, path);
    if (rc == CELLAR_EUNSUPPORTED)
        return cellar_fail(CELLAR_EUNSUPPORTED, "%s: cannot hard-link to the store's copy; left alone",
                           path);
    if (rc || !record)
        return rc;
    char *abs = store_abspath(path);
    if (!abs)
        return CELLAR_ENOMEM;
    rc = index_place_put(s->db, abs, sha256, CELLAR_LINK_HARD);
    free(abs);
    return rc;
}

static int cmp_node_sha(const void *pa, const void *pb)
{
    const struct dnode *a = *(struct dnode *const *)pa, *b = *(struct dnode *const *)pb;
    int c = memcmp(a->d.d[CELLAR_ALGO_SHA256], b->d.d[CELLAR_ALGO_SHA256], 32);
    if (c)
        return c;
    return (int)b->object - (int)a->object; /* the object's own inode first */
}

/* Finds the object's inode for a group of identical nodes, adopting one of
 * them if the store lacks the blob. Returns 1 with *obj_st filled, 0 if
 * the store has no copy (none adoptable, or unique content), < 0 on error. */
static int group_object(struct dedup *dd, struct dnode **g, size_t n, struct stat *obj_st,
                        bool *would_adopt)
{
    const uint8_t *sha = g[0]->d.d[CELLAR_ALGO_SHA256];
    *would_adopt = false;
    int rc = store_object_stat(dd->s, sha, obj_st);
    if (rc != 0)
        return rc;
    if (n < 2)
        return 0; /* unique content: nothing to share, nothing to add */
    for (size_t i = 0; i < n; i++) {
        const struct dfile *f = &dd->files[g[i]->first];
        if (f->st.st_dev != dd->s->dev || ineligible(&f->st))
            continue;
        if (dd->o->dry_run) {
            *obj_st = f->st;
            *would_adopt = true;
            g[i]->object = true;
            return 1;
        }
        g[i]->d.size = (uint64_t)f->st.st_size;
        rc = adopt_path(dd->s, f->path, &f->st, &g[i]->d);
        if (rc == CELLAR_EUNSUPPORTED)
            continue;
        if (rc) {
            event(dd, rc == CELLAR_ECHANGED ? CELLAR_DEDUP_SKIPPED : CELLAR_DEDUP_ERROR, f->path,
                  (uint64_t)f->st.st_size, cellar_error_last());
            g[i]->bad = true;
            continue;
        }
        g[i]->object = true;
        return store_object_stat(dd->s, sha, obj_st);
    }
    /* No copy could be adopted (one a process has open for writing, a
     * filesystem without leases...): the first one on the store's
     * filesystem is copied in instead, so the names still get an object
     * nobody writes to, not one another's inode. */
    for (size_t i = 0; i < n && !dd->o->dry_run; i++) {
        const struct dfile *f = &dd->files[g[i]->first];
        if (g[i]->bad || f->st.st_dev != dd->s->dev || ineligible(&f->st))
            continue;
        int fd = open(f->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat now;
        if (fd < 0 || fstat(fd, &now) != 0 || !same_file(&now, &f->st)) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        cellar_digests got;
        rc = store_copy_in(dd->s, f->path, fd, &now, store_algos((uint64_t)now.st_size, 0), true,
                           &got);
        close(fd);
        if (rc == CELLAR_ENOMEM)
            return rc;
        if (rc || memcmp(got.d[CELLAR_ALGO_SHA256], sha, 32) != 0) {
            cellar_error_clear();
            continue; /* changed meanwhile: it drops out of the group */
        }
        return store_object_stat(dd->s, sha, obj_st);
    }
    return 0;
}

/* Makes every name on target's filesystem in the group a hard link to
 * target (the object, or on another filesystem the first copy there). */
static int link_names(struct dedup *dd, struct dnode **g, size_t n, const char *target,
                      const struct stat *tst, const uint8_t sha256[32], bool in_store)
{
    bool dry = dd->o->dry_run;
    for (size_t i = 0; i < n; i++) {
        struct dnode *node = g[i];
        if (node->bad)
            continue;
        for (size_t k = node->first; k < node->first + node->count; k++) {
            struct dfile *f = &dd->files[k];
            if (f->st.st_dev != tst->st_dev)
                continue;
            if (f->st.st_ino == tst->st_ino) {
                dd->stats->linked++;
                continue;
            }
            if (atomic_load(&dd->stop))
                return 0; /* the caller asked: no further name is touched */
            const char *why = ineligible(&f->st);
            if (why) {
                event(dd, CELLAR_DEDUP_SKIPPED, f->path, (uint64_t)f->st.st_size, why);
                continue;
            }
            int r = dry ? 0
                        : replace_path(dd->s, f->path, &f->st, target, tst, sha256, dd->o->flags,
                                       in_store);
            if (r == CELLAR_ENOMEM)
                return r;
            if (r) {
                event(dd, r == CELLAR_ECHANGED ? CELLAR_DEDUP_SKIPPED : CELLAR_DEDUP_ERROR, f->path,
                      (uint64_t)f->st.st_size, cellar_error_last());
                continue;
            }
            dd->stats->linked++;
            event(dd, CELLAR_DEDUP_LINKED, f->path, (uint64_t)f->st.st_size, NULL);
            if (dry) {
                /* As it would be: the name now shares the target's inode. */
                f->st.st_ino = tst->st_ino;
            }
        }
    }
    return 0;
}

/* Links the names of one sha256 group: to the stored object on the store's
 * filesystem; on any other filesystem (where no hard link to the store can
 * exist) to the first eligible copy there, so the space is saved anyway. */
static int link_group(struct dedup *dd, struct dnode **g, size_t n)
{
    const uint8_t *sha = g[0]->d.d[CELLAR_ALGO_SHA256];
    bool dry = dd->o->dry_run;
    char lock[65];
    int lfd = -1;
    store_lock_name(lock, sha);
    int rc = dry ? 0 : store_lock(dd->s, lock, true, &lfd);
    if (rc)
        return rc;
    /* The group's index rows (the adopted blob, every place) in one
     * transaction, taken under the blob's lock and ended before it is
     * released: no other lock is awaited while it is held. A crash loses
     * the rows, which costs a re-hash, never a file. */
    bool txn = !dry && n >= 2;
    if (txn) {
        cellar_db_lock(dd->s->db);
        txn = cellar_db_begin(dd->s->db) == 0;
        if (!txn)
            cellar_db_unlock(dd->s->db);
    }
    struct stat obj_st;
    bool would_adopt;
    int have = group_object(dd, g, n, &obj_st, &would_adopt);
    char *obj = store_object_path(dd->s, sha);
    if (have < 0 || !obj) {
        rc = have < 0 ? have : CELLAR_ENOMEM;
        goto done;
    }
    if (have && (uint64_t)obj_st.st_size != g[0]->d.size && !would_adopt) {
        for (size_t i = 0; i < n; i++)
            event(dd, CELLAR_DEDUP_ERROR, dd->files[g[i]->first].path, g[i]->d.size,
                  "the store's copy has another size: run 'cellar verify'; left alone");
        goto done;
    }
    if (have && (rc = link_names(dd, g, n, obj, &obj_st, sha, true)))
        goto done;
    for (size_t i = 0; n >= 2 && i < n; i++) {
        struct dfile *a = &dd->files[g[i]->first];
        if (g[i]->bad || (have && a->st.st_dev == obj_st.st_dev) || ineligible(&a->st))
            continue;
        bool first = true;
        for (size_t j = 0; first && j < i; j++)
            first = g[j]->bad || dd->files[g[j]->first].st.st_dev != a->st.st_dev ||
                    ineligible(&dd->files[g[j]->first].st);
        if (!first)
            continue;
        /* The names get this inode: not one a process has open for
         * writing (its next write would change them all). */
        int afd = open(a->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        int busy = afd >= 0 ? store_no_writers(afd, a->path) : 0;
        if (afd >= 0)
            close(afd);
        if (busy == CELLAR_EBUSY) {
            event(dd, CELLAR_DEDUP_SKIPPED, a->path, (uint64_t)a->st.st_size,
                  cellar_error_last());
            g[i]->bad = true;
            continue;
        }
        cellar_error_clear();
        struct stat anchor = a->st;
        if ((rc = link_names(dd, g, n, a->path, &anchor, sha, false)))
            goto done;
    }
done:
    if (txn) {
        if (cellar_db_commit(dd->s->db) != 0) {
            event(dd, CELLAR_DEDUP_ERROR, dd->files[g[0]->first].path, g[0]->d.size,
                  cellar_error_last());
            cellar_db_rollback(dd->s->db);
        }
        cellar_db_unlock(dd->s->db);
    }
    free(obj);
    store_unlock(lfd);
    return rc;
}

/* ---- reading the candidates ------------------------------------------------
 * Inodes of one size are resolved in rounds: the first unresolved one (the
 * round's rep) is read once, chunk by chunk, and hashed, while up to
 * MAX_PEERS others of its size are read alongside and compared with it. A
 * peer with the same bytes gets the rep's digest for a comparison (memcmp
 * speed) instead of a sha256 of its own, and nothing is read twice; a peer
 * that differs drops out at its first differing chunk and waits for a later
 * round. Size groups are spread over all cores, largest first; only the
 * calling thread reports events and writes the cache. */

#define MAX_PEERS 7
#define READ_CHUNK ((size_t)128 << 10) /* (1 + MAX_PEERS) of them stay in L2 */

struct group {
    struct dnode **g;
    size_t n;
    uint64_t bytes;
};

struct readers {
    struct dedup *dd;
    struct group *groups;
    size_t ngroups;
    atomic_size_t next;
};

struct reader {
    struct readers *r;
    uint8_t *buf;
};

/* Marks n failed with the thread's last error, for the caller to report. */
static void node_fail(struct dnode *n, int rc)
{
    n->bad = true;
    n->rc = rc;
    n->message = strdup(cellar_error_last());
}

/* Opens a candidate, checking it still is the inode walked. */
static int node_open(struct dedup *dd, struct dnode *n, int *fd, struct stat *st)
{
    const struct dfile *f = &dd->files[n->first];
    int rc = digest_open(fd, st, f->path);
    if (rc)
        return rc;
    if (!same_file(st, &f->st)) {
        close(*fd);
        return cellar_fail(CELLAR_ECHANGED, "%s: changed during dedup; left alone", f->path);
    }
    posix_fadvise(*fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return 0;
}

/* One round: hashes rep, compares the peers with it; buf holds
 * (1 + MAX_PEERS) chunks. */
static void read_round(struct dedup *dd, struct dnode *rep, struct dnode **peers, size_t np,
                       uint8_t *buf)
{
    int fd[1 + MAX_PEERS];
    struct stat st[1 + MAX_PEERS];
    bool live[1 + MAX_PEERS], opened[1 + MAX_PEERS];
    int rc = node_open(dd, rep, &fd[0], &st[0]);
    if (rc) {
        node_fail(rep, rc);
        return;
    }
    for (size_t k = 1; k <= np; k++) {
        int r = node_open(dd, peers[k - 1], &fd[k], &st[k]);
        live[k] = opened[k] = r == 0;
        if (r)
            node_fail(peers[k - 1], r);
    }
    const char *path = dd->files[rep->first].path;
    uint64_t size = (uint64_t)st[0].st_size;
    cellar_hasher *h;
    rc = cellar_hasher_new(&h, CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256), size);
    for (uint64_t off = 0; rc == 0 && off < size; off += READ_CHUNK) {
        size_t want = size - off < READ_CHUNK ? (size_t)(size - off) : READ_CHUNK;
        ssize_t got = cellar_full_pread(fd[0], buf, want, off);
        if (got < 0)
            rc = cellar_fail_errno(errno, "%s", path);
        else if ((size_t)got < want)
            rc = cellar_fail(CELLAR_ECHANGED, "%s: changed during dedup; left alone", path);
        if (rc == 0 && atomic_load(&dd->stop))
            rc = cellar_stopped("dedup");
        if (rc)
            break;
        cellar_hasher_update(h, buf, want);
        atomic_fetch_add(&dd->bytes_read, want);
        for (size_t k = 1; k <= np; k++) {
            if (!live[k])
                continue;
            uint8_t *pb = buf + k * READ_CHUNK;
            got = cellar_full_pread(fd[k], pb, want, off);
            if (got < 0) {
                node_fail(peers[k - 1],
                          cellar_fail_errno(errno, "%s", dd->files[peers[k - 1]->first].path));
                live[k] = false;
            } else if ((size_t)got != want || memcmp(buf, pb, want) != 0) {
                live[k] = false; /* other bytes: a later round */
            }
            if (live[k])
                atomic_fetch_add(&dd->bytes_read, want);
        }
        progress(dd, path, false);
    }
    cellar_digests d;
    struct stat after;
    if (rc == 0 && fstat(fd[0], &after) != 0)
        rc = cellar_fail_errno(errno, "%s", path);
    else if (rc == 0 && !digest_stat_same(&st[0], &after))
        rc = cellar_fail(CELLAR_ECHANGED, "%s: changed during dedup; left alone", path);
    if (rc == 0) rc = cellar_hasher_final(&d, h);
    if (rc == 0) {
        rep->d = d;
        rep->hashed = rep->computed = true;
        rep->read_ctime = st[0].st_ctim;
    } else {
        node_fail(rep, rc);
    }
    for (size_t k = 1; k <= np; k++) {
        /* A peer that changed while compared waits for a later round,
         * whose open check reports it. */
        if (rc == 0 && live[k] && fstat(fd[k], &after) == 0 && digest_stat_same(&st[k], &after)) {
            peers[k - 1]->d = d;
            peers[k - 1]->hashed = true;
        }
        if (opened[k])
            close(fd[k]);
    }
    cellar_hasher_free(h);
    close(fd[0]);
}

static void read_group(struct dedup *dd, const struct group *gr, uint8_t *buf)
{
    for (size_t i = 0; i < gr->n; i++) {
        struct dnode *rep = gr->g[i];
        if (rep->hashed || rep->bad)
            continue;
        struct dnode *peers[MAX_PEERS];
        size_t np = 0;
        for (size_t j = i + 1; j < gr->n && np < MAX_PEERS; j++)
            if (!gr->g[j]->hashed && !gr->g[j]->bad)
                peers[np++] = gr->g[j];
        read_round(dd, rep, peers, np, buf);
    }
}

static void *reader_thread(void *arg)
{
    struct reader *me = arg;
    struct readers *r = me->r;
    for (;;) {
        size_t i = atomic_fetch_add(&r->next, 1);
        if (i >= r->ngroups || atomic_load(&r->dd->stop))
            break;
        read_group(r->dd, &r->groups[i], me->buf);
    }
    return NULL;
}

static int cmp_group_bytes(const void *pa, const void *pb)
{
    uint64_t a = ((const struct group *)pa)->bytes, b = ((const struct group *)pb)->bytes;
    return a == b ? 0 : a > b ? -1 : 1;
}

/* Reads the groups on all cores; then, on this thread, reports the
 * failures and caches the computed digests in one transaction. */
static int read_groups(struct dedup *dd, struct group *groups, size_t ngroups)
{
    if (ngroups == 0)
        return 0;
    qsort(groups, ngroups, sizeof *groups, cmp_group_bytes);
    for (size_t i = 0; i < ngroups; i++)
        dd->bytes_to_read += groups[i].bytes;
    unsigned nthreads = cellar_ncpus();
    if (nthreads > ngroups)
        nthreads = (unsigned)ngroups;
    struct readers r = {.dd = dd, .groups = groups, .ngroups = ngroups};
    struct reader *rs = cellar_calloc(nthreads, sizeof *rs);
    pthread_t *tid = cellar_calloc(nthreads, sizeof *tid);
    int rc = rs && tid ? 0 : CELLAR_ENOMEM;
    for (unsigned t = 0; rc == 0 && t < nthreads; t++) {
        rs[t] = (struct reader){.r = &r, .buf = cellar_malloc((1 + MAX_PEERS) * READ_CHUNK)};
        if (!rs[t].buf)
            rc = CELLAR_ENOMEM;
    }
    if (rc == 0) {
        unsigned started = 1;
        while (started < nthreads &&
               pthread_create(&tid[started], NULL, reader_thread, &rs[started]) == 0)
            started++;
        reader_thread(&rs[0]);
        for (unsigned t = 1; t < started; t++)
            pthread_join(tid[t], NULL);
    }
    for (unsigned t = 0; rs && t < nthreads; t++)
        free(rs[t].buf);
    free(rs);
    free(tid);
    if (rc)
        return rc;

    size_t nrec = 0;
    for (size_t i = 0; i < ngroups; i++)
        nrec += groups[i].n;
    cellar_hash_cache_entry *rec = cellar_calloc(nrec ? nrec : 1, sizeof *rec);
    nrec = 0;
    for (size_t i = 0; i < ngroups; i++) {
        for (size_t k = 0; k < groups[i].n; k++) {
            struct dnode *n = groups[i].g[k];
            const struct dfile *f = &dd->files[n->first];
            if (n->rc) {
                if (!atomic_load(&dd->stop))
                    event(dd, n->rc == CELLAR_ECHANGED ? CELLAR_DEDUP_SKIPPED : CELLAR_DEDUP_ERROR,
                          f->path, (uint64_t)f->st.st_size,
                          n->message ? n->message : "out of memory");
                free(n->message);
                n->message = NULL;
            } else if (n->computed && rec) {
                struct stat st = f->st; /* node_open checked the rest is unchanged */
                st.st_ctim = n->read_ctime;
                if (!digest_stat_cacheable(&st))
                    continue;
                cellar_hash_cache_entry *e = &rec[nrec++];
                *e = (cellar_hash_cache_entry){.label = cellar_algo_name(CELLAR_ALGO_SHA256),
                                               .len = 32};
                digest_file_id(&e->file, &st);
                memcpy(e->digest, n->d.d[CELLAR_ALGO_SHA256], 32);
            }
        }
    }
    if (rec)
        digest_cache_record(&dd->s->cache, rec, nrec); /* one transaction: kept if stopped */
    free(rec);
    if (!atomic_load(&dd->stop))
        progress(dd, NULL, true);
    return atomic_load(&dd->stop) ? cellar_stopped("dedup") : 0;
}

/* The sha256 the store's hash cache holds for the file st describes. */
static bool cached_sha256(cellar_store *s, const struct stat *st, uint8_t out[32])
{
    cellar_hash_cache_entry e = {.label = cellar_algo_name(CELLAR_ALGO_SHA256)};
    digest_file_id(&e.file, st);
    digest_cache_lookup(&s->cache, &e, 1);
    if (e.len != 32)
        return false;
    memcpy(out, e.digest, 32);
    return true;
}

/* Groups the files into inodes, picks the candidates (a size shared by
 * another inode or by a stored blob), and resolves or hashes them. */
static int resolve_candidates(struct dedup *dd, struct dnode ***out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!(dd->nodes = cellar_calloc(dd->nfiles ? dd->nfiles : 1, sizeof *dd->nodes)))
        return CELLAR_ENOMEM;
    for (size_t i = 0; i < dd->nfiles;) {
        size_t j = i + 1;
        while (j < dd->nfiles && dd->files[j].st.st_ino == dd->files[i].st.st_ino &&
               dd->files[j].st.st_dev == dd->files[i].st.st_dev)
            j++;
        dd->nodes[dd->nnodes++] = (struct dnode){.first = i, .count = j - i};
        i = j;
    }
    struct dnode **cand = cellar_calloc(dd->nnodes ? dd->nnodes : 1, sizeof *cand);
    struct dnode **toread = cellar_calloc(dd->nnodes ? dd->nnodes : 1, sizeof *toread);
    struct group *groups = cellar_calloc(dd->nnodes ? dd->nnodes : 1, sizeof *groups);
    size_t ncand = 0, nread = 0, ngroups = 0;
    int rc = 0;
    if (!cand || !toread || !groups) {
        rc = CELLAR_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < dd->nnodes;) {
        off_t size = dd->files[dd->nodes[i].first].st.st_size;
        size_t j = i + 1;
        while (j < dd->nnodes && dd->files[dd->nodes[j].first].st.st_size == size)
            j++;
        int known = j - i >= 2 ? 1 : index_blob_size_known(dd->s->db, (uint64_t)size);
        if (known < 0) {
            rc = known;
            goto done;
        }
        size_t group_start = nread;
        for (size_t k = i; known && k < j; k++) {
            struct dnode *n = &dd->nodes[k];
            const struct stat *st = &dd->files[n->first].st;
            uint8_t sha[32];
            struct stat obj;
            int r = index_blob_by_inode(dd->s->db, (uint64_t)st->st_dev, (uint64_t)st->st_ino, sha);
            if (r < 0) {
                rc = r;
                goto done;
            }
            if (r == 1 && store_object_stat(dd->s, sha, &obj) == 1 && obj.st_ino == st->st_ino &&
                obj.st_dev == st->st_dev) {
                /* Already the stored copy: known without reading it. */
                memcpy(n->d.d[CELLAR_ALGO_SHA256], sha, 32);
                n->d.have = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256);
                n->d.size = (uint64_t)size;
                n->hashed = n->object = true;
            } else if (cached_sha256(dd->s, st, n->d.d[CELLAR_ALGO_SHA256])) {
                n->d.have = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256);
                n->d.size = (uint64_t)size;
                n->hashed = true;
            } else {
                toread[nread++] = n;
            }
            cand[ncand++] = n;
        }
        if (nread > group_start)
            groups[ngroups++] = (struct group){.g = toread + group_start,
                                               .n = nread - group_start,
                                               .bytes = (uint64_t)size * (nread - group_start)};
        i = j;
    }
    if ((rc = read_groups(dd, groups, ngroups)))
        goto done;
    /* The digest must describe the file as walked. */
    for (size_t i = 0; i < ncand; i++) {
        struct dnode *n = cand[i];
        const struct dfile *f = &dd->files[n->first];
        if (!n->object && !n->bad && n->hashed && !unchanged(f->path, &f->st)) {
            n->bad = true;
            event(dd, CELLAR_DEDUP_SKIPPED, f->path, (uint64_t)f->st.st_size,
                  "changed during dedup; left alone");
        }
    }
    size_t keep = 0;
    for (size_t i = 0; i < ncand; i++)
        if (cand[i]->hashed && !cand[i]->bad)
            cand[keep++] = cand[i];
    *out = cand;
    *nout = keep;
    cand = NULL;
done:
    free(cand);
    free(toread);
    free(groups);
    return rc;
}

int cellar_store_dedup(cellar_dedup_stats *stats, cellar_store *s, size_t npaths,
                       const char *const *paths, const cellar_dedup_opts *opts)
{
    CELLAR_OPTS_CHECK(opts, "cellar_dedup_opts", CELLAR_DEDUP_OPTS_VERSION,
                      "CELLAR_DEDUP_OPTS_INIT");
    cellar_dedup_opts none = CELLAR_DEDUP_OPTS_INIT;
    cellar_dedup_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    struct dedup dd = {.s = s, .o = opts ? opts : &none, .stats = stats};
    dd.caller = pthread_self();
    walk_opts wo = {.follow = dd.o->flags & CELLAR_DEDUP_FOLLOW_SYMLINKS,
                    .skip_dir = s->home,
                    .fn = collect,
                    .err = walk_error,
                    .ctx = &dd};
    int rc = 0;
    if (dd.o->flags & CELLAR_DEDUP_FOLLOW_SYMLINKS) {
        dd.roots = cellar_calloc(npaths, sizeof *dd.roots);
        if (!dd.roots)
            return CELLAR_ENOMEM;
        for (size_t i = 0; i < npaths; i++)
            if ((dd.roots[dd.nroots] = realpath(paths[i], NULL)))
                dd.nroots++;
    }
    s->batch = true;
    for (size_t i = 0; rc == 0 && i < npaths; i++) {
        rc = walk_tree(paths[i], &wo);
        if (rc && rc != CELLAR_ENOMEM && rc != CELLAR_EUSER) {
            event(&dd, CELLAR_DEDUP_ERROR, paths[i], 0, cellar_error_last());
            rc = 0;
        }
        if (rc == 0 && atomic_load(&dd.stop))
            rc = cellar_stopped("dedup");
    }
    struct dnode **cand = NULL;
    size_t ncand = 0;
    inoset before;
    inoset_init(&before);
    if (rc == 0) {
        qsort(dd.files, dd.nfiles, sizeof *dd.files, cmp_file);
        drop_repeats(&dd);
        rc = disk_bytes(&dd, false, &before, &stats->bytes_before, NULL, NULL);
    }
    if (rc == 0)
        rc = resolve_candidates(&dd, &cand, &ncand);
    if (rc == 0) {
        qsort(cand, ncand, sizeof *cand, cmp_node_sha);
        dd.files_total = ncand;
        dd.tick = (struct timespec){0, 0};
        for (size_t i = 0; rc == 0 && i < ncand;) {
            size_t j = i + 1;
            while (j < ncand && !memcmp(cand[j]->d.d[CELLAR_ALGO_SHA256],
                                        cand[i]->d.d[CELLAR_ALGO_SHA256], 32))
                j++;
            rc = link_group(&dd, cand + i, j - i);
            dd.files_done = j;
            progress(&dd, dd.files[cand[i]->first].path, j == ncand);
            if (rc == 0 && atomic_load(&dd.stop))
                rc = cellar_stopped("dedup");
            i = j;
        }
    }
    if (rc == 0) {
        bool dry = dd.o->dry_run;
        inoset after;
        inoset_init(&after);
        rc = disk_bytes(&dd, !dry, &after, &stats->bytes_after, &before, &stats->bytes_before);
        inoset_free(&after);
    }
    inoset_free(&before);
    s->batch = false;
    free(cand);
    for (size_t i = 0; i < dd.nfiles; i++)
        free(dd.files[i].path);
    free(dd.files);
    free(dd.nodes);
    for (size_t i = 0; i < dd.nroots; i++)
        free(dd.roots[i]);
    free(dd.roots);
    return rc;
}

int dedup_file(cellar_store *s, const char *path, const struct stat *st, unsigned flags,
               cellar_algo want_algo, const uint8_t *want, dedup_one *res)
{
    memset(res, 0, sizeof *res);
    cellar_hash_opts ho = CELLAR_HASH_OPTS_INIT;
    ho.algos = store_algos((uint64_t)st->st_size, 0);
    ho.cache = &s->cache;
    if (want)
        ho.algos |= CELLAR_ALGO_BIT(want_algo);
    int rc = cellar_hash_path(&res->d, path, &ho);
    if (rc)
        return rc;
    if (want && memcmp(res->d.d[want_algo], want, cellar_algo_len(want_algo)) != 0) {
        char got[65];
        cellar_digest_hex(got, &res->d, want_algo);
        return cellar_fail(CELLAR_EMISMATCH, "%s: its %s is %s, not the one its name says", path,
                           cellar_algo_name(want_algo), got);
    }
    if (!unchanged(path, st))
        return cellar_fail(CELLAR_ECHANGED, "%s: changed while read; left alone", path);
    const uint8_t *sha = res->d.d[CELLAR_ALGO_SHA256];
    char lock[65];
    int lfd;
    store_lock_name(lock, sha);
    if ((rc = store_lock(s, lock, true, &lfd)))
        return rc;
    struct stat obj_st;
    char *obj = store_object_path(s, sha);
    if (!obj) {
        rc = CELLAR_ENOMEM;
        goto done;
    }
    rc = store_object_stat(s, sha, &obj_st);
    if (rc == 0) {
        rc = adopt_path(s, path, st, &res->d);
        if (rc == 0) {
            res->linked = true;
            goto done;
        }
        if (rc != CELLAR_EUNSUPPORTED)
            goto done;
        /* Not adoptable (another filesystem or owner): the store gets a copy. */
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = cellar_fail_errno(errno, "%s", path);
            goto done;
        }
        cellar_digests d;
        rc = store_copy_in(s, path, fd, st, ho.algos, true, &d);
        close(fd);
        if (rc || (rc = store_object_stat(s, sha, &obj_st)) != 1)
            goto done;
    } else if (rc < 0) {
        goto done;
    } else {
        rc = index_blob_put(s->db, &res->d, (uint64_t)obj_st.st_dev, (uint64_t)obj_st.st_ino);
        if (rc)
            goto done;
    }
    if (obj_st.st_ino == st->st_ino && obj_st.st_dev == st->st_dev) {
        res->linked = res->already = true;
        rc = 0;
        goto done;
    }
    const char *why = st->st_dev != obj_st.st_dev ? "on another filesystem than the store"
                                                  : ineligible(st);
    if (why) {
        rc = cellar_fail(CELLAR_EUNSUPPORTED, "%s: %s", path, why);
        goto done;
    }
    rc = replace_path(s, path, st, obj, &obj_st, sha, flags, true);
    res->linked = rc == 0;
done:
    free(obj);
    store_unlock(lfd);
    return rc;
}
