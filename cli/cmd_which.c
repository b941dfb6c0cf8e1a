/* cellar which DIGEST: where the store keeps a blob. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: cellar which DIGEST\n\n"
    "Prints the path of the store's copy of a blob, so other tools can skip a\n"
    "download. DIGEST is a sha256 (64 hex digits, optionally 'sha256:'), a\n"
    "git blob id (40 hex digits, optionally 'git-sha1:' or 'git:') or\n"
    "'blake3:<hex>'. Exits 1 when the store does not have it.\n";

int cmd_which(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    if (argc != 2)
        return cli_usage("which", "expected one DIGEST");
    const char *arg = argv[1];
    /* bare hex: 64 digits are a sha256, 40 a git blob id */
    uint32_t algos;
    size_t len;
    uint8_t digest[CELLAR_DIGEST_MAX];
    if (cellar_digest_parse(&algos, digest, &len, arg,
                            CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256) |
                                CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1)) != 0)
        return cli_usage("which", "%s", cellar_error_last());
    cellar_algo algo = (cellar_algo)__builtin_ctz(algos);
    cellar_store *s;
    if (cli_store_open(&s) != 0)
        return cli_error_last();
    uint8_t sha[32];
    int rc = cellar_store_find(sha, s, algo, digest);
    char *path = NULL;
    if (rc == 0)
        rc = cellar_store_object_path(&path, s, sha);
    else if (rc == CELLAR_ENOTFOUND)
        rc = cli_error("%s: not in the store", arg);
    else
        rc = cli_error_last();
    cellar_store_free(s);
    if (!path)
        return rc ? CLI_FAIL : cli_error_last();
    printf("%s\n", path);
    cellar_free(path);
    return CLI_OK;
}
