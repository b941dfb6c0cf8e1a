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

int cellar_structural_hash_list(char out[33], const cellar_tensor_desc *t, size_t n)
{
    entry *e = n ? cellar_calloc(2 * n, sizeof *e) : NULL;
    size_t *shape_at = n ? cellar_calloc(n, sizeof *shape_at) : NULL;
    cellar_buf text;
    cellar_buf_init(&text, 0);
    cellar_hasher *h = NULL;
    int rc = n && (!e || !shape_at) ? CELLAR_ENOMEM : 0;
    /* Shape texts go into one buffer first; entries point into it once it
     * stops moving. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        shape_at[i] = text.len;
        rc = cellar_buf_append(&text, t[i].name, t[i].name_len);
        if (rc == 0)
            rc = cellar_buf_append(&text, ":", 1);
        for (size_t d = 0; d < t[i].rank && rc == 0; d++)
            rc = cellar_buf_printf(&text, d ? "_%llu" : "%llu", (unsigned long long)t[i].shape[d]);
    }
    if (rc)
        goto done;
    for (size_t i = 0; i < n; i++) {
        size_t end = i + 1 < n ? shape_at[i + 1] : text.len;
        e[2 * i] = (entry){text.data + shape_at[i], end - shape_at[i]};
        e[2 * i + 1] = (entry){t[i].name, t[i].name_len};
    }
    if (n)
        qsort(e, 2 * n, sizeof *e, cmp_entry);
    if ((rc = cellar_hasher_new(&h, CELLAR_ALGO_BIT(CELLAR_ALGO_MD5), UINT64_MAX)))
        goto done;
    for (size_t i = 0; i < 2 * n; i++) {
        if (i)
            cellar_hasher_update(h, ",", 1);
        cellar_hasher_update(h, e[i].s, e[i].len);
    }
    cellar_digests d;
    if ((rc = cellar_hasher_final(h, &d)) == 0)
        cellar_digest_hex(out, &d, CELLAR_ALGO_MD5);
done:
    cellar_hasher_free(h);
    cellar_buf_free(&text);
    free(shape_at);
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
