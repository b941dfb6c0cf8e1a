/* dtype conversion between F32, F16 and BF16 (cellar_convert), rounding to
 * nearest even exactly as torch's c10::Half / c10::BFloat16 do. The scalar
 * forms are branchless so the loops vectorize; F16C is used for F16 when the
 * CPU has it (same results for every non-NaN value). */
#include "cellar.h"
#include "util.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#endif

#if defined(__GNUC__) && !defined(__clang__)
#define VECTORIZE __attribute__((optimize("O3", "tree-vectorize")))
#else
#define VECTORIZE
#endif

static inline float f_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint32_t bits_from_f(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* FP16's fp16_ieee_to_fp32_value (what c10::Half uses). */
static inline float f16_to_f32(uint16_t h)
{
    uint32_t w = (uint32_t)h << 16;
    uint32_t sign = w & 0x80000000u;
    uint32_t two_w = w + w;
    float normalized = f_from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    float denormalized = f_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
    uint32_t r = sign | (two_w < (1u << 27) ? bits_from_f(denormalized) : bits_from_f(normalized));
    return f_from_bits(r);
}

/* FP16's fp16_ieee_from_fp32_value: NaN gives sign | 0x7E00. */
static inline uint16_t f32_to_f16(float f)
{
    float base = (__builtin_fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    uint32_t w = bits_from_f(f);
    uint32_t shl1_w = w + w;
    uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u)
        bias = 0x71000000u;
    base = f_from_bits((bias >> 1) + 0x07800000u) + base;
    uint32_t bits = bits_from_f(base);
    uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    uint32_t mantissa_bits = bits & 0x00000FFFu;
    uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline float bf16_to_f32(uint16_t h)
{
    return f_from_bits((uint32_t)h << 16);
}

/* c10::BFloat16's round_to_nearest_even: NaN gives 0x7FC0. */
static inline uint16_t f32_to_bf16(float f)
{
    uint32_t u = bits_from_f(f);
    uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)(f != f ? 0x7FC0u : r);
}

VECTORIZE static void f16_f32(float *d, const uint16_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = f16_to_f32(s[i]);
}

VECTORIZE static void f32_f16(uint16_t *d, const float *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = f32_to_f16(s[i]);
}

VECTORIZE static void bf16_f32(float *d, const uint16_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = bf16_to_f32(s[i]);
}

VECTORIZE static void f32_bf16(uint16_t *d, const float *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = f32_to_bf16(s[i]);
}

VECTORIZE static void f16_bf16(uint16_t *d, const uint16_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = f32_to_bf16(f16_to_f32(s[i]));
}

VECTORIZE static void bf16_f16(uint16_t *d, const uint16_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = f32_to_f16(bf16_to_f32(s[i]));
}

#ifdef HAVE_X86
__attribute__((target("avx,f16c"))) static void f16_f32_f16c(float *d, const uint16_t *s,
                                                              size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(h));
    }
    f16_f32(d + i, s + i, n - i);
}

__attribute__((target("avx,f16c"))) static void f32_f16_f16c(uint16_t *d, const float *s,
                                                              size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(s + i);
        __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        /* NaN as torch's scalar path gives it: sign | 0x7E00. */
        _mm_storeu_si128((__m128i *)(void *)(d + i), h);
        __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        if (!_mm256_testz_ps(nan, nan))
            for (size_t k = 0; k < 8; k++)
                if (s[i + k] != s[i + k])
                    d[i + k] = f32_to_f16(s[i + k]);
    }
    f32_f16(d + i, s + i, n - i);
}

static int have_f16c(void)
{
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v >= 0)
        return v;
    unsigned a, b, c, d;
    v = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
        if (osxsave && avx && f16c) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            v = (lo & 6u) == 6u; /* the OS saves XMM and YMM state */
        }
    }
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}
#endif

static int is_float16ish(cellar_dtype t)
{
    return t == CELLAR_DTYPE_F32 || t == CELLAR_DTYPE_F16 || t == CELLAR_DTYPE_BF16;
}

int cellar_convert(void *dst, cellar_dtype dt, const void *src, cellar_dtype st, size_t n)
{
    if (dt == st) {
        unsigned bits = cellar_dtype_bits(dt);
        if (!bits || bits % 8)
            return cellar_fail(CELLAR_EINVAL, "convert: dtype %s cannot be copied by element",
                               cellar_dtype_name(dt));
        size_t bytes;
        if (__builtin_mul_overflow(n, (size_t)(bits / 8), &bytes))
            return cellar_fail(CELLAR_ERANGE, "convert: %zu elements overflow", n);
        if (bytes)
            memmove(dst, src, bytes);
        return 0;
    }
    if (!is_float16ish(dt) || !is_float16ish(st))
        return cellar_fail(CELLAR_EINVAL, "convert: %s to %s is not offered (F32, F16, BF16 only)",
                           cellar_dtype_name(st), cellar_dtype_name(dt));
    if (st == CELLAR_DTYPE_F16 && dt == CELLAR_DTYPE_F32) {
#ifdef HAVE_X86
        if (have_f16c()) {
            f16_f32_f16c(dst, src, n);
            return 0;
        }
#endif
        f16_f32(dst, src, n);
    } else if (st == CELLAR_DTYPE_F32 && dt == CELLAR_DTYPE_F16) {
#ifdef HAVE_X86
        if (have_f16c()) {
            f32_f16_f16c(dst, src, n);
            return 0;
        }
#endif
        f32_f16(dst, src, n);
    } else if (st == CELLAR_DTYPE_BF16 && dt == CELLAR_DTYPE_F32) {
        bf16_f32(dst, src, n);
    } else if (st == CELLAR_DTYPE_F32 && dt == CELLAR_DTYPE_BF16) {
        f32_bf16(dst, src, n);
    } else if (st == CELLAR_DTYPE_F16 && dt == CELLAR_DTYPE_BF16) {
        f16_bf16(dst, src, n);
    } else {
        bf16_f16(dst, src, n);
    }
    return 0;
}
