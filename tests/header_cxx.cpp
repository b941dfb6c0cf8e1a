// include/cellar.h compiled as C++11 (-Wall -Wextra -Werror -pedantic) and
// linked against the C library: a C++ caller, or a binding generator that
// parses the header as C++, sees the same declarations a C caller does
// (extern "C", no C-only syntax in the declarations or macros).
#include "cellar.h"

#include <cstdio>
#include <cstring>
#include <type_traits>

static int failed = 0;
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond);               \
            failed++;                                                                              \
        }                                                                                          \
    } while (0)

// The public structs stay plain data a C++ caller may memcpy and
// zero-initialise.
static_assert(std::is_trivial<cellar_blake3>::value, "cellar_blake3 is plain data");
static_assert(std::is_standard_layout<cellar_digests>::value, "cellar_digests is plain data");
static_assert(std::is_standard_layout<cellar_hash_opts>::value, "cellar_hash_opts is plain data");
static_assert(std::is_standard_layout<cellar_pull_opts>::value, "cellar_pull_opts is plain data");

int main()
{
    EXPECT(std::strlen(cellar_version()) > 0);
    EXPECT(std::strcmp(cellar_error_name(CELLAR_EFORMAT), "EFORMAT") == 0);

    cellar_algo a = CELLAR_ALGO_BLAKE3;
    EXPECT(cellar_algo_parse(&a, "sha256") == 0 && a == CELLAR_ALGO_SHA256);
    EXPECT(cellar_algo_parse(&a, "sha3") == CELLAR_EINVAL);
    EXPECT(std::strlen(cellar_error_last()) > 0);
    cellar_error_clear();

    // One pass of two algorithms over "abc", against the published values.
    cellar_hasher *h = nullptr;
    uint32_t algos = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256) | CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3);
    EXPECT(cellar_hasher_new(&h, algos, UINT64_MAX) == 0);
    cellar_hasher_update(h, "abc", 3);
    cellar_digests d;
    EXPECT(cellar_hasher_final(&d, h) == 0);
    cellar_hasher_free(h);
    char hex[2 * CELLAR_DIGEST_MAX + 1];
    cellar_digest_hex(hex, &d, CELLAR_ALGO_SHA256);
    EXPECT(std::strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    cellar_digest_hex(hex, &d, CELLAR_ALGO_BLAKE3);
    EXPECT(std::strcmp(hex, "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85") == 0);

    cellar_blake3 b;
    cellar_blake3_init(&b);
    cellar_blake3_update(&b, "abc", 3);
    uint8_t out[CELLAR_BLAKE3_OUT_LEN];
    cellar_blake3_finalize(&b, out, sizeof out);
    EXPECT(out[0] == 0x64 && out[31] == 0x85);

    // A parser's error through the C ABI: bytes that are no safetensors.
    cellar_st *st = nullptr;
    static const unsigned char junk[4] = {1, 2, 3, 4};
    EXPECT(cellar_st_open_buffer(&st, junk, sizeof junk, "junk") == CELLAR_EFORMAT);
    EXPECT(st == nullptr);
    cellar_st_free(nullptr);
    cellar_free(nullptr);

    std::printf("%s\n", failed ? "FAILED" : "ok");
    return failed ? 1 : 0;
}
