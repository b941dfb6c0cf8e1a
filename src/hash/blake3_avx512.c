/* BLAKE3 with AVX-512 (built with -mavx512f -mavx512vl, run only if the CPU
 * and OS have them): hash_many sixteen inputs at a time, one input per
 * 32-bit lane, with the native 32-bit rotate. */
#include "blake3_impl.h"

#include <immintrin.h>

#define DEGREE 16
/* Sixteen inputs are sixteen streams 1 KiB apart, more than the hardware
 * prefetcher follows; asking for each input's bytes a few blocks ahead
 * keeps the loads out of DRAM latency. */
#define PREFETCH_AHEAD 256

static inline __m512i add(__m512i a, __m512i b)
{
    return _mm512_add_epi32(a, b);
}

static inline __m512i xor (__m512i a, __m512i b) { return _mm512_xor_si512(a, b); }

    static inline void g_lanes(__m512i v[16], size_t a, size_t b, size_t c, size_t d, __m512i x,
                               __m512i y)
{
    v[a] = add(add(v[a], x), v[b]);
    v[d] = _mm512_ror_epi32(xor(v[d], v[a]), 16);
    v[c] = add(v[c], v[d]);
    v[b] = _mm512_ror_epi32(xor(v[b], v[c]), 12);
    v[a] = add(add(v[a], y), v[b]);
    v[d] = _mm512_ror_epi32(xor(v[d], v[a]), 8);
    v[c] = add(v[c], v[d]);
    v[b] = _mm512_ror_epi32(xor(v[b], v[c]), 7);
}

static inline void round_lanes(__m512i v[16], const __m512i m[16], size_t r)
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

/* a[j] = the 16 words of input j in, word j of every input out.
 *
 * First, within each group of four inputs, a 4x4 transpose inside every
 * 128-bit lane: g[4q + k] lane L then holds word 4L + k of inputs
 * 4q..4q+3. Then, for each k, a 4x4 transpose of 128-bit lanes across the
 * four groups puts word 4L + k of all sixteen inputs in one vector. */
static inline void transpose16(__m512i a[16])
{
    __m512i g[16];
    for (size_t q = 0; q < 4; q++) {
        const __m512i *x = a + 4 * q;
        __m512i t0 = _mm512_unpacklo_epi32(x[0], x[1]);
        __m512i t1 = _mm512_unpackhi_epi32(x[0], x[1]);
        __m512i t2 = _mm512_unpacklo_epi32(x[2], x[3]);
        __m512i t3 = _mm512_unpackhi_epi32(x[2], x[3]);
        g[4 * q + 0] = _mm512_unpacklo_epi64(t0, t2);
        g[4 * q + 1] = _mm512_unpackhi_epi64(t0, t2);
        g[4 * q + 2] = _mm512_unpacklo_epi64(t1, t3);
        g[4 * q + 3] = _mm512_unpackhi_epi64(t1, t3);
    }
    for (size_t k = 0; k < 4; k++) {
        __m512i l01_g01 = _mm512_shuffle_i32x4(g[k], g[4 + k], _MM_SHUFFLE(1, 0, 1, 0));
        __m512i l23_g01 = _mm512_shuffle_i32x4(g[k], g[4 + k], _MM_SHUFFLE(3, 2, 3, 2));
        __m512i l01_g23 = _mm512_shuffle_i32x4(g[8 + k], g[12 + k], _MM_SHUFFLE(1, 0, 1, 0));
        __m512i l23_g23 = _mm512_shuffle_i32x4(g[8 + k], g[12 + k], _MM_SHUFFLE(3, 2, 3, 2));
        a[0 + k] = _mm512_shuffle_i32x4(l01_g01, l01_g23, _MM_SHUFFLE(2, 0, 2, 0));
        a[4 + k] = _mm512_shuffle_i32x4(l01_g01, l01_g23, _MM_SHUFFLE(3, 1, 3, 1));
        a[8 + k] = _mm512_shuffle_i32x4(l23_g01, l23_g23, _MM_SHUFFLE(2, 0, 2, 0));
        a[12 + k] = _mm512_shuffle_i32x4(l23_g01, l23_g23, _MM_SHUFFLE(3, 1, 3, 1));
    }
}

static void hash16(const uint8_t *const in[DEGREE], size_t blocks, const uint32_t key[8],
                   uint64_t counter, bool increment_counter, uint8_t flags, uint8_t flags_start,
                   uint8_t flags_end, uint8_t *out)
{
    __m512i h[8];
    for (size_t i = 0; i < 8; i++)
        h[i] = _mm512_set1_epi32((int)key[i]);
    uint32_t lo[DEGREE], hi[DEGREE];
    for (size_t j = 0; j < DEGREE; j++) {
        uint64_t c = counter + (increment_counter ? j : 0);
        lo[j] = (uint32_t)c;
        hi[j] = (uint32_t)(c >> 32);
    }
    const __m512i counter_lo = _mm512_loadu_si512(lo), counter_hi = _mm512_loadu_si512(hi);
    uint8_t block_flags = flags | flags_start;
    for (size_t b = 0; b < blocks; b++) {
        if (b + 1 == blocks) block_flags |= flags_end;
        __m512i m[16], v[16];
        for (size_t j = 0; j < DEGREE; j++) {
            m[j] = _mm512_loadu_si512(in[j] + b * BLAKE3_BLOCK_LEN);
            _mm_prefetch((const char *)(in[j] + b * BLAKE3_BLOCK_LEN + PREFETCH_AHEAD),
                         _MM_HINT_T0);
        }
        transpose16(m);
        for (size_t i = 0; i < 8; i++)
            v[i] = h[i];
        for (size_t i = 0; i < 4; i++)
            v[8 + i] = _mm512_set1_epi32((int)BLAKE3_IV[i]);
        v[12] = counter_lo;
        v[13] = counter_hi;
        v[14] = _mm512_set1_epi32(BLAKE3_BLOCK_LEN);
        v[15] = _mm512_set1_epi32(block_flags);
        for (size_t r = 0; r < 7; r++)
            round_lanes(v, m, r);
        for (size_t i = 0; i < 8; i++)
            h[i] = xor(v[i], v[i + 8]);
        block_flags = flags;
    }
    /* Eight words of sixteen inputs out: a scatter through memory costs
     * nothing next to the 16 KiB of input behind it. */
    uint32_t words[8][DEGREE];
    for (size_t i = 0; i < 8; i++)
        _mm512_storeu_si512(words[i], h[i]);
    for (size_t j = 0; j < DEGREE; j++)
        for (size_t i = 0; i < 8; i++)
            memcpy(out + j * BLAKE3_OUT_LEN + 4 * i, &words[i][j], 4);
}

void blake3_hash_many_avx512(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                             const uint32_t key[8], uint64_t counter, bool increment_counter,
                             uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out)
{
    while (num_inputs >= DEGREE) {
        hash16(inputs, blocks, key, counter, increment_counter, flags, flags_start, flags_end, out);
        if (increment_counter) counter += DEGREE;
        inputs += DEGREE;
        num_inputs -= DEGREE;
        out += DEGREE * BLAKE3_OUT_LEN;
    }
    /* The rest (fewer than 16) through the next narrower kernel built. */
#if !defined(CELLAR_NO_AVX2)
    blake3_hash_many_avx2(inputs, num_inputs, blocks, key, counter, increment_counter, flags,
                          flags_start, flags_end, out);
#elif !defined(CELLAR_NO_SSE41)
    blake3_hash_many_sse41(inputs, num_inputs, blocks, key, counter, increment_counter, flags,
                           flags_start, flags_end, out);
#else
    blake3_hash_many_portable(inputs, num_inputs, blocks, key, counter, increment_counter, flags,
                              flags_start, flags_end, out);
#endif
}
