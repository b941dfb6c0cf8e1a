/* cellar du [PATH...] [--json]: disk usage counting each inode once. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: cellar du [--json] [PATH...]\n\n"
    "Disk usage of each PATH (default: the store) and of each folder directly\n"
    "inside it (a repo, a model folder): apparent size (every name counted),\n"
    "unique size (each file counted once however many hard links it has),\n"
    "space on disk, and what sharing saves. The total counts each file once\n"
    "across all PATHs. Symlinks are not followed.\n";

static void json_row(const cellar_du_row *r)
{
    printf("{\"path\": ");
    cli_json_string(stdout, r->path, strlen(r->path));
    printf(", \"files\": %llu, \"apparent\": %llu, \"unique\": %llu, \"disk\": %llu, "
           "\"saved\": %llu}",
           (unsigned long long)r->files, (unsigned long long)r->apparent,
           (unsigned long long)r->unique, (unsigned long long)r->disk,
           (unsigned long long)(r->apparent - r->unique));
}

static void text_row(const cellar_du_row *r, bool sub)
{
    char a[32], u[32], d[32], s[32];
    printf("%12s %12s %12s %12s  %s%s\n", cli_human_size(a, r->apparent),
           cli_human_size(u, r->unique), cli_human_size(d, r->disk),
           cli_human_size(s, r->apparent - r->unique), sub ? "  " : "", r->path);
}

int cmd_du(int argc, char **argv)
{
    if (!cli_options_first(argc, argv, NULL))
        return cli_error("out of memory");
    bool json = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return CLI_OK;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--")) {
            i++;
            break;
        } else {
            return cli_usage("du", "unknown option '%s'", argv[i]);
        }
    }
    char *store_objects = NULL;
    const char *const *paths = (const char *const *)argv + i;
    size_t n = (size_t)(argc - i);
    if (n == 0) {
        cellar_store *s;
        if (cli_store_open(&s) != 0)
            return cli_error_last();
        const char *home = cellar_store_home(s);
        size_t len = strlen(home) + sizeof "/objects";
        store_objects = malloc(len);
        if (store_objects)
            snprintf(store_objects, len, "%s/objects", home);
        cellar_store_free(s);
        if (!store_objects)
            return cli_error("out of memory");
        paths = (const char *const *)&store_objects;
        n = 1;
    }
    cellar_du *du;
    int rc = cellar_du_scan(&du, n, paths);
    if (rc) {
        free(store_objects);
        return cli_error_last();
    }
    if (json) {
        printf("{\"rows\": [");
        for (size_t k = 0; k < du->n; k++) {
            printf(k ? ",\n  " : "\n  ");
            json_row(&du->rows[k]);
        }
        printf("\n], \"total\": ");
        json_row(&du->total);
        printf("}\n");
    } else {
        printf("%12s %12s %12s %12s  %s\n", "apparent", "unique", "disk", "saved", "path");
        /* A row for each PATH, then its folders indented under it. */
        size_t p = 0;
        for (size_t k = 0; k < du->n; k++) {
            bool top = p < n && !strcmp(du->rows[k].path, paths[p]);
            if (top)
                p++;
            text_row(&du->rows[k], !top);
        }
        text_row(&du->total, false);
    }
    cellar_du_free(du);
    free(store_objects); /* paths may point at it until here */
    return CLI_OK;
}
