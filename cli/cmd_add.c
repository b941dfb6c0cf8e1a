/* cellar add PATH...: put files (folders recursively) into the store. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: cellar add [--copy] PATH...\n\n"
    "Puts files, and folders recursively, into the store and prints each\n"
    "file's sha256. A file on the store's filesystem is adopted with a hard\n"
    "link (it becomes read-only); --copy stores a copy and leaves it alone.\n";

static int add_path(cellar_store *s, const char *path, unsigned flags, int *failed)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        cli_error("%s: %s", path, strerror(errno));
        (*failed)++;
        return 0;
    }
    if (S_ISDIR(st.st_mode)) {
        /* The store's own folder holds its index and locks, not user files. */
        char *real = realpath(path, NULL);
        bool store = real && !strcmp(real, cellar_store_home(s));
        free(real);
        if (store)
            return 0;
        DIR *d = opendir(path);
        if (!d) {
            cli_error("%s: %s", path, strerror(errno));
            (*failed)++;
            return 0;
        }
        struct dirent *e;
        int rc = 0;
        while (rc == 0 && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            size_t len = strlen(path) + strlen(e->d_name) + 2;
            char *sub = malloc(len);
            if (!sub) {
                rc = cli_error("out of memory");
                break;
            }
            snprintf(sub, len, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/",
                     e->d_name);
            struct stat sst;
            /* Inside folders symlinks are not followed: the file they name
             * is added where it lives. */
            if (lstat(sub, &sst) == 0 && !S_ISLNK(sst.st_mode))
                rc = add_path(s, sub, flags, failed);
            free(sub);
        }
        closedir(d);
        return rc;
    }
    cellar_digests d;
    if (cellar_store_add_file(s, path, flags, &d) != 0) {
        cli_error_last();
        (*failed)++;
        return 0;
    }
    char hex[2 * CELLAR_DIGEST_MAX + 1];
    cellar_digest_hex(hex, &d, CELLAR_ALGO_SHA256);
    printf("%s  %s\n", hex, path);
    return 0;
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
    if (cellar_store_open(&s, NULL) != 0)
        return cli_error_last();
    int failed = 0, rc = 0;
    for (; rc == 0 && i < argc; i++)
        rc = add_path(s, argv[i], flags, &failed);
    cellar_store_free(s);
    return rc || failed ? CLI_FAIL : CLI_OK;
}
