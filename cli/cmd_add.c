/* cellar add PATH...: put files (folders recursively) into the store. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: cellar add [--copy] PATH...\n\n"
    "Puts files, and folders recursively, into the store and prints each\n"
    "file's sha256. A file on the store's filesystem is adopted with a hard\n"
    "link (it becomes read-only); --copy stores a copy and leaves it alone.\n";

struct adding {
    cellar_store *s;
    unsigned flags;
    int failed;
};

static int add_one(const char *path, int rc, const char *message, void *ctx)
{
    struct adding *a = ctx;
    if (rc) {
        cli_error("%s", message);
        a->failed++;
        return 0;
    }
    cellar_digests d;
    if (cellar_store_add_file(&d, a->s, path, a->flags) != 0) {
        cli_error_last();
        a->failed++;
        return 0;
    }
    char hex[2 * CELLAR_DIGEST_MAX + 1];
    cellar_digest_hex(hex, &d, CELLAR_ALGO_SHA256);
    printf("%s  %s\n", hex, path);
    return 0;
}

/* A file, or the files under a folder in the library's order (sorted in
 * each folder). Inside folders symlinks are not followed: the file they
 * name is added where it lives; the store's own folder (its index and
 * locks) is never entered. */
static void add_path(struct adding *a, const char *path)
{
    cellar_walk_opts wo = CELLAR_WALK_OPTS_INIT;
    wo.skip_dir = cellar_store_home(a->s);
    if (cellar_walk_files(path, &wo, add_one, a) != 0) {
        cli_error_last();
        a->failed++;
    }
}

int cmd_add(int argc, char **argv)
{
    if (!cli_options_first(argc, argv, NULL))
        return cli_error("out of memory");
    unsigned flags = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return CLI_OK;
        } else if (!strcmp(argv[i], "--copy")) {
            flags |= CELLAR_ADD_COPY;
        } else if (!strcmp(argv[i], "--")) {
            i++;
            break;
        } else {
            return cli_usage("add", "unknown option '%s'", argv[i]);
        }
    }
    if (i == argc)
        return cli_usage("add", "no PATH given");
    cellar_store *s;
    if (cli_store_open(&s) != 0)
        return cli_error_last();
    struct adding a = {s, flags, 0};
    for (; i < argc; i++)
        add_path(&a, argv[i]);
    cellar_store_free(s);
    return a.failed ? CLI_FAIL : CLI_OK;
}
