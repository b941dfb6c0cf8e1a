/* The hashing engine's internal API: one pass over a file feeding several
 * (algorithm, byte range) lanes, and the file identity the hash cache keys
 * on, and the calls into a caller's hash cache. Used by ident.c (CivitAI/InvokeAI identifiers) and the store. */
#ifndef CELLAR_DIGEST_H
#define CELLAR_DIGEST_H

#include "cellar.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/* One algorithm over file[start:end] (end clamped to the file's size, as a
 * Python slice is). The unit of work of a pass. */
typedef struct digest_lane {
    cellar_algo algo;
    uint64_t start, end;
    uint8_t out[CELLAR_DIGEST_MAX];
} digest_lane;

/* A pass's progress: fn hears the file's bytes read (path, bytes_total
 * set), from the thread that started the pass only, at most every 100 ms;
 * non-zero stops the pass with CELLAR_EUSER. */
typedef struct digest_progress {
    cellar_progress_fn fn;
    void *ctx;
    struct timespec last;
} digest_progress;

/* Reports done of total bytes of path to pr (NULL or without fn: nothing):
 * 0, or CELLAR_EUSER (the message names path) when it asks to stop. Only
 * every 100 ms unless force. */
int digest_report(digest_progress *pr, const char *path, uint64_t done, uint64_t total,
                  bool force);

/* Hashes every lane over the regular file fd (whose fstat before the pass is
 * *st) in one pass: mmap or read(2) per flags and size, lanes spread over up
 * to nthreads threads (0: all cores), progress to pr (may be NULL).
 * Afterwards fstat must match *st, else CELLAR_ECHANGED. name labels
 * errors. */
int digest_lanes_fd(digest_lane *lanes, size_t n, int fd, const char *name, const struct stat *st,
                    uint32_t flags, unsigned nthreads, digest_progress *pr);

/* Opens path for hashing: O_RDONLY, then fstat. Directories, devices and
 * sockets fail with CELLAR_EUNSUPPORTED; FIFOs are returned as they are. */
int digest_open(int *fd, struct stat *st, const char *path);

/* True if two stats describe the same unchanged file (device, inode, size,
 * mtime, ctime). */
bool digest_stat_same(const struct stat *a, const struct stat *b);

/* True if a digest of the file described by st may be cached: its last
 * change is older than the coarse timestamp clock's granularity, so a later
 * write in the same tick cannot leave mtime and ctime unchanged. */
bool digest_stat_cacheable(const struct stat *st);

/* The file id a hash cache keys on. */
void digest_file_id(cellar_file_id *id, const struct stat *st);
/* CELLAR_EINVAL unless o is NULL or of a version this library knows. */
int digest_opts_check(const cellar_hash_opts *o);
/* The cache to use: o->cache unless absent, incomplete, of an unknown
 * version or turned off by CELLAR_HASH_NO_CACHE; else NULL. */
const cellar_hash_cache *digest_cache_of(const cellar_hash_opts *o);
/* Looks n entries up (c may be NULL: all misses). Every failure of the
 * cache reads as a miss; no error is left set. Returns 0. */
int digest_cache_lookup(const cellar_hash_cache *c, cellar_hash_cache_entry *e, size_t n);
/* Records n entries (c may be NULL); failures are ignored. The caller
 * leaves out files digest_stat_cacheable() refuses. */
void digest_cache_record(const cellar_hash_cache *c, const cellar_hash_cache_entry *e, size_t n);

#endif
