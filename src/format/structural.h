/* The structural hash over a generic tensor list, shared with identify.c.
 * The public entry points are in cellar.h. */
#ifndef CELLAR_STRUCTURAL_H
#define CELLAR_STRUCTURAL_H

#include "util.h"

/* DiffSynth's hash of n tensors (names unique; only name, rank and shape
 * are read). out gets 32 lower-case hex digits and a NUL. */
int cellar_structural_hash_list(char out[33], const cellar_tensor_desc *t, size_t n);
/* Same over pointers; name_sorted: they come in name byte order (faster). */
int cellar_structural_hash_ptrs(char out[33], const cellar_tensor_desc *const *t, size_t n,
                                bool name_sorted);

#endif
