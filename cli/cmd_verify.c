/* cellar verify [--all|SHA256...]: re-hash objects, report damage. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: cellar verify [-q] [--all | SHA256...]\n\n"
    "Re-reads objects (all of them by default) and reports any whose bytes no\n"
    "longer match their name, with every place linked to it. Nothing is\n"
    "deleted: a damaged object may be the only copy of a user's file.\n"
    "Exits 1 if any object is damaged or missing; -q prints only problems.\n";

struct verify {
    cellar_store *s;
    unsigned long long ok, bad;
    cli_progress prog;
    cellar_progress pr;
};

/* Counts the objects (a directory walk, no reading) for the progress
 * line's total. */
static int count_object(const cellar_object_info *info, void *ctx)
{
    struct verify *v = ctx;
    v->pr.files_total++;
    v->pr.bytes_total += info->size;
    return cli_interrupted();
}

static int print_place(const char *path, cellar_link_mode mode, void *ctx)
{
    (void)ctx;
    fputs("  linked at ", stderr);
    cli_put_escaped(stderr, path);
    fprintf(stderr, " (%s)\n", cellar_link_mode_name(mode));
    return 0;
}

static int on_object(const uint8_t sha256[32], int status, const char *message, void *ctx)
{
    struct verify *v = ctx;
    v->pr.files_done++;
    struct stat st;
    char *path = NULL;
    if (cellar_store_object_path(&path, v->s, sha256) == 0 && stat(path, &st) == 0)
        v->pr.bytes_done += (uint64_t)st.st_size;
    cellar_free(path);
    cellar_error_clear();
    if (status == 0) {
        v->ok++;
        return cli_progress_show(&v->prog, &v->pr);
    }
    v->bad++;
    cli_progress_clear(&v->prog);
    cli_error("%s", message);
    if (cellar_store_foreach_place(v->s, sha256, print_place, NULL) != 0)
        return 1;
    return cli_progress_show(&v->prog, &v->pr);
}

int cmd_verify(int argc, char **argv)
{
    if (!cli_options_first(argc, argv, NULL))
        return cli_error("out of memory");
    int i = 1;
    bool quiet = false;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return CLI_OK;
        } else if (!strcmp(argv[i], "-q")) {
            quiet = true;
        } else if (strcmp(argv[i], "--all") != 0) {
            return cli_usage("verify", "unknown option '%s'", argv[i]);
        }
    }
    size_t n = (size_t)(argc - i);
    uint8_t (*shas)[32] = n ? calloc(n, sizeof *shas) : NULL;
    if (n && !shas)
        return cli_error("out of memory");
    for (size_t k = 0; k < n; k++) {
        uint32_t algos;
        size_t len;
        uint8_t digest[CELLAR_DIGEST_MAX];
        const uint32_t sha256 = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256);
        if (cellar_digest_parse(&algos, digest, &len, argv[i + (int)k], sha256) == 0 &&
            algos == sha256)
            memcpy(shas[k], digest, 32);
        else {
            free(shas);
            return cli_usage("verify", "'%s' is not a sha256", argv[i + (int)k]);
        }
    }
    struct verify v = {0};
    if (cli_store_open(&v.s) != 0) {
        free(shas);
        return cli_error_last();
    }
    cli_progress_init(&v.prog, "verify", true);
    cli_catch_interrupt();
    int rc = 0;
    if (v.prog.on && n == 0)
        rc = cellar_store_foreach(v.s, count_object, &v);
    else
        v.pr.files_total = n;
    if (rc == 0)
        rc = cellar_store_verify(v.s, n, (const uint8_t(*)[32])shas, on_object, &v);
    cli_progress_clear(&v.prog);
    cellar_store_free(v.s);
    free(shas);
    if (rc)
        return cli_error_last();
    if (!quiet || v.bad)
        printf("%llu objects intact, %llu damaged or missing\n", v.ok, v.bad);
    return v.bad ? CLI_FAIL : CLI_OK;
}
