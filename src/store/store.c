/* The content-addressed store: objects named by sha256 under
 * $CELLAR_HOME/objects/sha256/ab/cdef..., read-only, written through a temp
 * file and a link (never half visible), indexed in cellar.db.
 *
 * Writing a blob the store already has is "freshen and return", as in
 * libgit2's object database. Objects enter by link(2), not rename(2), so a
 * concurrent writer of the same blob can never replace an object that
 * someone already hard-linked elsewhere. */
#include "store.h"

#include "digest.h"
#include "store_index.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint32_t store_algos(uint64_t size, unsigned add_flags)
{
    uint32_t a = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256) | CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3);
    if (size <= STORE_GITSHA1_MAX && !(add_flags & CELLAR_ADD_NO_GITSHA1))
        a |= CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1);
    return a;
}

char *store_object_path(const cellar_store *s, const uint8_t sha256[32])
{
    char hex[65];
    cellar_hex(hex, sha256, 32);
    return cellar_sprintf("%s/%.2s/%s", s->objects, hex, hex + 2);
}

int store_object_stat(const cellar_store *s, const uint8_t sha256[32], struct stat *st)
{
    char *path = store_object_path(s, sha256);
    if (!path)
        return CELLAR_ENOMEM;
    int rc = 1;
    if (lstat(path, st) != 0)
        rc = errno == ENOENT ? 0 : cellar_fail_errno(errno, "%s", path);
    else if (!S_ISREG(st->st_mode))
        rc = cellar_fail(CELLAR_EFORMAT, "%s: an object that is not a regular file", path);
    free(path);
    return rc;
}

/* ---- locks ---------------------------------------------------------------- */

void store_lock_name(char out[65], const uint8_t sha256[32])
{
    cellar_hex(out, sha256, 32);
}

static char *lock_path(const cellar_store *s, const char *name)
{
    return cellar_sprintf("%s/%s.lock", s->locks, name);
}

int store_lock(const cellar_store *s, const char *name, bool wait, int *fd_out)
{
    *fd_out = -1;
    char *path = lock_path(s, name);
    if (!path)
        return CELLAR_ENOMEM;
    int rc = 0;
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            rc = cellar_fail_errno(errno, "%s: cannot open lock", path);
            break;
        }
        int r;
        while ((r = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB))) != 0 && errno == EINTR)
            ;
        if (r != 0) {
            rc = errno == EWOULDBLOCK
                     ? cellar_fail(CELLAR_EBUSY, "%s: another cellar process is writing it", name)
                     : cellar_fail_errno(errno, "%s: flock", path);
            close(fd);
            break;
        }
        /* The holder we waited for may have removed the file: then we hold
         * a lock nobody else can see, and must take the one at the path. */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev) {
            *fd_out = fd;
            break;
        }
        close(fd);
    }
    free(path);
    return rc;
}

void store_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

void store_lock_remove(const cellar_store *s, const char *name, int fd)
{
    char *path = lock_path(s, name);
    if (path)
        unlink(path);
    free(path);
    store_unlock(fd);
}

/* ---- opening ---------------------------------------------------------------- */

int cellar_store_open(cellar_store **out, const char *home)
{
    *out = NULL;
    RETURN_ERROR_IF(!home || !*home, CELLAR_EINVAL,
                    "no store directory given (cellar_store_home_from_env() gives the default)");
    cellar_store *s = cellar_calloc(1, sizeof *s);
    if (!s)
        return CELLAR_ENOMEM;
    int rc = CELLAR_ENOMEM;
    char *given = cellar_strdup(home);
    if (!given)
        goto fail;
    /* One absolute spelling of the home: symlink places point at object
     * paths built from it, so they must resolve from anywhere, and gc
     * compares them with the paths it builds. */
    if ((rc = cellar_mkdirs(given, 0755)) == 0 && !(s->home = realpath(given, NULL)))
        rc = cellar_fail_errno(errno, "%s", given);
    free(given);
    if (rc)
        goto fail;
    rc = CELLAR_ENOMEM;
    s->objects = cellar_path_join(s->home, "objects/sha256");
    s->tmp = cellar_path_join(s->home, "tmp");
    s->locks = cellar_path_join(s->home, "locks");
    char *dbpath = cellar_path_join(s->home, "cellar.db");
    if (!s->objects || !s->tmp || !s->locks || !dbpath) {
        free(dbpath);
        goto fail;
    }
    if ((rc = cellar_mkdirs(s->objects, 0755)) || (rc = cellar_mkdirs(s->tmp, 0755)) ||
        (rc = cellar_mkdirs(s->locks, 0755))) {
        free(dbpath);
        goto fail;
    }
    struct stat st;
    if (stat(s->objects, &st) != 0) {
        rc = cellar_fail_errno(errno, "%s", s->objects);
        free(dbpath);
        goto fail;
    }
    s->dev = st.st_dev;
    rc = cellar_db_open(&s->db, dbpath);
    free(dbpath);
    if (rc || (rc = index_migrate(s->db)) || (rc = store_cache_init(s)))
        goto fail;
    *out = s;
    return 0;
fail:
    cellar_store_free(s);
    return rc;
}

int store_sync_dir(cellar_store *s, const char *dir)
{
    return s->batch ? 0 : cellar_fsync_dir(dir);
}

void cellar_store_free(cellar_store *s)
{
    if (!s)
        return;
    store_pins_release(s);
    cellar_db_close(s->db);
    free(s->home);
    free(s->objects);
    free(s->tmp);
    free(s->locks);
    free(s);
}

const char *cellar_store_home(const cellar_store *s)
{
    return s->home;
}

/* ---- lookups ---------------------------------------------------------------- */

int cellar_store_object_path(char **path_out, cellar_store *s, const uint8_t sha256[32])
{
    *path_out = NULL;
    struct stat st;
    int rc = store_object_stat(s, sha256, &st);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        char hex[65];
        cellar_hex(hex, sha256, 32);
        return cellar_fail(CELLAR_ENOTFOUND, "sha256:%s: not in the store", hex);
    }
    *path_out = store_object_path(s, sha256);
    return *path_out ? 0 : CELLAR_ENOMEM;
}

int cellar_store_find(uint8_t sha256_out[32], cellar_store *s, cellar_algo algo,
                      const uint8_t *digest)
{
    uint8_t sha[32];
    int rc;
    if (algo == CELLAR_ALGO_SHA256) {
        /* The objects are the truth: an object whose index row was lost to a
         * crash is still found. */
        memcpy(sha, digest, 32);
        rc = 1;
    } else {
        rc = index_blob_find(s->db, algo, digest, sha);
    }
    struct stat st;
    if (rc == 1 && (rc = store_object_stat(s, sha, &st)) == 1) {
        if (sha256_out)
            memcpy(sha256_out, sha, 32);
        return 0;
    }
    if (rc < 0)
        return rc;
    char hex[2 * CELLAR_DIGEST_MAX + 1];
    cellar_hex(hex, digest, algo == CELLAR_ALGO_GITSHA1 ? 20 : 32);
    return cellar_fail(CELLAR_ENOTFOUND, "%s: %s:%s: not in the store", s->home,
                       cellar_algo_name(algo), hex);
}

/* ---- hashing and admitting ------------------------------------------------ */

int store_hash_fd(int fd, const char *path, const struct stat *st, uint32_t algos,
                  cellar_digests *out)
{
    digest_lane lanes[CELLAR_ALGO__COUNT];
    size_t n = 0;
    for (int a = 0; a < CELLAR_ALGO__COUNT; a++) {
        if (algos & CELLAR_ALGO_BIT(a)) {
            lanes[n].algo = (cellar_algo)a;
            lanes[n].start = 0;
            lanes[n].end = UINT64_MAX;
            n++;
        }
    }
    int rc = digest_lanes_fd(lanes, n, fd, path, st, 0, 0, NULL);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    out->size = (uint64_t)st->st_size;
    for (size_t i = 0; i < n; i++) {
        memcpy(out->d[lanes[i].algo], lanes[i].out, cellar_algo_len(lanes[i].algo));
        out->have |= CELLAR_ALGO_BIT(lanes[i].algo);
    }
    return 0;
}

int store_freshen(const cellar_store *s, const uint8_t sha256[32])
{
    char *path = store_object_path(s, sha256);
    if (!path)
        return CELLAR_ENOMEM;
    int rc = 0;
    /* chmod updates the change time gc's grace period reads; it never
     * touches the modification time. */
    if (chmod(path, 0444) != 0 && errno != EPERM)
        rc = cellar_fail_errno(errno, "%s: freshen", path);
    free(path);
    return rc;
}

/* Records a blob's digests and its object's inode; the object is already
 * safely in place, so a failing index only costs a later re-hash. */
static int record_blob(cellar_store *s, const cellar_digests *d)
{
    struct stat st;
    int rc = store_object_stat(s, d->d[CELLAR_ALGO_SHA256], &st);
    if (rc < 0)
        return rc;
    return index_blob_put(s->db, d, rc ? (uint64_t)st.st_dev : 0, rc ? (uint64_t)st.st_ino : 0);
}

int store_admit(cellar_store *s, const char *tmp, const cellar_digests *d, bool *created)
{
    if (created)
        *created = false;
    char *obj = store_object_path(s, d->d[CELLAR_ALGO_SHA256]);
    if (!obj) {
        unlink(tmp);
        return CELLAR_ENOMEM;
    }
    /* Pinned under the blob's lock, before the object exists: gc cannot
     * take it between admission and the caller placing it. */
    int rc = store_pin_add(s, d->d[CELLAR_ALGO_SHA256]);
    if (rc) {
        unlink(tmp);
        free(obj);
        return rc;
    }
    char *dir = cellar_strndup(obj, strlen(s->objects) + 3);
    if (!dir || (rc = cellar_mkdirs(dir, 0755))) {
        rc = rc ? rc : CELLAR_ENOMEM;
        unlink(tmp);
        goto done;
    }
    if (link(tmp, obj) == 0) {
        if (created)
            *created = true;
        unlink(tmp);
        rc = store_sync_dir(s, dir);
    } else if (errno == EEXIST) {
        unlink(tmp);
        rc = store_freshen(s, d->d[CELLAR_ALGO_SHA256]);
    } else {
        rc = cellar_fail_errno(errno, "%s: cannot place object", obj);
        unlink(tmp);
    }
    if (rc == 0)
        rc = record_blob(s, d);
done:
    free(dir);
    free(obj);
    return rc;
}

/* A unique name in tmp/ with prefix; allocated. */
static char *tmp_name(const cellar_store *s, const char *prefix)
{
    static _Atomic unsigned counter; /* unique across threads too */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return cellar_sprintf("%s/%s.%ld.%u.%lx", s->tmp, prefix, (long)getpid(), ++counter,
                          (unsigned long)ts.tv_nsec);
}

int store_no_writers(int fd, const char *path)
{
    /* A read lease is granted only while no descriptor anywhere has the
     * file open for writing (fcntl(2); the owner may take one). Released
     * at once: held, a later opener would send us SIGIO. */
    if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
        fcntl(fd, F_SETLEASE, F_UNLCK);
        return 0;
    }
    if (errno == EAGAIN || errno == EBUSY)
        return cellar_fail(CELLAR_EBUSY, "%s: open for writing by another process; left alone",
                           path);
    return cellar_fail_errno(errno, "%s: cannot make sure nobody writes it (lease)", path);
}

bool store_may_share(const struct stat *st)
{
    return st->st_uid == geteuid() && !(st->st_mode & 07000) && (st->st_mode & 0555) == 0444;
}

int store_adopt(cellar_store *s, const char *path, int fd, const struct stat *st,
                const cellar_digests *d)
{
    /* A private or executable file would become world-readable or lose its
     * x bits as the store's 0444 object: it is copied in instead. */
    if (st->st_dev != s->dev || !store_may_share(st))
        return CELLAR_EUNSUPPORTED;
    char *tmp = tmp_name(s, "adopt");
    if (!tmp)
        return CELLAR_ENOMEM;
    int rc = 0;
    /* linkat follows a symlinked path to the file it names, like open did. */
    if (linkat(AT_FDCWD, path, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) != 0) {
        rc = errno == EXDEV || errno == EPERM || errno == EMLINK || errno == EACCES
                 ? CELLAR_EUNSUPPORTED
                 : cellar_fail_errno(errno, "%s: cannot link into the store", path);
        free(tmp);
        return rc;
    }
    /* Read-only from now on: a write through any name would change the
     * stored blob. */
    if (fchmod(fd, 0444) != 0) {
        rc = errno == EPERM ? CELLAR_EUNSUPPORTED : cellar_fail_errno(errno, "%s: chmod", path);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    /* 0444 stops new writers (not root), not one that already holds the
     * file open: its next write would change the object and every name
     * linked to it. Such a file (or one whose writers cannot be known) is
     * copied in instead. */
    if (store_no_writers(fd, path) != 0) {
        cellar_error_clear();
        fchmod(fd, st->st_mode & 07777);
        unlink(tmp);
        free(tmp);
        return CELLAR_EUNSUPPORTED;
    }
    /* Nobody writes it now nor can start to: it must still be the very
     * inode that was hashed, unchanged since. */
    struct stat now;
    if (stat(tmp, &now) != 0 || now.st_ino != st->st_ino || now.st_dev != st->st_dev ||
        now.st_size != st->st_size || now.st_mtim.tv_sec != st->st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != st->st_mtim.tv_nsec) {
        rc = cellar_fail(CELLAR_ECHANGED, "%s: changed while it was being added", path);
        fchmod(fd, st->st_mode & 07777);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    bool created;
    rc = store_admit(s, tmp, d, &created);
    if (rc) {
        /* Not stored: the user's file gets its own mode back. */
        unlink(tmp);
        fchmod(fd, st->st_mode & 07777);
    }
    free(tmp);
    if (rc == 0 && created) {
        char *abs = store_abspath(path);
        if (!abs)
            return CELLAR_ENOMEM;
        rc = index_place_put(s->db, abs, d->d[CELLAR_ALGO_SHA256], CELLAR_LINK_HARD);
        free(abs);
    }
    return rc;
}

int store_copy_in(cellar_store *s, const char *path, int fd, const struct stat *st,
                  uint32_t algos, bool have_lock, cellar_digests *out)
{
    char *tmp = tmp_name(s, "add");
    if (!tmp)
        return CELLAR_ENOMEM;
    int rc = 0;
    cellar_hasher *h = NULL;
    uint8_t *buf = NULL;
    int tfd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (tfd < 0) {
        rc = cellar_fail_errno(errno, "%s: cannot create a temp file in the store", tmp);
        goto done;
    }
    const size_t bufsize = 1u << 20;
    if (!(buf = cellar_malloc(bufsize)) ||
        (rc = cellar_hasher_new(&h, algos, (uint64_t)st->st_size))) {
        rc = rc ? rc : CELLAR_ENOMEM;
        goto done;
    }
    uint64_t total = 0;
    for (;;) {
        ssize_t r = cellar_full_read(fd, buf, bufsize);
        if (r < 0) {
            rc = cellar_fail_errno(errno, "%s: read", path);
            goto done;
        }
        if (r == 0)
            break;
        cellar_hasher_update(h, buf, (size_t)r);
        if (cellar_full_write(tfd, buf, (size_t)r) != 0) {
            rc = cellar_fail_errno(errno, "%s: copying into the store (%s)", path, s->home);
            goto done;
        }
        total += (uint64_t)r;
    }
    struct stat now;
    if (fstat(fd, &now) != 0 || total != (uint64_t)st->st_size ||
        now.st_size != st->st_size || now.st_mtim.tv_sec != st->st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != st->st_mtim.tv_nsec) {
        rc = cellar_fail(CELLAR_ECHANGED, "%s: changed while it was being added", path);
        goto done;
    }
    if ((rc = cellar_hasher_final(out, h))) {
        rc = cellar_fail(CELLAR_ECHANGED, "%s: changed while it was being added", path);
        goto done;
    }
    out->size = total;
    if (fsync(tfd) != 0) {
        rc = cellar_fail_errno(errno, "%s: fsync", tmp);
        goto done;
    }
    if (close(tfd) != 0) {
        tfd = -1;
        rc = cellar_fail_errno(errno, "%s: copying into the store (%s)", path, s->home);
        goto done;
    }
    tfd = -1;
    char lock[65];
    int lfd = -1;
    store_lock_name(lock, out->d[CELLAR_ALGO_SHA256]);
    if (!have_lock && (rc = store_lock(s, lock, true, &lfd)))
        goto done;
    rc = store_admit(s, tmp, out, NULL);
    if (!have_lock)
        store_unlock(lfd);
    free(tmp);
    tmp = NULL;
done:
    if (tfd >= 0)
        close(tfd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    cellar_hasher_free(h);
    free(buf);
    return rc;
}

char *store_abspath(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? cellar_strndup(path, slash == path ? 1 : (size_t)(slash - path))
                      : cellar_strdup(".");
    if (!dir)
        return NULL;
    char *real = realpath(dir, NULL);
    free(dir);
    if (!real)
        return cellar_strdup(path);
    char *abs = cellar_path_join(real, slash ? slash + 1 : path);
    free(real);
    return abs;
}

/* The blob whose object is the inode st describes: 1 (digests in d), 0, < 0. */
static int known_inode(cellar_store *s, const struct stat *st, cellar_digests *d)
{
    uint8_t sha[32];
    struct stat obj;
    int rc = index_blob_by_inode(s->db, (uint64_t)st->st_dev, (uint64_t)st->st_ino, sha);
    if (rc != 1)
        return rc;
    if ((rc = store_object_stat(s, sha, &obj)) != 1)
        return rc;
    if (obj.st_ino != st->st_ino || obj.st_dev != st->st_dev)
        return 0;
    return index_blob_get(s->db, sha, d);
}

/* The store's own files (its index, locks, temp files) are never blobs:
 * adopting the live database would make it read-only and let its writes
 * change a stored object. */
static int refuse_store_file(const cellar_store *s, const char *path)
{
    char *abs = store_abspath(path);
    if (!abs)
        return CELLAR_ENOMEM;
    size_t n = strlen(s->home);
    int rc = 0;
    if (strncmp(abs, s->home, n) == 0 && (abs[n] == '/' || abs[n] == '\0'))
        rc = cellar_fail(CELLAR_EINVAL, "%s: a file of the store itself (%s), not added", path,
                         s->home);
    free(abs);
    return rc;
}

static int add_once(cellar_store *s, const char *path, unsigned flags, cellar_digests *out)
{
    int fd;
    struct stat st;
    int rc = digest_open(&fd, &st, path);
    if (rc)
        return rc;
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cellar_fail(CELLAR_EINVAL, "%s: not a regular file", path);
    }
    cellar_digests d;
    /* Already the stored copy (adopted before, or linked from the store). */
    if ((rc = known_inode(s, &st, &d)) != 0) {
        if (rc == 1 && !(rc = store_freshen(s, d.d[CELLAR_ALGO_SHA256])) && out)
            *out = d;
        close(fd);
        return rc;
    }
    if ((rc = refuse_store_file(s, path))) {
        close(fd);
        return rc;
    }
    uint32_t algos = store_algos((uint64_t)st.st_size, flags);
    bool adopt = !(flags & CELLAR_ADD_COPY) && st.st_dev == s->dev && store_may_share(&st);
    if (!adopt) {
        rc = store_copy_in(s, path, fd, &st, algos, false, &d);
        goto done;
    }
    if ((rc = store_hash_fd(fd, path, &st, algos, &d)))
        goto done;
    char lock[65];
    int lfd;
    store_lock_name(lock, d.d[CELLAR_ALGO_SHA256]);
    if ((rc = store_lock(s, lock, true, &lfd)))
        goto done;
    struct stat obj;
    rc = store_object_stat(s, d.d[CELLAR_ALGO_SHA256], &obj);
    if (rc == 1) {
        if ((uint64_t)obj.st_size != d.size) {
            char hex[65];
            cellar_hex(hex, d.d[CELLAR_ALGO_SHA256], 32);
            rc = cellar_fail(CELLAR_EMISMATCH,
                             "object %s is %lld bytes, not %llu: run 'cellar verify'", hex,
                             (long long)obj.st_size, (unsigned long long)d.size);
        } else if (!(rc = store_freshen(s, d.d[CELLAR_ALGO_SHA256]))) {
            rc = record_blob(s, &d);
        }
    } else if (rc == 0) {
        rc = store_adopt(s, path, fd, &st, &d);
        if (rc == CELLAR_EUNSUPPORTED) {
            if (lseek(fd, 0, SEEK_SET) < 0)
                rc = cellar_fail_errno(errno, "%s: seek", path);
            else
                rc = store_copy_in(s, path, fd, &st, algos, true, &d);
        }
    }
    store_unlock(lfd);
done:
    close(fd);
    if (rc == 0 && out)
        *out = d;
    return rc;
}

int cellar_store_add_file(cellar_digests *out, cellar_store *s, const char *path, unsigned flags)
{
    /* Another process adopting the same file changes its mode and change
     * time under our hashing; the next attempt finds it in the store. */
    int rc;
    for (int attempt = 0; attempt < 3; attempt++)
        if ((rc = add_once(s, path, flags, out)) != CELLAR_ECHANGED)
            break;
    return rc;
}

int cellar_store_record_digests(cellar_store *s, const cellar_digests *d)
{
    if (!(d->have & CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256)))
        return cellar_fail(CELLAR_EINVAL, "record digests: no sha256 given");
    struct stat st;
    int rc = store_object_stat(s, d->d[CELLAR_ALGO_SHA256], &st);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        char hex[65];
        cellar_hex(hex, d->d[CELLAR_ALGO_SHA256], 32);
        return cellar_fail(CELLAR_ENOTFOUND, "sha256:%s: not in the store", hex);
    }
    cellar_digests copy = *d;
    copy.size = (uint64_t)st.st_size;
    return index_blob_put(s->db, &copy, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
}

int cellar_store_record_xet(cellar_store *s, const uint8_t sha256[32], const char *xet_hex)
{
    uint8_t tmp[32];
    if (!xet_hex || strlen(xet_hex) != 64 || !cellar_unhex(tmp, xet_hex, 32))
        return cellar_fail(CELLAR_EINVAL, "xet hash '%s': not 64 hex digits",
                           xet_hex ? xet_hex : "");
    cellar_digests d;
    int rc = index_blob_get(s->db, sha256, &d);
    if (rc == 0) {
        /* Known on disk but not yet indexed: index it first. */
        memset(&d, 0, sizeof d);
        memcpy(d.d[CELLAR_ALGO_SHA256], sha256, 32);
        d.have = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256);
        rc = cellar_store_record_digests(s, &d);
    }
    if (rc < 0)
        return rc;
    return index_blob_set_xet(s->db, sha256, xet_hex);
}

/* ---- snapshots ---------------------------------------------------------- */

int cellar_store_record_snapshot(cellar_store *s, const char *repo, const char *revision,
                                 const char *commit, size_t n, const char *const *paths,
                                 const uint8_t (*sha256s)[32])
{
    if (!repo || !*repo || !revision || !*revision || !commit || !*commit)
        return cellar_fail(CELLAR_EINVAL, "record snapshot: repo, revision and commit are needed");
    size_t bytes;
    if (ck_mul(n ? n : 1, sizeof(uint64_t), &bytes))
        return cellar_fail(CELLAR_ERANGE, "%s@%s: too many files", repo, commit);
    uint64_t *sizes = cellar_malloc(bytes);
    if (!sizes)
        return CELLAR_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        rc = store_object_stat(s, sha256s[i], &st);
        if (rc == 0) {
            char hex[65];
            cellar_hex(hex, sha256s[i], 32);
            rc = cellar_fail(CELLAR_ENOTFOUND, "%s@%s: %s: blob sha256:%s is not in the store",
                             repo, commit, paths[i], hex);
        }
        if (rc < 0)
            break;
        rc = 0;
        sizes[i] = (uint64_t)st.st_size;
    }
    if (rc == 0)
        rc = index_snapshot_put(s->db, repo, revision, commit, n, paths, sha256s, sizes);
    free(sizes);
    return rc;
}

int cellar_store_find_snapshot(cellar_snapshot **out, cellar_store *s, const char *repo,
                               const char *revision)
{
    return index_snapshot_get(s->db, repo, revision, out);
}

/* ---- listing ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir, sorted; *n of them, all freed with free_names. */
static int list_dir(const char *dir, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : cellar_fail_errno(errno, "%s", dir);
    char **names = NULL;
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if ((rc = cellar_grow(&names, &cap, *n, sizeof *names, 64)))
            break;
        if (!(names[*n] = cellar_strdup(e->d_name))) {
            rc = CELLAR_ENOMEM;
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (names)
        qsort(names, *n, sizeof *names, cmp_str);
    *out = names;
    return rc;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int store_foreach_object(cellar_store *s, int (*cb)(const uint8_t sha256[32], const char *path,
                                                    const struct stat *st, void *ctx),
                         void *ctx)
{
    char **fans;
    size_t nfans;
    int rc = list_dir(s->objects, &fans, &nfans);
    for (size_t i = 0; rc == 0 && i < nfans; i++) {
        if (strlen(fans[i]) != 2)
            continue;
        char *dir = cellar_path_join(s->objects, fans[i]);
        char **names = NULL;
        size_t n = 0;
        if (!dir || (rc = list_dir(dir, &names, &n))) {
            rc = rc ? rc : CELLAR_ENOMEM;
            free(dir);
            break;
        }
        for (size_t j = 0; rc == 0 && j < n; j++) {
            char hex[65];
            uint8_t sha[32];
            if (strlen(names[j]) != 62)
                continue;
            snprintf(hex, sizeof hex, "%s%s", fans[i], names[j]);
            if (!cellar_unhex(sha, hex, 32))
                continue;
            char *path = cellar_path_join(dir, names[j]);
            struct stat st;
            if (!path) {
                rc = CELLAR_ENOMEM;
                break;
            }
            if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
                rc = cb(sha, path, &st, ctx);
            free(path);
        }
        free_names(names, n);
        free(dir);
    }
    free_names(fans, nfans);
    return rc;
}

struct foreach_ctx {
    cellar_store *s;
    cellar_object_cb cb;
    void *ctx;
};

static int foreach_one(const uint8_t sha256[32], const char *path, const struct stat *st,
                       void *vctx)
{
    struct foreach_ctx *c = vctx;
    cellar_object_info info;
    memset(&info, 0, sizeof info);
    memcpy(info.sha256, sha256, 32);
    info.size = (uint64_t)st->st_size;
    info.nlink = (uint64_t)st->st_nlink;
    info.mtime = (int64_t)st->st_mtim.tv_sec;
    info.path = path;
    int rc = index_blob_get(c->s->db, sha256, &info.digests);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        memcpy(info.digests.d[CELLAR_ALGO_SHA256], sha256, 32);
        info.digests.have = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256);
    }
    info.digests.size = info.size;
    return c->cb(&info, c->ctx) ? cellar_stopped("store listing") : 0;
}

int cellar_store_foreach(cellar_store *s, cellar_object_cb cb, void *ctx)
{
    struct foreach_ctx c = {s, cb, ctx};
    return store_foreach_object(s, foreach_one, &c);
}

struct place_ctx {
    cellar_place_cb cb;
    void *ctx;
};

static int place_one(const char *path, int mode, void *vctx)
{
    struct place_ctx *c = vctx;
    return c->cb(path, (cellar_link_mode)mode, c->ctx) ? cellar_stopped("places") : 0;
}

int cellar_store_foreach_place(cellar_store *s, const uint8_t sha256[32], cellar_place_cb cb,
                               void *ctx)
{
    struct place_ctx c = {cb, ctx};
    return index_place_foreach(s->db, sha256, place_one, &c);
}
