/* Internal helpers shared by every module: error setting, checked sizes,
 * small I/O. The bottom of the dependency order: includes nothing of ours
 * but the public header. */
#ifndef CELLAR_UTIL_H
#define CELLAR_UTIL_H

#include "cellar.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

/* Sets the thread's error (code and printf-style message) and returns code,
 * so call sites read `return cellar_fail(CELLAR_EFORMAT, "%s: ...", path);`. */
int cellar_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, appending ": strerror(errno)" and mapping errno: ENOENT ->
 * CELLAR_ENOTFOUND, EEXIST -> CELLAR_EEXISTS, ENOMEM -> CELLAR_ENOMEM, else EIO. */
int cellar_fail_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with "prefix: " (adding context as an error
 * travels up) and returns the current code. */
int cellar_fail_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Returns err from the enclosing function when cond holds. */
#define RETURN_ERROR_IF(cond, err, ...)                                                            \
    do {                                                                                           \
        if (cond)                                                                                  \
            return cellar_fail((err), __VA_ARGS__);                                                \
    } while (0)

/* Checked size arithmetic: true on overflow. */
#define ck_add(a, b, out) __builtin_add_overflow((a), (b), (out))
#define ck_mul(a, b, out) __builtin_mul_overflow((a), (b), (out))

/* Allocation that sets CELLAR_ENOMEM on failure (returns NULL). */
void *cellar_malloc(size_t n);
void *cellar_calloc(size_t n, size_t size);
void *cellar_realloc(void *p, size_t n);
char *cellar_strdup(const char *s);
char *cellar_strndup(const char *s, size_t n);
/* asprintf that sets CELLAR_ENOMEM; returns NULL on failure. */
char *cellar_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void cellar_hex(char *out, const uint8_t *in, size_t n);
/* Parses exactly 2n hex digits (either case); false if malformed. */
bool cellar_unhex(uint8_t *out, const char *hex, size_t n);

/* Makes room in a growable array for element n (so n < *cap after):
 * *(T **)arr holds *cap elements of elem bytes; the capacity doubles,
 * starting from first. Sizes are overflow-checked. 0, CELLAR_ERANGE or
 * CELLAR_ENOMEM (the array is unchanged on failure). */
int cellar_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first);

/* A growable byte buffer with a size cap (never grows past cap). */
typedef struct cellar_buf {
    char *data;
    size_t len, cap, limit;
} cellar_buf;
void cellar_buf_init(cellar_buf *b, size_t limit);
int cellar_buf_append(cellar_buf *b, const void *p, size_t n);
int cellar_buf_printf(cellar_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cellar_buf_free(cellar_buf *b);

/* read(2)/write(2) until done, retrying EINTR. full_read returns bytes read
 * (short only at EOF) or -1. */
ssize_t cellar_full_read(int fd, void *buf, size_t n);
ssize_t cellar_full_pread(int fd, void *buf, size_t n, uint64_t off);
int cellar_full_write(int fd, const void *buf, size_t n);

/* Reads a whole file of at most limit bytes into *out (NUL-terminated for
 * convenience; *len excludes the NUL). Errors name the path. */
int cellar_read_file(char **out, size_t *len, const char *path, size_t limit);
/* Opens path read-only if it is a regular file (without blocking on a FIFO
 * first); CELLAR_EUNSUPPORTED naming what it is otherwise. */
int cellar_open_regular(int *fd_out, const char *path);
/* "a FIFO", "a directory"... for st_mode. */
const char *cellar_file_kind(unsigned mode);

/* Atomic file creation: a temp file in the target's directory, written,
 * fsynced, renamed over path, then the directory fsynced. Nothing half
 * written is ever visible under path. */
typedef struct cellar_atomic {
    int fd;
    char *path;
    char *tmp;
} cellar_atomic;
int cellar_atomic_open(cellar_atomic *a, const char *path, unsigned mode);
/* replace: false fails with CELLAR_EEXISTS if path exists (link + unlink). */
int cellar_atomic_commit(cellar_atomic *a, bool replace);
/* Removes the temp file; safe after commit or on a zeroed struct. */
void cellar_atomic_abort(cellar_atomic *a);
int cellar_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode);

/* fsync a directory (after creating or renaming entries in it). */
int cellar_fsync_dir(const char *dir);
/* mkdir -p with mode; existing directories are fine. */
int cellar_mkdirs(const char *path, unsigned mode);
/* "a" + "/" + "b", allocated. */
char *cellar_path_join(const char *a, const char *b);
/* $CELLAR_HOME, else $XDG_CACHE_HOME/cellar, else ~/.cache/cellar; allocated. */

/* Number of online CPUs (>= 1). */
unsigned cellar_ncpus(void);

/* CELLAR_EUSER with "<what>: stopped by the caller": for an operation
 * whose callback returned non-zero. */
int cellar_stopped(const char *what);

/* True at most every interval_ms (and on the first call, *last zero):
 * throttles progress callbacks. Updates *last when true. */
bool cellar_tick(struct timespec *last, long interval_ms);

/* CELLAR_EINVAL naming type (its NAME_INIT macro) unless version is the
 * one this library knows: options structs carry the version they were
 * compiled against. */
int cellar_opts_check(unsigned version, unsigned known, const char *type, const char *init);
/* Every options version from 1 to VERSION is taken: a field added later
 * is read only where (o)->version says the caller's struct has it. */
#define CELLAR_OPTS_CHECK(o, type, VERSION, INIT)                                                  \
    do {                                                                                           \
        if ((o) && ((o)->version < 1 || (o)->version > (VERSION)))                                 \
            return cellar_opts_check((o)->version, (VERSION), type, INIT);                         \
    } while (0)

/* Maps the whole regular file at path read-only: *map and *len (NULL and 0
 * for an empty file); munmap(*map, *len) releases it. Errors name path:
 * CELLAR_ENOTFOUND, CELLAR_EIO..., CELLAR_EINVAL (not a regular file). */
int cellar_map_file(void **map, size_t *len, const char *path);

#endif
