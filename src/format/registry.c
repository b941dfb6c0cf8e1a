/* The registry of known structural hashes: the compiled table (sorted by
 * hash, searched by bisection), plus the rows of an optional extra TSV file
 * a caller names. No data path is baked into the library. */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

struct cellar_registry {
    char *text;            /* the extra file's bytes, fields cut in place */
    cellar_model_info *e;  /* its rows, searched before the table */
    size_t n;
    bool builtin;          /* the static object: never freed */
};

static const cellar_registry builtin_registry = {NULL, NULL, 0, true};

const cellar_registry *cellar_registry_builtin(void)
{
    return &builtin_registry;
}

void cellar_registry_free(cellar_registry *r)
{
    if (!r || r->builtin)
        return;
    free(r->text);
    free(r->e);
    free(r);
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

/* A row: hash family component description (4 columns), or the 8 columns
 * of data/registry.tsv (hash family component layout model_name
 * model_class source description). */
static int parse_extra(cellar_registry *r, const char *p)
{
    size_t lineno = 0;
    for (char *line = r->text, *next; line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        char *f[8];
        int nf = 1;
        f[0] = line;
        for (char *tab; nf < 8 && (tab = strchr(f[nf - 1], '\t')) != NULL; nf++) {
            *tab = '\0';
            f[nf] = tab + 1;
        }
        if ((nf != 4 && nf != 8) || strchr(f[nf - 1], '\t') || !is_hash(f[0]))
            return cellar_fail(CELLAR_EFORMAT,
                               "%s:%zu: expected hash<TAB>family<TAB>component<TAB>description "
                               "(or the 8 columns of data/registry.tsv)",
                               p, lineno);
        cellar_model_info *ne = cellar_realloc(r->e, (r->n + 1) * sizeof *ne);
        if (!ne)
            return CELLAR_ENOMEM;
        r->e = ne;
        if (nf == 4)
            r->e[r->n++] = (cellar_model_info){f[0], f[1], f[2], f[3], "", "", "", p};
        else
            r->e[r->n++] = (cellar_model_info){f[0], f[1], f[2], f[7], f[3], f[4], f[5], f[6]};
    }
    return 0;
}

int cellar_registry_open(cellar_registry **out, const char *path)
{
    *out = NULL;
    cellar_registry *r = cellar_calloc(1, sizeof *r);
    if (!r)
        return CELLAR_ENOMEM;
    int rc = 0;
    if (path && (rc = cellar_read_file(&r->text, NULL, path, 16 << 20)) == 0)
        rc = parse_extra(r, path);
    if (rc) {
        cellar_registry_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

size_t cellar_registry_find_all(const cellar_model_info **out, size_t max,
                                const cellar_registry *r, const char *hash)
{
    if (!hash)
        return 0;
    if (!r)
        r = &builtin_registry;
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->e[i].hash, hash) == 0) {
            if (k < max && out)
                out[k] = &r->e[i];
            k++;
        }
    size_t lo = 0, hi = cellar_registry_table_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(cellar_registry_table[mid].hash, hash) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < cellar_registry_table_len && !strcmp(cellar_registry_table[i].hash, hash);
         i++) {
        if (k < max && out)
            out[k] = &cellar_registry_table[i];
        k++;
    }
    return k;
}

int cellar_registry_find(const cellar_model_info **out, const cellar_registry *r,
                         const char *hash)
{
    *out = NULL;
    if (cellar_registry_find_all(out, 1, r, hash))
        return 0;
    return cellar_fail(CELLAR_ENOTFOUND, "registry: no model has structural hash '%.40s'", hash);
}

size_t cellar_registry_count(const cellar_registry *r)
{
    return (r ? r->n : 0) + cellar_registry_table_len;
}

const cellar_model_info *cellar_registry_at(const cellar_registry *r, size_t i)
{
    size_t extra = r ? r->n : 0;
    if (i < extra)
        return &r->e[i];
    i -= extra;
    return i < cellar_registry_table_len ? &cellar_registry_table[i] : NULL;
}
