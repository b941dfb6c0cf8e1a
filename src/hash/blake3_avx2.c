/* BLAKE3 with AVX2 (built with -mavx2, run only if the CPU and OS have it):
 * hash_many eight inputs at a time, one input per 32-bit lane. */
#include "blake3_impl.h"

#include <immintrin.h>

#define DEGREE 8
/* Eight inputs are eight streams 1 KiB apart; asking for each input's
 * bytes a few blocks ahead keeps the loads out of DRAM latency. */
#define PREFETCH_AHEAD 256

static inline __m256i loadu(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

static inline void storeu(void *p, __m256i v)
{
    _mm256_storeu_si256((__m256i *)p, v);
}

static inline __m256i add(__m256i a, __m256i b)
{
    return _mm256_add_epi32(a, b);
}

static inline __m256i xor (__m256i a, __m256i b) { return _mm256_xor_si256(a, b); }

    /* Rotations by whole bytes are one byte shuffle; the others shift twice. */
    static inline __m256i rot16(__m256i x)
{
    return _mm256_shuffle_epi8(x, _mm256_set_epi8(13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3,
                                                  2, 13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0,
                                                  3, 2));
}

static inline __m256i rot12(__m256i x)
{
    return _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20));
}

static inline __m256i rot8(__m256i x)
{
    return _mm256_shuffle_epi8(x, _mm256_set_epi8(12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2,
                                                  1, 12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3,
                                                  2, 1));
}

static inline __m256i rot7(__m256i x)
{
    return _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25));
}

static inline void g_lanes(__m256i v[16], size_t a, size_t b, size_t c, size_t d, __m256i x,
                           __m256i y)
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

static inline void round_lanes(__m256i v[16], const __m256i m[16], size_t r)
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

/* a[j] = 8 words of input j in, word j of every input out (8x8 transpose:
 * pairs of words, then pairs of pairs within 128-bit halves, then halves). */
static inline void transpose8(__m256i a[8])
{
    __m256i ab_0145 = _mm256_unpacklo_epi32(a[0], a[1]);
    __m256i ab_2367 = _mm256_unpackhi_epi32(a[0], a[1]);
    __m256i cd_0145 = _mm256_unpacklo_epi32(a[2], a[3]);
    __m256i cd_2367 = _mm256_unpackhi_epi32(a[2], a[3]);
    __m256i ef_0145 = _mm256_unpacklo_epi32(a[4], a[5]);
    __m256i ef_2367 = _mm256_unpackhi_epi32(a[4], a[5]);
    __m256i gh_0145 = _mm256_unpacklo_epi32(a[6], a[7]);
    __m256i gh_2367 = _mm256_unpackhi_epi32(a[6], a[7]);
    __m256i abcd_04 = _mm256_unpacklo_epi64(ab_0145, cd_0145);
    __m256i abcd_15 = _mm256_unpackhi_epi64(ab_0145, cd_0145);
    __m256i abcd_26 = _mm256_unpacklo_epi64(ab_2367, cd_2367);
    __m256i abcd_37 = _mm256_unpackhi_epi64(ab_2367, cd_2367);
    __m256i efgh_04 = _mm256_unpacklo_epi64(ef_0145, gh_0145);
    __m256i efgh_15 = _mm256_unpackhi_epi64(ef_0145, gh_0145);
    __m256i efgh_26 = _mm256_unpacklo_epi64(ef_2367, gh_2367);
    __m256i efgh_37 = _mm256_unpackhi_epi64(ef_2367, gh_2367);
    a[0] = _mm256_permute2x128_si256(abcd_04, efgh_04, 0x20);
    a[4] = _mm256_permute2x128_si256(abcd_04, efgh_04, 0x31);
    a[1] = _mm256_permute2x128_si256(abcd_15, efgh_15, 0x20);
    a[5] = _mm256_permute2x128_si256(abcd_15, efgh_15, 0x31);
    a[2] = _mm256_permute2x128_si256(abcd_26, efgh_26, 0x20);
    a[6] = _mm256_permute2x128_si256(abcd_26, efgh_26, 0x31);
    a[3] = _mm256_permute2x128_si256(abcd_37, efgh_37, 0x20);
    a[7] = _mm256_permute2x128_si256(abcd_37, efgh_37, 0x31);
}

static inline void load_msg(__m256i m[16], const uint8_t *const in[DEGREE], size_t offset)
{
    for (size_t half = 0; half < 2; half++) {
        for (size_t j = 0; j < DEGREE; j++) {
            m[8 * half + j] = loadu(in[j] + offset + 32 * half);
            _mm_prefetch((const char *)(in[j] + offset + 32 * half + PREFETCH_AHEAD), _MM_HINT_T0);
        }
        transpose8(m + 8 * half);
    }
}

static void hash8(const uint8_t *const in[DEGREE], size_t blocks, const uint32_t key[8],
                  uint64_t counter, bool increment_counter, uint8_t flags, uint8_t flags_start,
                  uint8_t flags_end, uint8_t *out)
{
    __m256i h[8];
    for (size_t i = 0; i < 8; i++)
        h[i] = _mm256_set1_epi32((int)key[i]);
    uint32_t lo[DEGREE], hi[DEGREE];
    for (size_t j = 0; j < DEGREE; j++) {
        uint64_t c = counter + (increment_counter ? j : 0);
        lo[j] = (uint32_t)c;
        hi[j] = (uint32_t)(c >> 32);
    }
    const __m256i counter_lo = loadu(lo), counter_hi = loadu(hi);
    uint8_t block_flags = flags | flags_start;
    for (size_t b = 0; b < blocks; b++) {
        if (b + 1 == blocks) block_flags |= flags_end;
        __m256i m[16], v[16];
        load_msg(m, in, b * BLAKE3_BLOCK_LEN);
        for (size_t i = 0; i < 8; i++)
            v[i] = h[i];
        for (size_t i = 0; i < 4; i++)
            v[8 + i] = _mm256_set1_epi32((int)BLAKE3_IV[i]);
        v[12] = counter_lo;
        v[13] = counter_hi;
        v[14] = _mm256_set1_epi32(BLAKE3_BLOCK_LEN);
        v[15] = _mm256_set1_epi32(block_flags);
        for (size_t r = 0; r < 7; r++)
            round_lanes(v, m, r);
        for (size_t i = 0; i < 8; i++)
            h[i] = xor(v[i], v[i + 8]);
        block_flags = flags;
    }
    transpose8(h);
    for (size_t j = 0; j < DEGREE; j++)
        storeu(out + j * BLAKE3_OUT_LEN, h[j]);
}

void blake3_hash_many_avx2(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                           const uint32_t key[8], uint64_t counter, bool increment_counter,
                           uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out)
{
    while (num_inputs >= DEGREE) {
        hash8(inputs, blocks, key, counter, increment_counter, flags, flags_start, flags_end, out);
        if (increment_counter) counter += DEGREE;
        inputs += DEGREE;
        num_inputs -= DEGREE;
        out += DEGREE * BLAKE3_OUT_LEN;
    }
#if !defined(CELLAR_NO_SSE41)
    blake3_hash_many_sse41(inputs, num_inputs, blocks, key, counter, increment_counter, flags,
                           flags_start, flags_end, out);
#else
    blake3_hash_many_portable(inputs, num_inputs, blocks, key, counter, increment_counter, flags,
                              flags_start, flags_end, out);
#endif
}
