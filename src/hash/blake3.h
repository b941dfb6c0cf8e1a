/* BLAKE3 for other modules of cellar: hashing a buffer or a file on
 * several threads. The hasher itself (cellar_blake3_*) is in cellar.h; the
 * kernels and their dispatch are private to src/blake3*.c
 * (blake3_impl.h). */
#ifndef CELLAR_BLAKE3_H
#define CELLAR_BLAKE3_H

#include "cellar.h"

#include <stddef.h>
#include <stdint.h>

/* For `cellar hash` and the public cellar_blake3_hash_parallel. Both
 * functions take a hasher fresh from any init (so keyed and derive_key
 * work too) and leave it exactly as cellar_blake3_update over the same
 * bytes would, so the caller finalizes it to any length. The input is cut
 * into aligned subtrees of 2^k chunks hashed on up to nthreads threads (0:
 * all cores); a hasher that has absorbed bytes already, or an input too
 * small to be worth threads, is fed on the calling thread, with the same
 * result. */

/* A whole buffer in memory (a memory-mapped file, for instance). If threads
 * cannot be started, the calling thread does the work. */
void blake3_update_parallel(cellar_blake3 *h, const void *data, size_t len, unsigned nthreads);

/* Bytes [0, size) of the open file fd: each thread preads 1 MiB subtrees
 * into a buffer of its own and hashes them while they are in its cache.
 * On a page-cached file this is about twice as fast as hashing a memory
 * map of it (no page faults, no DRAM-bound loads in the kernels); prefer
 * it for files. Returns 0, or, leaving h unusable: CELLAR_ECHANGED (the
 * file is shorter than size), CELLAR_ENOMEM, or CELLAR_EIO (a read failed;
 * the message names path). */
/* progress (may be NULL) hears bytes_done of bytes_total (size) from the
 * calling thread after each unit it hashes; non-zero stops the pass:
 * CELLAR_EUSER. */
int blake3_update_fd(cellar_blake3 *h, int fd, uint64_t size, unsigned nthreads, const char *path,
                     cellar_progress_fn progress, void *ctx);

/* blake3_update_parallel with the subtree size chosen by the caller
 * (unit_len: a power of two, at least one chunk), so tests can put the
 * edges between threads' work anywhere. */
void blake3_update_subtrees(cellar_blake3 *h, const void *data, size_t len, unsigned nthreads,
                            size_t unit_len);

#endif
