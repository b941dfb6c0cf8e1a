/* BLAKE3 internals: constants, the kernel interface every instruction-set
 * file implements, and the run-time dispatch between them.
 *
 * A kernel does three things. compress_in_place and compress_xof are the
 * compression function on one block (the chunk state, parents left over at
 * the end, and the root). hash_many runs the same number of compressions
 * over several inputs at once, one input per SIMD lane: whole chunks
 * (16 blocks each) or parent blocks (1 block, two CVs), so it is where
 * nearly all the time of a large input goes. */
#ifndef CELLAR_BLAKE3_IMPL_H
#define CELLAR_BLAKE3_IMPL_H

#include "blake3.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BLAKE3_OUT_LEN CELLAR_BLAKE3_OUT_LEN
#define BLAKE3_KEY_LEN CELLAR_BLAKE3_KEY_LEN
#define BLAKE3_BLOCK_LEN CELLAR_BLAKE3_BLOCK_LEN
#define BLAKE3_CHUNK_LEN CELLAR_BLAKE3_CHUNK_LEN
#define BLAKE3_MAX_DEPTH CELLAR_BLAKE3_MAX_DEPTH

/* The widest kernel hashes 16 inputs at once (AVX-512). The subtree code
 * sizes its arrays for that; a narrower kernel just fills fewer slots. */
#define BLAKE3_MAX_SIMD_DEGREE 16
/* The subtree code always reduces to at least two CVs, even at degree 1. */
#define BLAKE3_MAX_SIMD_DEGREE_OR_2 16

enum blake3_flags {
    CHUNK_START = 1 << 0,
    CHUNK_END = 1 << 1,
    PARENT = 1 << 2,
    ROOT = 1 << 3,
    KEYED_HASH = 1 << 4,
    DERIVE_KEY_CONTEXT = 1 << 5,
    DERIVE_KEY_MATERIAL = 1 << 6,
};

/* The SHA-256 IV. */
static const uint32_t BLAKE3_IV[8] = {0x6A09E667UL, 0xBB67AE85UL, 0x3C6EF372UL, 0xA54FF53AUL,
                                      0x510E527FUL, 0x9B05688CUL, 0x1F83D9ABUL, 0x5BE0CD19UL};

/* The message word order of each of the 7 rounds: row r+1 is row r put
 * through the permutation [2,6,3,10,7,0,4,13,1,11,12,5,9,14,15,8]. Kernels
 * index the block with it instead of permuting words between rounds. */
static const uint8_t BLAKE3_MSG_SCHEDULE[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

static inline uint32_t blake3_load32(const void *src)
{
    const uint8_t *p = src;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void blake3_store32(void *dst, uint32_t w)
{
    uint8_t *p = dst;
    p[0] = (uint8_t)w;
    p[1] = (uint8_t)(w >> 8);
    p[2] = (uint8_t)(w >> 16);
    p[3] = (uint8_t)(w >> 24);
}

static inline void blake3_load_key_words(const uint8_t key[BLAKE3_KEY_LEN], uint32_t words[8])
{
    for (size_t i = 0; i < 8; i++)
        words[i] = blake3_load32(key + 4 * i);
}

static inline void blake3_store_cv_words(uint8_t out[BLAKE3_OUT_LEN], const uint32_t cv[8])
{
    for (size_t i = 0; i < 8; i++)
        blake3_store32(out + 4 * i, cv[i]);
}

/* cv = the first half of compress(cv, block, ...). */
typedef void (*blake3_compress_in_place_fn)(uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                                            uint8_t block_len, uint64_t counter, uint8_t flags);
/* out = all 64 bytes of compress(cv, block, ...): extended output. */
typedef void (*blake3_compress_xof_fn)(const uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                                       uint8_t block_len, uint64_t counter, uint8_t flags,
                                       uint8_t out[64]);
/* For each of num_inputs inputs of `blocks` whole blocks: start from key,
 * compress block after block (flags_start added on the first, flags_end on
 * the last) and write the 32-byte CV to out + i * 32. Input i uses counter
 * + i if increment_counter (chunks), else counter (parents). */
typedef void (*blake3_hash_many_fn)(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                                    const uint32_t key[8], uint64_t counter, bool increment_counter,
                                    uint8_t flags, uint8_t flags_start, uint8_t flags_end,
                                    uint8_t *out);

typedef struct blake3_kernel {
    const char *name; /* "avx512", "avx2", "sse41", "portable" */
    size_t degree;    /* inputs hash_many takes at full speed */
    blake3_compress_in_place_fn compress_in_place;
    blake3_compress_xof_fn compress_xof;
    blake3_hash_many_fn hash_many;
} blake3_kernel;

/* The kernels. Each x86 one lives in its own file built with its own flags
 * (cmake/isa.cmake); CELLAR_NO_<ISA> leaves a file out of the build. */
void blake3_compress_in_place_portable(uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                                       uint8_t block_len, uint64_t counter, uint8_t flags);
void blake3_compress_xof_portable(const uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                                  uint8_t block_len, uint64_t counter, uint8_t flags,
                                  uint8_t out[64]);
void blake3_hash_many_portable(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                               const uint32_t key[8], uint64_t counter, bool increment_counter,
                               uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out);

#if defined(__x86_64__) || defined(__i386__)
#if !defined(CELLAR_NO_SSE41)
void blake3_compress_in_place_sse41(uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                                    uint8_t block_len, uint64_t counter, uint8_t flags);
void blake3_compress_xof_sse41(const uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                               uint8_t block_len, uint64_t counter, uint8_t flags, uint8_t out[64]);
void blake3_hash_many_sse41(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                            const uint32_t key[8], uint64_t counter, bool increment_counter,
                            uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out);
#endif
#if !defined(CELLAR_NO_AVX2)
void blake3_hash_many_avx2(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                           const uint32_t key[8], uint64_t counter, bool increment_counter,
                           uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out);
#endif
#if !defined(CELLAR_NO_AVX512)
void blake3_hash_many_avx512(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                             const uint32_t key[8], uint64_t counter, bool increment_counter,
                             uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out);
#endif
#endif

/* The best kernel this CPU and build support, capped by CELLAR_BLAKE3_ISA;
 * chosen on the first call, then constant. */
const blake3_kernel *blake3_kernel_get(void);
/* Forgets the choice, so the next blake3_kernel_get() reads the CPU and the
 * environment again. For tests that run every tier in one process; not
 * safe while another thread is hashing. */
void blake3_dispatch_reset(void);

#endif
