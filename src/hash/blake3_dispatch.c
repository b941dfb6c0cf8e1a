/* Chooses the BLAKE3 kernel once: the widest tier that is built, that the
 * CPU has and the OS saves the registers of, and that the cap set with
 * cellar_blake3_set_isa() (portable|sse41|avx2|avx512) does not forbid. */
#include "blake3_impl.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

enum tier { TIER_PORTABLE, TIER_SSE41, TIER_AVX2, TIER_AVX512 };

static const char *const tier_names[] = {"portable", "sse41", "avx2", "avx512"};

#if defined(__x86_64__) || defined(__i386__)
static uint64_t xgetbv0(void)
{
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (uint64_t)edx << 32 | eax;
}
#endif

/* The best tier the CPU and OS support, whether or not it is built. */
static enum tier cpu_tier(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_SSE4_1)) return TIER_PORTABLE;
    /* Wider registers also need the OS to save them on a context switch:
     * OSXSAVE, then XCR0's SSE+AVX state (bits 1-2) and opmask+ZMM state
     * (bits 5-7). */
    if (!(ecx & bit_OSXSAVE)) return TIER_SSE41;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6 || !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return TIER_SSE41;
    if (!(ebx & bit_AVX2)) return TIER_SSE41;
    if ((xcr0 & 0xe0) == 0xe0 && (ebx & bit_AVX512F) && (ebx & bit_AVX512VL)) return TIER_AVX512;
    return TIER_AVX2;
#else
    return TIER_PORTABLE;
#endif
}

/* The cap set by cellar_blake3_set_isa(); TIER_AVX512: none. */
static int isa_cap = TIER_AVX512;

#define PORTABLE_COMPRESS blake3_compress_in_place_portable, blake3_compress_xof_portable
#if (defined(__x86_64__) || defined(__i386__)) && !defined(CELLAR_NO_SSE41)
#define SSE41_COMPRESS blake3_compress_in_place_sse41, blake3_compress_xof_sse41
#else
#define SSE41_COMPRESS PORTABLE_COMPRESS
#endif

/* Each tier's kernel: its own hash_many, with the SSE4.1 single-block
 * compression where it is built. Wider tiers have none of their own: one
 * block fills only four 128-bit rows, and single blocks (partial chunks,
 * the root, the last parents) are a vanishing share of a large input. A
 * tier that is not built has no name. */
static const blake3_kernel kernels[] = {
    [TIER_PORTABLE] = {"portable", 1, PORTABLE_COMPRESS, blake3_hash_many_portable},
#if defined(__x86_64__) || defined(__i386__)
#if !defined(CELLAR_NO_SSE41)
    [TIER_SSE41] = {"sse41", 4, SSE41_COMPRESS, blake3_hash_many_sse41},
#endif
#if !defined(CELLAR_NO_AVX2)
    [TIER_AVX2] = {"avx2", 8, SSE41_COMPRESS, blake3_hash_many_avx2},
#endif
#if !defined(CELLAR_NO_AVX512)
    [TIER_AVX512] = {"avx512", 16, SSE41_COMPRESS, blake3_hash_many_avx512},
#endif
#endif
};

/* Threads racing on the first call choose the same kernel, so a plain
 * atomic pointer is all the synchronization needed. */
static const blake3_kernel *chosen;

const blake3_kernel *blake3_kernel_get(void)
{
    const blake3_kernel *k = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (k) return k;
    enum tier t = cpu_tier();
    enum tier cap = (enum tier)__atomic_load_n(&isa_cap, __ATOMIC_ACQUIRE);
    if (t > cap) t = cap;
    while (t > TIER_PORTABLE &&
           ((size_t)t >= sizeof kernels / sizeof kernels[0] || !kernels[t].name))
        t--;
    k = &kernels[t];
    __atomic_store_n(&chosen, k, __ATOMIC_RELEASE);
    return k;
}

void blake3_dispatch_reset(void)
{
    __atomic_store_n(&chosen, NULL, __ATOMIC_RELEASE);
}

const char *cellar_blake3_isa(void)
{
    return blake3_kernel_get()->name;
}

int cellar_blake3_set_isa(const char *name)
{
    int cap = -1;
    if (!name || !*name)
        cap = TIER_AVX512;
    for (int t = TIER_PORTABLE; cap < 0 && t <= TIER_AVX512; t++)
        if (!strcmp(name, tier_names[t]))
            cap = t;
    RETURN_ERROR_IF(cap < 0, CELLAR_EINVAL,
                    "BLAKE3 kernel tier '%s' unknown (portable, sse41, avx2 or avx512)", name);
    __atomic_store_n(&isa_cap, cap, __ATOMIC_RELEASE);
    blake3_dispatch_reset();
    return 0;
}

int cellar_blake3_isa_from_env(void)
{
    const char *v = getenv("CELLAR_BLAKE3_ISA");
    if (!v)
        return 0;
    int rc = cellar_blake3_set_isa(v);
    if (rc)
        cellar_blake3_set_isa(NULL);
    return rc;
}
