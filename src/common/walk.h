/* Walking trees of user files (dedup, du, import-hf, and through
 * cellar_walk_files() hash -r and add): depth first, each folder's entries
 * in byte order (strcmp), without following symlinks unless asked, never
 * entering a directory twice (a loop of symlinks) nor the store itself. */
#ifndef CELLAR_WALK_H
#define CELLAR_WALK_H

#include <stdbool.h>
#include <sys/stat.h>

/* Called for every entry that is not a directory: path, its last
 * component, its lstat (stat when following symlinks). A non-zero return
 * stops the walk and is returned. */
typedef int (*walk_fn)(const char *path, const char *name, const struct stat *st, void *ctx);
/* Called for an entry that cannot be read (message names it); the walk
 * goes on. */
typedef void (*walk_err_fn)(const char *path, const char *message, void *ctx);

typedef struct walk_opts {
    bool follow;           /* follow symlinks (to files and directories) */
    const char *skip_dir;  /* a directory never entered (the store), or NULL */
    walk_fn fn;
    walk_err_fn err;       /* may be NULL */
    void *ctx;
} walk_opts;

/* Walks root (a directory, or a single file). CELLAR_ENOTFOUND etc. if root
 * itself cannot be read; CELLAR_ENOMEM if the walk could not go on (then
 * entries were left out). */
int walk_tree(const char *root, const walk_opts *o);

#endif
