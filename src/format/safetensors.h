/* safetensors internals shared with the shard, structural-hash and DDUF
 * modules. The public API is in cellar.h. */
#ifndef CELLAR_SAFETENSORS_H
#define CELLAR_SAFETENSORS_H

#include "util.h"

/* Room for a tensor name or key rendered by cellar_st_quote() in messages. */
#define CELLAR_ST_NAME_SHOWN 160

/* The dtype's place in the reference's Dtype enum, which its writer sorts
 * by (descending); 0 for an unknown dtype. */
unsigned cellar_dtype_rank(cellar_dtype d);

/* Element count and byte size of a tensor: CELLAR_ERANGE on overflow,
 * CELLAR_EINVAL if the bits are not a whole number of bytes (*nelem is set
 * then). Sets no message. */
int cellar_st_nbytes(uint64_t *nelem, uint64_t *nbytes, cellar_dtype dtype, size_t rank,
                     const uint64_t *shape);

/* A printable rendering of a length-delimited name for messages (control
 * bytes, quotes and backslashes as \xNN, long names cut with "..."). */
void cellar_st_quote(char *out, size_t size, const char *s, size_t len);

/* Orders length-delimited names by their bytes (a prefix first), as the
 * reference sorts Rust strings and Python sorts str (UTF-8 byte order is
 * code-point order). */
int cellar_st_name_cmp(const char *a, size_t al, const char *b, size_t bl);

/* Where st's bytes come from: a descriptor (buf NULL) or a buffer (fd -1). */
int cellar_st_source(int *fd, const uint8_t **buf, const cellar_st *st);

/* Puts the canonical 8-byte length and padded header the writer would write
 * into out (initialised here; the caller frees it). Sorts w's entries. */
int cellar_st_writer_header(cellar_buf *out, cellar_st_writer *w);

/* Progress of a write that is part of a larger job: base holds the job's
 * totals and what was done before this file (NULL: this file alone). */
void st_writer_progress(cellar_st_writer *w, cellar_progress_fn fn, void *ctx,
                        const cellar_progress *base);

/* Appends len bytes of in_fd from offset off to out_fd at its position:
 * copy_file_range where the kernel can, pread/write otherwise. label names
 * the output in messages. */
int cellar_copy_range(int out_fd, int in_fd, uint64_t off, uint64_t len, const char *label);

/* Adds a tensor whose nbytes are copied at write time from fd at offset off
 * (copy_file_range where the kernel can); fd must stay open until then.
 * Errors as cellar_st_writer_add(). */
int cellar_st_writer_add_fd(cellar_st_writer *w, const char *name, size_t name_len,
                            cellar_dtype dtype, size_t rank, const uint64_t *shape, int fd,
                            uint64_t off, uint64_t nbytes);

#endif
