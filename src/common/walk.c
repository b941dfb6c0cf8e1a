/* Depth-first tree walk with loop protection. */
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

static int walk_dir(struct walker *w, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        int rc = cellar_fail_errno(errno, "%s", dir);
        if (w->o->err)
            w->o->err(dir, cellar_error_last(), w->o->ctx);
        return rc == CELLAR_ENOMEM ? rc : 0;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *path = cellar_path_join(dir, e->d_name);
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
            rc = w->o->fn(path, e->d_name, &st, w->o->ctx);
        }
        free(path);
    }
    closedir(d);
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
        rc = inoset_add(&w.dirs, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
        if (rc >= 0)
            rc = walk_dir(&w, root);
    } else {
        const char *slash = strrchr(root, '/');
        rc = o->fn(root, slash ? slash + 1 : root, &st, o->ctx);
    }
    inoset_free(&w.dirs);
    return rc;
}
