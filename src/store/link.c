/* Putting a stored blob at a place: hard link, reflink, symlink or copy,
 * always through a temp name beside the destination and a rename over it,
 * so the destination is at every moment either its old self or the blob. */
#include "store.h"

#include "store_index.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
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

/* The temp name beside the destination: ".cellar-link.<sha256>.<pid><random>",
 * so a leftover from a crash says which object it is a link to. */
static void temp_name(char out[128], const uint8_t sha256[32])
{
    static _Atomic unsigned counter; /* unique across threads too */
    char hex[65];
    cellar_hex(hex, sha256, 32);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, 128, LEFTOVER_PREFIX "%s.%ld%u%lx", hex, (long)getpid(), ++counter,
             (unsigned long)ts.tv_nsec & 0xfffff);
}

/* Where a link goes: the folder (an open descriptor), the name in it, and
 * the whole path for messages and the place index. */
struct dest {
    int dirfd;
    const char *name;
    const char *path;
};

/* Renames tmp over the destination and makes it durable. rename(2) does
 * nothing when both names are already links to one inode, so tmp is
 * removed after. */
static int commit_temp(cellar_store *s, const struct dest *d, const char *tmp)
{
    if (renameat(d->dirfd, tmp, d->dirfd, d->name) != 0) {
        int rc = cellar_fail_errno(errno, "%s: cannot replace", d->path);
        unlinkat(d->dirfd, tmp, 0);
        return rc;
    }
    unlinkat(d->dirfd, tmp, 0);
    if (!s->batch && fsync(d->dirfd) != 0 && errno != EINVAL)
        return cellar_fail_errno(errno, "%s: fsync of its folder", d->path);
    return 0;
}

static bool unsupported_errno(int e)
{
    return e == EXDEV || e == EPERM || e == EMLINK || e == EOPNOTSUPP || e == ENOTTY ||
           e == EINVAL || e == ENOSYS;
}

static int hard_at(cellar_store *s, const char *obj, const struct stat *obj_st,
                   const uint8_t sha256[32], const struct dest *d)
{
    struct stat st;
    if (fstatat(d->dirfd, d->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_ino == obj_st->st_ino && st.st_dev == obj_st->st_dev)
        return 0;
    char tmp[128];
    temp_name(tmp, sha256);
    if (linkat(AT_FDCWD, obj, d->dirfd, tmp, 0) != 0) {
        int e = errno;
        int rc = cellar_fail_errno(e, "%s: cannot hard-link to %s", d->path, obj);
        return unsupported_errno(e) ? CELLAR_EUNSUPPORTED : rc;
    }
    return commit_temp(s, d, tmp);
}

/* The parent folder of path, opened (following links: the caller named
 * it); *name points at path's last component. */
static int open_parent(struct dest *d, const char *path)
{
    const char *slash = strrchr(path, '/');
    d->path = path;
    d->name = slash ? slash + 1 : path;
    char *dir = slash ? cellar_strndup(path, slash == path ? 1 : (size_t)(slash - path))
                      : cellar_strdup(".");
    if (!dir)
        return CELLAR_ENOMEM;
    d->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = d->dirfd < 0 ? cellar_fail_errno(errno, "%s", dir) : 0;
    free(dir);
    if (!rc && !*d->name) {
        close(d->dirfd);
        rc = cellar_fail(CELLAR_EINVAL, "%s: names a folder, not a file", path);
    }
    return rc;
}

int link_hard_replace(cellar_store *s, const char *obj, const struct stat *obj_st,
                      const uint8_t sha256[32], const char *dest)
{
    struct dest d;
    int rc = open_parent(&d, dest);
    if (rc)
        return rc;
    rc = hard_at(s, obj, obj_st, sha256, &d);
    close(d.dirfd);
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

/* Copies (or clones, with reflink) the object into a new file tmp in d's
 * folder. */
static int copy_to(const char *obj, const struct dest *d, const char *tmp, bool reflink)
{
    int in = open(obj, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return cellar_fail_errno(errno, "%s", obj);
    int out = openat(d->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0) {
        int rc = cellar_fail_errno(errno, "%s: %s", d->path, tmp);
        close(in);
        return rc;
    }
    int rc = 0;
    if (reflink) {
        if (ioctl(out, FICLONE, in) != 0)
            rc = unsupported_errno(errno) || errno == EBADF
                     ? cellar_fail(CELLAR_EUNSUPPORTED, "%s: the filesystem cannot reflink", d->path)
                     : cellar_fail_errno(errno, "%s: reflink", d->path);
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
                rc = cellar_fail_errno(errno, "%s: copy", d->path);
                break;
            }
            /* No in-kernel copy here: plain reads and writes. */
            char buf[1 << 16];
            ssize_t r;
            while ((r = cellar_full_read(in, buf, sizeof buf)) > 0)
                if (cellar_full_write(out, buf, (size_t)r) != 0)
                    break;
            if (r != 0)
                rc = cellar_fail_errno(errno, "%s: copy", d->path);
            break;
        }
    }
    if (rc == 0 && fsync(out) != 0)
        rc = cellar_fail_errno(errno, "%s: fsync", d->path);
    if (close(out) != 0 && rc == 0)
        rc = cellar_fail_errno(errno, "%s: close", d->path);
    close(in);
    if (rc)
        unlinkat(d->dirfd, tmp, 0);
    return rc;
}

/* One attempt at one mode; CELLAR_EUNSUPPORTED when the filesystem refuses. */
static int link_one(cellar_store *s, const char *obj, const struct stat *obj_st,
                    const uint8_t sha256[32], const struct dest *d, cellar_link_mode mode)
{
    if (mode == CELLAR_LINK_HARD)
        return hard_at(s, obj, obj_st, sha256, d);
    char tmp[128];
    temp_name(tmp, sha256);
    int rc = 0;
    if (mode == CELLAR_LINK_SYMLINK) {
        if (symlinkat(obj, d->dirfd, tmp) != 0)
            rc = cellar_fail_errno(errno, "%s: symlink", d->path);
    } else {
        rc = copy_to(obj, d, tmp, mode == CELLAR_LINK_REFLINK);
    }
    if (rc == 0)
        rc = commit_temp(s, d, tmp);
    return rc;
}

/* Opens root, then each folder of rel below it, creating what is missing;
 * none may be a symlink (O_NOFOLLOW at every level, so a folder swapped for
 * a link after any check is refused here, not followed). *name: rel's last
 * component. */
static int open_under(struct dest *d, const char *root, const char *rel, const char *path)
{
    d->path = path;
    d->dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->dirfd < 0 && errno == ENOENT) {
        int rc = cellar_mkdirs(root, 0755);
        if (rc)
            return rc;
        d->dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (d->dirfd < 0)
        return cellar_fail_errno(errno, "%s", root);
    char comp[NAME_MAX + 1];
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || n > NAME_MAX || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.')) {
            close(d->dirfd);
            return cellar_fail(CELLAR_EINVAL, "%s: '%s' is not a plain relative path", path, rel);
        }
        if (!slash) {
            d->name = p;
            return 0;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        int fd = openat(d->dirfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
            if (mkdirat(d->dirfd, comp, 0755) != 0 && errno != EEXIST) {
                int rc = cellar_fail_errno(errno, "%s: cannot make folder '%s'", path, comp);
                close(d->dirfd);
                return rc;
            }
            fd = openat(d->dirfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0) {
            int e = errno;
            struct stat st;
            bool link = fstatat(d->dirfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
            close(d->dirfd);
            if (e == ELOOP || e == ENOTDIR)
                return cellar_fail(CELLAR_EINVAL, "%s: '%.*s' is %s, not a folder", path,
                                   (int)(slash - rel), rel, link ? "a symlink" : "a file");
            return cellar_fail_errno(e, "%s: '%.*s'", path, (int)(slash - rel), rel);
        }
        close(d->dirfd);
        d->dirfd = fd;
        p = slash + 1;
    }
}

/* The link itself, d's folder open: under the blob's lock, which keeps gc
 * from removing the object between our look and our link. */
static int link_at(cellar_store *s, const uint8_t sha256[32], const struct dest *d,
                   cellar_link_mode mode, cellar_link_mode *used)
{
    char *obj;
    int rc = cellar_store_object_path(&obj, s, sha256);
    if (rc)
        return rc;
    char lock[65];
    int lfd;
    store_lock_name(lock, sha256);
    if ((rc = store_lock(s, lock, true, &lfd))) {
        free(obj);
        return rc;
    }
    struct stat obj_st;
    if (stat(obj, &obj_st) != 0) {
        rc = cellar_fail_errno(errno, "%s", obj);
        goto done;
    }
    static const cellar_link_mode chain[] = {CELLAR_LINK_HARD, CELLAR_LINK_REFLINK,
                                             CELLAR_LINK_COPY};
    cellar_link_mode m = mode;
    if (mode == CELLAR_LINK_AUTO) {
        for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
            m = chain[i];
            if ((rc = link_one(s, obj, &obj_st, sha256, d, m)) != CELLAR_EUNSUPPORTED)
                break;
        }
    } else {
        rc = link_one(s, obj, &obj_st, sha256, d, m);
    }
    if (rc == CELLAR_EUNSUPPORTED)
        rc = cellar_fail(CELLAR_EUNSUPPORTED, "%s: the filesystem refuses a %s link to the store",
                         d->path, cellar_link_mode_name(m));
    if (rc == 0) {
        store_freshen(s, sha256);
        if (used)
            *used = m;
        /* Recorded before the lock goes: gc, which takes it, must see a
         * symlink place (nothing else tells it the object is in use). */
        char *abs = store_abspath(d->path);
        rc = abs ? index_place_put(s->db, abs, sha256, (int)m) : CELLAR_ENOMEM;
        free(abs);
    }
done:
    store_unlock(lfd);
    free(obj);
    return rc;
}

int cellar_store_link_under(cellar_link_mode *used, cellar_store *s, const uint8_t sha256[32],
                            const char *root, const char *rel, cellar_link_mode mode)
{
    if ((unsigned)mode > CELLAR_LINK_COPY)
        return cellar_fail(CELLAR_EINVAL, "%s: unknown link mode %d", rel, (int)mode);
    char *path = cellar_path_join(root, rel);
    if (!path)
        return CELLAR_ENOMEM;
    struct dest d;
    int rc = open_under(&d, root, rel, path);
    if (!rc) {
        rc = link_at(s, sha256, &d, mode, used);
        close(d.dirfd);
    }
    free(path);
    return rc;
}

int cellar_store_link(cellar_link_mode *used, cellar_store *s, const uint8_t sha256[32],
                      const char *dest, cellar_link_mode mode)
{
    if ((unsigned)mode > CELLAR_LINK_COPY)
        return cellar_fail(CELLAR_EINVAL, "%s: unknown link mode %d", dest, (int)mode);
    const char *slash = strrchr(dest, '/');
    if (slash && slash != dest) {
        char *dir = cellar_strndup(dest, (size_t)(slash - dest));
        int rc = dir ? cellar_mkdirs(dir, 0755) : CELLAR_ENOMEM;
        free(dir);
        if (rc)
            return rc;
    }
    struct dest d;
    int rc = open_parent(&d, dest);
    if (rc)
        return rc;
    rc = link_at(s, sha256, &d, mode, used);
    close(d.dirfd);
    return rc;
}
