/* Putting a stored blob at a place: hard link, reflink, symlink or copy,
 * always through a temp name beside the destination and a rename over it,
 * so the destination is at every moment either its old self or the blob. */
#include "store.h"

#include "store_index.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LEFTOVER_PREFIX ".cellar-link."

static const char *const mode_names[] = {"auto", "hard", "reflink", "symlink", "copy"};

const char *cellar_link_mode_name(cellar_link_mode m)
{
    return (unsigned)m < sizeof mode_names / sizeof mode_names[0] ? mode_names[m] : "unknown";
}

int cellar_link_mode_parse(cellar_link_mode *out, const char *name)
{
    for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++) {
        if (name && !strcmp(name, mode_names[i])) {
            *out = (cellar_link_mode)i;
            return 0;
        }
    }
    return cellar_fail(CELLAR_EINVAL, "link mode '%s': expected auto, hard, reflink, symlink or copy",
                       name ? name : "");
}

/* The temp name beside dest: ".cellar-link.<sha256>.<pid><random>", so a
 * leftover from a crash says which object it is a link to. */
static char *temp_beside(const char *dest, const uint8_t sha256[32])
{
    static _Atomic unsigned counter; /* unique across threads too */
    char hex[65];
    cellar_hex(hex, sha256, 32);
    const char *slash = strrchr(dest, '/');
    int dirlen = slash ? (int)(slash - dest) + 1 : 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return cellar_sprintf("%.*s" LEFTOVER_PREFIX "%s.%ld%u%lx", dirlen, dest, hex, (long)getpid(),
                          ++counter, (unsigned long)ts.tv_nsec & 0xfffff);
}

static char *parent_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return cellar_strdup(".");
    return cellar_strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* Renames tmp over dest and makes it durable. rename(2) does nothing when
 * both names are already links to one inode, so tmp is removed after. */
static int commit_temp(cellar_store *s, const char *tmp, const char *dest)
{
    if (rename(tmp, dest) != 0) {
        int rc = cellar_fail_errno(errno, "%s: cannot replace", dest);
        unlink(tmp);
        return rc;
    }
    unlink(tmp);
    char *dir = parent_of(dest);
    if (!dir)
        return CELLAR_ENOMEM;
    int rc = store_sync_dir(s, dir);
    free(dir);
    return rc;
}

static bool unsupported_errno(int e)
{
    return e == EXDEV || e == EPERM || e == EMLINK || e == EOPNOTSUPP || e == ENOTTY ||
           e == EINVAL || e == ENOSYS;
}

int link_hard_replace(cellar_store *s, const char *obj, const struct stat *obj_st, const uint8_t sha256[32],
                      const char *dest)
{
    struct stat st;
    if (lstat(dest, &st) == 0 && st.st_ino == obj_st->st_ino && st.st_dev == obj_st->st_dev)
        return 0;
    char *tmp = temp_beside(dest, sha256);
    if (!tmp)
        return CELLAR_ENOMEM;
    int rc;
    if (link(obj, tmp) != 0) {
        int e = errno;
        rc = cellar_fail_errno(e, "%s: cannot hard-link to %s", dest, obj);
        if (unsupported_errno(e))
            rc = CELLAR_EUNSUPPORTED;
    } else {
        rc = commit_temp(s, tmp, dest);
    }
    free(tmp);
    return rc;
}

bool link_clear_leftover(cellar_store *s, const char *path, const char *name)
{
    uint8_t sha[32];
    size_t plen = strlen(LEFTOVER_PREFIX);
    if (strncmp(name, LEFTOVER_PREFIX, plen) != 0 || strlen(name) < plen + 65 ||
        name[plen + 64] != '.' || !cellar_unhex(sha, name + plen, 32))
        return false;
    /* The temp name is only ever an extra name of an inode that another
     * name (the object, or the copy it was linked from) holds too. */
    struct stat obj, st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    bool object = store_object_stat(s, sha, &obj) == 1 && st.st_ino == obj.st_ino &&
                  st.st_dev == obj.st_dev;
    if (!object && st.st_nlink < 2)
        return false;
    return unlink(path) == 0;
}

/* Copies (or clones, with reflink) the object into a new file at tmp. */
static int copy_to(const char *obj, const char *tmp, bool reflink)
{
    int in = open(obj, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return cellar_fail_errno(errno, "%s", obj);
    int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        int rc = cellar_fail_errno(errno, "%s", tmp);
        close(in);
        return rc;
    }
    int rc = 0;
    if (reflink) {
        if (ioctl(out, FICLONE, in) != 0)
            rc = unsupported_errno(errno) || errno == EBADF
                     ? cellar_fail(CELLAR_EUNSUPPORTED, "%s: the filesystem cannot reflink", tmp)
                     : cellar_fail_errno(errno, "%s: reflink", tmp);
    } else {
        for (;;) {
            ssize_t n = copy_file_range(in, NULL, out, NULL, 1u << 30, 0);
            if (n > 0)
                continue;
            if (n == 0)
                break;
            if (errno == EINTR)
                continue;
            if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
                rc = cellar_fail_errno(errno, "%s: copy", tmp);
                break;
            }
            /* No in-kernel copy here: plain reads and writes. */
            char buf[1 << 16];
            ssize_t r;
            while ((r = cellar_full_read(in, buf, sizeof buf)) > 0)
                if (cellar_full_write(out, buf, (size_t)r) != 0)
                    break;
            if (r != 0)
                rc = cellar_fail_errno(errno, "%s: copy", tmp);
            break;
        }
    }
    if (rc == 0 && fsync(out) != 0)
        rc = cellar_fail_errno(errno, "%s: fsync", tmp);
    if (close(out) != 0 && rc == 0)
        rc = cellar_fail_errno(errno, "%s: close", tmp);
    close(in);
    if (rc)
        unlink(tmp);
    return rc;
}

/* One attempt at one mode; CELLAR_EUNSUPPORTED when the filesystem refuses. */
static int link_one(cellar_store *s, const char *obj, const struct stat *obj_st, const uint8_t sha256[32],
                    const char *dest, cellar_link_mode mode)
{
    if (mode == CELLAR_LINK_HARD)
        return link_hard_replace(s, obj, obj_st, sha256, dest);
    char *tmp = temp_beside(dest, sha256);
    if (!tmp)
        return CELLAR_ENOMEM;
    int rc = 0;
    if (mode == CELLAR_LINK_SYMLINK) {
        if (symlink(obj, tmp) != 0)
            rc = cellar_fail_errno(errno, "%s: symlink", dest);
    } else {
        rc = copy_to(obj, tmp, mode == CELLAR_LINK_REFLINK);
    }
    if (rc == 0)
        rc = commit_temp(s, tmp, dest);
    free(tmp);
    return rc;
}

int cellar_store_link(cellar_store *s, const uint8_t sha256[32], const char *dest,
                      cellar_link_mode mode, cellar_link_mode *used)
{
    if ((unsigned)mode > CELLAR_LINK_COPY)
        return cellar_fail(CELLAR_EINVAL, "%s: unknown link mode %d", dest, (int)mode);
    char *obj;
    int rc = cellar_store_object_path(s, sha256, &obj);
    if (rc)
        return rc;
    char *dir = parent_of(dest);
    if (!dir || (rc = cellar_mkdirs(dir, 0755))) {
        rc = rc ? rc : CELLAR_ENOMEM;
        goto done;
    }
    /* The blob's lock keeps gc from removing the object between our look
     * and our link. */
    char lock[65];
    int lfd;
    store_lock_name(lock, sha256);
    if ((rc = store_lock(s, lock, true, &lfd)))
        goto done;
    struct stat obj_st;
    if (stat(obj, &obj_st) != 0) {
        rc = cellar_fail_errno(errno, "%s", obj);
        store_unlock(lfd);
        goto done;
    }
    static const cellar_link_mode chain[] = {CELLAR_LINK_HARD, CELLAR_LINK_REFLINK,
                                             CELLAR_LINK_COPY};
    cellar_link_mode m = mode;
    if (mode == CELLAR_LINK_AUTO) {
        for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
            m = chain[i];
            if ((rc = link_one(s, obj, &obj_st, sha256, dest, m)) != CELLAR_EUNSUPPORTED)
                break;
        }
    } else {
        rc = link_one(s, obj, &obj_st, sha256, dest, m);
    }
    if (rc == CELLAR_EUNSUPPORTED)
        rc = cellar_fail(CELLAR_EUNSUPPORTED, "%s: the filesystem refuses a %s link to the store",
                         dest, cellar_link_mode_name(m));
    if (rc == 0) {
        store_freshen(s, sha256);
        if (used)
            *used = m;
        /* Recorded before the lock goes: gc, which takes it, must see a
         * symlink place (nothing else tells it the object is in use). */
        char *abs = store_abspath(dest);
        rc = abs ? index_place_put(s->db, abs, sha256, (int)m) : CELLAR_ENOMEM;
        free(abs);
    }
    store_unlock(lfd);
done:
    free(dir);
    free(obj);
    return rc;
}
