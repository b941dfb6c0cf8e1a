/* BLAKE3 with SSE4.1 (built with -msse4.1, run only if the CPU has it):
 * the single-block compression on four 128-bit rows of the state, and
 * hash_many four inputs at a time, one input per 32-bit lane. */
#include "blake3_impl.h"

#include <immintrin.h>

#define DEGREE 4

static inline __m128i loadu(const void *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}

static inline void storeu(void *p, __m128i v)
{
    _mm_storeu_si128((__m128i *)p, v);
}

static inline __m128i add(__m128i a, __m128i b)
{
    return _mm_add_epi32(a, b);
}

static inline __m128i xor (__m128i a, __m128i b) { return _mm_xor_si128(a, b); }

    /* Rotations by whole bytes are one byte shuffle; the others shift twice. */
    static inline __m128i rot16(__m128i x)
{
    return _mm_shuffle_epi8(x, _mm_set_epi8(13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2));
}

static inline __m128i rot12(__m128i x)
{
    return _mm_or_si128(_mm_srli_epi32(x, 12), _mm_slli_epi32(x, 20));
}

static inline __m128i rot8(__m128i x)
{
    return _mm_shuffle_epi8(x, _mm_set_epi8(12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1));
}

static inline __m128i rot7(__m128i x)
{
    return _mm_or_si128(_mm_srli_epi32(x, 7), _mm_slli_epi32(x, 25));
}

/* ---- one block: the state as rows, four G functions per instruction ---- */

static inline void g_rows(__m128i *r0, __m128i *r1, __m128i *r2, __m128i *r3, __m128i mx,
                          __m128i my)
{
    *r0 = add(add(*r0, mx), *r1);
    *r3 = rot16(xor(*r3, *r0));
    *r2 = add(*r2, *r3);
    *r1 = rot12(xor(*r1, *r2));
    *r0 = add(add(*r0, my), *r1);
    *r3 = rot8(xor(*r3, *r0));
    *r2 = add(*r2, *r3);
    *r1 = rot7(xor(*r1, *r2));
}

/* The message words of one G step, in lane order. */
static inline __m128i msg4(const uint32_t m[16], const uint8_t *s, size_t first)
{
    return _mm_set_epi32((int)m[s[first + 6]], (int)m[s[first + 4]], (int)m[s[first + 2]],
                         (int)m[s[first]]);
}

static inline void compress_rows(__m128i rows[4], const uint32_t cv[8],
                                 const uint8_t block[BLAKE3_BLOCK_LEN], uint8_t block_len,
                                 uint64_t counter, uint8_t flags)
{
    uint32_t m[16];
    memcpy(m, block, sizeof m); /* x86 is little-endian, as BLAKE3 is */
    __m128i r0 = loadu(cv), r1 = loadu(cv + 4);
    __m128i r2 = loadu(BLAKE3_IV);
    __m128i r3 =
        _mm_set_epi32(flags, block_len, (int)(uint32_t)(counter >> 32), (int)(uint32_t)counter);
    for (size_t r = 0; r < 7; r++) {
        const uint8_t *s = BLAKE3_MSG_SCHEDULE[r];
        g_rows(&r0, &r1, &r2, &r3, msg4(m, s, 0), msg4(m, s, 1));
        /* Diagonalize: rotate rows 1-3 so each diagonal becomes a column. */
        r1 = _mm_shuffle_epi32(r1, _MM_SHUFFLE(0, 3, 2, 1));
        r2 = _mm_shuffle_epi32(r2, _MM_SHUFFLE(1, 0, 3, 2));
        r3 = _mm_shuffle_epi32(r3, _MM_SHUFFLE(2, 1, 0, 3));
        g_rows(&r0, &r1, &r2, &r3, msg4(m, s, 8), msg4(m, s, 9));
        r1 = _mm_shuffle_epi32(r1, _MM_SHUFFLE(2, 1, 0, 3));
        r2 = _mm_shuffle_epi32(r2, _MM_SHUFFLE(1, 0, 3, 2));
        r3 = _mm_shuffle_epi32(r3, _MM_SHUFFLE(0, 3, 2, 1));
    }
    rows[0] = r0;
    rows[1] = r1;
    rows[2] = r2;
    rows[3] = r3;
}

void blake3_compress_in_place_sse41(uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                                    uint8_t block_len, uint64_t counter, uint8_t flags)
{
    __m128i rows[4];
    compress_rows(rows, cv, block, block_len, counter, flags);
    storeu(cv, xor(rows[0], rows[2]));
    storeu(cv + 4, xor(rows[1], rows[3]));
}

void blake3_compress_xof_sse41(const uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                               uint8_t block_len, uint64_t counter, uint8_t flags, uint8_t out[64])
{
    __m128i rows[4];
    compress_rows(rows, cv, block, block_len, counter, flags);
    storeu(out, xor(rows[0], rows[2]));
    storeu(out + 16, xor(rows[1], rows[3]));
    storeu(out + 32, xor(rows[2], loadu(cv)));
    storeu(out + 48, xor(rows[3], loadu(cv + 4)));
}

/* ---- four inputs at once: vector v[i] holds state word i of each ---- */

static inline void g_lanes(__m128i v[16], size_t a, size_t b, size_t c, size_t d, __m128i x,
                           __m128i y)
{
    v[a] = add(add(v[a], x), v[b]);
    v[d] = rot16(xor(v[d], v[a]));
    v[c] = add(v[c], v[d]);
    v[b] = rot12(xor(v[b], v[c]));
    v[a] = add(add(v[a], y), v[b]);
    v[d] = rot8(xor(v[d], v[a]));
    v[c] = add(v[c], v[d]);
    v[b] = rot7(xor(v[b], v[c]));
}

static inline void round_lanes(__m128i v[16], const __m128i m[16], size_t r)
{
    const uint8_t *s = BLAKE3_MSG_SCHEDULE[r];
    g_lanes(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
    g_lanes(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
    g_lanes(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
    g_lanes(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
    g_lanes(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
    g_lanes(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
    g_lanes(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
    g_lanes(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
}

/* a[j] = words of input j in, words of lane j out (a 4x4 transpose). */
static inline void transpose4(__m128i a[4])
{
    __m128i t0 = _mm_unpacklo_epi32(a[0], a[1]);
    __m128i t1 = _mm_unpackhi_epi32(a[0], a[1]);
    __m128i t2 = _mm_unpacklo_epi32(a[2], a[3]);
    __m128i t3 = _mm_unpackhi_epi32(a[2], a[3]);
    a[0] = _mm_unpacklo_epi64(t0, t2);
    a[1] = _mm_unpackhi_epi64(t0, t2);
    a[2] = _mm_unpacklo_epi64(t1, t3);
    a[3] = _mm_unpackhi_epi64(t1, t3);
}

static inline void load_msg(__m128i m[16], const uint8_t *const in[DEGREE], size_t offset)
{
    for (size_t q = 0; q < 4; q++) {
        for (size_t j = 0; j < DEGREE; j++)
            m[4 * q + j] = loadu(in[j] + offset + 16 * q);
        transpose4(m + 4 * q);
    }
}

static void hash4(const uint8_t *const in[DEGREE], size_t blocks, const uint32_t key[8],
                  uint64_t counter, bool increment_counter, uint8_t flags, uint8_t flags_start,
                  uint8_t flags_end, uint8_t *out)
{
    __m128i h[8];
    for (size_t i = 0; i < 8; i++)
        h[i] = _mm_set1_epi32((int)key[i]);
    uint32_t lo[DEGREE], hi[DEGREE];
    for (size_t j = 0; j < DEGREE; j++) {
        uint64_t c = counter + (increment_counter ? j : 0);
        lo[j] = (uint32_t)c;
        hi[j] = (uint32_t)(c >> 32);
    }
    const __m128i counter_lo = loadu(lo), counter_hi = loadu(hi);
    uint8_t block_flags = flags | flags_start;
    for (size_t b = 0; b < blocks; b++) {
        if (b + 1 == blocks) block_flags |= flags_end;
        __m128i m[16], v[16];
        load_msg(m, in, b * BLAKE3_BLOCK_LEN);
        for (size_t i = 0; i < 8; i++)
            v[i] = h[i];
        for (size_t i = 0; i < 4; i++)
            v[8 + i] = _mm_set1_epi32((int)BLAKE3_IV[i]);
        v[12] = counter_lo;
        v[13] = counter_hi;
        v[14] = _mm_set1_epi32(BLAKE3_BLOCK_LEN);
        v[15] = _mm_set1_epi32(block_flags);
        for (size_t r = 0; r < 7; r++)
            round_lanes(v, m, r);
        for (size_t i = 0; i < 8; i++)
            h[i] = xor(v[i], v[i + 8]);
        block_flags = flags;
    }
    transpose4(h);
    transpose4(h + 4);
    for (size_t j = 0; j < DEGREE; j++) {
        storeu(out + j * BLAKE3_OUT_LEN, h[j]);
        storeu(out + j * BLAKE3_OUT_LEN + 16, h[4 + j]);
    }
}

void blake3_hash_many_sse41(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                            const uint32_t key[8], uint64_t counter, bool increment_counter,
                            uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out)
{
    while (num_inputs >= DEGREE) {
        hash4(inputs, blocks, key, counter, increment_counter, flags, flags_start, flags_end, out);
        if (increment_counter) counter += DEGREE;
        inputs += DEGREE;
        num_inputs -= DEGREE;
        out += DEGREE * BLAKE3_OUT_LEN;
    }
    blake3_hash_many_portable(inputs, num_inputs, blocks, key, counter, increment_counter, flags,
                              flags_start, flags_end, out);
}
