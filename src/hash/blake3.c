/* The BLAKE3 hasher: chunk state, the stack of subtree chaining values,
 * extended output, and the three modes (hash, keyed_hash, derive_key).
 *
 * The input is a left-complete binary tree of 1024-byte chunks. Streaming
 * keeps the chunk being filled in the hasher and one CV per complete
 * subtree on a stack; large updates skip the chunk state and hash whole
 * power-of-two subtrees through the kernel's hash_many, many chunks (then
 * many parents) at once, which is where the SIMD speed comes from. */
#include "blake3_impl.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

/* ---- output: what a compression will produce once its role is known ---- */

/* A pending compression: its chaining value is the CV of a chunk or parent,
 * or with ROOT the digest and any amount of extended output. */
typedef struct output {
    uint32_t cv[8];
    uint8_t block[BLAKE3_BLOCK_LEN];
    uint8_t block_len;
    uint64_t counter;
    uint8_t flags;
} output;

static output make_output(const uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                          uint8_t block_len, uint64_t counter, uint8_t flags)
{
    output o;
    memcpy(o.cv, cv, sizeof o.cv);
    memcpy(o.block, block, BLAKE3_BLOCK_LEN);
    o.block_len = block_len;
    o.counter = counter;
    o.flags = flags;
    return o;
}

static void output_chaining_value(const blake3_kernel *k, const output *o,
                                  uint8_t cv[BLAKE3_OUT_LEN])
{
    uint32_t words[8];
    memcpy(words, o->cv, sizeof words);
    k->compress_in_place(words, o->block, o->block_len, o->counter, o->flags);
    blake3_store_cv_words(cv, words);
}

/* Root output bytes [seek, seek + out_len): block i of the output stream is
 * the root compression with counter i. */
static void output_root_bytes(const blake3_kernel *k, const output *o, uint64_t seek, uint8_t *out,
                              size_t out_len)
{
    uint64_t counter = seek / 64;
    size_t offset = (size_t)(seek % 64);
    uint8_t block[64];
    while (out_len > 0) {
        k->compress_xof(o->cv, o->block, o->block_len, counter, o->flags | ROOT, block);
        size_t n = 64 - offset;
        if (n > out_len) n = out_len;
        memcpy(out, block + offset, n);
        out += n;
        out_len -= n;
        offset = 0;
        counter++;
    }
}

static output parent_output(const uint8_t block[BLAKE3_BLOCK_LEN], const uint32_t key[8],
                            uint8_t flags)
{
    return make_output(key, block, BLAKE3_BLOCK_LEN, 0, flags | PARENT);
}

/* ---- the chunk state, kept in the hasher's own fields ---- */

static size_t chunk_len(const cellar_blake3 *h)
{
    return (size_t)h->blocks_compressed * BLAKE3_BLOCK_LEN + h->buf_len;
}

static void chunk_reset(cellar_blake3 *h, uint64_t chunk_counter)
{
    memcpy(h->cv, h->key, sizeof h->cv);
    h->chunk_counter = chunk_counter;
    memset(h->buf, 0, sizeof h->buf);
    h->buf_len = 0;
    h->blocks_compressed = 0;
}

static uint8_t chunk_start_flag(const cellar_blake3 *h)
{
    return h->blocks_compressed == 0 ? CHUNK_START : 0;
}

/* Adds at most the rest of the current chunk. A full block stays buffered
 * until more input arrives, because the last block of a chunk is compressed
 * with CHUNK_END (and maybe ROOT), which is not known before. */
static void chunk_update(const blake3_kernel *k, cellar_blake3 *h, const uint8_t *in, size_t len)
{
    if (h->buf_len > 0) {
        size_t take = BLAKE3_BLOCK_LEN - h->buf_len;
        if (take > len) take = len;
        memcpy(h->buf + h->buf_len, in, take);
        h->buf_len = (uint8_t)(h->buf_len + take);
        in += take;
        len -= take;
        if (len == 0) return;
        k->compress_in_place(h->cv, h->buf, BLAKE3_BLOCK_LEN, h->chunk_counter,
                             h->flags | chunk_start_flag(h));
        h->blocks_compressed++;
        h->buf_len = 0;
        memset(h->buf, 0, sizeof h->buf);
    }
    while (len > BLAKE3_BLOCK_LEN) {
        k->compress_in_place(h->cv, in, BLAKE3_BLOCK_LEN, h->chunk_counter,
                             h->flags | chunk_start_flag(h));
        h->blocks_compressed++;
        in += BLAKE3_BLOCK_LEN;
        len -= BLAKE3_BLOCK_LEN;
    }
    memcpy(h->buf, in, len);
    h->buf_len = (uint8_t)len;
}

static output chunk_output(const cellar_blake3 *h)
{
    return make_output(h->cv, h->buf, h->buf_len, h->chunk_counter,
                       h->flags | chunk_start_flag(h) | CHUNK_END);
}

/* ---- whole subtrees at once, through hash_many ---- */

/* The left subtree of a tree of len bytes (more than one chunk): the
 * largest power-of-two number of chunks that leaves at least one byte for
 * the right. */
static size_t left_len(size_t len)
{
    size_t full_chunks = (len - 1) / BLAKE3_CHUNK_LEN;
    size_t p = 1;
    while (p * 2 <= full_chunks)
        p *= 2;
    return p * BLAKE3_CHUNK_LEN;
}

/* The CVs of up to k->degree chunks (the last may be partial), all in one
 * hash_many call. Returns how many. */
static size_t compress_chunks_parallel(const blake3_kernel *k, const uint8_t *in, size_t len,
                                       const uint32_t key[8], uint64_t chunk_counter, uint8_t flags,
                                       uint8_t *out)
{
    assert(len > 0 && len <= k->degree * BLAKE3_CHUNK_LEN);
    const uint8_t *chunks[BLAKE3_MAX_SIMD_DEGREE];
    size_t n = 0;
    while (len - n * BLAKE3_CHUNK_LEN >= BLAKE3_CHUNK_LEN) {
        chunks[n] = in + n * BLAKE3_CHUNK_LEN;
        n++;
    }
    k->hash_many(chunks, n, BLAKE3_CHUNK_LEN / BLAKE3_BLOCK_LEN, key, chunk_counter, true, flags,
                 CHUNK_START, CHUNK_END, out);
    size_t done = n * BLAKE3_CHUNK_LEN;
    if (len > done) {
        /* A partial last chunk is never the root here: the caller has
         * more than one chunk or will combine this CV with others. */
        cellar_blake3 partial;
        memcpy(partial.key, key, sizeof partial.key);
        partial.flags = flags;
        chunk_reset(&partial, chunk_counter + n);
        chunk_update(k, &partial, in + done, len - done);
        output o = chunk_output(&partial);
        output_chaining_value(k, &o, out + n * BLAKE3_OUT_LEN);
        n++;
    }
    return n;
}

/* Pairs of CVs to parent CVs, up to k->degree parents in one hash_many
 * call; an odd CV at the end is passed through. Returns how many. */
static size_t compress_parents_parallel(const blake3_kernel *k, const uint8_t *cvs, size_t num_cvs,
                                        const uint32_t key[8], uint8_t flags, uint8_t *out)
{
    assert(num_cvs >= 2 && num_cvs <= 2 * BLAKE3_MAX_SIMD_DEGREE_OR_2);
    const uint8_t *parents[BLAKE3_MAX_SIMD_DEGREE_OR_2];
    size_t n = 0;
    while (num_cvs - 2 * n >= 2) {
        parents[n] = cvs + 2 * n * BLAKE3_OUT_LEN;
        n++;
    }
    k->hash_many(parents, n, 1, key, 0, false, flags | PARENT, 0, 0, out);
    if (num_cvs > 2 * n) {
        memcpy(out + n * BLAKE3_OUT_LEN, cvs + 2 * n * BLAKE3_OUT_LEN, BLAKE3_OUT_LEN);
        n++;
    }
    return n;
}

/* Reduces a subtree to at most max(degree, 2) CVs, its top nodes, left to
 * right, and returns how many. Recursing on the left-complete split keeps
 * every hash_many call full except at the right edge. At degree 1 a
 * two-chunk tree still gives two CVs, so that the caller, not this
 * function, decides which node is the root. */
static size_t compress_subtree_wide(const blake3_kernel *k, const uint8_t *in, size_t len,
                                    const uint32_t key[8], uint64_t chunk_counter, uint8_t flags,
                                    uint8_t *out)
{
    if (len <= k->degree * BLAKE3_CHUNK_LEN)
        return compress_chunks_parallel(k, in, len, key, chunk_counter, flags, out);

    size_t left = left_len(len);
    size_t degree = k->degree;
    if (left > BLAKE3_CHUNK_LEN && degree == 1) degree = 2;
    uint8_t cvs[2 * BLAKE3_MAX_SIMD_DEGREE_OR_2 * BLAKE3_OUT_LEN];
    size_t left_n = compress_subtree_wide(k, in, left, key, chunk_counter, flags, cvs);
    size_t right_n = compress_subtree_wide(k, in + left, len - left, key,
                                           chunk_counter + left / BLAKE3_CHUNK_LEN, flags,
                                           cvs + degree * BLAKE3_OUT_LEN);
    /* The left side is a full power-of-two subtree, so it filled all its
     * slots and the right CVs follow it without a gap. */
    assert(left_n == degree);
    if (left_n == 1) {
        memcpy(out, cvs, 2 * BLAKE3_OUT_LEN);
        return 2;
    }
    return compress_parents_parallel(k, cvs, left_n + right_n, key, flags, out);
}

/* The two CVs under the top node of a subtree of more than one chunk. The
 * top node itself is not compressed: it may turn out to be the root. */
static void compress_subtree_to_parent_node(const blake3_kernel *k, const uint8_t *in, size_t len,
                                            const uint32_t key[8], uint64_t chunk_counter,
                                            uint8_t flags, uint8_t out[2 * BLAKE3_OUT_LEN])
{
    assert(len > BLAKE3_CHUNK_LEN);
    uint8_t cvs[BLAKE3_MAX_SIMD_DEGREE_OR_2 * BLAKE3_OUT_LEN];
    size_t n = compress_subtree_wide(k, in, len, key, chunk_counter, flags, cvs);
    while (n > 2) {
        uint8_t parents[BLAKE3_MAX_SIMD_DEGREE_OR_2 * BLAKE3_OUT_LEN / 2];
        n = compress_parents_parallel(k, cvs, n, key, flags, parents);
        memcpy(cvs, parents, n * BLAKE3_OUT_LEN);
    }
    memcpy(out, cvs, 2 * BLAKE3_OUT_LEN);
}

/* ---- the CV stack ---- */

/* Merges finished subtrees so that the stack holds one CV per 1 bit of
 * total_chunks. Merging is lazy, only when more input arrives, because the
 * last merge of the input is the root and needs ROOT. */
static void merge_cv_stack(const blake3_kernel *k, cellar_blake3 *h, uint64_t total_chunks)
{
    size_t keep = (size_t)__builtin_popcountll(total_chunks);
    while (h->cv_stack_len > keep) {
        uint8_t *pair = h->cv_stack + (h->cv_stack_len - 2) * BLAKE3_OUT_LEN;
        output o = parent_output(pair, h->key, h->flags);
        output_chaining_value(k, &o, pair);
        h->cv_stack_len--;
    }
}

/* Pushes the CV of a subtree that starts at chunk chunk_counter. */
static void push_cv(const blake3_kernel *k, cellar_blake3 *h, const uint8_t cv[BLAKE3_OUT_LEN],
                    uint64_t chunk_counter)
{
    merge_cv_stack(k, h, chunk_counter);
    assert(h->cv_stack_len <= BLAKE3_MAX_DEPTH);
    memcpy(h->cv_stack + h->cv_stack_len * BLAKE3_OUT_LEN, cv, BLAKE3_OUT_LEN);
    h->cv_stack_len++;
}

/* ---- the public hasher ---- */

static void hasher_init(cellar_blake3 *h, const uint32_t key[8], uint8_t flags)
{
    memcpy(h->key, key, sizeof h->key);
    h->flags = flags;
    chunk_reset(h, 0);
    h->cv_stack_len = 0;
}

void cellar_blake3_init(cellar_blake3 *h)
{
    hasher_init(h, BLAKE3_IV, 0);
}

void cellar_blake3_init_keyed(cellar_blake3 *h, const uint8_t key[CELLAR_BLAKE3_KEY_LEN])
{
    uint32_t words[8];
    blake3_load_key_words(key, words);
    hasher_init(h, words, KEYED_HASH);
}

void cellar_blake3_init_derive_key(cellar_blake3 *h, const char *context)
{
    /* The context string is hashed in its own mode; its digest is the key
     * of the material hash. */
    cellar_blake3 ctx;
    hasher_init(&ctx, BLAKE3_IV, DERIVE_KEY_CONTEXT);
    cellar_blake3_update(&ctx, context, strlen(context));
    uint8_t context_key[BLAKE3_KEY_LEN];
    cellar_blake3_finalize(&ctx, context_key, BLAKE3_KEY_LEN);
    uint32_t words[8];
    blake3_load_key_words(context_key, words);
    hasher_init(h, words, DERIVE_KEY_MATERIAL);
}

void cellar_blake3_update(cellar_blake3 *h, const void *data, size_t len)
{
    if (len == 0) return; /* data may be NULL then */
    const blake3_kernel *k = blake3_kernel_get();
    const uint8_t *in = data;

    /* Finish a chunk begun by an earlier update. */
    if (chunk_len(h) > 0) {
        size_t take = BLAKE3_CHUNK_LEN - chunk_len(h);
        if (take > len) take = len;
        chunk_update(k, h, in, take);
        in += take;
        len -= take;
        if (len == 0) return;
        /* More input follows, so this chunk is not the root. */
        output o = chunk_output(h);
        uint8_t cv[BLAKE3_OUT_LEN];
        output_chaining_value(k, &o, cv);
        push_cv(k, h, cv, h->chunk_counter);
        chunk_reset(h, h->chunk_counter + 1);
    }

    /* Whole subtrees, as large as the input and the tree's alignment allow:
     * a subtree starting at chunk c may hold 2^k chunks only if 2^k divides
     * c. The last chunk always stays in the chunk state, because it might
     * be the root. */
    while (len > BLAKE3_CHUNK_LEN) {
        size_t subtree = (size_t)1 << (63 - __builtin_clzll((unsigned long long)len));
        uint64_t done_bytes = h->chunk_counter * BLAKE3_CHUNK_LEN;
        while (((uint64_t)(subtree - 1) & done_bytes) != 0)
            subtree /= 2;
        uint64_t subtree_chunks = subtree / BLAKE3_CHUNK_LEN;
        if (subtree <= BLAKE3_CHUNK_LEN) {
            cellar_blake3 one;
            memcpy(one.key, h->key, sizeof one.key);
            one.flags = h->flags;
            chunk_reset(&one, h->chunk_counter);
            chunk_update(k, &one, in, subtree);
            output o = chunk_output(&one);
            uint8_t cv[BLAKE3_OUT_LEN];
            output_chaining_value(k, &o, cv);
            push_cv(k, h, cv, h->chunk_counter);
        } else {
            uint8_t pair[2 * BLAKE3_OUT_LEN];
            compress_subtree_to_parent_node(k, in, subtree, h->key, h->chunk_counter, h->flags,
                                            pair);
            push_cv(k, h, pair, h->chunk_counter);
            push_cv(k, h, pair + BLAKE3_OUT_LEN, h->chunk_counter + subtree_chunks / 2);
        }
        h->chunk_counter += subtree_chunks;
        in += subtree;
        len -= subtree;
    }

    if (len > 0) {
        chunk_update(k, h, in, len);
        merge_cv_stack(k, h, h->chunk_counter);
    }
}

void cellar_blake3_finalize_seek(const cellar_blake3 *h, uint64_t seek, uint8_t *out,
                                 size_t out_len)
{
    const blake3_kernel *k = blake3_kernel_get();
    if (out_len == 0) return;
    if (h->cv_stack_len == 0) {
        output o = chunk_output(h);
        output_root_bytes(k, &o, seek, out, out_len);
        return;
    }
    /* Fold the stack from the right: the chunk state (or the top two CVs,
     * if the input ended on a subtree boundary) under each CV below. */
    output o;
    size_t remaining;
    if (chunk_len(h) > 0) {
        o = chunk_output(h);
        remaining = h->cv_stack_len;
    } else {
        o = parent_output(h->cv_stack + (h->cv_stack_len - 2) * BLAKE3_OUT_LEN, h->key, h->flags);
        remaining = h->cv_stack_len - 2;
    }
    while (remaining > 0) {
        remaining--;
        uint8_t block[BLAKE3_BLOCK_LEN];
        memcpy(block, h->cv_stack + remaining * BLAKE3_OUT_LEN, BLAKE3_OUT_LEN);
        output_chaining_value(k, &o, block + BLAKE3_OUT_LEN);
        o = parent_output(block, h->key, h->flags);
    }
    output_root_bytes(k, &o, seek, out, out_len);
}

void cellar_blake3_finalize(const cellar_blake3 *h, uint8_t *out, size_t out_len)
{
    cellar_blake3_finalize_seek(h, 0, out, out_len);
}

/* ---- many threads ---- */

/* A large input is cut into units, aligned subtrees of the same
 * power-of-two number of chunks; threads reduce units to CVs, then the
 * calling thread pushes the CVs on the stack in order, which builds the
 * same stack the streaming hasher would. Threads are started per batch of
 * units: against hundreds of megabytes their cost is nothing, and there is
 * no pool to tear down or to break across fork(). */

#define MAX_THREADS 64
/* Units per batch: bounds the CV array (32 KiB) whatever the input size. */
#define BATCH_UNITS 1024

struct subtree_job {
    const blake3_kernel *k;
    const uint8_t *data; /* the input in memory, or NULL to read it from fd */
    int fd;
    size_t unit_len; /* bytes per unit: a power-of-two number of chunks */
    size_t first;    /* the batch: units [first, end) */
    size_t end;
    const uint32_t *key;
    uint8_t flags;
    uint8_t *cvs; /* the batch's CVs, in input order */
    size_t next;  /* the next unit nobody has taken (atomic) */
    int err;      /* atomic: 0, the errno of a failed read, -1: file too short,
                   * or STOPPED */
    cellar_progress_fn progress; /* called on the thread `caller` only */
    void *progress_ctx;
    pthread_t caller;
    uint64_t size;
};

#define STOPPED (-2) /* the progress callback asked to stop */

static bool stop_asked(const struct subtree_job *j, uint64_t done)
{
    if (!j->progress || !pthread_equal(pthread_self(), j->caller))
        return false;
    cellar_progress p = {.bytes_done = done, .bytes_total = j->size};
    return j->progress(&p, j->progress_ctx) != 0;
}

/* The CV of one whole unit, a subtree that is not the root of the input. */
static void subtree_cv(const struct subtree_job *j, const uint8_t *in, uint64_t chunk_counter,
                       uint8_t cv[BLAKE3_OUT_LEN])
{
    if (j->unit_len == BLAKE3_CHUNK_LEN) {
        j->k->hash_many(&in, 1, BLAKE3_CHUNK_LEN / BLAKE3_BLOCK_LEN, j->key, chunk_counter, true,
                        j->flags, CHUNK_START, CHUNK_END, cv);
        return;
    }
    uint8_t pair[2 * BLAKE3_OUT_LEN];
    compress_subtree_to_parent_node(j->k, in, j->unit_len, j->key, chunk_counter, j->flags, pair);
    output o = parent_output(pair, j->key, j->flags);
    output_chaining_value(j->k, &o, cv);
}

static void job_fail(struct subtree_job *j, int err)
{
    int none = 0;
    __atomic_compare_exchange_n(&j->err, &none, err, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/* Threads take units one at a time, so a thread slowed by other work on
 * the machine does not hold the others up. Reading a file, each thread
 * preads a unit into its own buffer, small enough to stay in its cache
 * while it is hashed: cheaper, on the machines measured, than faulting in
 * a memory map of the page cache. */
static void *subtree_worker(void *arg)
{
    struct subtree_job *j = arg;
    uint8_t *buf = NULL;
    if (!j->data && !(buf = malloc(j->unit_len))) {
        job_fail(j, ENOMEM);
        return NULL;
    }
    uint64_t unit_chunks = j->unit_len / BLAKE3_CHUNK_LEN;
    while (!__atomic_load_n(&j->err, __ATOMIC_RELAXED)) {
        size_t unit = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (unit >= j->end) break;
        const uint8_t *in;
        if (j->data) {
            in = j->data + unit * j->unit_len;
        } else {
            ssize_t n = cellar_full_pread(j->fd, buf, j->unit_len, (uint64_t)unit * j->unit_len);
            if (n != (ssize_t)j->unit_len) {
                job_fail(j, n < 0 ? errno : -1);
                break;
            }
            in = buf;
        }
        subtree_cv(j, in, (uint64_t)unit * unit_chunks,
                   j->cvs + (unit - j->first) * BLAKE3_OUT_LEN);
        if (stop_asked(j, (uint64_t)(unit + 1) * j->unit_len)) {
            job_fail(j, STOPPED);
            break;
        }
    }
    free(buf);
    return NULL;
}

/* Hashes units [first, end) on nthreads threads, the caller's among them,
 * and pushes their CVs on h's stack. Returns the job's error (0 if none). */
static int run_batch(struct subtree_job *j, cellar_blake3 *h, size_t first, size_t end,
                     unsigned nthreads)
{
    j->first = first;
    j->end = end;
    j->next = first;
    pthread_t threads[MAX_THREADS];
    unsigned started = 0;
    while (started + 1 < nthreads && started + 1 < end - first &&
           pthread_create(&threads[started], NULL, subtree_worker, j) == 0)
        started++;
    subtree_worker(j);
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    if (j->err) return j->err;
    uint64_t unit_chunks = j->unit_len / BLAKE3_CHUNK_LEN;
    for (size_t u = first; u < end; u++)
        push_cv(j->k, h, j->cvs + (u - first) * BLAKE3_OUT_LEN, (uint64_t)u * unit_chunks);
    chunk_reset(h, (uint64_t)end * unit_chunks);
    return 0;
}

/* Everything but the last 1 to unit_len bytes, in units: that last piece
 * holds the last chunk, which may be the root's, so it goes through
 * update. Sets *done to the bytes hashed (0 if the input is too small for
 * two units or h is not fresh). Returns the job's error (0 if none). */
static int run_units(struct subtree_job *j, cellar_blake3 *h, uint64_t len, unsigned nthreads,
                     uint64_t *done)
{
    *done = 0;
    bool fresh = h->chunk_counter == 0 && chunk_len(h) == 0 && h->cv_stack_len == 0;
    uint64_t units = len > 0 ? (len - 1) / j->unit_len : 0;
    if (!fresh || units < 2) return 0;
    if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
    uint8_t cvs[BATCH_UNITS * BLAKE3_OUT_LEN];
    j->cvs = cvs;
    for (uint64_t first = 0; first < units; first += BATCH_UNITS) {
        uint64_t end = units - first > BATCH_UNITS ? first + BATCH_UNITS : units;
        int err = run_batch(j, h, (size_t)first, (size_t)end, nthreads);
        if (err) return err;
    }
    *done = units * j->unit_len;
    return 0;
}

void blake3_update_subtrees(cellar_blake3 *h, const void *data, size_t len, unsigned nthreads,
                            size_t unit_len)
{
    assert(unit_len >= BLAKE3_CHUNK_LEN && (unit_len & (unit_len - 1)) == 0);
    struct subtree_job job = {
        .k = blake3_kernel_get(),
        .data = data,
        .fd = -1,
        .unit_len = unit_len,
        .key = h->key,
        .flags = h->flags,
    };
    uint64_t done = 0;
    run_units(&job, h, len, nthreads, &done); /* no error without a file */
    if (len > done)
        cellar_blake3_update(h, (const uint8_t *)data + done, len - (size_t)done);
}

/* Below this a thread costs more to start than it saves. */
#define PARALLEL_MIN_LEN (256 * 1024)

void blake3_update_parallel(cellar_blake3 *h, const void *data, size_t len, unsigned nthreads)
{
    if (nthreads == 0) nthreads = cellar_ncpus();
    if (nthreads <= 1 || len < PARALLEL_MIN_LEN) {
        cellar_blake3_update(h, data, len);
        return;
    }
    /* About 8 units per thread balance the load when threads run at
     * different speeds; beyond 1 MiB larger units gain nothing. */
    size_t unit = 64 * 1024;
    while (unit < 1024 * 1024 && unit < len / (8 * (size_t)nthreads))
        unit *= 2;
    blake3_update_subtrees(h, data, len, nthreads, unit);
}

/* Units of a file: large enough that reads are efficient, small enough to
 * stay in a core's cache between the copy and the hashing. */
#define FILE_UNIT_LEN (1024 * 1024)

int blake3_update_fd(cellar_blake3 *h, int fd, uint64_t size, unsigned nthreads, const char *path,
                     cellar_progress_fn progress, void *ctx)
{
    if (nthreads == 0) nthreads = cellar_ncpus();
    struct subtree_job job = {
        .k = blake3_kernel_get(),
        .fd = fd,
        .unit_len = FILE_UNIT_LEN,
        .key = h->key,
        .flags = h->flags,
        .progress = progress,
        .progress_ctx = ctx,
        .caller = pthread_self(),
        .size = size,
    };
    uint64_t off = 0;
    int err = run_units(&job, h, size, nthreads, &off);
    uint8_t *buf = NULL;
    if (!err && off < size && !(buf = malloc(FILE_UNIT_LEN))) err = ENOMEM;
    /* The rest (or all of a small file, or a hasher that had input
     * already) in order on this thread. */
    while (!err && off < size) {
        size_t want = size - off < FILE_UNIT_LEN ? (size_t)(size - off) : FILE_UNIT_LEN;
        ssize_t n = cellar_full_pread(fd, buf, want, off);
        if (n != (ssize_t)want)
            err = n < 0 ? errno : -1;
        else
            cellar_blake3_update(h, buf, want);
        off += want;
        if (!err && stop_asked(&job, off)) err = STOPPED;
    }
    free(buf);
    if (err == STOPPED) return cellar_stopped(path);
    if (err == -1)
        return cellar_fail(CELLAR_ECHANGED, "%s: file ended before its %llu bytes", path,
                           (unsigned long long)size);
    if (err) return cellar_fail_errno(err, "%s", path);
    return 0;
}

void cellar_blake3_hash_parallel(const void *data, size_t len, unsigned nthreads,
                                 uint8_t out[CELLAR_BLAKE3_OUT_LEN])
{
    cellar_blake3 h;
    cellar_blake3_init(&h);
    blake3_update_parallel(&h, data, len, nthreads);
    cellar_blake3_finalize(&h, out, CELLAR_BLAKE3_OUT_LEN);
}
