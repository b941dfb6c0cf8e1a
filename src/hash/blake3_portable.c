/* The BLAKE3 compression function in plain C: the reference every SIMD
 * kernel must agree with, and what runs where no SIMD kernel is built. */
#include "blake3_impl.h"

static inline uint32_t rotr32(uint32_t w, unsigned c)
{
    return (w >> c) | (w << (32 - c));
}

static inline void g(uint32_t *s, size_t a, size_t b, size_t c, size_t d, uint32_t x, uint32_t y)
{
    s[a] = s[a] + s[b] + x;
    s[d] = rotr32(s[d] ^ s[a], 16);
    s[c] = s[c] + s[d];
    s[b] = rotr32(s[b] ^ s[c], 12);
    s[a] = s[a] + s[b] + y;
    s[d] = rotr32(s[d] ^ s[a], 8);
    s[c] = s[c] + s[d];
    s[b] = rotr32(s[b] ^ s[c], 7);
}

static inline void round_fn(uint32_t s[16], const uint32_t m[16], size_t r)
{
    const uint8_t *sch = BLAKE3_MSG_SCHEDULE[r];
    /* Columns, then diagonals. */
    g(s, 0, 4, 8, 12, m[sch[0]], m[sch[1]]);
    g(s, 1, 5, 9, 13, m[sch[2]], m[sch[3]]);
    g(s, 2, 6, 10, 14, m[sch[4]], m[sch[5]]);
    g(s, 3, 7, 11, 15, m[sch[6]], m[sch[7]]);
    g(s, 0, 5, 10, 15, m[sch[8]], m[sch[9]]);
    g(s, 1, 6, 11, 12, m[sch[10]], m[sch[11]]);
    g(s, 2, 7, 8, 13, m[sch[12]], m[sch[13]]);
    g(s, 3, 4, 9, 14, m[sch[14]], m[sch[15]]);
}

/* The 7 rounds; the caller folds the two halves of s. */
static inline void compress_pre(uint32_t s[16], const uint32_t cv[8],
                                const uint8_t block[BLAKE3_BLOCK_LEN], uint8_t block_len,
                                uint64_t counter, uint8_t flags)
{
    uint32_t m[16];
    for (size_t i = 0; i < 16; i++)
        m[i] = blake3_load32(block + 4 * i);
    for (size_t i = 0; i < 8; i++)
        s[i] = cv[i];
    for (size_t i = 0; i < 4; i++)
        s[8 + i] = BLAKE3_IV[i];
    s[12] = (uint32_t)counter;
    s[13] = (uint32_t)(counter >> 32);
    s[14] = block_len;
    s[15] = flags;
    for (size_t r = 0; r < 7; r++)
        round_fn(s, m, r);
}

void blake3_compress_in_place_portable(uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                                       uint8_t block_len, uint64_t counter, uint8_t flags)
{
    uint32_t s[16];
    compress_pre(s, cv, block, block_len, counter, flags);
    for (size_t i = 0; i < 8; i++)
        cv[i] = s[i] ^ s[i + 8];
}

void blake3_compress_xof_portable(const uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                                  uint8_t block_len, uint64_t counter, uint8_t flags,
                                  uint8_t out[64])
{
    uint32_t s[16];
    compress_pre(s, cv, block, block_len, counter, flags);
    for (size_t i = 0; i < 8; i++) {
        blake3_store32(out + 4 * i, s[i] ^ s[i + 8]);
        blake3_store32(out + 32 + 4 * i, s[i + 8] ^ cv[i]);
    }
}

void blake3_hash_many_portable(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                               const uint32_t key[8], uint64_t counter, bool increment_counter,
                               uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out)
{
    for (size_t i = 0; i < num_inputs; i++) {
        uint32_t cv[8];
        memcpy(cv, key, sizeof cv);
        uint8_t block_flags = flags | flags_start;
        for (size_t b = 0; b < blocks; b++) {
            if (b + 1 == blocks) block_flags |= flags_end;
            blake3_compress_in_place_portable(cv, inputs[i] + b * BLAKE3_BLOCK_LEN,
                                              BLAKE3_BLOCK_LEN, counter, block_flags);
            block_flags = flags;
        }
        blake3_store_cv_words(out + i * BLAKE3_OUT_LEN, cv);
        if (increment_counter) counter++;
    }
}
