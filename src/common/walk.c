/* Depth-first tree walk with loop protection, in byte order within each
 * folder, and the public file listing built on it (hash -r, add). */
#include "walk.h"

#include "inoset.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct walker {
    const walk_opts *o;
    inoset dirs; /* entered directories: a symlink loop is entered once */
    struct stat skip;
    bool has_skip;
};

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The names in dir but "." and "..", sorted. 0, or CELLAR_ENOMEM, or the
 * opendir/readdir error (reported through o->err; the walk goes on). */
static int read_names(struct walker *w, const char *dir, char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) {
        int rc = cellar_fail_errno(errno, "%s", dir);
        if (w->o->err)
            w->o->err(dir, cellar_error_last(), w->o->ctx);
        return rc == CELLAR_ENOMEM ? rc : 1;
    }
    char **v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if ((rc = cellar_grow(&v, &cap, n, sizeof *v, 32)) != 0)
            break;
        if (!(v[n] = cellar_strdup(e->d_name))) {
            rc = CELLAR_ENOMEM;
            break;
        }
        n++;
        errno = 0;
    }
    if (rc == 0 && errno) {
        /* readdir failed part way: what was read is walked, the folder is
         * reported as unreadable */
        cellar_fail_errno(errno, "%s", dir);
        if (w->o->err)
            w->o->err(dir, cellar_error_last(), w->o->ctx);
    }
    closedir(d);
    if (rc) {
        free_names(v, n);
        return rc;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, name_cmp);
    *out = v;
    *count = n;
    return 0;
}

static int walk_dir(struct walker *w, const char *dir)
{
    char **names;
    size_t n;
    int rc = read_names(w, dir, &names, &n);
    if (rc)
        return rc < 0 ? rc : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *path = cellar_path_join(dir, names[i]);
        if (!path) {
            rc = CELLAR_ENOMEM;
            break;
        }
        struct stat st;
        int r = w->o->follow ? stat(path, &st) : lstat(path, &st);
        if (r != 0 && w->o->follow && errno == ENOENT)
            r = lstat(path, &st); /* a dangling symlink: report it as itself */
        if (r != 0) {
            cellar_fail_errno(errno, "%s", path);
            if (w->o->err)
                w->o->err(path, cellar_error_last(), w->o->ctx);
        } else if (S_ISDIR(st.st_mode)) {
            bool skip = w->has_skip && st.st_dev == w->skip.st_dev && st.st_ino == w->skip.st_ino;
            int added = skip ? 0 : inoset_add(&w->dirs, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
            if (added < 0)
                rc = added;
            else if (added)
                rc = walk_dir(w, path);
        } else {
            rc = w->o->fn(path, names[i], &st, w->o->ctx);
        }
        free(path);
    }
    free_names(names, n);
    return rc;
}

int walk_tree(const char *root, const walk_opts *o)
{
    struct walker w = {.o = o};
    inoset_init(&w.dirs);
    if (o->skip_dir && stat(o->skip_dir, &w.skip) == 0)
        w.has_skip = true;
    struct stat st;
    /* The root is followed even without -L: naming a symlink means it. */
    if (stat(root, &st) != 0)
        return cellar_fail_errno(errno, "%s", root);
    int rc;
    if (S_ISDIR(st.st_mode)) {
        bool skip = w.has_skip && st.st_dev == w.skip.st_dev && st.st_ino == w.skip.st_ino;
        rc = skip ? 0 : inoset_add(&w.dirs, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
        if (rc > 0)
            rc = walk_dir(&w, root);
    } else {
        const char *slash = strrchr(root, '/');
        rc = o->fn(root, slash ? slash + 1 : root, &st, o->ctx);
    }
    inoset_free(&w.dirs);
    return rc;
}

/* ---- the public listing ------------------------------------------------- */

/* A callback's non-zero return, told apart from the walk's own errors. */
#define STOPPED 1

struct listing {
    const cellar_walk_opts *o;
    cellar_walk_fn fn;
    void *ctx;
};

static int list_file(const char *path, const char *name, const struct stat *st, void *ctx)
{
    (void)name;
    struct listing *l = ctx;
    if (S_ISLNK(st->st_mode)) {
        /* a symlink is listed only if asked and it leads to a regular file;
         * one to a folder is never entered */
        struct stat target;
        if (!(l->o->flags & CELLAR_WALK_FILE_SYMLINKS) || stat(path, &target) != 0 ||
            !S_ISREG(target.st_mode))
            return 0;
    }
    if ((l->o->flags & CELLAR_WALK_REGULAR_ONLY) && !S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode)) {
        cellar_fail(CELLAR_EUNSUPPORTED, "%s: not a regular file (FIFO, socket or device)", path);
        return l->fn(path, CELLAR_EUNSUPPORTED, cellar_error_last(), l->ctx) ? STOPPED : 0;
    }
    return l->fn(path, 0, NULL, l->ctx) ? STOPPED : 0;
}

static void list_error(const char *path, const char *message, void *ctx)
{
    struct listing *l = ctx;
    (void)l->fn(path, cellar_error_code(), message, l->ctx);
}

int cellar_walk_files(const char *root, const cellar_walk_opts *opts, cellar_walk_fn fn,
                      void *ctx)
{
    static const cellar_walk_opts defaults = CELLAR_WALK_OPTS_INIT;
    if (!opts)
        opts = &defaults;
    RETURN_ERROR_IF(!root || !fn, CELLAR_EINVAL, "cellar_walk_files: root and fn are required");
    RETURN_ERROR_IF(opts->version < 1 || opts->version > CELLAR_WALK_OPTS_VERSION, CELLAR_EINVAL,
                    "cellar_walk_files: options version %u unknown", opts->version);
    struct listing l = {opts, fn, ctx};
    walk_opts wo = {.skip_dir = opts->skip_dir, .fn = list_file, .err = list_error, .ctx = &l};
    int rc = walk_tree(root, &wo);
    if (rc == STOPPED)
        return cellar_fail(CELLAR_EUSER, "%s: listing stopped by the caller", root);
    return rc;
}
