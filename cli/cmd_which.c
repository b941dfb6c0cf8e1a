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

static const char *strip(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

int cmd_which(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    if (argc != 2)
        return cli_usage("which", "expected one DIGEST");
    const char *arg = argv[1], *hex;
    cellar_algo algo;
    if ((hex = strip(arg, "sha256:"))) {
        algo = CELLAR_ALGO_SHA256;
    } else if ((hex = strip(arg, "blake3:"))) {
        algo = CELLAR_ALGO_BLAKE3;
    } else if ((hex = strip(arg, "git-sha1:")) || (hex = strip(arg, "git:"))) {
        algo = CELLAR_ALGO_GITSHA1;
    } else {
        hex = arg;
        algo = strlen(arg) == 40 ? CELLAR_ALGO_GITSHA1 : CELLAR_ALGO_SHA256;
    }
    size_t len = cellar_algo_len(algo);
    uint8_t digest[CELLAR_DIGEST_MAX];
    bool ok = cli_parse_hex(digest, hex, len);
    if (!ok)
        return cli_usage("which", "'%s' is not a %s digest", arg, cellar_algo_name(algo));
    cellar_store *s;
    if (cellar_store_open(&s, NULL) != 0)
        return cli_error_last();
    uint8_t sha[32];
    int rc = cellar_store_lookup(s, algo, digest, sha);
    char *path = NULL;
    if (rc == 1)
        rc = cellar_store_object_path(s, sha, &path);
    else if (rc == 0)
        rc = cli_error("%s: not in the store", arg);
    else
        rc = cli_error_last();
    cellar_store_free(s);
    if (!path)
        return rc ? CLI_FAIL : cli_error_last();
    printf("%s\n", path);
    free(path);
    return CLI_OK;
}
