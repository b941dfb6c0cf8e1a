/* cellar map [--json]: every stored sha256 and the path of its copy. */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "usage: cellar map [--json]\n\n"
    "Prints every sha256 the store holds and the path of its copy (the cache\n"
    "mapping other downloaders can consult): 'sha256 path' lines, or with\n"
    "--json one object {\"<sha256>\": \"<path>\", ...}.\n";

struct map {
    bool json;
    unsigned long long count;
};

static int print_one(const cellar_object_info *info, void *ctx)
{
    struct map *m = ctx;
    char hex[2 * CELLAR_DIGEST_MAX + 1];
    cellar_digest_hex(hex, &info->digests, CELLAR_ALGO_SHA256);
    if (m->json) {
        printf("%s\"%s\": ", m->count ? ",\n " : "\n ", hex);
        cli_json_string(stdout, info->path, strlen(info->path));
    } else {
        printf("%s %s\n", hex, info->path);
    }
    m->count++;
    return 0;
}

int cmd_map(int argc, char **argv)
{
    struct map m = {false, 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return CLI_OK;
        } else if (!strcmp(argv[i], "--json")) {
            m.json = true;
        } else {
            return cli_usage("map", "unexpected argument '%s'", argv[i]);
        }
    }
    cellar_store *s;
    if (cli_store_open(&s) != 0)
        return cli_error_last();
    if (m.json)
        printf("{");
    int rc = cellar_store_foreach(s, print_one, &m);
    if (m.json)
        printf("\n}\n");
    cellar_store_free(s);
    return rc ? cli_error_last() : CLI_OK;
}
