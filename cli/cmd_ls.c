/* cellar ls: the store's objects. */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "usage: cellar ls [--json]\n"
    "       cellar ls --by-model [--json] PATH...\n\n"
    "Lists the store's objects: sha256, size, the number of other hard links\n"
    "to it (places sharing the copy), and the other digests the index knows.\n\n"
    "--by-model summarises models folders (ComfyUI, A1111, InvokeAI) instead:\n"
    "every weight file, diffusers folder and shard set under the PATHs, grouped\n"
    "by what it is (identified from its header), with sizes, hard links and\n"
    "duplicate copies (same sha256; only same-size files are hashed).\n";

struct ls {
    bool json;
    unsigned long long count;
};

static int print_one(const cellar_object_info *info, void *ctx)
{
    struct ls *l = ctx;
    char hex[2 * CELLAR_DIGEST_MAX + 1], b3[2 * CELLAR_DIGEST_MAX + 1] = "",
                                         git[2 * CELLAR_DIGEST_MAX + 1] = "";
    cellar_digest_hex(hex, &info->digests, CELLAR_ALGO_SHA256);
    if (info->digests.have & CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3))
        cellar_digest_hex(b3, &info->digests, CELLAR_ALGO_BLAKE3);
    if (info->digests.have & CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1))
        cellar_digest_hex(git, &info->digests, CELLAR_ALGO_GITSHA1);
    if (l->json) {
        printf("%s{\"sha256\": \"%s\", \"size\": %llu, \"links\": %llu", l->count ? ",\n " : "\n ",
               hex, (unsigned long long)info->size, (unsigned long long)(info->nlink - 1));
        if (*b3)
            printf(", \"blake3\": \"%s\"", b3);
        if (*git)
            printf(", \"git_sha1\": \"%s\"", git);
        printf("}");
    } else {
        printf("%s %12llu %4llu", hex, (unsigned long long)info->size,
               (unsigned long long)(info->nlink - 1));
        if (*git)
            printf(" git:%s", git);
        printf("\n");
    }
    l->count++;
    return 0;
}

/* --by-model [--json] PATH... (cli/ls_by_model.c) */
static int ls_by_model(int argc, char **argv)
{
    bool json = false;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return CLI_OK;
        } else if (strcmp(argv[i], "--by-model") && argv[i][0] == '-')
            return cli_usage("ls", "unexpected option '%s'", argv[i]);
        else if (strcmp(argv[i], "--by-model"))
            argv[1 + n++] = argv[i];
    }
    return cli_ls_by_model(n, argv + 1, json);
}

int cmd_ls(int argc, char **argv)
{
    struct ls l = {false, 0};
    bool by_model = false;
    for (int i = 1; i < argc; i++)
        by_model |= !strcmp(argv[i], "--by-model");
    if (by_model)
        return ls_by_model(argc, argv);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return CLI_OK;
        } else if (!strcmp(argv[i], "--json")) {
            l.json = true;
        } else {
            return cli_usage("ls", "unexpected argument '%s'", argv[i]);
        }
    }
    cellar_store *s;
    if (cli_store_open(&s) != 0)
        return cli_error_last();
    if (l.json)
        printf("[");
    int rc = cellar_store_foreach(s, print_one, &l);
    if (l.json)
        printf("\n]\n");
    cellar_store_free(s);
    return rc ? cli_error_last() : CLI_OK;
}
