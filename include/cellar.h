/*
 * cellar: one copy of every model weight file on a machine.
 *
 * This is libcellar's only public header. Conventions, as in libgit2:
 *  - functions return int: 0 on success, a negative CELLAR_E* code on
 *    failure; the message behind cellar_error_last() then names the file and
 *    the rule that was broken;
 *  - outputs come first; objects are opaque handles freed with a NULL-safe
 *    *_free();
 *  - strings handed in are borrowed for the call; strings handed out live as
 *    long as the object they came from, unless the comment says otherwise;
 *  - the library never prints, never exits and never aborts on bad input.
 */
#ifndef CELLAR_H
#define CELLAR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CELLAR_BUILDING)
#define CELLAR_API __attribute__((visibility("default")))
#else
#define CELLAR_API
#endif

/* ======================================================================
 * Errors
 * ====================================================================== */

/* Error codes. Only ever appended to, never renumbered. */
enum {
    CELLAR_OK = 0,
    CELLAR_EIO = -1,          /* a system call failed (errno in the message) */
    CELLAR_ENOMEM = -2,       /* out of memory */
    CELLAR_EINVAL = -3,       /* a bad argument from the caller */
    CELLAR_EFORMAT = -4,      /* input breaks a format rule */
    CELLAR_ENOTFOUND = -5,    /* file, blob, repo, revision or entry missing */
    CELLAR_EEXISTS = -6,      /* target exists and overwriting was not asked */
    CELLAR_EMISMATCH = -7,    /* bytes do not match their expected digest/size */
    CELLAR_ECHANGED = -8,     /* a file changed while it was being read */
    CELLAR_ENET = -9,         /* network or HTTP failure */
    CELLAR_EAUTH = -10,       /* 401/403: gated or private, token needed */
    CELLAR_EUNSUPPORTED = -11, /* valid input cellar does not handle */
    CELLAR_EBUSY = -12,       /* locked by another process */
    CELLAR_EDB = -13,         /* the store's index database failed */
    CELLAR_ERANGE = -14,      /* a size or count overflows */
};

/* The message of the last error set on this thread ("" if none). Valid until
 * the next cellar call on this thread. */
CELLAR_API const char *cellar_error_last(void);
/* The code of the last error set on this thread (0 if none). */
CELLAR_API int cellar_error_code(void);
/* Forget the last error on this thread. */
CELLAR_API void cellar_error_clear(void);
/* A short constant name for a code ("EFORMAT"). */
CELLAR_API const char *cellar_error_name(int code);

/* "0.1.0" */
CELLAR_API const char *cellar_version(void);

/* ======================================================================
 * BLAKE3 (src/blake3*.c, docs/blake3.md)
 *
 * An infallible init/update/finalize hasher on caller-allocated state, as in
 * the reference C implementation: no allocation, no errors. SIMD kernels
 * (SSE4.1, AVX2, AVX-512) are chosen once at run time;
 * CELLAR_BLAKE3_ISA=portable|sse41|avx2|avx512 in the environment caps the
 * tier (for tests and benchmarks).
 * ====================================================================== */

#define CELLAR_BLAKE3_OUT_LEN 32
#define CELLAR_BLAKE3_KEY_LEN 32
#define CELLAR_BLAKE3_BLOCK_LEN 64
#define CELLAR_BLAKE3_CHUNK_LEN 1024
#define CELLAR_BLAKE3_MAX_DEPTH 54

/* Fields are private; the struct is public only so callers can allocate it.
 * It holds no pointers: copying it forks the hash state. */
typedef struct cellar_blake3 {
    uint32_t key[8];
    uint32_t cv[8];
    uint64_t chunk_counter;
    uint8_t buf[CELLAR_BLAKE3_BLOCK_LEN];
    uint8_t buf_len;
    uint8_t blocks_compressed;
    uint8_t flags;
    uint8_t cv_stack_len;
    uint8_t cv_stack[(CELLAR_BLAKE3_MAX_DEPTH + 1) * CELLAR_BLAKE3_OUT_LEN];
} cellar_blake3;

/* The plain hash. */
CELLAR_API void cellar_blake3_init(cellar_blake3 *h);
/* keyed_hash mode: a MAC or PRF under a 32-byte key. */
CELLAR_API void cellar_blake3_init_keyed(cellar_blake3 *h, const uint8_t key[CELLAR_BLAKE3_KEY_LEN]);
/* derive_key mode. context: a NUL-terminated, hard-coded, globally unique
 * string; the key material is then fed with update. */
CELLAR_API void cellar_blake3_init_derive_key(cellar_blake3 *h, const char *context);
/* Absorbs len bytes; any sizes in any number of calls give the same digest.
 * Large calls hash many chunks at once through the SIMD kernels. */
CELLAR_API void cellar_blake3_update(cellar_blake3 *h, const void *data, size_t len);
/* Any output length (the first 32 bytes are the digest); does not modify h,
 * so it may be called again or followed by more updates. */
CELLAR_API void cellar_blake3_finalize(const cellar_blake3 *h, uint8_t *out, size_t out_len);
/* Extended output starting at byte offset seek of the output stream. */
CELLAR_API void cellar_blake3_finalize_seek(const cellar_blake3 *h, uint64_t seek, uint8_t *out,
                                            size_t out_len);
/* The name of the kernel tier in use: "avx512", "avx2", "sse41" or
 * "portable". A static string. */
CELLAR_API const char *cellar_blake3_isa(void);
/* One-shot BLAKE3-256 of any buffer (a memory map, for instance) on up to
 * nthreads threads (0: all cores): subtrees of 2^k chunks are hashed on
 * threads started for the call and merged as the tree requires, so the
 * digest is the streaming hasher's for every length. Small buffers, or
 * threads that cannot be started, are hashed on the calling thread. */
CELLAR_API void cellar_blake3_hash_parallel(const void *data, size_t len, unsigned nthreads,
                                            uint8_t out[CELLAR_BLAKE3_OUT_LEN]);

/* ======================================================================
 * Digests and the ecosystem's identifiers (src/digest.c, src/ident.c)
 * ====================================================================== */

typedef enum cellar_algo {
    CELLAR_ALGO_BLAKE3 = 0,
    CELLAR_ALGO_SHA256 = 1,
    CELLAR_ALGO_SHA1 = 2,
    CELLAR_ALGO_MD5 = 3,
    CELLAR_ALGO_CRC32 = 4,
    CELLAR_ALGO_GITSHA1 = 5, /* git blob id: sha1("blob <size>\0" + content) */
    CELLAR_ALGO__COUNT
} cellar_algo;

#define CELLAR_ALGO_BIT(a) (1u << (a))
#define CELLAR_DIGEST_MAX 32

/* Digests of one byte stream. have: CELLAR_ALGO_BIT()s of the filled ones. */
typedef struct cellar_digests {
    uint32_t have;
    uint64_t size;
    uint8_t d[CELLAR_ALGO__COUNT][CELLAR_DIGEST_MAX];
} cellar_digests;

/* "blake3", "sha256", ... */
CELLAR_API const char *cellar_algo_name(cellar_algo a);
/* Digest length in bytes (crc32: 4). */
CELLAR_API size_t cellar_algo_len(cellar_algo a);
/* Parses a name ("sha256", "blake3", "git-sha1"...); CELLAR_EINVAL if unknown. */
CELLAR_API int cellar_algo_parse(cellar_algo *out, const char *name);
/* Lower-case hex of digest a into out (at least 2*CELLAR_DIGEST_MAX+1 bytes). */
CELLAR_API void cellar_digest_hex(char *out, const cellar_digests *d, cellar_algo a);

/* A streaming multi-digest: several algorithms over one pass of the bytes.
 * git-sha1 needs the total size up front (expected_size); pass
 * UINT64_MAX if it is not wanted. */
typedef struct cellar_hasher cellar_hasher;
CELLAR_API int cellar_hasher_new(cellar_hasher **out, uint32_t algos, uint64_t expected_size);
CELLAR_API void cellar_hasher_update(cellar_hasher *h, const void *data, size_t len);
/* CELLAR_EMISMATCH if git-sha1 was asked and the size differs from expected. */
CELLAR_API int cellar_hasher_final(cellar_hasher *h, cellar_digests *out);
CELLAR_API void cellar_hasher_free(cellar_hasher *h);

/* ---- digests section: owned by the hashing module; more below ---- */

/* ======================================================================
 * Formats: safetensors, sharded checkpoints, GGUF (src/safetensors.c ...)
 * ====================================================================== */

/* ---- formats section ---- */

/* ======================================================================
 * DDUF (src/dduf.c)
 * ====================================================================== */

/* ---- dduf section ---- */

/* ======================================================================
 * The store (src/store.c)
 * ====================================================================== */

/* ---- store section ---- */

/* ======================================================================
 * The Hub (src/hub.c)
 * ====================================================================== */

/* ---- hub section ---- */

#ifdef __cplusplus
}
#endif
#endif /* CELLAR_H */
