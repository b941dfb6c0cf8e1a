/* safetensors: the canonical writer (split from safetensors.c, which keeps
 * the reader, as dduf_write.c is split from dduf.c). Tensors are sorted as
 * the reference's serialize() does: by dtype rank descending, then by name;
 * the header is compact JSON padded with spaces to a multiple of 8. */
#include "json.h"
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct wentry {
    char *name;
    size_t name_len;
    cellar_dtype dtype;
    size_t rank;
    uint64_t *shape;
    uint64_t nbytes;
    const void *data; /* bytes in memory, or NULL when copied from src */
    int src_fd;
    uint64_t src_off;
} wentry;

typedef struct wmeta {
    char *key, *value;
} wmeta;

struct cellar_st_writer {
    wentry *e;
    size_t n, cap;
    wmeta *meta;
    size_t nmeta;
    uint64_t data_size;
    cellar_progress_fn progress;
    void *progress_ctx;
    cellar_progress base; /* where this file's write sits in a larger job */
};

void st_writer_progress(cellar_st_writer *w, cellar_progress_fn fn, void *ctx,
                        const cellar_progress *base)
{
    w->progress = fn;
    w->progress_ctx = ctx;
    w->base = base ? *base : (cellar_progress){0};
}

void cellar_st_writer_set_progress(cellar_st_writer *w, cellar_progress_fn fn, void *ctx)
{
    st_writer_progress(w, fn, ctx, NULL);
}

/* Reports written bytes of this file (throttled unless end). Non-zero
 * from the callback: CELLAR_EUSER. */
static int writer_tell(cellar_st_writer *w, uint64_t written, const char *path,
                       struct timespec *tick, bool end)
{
    if (!w->progress || (!end && !cellar_tick(tick, 100)))
        return 0;
    cellar_progress p = w->base;
    p.bytes_done += written;
    if (!p.bytes_total)
        p.bytes_total = w->data_size;
    if (!p.files_total)
        p.files_total = 1;
    if (end)
        p.files_done++;
    p.path = path;
    return w->progress(&p, w->progress_ctx) ? cellar_stopped("safetensors write") : 0;
}

int cellar_st_writer_new(cellar_st_writer **out)
{
    *out = cellar_calloc(1, sizeof **out);
    return *out ? 0 : CELLAR_ENOMEM;
}

void cellar_st_writer_free(cellar_st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].shape);
    }
    for (size_t i = 0; i < w->nmeta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->e);
    free(w->meta);
    free(w);
}

static int writer_push(cellar_st_writer *w, const char *name, size_t name_len, cellar_dtype dtype,
                       size_t rank, const uint64_t *shape, uint64_t nbytes, wentry **added)
{
    char shown[CELLAR_ST_NAME_SHOWN];
    cellar_st_quote(shown, sizeof shown, name, name_len);
    if (name_len == 12 && memcmp(name, "__metadata__", 12) == 0)
        return cellar_fail(CELLAR_EINVAL, "safetensors writer: '__metadata__' is not a tensor name");
    if (cellar_utf8_check(name, name_len) != name_len)
        return cellar_fail(CELLAR_EINVAL, "safetensors writer: tensor name '%s' is not valid UTF-8",
                           shown);
    if ((unsigned)dtype >= CELLAR_DTYPE__COUNT)
        return cellar_fail(CELLAR_EINVAL, "safetensors writer: tensor '%s': unknown dtype %d", shown,
                           (int)dtype);
    uint64_t nelem = 0, want = 0, total;
    int rc = cellar_st_nbytes(&nelem, &want, dtype, rank, shape);
    if (rc == CELLAR_ERANGE)
        return cellar_fail(CELLAR_ERANGE, "safetensors writer: tensor '%s': size overflows", shown);
    if (rc || want != nbytes)
        return cellar_fail(CELLAR_EINVAL,
                           "safetensors writer: tensor '%s': %llu bytes given, its %s shape needs %llu%s",
                           shown, (unsigned long long)nbytes, cellar_dtype_name(dtype),
                           (unsigned long long)want, rc ? " (not a whole number of bytes)" : "");
    if (ck_add(w->data_size, nbytes, &total))
        return cellar_fail(CELLAR_ERANGE, "safetensors writer: total size overflows");
    int grown = cellar_grow(&w->e, &w->cap, w->n, sizeof *w->e, 64);
    if (grown)
        return grown;
    wentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = cellar_strndup(name, name_len);
    e->shape = cellar_calloc(rank ? rank : 1, sizeof *e->shape);
    if (!e->name || !e->shape) {
        free(e->name);
        free(e->shape);
        return CELLAR_ENOMEM;
    }
    if (rank)
        memcpy(e->shape, shape, rank * sizeof *shape);
    e->name_len = name_len;
    e->dtype = dtype;
    e->rank = rank;
    e->nbytes = nbytes;
    e->src_fd = -1;
    w->n++;
    w->data_size = total;
    *added = e;
    return 0;
}

int cellar_st_writer_add(cellar_st_writer *w, const char *name, size_t name_len, cellar_dtype dtype,
                         size_t rank, const uint64_t *shape, const void *data, uint64_t nbytes)
{
    wentry *e;
    int rc = writer_push(w, name, name_len, dtype, rank, shape, nbytes, &e);
    if (rc == 0)
        e->data = data ? data : "";
    return rc;
}

int cellar_st_writer_add_fd(cellar_st_writer *w, const char *name, size_t name_len,
                            cellar_dtype dtype, size_t rank, const uint64_t *shape, int fd,
                            uint64_t off, uint64_t nbytes)
{
    wentry *e;
    int rc = writer_push(w, name, name_len, dtype, rank, shape, nbytes, &e);
    if (rc == 0) {
        e->src_fd = fd;
        e->src_off = off;
    }
    return rc;
}

int cellar_st_writer_add_from(cellar_st_writer *w, cellar_st *src, size_t i)
{
    const cellar_st_tensor *t = cellar_st_tensor_at(src, i);
    if (!t)
        return cellar_fail(CELLAR_EINVAL, "%s: no tensor %zu", cellar_st_label(src), i);
    wentry *e;
    int rc = writer_push(w, t->name, t->name_len, t->dtype, t->rank, t->shape, t->end - t->begin, &e);
    if (rc)
        return rc;
    int src_fd;
    const uint8_t *src_buf;
    cellar_st_source(&src_fd, &src_buf, src);
    if (src_buf) {
        e->data = src_buf + t->offset;
    } else {
        e->src_fd = src_fd;
        e->src_off = t->offset;
    }
    return 0;
}

int cellar_st_writer_set_metadata(cellar_st_writer *w, const char *key, const char *value)
{
    const char *text[2] = {key, value};
    for (int i = 0; i < 2; i++)
        if (cellar_utf8_check(text[i], strlen(text[i])) != strlen(text[i])) {
            char shown[CELLAR_ST_NAME_SHOWN];
            cellar_st_quote(shown, sizeof shown, text[i], strlen(text[i]));
            return cellar_fail(CELLAR_EINVAL, "safetensors writer: metadata %s '%s' is not valid UTF-8",
                               i ? "value" : "key", shown);
        }
    for (size_t i = 0; i < w->nmeta; i++)
        if (strcmp(w->meta[i].key, key) == 0) {
            char *v = cellar_strdup(value);
            if (!v)
                return CELLAR_ENOMEM;
            free(w->meta[i].value);
            w->meta[i].value = v;
            return 0;
        }
    wmeta *m = cellar_realloc(w->meta, (w->nmeta + 1) * sizeof *m);
    if (!m)
        return CELLAR_ENOMEM;
    w->meta = m;
    m[w->nmeta].key = cellar_strdup(key);
    m[w->nmeta].value = cellar_strdup(value);
    if (!m[w->nmeta].key || !m[w->nmeta].value) {
        free(m[w->nmeta].key);
        free(m[w->nmeta].value);
        return CELLAR_ENOMEM;
    }
    w->nmeta++;
    return 0;
}

uint64_t cellar_st_writer_data_size(const cellar_st_writer *w)
{
    return w->data_size;
}

/* Writer order: the reference's dtype rank descending, then name bytes
 * ascending. */
static int cmp_wentry(const void *a, const void *b)
{
    const wentry *x = a, *y = b;
    unsigned rx = cellar_dtype_rank(x->dtype), ry = cellar_dtype_rank(y->dtype);
    if (rx != ry)
        return rx > ry ? -1 : 1;
    return cellar_st_name_cmp(x->name, x->name_len, y->name, y->name_len);
}

static int cmp_wmeta(const void *a, const void *b)
{
    return strcmp(((const wmeta *)a)->key, ((const wmeta *)b)->key);
}

static bool has_format(const cellar_st_writer *w)
{
    for (size_t i = 0; i < w->nmeta; i++)
        if (strcmp(w->meta[i].key, "format") == 0)
            return true;
    return false;
}

int cellar_st_writer_header(cellar_buf *out, cellar_st_writer *w)
{
    int rc;
    cellar_buf_init(out, (size_t)CELLAR_ST_MAX_HEADER + 8);
    if (!has_format(w) && (rc = cellar_st_writer_set_metadata(w, "format", "pt")))
        return rc;
    if (w->n)
        qsort(w->e, w->n, sizeof *w->e, cmp_wentry);
    qsort(w->meta, w->nmeta, sizeof *w->meta, cmp_wmeta);
    /* Duplicates sit next to each other within a dtype; across dtypes a
     * sorted copy of the names finds them. */
    if (w->n > 1) {
        wentry *byname = cellar_malloc(w->n * sizeof *byname);
        if (!byname)
            return CELLAR_ENOMEM;
        memcpy(byname, w->e, w->n * sizeof *byname);
        for (size_t i = 0; i < w->n; i++)
            byname[i].dtype = CELLAR_DTYPE_BOOL;
        qsort(byname, w->n, sizeof *byname, cmp_wentry);
        rc = 0;
        for (size_t i = 1; i < w->n && rc == 0; i++)
            if (cellar_st_name_cmp(byname[i - 1].name, byname[i - 1].name_len, byname[i].name,
                         byname[i].name_len) == 0) {
                char shown[CELLAR_ST_NAME_SHOWN];
                cellar_st_quote(shown, sizeof shown, byname[i].name, byname[i].name_len);
                rc = cellar_fail(CELLAR_EINVAL, "safetensors writer: two tensors named '%s'", shown);
            }
        free(byname);
        if (rc)
            return rc;
    }
    cellar_jw jw;
    /* Room for the length prefix, filled in below. */
    if ((rc = cellar_buf_append(out, "\0\0\0\0\0\0\0\0", 8)))
        return rc;
    cellar_jw_init(&jw, out, 0, false);
    cellar_jw_object(&jw);
    cellar_jw_keyz(&jw, "__metadata__");
    cellar_jw_object(&jw);
    for (size_t i = 0; i < w->nmeta; i++) {
        cellar_jw_keyz(&jw, w->meta[i].key);
        cellar_jw_stringz(&jw, w->meta[i].value);
    }
    cellar_jw_object_end(&jw);
    uint64_t at = 0;
    for (size_t i = 0; i < w->n; i++) {
        const wentry *e = &w->e[i];
        cellar_jw_key(&jw, e->name, e->name_len);
        cellar_jw_object(&jw);
        cellar_jw_keyz(&jw, "dtype");
        cellar_jw_stringz(&jw, cellar_dtype_name(e->dtype));
        cellar_jw_keyz(&jw, "shape");
        cellar_jw_array(&jw);
        for (size_t k = 0; k < e->rank; k++)
            cellar_jw_u64(&jw, e->shape[k]);
        cellar_jw_array_end(&jw);
        cellar_jw_keyz(&jw, "data_offsets");
        cellar_jw_array(&jw);
        cellar_jw_u64(&jw, at);
        cellar_jw_u64(&jw, at + e->nbytes);
        cellar_jw_array_end(&jw);
        cellar_jw_object_end(&jw);
        at += e->nbytes;
    }
    cellar_jw_object_end(&jw);
    if ((rc = cellar_jw_finish(&jw))) {
        if (rc == CELLAR_ERANGE)
            rc = cellar_fail(CELLAR_ERANGE, "safetensors writer: header over %u bytes",
                             CELLAR_ST_MAX_HEADER);
        return rc;
    }
    while ((out->len - 8) % 8)
        if ((rc = cellar_buf_append(out, " ", 1)))
            return rc;
    uint64_t n = out->len - 8;
    if (n > CELLAR_ST_MAX_HEADER)
        return cellar_fail(CELLAR_ERANGE, "safetensors writer: header over %u bytes",
                           CELLAR_ST_MAX_HEADER);
    for (int i = 0; i < 8; i++)
        out->data[i] = (char)(n >> (8 * i) & 0xFF);
    return 0;
}

int cellar_copy_range(int out_fd, int in_fd, uint64_t off, uint64_t len, const char *label)
{
    bool plain = false;
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
        if (!plain) {
            off_t in_off = (off_t)off;
            ssize_t r = copy_file_range(in_fd, &in_off, out_fd, NULL, chunk, 0);
            if (r > 0) {
                off += (uint64_t)r;
                len -= (uint64_t)r;
                continue;
            }
            if (r < 0 && errno == EINTR)
                continue;
            if (r == 0)
                return cellar_fail(CELLAR_ECHANGED, "%s: the file shrank while it was copied", label);
            if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP &&
                errno != EBADF)
                return cellar_fail_errno(errno, "%s: copy_file_range", label);
            plain = true;
        }
        static __thread char buf[1 << 20];
        size_t part = chunk < sizeof buf ? chunk : sizeof buf;
        ssize_t r = cellar_full_pread(in_fd, buf, part, off);
        if (r < 0)
            return cellar_fail_errno(errno, "%s: read", label);
        if ((size_t)r != part)
            return cellar_fail(CELLAR_ECHANGED, "%s: the file shrank while it was copied", label);
        if (cellar_full_write(out_fd, buf, part) != 0)
            return cellar_fail_errno(errno, "%s: write", label);
        off += part;
        len -= part;
    }
    return 0;
}

int cellar_st_writer_write(cellar_st_writer *w, const char *path)
{
    cellar_buf hdr;
    int rc = cellar_st_writer_header(&hdr, w);
    if (rc) {
        cellar_buf_free(&hdr);
        return rc;
    }
    cellar_atomic a;
    if ((rc = cellar_atomic_open(&a, path, 0644))) {
        cellar_buf_free(&hdr);
        return rc;
    }
    if (cellar_full_write(a.fd, hdr.data, hdr.len) != 0)
        rc = cellar_fail_errno(errno, "%s: write", path);
    cellar_buf_free(&hdr);
    uint64_t written = 0;
    struct timespec tick = {0, 0};
    for (size_t i = 0; i < w->n && rc == 0; i++) {
        const wentry *e = &w->e[i];
        if (e->data) {
            if (cellar_full_write(a.fd, e->data, (size_t)e->nbytes) != 0)
                rc = cellar_fail_errno(errno, "%s: write", path);
        } else {
            rc = cellar_copy_range(a.fd, e->src_fd, e->src_off, e->nbytes, path);
        }
        written += e->nbytes;
        if (rc == 0)
            rc = writer_tell(w, written, path, &tick, false);
    }
    /* Stopped here, the temp file is dropped: nothing half-written shows. */
    if (rc == 0)
        rc = writer_tell(w, written, path, &tick, true);
    if (rc) {
        cellar_atomic_abort(&a);
        return rc;
    }
    return cellar_atomic_commit(&a, true);
}
