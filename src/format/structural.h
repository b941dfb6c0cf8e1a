/* The structural hash over a generic tensor list, shared with identify.c.
 * The public entry points are in cellar.h. */
#ifndef CELLAR_STRUCTURAL_H
#define CELLAR_STRUCTURAL_H

#include "safetensors.h"
#include "util.h"

/* One tensor of a union over a shard set and the index of its file. */
typedef struct cellar_st_member {
    const cellar_st_tensor *t;
    size_t file;
} cellar_st_member;

/* The union of the tensors of files[0..nfiles), sorted by name (byte
 * order); where a name stands in several files the last file's tensor
 * wins (how a shard set and the identifier both read a split model).
 * *out is malloc'd (NULL when there is no tensor), free() it; *n gets the
 * count. CELLAR_ENOMEM. The files are only read. */
int cellar_st_union(cellar_st_member **out, size_t *n, cellar_st *const *files, size_t nfiles);

/* DiffSynth's hash of n tensors (names unique; only name, rank and shape
 * are read). out gets 32 lower-case hex digits and a NUL. */
int cellar_structural_hash_list(char out[33], const cellar_tensor_desc *t, size_t n);
/* Same over pointers; name_sorted: they come in name byte order (faster). */
int cellar_structural_hash_ptrs(char out[33], const cellar_tensor_desc *const *t, size_t n,
                                bool name_sorted);

#endif
