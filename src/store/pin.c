/* Pins: a blob a process admitted or found, and is about to place, must
 * outlive a gc that runs meanwhile, even with grace 0. Until its place
 * exists the object has one link and no lock, which is exactly what gc
 * removes.
 *
 * Each store handle that pins owns one file locks/pins/<pid>.<n>.pins,
 * holding an exclusive flock for as long as the handle lives, listing the
 * pinned sha256s, one hex line each (append only). A process killed with
 * kill -9 loses its flock, so its pins vanish with it: gc finds the file
 * unlocked and removes it. gc reads the pins of a candidate under the
 * blob's lock, and a pinner writes its pin before it takes (or while it
 * holds) that lock, so either gc sees the pin or the pinner sees that the
 * object is gone. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define PIN_LINE 65 /* 64 hex digits and a newline */

struct store_pins {
    pthread_mutex_t mu;
    int fd; /* the pin file, flocked; -1 until the first pin */
    char *path;
    atomic_uint refs;
};

static char *pins_dir(const cellar_store *s)
{
    return cellar_path_join(s->locks, "pins");
}

static struct store_pins *pins_get(cellar_store *s)
{
    if (!s->pins) {
        struct store_pins *p = cellar_calloc(1, sizeof *p);
        if (!p)
            return NULL;
        pthread_mutex_init(&p->mu, NULL);
        p->fd = -1;
        atomic_init(&p->refs, 1);
        s->pins = p;
    }
    return s->pins;
}

int store_pins_share(cellar_store *dst, cellar_store *src)
{
    struct store_pins *p = pins_get(src);
    if (!p)
        return CELLAR_ENOMEM;
    store_pins_release(dst);
    atomic_fetch_add(&p->refs, 1);
    dst->pins = p;
    return 0;
}

void store_pins_release(cellar_store *s)
{
    struct store_pins *p = s->pins;
    s->pins = NULL;
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    if (p->fd >= 0) {
        unlink(p->path);
        close(p->fd);
    }
    free(p->path);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Creates the pin file: made and locked under a name gc ignores, then
 * renamed, so gc never sees it unlocked while its owner lives. */
static int pins_create(cellar_store *s, struct store_pins *p)
{
    static atomic_uint seq;
    char *dir = pins_dir(s);
    if (!dir)
        return CELLAR_ENOMEM;
    int rc = cellar_mkdirs(dir, 0755);
    unsigned n = atomic_fetch_add(&seq, 1);
    char *tmp = cellar_sprintf("%s/%ld.%u.new", dir, (long)getpid(), n);
    char *path = cellar_sprintf("%s/%ld.%u.pins", dir, (long)getpid(), n);
    free(dir);
    if (!rc && (!tmp || !path))
        rc = CELLAR_ENOMEM;
    int fd = -1;
    if (!rc && (fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644)) < 0)
        rc = cellar_fail_errno(errno, "%s: cannot create a pin file", tmp);
    if (!rc && flock(fd, LOCK_EX | LOCK_NB) != 0)
        rc = cellar_fail_errno(errno, "%s: flock", tmp);
    if (!rc && rename(tmp, path) != 0)
        rc = cellar_fail_errno(errno, "%s: cannot place the pin file", path);
    if (rc) {
        if (fd >= 0) {
            unlink(tmp);
            close(fd);
        }
        free(path);
    } else {
        p->fd = fd;
        p->path = path;
    }
    free(tmp);
    return rc;
}

int store_pin_add(cellar_store *s, const uint8_t sha256[32])
{
    struct store_pins *p = pins_get(s);
    if (!p)
        return CELLAR_ENOMEM;
    char line[PIN_LINE + 1];
    cellar_hex(line, sha256, 32);
    line[64] = '\n';
    pthread_mutex_lock(&p->mu);
    int rc = p->fd < 0 ? pins_create(s, p) : 0;
    if (!rc && cellar_full_write(p->fd, line, PIN_LINE) != 0)
        rc = cellar_fail_errno(errno, "%s: cannot write a pin", p->path);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int cellar_store_pin(cellar_store *s, const uint8_t sha256[32])
{
    int rc = store_pin_add(s, sha256);
    if (rc)
        return rc;
    /* The pin is written; under the blob's lock no gc is between its checks
     * and the unlink, so what we see now stays. */
    char lock[65];
    int lfd;
    store_lock_name(lock, sha256);
    if ((rc = store_lock(s, lock, true, &lfd)))
        return rc;
    struct stat st;
    rc = store_object_stat(s, sha256, &st);
    store_unlock(lfd);
    if (rc == 0)
        return cellar_fail(CELLAR_ENOTFOUND, "sha256:%s: not in the store", lock);
    return rc < 0 ? rc : 0;
}

int cellar_store_unpin_all(cellar_store *s)
{
    struct store_pins *p = s->pins;
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    if (p->fd >= 0 && ftruncate(p->fd, 0) != 0)
        rc = cellar_fail_errno(errno, "%s: cannot clear the pins", p->path);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* Is sha256 pinned by a live process? Pin files of dead processes are
 * removed on the way (unless dry). */
int store_pinned(cellar_store *s, const uint8_t sha256[32], bool dry, bool *pinned)
{
    *pinned = false;
    char *dir = pins_dir(s);
    if (!dir)
        return CELLAR_ENOMEM;
    DIR *d = opendir(dir);
    if (!d) {
        int rc = errno == ENOENT ? 0 : cellar_fail_errno(errno, "%s", dir);
        free(dir);
        return rc;
    }
    char want[65];
    cellar_hex(want, sha256, 32);
    int rc = 0;
    struct dirent *e;
    while (!rc && !*pinned && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".pins"))
            continue;
        char *path = cellar_path_join(dir, e->d_name);
        if (!path) {
            rc = CELLAR_ENOMEM;
            break;
        }
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) == 0) {
            /* Nobody holds it: its owner is gone, and its pins with it. */
            if (!dry)
                unlink(path);
        } else if (fd >= 0) {
            char buf[PIN_LINE * 256];
            size_t have = 0;
            ssize_t r;
            while (!*pinned && (r = read(fd, buf + have, sizeof buf - have)) > 0) {
                have += (size_t)r;
                size_t i = 0;
                for (; i + PIN_LINE <= have; i += PIN_LINE)
                    if (!memcmp(buf + i, want, 64))
                        *pinned = true;
                memmove(buf, buf + i, have - i);
                have -= i;
            }
        }
        if (fd >= 0)
            close(fd);
        free(path);
    }
    closedir(d);
    free(dir);
    return rc;
}
