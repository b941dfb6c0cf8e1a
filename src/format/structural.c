/* The structural hash (DiffSynth-Studio's hash_model_file).
 *
 * The hash identifies an architecture, not weights: for every tensor name
 * two entries, "name:d0_d1..." and "name", all sorted as byte strings
 * (UTF-8 byte order is Python's code-point order), joined by ',' and
 * md5-hashed. A shard set hashes as the union of its files, so splitting a
 * model does not change it. */
#include "structural.h"

#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    const char *s;
    size_t len;
} entry;

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return cellar_st_name_cmp(x->s, x->len, y->s, y->len);
}

static size_t digits(uint64_t v)
{
    size_t k = 1;
    while (v >= 10) {
        v /= 10;
        k++;
    }
    return k;
}

int cellar_structural_hash_list(char out[33], const cellar_tensor_desc *t, size_t n)
{
    /* The "name:d0_d1" texts go into one buffer sized first (no regrowth);
     * entries point into it and at the names. */
    size_t size = 1;
    for (size_t i = 0; i < n; i++) {
        size_t k = t[i].name_len + 1 + (t[i].rank ? t[i].rank - 1 : 0);
        for (size_t d = 0; d < t[i].rank; d++)
            k += digits(t[i].shape[d]);
        if (ck_add(size, k, &size))
            return cellar_fail(CELLAR_ERANGE, "structural hash: names too long");
    }
    entry *e = n ? cellar_calloc(2 * n, sizeof *e) : NULL;
    char *text = cellar_malloc(size);
    cellar_hasher *h = NULL;
    int rc = (n && !e) || !text ? CELLAR_ENOMEM : 0;
    if (rc)
        goto done;
    char *w = text;
    for (size_t i = 0; i < n; i++) {
        char *start = w;
        memcpy(w, t[i].name, t[i].name_len);
        w += t[i].name_len;
        *w++ = ':';
        for (size_t d = 0; d < t[i].rank; d++) {
            if (d)
                *w++ = '_';
            size_t k = digits(t[i].shape[d]);
            uint64_t v = t[i].shape[d];
            for (size_t j = k; j-- > 0; v /= 10)
                w[j] = (char)('0' + v % 10);
            w += k;
        }
        e[2 * i] = (entry){start, (size_t)(w - start)};
        e[2 * i + 1] = (entry){t[i].name, t[i].name_len};
    }
    if (n)
        qsort(e, 2 * n, sizeof *e, cmp_entry);
    if ((rc = cellar_hasher_new(&h, CELLAR_ALGO_BIT(CELLAR_ALGO_MD5), UINT64_MAX)))
        goto done;
    /* Joined through a block buffer: a few large updates, not 4n small. */
    char block[1 << 15];
    size_t used = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        const char *p = e[i].s;
        size_t left = e[i].len + (i != 0);
        bool comma = i != 0;
        while (left) {
            if (used == sizeof block) {
                cellar_hasher_update(h, block, used);
                used = 0;
            }
            if (comma) {
                block[used++] = ',';
                comma = false;
                left--;
                continue;
            }
            size_t k = left < sizeof block - used ? left : sizeof block - used;
            memcpy(block + used, p, k);
            used += k;
            p += k;
            left -= k;
        }
    }
    if (used)
        cellar_hasher_update(h, block, used);
    cellar_digests d;
    if ((rc = cellar_hasher_final(h, &d)) == 0)
        cellar_digest_hex(out, &d, CELLAR_ALGO_MD5);
done:
    cellar_hasher_free(h);
    free(text);
    free(e);
    return rc;
}

typedef struct named {
    const cellar_st_tensor *t;
    size_t file;
} named;

static int cmp_named(const void *a, const void *b)
{
    const named *x = a, *y = b;
    int c = cellar_st_name_cmp(x->t->name, x->t->name_len, y->t->name, y->t->name_len);
    return c ? c : (x->file > y->file) - (x->file < y->file);
}

int cellar_structural_hash_st(char out[33], cellar_st *const *files, size_t nfiles)
{
    size_t n = 0;
    for (size_t f = 0; f < nfiles; f++)
        n += cellar_st_count(files[f]);
    named *all = n ? cellar_calloc(n, sizeof *all) : NULL;
    cellar_tensor_desc *t = n ? cellar_calloc(n, sizeof *t) : NULL;
    if (n && (!all || !t)) {
        free(all);
        free(t);
        return CELLAR_ENOMEM;
    }
    size_t k = 0;
    for (size_t f = 0; f < nfiles; f++)
        for (size_t i = 0; i < cellar_st_count(files[f]); i++)
            all[k++] = (named){cellar_st_tensor_at(files[f], i), f};
    if (n)
        qsort(all, n, sizeof *all, cmp_named);
    /* Union: a later file's duplicate replaces an earlier one. */
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && cellar_st_name_cmp(all[i].t->name, all[i].t->name_len, all[i + 1].t->name,
                                            all[i + 1].t->name_len) == 0)
            continue;
        t[nt++] = (cellar_tensor_desc){.name = all[i].t->name,
                                       .name_len = all[i].t->name_len,
                                       .rank = all[i].t->rank,
                                       .shape = all[i].t->shape};
    }
    int rc = cellar_structural_hash_list(out, t, nt);
    free(all);
    free(t);
    return rc;
}

int cellar_structural_hash(char out[33], const char *path)
{
    cellar_shards *s;
    int rc = cellar_shards_open(&s, path);
    if (rc)
        return rc;
    cellar_st **files = cellar_calloc(cellar_shards_nfiles(s), sizeof *files);
    if (!files) {
        cellar_shards_free(s);
        return CELLAR_ENOMEM;
    }
    for (size_t i = 0; i < cellar_shards_nfiles(s); i++)
        files[i] = cellar_shards_file(s, i);
    rc = cellar_structural_hash_st(out, files, cellar_shards_nfiles(s));
    free(files);
    cellar_shards_free(s);
    return rc;
}
