/* The structural hash (DiffSynth-Studio's hash_model_file).
 *
 * The hash identifies an architecture, not weights: for every tensor name
 * two entries, "name:d0_d1..." and "name", all sorted as byte strings
 * (UTF-8 byte order is Python's code-point order), joined by ',' and
 * md5-hashed. A shard set hashes as the union of its files, so splitting a
 * model does not change it. */
#include "structural.h"

#include "safetensors.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* The "name" entries and the "name:d0_d1" entries each sorted, then merged
 * while md5 eats the joined text in blocks. In name order the shape
 * entries are nearly sorted already ("a:2" moves only past names that
 * extend "a" with a byte below ':'), so an insertion sort with a move
 * budget does it, qsort when the budget runs out. */
static void sort_entries(entry *e, size_t n, bool nearly_sorted)
{
    size_t budget = nearly_sorted ? 4 * n + 64 : 0;
    for (size_t i = 1; i < n && budget; i++) {
        entry x = e[i];
        size_t j = i;
        while (j > 0 && cmp_entry(&e[j - 1], &x) > 0 && budget) {
            e[j] = e[j - 1];
            j--;
            budget--;
        }
        e[j] = x;
    }
    if (!budget && n > 1)
        qsort(e, n, sizeof *e, cmp_entry);
}

/* Appends len bytes to the block, flushing it to h when full. */
static void feed(cellar_hasher *h, char *block, size_t size, size_t *used, const char *p,
                 size_t len)
{
    while (len) {
        if (*used == size) {
            cellar_hasher_update(h, block, *used);
            *used = 0;
        }
        size_t k = len < size - *used ? len : size - *used;
        memcpy(block + *used, p, k);
        *used += k;
        p += k;
        len -= k;
    }
}

int cellar_structural_hash_ptrs(char out[33], const cellar_tensor_desc *const *t, size_t n,
                                bool name_sorted)
{
    /* The "name:d0_d1" texts go into one buffer sized first (no regrowth). */
    size_t size = 1;
    for (size_t i = 0; i < n; i++) {
        size_t k = t[i]->name_len + 1 + (t[i]->rank ? t[i]->rank - 1 : 0);
        for (size_t d = 0; d < t[i]->rank; d++)
            k += digits(t[i]->shape[d]);
        if (ck_add(size, k, &size))
            return cellar_fail(CELLAR_ERANGE, "structural hash: names too long");
    }
    entry *names = n ? cellar_calloc(n, sizeof *names) : NULL;
    entry *shapes = n ? cellar_calloc(n, sizeof *shapes) : NULL;
    char *text = cellar_malloc(size);
    cellar_hasher *h = NULL;
    int rc = (n && (!names || !shapes)) || !text ? CELLAR_ENOMEM : 0;
    if (rc)
        goto done;
    char *w = text;
    for (size_t i = 0; i < n; i++) {
        char *start = w;
        memcpy(w, t[i]->name, t[i]->name_len);
        w += t[i]->name_len;
        *w++ = ':';
        for (size_t d = 0; d < t[i]->rank; d++) {
            if (d)
                *w++ = '_';
            size_t k = digits(t[i]->shape[d]);
            uint64_t v = t[i]->shape[d];
            for (size_t j = k; j-- > 0; v /= 10)
                w[j] = (char)('0' + v % 10);
            w += k;
        }
        shapes[i] = (entry){start, (size_t)(w - start)};
        names[i] = (entry){t[i]->name, t[i]->name_len};
    }
    if (!name_sorted && n > 1)
        qsort(names, n, sizeof *names, cmp_entry);
    sort_entries(shapes, n, name_sorted);
    if ((rc = cellar_hasher_new(&h, CELLAR_ALGO_BIT(CELLAR_ALGO_MD5), UINT64_MAX)))
        goto done;
    char block[1 << 15];
    size_t used = 0;
    for (size_t a = 0, b = 0; a < n || b < n;) {
        const entry *x = b == n || (a < n && cmp_entry(&names[a], &shapes[b]) <= 0) ? &names[a++]
                                                                                     : &shapes[b++];
        if (a + b > 1)
            feed(h, block, sizeof block, &used, ",", 1);
        feed(h, block, sizeof block, &used, x->s, x->len);
    }
    if (used)
        cellar_hasher_update(h, block, used);
    cellar_digests d;
    if ((rc = cellar_hasher_final(&d, h)) == 0) cellar_digest_hex(out, &d, CELLAR_ALGO_MD5);
done:
    cellar_hasher_free(h);
    free(text);
    free(names);
    free(shapes);
    return rc;
}

int cellar_structural_hash_list(char out[33], const cellar_tensor_desc *t, size_t n)
{
    const cellar_tensor_desc **p = n ? cellar_calloc(n, sizeof *p) : NULL;
    if (n && !p)
        return CELLAR_ENOMEM;
    for (size_t i = 0; i < n; i++)
        p[i] = &t[i];
    int rc = cellar_structural_hash_ptrs(out, p, n, false);
    free(p);
    return rc;
}

static int cmp_member(const void *a, const void *b)
{
    const cellar_st_member *x = a, *y = b;
    int c = cellar_st_name_cmp(x->t->name, x->t->name_len, y->t->name, y->t->name_len);
    return c ? c : (x->file > y->file) - (x->file < y->file);
}

int cellar_st_union(cellar_st_member **out, size_t *nout, cellar_st *const *files, size_t nfiles)
{
    *out = NULL;
    *nout = 0;
    size_t n = 0;
    for (size_t f = 0; f < nfiles; f++)
        n += cellar_st_count(files[f]);
    if (!n)
        return 0;
    cellar_st_member *all = cellar_calloc(n, sizeof *all);
    if (!all)
        return CELLAR_ENOMEM;
    size_t k = 0;
    for (size_t f = 0; f < nfiles; f++)
        for (size_t i = 0; i < cellar_st_count(files[f]); i++)
            all[k++] = (cellar_st_member){cellar_st_tensor_at(files[f], i), f};
    qsort(all, n, sizeof *all, cmp_member);
    /* Ties sort by file: keep only the last of each run of one name. */
    size_t nu = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && cellar_st_name_cmp(all[i].t->name, all[i].t->name_len, all[i + 1].t->name,
                                            all[i + 1].t->name_len) == 0)
            continue;
        all[nu++] = all[i];
    }
    *out = all;
    *nout = nu;
    return 0;
}

int cellar_structural_hash_st(char out[33], cellar_st *const *files, size_t nfiles)
{
    cellar_st_member *u;
    size_t n;
    int rc = cellar_st_union(&u, &n, files, nfiles);
    if (rc)
        return rc;
    cellar_tensor_desc *t = n ? cellar_calloc(n, sizeof *t) : NULL;
    if (n && !t) {
        free(u);
        return CELLAR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        t[i] = (cellar_tensor_desc){.name = u[i].t->name,
                                    .name_len = u[i].t->name_len,
                                    .rank = u[i].t->rank,
                                    .shape = u[i].t->shape};
    rc = cellar_structural_hash_list(out, t, n);
    free(u);
    free(t);
    return rc;
}

int cellar_structural_hash(char out[33], const char *path)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && cellar_pt_sniff(path)) {
        /* A PyTorch checkpoint: DiffSynth's value, else (DiffSynth would
         * fail on the file) the hash of its state dict, as `cellar hash`. */
        cellar_pt *pt;
        cellar_pt_hash h;
        int rc = cellar_pt_open(&pt, path, 0);
        if (rc)
            return rc;
        if ((rc = cellar_pt_structural_hash(&h, pt)) == 0)
            memcpy(out, h.diffsynth[0] ? h.diffsynth : h.state_dict, 33);
        cellar_pt_free(pt);
        return rc;
    }
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
