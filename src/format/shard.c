/* Sharded safetensors checkpoints as huggingface_hub writes them: opening a
 * set of shards as one merged tensor set (through its index or a lone
 * file), splitting one file exactly as split_state_dict_into_shards does,
 * and merging shards back into one canonical file. Tensor bytes are never
 * read into memory: the writer copies them with copy_file_range. */
#include "json.h"
#include "safetensors.h"
#include "shard.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_SUFFIX ".safetensors.index.json"
#define INDEX_LIMIT ((size_t)256 << 20)

typedef struct merged_ref {
    uint32_t file;
    uint32_t idx;
} merged_ref;

struct cellar_shards {
    size_t nfiles;
    char **paths;
    cellar_st **files;
    merged_ref *merged;
    size_t count;
    uint64_t size;
    bool indexed;
};

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir ending with suffix, sorted; *n of them. */
static int list_dir(char ***out, size_t *n, const char *dir, const char *suffix)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return cellar_fail_errno(errno, "%s", dir);
    char **v = NULL;
    size_t cnt = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || !ends_with(e->d_name, len, suffix))
            continue;
        char **nv = cellar_realloc(v, (cnt + 1) * sizeof *nv);
        if (!nv) {
            rc = CELLAR_ENOMEM;
            break;
        }
        v = nv;
        if (!(v[cnt] = cellar_strdup(e->d_name))) {
            rc = CELLAR_ENOMEM;
            break;
        }
        cnt++;
    }
    closedir(d);
    if (rc) {
        for (size_t i = 0; i < cnt; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_str);
    *out = v;
    *n = cnt;
    return 0;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void cellar_shards_free(cellar_shards *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nfiles; i++) {
        cellar_st_free(s->files[i]);
        free(s->paths[i]);
    }
    free(s->files);
    free(s->paths);
    free(s->merged);
    free(s);
}

static int add_file(cellar_shards *s, const char *path)
{
    char **p = cellar_realloc(s->paths, (s->nfiles + 1) * sizeof *p);
    if (!p)
        return CELLAR_ENOMEM;
    s->paths = p;
    cellar_st **f = cellar_realloc(s->files, (s->nfiles + 1) * sizeof *f);
    if (!f)
        return CELLAR_ENOMEM;
    s->files = f;
    if (!(p[s->nfiles] = cellar_strdup(path)))
        return CELLAR_ENOMEM;
    int rc = cellar_st_open(&f[s->nfiles], path);
    if (rc) {
        free(p[s->nfiles]);
        return rc;
    }
    s->size += cellar_st_file_size(f[s->nfiles]);
    s->nfiles++;
    return 0;
}

static int cmp_ref(const void *a, const void *b, void *ctx)
{
    const cellar_shards *s = ctx;
    const merged_ref *x = a, *y = b;
    const cellar_st_tensor *tx = cellar_st_tensor_at(s->files[x->file], x->idx);
    const cellar_st_tensor *ty = cellar_st_tensor_at(s->files[y->file], y->idx);
    int c = cellar_st_name_cmp(tx->name, tx->name_len, ty->name, ty->name_len);
    return c ? c : (x->file > y->file) - (x->file < y->file);
}

/* The union of the files' tensors sorted by name; a later file's duplicate
 * replaces an earlier one. */
static int build_merged(cellar_shards *s)
{
    size_t total = 0;
    for (size_t i = 0; i < s->nfiles; i++)
        if (ck_add(total, cellar_st_count(s->files[i]), &total))
            return cellar_fail(CELLAR_ERANGE, "too many tensors");
    s->merged = cellar_calloc(total, sizeof *s->merged);
    if (!s->merged)
        return CELLAR_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < s->nfiles; i++)
        for (size_t k = 0; k < cellar_st_count(s->files[i]); k++)
            s->merged[n++] = (merged_ref){(uint32_t)i, (uint32_t)k};
    if (n)
        qsort_r(s->merged, n, sizeof *s->merged, cmp_ref, s);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n) {
            const cellar_st_tensor *a = cellar_st_tensor_at(s->files[s->merged[i].file], s->merged[i].idx);
            const cellar_st_tensor *b =
                cellar_st_tensor_at(s->files[s->merged[i + 1].file], s->merged[i + 1].idx);
            if (cellar_st_name_cmp(a->name, a->name_len, b->name, b->name_len) == 0)
                continue;
        }
        s->merged[out++] = s->merged[i];
    }
    s->count = out;
    return 0;
}

/* FORMATS.md: reject index paths with a root, a drive, "..", or another
 * extension. */
const char *cellar_index_path_problem(const char *p, size_t n)
{
    if (n == 0)
        return "is empty";
    if (memchr(p, '\0', n))
        return "contains NUL";
    if (p[0] == '/' || p[0] == '\\')
        return "is absolute";
    if (n >= 2 && isalpha((unsigned char)p[0]) && p[1] == ':')
        return "has a drive";
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && p[j] != '/' && p[j] != '\\')
            j++;
        if (j - i == 2 && p[i] == '.' && p[i + 1] == '.')
            return "climbs out with '..'";
        i = j + 1;
    }
    if (!ends_with(p, n, ".safetensors"))
        return "is not a .safetensors file";
    return NULL;
}

typedef struct wm_entry {
    const char *tensor, *file;
    size_t tensor_len, file_len, pos;
} wm_entry;

static int cmp_wm(const void *a, const void *b)
{
    const wm_entry *x = a, *y = b;
    int c = cellar_st_name_cmp(x->tensor, x->tensor_len, y->tensor, y->tensor_len);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

static int open_index(cellar_shards *s, const char *index_path)
{
    char *text = NULL, *dir = NULL;
    size_t len;
    cellar_json_doc *doc = NULL;
    wm_entry *wm = NULL;
    char **names = NULL;
    size_t nnames = 0, nwm = 0;
    int rc = cellar_read_file(&text, &len, index_path, INDEX_LIMIT);
    if (rc)
        return rc;
    if ((rc = cellar_json_parse(&doc, text, len, 0, index_path, NULL)))
        goto done;
    const cellar_json *root = cellar_json_root(doc);
    const cellar_json *map = cellar_json_getz(root, "weight_map");
    if (!cellar_json_is(map, CELLAR_JSON_OBJECT)) {
        rc = cellar_fail(CELLAR_EFORMAT, "%s: no \"weight_map\" object", index_path);
        goto done;
    }
    const char *slash = strrchr(index_path, '/');
    dir = slash ? cellar_strndup(index_path, (size_t)(slash - index_path) + 1) : cellar_strdup("");
    wm = cellar_calloc(map->count, sizeof *wm);
    names = cellar_calloc(map->count, sizeof *names);
    if (!dir || !wm || !names) {
        rc = CELLAR_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < map->count; i++) {
        const cellar_json_member *m = &map->u.members[i];
        char tname[160];
        cellar_st_quote(tname, sizeof tname, m->key, m->key_len);
        if (m->value.type != CELLAR_JSON_STRING) {
            rc = cellar_fail(CELLAR_EFORMAT, "%s: weight_map entry '%s' is not a string", index_path, tname);
            goto done;
        }
        const char *why = cellar_index_path_problem(m->value.u.str, m->value.len);
        if (why) {
            char fname[160];
            cellar_st_quote(fname, sizeof fname, m->value.u.str, m->value.len);
            rc = cellar_fail(CELLAR_EFORMAT, "%s: shard path '%s' of tensor '%s' %s", index_path, fname,
                             tname, why);
            goto done;
        }
        wm[nwm++] = (wm_entry){m->key, m->value.u.str, m->key_len, m->value.len, i};
        names[nnames++] = (char *)m->value.u.str;
    }
    /* Duplicate tensor keys: the last wins, as in json.loads. */
    if (nwm)
        qsort(wm, nwm, sizeof *wm, cmp_wm);
    size_t u = 0;
    for (size_t i = 0; i < nwm; i++) {
        if (i + 1 < nwm && cellar_st_name_cmp(wm[i].tensor, wm[i].tensor_len, wm[i + 1].tensor, wm[i + 1].tensor_len) == 0)
            continue;
        wm[u++] = wm[i];
    }
    nwm = u;
    /* Shards: the distinct file names, sorted (as transformers loads them). */
    if (nnames)
        qsort(names, nnames, sizeof *names, cmp_str);
    for (size_t i = 0; i < nnames && rc == 0; i++) {
        if (i && strcmp(names[i], names[i - 1]) == 0)
            continue;
        char *path = cellar_sprintf("%s%s", dir, names[i]);
        rc = path ? add_file(s, path) : CELLAR_ENOMEM;
        free(path);
    }
    if (rc)
        goto done;
    /* Every tensor of every shard must be the one the index names. */
    size_t listed = 0;
    for (size_t f = 0; f < s->nfiles; f++) {
        const char *fname = s->paths[f] + strlen(dir);
        for (size_t k = 0; k < cellar_st_count(s->files[f]); k++) {
            const cellar_st_tensor *t = cellar_st_tensor_at(s->files[f], k);
            wm_entry key = {.tensor = t->name, .tensor_len = t->name_len, .pos = SIZE_MAX};
            size_t lo = 0, hi = nwm;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (cellar_st_name_cmp(wm[mid].tensor, wm[mid].tensor_len, key.tensor, key.tensor_len) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            char tname[160];
            cellar_st_quote(tname, sizeof tname, t->name, t->name_len);
            if (lo == nwm || cellar_st_name_cmp(wm[lo].tensor, wm[lo].tensor_len, t->name, t->name_len) != 0) {
                rc = cellar_fail(CELLAR_EFORMAT, "%s: tensor '%s' of %s is not in the index", index_path,
                                 tname, fname);
                goto done;
            }
            if (wm[lo].file_len != strlen(fname) || memcmp(wm[lo].file, fname, wm[lo].file_len) != 0) {
                rc = cellar_fail(CELLAR_EFORMAT, "%s: the index places tensor '%s' in %s, but it is in %s",
                                 index_path, tname, wm[lo].file, fname);
                goto done;
            }
            listed++;
        }
    }
    if (listed != nwm) {
        /* Some listed tensor is in no shard: name the first. */
        for (size_t i = 0; i < nwm; i++) {
            size_t f, idx;
            for (f = 0; f < s->nfiles; f++)
                if (strcmp(s->paths[f] + strlen(dir), wm[i].file) == 0)
                    break;
            cellar_error_clear();
            if (f < s->nfiles && cellar_st_find(&idx, s->files[f], wm[i].tensor, wm[i].tensor_len) == 0)
                continue;
            char tname[160];
            cellar_st_quote(tname, sizeof tname, wm[i].tensor, wm[i].tensor_len);
            rc = cellar_fail(CELLAR_EFORMAT, "%s: the index places tensor '%s' in %s, which does not hold it",
                             index_path, tname, wm[i].file);
            goto done;
        }
    }
    s->indexed = true;
done:
    free(text);
    free(dir);
    free(wm);
    free(names);
    cellar_json_free(doc);
    return rc;
}

static int open_dir(cellar_shards *s, const char *dir)
{
    char **idx = NULL, **st = NULL;
    size_t nidx = 0, nst = 0;
    int rc = list_dir(&idx, &nidx, dir, INDEX_SUFFIX);
    if (rc == 0)
        rc = list_dir(&st, &nst, dir, ".safetensors");
    if (rc)
        goto done;
    char *path = NULL;
    if (nidx == 1) {
        path = cellar_path_join(dir, idx[0]);
        rc = path ? open_index(s, path) : CELLAR_ENOMEM;
    } else if (nidx > 1) {
        rc = cellar_fail(CELLAR_EFORMAT, "%s: %zu index files (%s, %s...): open one of them", dir, nidx,
                         idx[0], idx[1]);
    } else if (nst == 1) {
        path = cellar_path_join(dir, st[0]);
        rc = path ? add_file(s, path) : CELLAR_ENOMEM;
    } else if (nst == 0) {
        rc = cellar_fail(CELLAR_ENOTFOUND, "%s: no .safetensors file", dir);
    } else {
        rc = cellar_fail(CELLAR_EFORMAT, "%s: %zu .safetensors files and no %s index", dir, nst,
                         INDEX_SUFFIX);
    }
    free(path);
done:
    free_list(idx, nidx);
    free_list(st, nst);
    return rc;
}

int cellar_shards_open(cellar_shards **out, const char *path)
{
    *out = NULL;
    cellar_shards *s = cellar_calloc(1, sizeof *s);
    if (!s)
        return CELLAR_ENOMEM;
    struct stat sb;
    int rc;
    if (stat(path, &sb) != 0)
        rc = cellar_fail_errno(errno, "%s", path);
    else if (S_ISDIR(sb.st_mode))
        rc = open_dir(s, path);
    else if (ends_with(path, strlen(path), ".json"))
        rc = open_index(s, path);
    else
        rc = add_file(s, path);
    if (rc == 0)
        rc = build_merged(s);
    if (rc) {
        cellar_shards_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

size_t cellar_shards_nfiles(const cellar_shards *s)
{
    return s->nfiles;
}

const char *cellar_shards_path(const cellar_shards *s, size_t i)
{
    return i < s->nfiles ? s->paths[i] : NULL;
}

cellar_st *cellar_shards_file(const cellar_shards *s, size_t i)
{
    return i < s->nfiles ? s->files[i] : NULL;
}

size_t cellar_shards_count(const cellar_shards *s)
{
    return s->count;
}

const cellar_st_tensor *cellar_shards_tensor(const cellar_shards *s, size_t i, size_t *file)
{
    if (i >= s->count)
        return NULL;
    if (file)
        *file = s->merged[i].file;
    return cellar_st_tensor_at(s->files[s->merged[i].file], s->merged[i].idx);
}

uint64_t cellar_shards_size(const cellar_shards *s)
{
    return s->size;
}

int cellar_shards_indexed(const cellar_shards *s)
{
    return s->indexed;
}

/* ---- size strings ---- */

int cellar_shard_size_parse(uint64_t *out, const char *str)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = {{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}};
    const char *s = str;
    size_t n = strlen(s);
    /* Python's str.strip(). */
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    size_t digits = 0;
    while (digits < n && isdigit((unsigned char)s[digits]))
        digits++;
    if (n && digits == n) { /* a plain integer: bytes, as the Python API's int */
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
            if (ck_mul(v, (uint64_t)10, &v) || ck_add(v, (uint64_t)(s[i] - '0'), &v))
                return cellar_fail(CELLAR_EINVAL, "size '%s' is too large", str);
        *out = v;
        return 0;
    }
    if (n < 2)
        return cellar_fail(CELLAR_EINVAL, "size '%s': expected a number and a unit (KB, MB, GB, TB)", str);
    double mult = 0;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (toupper((unsigned char)s[n - 2]) == units[i].unit[0] &&
            toupper((unsigned char)s[n - 1]) == units[i].unit[1])
            mult = units[i].mult;
    if (mult == 0)
        return cellar_fail(CELLAR_EINVAL,
                           "size '%s': unit '%c%c' not supported; use TB, GB, MB or KB (decimal)", str,
                           toupper((unsigned char)s[n - 2]), toupper((unsigned char)s[n - 1]));
    char num[64];
    size_t vb = 0, ve = n - 2;
    while (vb < ve && isspace((unsigned char)s[vb]))
        vb++;
    while (ve > vb && isspace((unsigned char)s[ve - 1]))
        ve--;
    if (ve == vb || ve - vb >= sizeof num)
        return cellar_fail(CELLAR_EINVAL, "size '%s': could not parse the number", str);
    /* strtod also takes hex, inf and nan; Python's float() takes no hex and
     * int() of inf or nan fails, so allow only decimal forms. Python allows
     * '_' between digits ("1_000"); strtod does not, so drop those. */
    size_t k = 0;
    for (size_t i = vb; i < ve; i++) {
        char ch = s[i];
        if (ch == '_' && i > vb && i + 1 < ve && isdigit((unsigned char)s[i - 1]) &&
            isdigit((unsigned char)s[i + 1]))
            continue;
        if (!isdigit((unsigned char)ch) && !strchr("+-.eE", ch))
            return cellar_fail(CELLAR_EINVAL, "size '%s': could not parse the number", str);
        num[k++] = ch;
    }
    num[k] = '\0';
    char *end;
    errno = 0;
    double v = strtod(num, &end);
    if (*end || errno == ERANGE || !isfinite(v))
        return cellar_fail(CELLAR_EINVAL, "size '%s': could not parse the number", str);
    double bytes = v * mult;
    if (bytes < 0)
        return cellar_fail(CELLAR_EINVAL, "size '%s' is negative", str);
    if (bytes >= 18446744073709551616.0)
        return cellar_fail(CELLAR_EINVAL, "size '%s' is too large", str);
    *out = (uint64_t)bytes;
    return 0;
}

/* ---- split and merge ---- */

/* Copies every __metadata__ entry of src's files into w (first value wins). */
static int copy_metadata(cellar_st_writer *w, const cellar_shards *src)
{
    int rc = 0;
    for (size_t f = src->nfiles; f-- > 0 && rc == 0;) {
        /* Walk backwards so the first file's value is set last and wins. */
        cellar_st *st = src->files[f];
        for (size_t i = 0; i < cellar_st_metadata_count(st) && rc == 0; i++) {
            const char *k, *v;
            size_t kl, vl;
            cellar_st_metadata_at(&k, &kl, &v, &vl, st, i);
            if (strlen(k) != kl || strlen(v) != vl)
                continue; /* keys or values with NUL cannot be carried by this API */
            rc = cellar_st_writer_set_metadata(w, k, v);
        }
    }
    return rc;
}

/* huggingface_hub clears a previous save's files from the folder; cellar
 * does it after the new files are in place, removing only the names of an
 * earlier split (model.safetensors, model-0000i-of-0000N.safetensors, the
 * index) that the new one did not write. */
static int remove_stale(const char *outdir, size_t nplan)
{
    char **names;
    size_t n;
    int rc = list_dir(&names, &n, outdir, ".json");
    char **st = NULL;
    size_t nst = 0;
    if (rc == 0)
        rc = list_dir(&st, &nst, outdir, ".safetensors");
    for (size_t i = 0; rc == 0 && i < n + nst; i++) {
        const char *name = i < n ? names[i] : st[i - n];
        unsigned a, b;
        int used = 0;
        bool stale;
        if (strcmp(name, "model" INDEX_SUFFIX) == 0)
            stale = nplan == 1;
        else if (strcmp(name, "model.safetensors") == 0)
            stale = nplan > 1;
        else if (strlen(name) == 32 &&
                 sscanf(name, "model-%5u-of-%5u.safetensors%n", &a, &b, &used) == 2 && used == 32)
            stale = b != nplan;
        else
            continue;
        if (!stale)
            continue;
        char *path = cellar_path_join(outdir, name);
        if (!path)
            rc = CELLAR_ENOMEM;
        else if (unlink(path) != 0 && errno != ENOENT)
            rc = cellar_fail_errno(errno, "%s: cannot remove a previous shard", path);
        free(path);
    }
    free_list(names, n);
    free_list(st, nst);
    return rc == 0 ? cellar_fsync_dir(outdir) : rc;
}

typedef struct shard_plan {
    size_t first, count; /* a run of entries in order[] */
} shard_plan;

int cellar_shard_split(size_t *nshards, const char *src, const char *outdir, uint64_t max_size,
                       cellar_progress_fn progress, void *ctx)
{
    cellar_shards *s = NULL;
    size_t *order = NULL;
    shard_plan *plan = NULL;
    cellar_buf index;
    cellar_buf_init(&index, 0);
    size_t nplan = 0;
    int rc = cellar_shards_open(&s, src);
    if (rc)
        return rc;
    size_t n = s->count;
    order = cellar_calloc(n, sizeof *order);
    plan = cellar_calloc(n + 1, sizeof *plan);
    if (!order || !plan) {
        rc = CELLAR_ENOMEM;
        goto done;
    }
    /* split_state_dict_into_shards over the tensors in name order (the
     * order safe_open's keys() gives): an oversized tensor becomes a shard
     * at once while the open shard stays open; otherwise the open shard is
     * closed first when current + size > max (strictly). order[] lists the
     * tensors shard by shard. */
    size_t *cur = cellar_calloc(n, sizeof *cur);
    if (!cur) {
        rc = CELLAR_ENOMEM;
        goto done;
    }
    size_t ncur = 0, at = 0;
    uint64_t cur_size = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        const cellar_st_tensor *t = cellar_shards_tensor(s, i, NULL);
        uint64_t size = t->end - t->begin;
        total += size;
        if (size > max_size) {
            plan[nplan++] = (shard_plan){at, 1};
            order[at++] = i;
            continue;
        }
        if (cur_size + size > max_size) {
            plan[nplan] = (shard_plan){at, ncur};
            memcpy(order + at, cur, ncur * sizeof *cur);
            at += ncur;
            nplan++;
            ncur = 0;
            cur_size = 0;
        }
        cur[ncur++] = i;
        cur_size += size;
    }
    if (ncur) {
        plan[nplan] = (shard_plan){at, ncur};
        memcpy(order + at, cur, ncur * sizeof *cur);
        at += ncur;
        nplan++;
    }
    free(cur);
    if (nplan == 0) /* no tensors: still one (empty) loadable file */
        plan[nplan++] = (shard_plan){0, 0};
    if ((rc = cellar_mkdirs(outdir, 0755)))
        goto done;
    cellar_jw jw;
    cellar_jw_init(&jw, &index, 2, true);
    cellar_jw_object(&jw);
    cellar_jw_keyz(&jw, "metadata");
    cellar_jw_object(&jw);
    cellar_jw_keyz(&jw, "total_size");
    cellar_jw_u64(&jw, total);
    cellar_jw_object_end(&jw);
    cellar_jw_keyz(&jw, "weight_map");
    cellar_jw_object(&jw);
    cellar_progress job = {.bytes_total = total, .files_total = nplan};
    for (size_t p = 0; p < nplan && rc == 0; p++) {
        char fname[64];
        if (nplan == 1)
            snprintf(fname, sizeof fname, "model.safetensors");
        else
            snprintf(fname, sizeof fname, "model-%05zu-of-%05zu.safetensors", p + 1, nplan);
        cellar_st_writer *w = NULL;
        char *path = cellar_path_join(outdir, fname);
        rc = path ? cellar_st_writer_new(&w) : CELLAR_ENOMEM;
        for (size_t k = 0; k < plan[p].count && rc == 0; k++) {
            size_t ti = order[plan[p].first + k];
            rc = cellar_st_writer_add_from(w, s->files[s->merged[ti].file], s->merged[ti].idx);
            const cellar_st_tensor *t = cellar_shards_tensor(s, ti, NULL);
            cellar_jw_key(&jw, t->name, t->name_len);
            cellar_jw_stringz(&jw, fname);
        }
        if (rc == 0)
            rc = copy_metadata(w, s);
        if (rc == 0) {
            st_writer_progress(w, progress, ctx, &job);
            rc = cellar_st_writer_write(w, path);
            job.bytes_done += cellar_st_writer_data_size(w);
            job.files_done++;
        }
        cellar_st_writer_free(w);
        free(path);
    }
    cellar_jw_object_end(&jw);
    cellar_jw_object_end(&jw);
    if (rc == 0)
        rc = cellar_jw_finish(&jw);
    if (rc == 0 && nplan > 1) {
        char *ipath = cellar_path_join(outdir, "model" INDEX_SUFFIX);
        rc = ipath ? cellar_write_file_atomic(ipath, index.data, index.len, 0644) : CELLAR_ENOMEM;
        free(ipath);
    }
    if (rc == 0)
        rc = remove_stale(outdir, nplan);
    if (rc == 0 && nshards)
        *nshards = nplan;
done:
    cellar_buf_free(&index);
    free(order);
    free(plan);
    cellar_shards_free(s);
    return rc;
}

int cellar_shard_merge(const char *src, const char *dst, cellar_progress_fn progress, void *ctx)
{
    cellar_shards *s = NULL;
    cellar_st_writer *w = NULL;
    int rc = cellar_shards_open(&s, src);
    if (rc == 0)
        rc = cellar_st_writer_new(&w);
    for (size_t i = 0; rc == 0 && i < s->count; i++)
        rc = cellar_st_writer_add_from(w, s->files[s->merged[i].file], s->merged[i].idx);
    if (rc == 0)
        rc = copy_metadata(w, s);
    if (rc == 0) {
        cellar_st_writer_set_progress(w, progress, ctx);
        rc = cellar_st_writer_write(w, dst);
    }
    cellar_st_writer_free(w);
    cellar_shards_free(s);
    return rc;
}
