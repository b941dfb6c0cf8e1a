/*
 * cellar: one copy of every model weight file on a machine.
 *
 * This is libcellar's only public header. Conventions, as in libgit2:
 *  - functions return int: 0 on success, a negative CELLAR_E* code on
 *    failure; the message behind cellar_error_last() then names the file and
 *    the rule that was broken;
 *  - outputs come first (what a call fills, then the object it works on,
 *    then its inputs; the BLAKE3 functions keep the reference API's order);
 *    objects are opaque handles freed with a NULL-safe *_free();
 *  - lookups by key are cellar_<object>_find(out, object, key): 0 and *out
 *    set when found, CELLAR_ENOTFOUND (with a message naming the key and
 *    where it was looked for) when not; positional accessors (*_at, *_get)
 *    return a pointer or NULL;
 *  - strings handed in are borrowed for the call; strings handed out live as
 *    long as the object they came from, unless the comment says otherwise;
 *  - the library never prints, never exits and never aborts on bad input,
 *    and never reads the environment except in the cellar_*_from_env()
 *    helpers a program calls when it wants to;
 *  - memory handed to the caller is freed with cellar_free() or the
 *    object's own *_free();
 *  - options structs start with a version: initialise them with their
 *    CELLAR_*_OPTS_INIT; a NULL options pointer means the defaults; a
 *    struct of an earlier version (fields only ever appended) is still taken;
 *  - thread safety: every type says. "Plain data" (and every enum) means no
 *    hidden state: copy it and use each copy from any thread. Error
 *    messages are per thread.
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
    CELLAR_EUSER = -15,       /* a caller's callback returned non-zero: stopped */
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

/* Frees memory the library handed out and documented as the caller's
 * (strings, arrays). NULL-safe. */
CELLAR_API void cellar_free(void *p);

/* Callbacks. Every callback returns int, and takes its context pointer
 * last: 0 goes on; any other value stops the operation, which then
 * returns CELLAR_EUSER ("stopped by the caller") after cleaning up as on
 * any error (nothing half-written is left visible). This is how a binding
 * turns Ctrl-C into a clean stop. Callbacks run on the thread that called
 * the operation and must not call back into the same object. */

/* Progress of a long operation (dedup, import-hf, gc, pull...). A total of
 * 0 is not known (yet). path: the file being worked on, or NULL; valid for
 * the call only. Plain data, no thread-safety concerns of its own. */
typedef struct cellar_progress {
    uint64_t bytes_done, bytes_total;
    uint64_t files_done, files_total;
    const char *path;
} cellar_progress; /* plain data */
/* Called now and then (at most about ten times a second, and once at the
 * end of each phase) on the calling thread. */
typedef int (*cellar_progress_fn)(const cellar_progress *p, void *ctx);

/* The version this header belongs to. Before 1.0 every minor release may
 * change the ABI (the SONAME is libcellar.so.0.<minor>). */
#define CELLAR_VERSION_MAJOR 0
#define CELLAR_VERSION_MINOR 2
#define CELLAR_VERSION_PATCH 0
#define CELLAR_VERSION_NUMBER                                                                     \
    (CELLAR_VERSION_MAJOR * 10000 + CELLAR_VERSION_MINOR * 100 + CELLAR_VERSION_PATCH)

/* The library's version at run time: "0.1.0". */
CELLAR_API const char *cellar_version(void);
/* The same as a number, MAJOR * 10000 + MINOR * 100 + PATCH, to compare
 * with CELLAR_VERSION_NUMBER (the header compiled against). */
CELLAR_API unsigned cellar_version_number(void);

/* ======================================================================
 * BLAKE3 (src/blake3*.c, docs/blake3.md)
 *
 * An infallible init/update/finalize hasher on caller-allocated state, as in
 * the reference C implementation: no allocation, no errors. SIMD kernels
 * (SSE4.1, AVX2, AVX-512) are chosen once at run time, the widest the
 * CPU has; cellar_blake3_set_isa() caps the tier (for tests and
 * benchmarks).
 * ====================================================================== */

#define CELLAR_BLAKE3_OUT_LEN 32
#define CELLAR_BLAKE3_KEY_LEN 32
#define CELLAR_BLAKE3_BLOCK_LEN 64
#define CELLAR_BLAKE3_CHUNK_LEN 1024
#define CELLAR_BLAKE3_MAX_DEPTH 54

/* Fields are private; the struct is public only so callers can allocate it.
 * It holds no pointers: copying it forks the hash state. One thread at a
 * time per state; the functions below keep no other state. */
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
} cellar_blake3; /* one hashing state: one thread at a time (a copy is an independent state) */

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
/* Caps the kernel tier for the whole process: "portable", "sse41", "avx2"
 * or "avx512" (a tier the CPU lacks, or that is not built, falls to the
 * next one down); NULL or "" removes the cap. CELLAR_EINVAL for another
 * name (the cap is then unchanged). Process-wide state: call it before
 * hashing starts; a hash running meanwhile may use either kernel (both
 * give the same digests). */
CELLAR_API int cellar_blake3_set_isa(const char *name);
/* cellar_blake3_set_isa($CELLAR_BLAKE3_ISA) if that is set, else nothing.
 * An unknown value: CELLAR_EINVAL, no cap. Not thread-safe against setenv(). */
CELLAR_API int cellar_blake3_isa_from_env(void);
/* One-shot BLAKE3-256 of any buffer (a memory map, for instance) on up to
 * nthreads threads (0: all cores): subtrees of 2^k chunks are hashed on
 * threads started for the call and merged as the tree requires, so the
 * digest is the streaming hasher's for every length. Small buffers, or
 * threads that cannot be started, are hashed on the calling thread. */
CELLAR_API void cellar_blake3_hash_parallel(const void *data, size_t len, unsigned nthreads,
                                            uint8_t out[CELLAR_BLAKE3_OUT_LEN]);

/* ======================================================================
 * Digests and the ecosystem's identifiers (src/hash/digest.c, src/hash/ident.c)
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

/* Room for this many algorithms: sizeof(cellar_digests) stays the same as
 * algorithms are added. */
#define CELLAR_DIGEST_SLOTS 16

/* Digests of one byte stream. have: CELLAR_ALGO_BIT()s of the filled ones;
 * cached: those of them that came from the hash cache, not from the bytes.
 * Read a digest with cellar_digest_get() (or cellar_digest_hex()); d is
 * the library's storage, its layout not part of the API. Plain data:
 * copy it freely; no thread-safety concerns of its own. */
typedef struct cellar_digests {
    uint32_t have;
    uint32_t cached;
    uint64_t size;
    uint8_t d[CELLAR_DIGEST_SLOTS][CELLAR_DIGEST_MAX];
} cellar_digests; /* plain data */

/* "blake3", "sha256", ... */
CELLAR_API const char *cellar_algo_name(cellar_algo a);
/* Digest length in bytes (crc32: 4). */
CELLAR_API size_t cellar_algo_len(cellar_algo a);
/* Parses a name ("sha256", "blake3", "git-sha1"...); CELLAR_EINVAL if unknown. */
CELLAR_API int cellar_algo_parse(cellar_algo *out, const char *name);
/* Digest a of d (cellar_algo_len(a) bytes, inside d), or NULL if d does
 * not have it. */
CELLAR_API const uint8_t *cellar_digest_get(const cellar_digests *d, cellar_algo a);
/* Lower-case hex of digest a into out (at least 2*CELLAR_DIGEST_MAX+1 bytes). */
CELLAR_API void cellar_digest_hex(char *out, const cellar_digests *d, cellar_algo a);

/* Parses a digest as people and tools write it: "algo:hex" (any name
 * cellar_algo_parse() takes: "sha256:", "blake3:", "git-sha1:", "git:"...)
 * or bare hex, either case, into out (*len bytes). *algos gets the
 * CELLAR_ALGO_BIT()s it may be: the named one, or for bare hex those of
 * bare whose length fits (64 digits fit sha256 and blake3: the caller
 * decides, or tries both). CELLAR_EINVAL, naming the string and the rule,
 * when it is neither, when a named algorithm's length differs, or when
 * no algorithm of bare fits. Thread-safe. */
CELLAR_API int cellar_digest_parse(uint32_t *algos, uint8_t out[CELLAR_DIGEST_MAX], size_t *len,
                                   const char *s, uint32_t bare);

/* A streaming multi-digest: several algorithms over one pass of the bytes.
 * git-sha1 needs the total size up front (expected_size); pass
 * UINT64_MAX if it is not wanted. */
/* Thread safety: one thread at a time per hasher; separate hashers are
 * independent. */
typedef struct cellar_hasher cellar_hasher;
CELLAR_API int cellar_hasher_new(cellar_hasher **out, uint32_t algos, uint64_t expected_size);
CELLAR_API void cellar_hasher_update(cellar_hasher *h, const void *data, size_t len);
/* CELLAR_EMISMATCH if git-sha1 was asked and the size differs from expected. */
CELLAR_API int cellar_hasher_final(cellar_digests *out, cellar_hasher *h);
CELLAR_API void cellar_hasher_free(cellar_hasher *h);

/* ---- digests section: owned by the hashing module; more below ---- */

/* Every algorithm cellar computes, as CELLAR_ALGO_BIT()s. */
#define CELLAR_ALGO_ALL ((1u << CELLAR_ALGO__COUNT) - 1)

/* Hashing files (src/hash/digest.c). */
enum {
    /* Hash from a memory map of the file instead of reading it into small
     * per-thread buffers (the default, measured faster on page-cached
     * files). A file truncated while mapped raises SIGBUS. */
    CELLAR_HASH_MMAP = 1u << 0,
    CELLAR_HASH_NO_CACHE = 1u << 1, /* neither consult nor fill opts->cache */
};

/* The hash cache: digests of unchanged files, so a file is read once.
 * Hashing never owns a cache: the caller passes one in cellar_hash_opts
 * (a store's, from cellar_store_hash_cache(), or its own), and hashing
 * talks to it through these two functions only. A file is unchanged while
 * its cellar_file_id is: device, inode, size, and modification and change
 * times in nanoseconds. */
typedef struct cellar_file_id {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
} cellar_file_id; /* plain data */

/* One cached digest: of file, under label ("sha256", "blake3", or a derived
 * value such as "autov3"). len 0 records "not defined for this file". */
typedef struct cellar_hash_cache_entry {
    cellar_file_id file;
    const char *label;
    int len; /* lookup: set to the digest's length, -1 when none is cached */
    uint8_t digest[CELLAR_DIGEST_MAX];
} cellar_hash_cache_entry; /* plain data */

#define CELLAR_HASH_CACHE_VERSION 1

/* A cache implementation. lookup fills len and digest of each of n
 * entries (len -1: not cached for exactly that file id); record stores n
 * entries, replacing what the same (dev, ino, label) held. Both return 0
 * or a negative code; hashing treats any failure as "not cached" and goes
 * on, so a broken cache costs time, never a result. Both are called from
 * the thread that called the hashing function, never from its workers, so
 * an implementation needs no locking of its own unless the caller shares
 * it between threads hashing at once. */
typedef struct cellar_hash_cache {
    unsigned int version; /* CELLAR_HASH_CACHE_VERSION */
    int (*lookup)(cellar_hash_cache_entry *entries, size_t n, void *ctx);
    int (*record)(const cellar_hash_cache_entry *entries, size_t n, void *ctx);
    void *ctx;
} cellar_hash_cache; /* a function table: its implementation says which threads may
                        call it (the store's: as the store itself) */

/* Hashing options. Initialise with CELLAR_HASH_OPTS_INIT, then set fields;
 * a NULL pointer means the defaults (blake3, no cache, all cores). A
 * version this library does not know fails with CELLAR_EINVAL. */
typedef struct cellar_hash_opts {
    unsigned int version; /* CELLAR_HASH_OPTS_VERSION */
    uint32_t algos;       /* CELLAR_ALGO_BIT()s; 0 means blake3 */
    uint32_t flags;       /* CELLAR_HASH_* */
    unsigned nthreads;    /* threads for one file or for a list of files; 0: all cores */
    const cellar_hash_cache *cache; /* borrowed for the call; NULL: no cache */
    /* May be NULL. On the calling thread: one file's bytes read (path and
     * bytes_total set; 0 for a stream), or for cellar_hash_paths() and a
     * folder, the files done of files_total while one is long in coming.
     * Non-zero stops the hashing: CELLAR_EUSER, nothing cached. */
    cellar_progress_fn progress;
    void *progress_ctx;
} cellar_hash_opts; /* plain data */
#define CELLAR_HASH_OPTS_VERSION 2
#define CELLAR_HASH_OPTS_INIT {CELLAR_HASH_OPTS_VERSION, 0, 0, 0, NULL, NULL, NULL}

/* Digests of the file at path (symlinks followed). With opts->cache, an
 * unchanged file (same cellar_file_id) is answered from the cache with one
 * stat; out->cached says which digests were. opts may be NULL. FIFOs are
 * read as streams (git-sha1 then fails with CELLAR_EUNSUPPORTED: it needs
 * the size). Errors: CELLAR_ENOTFOUND, CELLAR_EIO (permission...),
 * CELLAR_EUNSUPPORTED (a directory, device or socket), CELLAR_ECHANGED
 * (size, mtime or ctime moved while it was read; nothing is cached),
 * CELLAR_EINVAL (an unknown opts->version). */
CELLAR_API int cellar_hash_path(cellar_digests *out, const char *path,
                                const cellar_hash_opts *opts);
/* Same for an open descriptor (not closed; read from its current offset if
 * it is not a regular file, from 0 if it is). name labels error messages.
 * Never uses the cache. */
CELLAR_API int cellar_hash_fd(cellar_digests *out, int fd, const char *name,
                              const cellar_hash_opts *opts);

/* Called once per path, in the order given, on the calling thread. rc is
 * that file's result; message its error text ("" when rc is 0). Non-zero
 * stops the run (CELLAR_EUSER). */
typedef int (*cellar_hash_each_fn)(size_t index, int rc, const cellar_digests *d,
                                   const char *message, void *ctx);
/* Hashes n paths on opts->nthreads threads (several files at once), calling
 * each() in order as results become available. Returns 0, or a negative
 * code if it could not go on (CELLAR_ENOMEM; CELLAR_EUSER when each() or
 * opts->progress stopped it: files being hashed stop too, and each() has
 * seen a prefix of the paths); per-file failures go to each(). */
CELLAR_API int cellar_hash_paths(const char *const *paths, size_t n, const cellar_hash_opts *opts,
                                 cellar_hash_each_fn each, void *ctx);

/* The ecosystem's identifiers of one file (src/hash/ident.c), from one read
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
} cellar_ident; /* plain data */

/* Computes every field of out for the file at path in one pass (several
 * threads). opts: only flags and nthreads are used (may be NULL). Errors as
 * cellar_hash_path(). */
CELLAR_API int cellar_ident_file(cellar_ident *out, const char *path,
                                 const cellar_hash_opts *opts);

/* InvokeAI's model hash of a file or a folder, "<algo>:<hex>" (blake3:,
 * sha256:, md5: ...), into *out (free with cellar_free). A folder: model files
 * (.ckpt .safetensors .bin .pt .pth, case-sensitive) found without entering
 * symlinked folders, sorted component by component, each hashed with algo
 * to hex, the hex concatenated, and that BLAKE3-hashed. opts: flags and
 * nthreads. Errors: as cellar_hash_path(); CELLAR_EINVAL for crc32/git-sha1. */
CELLAR_API int cellar_invokeai_hash(char **out, const char *path, cellar_algo algo,
                                    const cellar_hash_opts *opts);

/* ======================================================================
 * Formats: safetensors, sharded checkpoints, GGUF (src/format/safetensors.c ...)
 * ====================================================================== */

/* ---- formats section ---- */

/* safetensors (src/format/safetensors.c).
 * Layout: [u64 LE N][N bytes of JSON header][data buffer]. The reader
 * applies FORMATS.md's reader rules 1-14 in order and accepts exactly what
 * huggingface/safetensors accepts; errors (CELLAR_EFORMAT) name the file,
 * the tensor and the rule ("header too small", "header too large",
 * "invalid header length", "invalid header", "invalid header
 * deserialization: trailing characters ...", "invalid offset for tensor
 * 'x'", "incomplete metadata, file not fully covered"...). Only the header
 * is read at open; tensor data is reached through an mmap made on the first
 * cellar_st_data() call. Data is never assumed aligned. */

/* Element types. The values are part of the ABI: explicit, only ever
 * appended to, never renumbered (a dtype the reference adds gets the next
 * free value wherever it sorts; the writer orders by a private rank
 * table, not by these values). */
typedef enum cellar_dtype {
    CELLAR_DTYPE_BOOL = 0,
    CELLAR_DTYPE_F4 = 1,
    CELLAR_DTYPE_F6_E2M3 = 2,
    CELLAR_DTYPE_F6_E3M2 = 3,
    CELLAR_DTYPE_U8 = 4,
    CELLAR_DTYPE_I8 = 5,
    CELLAR_DTYPE_F8_E5M2 = 6,
    CELLAR_DTYPE_F8_E4M3 = 7,
    CELLAR_DTYPE_F8_E8M0 = 8,
    CELLAR_DTYPE_F8_E4M3FNUZ = 9,
    CELLAR_DTYPE_F8_E5M2FNUZ = 10,
    CELLAR_DTYPE_I16 = 11,
    CELLAR_DTYPE_U16 = 12,
    CELLAR_DTYPE_F16 = 13,
    CELLAR_DTYPE_BF16 = 14,
    CELLAR_DTYPE_I32 = 15,
    CELLAR_DTYPE_U32 = 16,
    CELLAR_DTYPE_F32 = 17,
    CELLAR_DTYPE_C64 = 18,
    CELLAR_DTYPE_F64 = 19,
    CELLAR_DTYPE_I64 = 20,
    CELLAR_DTYPE_U64 = 21,
    CELLAR_DTYPE__COUNT /* grows: not part of the ABI */
} cellar_dtype;

/* "BF16"..., or "?" for a value out of range. */
CELLAR_API const char *cellar_dtype_name(cellar_dtype d);
/* Bits per element (F4: 4, F6_*: 6, BOOL: 8...); 0 if out of range. */
CELLAR_API unsigned cellar_dtype_bits(cellar_dtype d);
/* Case-sensitive name (len bytes) to dtype; CELLAR_EINVAL if unknown. */
CELLAR_API int cellar_dtype_parse(cellar_dtype *out, const char *name, size_t len);

/* Largest header the reader accepts (the reference's limit). */
#define CELLAR_ST_MAX_HEADER 100000000u

/* Thread safety: after open a cellar_st is only read: its functions may be
 * called from several threads at once (cellar_st_data() included). */
typedef struct cellar_st cellar_st;

/* One tensor. Strings and shape live as long as the cellar_st. name is
 * length-delimited (it may contain NUL); a NUL follows it for convenience. */
typedef struct cellar_st_tensor {
    const char *name;
    size_t name_len;
    cellar_dtype dtype;
    const char *dtype_name;
    size_t rank;            /* 0: a scalar holding one element */
    const uint64_t *shape;  /* rank entries */
    uint64_t nelem;         /* product of shape (checked) */
    uint64_t begin, end;    /* data_offsets: [begin, end) within the data buffer */
    uint64_t offset;        /* absolute position of the first byte in the file */
} cellar_st_tensor; /* plain data */

/* Opens and validates the file at path (header read with pread; the fd is
 * kept for the mapping). Errors: CELLAR_ENOTFOUND, CELLAR_EIO,
 * CELLAR_EFORMAT (a broken rule), CELLAR_ENOMEM. */
CELLAR_API int cellar_st_open(cellar_st **out, const char *path);
/* Same on an open descriptor (read from offset 0; duplicated, so the caller
 * keeps and closes its own). label names the file in messages. */
CELLAR_API int cellar_st_open_fd(cellar_st **out, int fd, const char *label);
/* Same on len bytes in memory, used in place: no copy, data must outlive the
 * handle (DDUF validates embedded files this way). label names it. */
CELLAR_API int cellar_st_open_buffer(cellar_st **out, const void *data, size_t len,
                                     const char *label);
CELLAR_API void cellar_st_free(cellar_st *st);

/* Tensors in file order (sorted by data_offsets), duplicates resolved
 * (last wins). */
CELLAR_API size_t cellar_st_count(const cellar_st *st);
/* Tensor i (< count), or NULL. */
CELLAR_API const cellar_st_tensor *cellar_st_tensor_at(const cellar_st *st, size_t i);
/* Index of the tensor named name (name_len bytes), or CELLAR_ENOTFOUND. */
CELLAR_API int cellar_st_find(size_t *index, const cellar_st *st, const char *name,
                              size_t name_len);
/* A pointer to tensor i's bytes (end - begin of them), mapping the file on
 * first use (safe from several threads). The mapping lives as long as st;
 * a file truncated behind cellar's back faults on access (SIGBUS), as with
 * any mapping. Errors: CELLAR_EINVAL (bad i), CELLAR_EIO (mmap failed). */
CELLAR_API int cellar_st_data(const void **out, cellar_st *st, size_t i);

/* __metadata__ entries (duplicate keys: last wins; kept in order of first
 * appearance). key/value are length-delimited and NUL-followed. */
CELLAR_API size_t cellar_st_metadata_count(const cellar_st *st);
CELLAR_API int cellar_st_metadata_at(const char **key, size_t *key_len, const char **value,
                                     size_t *value_len, const cellar_st *st, size_t i);
/* The value for a NUL-terminated key into *value; CELLAR_ENOTFOUND (*value
 * NULL) when the header's __metadata__ has no such key. */
CELLAR_API int cellar_st_metadata_find(const char **value, const cellar_st *st, const char *key);

/* N, the header length (padding included). */
CELLAR_API uint64_t cellar_st_header_len(const cellar_st *st);
/* 8 + N: where the data buffer starts. */
CELLAR_API uint64_t cellar_st_data_start(const cellar_st *st);
/* The whole file's size (8 + N + data). */
CELLAR_API uint64_t cellar_st_file_size(const cellar_st *st);
/* The label or path it was opened with. */
CELLAR_API const char *cellar_st_label(const cellar_st *st);

/* The writer: collects tensors, then writes a canonical file (FORMATS.md
 * writer rules: tensors by dtype descending then name bytes, packed with no
 * gaps; compact header with __metadata__ first holding "format":"pt" unless
 * the caller set "format"; header padded with spaces to a multiple of 8;
 * temp file + rename). Tensor bytes are borrowed until the write. */
/* Thread safety: one thread at a time per writer. */
typedef struct cellar_st_writer cellar_st_writer;
CELLAR_API int cellar_st_writer_new(cellar_st_writer **out);
CELLAR_API void cellar_st_writer_free(cellar_st_writer *w);
/* Adds a tensor of nbytes at data. CELLAR_EINVAL: name "__metadata__" or
 * not valid UTF-8, an unknown dtype, or nbytes not matching dtype x shape
 * (CELLAR_ERANGE on overflow). Duplicate names are reported by
 * cellar_st_writer_write(). */
CELLAR_API int cellar_st_writer_add(cellar_st_writer *w, const char *name, size_t name_len,
                                    cellar_dtype dtype, size_t rank, const uint64_t *shape,
                                    const void *data, uint64_t nbytes);
/* Adds tensor i of an open file; its bytes are copied at write time
 * (copy_file_range when src was opened from a path or fd). src must outlive
 * the write. */
CELLAR_API int cellar_st_writer_add_from(cellar_st_writer *w, cellar_st *src, size_t i);
/* Sets a metadata key (NUL-terminated UTF-8 strings, CELLAR_EINVAL
 * otherwise; a later set replaces). */
CELLAR_API int cellar_st_writer_set_metadata(cellar_st_writer *w, const char *key,
                                             const char *value);
/* Reports the write's progress (bytes of tensor data written, of
 * cellar_st_writer_data_size()) to fn, which may stop it: CELLAR_EUSER,
 * nothing written. fn NULL: none. */
CELLAR_API void cellar_st_writer_set_progress(cellar_st_writer *w, cellar_progress_fn fn,
                                              void *ctx);
/* Sum of the tensors' byte sizes so far. */
CELLAR_API uint64_t cellar_st_writer_data_size(const cellar_st_writer *w);
/* Writes the file atomically (replacing path). Errors: CELLAR_EINVAL (two
 * tensors with one name), CELLAR_EIO, CELLAR_ENOMEM, CELLAR_ERANGE (header
 * over the limit). */
CELLAR_API int cellar_st_writer_write(cellar_st_writer *w, const char *path);

/* Sharded checkpoints (src/format/shard.c), as huggingface_hub writes them.
 * A shard set is one merged view of the tensors of several files. */
/* Thread safety: read-only after open, like cellar_st: any number of
 * threads at once. */
typedef struct cellar_shards cellar_shards;

/* Opens path: a model.safetensors.index.json (or any *.index.json), a
 * directory (its *.safetensors.index.json if there is exactly one, else its
 * only *.safetensors file), or a single .safetensors file. With an index,
 * every shard named in weight_map is opened and checked: paths must stay in
 * the directory (no root, drive, "..", other extension) and each tensor
 * must be in the shard the index names. Errors: CELLAR_EFORMAT,
 * CELLAR_ENOTFOUND, CELLAR_EIO, CELLAR_ENOMEM. */
CELLAR_API int cellar_shards_open(cellar_shards **out, const char *path);
CELLAR_API void cellar_shards_free(cellar_shards *s);
/* Number of files and file i (its path and its open handle). */
CELLAR_API size_t cellar_shards_nfiles(const cellar_shards *s);
CELLAR_API const char *cellar_shards_path(const cellar_shards *s, size_t i);
CELLAR_API cellar_st *cellar_shards_file(const cellar_shards *s, size_t i);
/* The merged tensors, sorted by name bytes (a later file's duplicate
 * replaces an earlier one). *file (may be NULL) gets the file index. */
CELLAR_API size_t cellar_shards_count(const cellar_shards *s);
CELLAR_API const cellar_st_tensor *cellar_shards_tensor(const cellar_shards *s, size_t i,
                                                        size_t *file);
/* Sum of the files' sizes on disk. */
CELLAR_API uint64_t cellar_shards_size(const cellar_shards *s);
/* True if it was opened through an index. */
CELLAR_API int cellar_shards_indexed(const cellar_shards *s);

/* huggingface_hub's parse_size_to_int: last two characters (any case) one
 * of KB MB GB TB (decimal), the rest a float, truncated; a plain integer is
 * bytes. "5GiB" fails. CELLAR_EINVAL if malformed. */
CELLAR_API int cellar_shard_size_parse(uint64_t *out, const char *s);
#define CELLAR_SHARD_DEFAULT_SIZE 5000000000ull

/* Splits the file (or shard set) at src into outdir exactly as
 * huggingface_hub's split_state_dict_into_shards (tensors by name, greedy,
 * an oversized tensor alone, strict '>'): model.safetensors if one shard,
 * else model-0000i-of-0000N.safetensors plus model.safetensors.index.json
 * (2-space indented, metadata.total_size). Every shard carries the
 * source's __metadata__. Files of an earlier split in outdir that the new
 * one does not replace are removed, as huggingface_hub does. *nshards (may
 * be NULL) gets the count. outdir is created. progress (may be NULL)
 * hears bytes of all shards and shards written, and may stop the split
 * (CELLAR_EUSER; shards already written stay). Errors: as open and write. */
CELLAR_API int cellar_shard_split(size_t *nshards, const char *src, const char *outdir,
                                  uint64_t max_size, cellar_progress_fn progress, void *ctx);
/* Merges the shard set at src (directory or index) into one file at dst
 * (canonical writer, shards' metadata merged, first value kept). progress
 * (may be NULL) hears the bytes written and may stop it (CELLAR_EUSER,
 * nothing written). */
CELLAR_API int cellar_shard_merge(const char *src, const char *dst, cellar_progress_fn progress,
                                  void *ctx);

/* Structural hash (src/format/structural.c): DiffSynth-Studio's hash_model_file,
 * md5 over the sorted "name:d0_d1", "name" entries joined by ','. out gets
 * 32 lower-case hex digits and a NUL. */
CELLAR_API int cellar_structural_hash_st(char out[33], cellar_st *const *files, size_t nfiles);
/* For a file, a shard set or an index (same value as the merged file); for a
 * PyTorch checkpoint (by content), cellar_pt_hash's diffsynth value, or its
 * state_dict value when DiffSynth would fail on the file. */
CELLAR_API int cellar_structural_hash(char out[33], const char *path);

/* A model folder's weight components: a diffusers folder (model_index.json
 * or sub-folders holding safetensors) gives one per sub-folder with
 * weights, sorted by name; where a sub-folder holds variants side by side
 * (x.safetensors and x.fp16.safetensors, or their indexes) the one without
 * a variant is the component, as diffusers loads it. A sub-folder without
 * safetensors whose weights are pytorch_model.bin or
 * diffusion_pytorch_model.bin (diffusers' fallback) has that file as its
 * path; so has a plain folder holding only such a file. Any other path
 * gives one component named "" for the path itself. */
typedef struct cellar_component {
    char *name; /* "transformer", "vae"... or "" */
    char *path; /* what cellar_shards_open() takes */
} cellar_component; /* plain data */
CELLAR_API int cellar_components(cellar_component **out, size_t *count, const char *path);
CELLAR_API void cellar_components_free(cellar_component *c, size_t count);

/* Known structural hashes (src/format/registry.c): the table compiled from
 * data/registry.tsv at build time (every hash DiffSynth-Studio 1.x and 2.x
 * publishes, with family, component, layout, DiffSynth's model name and
 * class, and where the row comes from), plus, when path is not NULL, the
 * rows of that extra TSV file (hash, family, component, description; or
 * the 8 columns of data/registry.tsv), searched first. The library reads
 * no data file of its own. Errors: CELLAR_ENOTFOUND, CELLAR_EIO,
 * CELLAR_EFORMAT (naming the line). A registry is read-only once open:
 * safe to share between threads. */
typedef struct cellar_registry cellar_registry;
typedef struct cellar_model_info {
    const char *hash, *family, *component, *description;
    /* Appended in 0.2 (never "" for the compiled rows except model_name
     * and model_class of HASHES.md's): "original" or "diffusers"; DiffSynth's
     * model names and classes, '+'-joined when one file holds several
     * components; the row's source ("diffsynth-2.x fed7b18f MODEL_CONFIGS",
     * a file name...). */
    const char *layout, *model_name, *model_class, *source;
} cellar_model_info; /* plain data */
CELLAR_API int cellar_registry_open(cellar_registry **out, const char *path);
CELLAR_API void cellar_registry_free(cellar_registry *r);
/* The first entry for a 32-hex-digit hash into *out; CELLAR_ENOTFOUND
 * (*out NULL) when no entry has it. r NULL: the compiled table alone.
 * Entries live as long as r (the compiled ones forever). */
CELLAR_API int cellar_registry_find(const cellar_model_info **out, const cellar_registry *r,
                                    const char *hash);
/* Every entry for hash (one hash may have several meanings: CLIP-L is
 * FLUX's and SDXL's): up to max of them into out; returns how many there
 * are (may exceed max). r NULL: the compiled table alone. */
CELLAR_API size_t cellar_registry_find_all(const cellar_model_info **out, size_t max,
                                           const cellar_registry *r, const char *hash);
/* All entries: the extra file's, then the compiled table's (sorted by hash). */
CELLAR_API size_t cellar_registry_count(const cellar_registry *r);
CELLAR_API const cellar_model_info *cellar_registry_at(const cellar_registry *r, size_t i);

/* ---- Identification (src/format/identify.c, docs/identify.md) ----
 * What a weight file is, from its header alone: architecture (base),
 * variant, component, layout, precision, LoRA details, with the evidence.
 * Evidence, strongest first: the exact structural hash of the whole file in
 * the registry, then of its top-level key groups ("model.",
 * "first_stage_model."... as DiffSynth 1.x splits a checkpoint), then
 * key-and-shape rules (a table of predicates in identify_rules.c), then
 * the file's declared metadata (modelspec.architecture,
 * ss_base_model_version, ss_network_dim/alpha); else unknown. A filename is
 * never evidence. */

/* One tensor as any reader sees it. Shapes in PyTorch order (outermost
 * first; GGUF's ne[] reversed). */
typedef struct cellar_tensor_desc {
    const char *name;
    size_t name_len;
    const char *dtype;     /* "F16", "BF16", "Q4_K"...; NULL if unknown */
    size_t rank;
    const uint64_t *shape; /* rank entries */
    int has_value;         /* value holds a one-element tensor's value */
    double value;          /* (LoRA alpha), when the reader has it */
} cellar_tensor_desc; /* plain data */

/* What cellar_identify_list() reads. Borrowed for the call. */
typedef struct cellar_identify_input {
    unsigned int version;               /* CELLAR_IDENTIFY_INPUT_VERSION */
    const cellar_tensor_desc *tensors;  /* names unique */
    size_t ntensors;
    const char *const *meta_keys;       /* the file's metadata (may be NULL) */
    const char *const *meta_values;
    size_t nmeta;
    const cellar_registry *registry;    /* NULL: the compiled table */
} cellar_identify_input; /* plain data */
#define CELLAR_IDENTIFY_INPUT_VERSION 1
#define CELLAR_IDENTIFY_INPUT_INIT { CELLAR_IDENTIFY_INPUT_VERSION }

typedef enum cellar_model_kind {
    CELLAR_KIND_UNKNOWN = 0,
    CELLAR_KIND_CHECKPOINT,   /* one file holding several parts (UNet+VAE+CLIP) */
    CELLAR_KIND_DIFFUSION,    /* a UNet or DiT alone */
    CELLAR_KIND_VAE,
    CELLAR_KIND_TEXT_ENCODER,
    CELLAR_KIND_LORA,         /* LoRA, LyCORIS, DoRA */
    CELLAR_KIND_EMBEDDING,    /* textual inversion */
    CELLAR_KIND_CONTROLNET,
    CELLAR_KIND_IP_ADAPTER,
    CELLAR_KIND_PIPELINE,     /* a diffusers folder or DDUF: several components */
    CELLAR_KIND_OTHER,        /* known by hash, none of the above */
} cellar_model_kind;

/* Evidence bits. */
#define CELLAR_EVIDENCE_HASH 0x1u       /* the whole file's structural hash */
#define CELLAR_EVIDENCE_GROUP_HASH 0x2u /* a top-level key group's hash */
#define CELLAR_EVIDENCE_RULE 0x4u       /* a key-and-shape rule */
#define CELLAR_EVIDENCE_METADATA 0x8u   /* the file's declared metadata */

/* Confidence: none (unknown), low (declared metadata only), medium (rule),
 * high (exact hash). */
enum { CELLAR_CONFIDENCE_NONE, CELLAR_CONFIDENCE_LOW, CELLAR_CONFIDENCE_MEDIUM,
       CELLAR_CONFIDENCE_HIGH };

/* A registry match on a top-level key group. */
typedef struct cellar_group_match {
    const char *group;              /* "model", "first_stage_model"... */
    size_t tensors;
    const cellar_model_info *entry;
} cellar_group_match; /* plain data, pointing into the registry */

/* An identification result. Immutable once made: safe to read from several
 * threads; freed with cellar_identity_free(). */
typedef struct cellar_identity cellar_identity;

/* The result, filled by the library; fields are only ever appended
 * (version says which exist). Strings and arrays live as long as the
 * cellar_identity, registry entries as long as the registry given (the
 * compiled table's forever); NULL where not known. */
typedef struct cellar_identity_info {
    unsigned int version;         /* CELLAR_IDENTITY_VERSION when filled */
    cellar_model_kind kind;
    const char *kind_name;        /* "checkpoint", "diffusion model", "VAE", "LoRA"... */
    const char *base;             /* "SDXL", "FLUX.1", "Wan2.1"... */
    const char *variant;          /* "base", "refiner", "dev", "14B I2V", "inpaint v-pred"... */
    const char *component;        /* "UNet", "transformer", "VAE", "CLIP-L", "T5-XXL"... */
    const char *layout;           /* "original single-file", "original", "diffusers", "kohya"... */
    const char *precision;        /* "F16", "BF16", "F8_E4M3+F32", "Q8_0"... */
    const char *parts;            /* a checkpoint's or pipeline's parts, '+'-joined */
    unsigned evidence;            /* CELLAR_EVIDENCE_* bits */
    int confidence;               /* CELLAR_CONFIDENCE_* */
    const char *rule;             /* the rules that matched, ' '-joined ("sd-unet sdxl-base") */
    const char *declared;         /* what the metadata declares, as written */
    const char *conflict;         /* where evidence disagrees, in words */
    char structural[33];          /* the whole list's structural hash */
    size_t tensors;
    const cellar_model_info *const *matches; /* registry entries of the hash */
    size_t nmatches;
    const cellar_group_match *groups;        /* registry matches of key groups */
    size_t ngroups;
    /* LoRA (kind CELLAR_KIND_LORA) */
    const char *lora_format;      /* "kohya", "peft", "diffusers", "LoHa", "LoKr", "OFT", "full", "DoRA"... */
    unsigned lora_rank;           /* 0 if unknown */
    int lora_has_alpha;
    double lora_alpha;
    const char *lora_targets;     /* "unet+te1+te2", "transformer"... */
    const char *text;             /* the one-line summary, as cellar_identity_text() */
    /* A pipeline's components (kind CELLAR_KIND_PIPELINE): names
     * ("transformer", "vae"...) and their own results. */
    size_t ncomponents;
    const char *const *component_names;
    const cellar_identity *const *components;
} cellar_identity_info; /* plain data, pointing into its identity (lives as long as it) */
#define CELLAR_IDENTITY_VERSION 1

/* Identifies a tensor list (any reader's). Errors: CELLAR_EINVAL (version
 * unknown, NULL tensors with a count), CELLAR_ENOMEM. */
CELLAR_API int cellar_identify_list(cellar_identity **out, const cellar_identify_input *in);
/* Identifies open safetensors files taken as one shard set (the union of
 * their tensors; one-element tensors' values are read for LoRA alpha). */
CELLAR_API int cellar_identify_st(cellar_identity **out, cellar_st *const *files, size_t nfiles,
                                  const cellar_registry *reg);
/* Identifies what cellar reads at path: a safetensors file, a shard set (its
 * directory or index), a diffusers folder or DDUF file (kind
 * CELLAR_KIND_PIPELINE, from its components), a GGUF file. reg NULL: the
 * compiled table. Errors: the readers' (CELLAR_ENOTFOUND, CELLAR_EFORMAT,
 * CELLAR_EIO...), CELLAR_EUNSUPPORTED for a format cellar does not read. */
CELLAR_API int cellar_identify_path(cellar_identity **out, const char *path,
                                    const cellar_registry *reg);
/* The result's fields (never NULL for a non-NULL id). */
CELLAR_API const cellar_identity_info *cellar_identity_get(const cellar_identity *id);
/* The one-line summary ("SDXL base UNet, original single-file layout, F16
 * (rule)"; "LoRA (kohya) for SDXL, rank 32, alpha 16, unet+te1+te2";
 * "unknown (structural 3c0f..., 1131 tensors)"). Lives as long as id. */
CELLAR_API const char *cellar_identity_text(const cellar_identity *id);
/* "unknown", "checkpoint", "diffusion model", "VAE"... */
CELLAR_API const char *cellar_model_kind_name(cellar_model_kind k);
CELLAR_API void cellar_identity_free(cellar_identity *id);

/* ---- GGUF (src/format/gguf.c) ----
 * A bounded reader for GGUF v2/v3 headers (key/values and tensor infos),
 * validated as ggml does: unique non-empty keys, unique tensor names shorter
 * than 64 bytes, strings <= 1 GiB and <= the bytes left, arrays of at most
 * 2^30 items and never nested, known ggml types with ne[0] a multiple of the
 * block size, overflow-checked sizes, each offset equal to the running sum
 * of sizes padded to general.alignment (a u32 power of two, default 32),
 * data inside the file. Tensor data is never read. Strings handed out are
 * length-delimited (GGUF strings may hold any byte, NUL included) and live
 * as long as the handle. */
/* Thread safety: read-only after open: any number of threads at once. */
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
} cellar_gguf_kv; /* plain data */

/* One decoded value: u for u8..u64 and bool, i for i8..i64, f for f32/f64,
 * str/str_len for strings (pointing into the file's bytes). */
typedef struct cellar_gguf_value {
    cellar_gguf_type type;
    uint64_t u;
    int64_t i;
    double f;
    const char *str;
    size_t str_len;
} cellar_gguf_value; /* plain data */

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
} cellar_gguf_tensor; /* plain data */

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
 * DDUF (src/format/dduf.c)
 * ====================================================================== */

/* ---- dduf section ---- */

/* A DDUF file (huggingface_hub's one-file diffusers pipeline): a ZIP whose
 * entries are all STORED. cellar_dduf_open() maps the file and checks every
 * rule of FORMATS.md with the reference's phrases ("Data must not be
 * compressed in DDUF file.", "Invalid entry name in DDUF file: X", "Missing
 * required 'model_index.json' entry in DDUF file.", "Missing required entry
 * 'X' in 'model_index.json'.", "Missing required file in folder 'X'"), plus
 * the stricter ones: local header signature, local == central name and
 * sizes, no encryption, unique names, no '..', entries inside the file and
 * not overlapping, size == compressed size, every embedded .safetensors
 * valid (read in place), and CRC-32 with CELLAR_DDUF_CRC. Errors:
 * CELLAR_EFORMAT naming the archive, the entry and the rule; CELLAR_EMISMATCH
 * for a CRC; CELLAR_ENOTFOUND, CELLAR_EIO, CELLAR_ENOMEM. */
/* Thread safety: read-only after open: any number of threads at once
 * (checks, lookups, unpacking, cellar_dduf_open_safetensors()). */
typedef struct cellar_dduf cellar_dduf;

/* One entry. name is NUL-terminated (valid names hold no NUL); data points
 * at its size bytes inside the mapping and lives as long as the handle. */
typedef struct cellar_dduf_entry {
    const char *name;
    size_t name_len;
    uint64_t header_offset; /* its local header */
    uint64_t offset;        /* its first data byte in the file */
    uint64_t size;
    uint32_t crc32;         /* as the central directory records it */
    const void *data;
} cellar_dduf_entry; /* plain data */

/* Open flags. */
#define CELLAR_DDUF_CRC 0x1u /* also check every entry's CRC-32 */

CELLAR_API int cellar_dduf_open(cellar_dduf **out, const char *path, unsigned flags);
/* Same over a caller's buffer, which must outlive the handle; label names it. */
CELLAR_API int cellar_dduf_open_buffer(cellar_dduf **out, const void *data, size_t len,
                                       const char *label, unsigned flags);
CELLAR_API void cellar_dduf_free(cellar_dduf *d);
/* The path or label it was opened with. */
CELLAR_API const char *cellar_dduf_label(const cellar_dduf *d);
/* Entries in central directory order. */
CELLAR_API size_t cellar_dduf_entry_count(const cellar_dduf *d);
CELLAR_API const cellar_dduf_entry *cellar_dduf_entry_at(const cellar_dduf *d, size_t i);
/* The entry named name into *out; CELLAR_ENOTFOUND (*out NULL) when the
 * archive has none. */
CELLAR_API int cellar_dduf_find(const cellar_dduf_entry **out, const cellar_dduf *d,
                                const char *name);
/* Checks every entry's CRC-32 (CELLAR_EMISMATCH naming the first bad one). */
CELLAR_API int cellar_dduf_check_crc(const cellar_dduf *d);
/* The pipeline's components (top-level folders), in first-seen order. */
CELLAR_API size_t cellar_dduf_component_count(const cellar_dduf *d);
CELLAR_API const char *cellar_dduf_component_at(const cellar_dduf *d, size_t i);
/* A component's weights, one set per variant, grouped by the rule
 * cellar_components() applies to a folder (diffusers' names: x.safetensors
 * has none, x.fp16.safetensors and its shards x.fp16-00001-of-00002
 * .safetensors are "fp16"): the .safetensors entries directly in folder
 * comp. The set without a variant (variant "") comes first, also as an
 * empty set when the component has no weights at all; then each variant
 * in the order of its first entry. entries are indexes for
 * cellar_dduf_entry_at(), in archive order. Free with
 * cellar_dduf_weight_sets_free(); they do not point into d. Errors:
 * CELLAR_ENOMEM, CELLAR_EINVAL. */
typedef struct cellar_dduf_weights {
    const char *variant;   /* NUL-terminated; "" for the default set */
    size_t n;              /* entries in the set */
    const size_t *entries; /* n entry indexes */
} cellar_dduf_weights; /* plain data, living as long as the array it came in */
CELLAR_API int cellar_dduf_weight_sets(cellar_dduf_weights **out, size_t *count,
                                       const cellar_dduf *d, const char *comp);
CELLAR_API void cellar_dduf_weight_sets_free(cellar_dduf_weights *w, size_t count);
/* Entry i (a .safetensors) as a safetensors file read in place: its tensors
 * through the cellar_st API, data pointing into the archive's mapping. The
 * cellar_st must be freed before the cellar_dduf. Errors: CELLAR_EINVAL,
 * the safetensors reader's. */
CELLAR_API int cellar_dduf_open_safetensors(cellar_st **out, const cellar_dduf *d, size_t i);

/* Writing (src/format/dduf_write.c). An entry to write: name, and its bytes from
 * the file at path, or (path NULL) len bytes at data. */
typedef struct cellar_dduf_source {
    const char *name;
    const char *path;
    const void *data;
    size_t len;
} cellar_dduf_source; /* plain data */

/* Write flags. */
#define CELLAR_DDUF_REPLACE 0x1u /* replace an existing output file */

/* Writes a DDUF at path from n entries, in the caller's order, as the
 * reference writer (Python zipfile, force_zip64=True) lays it out: STORED,
 * version 45, a ZIP64 extra in every local header (the first entry's data at
 * 30 + len(name) + 20), CRC-32 computed, data copied with copy_file_range.
 * Names must be valid and unique, model_index.json present and an object,
 * the folder rules hold and every .safetensors entry must be valid; the
 * result is checked by the reader before it is renamed into place, so an
 * invalid DDUF is never visible. progress (may be NULL) hears the bytes and
 * entries copied; non-zero stops it: CELLAR_EUSER, nothing written.
 * Errors: CELLAR_EFORMAT (a rule), CELLAR_EEXISTS (path exists without
 * CELLAR_DDUF_REPLACE), CELLAR_EIO... */
CELLAR_API int cellar_dduf_write(const char *path, const cellar_dduf_source *entries, size_t n,
                                 unsigned flags, cellar_progress_fn progress, void *ctx);
/* Called by cellar_dduf_pack() for each file or folder of dir it leaves
 * out: name relative to dir, why a short phrase ("file type not allowed in
 * a DDUF", "hidden"...). */
typedef int (*cellar_dduf_skip_fn)(const char *name, const char *why, void *ctx);
/* Packs a diffusers folder: model_index.json first, then every other file
 * sorted by name. Like huggingface_hub's export_folder_as_dduf it leaves out
 * files whose extension a DDUF does not take (README.md...) and, beyond it,
 * hidden files and folders (.gitattributes, .cache/); skipped (may be NULL)
 * hears of each, sorted by name, before anything is written; progress (may
 * be NULL) hears the bytes and entries copied. Non-zero from either:
 * CELLAR_EUSER, nothing written. ctx goes to both. Refuses
 * (CELLAR_EFORMAT, nothing written) folders nested in a component that hold
 * files a DDUF takes, and anything that would make cellar_dduf_write()
 * fail (missing model_index.json or component configs, invalid names or
 * .safetensors files). */
CELLAR_API int cellar_dduf_pack(const char *path, const char *dir, unsigned flags,
                                cellar_dduf_skip_fn skipped, cellar_progress_fn progress,
                                void *ctx);
/* Extracts every entry under dir (created if missing). Existing files are
 * an error (CELLAR_EEXISTS, nothing written) unless CELLAR_DDUF_REPLACE;
 * a component folder that is a symlink is refused. Each file is written
 * atomically. */
CELLAR_API int cellar_dduf_unpack(const cellar_dduf *d, const char *dir, unsigned flags);

/* ======================================================================
 * PyTorch checkpoints: .bin .pt .pth .ckpt (src/format/pickle.c,
 * docs/formats.md "PyTorch checkpoints")
 *
 * torch.save's zip format (torch >= 1.6: <root>/data.pkl + <root>/data/<key>)
 * and the legacy format (five pickles, then the storages), read without
 * running anything: the pickle is interpreted by a bounded machine that
 * knows a fixed opcode subset (protocols 2-5), treats every GLOBAL as an
 * inert (module, name) tag and rebuilds only tensors, storages, parameters
 * and containers from a fixed table; any other call is kept as an opaque
 * object. Every limit (pickle 64 MiB, stack 1M, marks 1024, strings 16 MiB,
 * rank 64, nesting 64, 4M objects) and every refusal is an error naming the
 * file, the rule and the byte offset (CELLAR_EFORMAT), or CELLAR_EUNSUPPORTED
 * for valid files cellar does not read (TorchScript, big-endian,
 * compressed entries, quantized or sparse tensors, pickled modules).
 * Tensor data is never read at open (the file is mapped; only the pickles'
 * pages are touched).
 *
 * A handle is immutable after open: several threads may read from it.
 * ====================================================================== */

typedef struct cellar_pt cellar_pt;

/* How a global the pickle names is judged. */
typedef enum cellar_pt_class {
    CELLAR_PT_SAFE = 0,      /* torch's weights_only allowlist (tensors, containers) */
    CELLAR_PT_UNKNOWN = 1,   /* anything else: "suspicious", kept inert */
    CELLAR_PT_DANGEROUS = 2, /* picklescan's list (os, subprocess, eval...) */
} cellar_pt_class;

/* "safe", "unknown", "dangerous". */
CELLAR_API const char *cellar_pt_class_name(cellar_pt_class c);

/* One distinct global (module, name), py2 names mapped to py3. */
typedef struct cellar_pt_global {
    const char *module;
    const char *name;
    cellar_pt_class cls;
    uint64_t count;  /* times the pickles name it */
    uint64_t offset; /* file offset of its first GLOBAL/STACK_GLOBAL opcode */
} cellar_pt_global; /* plain data */

/* One storage (a block of the file that tensors view). */
typedef struct cellar_pt_storage {
    const char *key;       /* "0", "1"... (zip) or the legacy pointer digits */
    const char *location;  /* "cpu", "cuda:0": a label */
    const char *torch_dtype; /* of its type: "float32"; "uint8" if untyped */
    uint64_t numel;        /* elements of that type */
    uint64_t nbytes;       /* numel * element size */
    uint64_t offset;       /* where its bytes start in the file */
} cellar_pt_storage; /* plain data */

/* One tensor of the checkpoint's state dict. The first fields are those of
 * cellar_st_tensor, so code can treat both alike. */
typedef struct cellar_pt_tensor {
    const char *name;       /* flattened: nested dict keys joined by '.' */
    size_t name_len;
    cellar_dtype dtype;     /* CELLAR_DTYPE__COUNT when safetensors has none (complex128) */
    const char *dtype_name; /* safetensors' name ("F32"), else torch's ("complex128") */
    size_t rank;
    const uint64_t *shape;
    uint64_t nelem;
    uint64_t nbytes;        /* nelem * element size: the row-major bytes */
    const char *torch_dtype; /* "float32", "bfloat16"... */
    const uint64_t *stride; /* rank entries, in elements */
    uint64_t storage_offset; /* in elements */
    size_t storage;         /* index of its storage */
    int contiguous;         /* the view is its storage's bytes in row-major order */
    uint64_t offset;        /* contiguous: file offset of its first byte */
    /* Index of the tensor whose name is first in byte order among those
     * with exactly this view (same storage, dtype, offset, shape, strides):
     * tied weights. Itself when it has no alias. */
    size_t alias;
} cellar_pt_tensor; /* plain data */

/* Open flags. */
enum {
    /* A format error does not fail the open: cellar_pt_problem() says what
     * broke, no tensor is listed, and the globals are all there: those read
     * before the error and those the rest of the pickle names (scanned
     * opcode by opcode as picklescan does). For scanning hostile files. */
    CELLAR_PT_KEEP_GOING = 1u << 0,
};

/* Opens a checkpoint (format by content: zip, legacy, or a bare pickle).
 * Errors: CELLAR_ENOTFOUND, CELLAR_EIO, CELLAR_EFORMAT, CELLAR_EUNSUPPORTED,
 * CELLAR_ENOMEM. */
CELLAR_API int cellar_pt_open(cellar_pt **out, const char *path, unsigned flags);
/* Same over len bytes in memory (borrowed: must outlive the handle); label
 * names it in messages. */
CELLAR_API int cellar_pt_open_buffer(cellar_pt **out, const void *data, size_t len,
                                     const char *label, unsigned flags);
CELLAR_API void cellar_pt_free(cellar_pt *pt);
/* 1 if the file at path looks like a torch checkpoint or a pickle (a zip
 * holding a data.pkl or constants.pkl, or a pickle protocol header); 0
 * otherwise or if unreadable. Never fails. */
CELLAR_API int cellar_pt_sniff(const char *path);

/* "zip", "legacy" or "pickle" (a bare pickle: no container). */
CELLAR_API const char *cellar_pt_format(const cellar_pt *pt);
/* The highest pickle protocol the file declares. */
CELLAR_API unsigned cellar_pt_protocol(const cellar_pt *pt);
/* With CELLAR_PT_KEEP_GOING: the error that stopped reading, or NULL. */
CELLAR_API const char *cellar_pt_problem(const cellar_pt *pt);
/* The label or path it was opened with. */
CELLAR_API const char *cellar_pt_label(const cellar_pt *pt);

/* The state dict's tensors in torch.load's order (a Lightning checkpoint's
 * 'state_dict' unwrapped as the HF converter does; a duplicate name keeps
 * the last value). */
CELLAR_API size_t cellar_pt_count(const cellar_pt *pt);
CELLAR_API const cellar_pt_tensor *cellar_pt_tensor_at(const cellar_pt *pt, size_t i);
/* Tensor names the state dict gives more than once (each keeps its last
 * value, as torch.load's dict does): worth a warning. */
CELLAR_API size_t cellar_pt_duplicate_count(const cellar_pt *pt);
CELLAR_API size_t cellar_pt_storage_count(const cellar_pt *pt);
CELLAR_API const cellar_pt_storage *cellar_pt_storage_at(const cellar_pt *pt, size_t i);
/* Copies tensor i's row-major bytes (nbytes of them; views are gathered)
 * into out, which holds out_len bytes. CELLAR_EINVAL (bad i, short out). */
CELLAR_API int cellar_pt_read(void *out, size_t out_len, const cellar_pt *pt, size_t i);

/* Every distinct global, in order of first appearance. */
CELLAR_API size_t cellar_pt_global_count(const cellar_pt *pt);
CELLAR_API const cellar_pt_global *cellar_pt_global_at(const cellar_pt *pt, size_t i);
/* Number of distinct dangerous globals. */
CELLAR_API size_t cellar_pt_dangerous_count(const cellar_pt *pt);
/* Objects cellar does not rebuild (an unknown class, or an allowlisted
 * callable with arguments it does not model) that hold tensors: their path
 * in the state dict ("" for the top) and the global that made them (NULL if
 * none); those tensors are not listed. */
CELLAR_API size_t cellar_pt_blocked_count(const cellar_pt *pt);
CELLAR_API int cellar_pt_blocked_at(const cellar_pt *pt, size_t i, const char **path,
                                    const cellar_pt_global **global);

/* The structural hash of a checkpoint (PICKLE.md s.7), from the pickle
 * alone (computed at open; CELLAR_EFORMAT for a handle opened with
 * CELLAR_PT_KEEP_GOING whose file broke a rule). diffsynth: DiffSynth-Studio 2.x's hash_model_file (one-key
 * 'state_dict'/'module'/'model_state' unwrapped, nested dicts as
 * "key|..."), "" when DiffSynth would fail on the file, and then problem
 * says why (torch 1.13's weights_only refusing a global or an opcode, a
 * value neither tensor nor dict). state_dict: the hash of the tensors
 * cellar lists (name:shape, as for a safetensors file: the hash of the
 * converted file when no alias is dropped). */
typedef struct cellar_pt_hash {
    char diffsynth[33];
    char state_dict[33];
    char problem[256];
} cellar_pt_hash; /* plain data */
CELLAR_API int cellar_pt_structural_hash(cellar_pt_hash *out, const cellar_pt *pt);

/* Conversion to safetensors. */
#define CELLAR_PT_CONVERT_OPTS_VERSION 1
typedef struct cellar_pt_convert_opts {
    unsigned int version;
    /* 0: one file at dst. Otherwise dst is a folder and the tensors are
     * split as huggingface_hub does (model.safetensors, or shards and an
     * index). */
    uint64_t max_size;
    /* Convert the tensors cellar can reach when objects of unknown globals
     * hold others (those are left out); without it such a file is refused. */
    int allow_unknown;
} cellar_pt_convert_opts; /* plain data */
#define CELLAR_PT_CONVERT_OPTS_INIT { CELLAR_PT_CONVERT_OPTS_VERSION, 0, 0 }

typedef struct cellar_pt_convert_result {
    size_t tensors;  /* written */
    size_t dropped;  /* aliases recorded in metadata instead */
    size_t skipped;  /* left out behind unknown objects (allow_unknown) */
    size_t shards;   /* files written */
} cellar_pt_convert_result; /* plain data */

/* Writes src's state dict as safetensors at dst, atomically: each tensor as
 * the row-major bytes of its view (contiguous ones copied with
 * copy_file_range), exact aliases once under the name first in byte order
 * with the others in metadata ({dropped: kept}, as the HF converter), and
 * "format": "pt". Refused (CELLAR_EUNSUPPORTED, naming the global): a
 * dangerous global anywhere; an unknown global holding tensors unless
 * allow_unknown; a dtype safetensors lacks. res may be NULL. */
CELLAR_API int cellar_pt_convert(cellar_pt_convert_result *res, const char *src, const char *dst,
                                 const cellar_pt_convert_opts *opts);

/* ======================================================================
 * The store (src/store/store.c)
 * ====================================================================== */

/* ---- store section ---- */

/* The content-addressed store (src/store/store.c and friends), one per machine
 * under $CELLAR_HOME (default ~/.cache/cellar):
 *   objects/sha256/ab/cdef...   one read-only (0444) file per blob, named by
 *                               its sha256 (two-hex-digit fan-out)
 *   tmp/                        copies and downloads in progress, partials
 *   locks/                      per-blob lock files (flock)
 *   cellar.db                   the SQLite index: digests of every blob, every
 *                               place it was linked to, repos and snapshots
 * Several processes may use one store at once: nothing is ever half visible,
 * two writers of one blob never collide, gc never removes what is in use.
 * Thread safety: a handle is used by one thread at a time (open one per
 * thread for parallel work); after fork() see cellar_store_open(). */
typedef struct cellar_store cellar_store;

/* Opens (creating if needed) the store at directory home and migrates its
 * database. The library picks no default: CELLAR_EINVAL for NULL or "";
 * cellar_store_home_from_env() gives the one the CLI uses. CELLAR_EIO /
 * CELLAR_EDB. A handle belongs to the process that opened it; in a fork()ed
 * child its first use opens a database connection of the child's own. */
CELLAR_API int cellar_store_open(cellar_store **out, const char *home);
CELLAR_API void cellar_store_free(cellar_store *s);
/* The store directory the environment names, allocated into *out (free
 * with cellar_free): $CELLAR_HOME, else $XDG_CACHE_HOME/cellar, else
 * ~/.cache/cellar ($HOME, else the password database). One of the
 * library's only two environment reads (see cellar_hf_cache_from_env);
 * CELLAR_ENOMEM. Not thread-safe against setenv(). */
CELLAR_API int cellar_store_home_from_env(char **out);
/* The store's directory; lives as long as s. */
CELLAR_API const char *cellar_store_home(const cellar_store *s);
/* The store's hash cache (table hash_cache of its cellar.db), to pass in
 * cellar_hash_opts.cache: digests of files anywhere on the machine, keyed
 * by file id, so only this store's database is ever written. Lives as long
 * as s and, like s, is used by one thread at a time. */
CELLAR_API const cellar_hash_cache *cellar_store_hash_cache(cellar_store *s);

/* Finds a blob by any digest the index knows: algo is CELLAR_ALGO_SHA256,
 * CELLAR_ALGO_BLAKE3 or CELLAR_ALGO_GITSHA1 (20 bytes). 0 and sha256_out
 * (may be NULL) filled when the object is in the store; CELLAR_ENOTFOUND
 * when not; CELLAR_EINVAL for another algo, CELLAR_EIO. */
CELLAR_API int cellar_store_find(uint8_t sha256_out[32], cellar_store *s, cellar_algo algo,
                                 const uint8_t *digest);
/* Pins the blob sha256 for as long as s lives (or until
 * cellar_store_unpin_all): gc keeps it, whatever its links and age. Pin a
 * blob before relying on it being there, then place or read it. Every blob
 * s admits (add, dedup, a download) is pinned the same way. The pin is a
 * line in a file s holds flocked (locks/pins/), so a killed process's pins
 * vanish with it. 0 when the object is in the store (and now stays),
 * CELLAR_ENOTFOUND when it is not, CELLAR_EIO. Not for several threads on
 * one handle at once (a handle is not shared between threads). */
CELLAR_API int cellar_store_pin(cellar_store *s, const uint8_t sha256[32]);
/* Drops every pin of s (gc may remove those blobs again). CELLAR_EIO. */
CELLAR_API int cellar_store_unpin_all(cellar_store *s);
/* The path of the object named sha256, allocated in *path_out (free with
 * cellar_free).
 * CELLAR_ENOTFOUND (and *path_out NULL) when the store does not hold it. */
CELLAR_API int cellar_store_object_path(char **path_out, cellar_store *s, const uint8_t sha256[32]);

/* Flags for cellar_store_add_file. */
#define CELLAR_ADD_COPY (1u << 0)    /* always copy; never adopt the file's inode */
#define CELLAR_ADD_NO_GITSHA1 (1u << 1) /* skip the git blob sha1 (saves a pass of sha1) */

/* Puts the file at path into the store. On the store's filesystem the file
 * itself is adopted with a hard link (it becomes the object, mode 0444, and
 * its path is recorded as a place); otherwise (or with CELLAR_ADD_COPY) it is
 * hashed while copied into a temp file in the store, fsynced and renamed. A
 * blob the store already has is freshened and nothing is written. out (may be
 * NULL) gets size, sha256, blake3 and (unless NO_GITSHA1) git-sha1.
 * CELLAR_ENOTFOUND, CELLAR_EIO (ENOSPC...: no partial object is left),
 * CELLAR_ECHANGED (the file changed while read), CELLAR_EINVAL (not a regular
 * file, or one of the store's own files such as its index). */
CELLAR_API int cellar_store_add_file(cellar_digests *out, cellar_store *s, const char *path,
                                     unsigned flags);

/* Records digests of a blob the store holds (d->have must include sha256),
 * e.g. a git blob sha1 or blake3 learnt from a server. CELLAR_ENOTFOUND if the
 * store does not hold it. */
CELLAR_API int cellar_store_record_digests(cellar_store *s, const cellar_digests *d);
/* Records the Hub's xet hash (64 hex digits) of a blob the store holds. */
CELLAR_API int cellar_store_record_xet(cellar_store *s, const uint8_t sha256[32],
                                       const char *xet_hex);

/* A streaming writer for downloads: bytes are hashed as they arrive and the
 * blob is admitted only if its size and digests match. */
/* Thread safety: one thread at a time, and not while another thread uses
 * the store handle it came from (they share its database connection). */
typedef struct cellar_store_writer cellar_store_writer;

/* Opens a writer. expected_sha256 may be NULL (then the blob is named by what
 * arrives); expected_size is UINT64_MAX when unknown. resume_key (e.g.
 * "sha256:<hex>" or "git:<sha1>", [A-Za-z0-9:._-] only) names a partial kept
 * in tmp/ across runs: its bytes are re-hashed on open and
 * cellar_store_writer_offset() says where to resume. NULL: not resumable.
 * Another process writing the same key: CELLAR_EBUSY. */
CELLAR_API int cellar_store_writer_open(cellar_store_writer **out, cellar_store *s,
                                        const uint8_t expected_sha256[32], uint64_t expected_size,
                                        const char *resume_key);
/* Bytes already written (from an earlier attempt, or this one). */
CELLAR_API uint64_t cellar_store_writer_offset(const cellar_store_writer *w);
/* Drops everything past offset (0: restart, e.g. when a server ignored a
 * range); offset > cellar_store_writer_offset(): CELLAR_EINVAL. */
CELLAR_API int cellar_store_writer_truncate(cellar_store_writer *w, uint64_t offset);
/* Appends bytes. More than expected_size: CELLAR_EMISMATCH. */
CELLAR_API int cellar_store_writer_write(cellar_store_writer *w, const void *data, size_t len);
/* Finishes: checks the size, the sha256 and every digest in expected_extra
 * (may be NULL; e.g. a git-sha1 from the Hub), then admits the blob (or
 * freshens an existing one) and records its digests. On CELLAR_EMISMATCH the
 * partial is discarded and the store untouched. out (may be NULL) gets size,
 * sha256, blake3 and git-sha1. The writer can only be freed afterwards. */
CELLAR_API int cellar_store_writer_commit(cellar_digests *out, cellar_store_writer *w,
                                          const cellar_digests *expected_extra);
/* Closes; a resumable, uncommitted partial stays in tmp/ for the next run,
 * anything else is removed. NULL-safe. */
CELLAR_API void cellar_store_writer_free(cellar_store_writer *w);

/* How a blob is put at a place. */
typedef enum cellar_link_mode {
    CELLAR_LINK_AUTO = 0, /* hard link, else reflink, else copy */
    CELLAR_LINK_HARD,
    CELLAR_LINK_REFLINK,  /* copy-on-write clone (btrfs, XFS...) */
    CELLAR_LINK_SYMLINK,  /* absolute symlink to the object */
    CELLAR_LINK_COPY
} cellar_link_mode;

/* "auto", "hard", "reflink", "symlink", "copy". */
CELLAR_API const char *cellar_link_mode_name(cellar_link_mode m);
/* Parses one of those names; CELLAR_EINVAL otherwise. */
CELLAR_API int cellar_link_mode_parse(cellar_link_mode *out, const char *name);

/* Puts blob sha256 at dest (parent directories created), atomically: a temp
 * name beside dest, then a rename over it, so dest is never missing or half
 * written. Records dest as a place of the blob. *used (may be NULL) says which
 * mode was used (AUTO falls back hard -> reflink -> copy; a caller may warn
 * that sharing was lost). CELLAR_ENOTFOUND (no such blob), CELLAR_EUNSUPPORTED
 * (an explicit mode the filesystem refuses), CELLAR_EIO. */
CELLAR_API int cellar_store_link(cellar_link_mode *used, cellar_store *s, const uint8_t sha256[32],
                                 const char *dest, cellar_link_mode mode);

/* cellar_store_link at root/rel, where rel ("a/b/file") is a relative path
 * whose folders are created as needed and none may be a symlink: each is
 * opened with O_NOFOLLOW below root (root itself is followed: the caller
 * chose it), so a folder swapped for a link to elsewhere while a long pull
 * ran is refused (CELLAR_EINVAL naming it), never written through. "." and
 * ".." components are refused too. Errors as cellar_store_link. */
CELLAR_API int cellar_store_link_under(cellar_link_mode *used, cellar_store *s,
                                       const uint8_t sha256[32], const char *root, const char *rel,
                                       cellar_link_mode mode);

/* Snapshots: the files of one commit of a repo (filled by the Hub pull and by
 * import-hf), so repo + revision resolve offline. repo is "org/name" (models)
 * or "datasets/org/name", "spaces/org/name"; revision a branch, tag or the
 * commit itself. Recording replaces the commit's file list and points
 * revision at commit. Every sha256 must name a stored blob (CELLAR_ENOTFOUND
 * otherwise, nothing recorded). */
CELLAR_API int cellar_store_record_snapshot(cellar_store *s, const char *repo,
                                            const char *revision, const char *commit, size_t n,
                                            const char *const *paths,
                                            const uint8_t (*sha256s)[32]);

typedef struct cellar_snapshot_file {
    const char *path; /* in the repo, '/'-separated */
    uint8_t sha256[32];
    uint64_t size;
} cellar_snapshot_file; /* plain data */

typedef struct cellar_snapshot {
    const char *repo;
    const char *revision;
    const char *commit; /* 40 hex digits as recorded */
    size_t n;
    cellar_snapshot_file *files; /* sorted by path */
} cellar_snapshot; /* plain data */

/* Resolves repo + revision (a recorded branch/tag name or a commit) to its
 * snapshot. CELLAR_ENOTFOUND when the index has none. Free with
 * cellar_snapshot_free. */
CELLAR_API int cellar_store_find_snapshot(cellar_snapshot **out, cellar_store *s, const char *repo,
                                          const char *revision);
CELLAR_API void cellar_snapshot_free(cellar_snapshot *snap);

/* One object, as `ls` / `map` show it. */
typedef struct cellar_object_info {
    uint8_t sha256[32];
    uint64_t size;
    cellar_digests digests; /* every digest the index knows (have bits) */
    uint64_t nlink;         /* hard links to the object file, itself included */
    int64_t mtime;          /* seconds since the epoch */
    const char *path;       /* the object's path */
} cellar_object_info; /* plain data */

/* Calls cb for every object in the store, in sha256 order; a non-zero return
 * from cb stops the walk (CELLAR_EUSER). */
typedef int (*cellar_object_cb)(const cellar_object_info *info, void *ctx);
CELLAR_API int cellar_store_foreach(cellar_store *s, cellar_object_cb cb, void *ctx);

/* Calls cb for every place the index records for blob sha256 (paths cellar
 * linked or adopted), with the mode used. Non-zero from cb: CELLAR_EUSER. */
typedef int (*cellar_place_cb)(const char *path, cellar_link_mode mode, void *ctx);
CELLAR_API int cellar_store_foreach_place(cellar_store *s, const uint8_t sha256[32],
                                          cellar_place_cb cb, void *ctx);

/* verify: re-hashes objects (all when n is 0) and calls cb for each with
 * status 0 (intact), CELLAR_EMISMATCH (bytes, size or a recorded digest do
 * not match; message says what), CELLAR_ENOTFOUND (asked for but missing),
 * or the error that kept it from being read (CELLAR_EIO, CELLAR_ECHANGED).
 * Never deletes anything. Returns 0, CELLAR_EUSER when cb returned
 * non-zero, or a store failure. */
typedef int (*cellar_verify_cb)(const uint8_t sha256[32], int status, const char *message,
                                void *ctx);
CELLAR_API int cellar_store_verify(cellar_store *s, size_t n, const uint8_t (*sha256s)[32],
                                   cellar_verify_cb cb, void *ctx);

/* gc: removes objects nothing links to any more: one hard link (the object
 * itself), no recorded symlink place still resolving to it, older than the
 * grace period (by change time, which every new link updates), and not
 * locked by a running add, link or download, nor pinned by a live process
 * (cellar_store_pin; every admission pins too). Also clears stale temp files,
 * and forgets the recorded places of the objects it examines (those with
 * one link) that no longer hold them. */
typedef struct cellar_gc_opts {
    unsigned int version;   /* CELLAR_GC_OPTS_VERSION */
    int dry_run;            /* report, remove nothing */
    uint64_t grace_seconds; /* objects changed more recently are kept */
    int partials;           /* also remove every unlocked resumable partial,
                               whatever its age (default: after a week) */
    cellar_progress_fn progress; /* objects examined; may be NULL */
    void *progress_ctx;
} cellar_gc_opts; /* plain data */
#define CELLAR_GC_OPTS_VERSION 1
#define CELLAR_GC_GRACE_DEFAULT 3600
/* The defaults (also what a NULL opts means): remove, an hour's grace. */
#define CELLAR_GC_OPTS_INIT {CELLAR_GC_OPTS_VERSION, 0, CELLAR_GC_GRACE_DEFAULT, 0, NULL, NULL}

typedef struct cellar_gc_stats {
    uint64_t objects_removed, bytes_removed; /* or that would be, with dry_run */
    uint64_t objects_kept;
    uint64_t temp_removed;
} cellar_gc_stats; /* plain data */

/* cb (may be NULL) is told of every object removed (or that would be);
 * non-zero stops gc (CELLAR_EUSER; what is removed stays removed). */
typedef int (*cellar_gc_cb)(const uint8_t sha256[32], uint64_t size, void *ctx);
CELLAR_API int cellar_store_gc(cellar_gc_stats *stats, cellar_store *s, const cellar_gc_opts *opts,
                               cellar_gc_cb cb, void *ctx);

/* dedup (src/store/dedup.c): makes identical files under paths hard links to the
 * one stored copy. Only files whose size another file (or a stored object)
 * shares are read. Each replacement is atomic (a link to a temp name beside
 * the file, then a rename over it) and keeps the name, owner and who may read
 * it; the inode is shared with the store, so it becomes read-only (0444; a
 * write through one name would change every copy). Files whose read/execute
 * bits differ from 0444 (private or executable files) or owned by another
 * user are skipped. A file whose bytes differ is never touched; files that
 * change while read are skipped. On a filesystem other than the store's
 * (no hard link can reach it) copies share the first copy's inode instead. */
#define CELLAR_DEDUP_PARANOID (1u << 1)       /* also compare bytes before linking */
/* -L: dedup the files symlinks lead to (the symlinks themselves stay), when
 * they lie inside one of the paths given; others are reported, untouched. */
#define CELLAR_DEDUP_FOLLOW_SYMLINKS (1u << 2)

typedef enum cellar_dedup_event_kind {
    CELLAR_DEDUP_LINKED,  /* path now shares the stored copy (or would) */
    CELLAR_DEDUP_SKIPPED, /* left alone; message says why */
    CELLAR_DEDUP_ERROR    /* failed; message says why; nothing was lost */
} cellar_dedup_event_kind;

/* One event; non-zero stops the run (CELLAR_EUSER): files already
 * replaced stay replaced (each replacement is atomic), none is half done. */
typedef int (*cellar_dedup_cb)(cellar_dedup_event_kind kind, const char *path, uint64_t size,
                               const char *message, void *ctx);

/* Initialise with CELLAR_DEDUP_OPTS_INIT (NULL opts: the same defaults). */
typedef struct cellar_dedup_opts {
    unsigned int version; /* CELLAR_DEDUP_OPTS_VERSION */
    unsigned flags;       /* CELLAR_DEDUP_* */
    int dry_run;          /* report what would be linked, change nothing */
    uint64_t min_size;    /* smaller files are not considered */
    cellar_dedup_cb cb;   /* may be NULL */
    void *ctx;
    /* Reading: bytes read of those to read; linking: files_done of the
     * candidates. May be NULL. */
    cellar_progress_fn progress;
    void *progress_ctx;
} cellar_dedup_opts; /* plain data */
#define CELLAR_DEDUP_OPTS_VERSION 1
#define CELLAR_DEDUP_OPTS_INIT {CELLAR_DEDUP_OPTS_VERSION, 0, 0, 0, NULL, NULL, NULL, NULL}

typedef struct cellar_dedup_stats {
    uint64_t files;        /* regular files considered */
    uint64_t linked;       /* replaced by (or already) a link to the store */
    uint64_t errors;
    /* Bytes on disk, each inode once: of the files, and of the stored
     * copies they came to share (on disk before, too); after = the same
     * names after linking (with dry_run: as it would be). before - after
     * is what the run freed. */
    uint64_t bytes_before;
    uint64_t bytes_after;
} cellar_dedup_stats; /* plain data */

CELLAR_API int cellar_store_dedup(cellar_dedup_stats *stats, cellar_store *s, size_t npaths,
                                  const char *const *paths, const cellar_dedup_opts *opts);

/* The Hugging Face cache the environment names, as huggingface_hub finds
 * it, allocated into *out (free with cellar_free): $HF_HUB_CACHE, else
 * $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
 * CELLAR_ENOMEM. Not thread-safe against setenv(). */
CELLAR_API int cellar_hf_cache_from_env(char **out);

/* import-hf (src/store/hfcache.c): adopts every blobs/<etag> of the Hugging
 * Face cache at hf_cache (required: CELLAR_EINVAL for NULL) into the store
 * after checking its etag (sha256 or
 * git sha1), replacing it by a hard link to the stored copy so all repos share
 * one copy per sha256; the cache's symlinks keep resolving. Records each
 * snapshot and ref. opts->cb hears per-blob events and opts->progress the
 * blobs gone through; non-zero from either stops (CELLAR_EUSER, what was
 * adopted stays adopted). */
typedef struct cellar_import_stats {
    uint64_t repos, blobs, linked, errors;
    uint64_t bytes_before, bytes_after; /* on disk, each inode once */
} cellar_import_stats; /* plain data */
/* Initialise with CELLAR_IMPORT_OPTS_INIT (NULL opts: no callbacks). */
typedef struct cellar_import_opts {
    unsigned int version; /* CELLAR_IMPORT_OPTS_VERSION */
    cellar_dedup_cb cb;   /* per-blob events (linked, skipped, error); may be NULL */
    void *ctx;
    cellar_progress_fn progress; /* blobs and bytes gone through, of all repos */
    void *progress_ctx;
} cellar_import_opts; /* plain data */
#define CELLAR_IMPORT_OPTS_VERSION 1
#define CELLAR_IMPORT_OPTS_INIT {CELLAR_IMPORT_OPTS_VERSION, NULL, NULL, NULL, NULL}
CELLAR_API int cellar_store_import_hf(cellar_import_stats *stats, cellar_store *s,
                                      const char *hf_cache, const cellar_import_opts *opts);

/* du (src/store/du.c): sizes of trees. apparent counts every file name; unique
 * each inode once (what dedup leaves); disk the blocks of each inode once.
 * Symlinks are not followed. One row per path given and per directory
 * directly inside it (a repo, a model folder); total counts each inode once
 * across all paths. */
typedef struct cellar_du_row {
    char *path;
    uint64_t files;
    uint64_t apparent, unique, disk;
} cellar_du_row; /* plain data */

typedef struct cellar_du {
    size_t n;
    cellar_du_row *rows;
    cellar_du_row total;
} cellar_du; /* plain data */

CELLAR_API int cellar_du_scan(cellar_du **out, size_t npaths, const char *const *paths);
CELLAR_API void cellar_du_free(cellar_du *du);

/* ======================================================================
 * The Hub (src/net/hub.c)
 * ====================================================================== */

/* ---- hub section ---- */

/* cellar_pull (src/net/pull.c): downloads one revision of a Hub repo into the
 * store without fetching what the store already holds, then lays it out.
 *  1. the revision is resolved to a commit and the commit's files listed
 *     with their sha256 (LFS) or git blob sha1 (files kept in git);
 *  2. a file whose digest the store holds is linked, not downloaded; the
 *     others are downloaded in parallel (libcurl multi), hashed while they
 *     stream and admitted only if size and digest match; a killed pull
 *     leaves resumable partials that the next one continues by range;
 *     another process downloading the same blob is waited for, not joined;
 *  3. the snapshot (repo, revision, commit, path -> sha256) is recorded in
 *     the store and laid out as a folder of links (to_dir) or in the Hugging
 *     Face cache layout (hf_cache: models--ORG--NAME/{blobs,snapshots,refs},
 *     blobs hard-linked to the store's objects).
 * The token is sent only to the endpoint's own host, never to a host a
 * redirect leads to, and never appears in a message. */

typedef enum cellar_pull_event_kind {
    CELLAR_PULL_PLAN,     /* listing done: total files/bytes known; path NULL */
    CELLAR_PULL_REUSED,   /* path is in the store already: linked */
    CELLAR_PULL_START,    /* path starts downloading (done: bytes resumed) */
    CELLAR_PULL_PROGRESS, /* bytes of path arrived */
    CELLAR_PULL_RETRY,    /* path failed and is tried again; message says why */
    CELLAR_PULL_FINISH,   /* path downloaded, verified and stored */
    CELLAR_PULL_WAIT,     /* another process is downloading path's blob */
    CELLAR_PULL_TICK      /* nothing new; path NULL: the pulling thread's chance to stop */
} cellar_pull_event_kind;

typedef struct cellar_pull_event {
    cellar_pull_event_kind kind;
    const char *path;    /* in the repo; NULL for PLAN */
    uint64_t size;       /* of path */
    uint64_t done;       /* bytes of path in the store's partial so far */
    uint64_t total_size; /* bytes of every file of the pull */
    uint64_t total_done; /* bytes reused + downloaded so far */
    size_t total_files;  /* files in the pull */
    const char *message; /* RETRY: why; else NULL */
} cellar_pull_event; /* plain data */

/* Called one at a time, on the pulling thread or on the pull's transfer
 * threads (several files at once); must not call back into the pull.
 * While transfers run, the pulling thread hears a TICK about every 100 ms,
 * so a caller that can only act on its own thread (Python's signal
 * handlers) gets to stop the pull in time. Non-zero
 * stops the pull (CELLAR_EUSER): transfers are dropped, partials kept for
 * the next run to resume, nothing half-written admitted. */
typedef int (*cellar_pull_progress_fn)(const cellar_pull_event *ev, void *ctx);

struct cellar_oci_opts;


/* Initialise with CELLAR_PULL_OPTS_INIT (NULL opts: the same defaults).
 * The library reads no environment: cellar_pull_opts_from_env() applies
 * HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE for a program that wants them. */
typedef struct cellar_pull_opts {
    unsigned int version;  /* CELLAR_PULL_OPTS_VERSION */
    const char *endpoint;  /* NULL: https://huggingface.co */
    const char *token;     /* NULL or "": none */
    const char *revision;  /* NULL: "main" */
    const char *const *include; /* fnmatch globs on repo paths; none: all */
    size_t n_include;
    const char *const *exclude;
    size_t n_exclude;
    const char *to_dir;    /* lay out as a folder of hard links, or NULL */
    const char *hf_cache;  /* lay out in this HF cache root, or NULL */
    unsigned jobs;         /* transfers at once; 0: 8 */
    int offline;           /* resolve from the store's records only */
    int dry_run;           /* only say what would be downloaded and reused */
    cellar_pull_progress_fn progress; /* may be NULL */
    void *progress_ctx;
    /* A file with over twice this many bytes left, when no other file is
     * waiting for a transfer slot, is fetched in parallel ranged parts.
     * 0: 32 MiB; UINT64_MAX: never. */
    uint64_t part_size;
    /* With to_dir: replace files there that are neither a stored blob nor
     * this revision's bytes (a user's edit); default: refuse, nothing
     * written (CELLAR_EEXISTS). */
    int force;
    /* The team cache (docs/oci.md): "oci://HOST[:PORT]/REPO" or NULL. Blobs
     * the store lacks are taken from this registry when it holds them; what
     * comes from the Hub is then uploaded to it, with a manifest tagged for
     * the repo and revision. Its failures never fail the pull (see
     * cellar_pull_result.remote_rc). remote_opts: its options (may be NULL). */
    const char *remote;
    const struct cellar_oci_opts *remote_opts;
} cellar_pull_opts; /* plain data */
#define CELLAR_PULL_OPTS_VERSION 1
#define CELLAR_PULL_OPTS_INIT                                                                      \
    {CELLAR_PULL_OPTS_VERSION, NULL, NULL, NULL, NULL, 0, NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0,  \
     NULL, NULL}

/* Fills what the user's environment says, as huggingface_hub reads it:
 * endpoint from $HF_ENDPOINT and token from $HF_TOKEN where opts leaves
 * them NULL; offline set when $HF_HUB_OFFLINE is 1/ON/YES/TRUE (any case).
 * The strings point into the environment. CELLAR_EINVAL for opts not
 * initialised with CELLAR_PULL_OPTS_INIT. Not thread-safe against setenv(). */
CELLAR_API int cellar_pull_opts_from_env(cellar_pull_opts *opts);

typedef struct cellar_pull_file {
    char *path;          /* in the repo */
    uint64_t size;
    uint8_t sha256[32];  /* zero if unknown (a git file not yet downloaded, dry run) */
    char etag[65];       /* the Hub's name: sha256 (LFS) or git blob sha1, hex */
    int downloaded;      /* 1: downloaded (or would be, dry run); 0: reused */
} cellar_pull_file; /* plain data */

typedef struct cellar_pull_result {
    char commit[41];
    uint64_t files_downloaded, bytes_downloaded; /* bytes: received over the network */
    uint64_t files_reused, bytes_reused;
    size_t n;                /* the files of the pull, in listing order */
    cellar_pull_file *files;
    /* The team cache (opts.remote): files and bytes taken from it, files and
     * bytes uploaded to it; remote_rc/remote_message: its first failure
     * (0 and "" if none), which did not fail the pull. */
    uint64_t files_from_remote, bytes_from_remote;
    uint64_t files_shared, bytes_shared;
    int remote_rc;
    char remote_message[512];
} cellar_pull_result; /* plain data */

/* Pulls repo ("ORG/NAME") into store s. out (may be NULL) gets the summary;
 * free it with cellar_pull_result_free. Errors: CELLAR_EINVAL (bad repo name
 * or options), CELLAR_EAUTH (401/403, the message mentions the token),
 * CELLAR_ENOTFOUND (repo, revision or file missing: the message says which;
 * offline: no recorded snapshot), CELLAR_EFORMAT (a malformed answer or an
 * unsafe path listed: nothing written), CELLAR_EMISMATCH (bytes kept not
 * matching after retries: nothing admitted), CELLAR_ENET (gave up after
 * retries), CELLAR_EBUSY, CELLAR_EIO. */
CELLAR_API int cellar_pull(cellar_pull_result *out, cellar_store *s, const char *repo,
                           const cellar_pull_opts *opts);
/* Frees what cellar_pull put in *r (not r itself). NULL-safe. */
CELLAR_API void cellar_pull_result_free(cellar_pull_result *r);

/* ======================================================================
 * Models: references to files to tensors (src/load/, docs/load.md)
 * ====================================================================== */

/* ---- models section ---- */

/* A model reference: where a model's weights are, before they are local.
 * Immutable once made; may be used from several threads. */
typedef struct cellar_ref cellar_ref;

/* A local safetensors file, a PyTorch checkpoint (.bin/.pt/.pth/.ckpt, known
 * by content: cellar_pt_sniff()), a folder of a shard set (its index, else
 * its only .safetensors; a folder with no safetensors: its pytorch_model.bin
 * or diffusion_pytorch_model.bin, or its *.bin.index.json) or a *.index.json
 * (a .bin index names checkpoint shards). path is copied. CELLAR_EINVAL,
 * CELLAR_ENOMEM. */
CELLAR_API int cellar_ref_path(cellar_ref **out, const char *path);
/* An explicit list of files (or folders / indexes), merged in this order. */
CELLAR_API int cellar_ref_files(cellar_ref **out, const char *const *paths, size_t n);
/* The .safetensors entries of one component ("vae", "transformer"...) of a
 * DDUF file, in name order; component "" takes top-level entries. */
CELLAR_API int cellar_ref_dduf(cellar_ref **out, const char *dduf_path, const char *component);
/* A Hub repo ("ORG/NAME"), a revision (NULL: "main") and DiffSynth's
 * origin_file_pattern: NULL, "" or "./" mean every file, a trailing '/'
 * means everything below that folder, fnmatch globs otherwise ('*' crosses
 * '/', as huggingface_hub's fnmatch does). CELLAR_EINVAL for a bad name. */
CELLAR_API int cellar_ref_repo(cellar_ref **out, const char *repo, const char *revision,
                               const char *pattern);
CELLAR_API void cellar_ref_free(cellar_ref *r);

/* Version 2 added offline; a version 1 struct (without it) is still taken. */
#define CELLAR_RESOLVE_OPTS_VERSION 2
#define CELLAR_RESOLVE_OPTS_INIT { .version = CELLAR_RESOLVE_OPTS_VERSION }
typedef struct cellar_resolve_opts {
    unsigned int version;
    const char *base_dir; /* where Hub files are laid out; NULL: "./models" */
    int skip_download;    /* never touch the network: only files already there */
    const char *endpoint; /* as cellar_pull_opts (NULL: the pull's default) */
    const char *token;    /* as cellar_pull_opts */
    unsigned jobs;        /* as cellar_pull_opts */
    cellar_pull_progress_fn progress; /* may be NULL */
    void *progress_ctx;
    int offline; /* as cellar_pull_opts (HF_HUB_OFFLINE): the revision from the
                    store's records, files from its blobs, no network */
} cellar_resolve_opts; /* plain data */

/* Resolves ref to local files, into *files (n paths then a NULL, one
 * allocation: cellar_free(*files)) and *n. Local refs: the files a folder or
 * index names, in shard order; an explicit list keeps its order. A DDUF ref:
 * the archive's path. A Hub ref: the repo is pulled through store s (only
 * blobs the store lacks cross the wire; the listing is always asked for),
 * files matching the pattern laid out as hard links under
 * <base_dir>/<repo>/<path>, and the list sorted by path. With
 * skip_download nothing touches the network (s may be NULL): the files
 * under <base_dir>/<repo> that match are returned, and none is
 * CELLAR_ENOTFOUND naming the folder and pattern. With offline the pull
 * resolves the revision from s's records (a snapshot an earlier pull or
 * import-hf recorded) and lays out the blobs s holds, without the network;
 * a file s lacks is CELLAR_ENOTFOUND. Errors: as
 * cellar_shards_open() and cellar_pull(). */
CELLAR_API int cellar_ref_resolve(char ***files, size_t *n, const cellar_ref *ref,
                                  cellar_store *s, const cellar_resolve_opts *opts);

/* An open model: one merged tensor map over the files of a local ref, each
 * file mapped privately (copy-on-write: writing through a pointer the model
 * hands out never changes the file). The map and the data pointers may be
 * used from several threads; cellar_model_free() must come after every
 * other call has returned. */
typedef struct cellar_model cellar_model;

#define CELLAR_MODEL_LAST_WINS 0x1u /* a name in two files: the later wins */
/* A checkpoint whose objects of unknown globals hold tensors: load the
 * tensors cellar can reach (without it such a file is refused). */
#define CELLAR_MODEL_ALLOW_UNKNOWN 0x2u

#define CELLAR_MODEL_OPTS_VERSION 1
#define CELLAR_MODEL_OPTS_INIT { .version = CELLAR_MODEL_OPTS_VERSION }
typedef struct cellar_model_opts {
    unsigned int version;
    unsigned flags; /* CELLAR_MODEL_* */
} cellar_model_opts; /* plain data */

/* Opens a local ref (path, files or DDUF; a Hub ref must be resolved first:
 * CELLAR_EINVAL). Headers only are read. A tensor name present in two files
 * is CELLAR_EFORMAT naming both, unless CELLAR_MODEL_LAST_WINS. Errors: as
 * cellar_st_open(), cellar_shards_open(), cellar_dduf_open().
 * PyTorch checkpoints are read by cellar_pt_open() (the pickle is never run)
 * and refused as cellar_pt_convert() refuses them (CELLAR_EUNSUPPORTED
 * naming the global): a dangerous global anywhere; an unknown global
 * holding tensors unless CELLAR_MODEL_ALLOW_UNKNOWN; a dtype cellar lacks.
 * Their state dict's tensors join the merged map: a contiguous view is
 * zero-copy in the file's private mapping like a safetensors tensor; a
 * non-contiguous view (a slice, a transpose) is gathered at open, with
 * cellar_pt_read(), into owned memory placed after the file in the same
 * mapping (its offset is past the file's end; tied views share one copy). */
CELLAR_API int cellar_model_open(cellar_model **out, const cellar_ref *ref,
                                 const cellar_model_opts *opts);
CELLAR_API void cellar_model_free(cellar_model *m);

/* One tensor of the merged map. Strings and shape live as long as m. */
typedef struct cellar_model_tensor {
    const char *name; /* length-delimited, NUL-followed */
    size_t name_len;
    cellar_dtype dtype;
    size_t rank;
    const uint64_t *shape;
    uint64_t nelem;
    uint64_t nbytes;
    size_t file;     /* index into the model's files */
    uint64_t offset; /* of the first byte in that file (a DDUF: in the archive) */
} cellar_model_tensor; /* plain data */

/* Tensors sorted by name bytes. */
CELLAR_API size_t cellar_model_count(const cellar_model *m);
/* Tensor i (< count), or NULL. */
CELLAR_API const cellar_model_tensor *cellar_model_tensor_at(const cellar_model *m, size_t i);
/* Index of the tensor named name; CELLAR_ENOTFOUND. */
CELLAR_API int cellar_model_find(size_t *index, const cellar_model *m, const char *name,
                                 size_t name_len);
/* Files, in the order merged; the path (a DDUF: "archive.dduf/entry") and
 * the file's safetensors handle (metadata; NULL for a PyTorch checkpoint),
 * both living as long as m. */
CELLAR_API size_t cellar_model_nfiles(const cellar_model *m);
CELLAR_API const char *cellar_model_file_path(const cellar_model *m, size_t i);
CELLAR_API cellar_st *cellar_model_file_st(const cellar_model *m, size_t i);
/* Zero-copy: a writable pointer to tensor i's nbytes in the private mapping
 * (pages read on first touch). Lives as long as m. CELLAR_EINVAL. */
CELLAR_API int cellar_model_data(void **out, const cellar_model *m, size_t i);
/* The whole private mapping of file i (base, length; a checkpoint's
 * gathered views included): for exporters that hand out one buffer per
 * file. */
CELLAR_API int cellar_model_file_map(void **base, size_t *len, const cellar_model *m, size_t i);

/* Bulk loading. Called when the item-th entry of the call's list is in
 * memory; calls are serialized (never two at once) but come from worker
 * threads. Non-zero stops the load (CELLAR_EUSER). */
typedef int (*cellar_tensor_ready_fn)(size_t item, void *ctx);

/* Version 2 added flags; a version 1 struct (without it) is still taken. */
#define CELLAR_LOAD_OPTS_VERSION 2
#define CELLAR_LOAD_OPTS_INIT { .version = CELLAR_LOAD_OPTS_VERSION }
/* cellar_model_read: ask for 2 MiB pages under fresh destinations (see there). */
#define CELLAR_LOAD_HUGE_PAGES 0x1u
typedef struct cellar_load_opts {
    unsigned int version;
    unsigned nthreads; /* 0: all cores, at most 16 */
    size_t chunk;      /* bytes per piece of work; 0: 8 MiB (populate: 64 MiB) */
    unsigned flags;    /* CELLAR_LOAD_* */
} cellar_load_opts; /* plain data */

/* Brings the pages of n tensors (indices, NULL: all) into the private
 * mapping across threads (MADV_POPULATE_READ, or touching each page on
 * kernels without it): afterwards cellar_model_data() pointers fault no
 * more. No copy. on_ready may be NULL. CELLAR_EINVAL, CELLAR_EUSER. */
CELLAR_API int cellar_model_populate(cellar_model *m, const size_t *indices, size_t n,
                                     const cellar_load_opts *opts, cellar_tensor_ready_fn on_ready,
                                     void *ctx);

/* One tensor to copy into caller memory: dst holds nelem elements of dtype
 * (the tensor's own, or F32/F16/BF16 from F32/F16/BF16). */
typedef struct cellar_read_item {
    size_t tensor;
    void *dst;
    cellar_dtype dtype;
} cellar_read_item; /* plain data */

/* Reads n tensors into caller buffers with pread across threads (8 MiB
 * pieces; converted on the way through a per-thread buffer when the dtype
 * differs). on_ready (may be NULL) hears of each item once all its bytes
 * are in. With CELLAR_LOAD_HUGE_PAGES (for destinations the caller just
 * allocated, as the Python loader's torch.empty tensors), a destination of
 * 4 MiB or more is first advised MADV_HUGEPAGE on its 2 MiB-aligned
 * interior: the first write to fresh memory is mostly page faults, and
 * 2 MiB pages take 512 times fewer (1 GiB: 6-8 s -> 1-2 s on a VM,
 * docs/load.md). The advice changes no byte but stays on the caller's
 * memory, hence opt-in. Errors: CELLAR_EINVAL (a bad index, a conversion not offered),
 * CELLAR_EIO (the message names the file), CELLAR_ENOMEM, CELLAR_EUSER. */
CELLAR_API int cellar_model_read(cellar_model *m, const cellar_read_item *items, size_t n,
                                 const cellar_load_opts *opts, cellar_tensor_ready_fn on_ready,
                                 void *ctx);

/* Converts n elements between F32, F16 and BF16 (same dtype: a copy),
 * rounding to nearest even as torch does; NaN stays NaN (F32->BF16 gives
 * 0x7FC0, as torch). Uses F16C when the CPU has it. CELLAR_EINVAL for other
 * dtypes. Thread-safe. */
CELLAR_API int cellar_convert(void *dst, cellar_dtype dst_dtype, const void *src,
                              cellar_dtype src_dtype, size_t n);

/* The structural hash of the merged map (DiffSynth's hash_model_file over
 * the files) into hash, and (reg may be NULL) its registry entry into
 * *info (NULL when unknown; lives as long as reg). */
CELLAR_API int cellar_model_identify(char hash[33], const cellar_model_info **info,
                                     const cellar_model *m, const cellar_registry *reg);

/* ======================================================================
 * OCI registries: push, pull, the team cache (src/net/oci.c, docs/oci.md)
 * ====================================================================== */

/* ---- oci section ---- */

/* A model in an OCI registry is a CNCF ModelPack artifact: one layer per
 * file (application/vnd.cncf.model.<kind>.v1.raw, digest = the file's
 * sha256, path in org.cncf.model.filepath), a config describing the model,
 * and a manifest naming them. Credentials are never printed and never sent
 * to another host than the registry and its token realm. */
typedef struct cellar_oci_opts {
    unsigned int version;
    int plain_http;            /* http://, no TLS (else https, certificate checked) */
    const char *auth;          /* "USER:PASSWORD", or NULL: docker_config, else anonymous */
    const char *docker_config; /* folder of a Docker config.json, or NULL: none */
    unsigned jobs;             /* transfers at once; 0: 8 */
    uint64_t chunk_size;       /* push: 0 = one PUT per blob; else PATCH chunks of this */
    const char *mount_from;    /* push: a repository of the same registry to mount blobs from */
    /* push: START/FINISH/REUSED per file and PROGRESS every MiB of an
     * upload; non-zero stops the push mid-blob (CELLAR_EUSER, no manifest
     * written). May be NULL. */
    cellar_pull_progress_fn progress;
    void *progress_ctx;
    /* version 2: the user's home folder; with docker_config NULL,
     * home/.docker is the Docker config read. NULL: none. */
    const char *home;
} cellar_oci_opts; /* plain data */
#define CELLAR_OCI_OPTS_VERSION 2
#define CELLAR_OCI_OPTS_INIT { .version = CELLAR_OCI_OPTS_VERSION }

/* Fills what the environment says: auth from $CELLAR_REGISTRY_AUTH,
 * plain_http from $CELLAR_REGISTRY_PLAIN_HTTP=1 (for the team cache), the
 * Docker config folder from $DOCKER_CONFIG, home from $HOME (so ~/.docker
 * is read when DOCKER_CONFIG is unset). The strings point into the
 * environment: valid until it changes (not thread-safe against setenv). */
CELLAR_API int cellar_oci_opts_from_env(cellar_oci_opts *o);

typedef struct cellar_oci_push_result {
    char digest[72];          /* the manifest's "sha256:<hex>" */
    char config_digest[72];
    size_t layers;
    uint64_t blobs_present, blobs_mounted, blobs_uploaded, bytes_uploaded;
} cellar_oci_push_result; /* plain data */

/* Pushes src to ref ("oci://HOST[:PORT]/REPO[:TAG]", tag default "latest").
 * src: a folder (its files are added to the store first: their sha256 is
 * the layer digest) or "ORG/NAME[@REV]" of a snapshot the store records.
 * Every blob the registry holds is skipped (HEAD), else mounted from
 * o->mount_from or a repository this store saw it in, else uploaded; then
 * the config, then the manifest. Errors: CELLAR_EINVAL (bad reference),
 * CELLAR_ENOTFOUND (no such folder or snapshot), CELLAR_EAUTH, CELLAR_ENET,
 * CELLAR_EMISMATCH, CELLAR_EFORMAT (refused manifest). out may be NULL. */
CELLAR_API int cellar_oci_push(cellar_oci_push_result *out, cellar_store *s, const char *src,
                               const char *ref, const cellar_oci_opts *o);

/* Pulls ref ("oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]") into the store by
 * the rules of cellar_pull (only missing blobs, verified while streaming,
 * resumed, parallel) and lays it out as po says (to_dir, hf_cache as
 * models--<REPO with / as -->); the snapshot is recorded as repo
 * "oci://HOST/REPO", revision the tag (or the commit), commit the first 40
 * hex digits of the manifest's digest. ModelPack (vnd.cncf.model.* and the
 * older vnd.cnai.*) .raw layers and .tar layers (unpacked file by file into
 * the store) are read. po: layout, jobs, part_size, progress (may be NULL).
 * Errors: as cellar_pull, CELLAR_EUNSUPPORTED (a compressed layer). */
CELLAR_API int cellar_oci_pull(cellar_pull_result *out, cellar_store *s, const char *ref,
                               const cellar_oci_opts *o, const cellar_pull_opts *po);

/* ======================================================================
 * Format detection (src/format/detect.c)
 * ====================================================================== */

/* ---- detect section ---- */

/* What a path holds, as cellar_detect_format() tells it. Values are only
 * ever appended to. */
typedef enum cellar_format {
    CELLAR_FORMAT_UNKNOWN = 0,     /* not a regular file or folder (FIFO, device...) */
    CELLAR_FORMAT_SAFETENSORS = 1, /* a regular file no other row claims: safetensors has no
                                    * magic (a shard index .json is opened as one too) */
    CELLAR_FORMAT_GGUF = 2,        /* starts with "GGUF" */
    CELLAR_FORMAT_DDUF = 3,        /* starts with a ZIP local header, or is named *.dduf */
    CELLAR_FORMAT_FOLDER = 4,      /* a directory: a model folder (cellar_components()) */
    CELLAR_FORMAT_PYTORCH = 5,     /* a torch checkpoint or bare pickle (cellar_pt_sniff()) */
} cellar_format;

/* Tells the format of path (symlinks followed) from its type and its
 * first bytes; nothing beyond them is read or validated, so the reader of
 * that format may still refuse it. Errors: CELLAR_ENOTFOUND, CELLAR_EIO
 * (naming the path); an unknown kind is not an error (*out UNKNOWN).
 * Thread-safe. */
CELLAR_API int cellar_detect_format(cellar_format *out, const char *path);
/* "safetensors", "gguf", "dduf", "folder", "pytorch", "unknown": a static string. */
CELLAR_API const char *cellar_format_name(cellar_format f);

/* ======================================================================
 * Tensor statistics (src/format/stats.c)
 * ====================================================================== */

/* ---- stats section ---- */

/* Counts over the tensors of safetensors files (shards, DDUF entries) and
 * GGUF files: in total, and per element type (the dtype histogram of a
 * safetensors set, the ggml-type histogram of a GGUF), as inspect shows
 * them. An accumulator: add files, merge accumulators. Not thread-safe:
 * one per thread. */
typedef struct cellar_tensor_stats cellar_tensor_stats;

typedef struct cellar_tensor_totals {
    uint64_t tensors;
    uint64_t params;     /* elements; see params_overflow */
    uint64_t bytes;      /* of tensor data */
    int params_overflow; /* the element count passed 2^64 */
} cellar_tensor_totals; /* plain data */

/* An empty accumulator. CELLAR_ENOMEM. Free with cellar_tensor_stats_free. */
CELLAR_API int cellar_tensor_stats_new(cellar_tensor_stats **out);
CELLAR_API void cellar_tensor_stats_free(cellar_tensor_stats *s);
/* Adds every tensor of a safetensors file. CELLAR_EINVAL. */
CELLAR_API int cellar_tensor_stats_add_st(cellar_tensor_stats *s, const cellar_st *st);
/* Adds every tensor info of a GGUF (its ggml types are rows of their own).
 * CELLAR_EINVAL; CELLAR_EUNSUPPORTED for a type id past 63. */
CELLAR_API int cellar_tensor_stats_add_gguf(cellar_tensor_stats *s, const cellar_gguf *g);
/* Adds every tensor of a PyTorch checkpoint; a dtype safetensors lacks
 * (complex128) is a row of its own. CELLAR_EINVAL. */
CELLAR_API int cellar_tensor_stats_add_pt(cellar_tensor_stats *s, const cellar_pt *pt);
/* Adds the counts of from into into. CELLAR_EINVAL. */
CELLAR_API int cellar_tensor_stats_merge(cellar_tensor_stats *into,
                                         const cellar_tensor_stats *from);
/* The totals (zero for NULL). */
CELLAR_API void cellar_tensor_stats_totals(cellar_tensor_totals *out,
                                           const cellar_tensor_stats *s);
/* The types seen: safetensors dtypes in cellar_dtype order, then ggml types
 * by id. Row i: its name (a static string: "BF16", "Q4_K"...), tensors and
 * bytes. CELLAR_EINVAL past the end. */
CELLAR_API size_t cellar_tensor_stats_type_count(const cellar_tensor_stats *s);
CELLAR_API int cellar_tensor_stats_type_at(const char **name, uint64_t *tensors, uint64_t *bytes,
                                           const cellar_tensor_stats *s, size_t i);

/* ======================================================================
 * Listing trees of files (src/common/walk.c)
 * ====================================================================== */

/* ---- walk section ---- */

/* Also list symlinks that lead to a regular file (hash -r); without it
 * symlinks are left out and the file is listed where it lives (add). */
#define CELLAR_WALK_FILE_SYMLINKS (1u << 0)
/* List only regular files (and with FILE_SYMLINKS symlinks to them): a
 * FIFO, socket or device is told to fn with rc CELLAR_EUNSUPPORTED and a
 * message naming it, not listed (hash -r warns and goes on). */
#define CELLAR_WALK_REGULAR_ONLY (1u << 1)

#define CELLAR_WALK_OPTS_VERSION 1
typedef struct cellar_walk_opts {
    unsigned int version;  /* CELLAR_WALK_OPTS_VERSION */
    unsigned flags;        /* CELLAR_WALK_* */
    const char *skip_dir;  /* a folder never entered (the store's home), or NULL */
} cellar_walk_opts; /* plain data */
#define CELLAR_WALK_OPTS_INIT { CELLAR_WALK_OPTS_VERSION, 0, NULL }

/* Called for each file listed (rc 0, message NULL) and for each entry that
 * cannot be read (rc < 0, message naming it; the walk goes on). path is
 * root joined with the names below it, borrowed for the call. A non-zero
 * return stops the walk. */
typedef int (*cellar_walk_fn)(const char *path, int rc, const char *message, void *ctx);

/* Lists the files under root, depth first, each folder's entries in byte
 * order (strcmp), so a tree lists the same way every time. Folders
 * reached through a symlink are not entered (as find(1) without -L), nor
 * a folder twice, nor opts->skip_dir; root itself is followed if it is a
 * symlink, and a root that is not a folder is listed alone. Entries that
 * are neither folders nor symlinks (FIFOs, devices) are listed (the caller
 * decides) unless CELLAR_WALK_REGULAR_ONLY. opts NULL: defaults. Returns 0; root's error (CELLAR_ENOTFOUND,
 * CELLAR_EIO); CELLAR_ENOMEM (the listing stopped part way: files were
 * left out, never silently); CELLAR_EUSER (fn stopped it); CELLAR_EINVAL.
 * Safe to call from several threads at once; fn runs on the caller's. */
CELLAR_API int cellar_walk_files(const char *root, const cellar_walk_opts *opts,
                                 cellar_walk_fn fn, void *ctx);

/* ======================================================================
 * Checksum lists (src/hash/checklist.c): what `cellar hash -c` checks
 * ====================================================================== */

/* ---- checklist section ---- */

/* A parsed list of "digest  name" lines as sha256sum, b3sum, md5sum,
 * sha1sum and cellar write them: "HEX  NAME", "HEX *NAME" (binary mode),
 * "algo:HEX  NAME" (cellar --tag), "ALGO (NAME) = HEX" (BSD, sha256sum
 * --tag); a line starting with '\' has its name escaped (\\, \n, \r).
 * A bare HEX may be any algorithm of its length (64 digits: sha256 or
 * blake3). Lines end in LF or CRLF. Blank lines, '#' comments and lines
 * that fit none of the forms are counted as malformed, not kept. Not
 * thread-safe: verifying updates the handle (which algorithm matched last
 * is tried first); one handle per thread. */
typedef struct cellar_checklist cellar_checklist;

typedef struct cellar_checklist_line {
    size_t lineno;      /* 1-based line number in the list */
    uint32_t algos;     /* CELLAR_ALGO_BIT()s the digest may be (at least one) */
    const char *name;   /* the file, unescaped, NUL-terminated; lives as long as the list */
    size_t digest_len;  /* bytes */
    uint8_t digest[CELLAR_DIGEST_MAX];
} cellar_checklist_line; /* plain data */

/* Parses len bytes of a list (copied: data may go after the call). algos
 * (0: any) limits what a bare HEX may be, as `hash -c -a ALGO` does. label
 * names the list in messages. Free with cellar_checklist_free. Errors:
 * CELLAR_ENOMEM, CELLAR_EINVAL (bad arguments); malformed lines are not
 * errors (cellar_checklist_malformed). */
CELLAR_API int cellar_checklist_parse(cellar_checklist **out, const void *data, size_t len,
                                      uint32_t algos, const char *label);
CELLAR_API void cellar_checklist_free(cellar_checklist *l);
/* Well-formed lines kept, in list order; line i (NULL past the end). */
CELLAR_API size_t cellar_checklist_count(const cellar_checklist *l);
CELLAR_API const cellar_checklist_line *cellar_checklist_at(const cellar_checklist *l, size_t i);
/* Lines that were blank, comments or fit no form. */
CELLAR_API size_t cellar_checklist_malformed(const cellar_checklist *l);

/* Hashes the file of line i (always from its bytes: the hash cache is
 * neither used nor filled) and sets *match to 1 if one of the line's
 * algorithms gives its digest, else 0. fd >= 0: read that stream instead
 * of opening the name (the name "-" is standard input to the CLI). opts:
 * flags and nthreads (may be NULL). Returns 0 (then *match says), or the
 * error that kept the file from being read (CELLAR_ENOTFOUND, CELLAR_EIO,
 * CELLAR_EUNSUPPORTED, CELLAR_ECHANGED: a "FAILED open or read"). */
CELLAR_API int cellar_checklist_verify(int *match, cellar_checklist *l, size_t i, int fd,
                                       const cellar_hash_opts *opts);

/* ======================================================================
 * Trees of values (src/common/tree.c) and inspect (src/format/inspect.c)
 * ====================================================================== */

/* ---- tree section ---- */

/* A small owned tree of typed values, as JSON has them: what
 * cellar_inspect() returns, readable as a documented struct (no accessor
 * needed), serialisable as JSON, and shown as text by any program that
 * follows the display hints. Immutable once made: any number of threads may
 * read one tree at once; it is freed (every node and string with it) by
 * cellar_tree_free(). */
typedef struct cellar_tree cellar_tree;

/* Node types (cellar_node.type). Values only ever appended to. */
enum {
    CELLAR_NODE_NULL = 0,
    CELLAR_NODE_BOOL = 1,
    CELLAR_NODE_U64 = 2,
    CELLAR_NODE_I64 = 3,
    CELLAR_NODE_F64 = 4,    /* never NaN or infinite (those are NULL) */
    CELLAR_NODE_STRING = 5, /* bytes as the file holds them: not always UTF-8 */
    CELLAR_NODE_ARRAY = 6,
    CELLAR_NODE_OBJECT = 7, /* members in order; keys unique */
};

/* Display hints (cellar_node.hints) for a text view; JSON ignores them. */
#define CELLAR_NODE_HIDDEN 0x1u /* left out of a text view (JSON only: offsets, raw configs) */
#define CELLAR_NODE_ROWS 0x2u   /* an array shown one element per line (a table) */

/* One value. Strings (key, text, str) are length-delimited where a length
 * is given, and always NUL-terminated too; they live as long as the tree. */
typedef struct cellar_node {
    unsigned char type;     /* CELLAR_NODE_* */
    unsigned char hints;    /* CELLAR_NODE_HIDDEN, CELLAR_NODE_ROWS */
    unsigned short reserved;
    uint32_t key_len;
    const char *key;        /* the member's name within an object; NULL elsewhere */
    /* How a text view shows this value, as one line (NULL: as the value
     * itself): "204 bytes", "F32 x3 (36 B)", a model's summary, a long
     * string cut. For an element of an array that is not CELLAR_NODE_ROWS,
     * the heading of its block. Holds untrusted bytes: escape them. */
    const char *text;
    union {
        int b;              /* BOOL: 0 or 1 */
        uint64_t u;         /* U64 */
        int64_t i;          /* I64 */
        double f;           /* F64 */
        struct {
            const char *s;
            size_t len;
        } str;              /* STRING */
        struct {
            const struct cellar_node *first;
            size_t count;
        } list;             /* ARRAY and OBJECT: the first element or member */
    } v;
    const struct cellar_node *next; /* the next element or member of the parent, or NULL */
} cellar_node; /* read-only, owned by its cellar_tree: as thread-safe as the tree */

/* The root node (never NULL for a tree). */
CELLAR_API const cellar_node *cellar_tree_root(const cellar_tree *t);
/* Frees the tree and every node. NULL-safe. */
CELLAR_API void cellar_tree_free(cellar_tree *t);
/* The member of object n named key (NUL-terminated) into *out;
 * CELLAR_ENOTFOUND (*out NULL) when there is none, n being NULL or not an
 * object included (so lookups chain: a missing parent is a missing child). */
CELLAR_API int cellar_node_find(const cellar_node **out, const cellar_node *n, const char *key);

/* Where serialised bytes go: len bytes at data; non-zero stops (CELLAR_EUSER). */
typedef int (*cellar_write_fn)(const void *data, size_t len, void *ctx);
/* Writes n (any node of a tree: its key is not written) as compact JSON in
 * pieces of at most 64 KiB; the memory it holds is bounded by the tree's
 * longest escaped string (a piece boundary may fall inside one).
 * Strings are escaped for any byte: the output is ASCII, other characters
 * as \uXXXX, bytes that are not UTF-8 as U+FFFD. Errors: CELLAR_EUSER,
 * CELLAR_ENOMEM. Thread-safe for a tree only read. */
CELLAR_API int cellar_tree_write_json(const cellar_node *n, cellar_write_fn write, void *ctx);

/* ---- inspect section ---- */

/* What a weight file or model folder holds (cellar_detect_format() decides
 * how to read it), built once by the reader of its format and returned as
 * a tree that a JSON and a text printer show without knowing formats. The
 * root object has:
 *   path, format ("safetensors", "diffusers", "dduf", "gguf", "pytorch";
 *   its text describes it: "safetensors (sharded), 4 files"), the format's
 *   own fields (GGUF: version, alignment, data_offset, metadata; DDUF:
 *   entries, model_index; PyTorch: container, protocol, problem,
 *   dangerous, globals, blocked), model (a pipeline's identification),
 *   components [...], the totals (tensors, parameters, tensor_bytes, size,
 *   dtypes), warnings [...] (only when there are some) and error (only on
 *   failure).
 * Each component: component (name, "" for a single file), path (variant in
 *   a DDUF), format, files [...] (entries [...] in a DDUF), tensors,
 *   parameters, tensor_bytes, size, dtypes {TYPE: {tensors, bytes}},
 *   metadata, structural_hash, model (cellar_identity_tree()'s object, or
 *   null), and with CELLAR_INSPECT_TENSORS tensor_list [{name, dtype,
 *   shape, bytes, offset, file (index in files/entries)}...].
 * docs/formats.md lists every field. */
#define CELLAR_INSPECT_TENSORS 0x1u /* list every tensor (tensor_list) */

#define CELLAR_INSPECT_OPTS_VERSION 1
typedef struct cellar_inspect_opts {
    unsigned int version;            /* CELLAR_INSPECT_OPTS_VERSION */
    unsigned int flags;              /* CELLAR_INSPECT_* */
    const cellar_registry *registry; /* borrowed; NULL: the compiled table */
} cellar_inspect_opts; /* plain data */
#define CELLAR_INSPECT_OPTS_INIT { CELLAR_INSPECT_OPTS_VERSION, 0, NULL }

/* Inspects path (opts NULL: defaults). Returns 0 and the tree in *out, or
 * the error of the reader that refused the path (CELLAR_ENOTFOUND,
 * CELLAR_EFORMAT naming the file and the rule, CELLAR_EUNSUPPORTED,
 * CELLAR_EIO, CELLAR_ENOMEM, CELLAR_EINVAL for a bad opts version); then
 * *out still holds what was read before the error, with the message as
 * the root's "error" (a PyTorch checkpoint that breaks a rule still lists
 * its globals), or NULL when nothing was. Free *out either way. Memory is
 * the readers' plus about 300 bytes per tensor with
 * CELLAR_INSPECT_TENSORS. Thread-safe (each call builds its own tree). */
CELLAR_API int cellar_inspect(cellar_tree **out, const char *path,
                              const cellar_inspect_opts *opts);
/* An identification as the tree inspect puts under "model" (text, kind,
 * base, variant, component, layout, precision, parts, confidence, evidence,
 * rule, declared, conflict, structural, tensors, registry, groups, lora,
 * components); id NULL gives a null root. CELLAR_ENOMEM. */
CELLAR_API int cellar_identity_tree(cellar_tree **out, const cellar_identity *id);

#ifdef __cplusplus
}
#endif
#endif /* CELLAR_H */
