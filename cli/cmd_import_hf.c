/* cellar import-hf [HF_CACHE]: one copy per sha256 across a Hugging Face cache. */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "usage: cellar import-hf [-v] [HF_CACHE]\n\n"
    "Adopts every blob of a Hugging Face cache (default: $HF_HUB_CACHE, else\n"
    "$HF_HOME/hub, else ~/.cache/huggingface/hub) into the store after\n"
    "checking it against its name, and makes it a hard link to the stored\n"
    "copy, so every repo shares one copy per sha256. The cache keeps working\n"
    "for diffusers and transformers; its snapshots and refs are recorded.\n";

struct report {
    bool verbose;
    cli_progress prog;
};

static int on_event(cellar_dedup_event_kind kind, const char *path, uint64_t size,
                    const char *message, void *ctx)
{
    struct report *r = ctx;
    bool verbose = r->verbose;
    (void)size;
    if (kind != CELLAR_DEDUP_LINKED || verbose)
        cli_progress_clear(&r->prog);
    if (kind == CELLAR_DEDUP_ERROR || kind == CELLAR_DEDUP_SKIPPED)
        cli_warn("%s", message);
    else if (kind == CELLAR_DEDUP_LINKED && verbose)
        printf("linked %s\n", path);
    return cli_interrupted();
}

int cmd_import_hf(int argc, char **argv)
{
    bool verbose = false;
    const char *cache = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return CLI_OK;
        } else if (!strcmp(argv[i], "-v")) {
            verbose = true;
        } else if (argv[i][0] == '-' || cache) {
            return cli_usage("import-hf", "unexpected argument '%s'", argv[i]);
        } else {
            cache = argv[i];
        }
    }
    char *env_cache = NULL;
    if (!cache) {
        if (cellar_hf_cache_from_env(&env_cache) != 0)
            return cli_error_last();
        cache = env_cache;
    }
    cellar_store *s;
    if (cli_store_open(&s) != 0) {
        cellar_free(env_cache);
        return cli_error_last();
    }
    cellar_import_stats st;
    struct report rep = {.verbose = verbose};
    cli_progress_init(&rep.prog, "import-hf", !verbose);
    cli_catch_interrupt();
    cellar_import_opts o = CELLAR_IMPORT_OPTS_INIT;
    o.cb = on_event;
    o.ctx = &rep;
    o.progress = cli_progress_cb;
    o.progress_ctx = &rep.prog;
    int rc = cellar_store_import_hf(&st, s, cache, &o);
    cellar_store_free(s);
    cli_progress_clear(&rep.prog);
    cellar_free(env_cache);
    if (rc)
        return cli_error_last();
    char b1[32], b2[32], b3[32];
    uint64_t saved = st.bytes_before > st.bytes_after ? st.bytes_before - st.bytes_after : 0;
    printf("repos:  %llu, blobs: %llu, sharing the store's copy: %llu\n",
           (unsigned long long)st.repos, (unsigned long long)st.blobs,
           (unsigned long long)st.linked);
    printf("before: %llu bytes (%s)\n", (unsigned long long)st.bytes_before,
           cli_human_size(b1, st.bytes_before));
    printf("after:  %llu bytes (%s)\n", (unsigned long long)st.bytes_after,
           cli_human_size(b2, st.bytes_after));
    printf("saved:  %llu bytes (%s)\n", (unsigned long long)saved, cli_human_size(b3, saved));
    return st.errors ? CLI_FAIL : CLI_OK;
}
