/* Small allocation, hex, buffer and file helpers shared by all modules. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void *cellar_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        cellar_fail(CELLAR_ENOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *cellar_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        cellar_fail(CELLAR_ENOMEM, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *cellar_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        cellar_fail(CELLAR_ENOMEM, "out of memory allocating %zu bytes", n);
    return q;
}

char *cellar_strndup(const char *s, size_t n)
{
    char *p = cellar_malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *cellar_strdup(const char *s)
{
    return cellar_strndup(s, strlen(s));
}

char *cellar_sprintf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0) {
        cellar_fail(CELLAR_ENOMEM, "out of memory formatting a string");
        return NULL;
    }
    return out;
}

void cellar_hex(char *out, const uint8_t *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool cellar_unhex(uint8_t *out, const char *hex, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

int cellar_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap : (first ? first : 1), bytes;
    while (ncap <= n)
        if (ck_mul(ncap, (size_t)2, &ncap))
            return cellar_fail(CELLAR_ERANGE, "an array of %zu elements is too large", n);
    if (ck_mul(ncap, elem, &bytes))
        return cellar_fail(CELLAR_ERANGE, "an array of %zu elements is too large", ncap);
    void *p = cellar_realloc(*(void **)arr, bytes);
    if (!p)
        return CELLAR_ENOMEM;
    *(void **)arr = p;
    *cap = ncap;
    return 0;
}

void cellar_buf_init(cellar_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->limit = limit ? limit : SIZE_MAX;
}

static int buf_reserve(cellar_buf *b, size_t extra)
{
    size_t need;
    if (ck_add(b->len, extra, &need) || ck_add(need, (size_t)1, &need) || need > b->limit)
        return cellar_fail(CELLAR_ERANGE, "buffer would exceed its %zu-byte limit", b->limit);
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->limit)
        cap = b->limit;
    char *p = cellar_realloc(b->data, cap);
    if (!p)
        return CELLAR_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int cellar_buf_append(cellar_buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cellar_buf_printf(cellar_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return cellar_fail(CELLAR_EINVAL, "bad format string");
    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void cellar_buf_free(cellar_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

ssize_t cellar_full_read(int fd, void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, (char *)buf + done, n - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

ssize_t cellar_full_pread(int fd, void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

int cellar_full_write(int fd, const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, (const char *)buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        done += (size_t)w;
    }
    return 0;
}

int cellar_open_regular(int *fd_out, const char *path)
{
    *fd_out = -1;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; the check
     * below refuses it anyway. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return cellar_fail_errno(errno, "%s", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = cellar_fail_errno(errno, "%s", path);
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cellar_fail(CELLAR_EUNSUPPORTED, "%s: %s, not a regular file", path,
                           cellar_file_kind(st.st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fd_out = fd;
    return 0;
}

const char *cellar_file_kind(unsigned mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISSOCK(mode) ? "a socket"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISLNK(mode)  ? "a symlink"
           : S_ISREG(mode)  ? "a regular file"
                            : "a special file";
}

int cellar_read_file(char **out, size_t *len, const char *path, size_t limit)
{
    *out = NULL;
    int fd;
    int orc = cellar_open_regular(&fd, path);
    if (orc)
        return orc;
    cellar_buf b;
    cellar_buf_init(&b, limit ? limit + 1 : 0);
    int rc = 0;
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = cellar_fail_errno(errno, "%s", path);
            break;
        }
        if (r == 0)
            break;
        if (limit && b.len + (size_t)r > limit) {
            rc = cellar_fail(CELLAR_ERANGE, "%s: larger than the %zu-byte limit", path, limit);
            break;
        }
        if ((rc = cellar_buf_append(&b, chunk, (size_t)r)))
            break;
    }
    close(fd);
    if (rc == 0 && !b.data)
        rc = cellar_buf_append(&b, "", 0);
    if (rc) {
        cellar_buf_free(&b);
        return rc;
    }
    *out = b.data;
    if (len)
        *len = b.len;
    return 0;
}

static char *dir_of(const char *path)
{
    char *copy = cellar_strdup(path);
    if (!copy)
        return NULL;
    char *d = cellar_strdup(dirname(copy));
    free(copy);
    return d;
}

int cellar_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cellar_fail_errno(errno, "%s", dir);
    int rc = 0;
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = cellar_fail_errno(errno, "%s: fsync", dir);
    close(fd);
    return rc;
}

int cellar_atomic_open(cellar_atomic *a, const char *path, unsigned mode)
{
    a->fd = -1;
    a->path = cellar_strdup(path);
    a->tmp = a->path ? cellar_sprintf("%s.cellar-tmp.XXXXXX", path) : NULL;
    if (!a->tmp) {
        free(a->path);
        a->path = NULL;
        return CELLAR_ENOMEM;
    }
    a->fd = mkostemp(a->tmp, O_CLOEXEC);
    if (a->fd < 0) {
        int rc = cellar_fail_errno(errno, "%s: cannot create a temporary file", path);
        free(a->tmp);
        free(a->path);
        a->tmp = a->path = NULL;
        return rc;
    }
    if (fchmod(a->fd, (mode_t)mode) != 0) {
        int rc = cellar_fail_errno(errno, "%s: chmod", a->tmp);
        cellar_atomic_abort(a);
        return rc;
    }
    return 0;
}

int cellar_atomic_commit(cellar_atomic *a, bool replace)
{
    int rc = 0;
    /* before anything is renamed: out of memory leaves nothing in place */
    char *dir = dir_of(a->path);
    if (!dir) {
        rc = CELLAR_ENOMEM;
        goto done;
    }
    if (fsync(a->fd) != 0) {
        rc = cellar_fail_errno(errno, "%s: fsync", a->path);
        goto done;
    }
    if (close(a->fd) != 0) {
        a->fd = -1;
        rc = cellar_fail_errno(errno, "%s: close", a->path);
        goto done;
    }
    a->fd = -1;
    if (replace) {
        if (rename(a->tmp, a->path) != 0) {
            rc = cellar_fail_errno(errno, "%s", a->path);
            goto done;
        }
    } else {
        if (link(a->tmp, a->path) != 0) {
            rc = cellar_fail_errno(errno, "%s", a->path);
            goto done;
        }
        unlink(a->tmp);
    }
    free(a->tmp);
    a->tmp = NULL;
    rc = cellar_fsync_dir(dir);
done:
    free(dir);
    cellar_atomic_abort(a);
    return rc;
}

void cellar_atomic_abort(cellar_atomic *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    if (a->tmp)
        unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    a->tmp = a->path = NULL;
}

int cellar_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
    cellar_atomic a;
    int rc = cellar_atomic_open(&a, path, mode);
    if (rc)
        return rc;
    if (cellar_full_write(a.fd, data, len) != 0) {
        rc = cellar_fail_errno(errno, "%s: write", path);
        cellar_atomic_abort(&a);
        return rc;
    }
    return cellar_atomic_commit(&a, true);
}

int cellar_mkdirs(const char *path, unsigned mode)
{
    char *p = cellar_strdup(path);
    if (!p)
        return CELLAR_ENOMEM;
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) {
            rc = cellar_fail_errno(errno, "%s: cannot create directory", p);
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    if (rc == 0) {
        struct stat st;
        if (stat(path, &st) != 0)
            rc = cellar_fail_errno(errno, "%s", path);
        else if (!S_ISDIR(st.st_mode))
            rc = cellar_fail(CELLAR_EEXISTS, "%s: exists and is not a directory", path);
    }
    free(p);
    return rc;
}

char *cellar_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    if (la == 0)
        return cellar_strdup(b);
    return cellar_sprintf("%s%s%s", a, a[la - 1] == '/' ? "" : "/", b);
}

int cellar_stopped(const char *what)
{
    return cellar_fail(CELLAR_EUSER, "%s: stopped by the caller", what);
}

bool cellar_tick(struct timespec *last, long interval_ms)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms = (long long)(now.tv_sec - last->tv_sec) * 1000 +
                   (now.tv_nsec - last->tv_nsec) / 1000000;
    if ((last->tv_sec || last->tv_nsec) && ms < interval_ms)
        return false;
    *last = now;
    return true;
}

int cellar_opts_check(unsigned version, unsigned known, const char *type, const char *init)
{
    return cellar_fail(CELLAR_EINVAL,
                       "%s: version %u unknown (this library knows %u): initialise it with %s",
                       type, version, known, init);
}

unsigned cellar_ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : (unsigned)n;
}

int cellar_map_file(void **map, size_t *len, const char *path)
{
    *map = NULL;
    *len = 0;
    int fd;
    int orc = cellar_open_regular(&fd, path);
    if (orc)
        return orc;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = cellar_fail_errno(errno, "%s: cannot stat", path);
    } else if (!S_ISREG(st.st_mode)) {
        rc = cellar_fail(CELLAR_EINVAL, "%s: not a regular file", path);
    } else if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rc = cellar_fail_errno(errno, "%s: cannot map", path);
        } else {
            *map = m;
            *len = (size_t)st.st_size;
        }
    }
    close(fd);
    return rc;
}
