/* gc: removes objects nothing links to any more.
 *
 * An object is in use while it has another hard link (its link count says
 * so, whatever the index knows) or a recorded symlink place still points at
 * it. It is kept while younger than the grace period, judged by its change
 * time: creating the object, linking it anywhere and freshening it all
 * update that. And it is kept while a process holds its lock (an add, a
 * download commit, a link in progress) or pins it (pin.c: admitted or
 * found by a running pull, add, dedup or loader that has not placed it
 * yet); gc only try-locks, so it never waits for, nor blocks, the writers. */
#include "store.h"

#include "store_index.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Temp files younger than this are someone's work in progress, whatever
 * grace the caller asked for; resumable partials are kept for a week. */
#define TEMP_MIN_AGE 3600
#define PARTIAL_MAX_AGE (7 * 24 * 3600)

struct gc_ctx {
    cellar_store *s;
    const cellar_gc_opts *o;
    cellar_gc_stats *stats;
    cellar_gc_cb cb;
    void *ctx;
    time_t now;
    uint64_t examined;
    struct timespec tick;
};

struct place_check {
    const struct stat *obj_st;
    bool in_use;
    bool dry;
    cellar_db *db;
};

/* A place still holds the object if it is a symlink that resolves to it
 * (however the link spells the path: the inode decides), or, for a hard
 * link or copy, the same inode, which the link count already covers.
 * Places that no longer hold it are forgotten. */
static int check_place(const char *path, int mode, void *vctx)
{
    struct place_check *pc = vctx;
    struct stat st;
    int r = mode == CELLAR_LINK_SYMLINK ? stat(path, &st) : lstat(path, &st);
    bool holds = r == 0 && st.st_ino == pc->obj_st->st_ino && st.st_dev == pc->obj_st->st_dev;
    if (holds)
        pc->in_use = true;
    else if (!pc->dry && index_place_delete(pc->db, path) != 0)
        cellar_error_clear(); /* a full disk: the row stays, gc goes on */
    return 0;
}

static bool young(const struct gc_ctx *c, const struct stat *st)
{
    return (uint64_t)(c->now - st->st_ctim.tv_sec) < c->o->grace_seconds ||
           st->st_ctim.tv_sec > c->now;
}

static int collect_one(const uint8_t sha256[32], const char *path, const struct stat *st,
                       void *vctx)
{
    struct gc_ctx *c = vctx;
    bool dry = c->o->dry_run;
    c->examined++;
    if (c->o->progress && cellar_tick(&c->tick, 100)) {
        cellar_progress p = {.files_done = c->examined, .path = path};
        if (c->o->progress(&p, c->o->progress_ctx))
            return cellar_stopped("gc");
    }
    if (st->st_nlink > 1 || young(c, st)) {
        c->stats->objects_kept++;
        return 0;
    }
    char lock[65];
    int lfd;
    store_lock_name(lock, sha256);
    int rc = store_lock(c->s, lock, false, &lfd);
    if (rc == CELLAR_EBUSY) {
        c->stats->objects_kept++;
        return 0;
    }
    if (rc)
        return rc;
    /* Under the lock, so no link is being made or recorded meanwhile (a
     * symlink place leaves the object's link count and change time as they
     * were): nothing links to it now. */
    struct stat now;
    struct place_check pc = {st, false, dry, c->s->db};
    bool pinned = false;
    if (lstat(path, &now) != 0 || now.st_nlink > 1 || young(c, &now) ||
        (rc = index_place_foreach(c->s->db, sha256, check_place, &pc)) != 0 || pc.in_use ||
        (rc = store_pinned(c->s, sha256, dry, &pinned)) != 0 || pinned) {
        store_unlock(lfd);
        c->stats->objects_kept++;
        return rc;
    }
    if (!dry) {
        if (unlink(path) != 0) {
            rc = cellar_fail_errno(errno, "%s: cannot remove", path);
            store_unlock(lfd);
            return rc;
        }
        /* The object is gone, which is what counts (the objects are the
         * truth); a row left by a full disk costs nothing but a lookup. */
        if (index_blob_delete(c->s->db, sha256) != 0)
            cellar_error_clear();
        store_lock_remove(c->s, lock, lfd);
    } else {
        store_unlock(lfd);
    }
    c->stats->objects_removed++;
    c->stats->bytes_removed += (uint64_t)now.st_size;
    if (rc == 0 && c->cb && c->cb(sha256, (uint64_t)now.st_size, c->ctx))
        rc = cellar_stopped("gc");
    return rc;
}

/* Clears temp files a crashed process left in tmp/. */
static int clear_temp(struct gc_ctx *c)
{
    DIR *d = opendir(c->s->tmp);
    if (!d)
        return errno == ENOENT ? 0 : cellar_fail_errno(errno, "%s", c->s->tmp);
    uint64_t min_age = c->o->grace_seconds > TEMP_MIN_AGE ? c->o->grace_seconds : TEMP_MIN_AGE;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *path = cellar_path_join(c->s->tmp, e->d_name);
        struct stat st;
        if (!path) {
            rc = CELLAR_ENOMEM;
            break;
        }
        bool partial = !strncmp(e->d_name, "partial-", 8);
        uint64_t age = lstat(path, &st) == 0 && c->now > st.st_mtim.tv_sec
                           ? (uint64_t)(c->now - st.st_mtim.tv_sec)
                           : 0;
        /* --partials: every partial nobody holds, whatever its age (a full
         * disk after a failed pull). */
        if (age >= (partial ? (c->o->partials ? 0 : PARTIAL_MAX_AGE) : min_age)) {
            int lfd = -1;
            /* A partial in use is locked by its writer. */
            if (!partial || store_lock(c->s, e->d_name, false, &lfd) == 0) {
                if (!c->o->dry_run && unlink(path) == 0)
                    c->stats->temp_removed++;
                else if (c->o->dry_run)
                    c->stats->temp_removed++;
            }
            store_unlock(lfd);
            cellar_error_clear();
        }
        free(path);
    }
    closedir(d);
    return rc;
}

int cellar_store_gc(cellar_gc_stats *stats, cellar_store *s, const cellar_gc_opts *opts,
                    cellar_gc_cb cb, void *ctx)
{
    CELLAR_OPTS_CHECK(opts, "cellar_gc_opts", CELLAR_GC_OPTS_VERSION, "CELLAR_GC_OPTS_INIT");
    cellar_gc_opts defaults = CELLAR_GC_OPTS_INIT;
    cellar_gc_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    struct gc_ctx c = {s, opts ? opts : &defaults, stats, cb, ctx, time(NULL), 0, {0, 0}};
    int rc = store_foreach_object(s, collect_one, &c);
    if (rc == 0)
        rc = clear_temp(&c);
    if (rc == 0 && c.o->progress) {
        cellar_progress p = {.files_done = c.examined, .files_total = c.examined};
        if (c.o->progress(&p, c.o->progress_ctx))
            rc = cellar_stopped("gc");
    }
    return rc;
}
