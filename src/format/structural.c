/* The structural hash (DiffSynth-Studio's hash_model_file), model folders'
 * components, and the registry of known hashes.
 *
 * The hash identifies an architecture, not weights: for every tensor name
 * two entries, "name:d0_d1..." and "name", all sorted as byte strings
 * (UTF-8 byte order is Python's code-point order), joined by ',' and
 * md5-hashed. A shard set hashes as the union of its files, so splitting a
 * model does not change it. */
#include "safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct entry {
    const char *s;
    size_t len;
} entry;

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return cellar_st_name_cmp(x->s, x->len, y->s, y->len);
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
    named *all = cellar_calloc(n, sizeof *all);
    entry *e = cellar_calloc(2 * n, sizeof *e);
    cellar_buf text;
    cellar_buf_init(&text, 0);
    cellar_hasher *h = NULL;
    int rc = all && e ? 0 : CELLAR_ENOMEM;
    if (rc)
        goto done;
    size_t k = 0;
    for (size_t f = 0; f < nfiles; f++)
        for (size_t i = 0; i < cellar_st_count(files[f]); i++)
            all[k++] = (named){cellar_st_tensor_at(files[f], i), f};
    if (n)
        qsort(all, n, sizeof *all, cmp_named);
    /* Union: a later file's duplicate replaces an earlier one. Shape texts
     * go into one buffer first; entries point into it once it stops moving. */
    size_t ne = 0;
    size_t *shape_at = cellar_calloc(n, sizeof *shape_at);
    if (!shape_at) {
        rc = CELLAR_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i + 1 < n && cellar_st_name_cmp(all[i].t->name, all[i].t->name_len, all[i + 1].t->name,
                                            all[i + 1].t->name_len) == 0)
            continue;
        const cellar_st_tensor *t = all[i].t;
        shape_at[ne] = text.len;
        rc = cellar_buf_append(&text, t->name, t->name_len);
        if (rc == 0)
            rc = cellar_buf_append(&text, ":", 1);
        for (size_t d = 0; d < t->rank && rc == 0; d++)
            rc = cellar_buf_printf(&text, d ? "_%llu" : "%llu", (unsigned long long)t->shape[d]);
        all[ne++] = all[i];
    }
    if (rc) {
        free(shape_at);
        goto done;
    }
    for (size_t i = 0; i < ne; i++) {
        size_t end = i + 1 < ne ? shape_at[i + 1] : text.len;
        e[2 * i] = (entry){text.data + shape_at[i], end - shape_at[i]};
        e[2 * i + 1] = (entry){all[i].t->name, all[i].t->name_len};
    }
    free(shape_at);
    if (ne)
        qsort(e, 2 * ne, sizeof *e, cmp_entry);
    if ((rc = cellar_hasher_new(&h, CELLAR_ALGO_BIT(CELLAR_ALGO_MD5), UINT64_MAX)))
        goto done;
    for (size_t i = 0; i < 2 * ne; i++) {
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
    free(all);
    free(e);
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

/* ---- components ---- */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Whether dir directly holds weights (a .safetensors file or an index). */
static bool holds_weights(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL)
        found = e->d_name[0] != '.' && (has_suffix(e->d_name, ".safetensors") ||
                                        has_suffix(e->d_name, ".safetensors.index.json"));
    closedir(d);
    return found;
}

/* What cellar_shards_open() should take for a component folder. Diffusers
 * folders often hold variants side by side (diffusion_pytorch_model
 * .safetensors and diffusion_pytorch_model.fp16.safetensors, or their
 * indexes); loaded without a variant, diffusers takes the file whose stem
 * has no ".<variant>", so that one is the component when it is the only
 * such file. Otherwise the folder itself (shards_open reports ambiguity). */
static char *component_path(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return cellar_strdup(dir);
    size_t nidx = 0, nst = 0, plain_idx = 0, plain_st = 0;
    char *idx = NULL, *st = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (name[0] == '.')
            continue;
        bool is_idx = has_suffix(name, ".safetensors.index.json");
        if (!is_idx && !has_suffix(name, ".safetensors"))
            continue;
        size_t stem = strlen(name) - strlen(is_idx ? ".safetensors.index.json" : ".safetensors");
        bool plain = memchr(name, '.', stem) == NULL;
        size_t *count = is_idx ? &nidx : &nst, *plains = is_idx ? &plain_idx : &plain_st;
        char **keep = is_idx ? &idx : &st;
        (*count)++;
        if (plain && (*plains)++ == 0)
            *keep = cellar_strdup(name); /* NULL (no memory): the folder is used */
    }
    closedir(d);
    char *path = NULL;
    if (nidx > 1 && plain_idx == 1 && idx)
        path = cellar_path_join(dir, idx);
    else if (nidx == 0 && nst > 1 && plain_st == 1 && st)
        path = cellar_path_join(dir, st);
    else
        path = cellar_strdup(dir);
    free(idx);
    free(st);
    return path;
}

static int cmp_component(const void *a, const void *b)
{
    return strcmp(((const cellar_component *)a)->name, ((const cellar_component *)b)->name);
}

void cellar_components_free(cellar_component *c, size_t count)
{
    if (!c)
        return;
    for (size_t i = 0; i < count; i++) {
        free(c[i].name);
        free(c[i].path);
    }
    free(c);
}

int cellar_components(cellar_component **out, size_t *count, const char *path)
{
    *out = NULL;
    *count = 0;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return cellar_fail_errno(errno, "%s", path);
    char *mi = S_ISDIR(sb.st_mode) ? cellar_path_join(path, "model_index.json") : NULL;
    bool diffusers = mi && (access(mi, F_OK) == 0 || !holds_weights(path));
    free(mi);
    cellar_component *c = NULL;
    size_t n = 0;
    int rc = 0;
    if (!diffusers) {
        c = cellar_calloc(1, sizeof *c);
        if (!c || !(c->name = cellar_strdup("")) || !(c->path = cellar_strdup(path))) {
            cellar_components_free(c, 1);
            return CELLAR_ENOMEM;
        }
        *out = c;
        *count = 1;
        return 0;
    }
    DIR *d = opendir(path);
    if (!d)
        return cellar_fail_errno(errno, "%s", path);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && rc == 0) {
        if (e->d_name[0] == '.')
            continue;
        char *sub = cellar_path_join(path, e->d_name);
        if (!sub) {
            rc = CELLAR_ENOMEM;
            break;
        }
        struct stat ss;
        if (stat(sub, &ss) != 0 || !S_ISDIR(ss.st_mode) || !holds_weights(sub)) {
            free(sub);
            continue;
        }
        cellar_component *nc = cellar_realloc(c, (n + 1) * sizeof *nc);
        if (!nc) {
            free(sub);
            rc = CELLAR_ENOMEM;
            break;
        }
        c = nc;
        c[n].path = component_path(sub);
        c[n].name = cellar_strdup(e->d_name);
        free(sub);
        if (!c[n].path || !c[n].name) {
            free(c[n].path);
            free(c[n].name);
            rc = CELLAR_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n == 0)
        rc = cellar_fail(CELLAR_ENOTFOUND, "%s: no safetensors weights in it or its sub-folders", path);
    if (rc) {
        cellar_components_free(c, n);
        return rc;
    }
    qsort(c, n, sizeof *c, cmp_component);
    *out = c;
    *count = n;
    return 0;
}

/* ---- registry ---- */

struct cellar_registry {
    char *text;
    cellar_model_info *e;
    size_t n;
};

void cellar_registry_free(cellar_registry *r)
{
    if (!r)
        return;
    free(r->text);
    free(r->e);
    free(r);
}

/* $CELLAR_DATA_DIR, the install data dir, then the source tree. */
static char *find_registry(void)
{
    const char *dirs[3] = {getenv("CELLAR_DATA_DIR"), NULL, NULL};
#ifdef CELLAR_DATA_INSTALL
    dirs[1] = CELLAR_DATA_INSTALL;
#endif
#ifdef CELLAR_DATA_SOURCE
    dirs[2] = CELLAR_DATA_SOURCE;
#endif
    for (int i = 0; i < 3; i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        char *p = cellar_path_join(dirs[i], "registry.tsv");
        if (!p || access(p, R_OK) == 0)
            return p;
        free(p);
        if (i == 0) /* an explicit data dir without the file is an error */
            break;
    }
    return NULL;
}

static bool is_hash(const char *s)
{
    if (strlen(s) != 32)
        return false;
    for (int i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int cellar_registry_open(cellar_registry **out, const char *path)
{
    *out = NULL;
    char *found = path ? NULL : find_registry();
    if (!path && !found)
        return cellar_fail(CELLAR_ENOTFOUND, "registry.tsv not found (set CELLAR_DATA_DIR)");
    const char *p = path ? path : found;
    cellar_registry *r = cellar_calloc(1, sizeof *r);
    int rc = r ? cellar_read_file(&r->text, NULL, p, 16 << 20) : CELLAR_ENOMEM;
    size_t lineno = 0;
    for (char *line = r && rc == 0 ? r->text : NULL, *next; line && rc == 0; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        char *f[4];
        f[0] = line;
        for (int i = 1; i < 4; i++) {
            char *tab = f[i - 1] ? strchr(f[i - 1], '\t') : NULL;
            if (tab)
                *tab++ = '\0';
            f[i] = tab;
        }
        if (!f[3] || strchr(f[3], '\t') || !is_hash(f[0])) {
            rc = cellar_fail(CELLAR_EFORMAT,
                             "%s:%zu: expected hash<TAB>family<TAB>component<TAB>description", p, lineno);
            break;
        }
        cellar_model_info *ne = cellar_realloc(r->e, (r->n + 1) * sizeof *ne);
        if (!ne) {
            rc = CELLAR_ENOMEM;
            break;
        }
        r->e = ne;
        r->e[r->n++] = (cellar_model_info){f[0], f[1], f[2], f[3]};
    }
    free(found);
    if (rc) {
        cellar_registry_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

const cellar_model_info *cellar_registry_find(const cellar_registry *r, const char *hash)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (strcmp(r->e[i].hash, hash) == 0)
            return &r->e[i];
    return NULL;
}
