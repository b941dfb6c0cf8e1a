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

/* Digests of one byte stream. have: CELLAR_ALGO_BIT()s of the filled ones;
 * cached: those of them that came from the hash cache, not from the bytes. */
typedef struct cellar_digests {
    uint32_t have;
    uint64_t size;
    uint8_t d[CELLAR_ALGO__COUNT][CELLAR_DIGEST_MAX];
    uint32_t cached;
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

/* Every algorithm cellar computes, as CELLAR_ALGO_BIT()s. */
#define CELLAR_ALGO_ALL ((1u << CELLAR_ALGO__COUNT) - 1)

/* Hashing files (src/digest.c). */
enum {
    /* Hash from a memory map of the file instead of reading it into small
     * per-thread buffers (the default, measured faster on page-cached
     * files). A file truncated while mapped raises SIGBUS. */
    CELLAR_HASH_MMAP = 1u << 0,
    CELLAR_HASH_NO_CACHE = 1u << 1, /* neither consult nor fill the hash cache */
};

typedef struct cellar_hash_opts {
    uint32_t algos;    /* CELLAR_ALGO_BIT()s; 0 means blake3 */
    uint32_t flags;    /* CELLAR_HASH_* */
    unsigned nthreads; /* threads for one file or for a list of files; 0: all cores */
} cellar_hash_opts;

/* Digests of the file at path (symlinks followed). An unchanged file
 * (same device, inode, size, mtime, ctime) is answered from the hash cache
 * in $CELLAR_HOME/cellar.db with one stat; out->cached says which digests
 * were. opts may be NULL (blake3, cache on, all cores). FIFOs are read as
 * streams (git-sha1 then fails with CELLAR_EUNSUPPORTED: it needs the size).
 * Errors: CELLAR_ENOTFOUND, CELLAR_EIO (permission...), CELLAR_EUNSUPPORTED
 * (a directory, device or socket), CELLAR_ECHANGED (size, mtime or ctime
 * moved while it was read; nothing is cached). */
CELLAR_API int cellar_hash_path(cellar_digests *out, const char *path,
                                const cellar_hash_opts *opts);
/* Same for an open descriptor (not closed; read from its current offset if
 * it is not a regular file, from 0 if it is). name labels error messages.
 * Never uses the cache. */
CELLAR_API int cellar_hash_fd(cellar_digests *out, int fd, const char *name,
                              const cellar_hash_opts *opts);

/* Called once per path, in the order given, on the calling thread. rc is
 * that file's result; message its error text ("" when rc is 0). */
typedef void (*cellar_hash_each_fn)(void *ctx, size_t index, int rc, const cellar_digests *d,
                                    const char *message);
/* Hashes n paths on opts->nthreads threads (several files at once), calling
 * each() in order as results become available. Returns 0, or a negative
 * code if it could not go on (CELLAR_ENOMEM; each() then has seen a prefix
 * of the paths); per-file failures go to each(). */
CELLAR_API int cellar_hash_paths(const char *const *paths, size_t n, const cellar_hash_opts *opts,
                                 cellar_hash_each_fn each, void *ctx);

/* The ecosystem's identifiers of one file (src/ident.c), from one read
 * pass. Strings are NUL-terminated; an empty string means "not defined for
 * this file" (AutoV1 under 2 MiB, AutoV3 for a non-safetensors file). */
typedef struct cellar_ident {
    uint64_t size;
    /* CivitAI's six, upper-case hex as CivitAI shows them. */
    char sha256[65];
    char autov1[9];     /* sha256(file[0x100000:0x110000])[:8]; files >= 2 MiB */
    char autov2[11];    /* SHA256[:10] */
    char autov3[65];    /* sha256(file[8+N:]), safetensors only */
    char blake3[65];
    char crc32[9];      /* CivitAI's byte order: little-endian bytes of the CRC */
    /* Other tools' forms, lower-case. */
    char crc32_zlib[9]; /* zlib's "%08X" (upper-case, big-endian) */
    char a1111_model_hash[9];   /* AUTOMATIC1111's old hash: AutoV1 without minimum */
    char a1111_shorthash[11];   /* AutoV2, lower-case */
    char sshs_model_hash[65];   /* kohya: AutoV3 lower-case (also A1111's addnet hash) */
    char lora_shorthash[13];    /* its first 12 characters */
    char modelspec_hash[67];    /* "0x" + AutoV3 lower-case (modelspec.hash_sha256) */
} cellar_ident;

/* Computes every field of out for the file at path in one pass (several
 * threads). opts: only flags and nthreads are used (may be NULL). Errors as
 * cellar_hash_path(). */
CELLAR_API int cellar_ident_file(cellar_ident *out, const char *path,
                                 const cellar_hash_opts *opts);

/* InvokeAI's model hash of a file or a folder, "<algo>:<hex>" (blake3:,
 * sha256:, md5: ...), into *out (caller frees). A folder: model files
 * (.ckpt .safetensors .bin .pt .pth, case-sensitive) found without entering
 * symlinked folders, sorted component by component, each hashed with algo
 * to hex, the hex concatenated, and that BLAKE3-hashed. opts: flags and
 * nthreads. Errors: as cellar_hash_path(); CELLAR_EINVAL for crc32/git-sha1. */
CELLAR_API int cellar_invokeai_hash(char **out, const char *path, cellar_algo algo,
                                    const cellar_hash_opts *opts);

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
