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
 * BLAKE3 (src/blake3*.c)
 *
 * An infallible init/update/finalize hasher on caller-allocated state, as in
 * the reference C implementation. SIMD kernels (SSE4.1, AVX2, AVX-512) are
 * chosen once at run time; CELLAR_BLAKE3_ISA=portable|sse41|avx2|avx512 in
 * the environment caps the tier (for tests and benchmarks).
 * ====================================================================== */

#define CELLAR_BLAKE3_OUT_LEN 32
#define CELLAR_BLAKE3_KEY_LEN 32
#define CELLAR_BLAKE3_BLOCK_LEN 64
#define CELLAR_BLAKE3_CHUNK_LEN 1024
#define CELLAR_BLAKE3_MAX_DEPTH 54

/* Fields are private; the struct is public only so callers can allocate it. */
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

CELLAR_API void cellar_blake3_init(cellar_blake3 *h);
CELLAR_API void cellar_blake3_init_keyed(cellar_blake3 *h, const uint8_t key[CELLAR_BLAKE3_KEY_LEN]);
/* context: a NUL-terminated, hard-coded, globally unique string. */
CELLAR_API void cellar_blake3_init_derive_key(cellar_blake3 *h, const char *context);
CELLAR_API void cellar_blake3_update(cellar_blake3 *h, const void *data, size_t len);
/* Any output length; does not modify h, so it may be called again. */
CELLAR_API void cellar_blake3_finalize(const cellar_blake3 *h, uint8_t *out, size_t out_len);
/* Extended output starting at byte offset seek. */
CELLAR_API void cellar_blake3_finalize_seek(const cellar_blake3 *h, uint64_t seek, uint8_t *out,
                                            size_t out_len);
/* The name of the kernel tier in use: "avx512", "avx2", "sse41" or "portable". */
CELLAR_API const char *cellar_blake3_isa(void);
/* One-shot BLAKE3-256 of a buffer on up to nthreads threads (0: all cores).
 * Same digest as the streaming hasher. */
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

/* ---- GGUF (src/gguf.c) ----
 * A bounded reader for GGUF v2/v3 headers (key/values and tensor infos),
 * validated as ggml does: unique non-empty keys, unique tensor names shorter
 * than 64 bytes, strings <= 1 GiB and <= the bytes left, arrays of at most
 * 2^30 items and never nested, known ggml types with ne[0] a multiple of the
 * block size, overflow-checked sizes, each offset equal to the running sum
 * of sizes padded to general.alignment (a u32 power of two, default 32),
 * data inside the file. Tensor data is never read. Strings handed out are
 * length-delimited (GGUF strings may hold any byte, NUL included) and live
 * as long as the handle. */
typedef struct cellar_gguf cellar_gguf;

/* Value types, numbered as in the file. */
typedef enum cellar_gguf_type {
    CELLAR_GGUF_U8 = 0,
    CELLAR_GGUF_I8 = 1,
    CELLAR_GGUF_U16 = 2,
    CELLAR_GGUF_I16 = 3,
    CELLAR_GGUF_U32 = 4,
    CELLAR_GGUF_I32 = 5,
    CELLAR_GGUF_F32 = 6,
    CELLAR_GGUF_BOOL = 7,
    CELLAR_GGUF_STRING = 8,
    CELLAR_GGUF_ARRAY = 9,
    CELLAR_GGUF_U64 = 10,
    CELLAR_GGUF_I64 = 11,
    CELLAR_GGUF_F64 = 12,
} cellar_gguf_type;

/* One key/value. Scalars: item_type == type, count 1. Arrays: type is
 * CELLAR_GGUF_ARRAY, item_type the items' type, count their number. */
typedef struct cellar_gguf_kv {
    const char *key; /* not NUL-terminated */
    size_t key_len;
    cellar_gguf_type type;
    cellar_gguf_type item_type;
    uint64_t count;
} cellar_gguf_kv;

/* One decoded value: u for u8..u64 and bool, i for i8..i64, f for f32/f64,
 * str/str_len for strings (pointing into the file's bytes). */
typedef struct cellar_gguf_value {
    cellar_gguf_type type;
    uint64_t u;
    int64_t i;
    double f;
    const char *str;
    size_t str_len;
} cellar_gguf_value;

/* One tensor info. dims[n_dims..3] are 1. offset is relative to the data
 * offset; size is the byte size (unpadded). */
typedef struct cellar_gguf_tensor {
    const char *name; /* not NUL-terminated */
    size_t name_len;
    uint32_t n_dims;
    uint64_t dims[4]; /* ne[0] (innermost) first */
    uint32_t type;    /* ggml type id */
    const char *type_name; /* "F16", "Q4_K"... */
    uint64_t offset;
    uint64_t elements;
    uint64_t size;
} cellar_gguf_tensor;

/* Opens and validates a GGUF file (mapped; only header pages are read).
 * CELLAR_EFORMAT naming the file and the rule; CELLAR_ENOTFOUND, CELLAR_EIO. */
CELLAR_API int cellar_gguf_open(cellar_gguf **out, const char *path);
/* Same over a caller's buffer, which must outlive the handle; label names
 * it in messages (NULL: "<buffer>"). */
CELLAR_API int cellar_gguf_open_buffer(cellar_gguf **out, const void *data, size_t len,
                                       const char *label);
CELLAR_API void cellar_gguf_free(cellar_gguf *g);
CELLAR_API uint32_t cellar_gguf_version(const cellar_gguf *g);
CELLAR_API uint32_t cellar_gguf_alignment(const cellar_gguf *g);
/* Where tensor data starts in the file (header end padded to the alignment). */
CELLAR_API uint64_t cellar_gguf_data_offset(const cellar_gguf *g);
/* Bytes of the data section: the sum of every tensor's padded size. */
CELLAR_API uint64_t cellar_gguf_data_size(const cellar_gguf *g);
CELLAR_API size_t cellar_gguf_kv_count(const cellar_gguf *g);
/* Key/value i in file order; NULL past the end. */
CELLAR_API const cellar_gguf_kv *cellar_gguf_kv_at(const cellar_gguf *g, size_t i);
/* The index of key; CELLAR_ENOTFOUND if absent. */
CELLAR_API int cellar_gguf_find(size_t *out, const cellar_gguf *g, const char *key);
/* Value of key/value i (item 0 for scalars, item n of an array);
 * CELLAR_EINVAL if out of range. */
CELLAR_API int cellar_gguf_kv_value(cellar_gguf_value *out, const cellar_gguf *g, size_t i,
                                    uint64_t item);
CELLAR_API size_t cellar_gguf_tensor_count(const cellar_gguf *g);
/* Tensor info i in file order; NULL past the end. */
CELLAR_API const cellar_gguf_tensor *cellar_gguf_tensor_at(const cellar_gguf *g, size_t i);
/* "u32", "string", "array"... */
CELLAR_API const char *cellar_gguf_type_name(cellar_gguf_type t);
/* "F32", "Q4_K"... or "unknown". */
CELLAR_API const char *cellar_ggml_type_name(uint32_t type);
/* ---- end of GGUF ---- */

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
