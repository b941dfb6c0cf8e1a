/*
 * DDUF writer, folder packer and unpacker.
 *
 * The layout is byte for byte what huggingface_hub's export_entries_as_dduf
 * gets from Python's zipfile (ZIP_STORED, open(name, "w",
 * force_zip64=True)), timestamps aside:
 *
 *   local header: version 45, flags 0 (0x800 for a non-ASCII name),
 *     method 0, DOS time, CRC-32, sizes 0xffffffff, then the name and a
 *     20-byte ZIP64 extra (id 1, size 16, u64 size, u64 compressed size);
 *     so the first entry's data starts at 30 + len(name) + 20;
 *   central header: made by 45/Unix, needs 45, 32-bit sizes and offset
 *     unless they exceed zipfile's ZIP64_LIMIT (2^31 - 1), in which case
 *     they move to a ZIP64 extra; external attributes 0600 << 16;
 *   ZIP64 end record and locator only when the entry count exceeds 0xffff
 *     or the directory's offset or size exceeds ZIP64_LIMIT.
 *
 * Sizes are known up front (stat), so every offset is computed first; then
 * a worker thread computes the CRC-32s (crc32.c, carry-less multiply)
 * reading the sources through a small buffer while
 * this thread copies the data in the kernel (copy_file_range, sendfile when
 * that is refused), and the headers are written last. The result goes to a
 * temp file that is read back by the DDUF reader before it is renamed.
 */
#include "dduf.h"

#include "crc32.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZIP64_LIMIT ((uint64_t)0x7fffffff) /* CPython zipfile's ZIP64_LIMIT */
#define ZIP_FILECOUNT_LIMIT 0xffffu
#define ZIP_VERSION_ZIP64 45
#define ZIP_SYSTEM_UNIX 3
#define ZIP_LOCAL_ZIP64_EXTRA 20
#define INDEX_LIMIT (64u << 20) /* model_index.json is a few hundred bytes */

struct wentry {
    const cellar_dduf_source *src;
    int fd; /* source file, or -1 for a buffer */
    struct stat st; /* the source file when opened, to notice a change */
    uint64_t size;
    uint64_t header_offset;
    uint64_t data_offset;
    uint32_t crc;
    uint16_t flags;
};

struct writer {
    const char *path;
    struct wentry *e;
    size_t n;
    uint16_t dos_time, dos_date;
    int crc_rc; /* the CRC thread's result */
    char crc_msg[512];
    _Atomic int stop; /* the copy failed or was stopped: the CRC thread ends */
    cellar_progress_fn progress; /* entries' data copied; may be NULL */
    void *progress_ctx;
    cellar_progress pr;    /* what progress was last told */
    struct timespec tick;  /* when */
};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t cap32(uint64_t v)
{
    return v > ZIP64_LIMIT ? 0xffffffffu : (uint32_t)v;
}

static void dos_now(uint16_t *time_out, uint16_t *date_out)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    if (tm.tm_year < 80) { /* DOS dates start in 1980 */
        tm.tm_year = 80;
        tm.tm_mon = 0;
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    }
    *time_out = (uint16_t)(tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec / 2);
    *date_out = (uint16_t)((tm.tm_year - 80) << 9 | (tm.tm_mon + 1) << 5 | tm.tm_mday);
}

/* ---- validation before anything is written ---- */

static int cmp_names(const void *a, const void *b)
{
    const struct wentry *x = *(const struct wentry *const *)a;
    const struct wentry *y = *(const struct wentry *const *)b;
    return strcmp(x->src->name, y->src->name);
}

static int read_index(char **out, size_t *len, const struct writer *w, const struct wentry *e)
{
    if (e->fd < 0) {
        *len = e->src->len;
        *out = cellar_malloc(e->src->len + 1);
        if (!*out)
            return CELLAR_ENOMEM;
        memcpy(*out, e->src->data, e->src->len);
        return 0;
    }
    RETURN_ERROR_IF(e->size > INDEX_LIMIT, CELLAR_EFORMAT,
                    "%s: model_index.json is %llu bytes, over the %u-byte limit", w->path,
                    (unsigned long long)e->size, INDEX_LIMIT);
    *out = cellar_malloc((size_t)e->size + 1);
    if (!*out)
        return CELLAR_ENOMEM;
    if (cellar_full_pread(e->fd, *out, (size_t)e->size, 0) != (ssize_t)e->size) {
        free(*out);
        return cellar_fail_errno(errno ? errno : EIO, "%s: cannot read", e->src->path);
    }
    *len = (size_t)e->size;
    return 0;
}

/* The rules huggingface_hub's export_entries_as_dduf applies, with its
 * messages, plus embedded safetensors validity. */
static int check_entries(const struct writer *w)
{
    const struct wentry *index = NULL;
    for (size_t i = 0; i < w->n; i++) {
        const char *name = w->e[i].src->name;
        size_t len = strlen(name);
        RETURN_ERROR_IF(len > 0xffff || !cellar_dduf_name_valid(name, len), CELLAR_EFORMAT,
                        "%s: Invalid entry name: %s (names are 'file' or 'folder/file' with "
                        "extension .json, .safetensors, .model or .txt)",
                        w->path, name);
        if (!strcmp(name, "model_index.json"))
            index = &w->e[i];
    }
    const struct wentry **v = cellar_malloc(w->n * sizeof *v);
    if (!v)
        return CELLAR_ENOMEM;
    for (size_t i = 0; i < w->n; i++)
        v[i] = &w->e[i];
    qsort(v, w->n, sizeof *v, cmp_names);
    int rc = 0;
    for (size_t i = 1; i < w->n && !rc; i++)
        if (!strcmp(v[i - 1]->src->name, v[i]->src->name))
            rc = cellar_fail(CELLAR_EFORMAT, "%s: Can't add duplicate entry: %s", w->path,
                             v[i]->src->name);
    free(v);
    if (rc < 0)
        return rc;
    RETURN_ERROR_IF(!index, CELLAR_EFORMAT,
                    "%s: Missing required 'model_index.json' entry in DDUF file.", w->path);

    char *text = NULL;
    size_t text_len = 0;
    cellar_json_doc *doc = NULL;
    if ((rc = read_index(&text, &text_len, w, index)) < 0)
        return rc;
    rc = cellar_dduf_parse_index(&doc, w->path, text, text_len);
    free(text);
    if (rc < 0)
        return rc;
    const char **names = cellar_malloc(w->n * sizeof *names);
    size_t *lens = cellar_malloc(w->n * sizeof *lens);
    if (!names || !lens) {
        rc = CELLAR_ENOMEM;
    } else {
        for (size_t i = 0; i < w->n; i++) {
            names[i] = w->e[i].src->name;
            lens[i] = strlen(names[i]);
        }
        rc = cellar_dduf_check_structure(w->path, names, lens, w->n, cellar_json_root(doc), NULL,
                                         NULL);
    }
    free(names);
    free(lens);
    cellar_json_free(doc);
    if (rc < 0)
        return rc;

    static const char ext[] = ".safetensors";
    for (size_t i = 0; i < w->n; i++) {
        const cellar_dduf_source *s = w->e[i].src;
        size_t len = strlen(s->name);
        if (len < sizeof ext - 1 || strcmp(s->name + len - (sizeof ext - 1), ext) != 0)
            continue;
        cellar_st *st = NULL;
        rc = s->path ? cellar_st_open(&st, s->path)
                     : cellar_st_open_buffer(&st, s->data, s->len, s->name);
        cellar_st_free(st);
        if (rc < 0)
            return cellar_fail_prefix("%s: entry '%s'", w->path, s->name);
    }
    return 0;
}

/* ---- CRC-32 (worker thread) ---- */

/* Reads through a buffer rather than a mapping: page-cache copies into an
 * L2-sized buffer beat taking a page fault per 4 KiB of a fresh mapping. */
#define CRC_BUF_SIZE (256u << 10)

static int entry_crc(struct wentry *e, uint8_t *buf, char *msg, size_t msg_len,
                     _Atomic int *stop)
{
    if (e->fd < 0) {
        e->crc = cellar_crc32(0, e->src->data, e->src->len);
        return 0;
    }
    uint32_t crc = 0;
    for (uint64_t off = 0; off < e->size && !atomic_load(stop);) {
        size_t want = e->size - off < CRC_BUF_SIZE ? (size_t)(e->size - off) : CRC_BUF_SIZE;
        ssize_t n = cellar_full_pread(e->fd, buf, want, off);
        if (n <= 0) {
            snprintf(msg, msg_len, "%s: %s", e->src->path,
                     n < 0 ? strerror(errno) : "file shrank while it was being packed");
            return n < 0 ? CELLAR_EIO : CELLAR_ECHANGED;
        }
        crc = cellar_crc32(crc, buf, (size_t)n);
        off += (uint64_t)n;
    }
    e->crc = crc;
    return 0;
}

/* Runs off the writing thread: error messages are thread-local, so it
 * keeps its own and the caller raises it after the join. */
static void *crc_thread(void *arg)
{
    struct writer *w = arg;
    uint8_t *buf = malloc(CRC_BUF_SIZE);
    if (!buf) {
        snprintf(w->crc_msg, sizeof w->crc_msg, "%s: out of memory", w->path);
        w->crc_rc = CELLAR_ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < w->n && w->crc_rc == 0 && !atomic_load(&w->stop); i++)
        w->crc_rc = entry_crc(&w->e[i], buf, w->crc_msg, sizeof w->crc_msg, &w->stop);
    free(buf);
    return NULL;
}

/* ---- copying ---- */

/* Tells the caller's progress callback (at most every 100 ms unless last);
 * its non-zero answer stops the write. */
static int tell(struct writer *w, bool last)
{
    if (!w->progress || !(last || cellar_tick(&w->tick, 100)))
        return 0;
    return w->progress(&w->pr, w->progress_ctx) ? cellar_stopped(w->path) : 0;
}

/* Copies a source file's bytes to out at off without passing them through
 * user space: copy_file_range, or sendfile where the kernel refuses it
 * (older kernels, some cross-filesystem pairs); in 64 MiB steps, each told
 * to the progress callback, so a stop need not wait for a large entry. */
static int copy_data(int out, const struct wentry *e, struct writer *w)
{
    uint64_t done = 0;
    bool use_sendfile = false;
    while (done < e->size) {
        size_t chunk = e->size - done > (64u << 20) ? (64u << 20) : (size_t)(e->size - done);
        ssize_t n;
        if (!use_sendfile) {
            loff_t in_off = (loff_t)done, out_off = (loff_t)(e->data_offset + done);
            n = copy_file_range(e->fd, &in_off, out, &out_off, chunk, 0);
            if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                          errno == EOPNOTSUPP || errno == EPERM)) {
                use_sendfile = true;
                continue;
            }
        } else {
            off_t in_off = (off_t)done;
            if (lseek(out, (off_t)(e->data_offset + done), SEEK_SET) < 0)
                return cellar_fail_errno(errno, "seek");
            n = sendfile(out, e->fd, &in_off, chunk);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cellar_fail_errno(errno, "%s: cannot copy", e->src->path);
        RETURN_ERROR_IF(n == 0, CELLAR_ECHANGED, "%s: file shrank while it was being packed",
                        e->src->path);
        done += (uint64_t)n;
        w->pr.bytes_done = e->data_offset + done;
        int rc = done < e->size ? tell(w, false) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

static int check_unchanged(const struct wentry *e)
{
    struct stat now;
    if (e->fd < 0)
        return 0;
    if (fstat(e->fd, &now) < 0)
        return cellar_fail_errno(errno, "%s: cannot stat", e->src->path);
    RETURN_ERROR_IF(now.st_size != e->st.st_size ||
                        now.st_mtim.tv_sec != e->st.st_mtim.tv_sec ||
                        now.st_mtim.tv_nsec != e->st.st_mtim.tv_nsec ||
                        now.st_ctim.tv_sec != e->st.st_ctim.tv_sec ||
                        now.st_ctim.tv_nsec != e->st.st_ctim.tv_nsec,
                    CELLAR_ECHANGED, "%s: file changed while it was being packed", e->src->path);
    return 0;
}

static int write_at(int fd, const void *p, size_t n, uint64_t off, const char *path)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = pwrite(fd, b, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return cellar_fail_errno(errno, "%s: write", path);
        b += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

static int write_local_header(int fd, const struct writer *w, const struct wentry *e)
{
    size_t name_len = strlen(e->src->name);
    uint8_t h[ZIP_LOCAL_SIZE + 0xffff + ZIP_LOCAL_ZIP64_EXTRA];
    put32(h, ZIP_LOCAL_SIG);
    put16(h + 4, ZIP_VERSION_ZIP64);
    put16(h + 6, e->flags);
    put16(h + 8, 0);
    put16(h + 10, w->dos_time);
    put16(h + 12, w->dos_date);
    put32(h + 14, e->crc);
    put32(h + 18, 0xffffffffu);
    put32(h + 22, 0xffffffffu);
    put16(h + 26, (uint16_t)name_len);
    put16(h + 28, ZIP_LOCAL_ZIP64_EXTRA);
    memcpy(h + 30, e->src->name, name_len);
    uint8_t *x = h + 30 + name_len;
    put16(x, ZIP64_EXTRA_ID);
    put16(x + 2, 16);
    put64(x + 4, e->size);
    put64(x + 12, e->size);
    return write_at(fd, h, ZIP_LOCAL_SIZE + name_len + ZIP_LOCAL_ZIP64_EXTRA, e->header_offset,
                    w->path);
}

static int build_central(cellar_buf *b, const struct writer *w, uint64_t cd_offset)
{
    int rc = 0;
    for (size_t i = 0; i < w->n && rc == 0; i++) {
        const struct wentry *e = &w->e[i];
        size_t name_len = strlen(e->src->name);
        uint64_t extra[3];
        size_t n_extra = 0;
        if (e->size > ZIP64_LIMIT) {
            extra[n_extra++] = e->size;
            extra[n_extra++] = e->size;
        }
        if (e->header_offset > ZIP64_LIMIT)
            extra[n_extra++] = e->header_offset;
        uint8_t h[ZIP_CENTRAL_SIZE + 4 + 24];
        h[4] = ZIP_VERSION_ZIP64;
        h[5] = ZIP_SYSTEM_UNIX;
        put32(h, ZIP_CENTRAL_SIG);
        put16(h + 6, ZIP_VERSION_ZIP64);
        put16(h + 8, e->flags);
        put16(h + 10, 0);
        put16(h + 12, w->dos_time);
        put16(h + 14, w->dos_date);
        put32(h + 16, e->crc);
        put32(h + 20, cap32(e->size));
        put32(h + 24, cap32(e->size));
        put16(h + 28, (uint16_t)name_len);
        put16(h + 30, (uint16_t)(n_extra ? 4 + 8 * n_extra : 0));
        put16(h + 32, 0);
        put16(h + 34, 0);
        put16(h + 36, 0);
        put32(h + 38, 0600u << 16);
        put32(h + 42, cap32(e->header_offset));
        if ((rc = cellar_buf_append(b, h, ZIP_CENTRAL_SIZE)) < 0 ||
            (rc = cellar_buf_append(b, e->src->name, name_len)) < 0)
            break;
        if (n_extra) {
            put16(h, ZIP64_EXTRA_ID);
            put16(h + 2, (uint16_t)(8 * n_extra));
            for (size_t k = 0; k < n_extra; k++)
                put64(h + 4 + 8 * k, extra[k]);
            rc = cellar_buf_append(b, h, 4 + 8 * n_extra);
        }
    }
    if (rc < 0)
        return rc;

    uint64_t cd_size = b->len, count = w->n;
    if (count > ZIP_FILECOUNT_LIMIT || cd_offset > ZIP64_LIMIT || cd_size > ZIP64_LIMIT) {
        uint8_t z[ZIP64_END_SIZE + ZIP64_LOCATOR_SIZE];
        put32(z, ZIP64_END_SIG);
        put64(z + 4, ZIP64_END_SIZE - 12);
        put16(z + 12, ZIP_VERSION_ZIP64);
        put16(z + 14, ZIP_VERSION_ZIP64);
        put32(z + 16, 0);
        put32(z + 20, 0);
        put64(z + 24, count);
        put64(z + 32, count);
        put64(z + 40, cd_size);
        put64(z + 48, cd_offset);
        uint8_t *l = z + ZIP64_END_SIZE;
        put32(l, ZIP64_LOCATOR_SIG);
        put32(l + 4, 0);
        put64(l + 8, cd_offset + cd_size);
        put32(l + 16, 1);
        if ((rc = cellar_buf_append(b, z, sizeof z)) < 0)
            return rc;
    }
    uint8_t end[ZIP_END_SIZE];
    put32(end, ZIP_END_SIG);
    put16(end + 4, 0);
    put16(end + 6, 0);
    put16(end + 8, (uint16_t)(count > 0xffff ? 0xffff : count));
    put16(end + 10, (uint16_t)(count > 0xffff ? 0xffff : count));
    put32(end + 12, cd_size > 0xffffffffu ? 0xffffffffu : (uint32_t)cd_size);
    put32(end + 16, cd_offset > 0xffffffffu ? 0xffffffffu : (uint32_t)cd_offset);
    put16(end + 20, 0);
    return cellar_buf_append(b, end, sizeof end);
}

/* Reads the finished temp file back with the full reader, under the final
 * name, before anyone can see it. */
static int verify_output(int fd, const char *path, uint64_t size)
{
    void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return cellar_fail_errno(errno, "%s: cannot map the written file", path);
    cellar_dduf *d = NULL;
    int rc = cellar_dduf_open_buffer(&d, m, (size_t)size, path, 0);
    cellar_dduf_free(d);
    munmap(m, (size_t)size);
    return rc;
}

static int write_all(struct writer *w, unsigned flags)
{
    int rc;
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        struct wentry *e = &w->e[i];
        const char *name = e->src->name;
        e->header_offset = off;
        e->flags = 0;
        for (const char *c = name; *c; c++)
            if ((unsigned char)*c >= 0x80)
                e->flags = ZIP_FLAG_UTF8;
        RETURN_ERROR_IF(ck_add(off, (uint64_t)ZIP_LOCAL_SIZE + strlen(name) +
                                        ZIP_LOCAL_ZIP64_EXTRA,
                               &e->data_offset) ||
                            ck_add(e->data_offset, e->size, &off),
                        CELLAR_ERANGE, "%s: archive size overflows", w->path);
    }
    uint64_t cd_offset = off;
    dos_now(&w->dos_time, &w->dos_date);

    cellar_atomic a;
    if ((rc = cellar_atomic_open(&a, w->path, 0644)) < 0)
        return rc;
    pthread_t tid;
    bool threaded = pthread_create(&tid, NULL, crc_thread, w) == 0;
    if (!threaded)
        crc_thread(w);
    rc = 0;
    w->pr = (cellar_progress){.bytes_total = cd_offset, .files_total = w->n};
    for (size_t i = 0; i < w->n && rc == 0; i++) {
        const struct wentry *e = &w->e[i];
        w->pr.path = e->src->name;
        rc = e->fd >= 0 ? copy_data(a.fd, e, w)
                        : write_at(a.fd, e->src->data, e->src->len, e->data_offset, w->path);
        w->pr.bytes_done = e->data_offset + e->size;
        w->pr.files_done = i + 1;
        if (rc == 0)
            rc = tell(w, i + 1 == w->n); /* a stop drops the temp file below */
        /* Start writing it back now, so the final fsync has less to wait
         * for; only a hint, so its failure is not an error. */
        if (rc == 0 && e->size >= (1u << 20))
            sync_file_range(a.fd, (off64_t)e->data_offset, (off64_t)e->size,
                            SYNC_FILE_RANGE_WRITE);
    }
    if (rc)
        atomic_store(&w->stop, 1); /* no CRC of what will not be written */
    if (threaded)
        pthread_join(tid, NULL);
    if (rc == 0 && w->crc_rc < 0)
        rc = cellar_fail(w->crc_rc, "%s", w->crc_msg);
    /* The CRC and the copy read each source separately: a file written to
     * meanwhile would leave data that does not match its CRC-32. */
    for (size_t i = 0; i < w->n && rc == 0; i++)
        rc = check_unchanged(&w->e[i]);
    for (size_t i = 0; i < w->n && rc == 0; i++)
        rc = write_local_header(a.fd, w, &w->e[i]);
    cellar_buf cd;
    cellar_buf_init(&cd, SIZE_MAX);
    if (rc == 0 && (rc = build_central(&cd, w, cd_offset)) == 0)
        rc = write_at(a.fd, cd.data, cd.len, cd_offset, w->path);
    uint64_t total = cd_offset + cd.len;
    cellar_buf_free(&cd);
    if (rc == 0 && (rc = verify_output(a.fd, w->path, total)) < 0)
        cellar_fail_prefix("refusing to write %s", w->path);
    if (rc == 0)
        return cellar_atomic_commit(&a, flags & CELLAR_DDUF_REPLACE);
    cellar_atomic_abort(&a);
    return rc;
}

static int dduf_write(const char *path, const cellar_dduf_source *entries, size_t n,
                      unsigned flags, cellar_progress_fn progress, void *ctx)
{
    RETURN_ERROR_IF(!path || (!entries && n), CELLAR_EINVAL, "cellar_dduf_write: bad argument");
    struct writer w = {.path = path, .n = n, .progress = progress, .progress_ctx = ctx};
    struct stat st;
    RETURN_ERROR_IF(!(flags & CELLAR_DDUF_REPLACE) && lstat(path, &st) == 0, CELLAR_EEXISTS,
                    "%s: already exists", path);
    w.e = cellar_calloc(n ? n : 1, sizeof *w.e);
    if (!w.e)
        return CELLAR_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        w.e[i].fd = -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct wentry *e = &w.e[i];
        e->src = &entries[i];
        if (!e->src->name) {
            rc = cellar_fail(CELLAR_EINVAL, "%s: entry %zu has no name", path, i);
        } else if (!e->src->path) {
            if (!e->src->data && e->src->len)
                rc = cellar_fail(CELLAR_EINVAL, "%s: entry '%s' has no data", path,
                                 e->src->name);
            e->size = e->src->len;
        } else if ((rc = cellar_open_regular(&e->fd, e->src->path)) != 0) {
            e->fd = -1;
        } else if (fstat(e->fd, &e->st) < 0) {
            rc = cellar_fail_errno(errno, "%s: cannot stat", e->src->path);
        } else if (!S_ISREG(e->st.st_mode)) {
            rc = cellar_fail(CELLAR_EINVAL, "%s: not a regular file", e->src->path);
        } else {
            e->size = (uint64_t)e->st.st_size;
        }
    }
    if (rc == 0 && (rc = check_entries(&w)) == 0)
        rc = write_all(&w, flags);
    for (size_t i = 0; i < n; i++)
        if (w.e[i].fd >= 0)
            close(w.e[i].fd);
    free(w.e);
    return rc;
}

int cellar_dduf_write(const char *path, const cellar_dduf_source *entries, size_t n,
                      unsigned flags, cellar_progress_fn progress, void *ctx)
{
    return dduf_write(path, entries, n, flags, progress, ctx);
}

/* ---- folders ---- */

struct skip {
    char *name;
    const char *why;
};

struct pack_list {
    cellar_dduf_source *v;
    size_t n, cap;
    struct skip *skipped;
    size_t n_skipped, cap_skipped;
};

static int pack_add(struct pack_list *l, const char *dir, const char *name)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        cellar_dduf_source *v = cellar_realloc(l->v, cap * sizeof *v);
        if (!v)
            return CELLAR_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    cellar_dduf_source *s = &l->v[l->n];
    memset(s, 0, sizeof *s);
    s->name = cellar_strdup(name);
    s->path = s->name ? cellar_path_join(dir, name) : NULL;
    if (!s->path) {
        free((char *)s->name);
        return CELLAR_ENOMEM;
    }
    l->n++;
    return 0;
}

static int pack_skip(struct pack_list *l, const char *name, const char *why)
{
    if (l->n_skipped == l->cap_skipped) {
        size_t cap = l->cap_skipped ? 2 * l->cap_skipped : 8;
        struct skip *v = cellar_realloc(l->skipped, cap * sizeof *v);
        if (!v)
            return CELLAR_ENOMEM;
        l->skipped = v;
        l->cap_skipped = cap;
    }
    if (!(l->skipped[l->n_skipped].name = cellar_strdup(name)))
        return CELLAR_ENOMEM;
    l->skipped[l->n_skipped++].why = why;
    return 0;
}

static void pack_list_free(struct pack_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free((char *)l->v[i].name);
        free((char *)l->v[i].path);
    }
    free(l->v);
    for (size_t i = 0; i < l->n_skipped; i++)
        free(l->skipped[i].name);
    free(l->skipped);
}

/* How deep below a component a nested folder is searched for files that
 * belong in a DDUF (symlinks are followed, so a loop must end). */
#define PACK_NESTED_DEPTH 8

/* Finds, under the nested folder dir/sub, a file that would go into a DDUF
 * if it were one level up: 1 (and *found, allocated) if there is one, 0 if
 * the folder holds nothing a DDUF takes, < 0 on error. */
static int pack_find_nested(char **found, const char *dir, const char *sub, int depth)
{
    char *path = cellar_path_join(dir, sub);
    if (!path)
        return CELLAR_ENOMEM;
    DIR *dh = opendir(path);
    free(path);
    if (!dh)
        return cellar_fail_errno(errno, "%s/%s: cannot open the folder", dir, sub);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(dh))) {
        if (de->d_name[0] == '.')
            continue;
        char *name = cellar_sprintf("%s/%s", sub, de->d_name);
        char *full = name ? cellar_path_join(dir, name) : NULL;
        struct stat st;
        if (!full)
            rc = CELLAR_ENOMEM;
        else if (stat(full, &st) < 0)
            rc = cellar_fail_errno(errno, "%s", full);
        else if (S_ISDIR(st.st_mode) && depth < PACK_NESTED_DEPTH)
            rc = pack_find_nested(found, dir, name, depth + 1);
        else if (S_ISDIR(st.st_mode))
            rc = cellar_fail(CELLAR_EFORMAT, "%s: folder '%s' is nested too deep", dir, name);
        else if (cellar_dduf_ext_allowed(de->d_name, strlen(de->d_name)))
            rc = (*found = name) ? (name = NULL, 1) : CELLAR_ENOMEM;
        free(full);
        free(name);
    }
    closedir(dh);
    return rc;
}

/* A folder inside a component: left out if it holds nothing a DDUF takes,
 * refused if it does (the reference drops those files silently, which
 * would lose weights without a word). */
static int pack_nested(struct pack_list *l, const char *dir, const char *name)
{
    char *found = NULL;
    int rc = pack_find_nested(&found, dir, name, 1);
    if (rc == 0)
        rc = pack_skip(l, name, "folder nested in a component, holding no DDUF file");
    else if (rc > 0)
        rc = cellar_fail(CELLAR_EFORMAT,
                         "%s: DDUF only supports 1 level of directory (found '%s' in folder "
                         "'%s')",
                         dir, found, name);
    free(found);
    return rc;
}

/* Adds the files of dir/sub (sub "" for dir itself) as the reference's
 * export_folder_as_dduf picks them: files of other types are left out, and
 * so are hidden files and folders (.gitattributes, .cache/, a Hub
 * snapshot's .huggingface/); each one left out is listed. What would make
 * an invalid DDUF is refused rather than left out: a folder nested in a
 * component that holds files of an allowed type, a name the DDUF rules
 * reject. Symlinks are followed: a Hub snapshot is made of them. */
static int pack_scan(struct pack_list *l, const char *dir, const char *sub)
{
    char *path = *sub ? cellar_path_join(dir, sub) : cellar_strdup(dir);
    if (!path)
        return CELLAR_ENOMEM;
    DIR *dh = opendir(path);
    if (!dh) {
        int rc = cellar_fail_errno(errno, "%s: cannot open the folder", path);
        free(path);
        return rc;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(dh))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *name = *sub ? cellar_sprintf("%s/%s", sub, de->d_name) : cellar_strdup(de->d_name);
        char *full = name ? cellar_path_join(dir, name) : NULL;
        struct stat st;
        if (!full)
            rc = CELLAR_ENOMEM;
        else if (de->d_name[0] == '.')
            rc = pack_skip(l, name, "hidden");
        else if (stat(full, &st) < 0)
            rc = cellar_fail_errno(errno, "%s", full);
        else if (S_ISDIR(st.st_mode) && !*sub)
            rc = pack_scan(l, dir, name);
        else if (S_ISDIR(st.st_mode))
            rc = pack_nested(l, dir, name);
        else if (!cellar_dduf_ext_allowed(de->d_name, strlen(de->d_name)))
            rc = pack_skip(l, name, "file type not allowed in a DDUF");
        else if (!S_ISREG(st.st_mode))
            rc = cellar_fail(CELLAR_EFORMAT, "%s: '%s' is not a regular file", dir, name);
        else if (!cellar_dduf_name_valid(name, strlen(name)))
            rc = cellar_fail(CELLAR_EFORMAT, "%s: Invalid entry name: %s", dir, name);
        else
            rc = pack_add(l, dir, name);
        free(full);
        free(name);
    }
    closedir(dh);
    free(path);
    return rc;
}

/* model_index.json first (so its data starts at byte 66, as the reference
 * writer's does), then by name, for output that does not depend on the
 * directory's order. */
static int cmp_pack(const void *a, const void *b)
{
    const cellar_dduf_source *x = a, *y = b;
    bool xi = !strcmp(x->name, "model_index.json"), yi = !strcmp(y->name, "model_index.json");
    if (xi != yi)
        return xi ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_skip(const void *a, const void *b)
{
    return strcmp(((const struct skip *)a)->name, ((const struct skip *)b)->name);
}

int cellar_dduf_pack(const char *path, const char *dir, unsigned flags,
                     cellar_dduf_skip_fn skipped, cellar_progress_fn progress, void *ctx)
{
    RETURN_ERROR_IF(!path || !dir, CELLAR_EINVAL, "cellar_dduf_pack: bad argument");
    struct pack_list l = {0};
    int rc = pack_scan(&l, dir, "");
    if (rc == 0) {
        if (l.n_skipped) /* qsort's base may not be NULL, even for 0 items */
            qsort(l.skipped, l.n_skipped, sizeof *l.skipped, cmp_skip);
        for (size_t i = 0; rc == 0 && skipped && i < l.n_skipped; i++)
            if (skipped(l.skipped[i].name, l.skipped[i].why, ctx))
                rc = cellar_stopped("dduf pack");
        if (rc == 0 && l.n)
            qsort(l.v, l.n, sizeof *l.v, cmp_pack);
        if (rc == 0)
            rc = dduf_write(path, l.v, l.n, flags, progress, ctx);
    }
    pack_list_free(&l);
    return rc;
}

/* ---- unpacking ---- */

/* A component folder under dir must be a real directory: a symlink there
 * would send the entries outside dir. create false: only check. */
static int unpack_folder(const char *dir, const char *name, size_t len, bool create)
{
    char *folder = cellar_strndup(name, len);
    char *path = folder ? cellar_path_join(dir, folder) : NULL;
    free(folder);
    if (!path)
        return CELLAR_ENOMEM;
    struct stat st;
    int rc = 0;
    if (lstat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            rc = cellar_fail(CELLAR_EEXISTS, "%s: exists and is not a directory (refusing to "
                                             "write through it)",
                             path);
    } else if (errno != ENOENT) {
        rc = cellar_fail_errno(errno, "%s", path);
    } else if (create && mkdir(path, 0755) != 0) {
        rc = cellar_fail_errno(errno, "%s: cannot create", path);
    }
    free(path);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A DDUF may hold a file "a.json" and a folder "a.json/" (the format does
 * not forbid it); no directory can: refuse before writing either. */
static int check_file_folder_clash(const cellar_dduf *d)
{
    size_t nc = cellar_dduf_component_count(d), n = cellar_dduf_entry_count(d);
    if (nc == 0)
        return 0;
    const char **c = cellar_malloc(nc * sizeof *c);
    if (!c)
        return CELLAR_ENOMEM;
    for (size_t i = 0; i < nc; i++)
        c[i] = cellar_dduf_component_at(d, i);
    qsort(c, nc, sizeof *c, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *name = cellar_dduf_entry_at(d, i)->name;
        if (!strchr(name, '/') && bsearch(&name, c, nc, sizeof *c, cmp_str))
            rc = cellar_fail(CELLAR_EEXISTS,
                             "%s: '%s' is both a file and a component folder; it cannot be "
                             "extracted",
                             cellar_dduf_label(d), name);
    }
    free(c);
    return rc;
}

int cellar_dduf_unpack(const cellar_dduf *d, const char *dir, unsigned flags)
{
    RETURN_ERROR_IF(!d || !dir, CELLAR_EINVAL, "cellar_dduf_unpack: bad argument");
    size_t n = cellar_dduf_entry_count(d);
    int clash = check_file_folder_clash(d);
    if (clash < 0)
        return clash;
    /* Names were validated at open (no '..', no leading '/', one level), so
     * dir/name stays in dir; still, check every target before writing any. */
    for (size_t i = 0; i < n; i++) {
        const cellar_dduf_entry *e = cellar_dduf_entry_at(d, i);
        RETURN_ERROR_IF(!cellar_dduf_name_valid(e->name, e->name_len), CELLAR_EFORMAT,
                        "%s: refusing to extract '%s' (it would escape %s)",
                        cellar_dduf_label(d), e->name, dir);
        const char *slash = strchr(e->name, '/');
        int rc = slash ? unpack_folder(dir, e->name, (size_t)(slash - e->name), false) : 0;
        if (rc < 0)
            return rc;
        char *target = cellar_path_join(dir, e->name);
        if (!target)
            return CELLAR_ENOMEM;
        struct stat st;
        bool exists = lstat(target, &st) == 0;
        if (exists && !(flags & CELLAR_DDUF_REPLACE))
            rc = cellar_fail(CELLAR_EEXISTS, "%s: already exists (use --force to overwrite)",
                             target);
        else if (exists && !S_ISREG(st.st_mode))
            rc = cellar_fail(CELLAR_EEXISTS, "%s: exists and is not a regular file", target);
        free(target);
        if (rc < 0)
            return rc;
    }
    int rc = cellar_mkdirs(dir, 0755);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const cellar_dduf_entry *e = cellar_dduf_entry_at(d, i);
        const char *slash = strchr(e->name, '/');
        if (slash && (rc = unpack_folder(dir, e->name, (size_t)(slash - e->name), true)) < 0)
            break;
        char *target = cellar_path_join(dir, e->name);
        if (!target)
            return CELLAR_ENOMEM;
        cellar_atomic a;
        if ((rc = cellar_atomic_open(&a, target, 0644)) == 0) {
            if (cellar_full_write(a.fd, e->data, (size_t)e->size) != 0) {
                rc = cellar_fail_errno(errno, "%s: write", target);
                cellar_atomic_abort(&a);
            } else {
                rc = cellar_atomic_commit(&a, flags & CELLAR_DDUF_REPLACE);
            }
        }
        free(target);
    }
    return rc;
}
