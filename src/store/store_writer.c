/* The streaming writer: a download goes to a partial in tmp/, hashed as it
 * arrives, and enters the store only when its size and digests match.
 * A resumable partial (named by its resume key) survives the process; the
 * next writer with that key re-hashes its bytes and continues after them.
 * A lock per key keeps two processes from writing one partial.
 *
 * Network reads come in pieces of a few KiB. The writer gathers them into a
 * buffer and hashes and writes a whole buffer at once: one write(2) per
 * MiB instead of one per piece, and BLAKE3 gets inputs wide enough for its
 * many-chunk kernels. Bytes wait there at most FLUSH_MS, so a killed
 * process loses no more than that much of a slow download. It also starts the kernel's writeback of what it has
 * written every few MiB (sync_file_range), so the fsync before admission
 * waits only for the tail, not for the whole file. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Bytes gathered before they are hashed and written. */
#define WRITE_BUF (1u << 20)
/* The longest bytes stay in the buffer (a kill loses them). */
#define FLUSH_MS 100
/* Written bytes that start their writeback at once. */
#define WRITEBACK_STEP (8u << 20)

struct cellar_store_writer {
    cellar_store *s;
    int fd;
    int lock_fd;
    char *tmp;
    char *label; /* for messages: the resume key or the expected sha256 */
    bool resumable, done;
    bool has_expected;
    uint8_t expected[32];
    uint64_t expected_size; /* UINT64_MAX: unknown */
    uint64_t offset;    /* bytes accepted: in the partial, then in buf */
    uint64_t writeback; /* bytes of the partial whose writeback was started */
    uint8_t *buf;       /* accepted, not yet hashed nor written */
    size_t buf_len;
    uint64_t flushed_ms; /* when the buffer was last emptied (monotonic) */
    uint32_t algos;
    cellar_hasher *h;
};

static bool key_ok(const char *key)
{
    if (!*key || strlen(key) > 200)
        return false;
    for (const char *p = key; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == ':' || *p == '.' || *p == '_' || *p == '-'))
            return false;
    return key[0] != '.';
}

/* Starts the hashers afresh and feeds them the partial's first len bytes. */
static int rehash(cellar_store_writer *w, uint64_t len)
{
    cellar_hasher_free(w->h);
    w->h = NULL;
    int rc = cellar_hasher_new(&w->h, w->algos, w->expected_size);
    if (rc)
        return rc;
    uint8_t *buf = cellar_malloc(1u << 20);
    if (!buf)
        return CELLAR_ENOMEM;
    uint64_t off = 0;
    while (off < len) {
        size_t want = len - off < (1u << 20) ? (size_t)(len - off) : (1u << 20);
        ssize_t r = cellar_full_pread(w->fd, buf, want, off);
        if (r <= 0) {
            rc = r < 0 ? cellar_fail_errno(errno, "%s: read", w->tmp)
                       : cellar_fail(CELLAR_ECHANGED, "%s: shrank while resumed", w->tmp);
            break;
        }
        cellar_hasher_update(w->h, buf, (size_t)r);
        off += (uint64_t)r;
    }
    free(buf);
    return rc;
}

int cellar_store_writer_open(cellar_store_writer **out, cellar_store *s,
                             const uint8_t expected_sha256[32], uint64_t expected_size,
                             const char *resume_key)
{
    *out = NULL;
    if (resume_key && !key_ok(resume_key))
        return cellar_fail(CELLAR_EINVAL, "resume key '%s': use letters, digits and :._-",
                           resume_key);
    cellar_store_writer *w = cellar_calloc(1, sizeof *w);
    if (!w)
        return CELLAR_ENOMEM;
    w->s = s;
    w->fd = w->lock_fd = -1;
    if (!(w->buf = cellar_malloc(WRITE_BUF))) {
        free(w);
        return CELLAR_ENOMEM;
    }
    w->expected_size = expected_size;
    w->resumable = resume_key != NULL;
    /* git-sha1 needs the size up front; the Hub names only small files by it. */
    w->algos = expected_size != UINT64_MAX ? store_algos(expected_size, 0)
                                           : store_algos(UINT64_MAX, CELLAR_ADD_NO_GITSHA1);
    if (expected_sha256) {
        w->has_expected = true;
        memcpy(w->expected, expected_sha256, 32);
    }
    int rc = 0;
    if (resume_key) {
        w->label = cellar_strdup(resume_key);
        char *lock = cellar_sprintf("partial-%s", resume_key);
        w->tmp = cellar_sprintf("%s/partial-%s", s->tmp, resume_key);
        if (!w->label || !lock || !w->tmp) {
            free(lock);
            rc = CELLAR_ENOMEM;
            goto fail;
        }
        rc = store_lock(s, lock, false, &w->lock_fd);
        free(lock);
        if (rc)
            goto fail;
        if ((w->fd = open(w->tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
            rc = cellar_fail_errno(errno, "%s", w->tmp);
            goto fail;
        }
        struct stat st;
        if (fstat(w->fd, &st) != 0) {
            rc = cellar_fail_errno(errno, "%s", w->tmp);
            goto fail;
        }
        uint64_t have = (uint64_t)st.st_size;
        /* A partial longer than the blob is not one of its prefixes. */
        if (expected_size != UINT64_MAX && have > expected_size) {
            if (ftruncate(w->fd, 0) != 0) {
                rc = cellar_fail_errno(errno, "%s: truncate", w->tmp);
                goto fail;
            }
            have = 0;
        }
        if ((rc = rehash(w, have)))
            goto fail;
        w->offset = w->writeback = have;
    } else {
        char hex[65] = "unknown";
        if (expected_sha256)
            cellar_hex(hex, expected_sha256, 32);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        w->label = cellar_sprintf("sha256:%s", hex);
        w->tmp = cellar_sprintf("%s/write.%ld.%lx.%p", s->tmp, (long)getpid(),
                                (unsigned long)ts.tv_nsec, (void *)w);
        if (!w->label || !w->tmp) {
            rc = CELLAR_ENOMEM;
            goto fail;
        }
        if ((w->fd = open(w->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
            rc = cellar_fail_errno(errno, "%s", w->tmp);
            goto fail;
        }
        if ((rc = cellar_hasher_new(&w->h, w->algos, expected_size)))
            goto fail;
    }
    if (lseek(w->fd, (off_t)w->offset, SEEK_SET) < 0) {
        rc = cellar_fail_errno(errno, "%s: seek", w->tmp);
        goto fail;
    }
    *out = w;
    return 0;
fail:
    cellar_store_writer_free(w);
    return rc;
}

uint64_t cellar_store_writer_offset(const cellar_store_writer *w)
{
    return w->offset;
}

int cellar_store_writer_truncate(cellar_store_writer *w, uint64_t offset)
{
    if (w->done)
        return cellar_fail(CELLAR_EINVAL, "%s: writer already finished", w->label);
    if (offset > w->offset)
        return cellar_fail(CELLAR_EINVAL, "%s: cannot truncate to %llu, only %llu bytes written",
                           w->label, (unsigned long long)offset, (unsigned long long)w->offset);
    uint64_t flushed = w->offset - w->buf_len;
    if (offset >= flushed) {
        /* Within the buffer: the hashers have not seen those bytes yet. */
        w->buf_len = (size_t)(offset - flushed);
        w->offset = offset;
        return 0;
    }
    w->buf_len = 0;
    w->offset = flushed;
    if (ftruncate(w->fd, (off_t)offset) != 0)
        return cellar_fail_errno(errno, "%s: truncate", w->tmp);
    int rc = rehash(w, offset);
    if (rc)
        return rc;
    if (lseek(w->fd, (off_t)offset, SEEK_SET) < 0)
        return cellar_fail_errno(errno, "%s: seek", w->tmp);
    w->offset = offset;
    if (w->writeback > offset)
        w->writeback = offset;
    return 0;
}

/* Drops the partial: its bytes are not the blob. */
static void discard(cellar_store_writer *w)
{
    if (w->tmp)
        unlink(w->tmp);
    w->done = true;
}

/* Writes len bytes at the end of the partial (w->offset - w->buf_len) and
 * hashes them. On failure the partial is cut back to what the hashers have
 * seen. */
static int put(cellar_store_writer *w, const void *data, size_t len)
{
    uint64_t at = w->offset - w->buf_len;
    if (cellar_full_write(w->fd, data, len) != 0) {
        int rc = cellar_fail_errno(errno, "%s: writing into the store", w->label);
        /* What reached the disk is unknown: keep the partial consistent with
         * the hashers by cutting it back. */
        if (ftruncate(w->fd, (off_t)at) != 0 || lseek(w->fd, (off_t)at, SEEK_SET) < 0)
            discard(w);
        return rc;
    }
    cellar_hasher_update(w->h, data, len);
    uint64_t end = at + len;
    if (end - w->writeback >= WRITEBACK_STEP) {
        /* Only a hint: the fsync at commit is what makes the bytes durable. */
        sync_file_range(w->fd, (off64_t)w->writeback, (off64_t)(end - w->writeback),
                        SYNC_FILE_RANGE_WRITE);
        w->writeback = end;
    }
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Hashes and writes what the buffer holds. */
static int flush(cellar_store_writer *w)
{
    w->flushed_ms = now_ms();
    if (w->buf_len == 0)
        return 0;
    size_t n = w->buf_len;
    int rc = put(w, w->buf, n);
    w->buf_len = 0;
    if (rc)
        w->offset -= n;
    return rc;
}

int cellar_store_writer_write(cellar_store_writer *w, const void *data, size_t len)
{
    if (w->done)
        return cellar_fail(CELLAR_EINVAL, "%s: writer already finished", w->label);
    uint64_t end;
    if (ck_add(w->offset, (uint64_t)len, &end) ||
        (w->expected_size != UINT64_MAX && end > w->expected_size))
        return cellar_fail(CELLAR_EMISMATCH, "%s: more than the expected %llu bytes", w->label,
                           (unsigned long long)w->expected_size);
    if (w->buf_len + len <= WRITE_BUF) {
        memcpy(w->buf + w->buf_len, data, len);
        w->buf_len += len;
        w->offset = end;
        return w->buf_len == WRITE_BUF || now_ms() - w->flushed_ms >= FLUSH_MS ? flush(w) : 0;
    }
    int rc = flush(w);
    if (rc)
        return rc;
    if (len >= WRITE_BUF) {
        /* Already large: no copy. */
        if ((rc = put(w, data, len)))
            return rc;
    } else {
        memcpy(w->buf, data, len);
        w->buf_len = len;
    }
    w->offset = end;
    return 0;
}

int cellar_store_writer_commit(cellar_digests *out, cellar_store_writer *w,
                               const cellar_digests *expected_extra)
{
    if (w->done)
        return cellar_fail(CELLAR_EINVAL, "%s: writer already finished", w->label);
    int rc = flush(w);
    if (rc) {
        discard(w);
        return rc;
    }
    if (w->expected_size != UINT64_MAX && w->offset != w->expected_size) {
        rc = cellar_fail(CELLAR_EMISMATCH, "%s: received %llu bytes, expected %llu", w->label,
                         (unsigned long long)w->offset, (unsigned long long)w->expected_size);
        discard(w);
        return rc;
    }
    cellar_digests d;
    rc = cellar_hasher_final(&d, w->h);
    if (rc) {
        discard(w);
        return rc;
    }
    d.size = w->offset;
    char got[65], want[65];
    if (w->has_expected && memcmp(d.d[CELLAR_ALGO_SHA256], w->expected, 32) != 0) {
        cellar_hex(got, d.d[CELLAR_ALGO_SHA256], 32);
        cellar_hex(want, w->expected, 32);
        rc = cellar_fail(CELLAR_EMISMATCH, "%s: received bytes with sha256 %s, expected %s",
                         w->label, got, want);
        discard(w);
        return rc;
    }
    for (int a = 0; expected_extra && a < CELLAR_ALGO__COUNT; a++) {
        if (!(expected_extra->have & CELLAR_ALGO_BIT(a)))
            continue;
        size_t len = cellar_algo_len((cellar_algo)a);
        if (!(d.have & CELLAR_ALGO_BIT(a))) {
            /* Not computed on the way (git-sha1 of a large or unsized blob):
             * hash the partial once more for it. */
            cellar_hasher *h;
            if ((rc = cellar_hasher_new(&h, CELLAR_ALGO_BIT(a), d.size))) {
                discard(w);
                return rc;
            }
            uint8_t buf[1 << 16];
            uint64_t off = 0;
            while (off < d.size) {
                ssize_t r = cellar_full_pread(w->fd, buf, sizeof buf, off);
                if (r <= 0)
                    break;
                cellar_hasher_update(h, buf, (size_t)r);
                off += (uint64_t)r;
            }
            cellar_digests extra;
            rc = off == d.size ? cellar_hasher_final(&extra, h)
                               : cellar_fail_errno(errno, "%s: read", w->tmp);
            cellar_hasher_free(h);
            if (rc) {
                discard(w);
                return rc;
            }
            memcpy(d.d[a], extra.d[a], len);
            d.have |= CELLAR_ALGO_BIT(a);
        }
        if (memcmp(d.d[a], expected_extra->d[a], len) != 0) {
            cellar_hex(got, d.d[a], len);
            cellar_hex(want, expected_extra->d[a], len);
            rc = cellar_fail(CELLAR_EMISMATCH, "%s: received bytes with %s %s, expected %s",
                             w->label, cellar_algo_name((cellar_algo)a), got, want);
            discard(w);
            return rc;
        }
    }
    if (fchmod(w->fd, 0444) != 0 || fsync(w->fd) != 0) {
        rc = cellar_fail_errno(errno, "%s: finishing", w->tmp);
        discard(w);
        return rc;
    }
    char lock[65];
    int lfd;
    store_lock_name(lock, d.d[CELLAR_ALGO_SHA256]);
    if ((rc = store_lock(w->s, lock, true, &lfd)))
        return rc;
    /* store_admit consumes the partial either way. */
    rc = store_admit(w->s, w->tmp, &d, NULL);
    store_unlock(lfd);
    w->done = true;
    if (rc == 0 && out)
        *out = d;
    return rc;
}

void cellar_store_writer_free(cellar_store_writer *w)
{
    if (!w)
        return;
    /* A resumable partial keeps what arrived; if that fails, it is only
     * shorter (the next writer re-hashes whatever it holds). */
    if (!w->done && w->resumable && w->fd >= 0)
        flush(w);
    if (w->fd >= 0)
        close(w->fd);
    if (!w->done && !w->resumable && w->tmp)
        unlink(w->tmp);
    store_unlock(w->lock_fd);
    cellar_hasher_free(w->h);
    free(w->buf);
    free(w->tmp);
    free(w->label);
    free(w);
}
