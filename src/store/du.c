/* du: how much a tree takes, counting each inode once. A Hugging Face cache
 * or a deduplicated model folder holds many names for one inode, and the
 * apparent size (what most tools report) overstates it by the sharing. */
#include "cellar.h"

#include "inoset.h"
#include "util.h"
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct du_ctx {
    cellar_du_row *row;  /* the row being filled */
    inoset *row_seen;    /* inodes counted in this row */
    cellar_du_row *total;
    inoset *total_seen;  /* inodes counted in the total */
};

static int count(const char *path, const char *name, const struct stat *st, void *vctx)
{
    (void)path;
    (void)name;
    struct du_ctx *c = vctx;
    /* A symlink is a name, not content: it adds its blocks (usually none),
     * not the length of its target path. */
    uint64_t size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
    uint64_t disk = (uint64_t)st->st_blocks * 512;
    if (S_ISREG(st->st_mode))
        c->row->files++;
    c->row->apparent += size;
    int added = inoset_add(c->row_seen, (uint64_t)st->st_dev, (uint64_t)st->st_ino);
    if (added < 0)
        return added;
    if (added) {
        c->row->unique += size;
        c->row->disk += disk;
    }
    if (c->total) {
        if (S_ISREG(st->st_mode))
            c->total->files++;
        c->total->apparent += size;
        if ((added = inoset_add(c->total_seen, (uint64_t)st->st_dev, (uint64_t)st->st_ino)) < 0)
            return added;
        if (added) {
            c->total->unique += size;
            c->total->disk += disk;
        }
    }
    return 0;
}

/* Appends a row for path and fills it; total (may be NULL) also counts. */
static int scan_row(cellar_du *du, const char *path, bool with_total, inoset *total_seen)
{
    cellar_du_row *rows = cellar_realloc(du->rows, (du->n + 1) * sizeof *rows);
    if (!rows)
        return CELLAR_ENOMEM;
    du->rows = rows;
    cellar_du_row *row = &du->rows[du->n];
    memset(row, 0, sizeof *row);
    if (!(row->path = cellar_strdup(path)))
        return CELLAR_ENOMEM;
    du->n++;
    inoset seen;
    inoset_init(&seen);
    struct du_ctx c = {row, &seen, with_total ? &du->total : NULL, total_seen};
    walk_opts wo = {.fn = count, .ctx = &c};
    int rc = walk_tree(path, &wo);
    inoset_free(&seen);
    return rc;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The directories directly inside path, sorted. */
static int subdirs(const char *path, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *sub = cellar_path_join(path, e->d_name);
        struct stat st;
        if (!sub) {
            rc = CELLAR_ENOMEM;
            break;
        }
        if (lstat(sub, &st) != 0 || !S_ISDIR(st.st_mode)) {
            free(sub);
            continue;
        }
        char **p = cellar_realloc(*out, (*n + 1) * sizeof *p);
        if (!p) {
            free(sub);
            rc = CELLAR_ENOMEM;
            break;
        }
        *out = p;
        (*out)[(*n)++] = sub;
    }
    closedir(d);
    if (*out)
        qsort(*out, *n, sizeof **out, cmp_name);
    return rc;
}

int cellar_du_scan(cellar_du **out, size_t npaths, const char *const *paths)
{
    *out = NULL;
    cellar_du *du = cellar_calloc(1, sizeof *du);
    if (!du)
        return CELLAR_ENOMEM;
    if (!(du->total.path = cellar_strdup("total"))) {
        cellar_du_free(du);
        return CELLAR_ENOMEM;
    }
    inoset total_seen;
    inoset_init(&total_seen);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < npaths; i++) {
        if ((rc = scan_row(du, paths[i], true, &total_seen)))
            break;
        char **subs;
        size_t nsubs;
        if ((rc = subdirs(paths[i], &subs, &nsubs)))
            break;
        for (size_t k = 0; k < nsubs; k++) {
            if (rc == 0)
                rc = scan_row(du, subs[k], false, NULL);
            free(subs[k]);
        }
        free(subs);
    }
    inoset_free(&total_seen);
    if (rc) {
        cellar_du_free(du);
        return rc;
    }
    *out = du;
    return 0;
}

void cellar_du_free(cellar_du *du)
{
    if (!du)
        return;
    for (size_t i = 0; i < du->n; i++)
        free(du->rows[i].path);
    free(du->rows);
    free(du->total.path);
    free(du);
}
