/* cellar gc [--dry-run] [--grace 1h]: remove objects nothing links to. */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "usage: cellar gc [--dry-run] [--grace DURATION] [--partials] [-v]\n\n"
    "Removes objects nothing links to any more (no other hard link, no\n"
    "symlink cellar made still pointing at it), except those changed within\n"
    "the grace period (default 1h; e.g. 30m, 2d, 0) and those a running\n"
    "cellar is adding, linking or about to place (pinned). Also clears stale\n"
    "temp files; resumable partials of downloads after a week, or with\n"
    "--partials every one no running pull holds (a full disk).\n";

static int on_removed(const uint8_t sha256[32], uint64_t size, void *ctx)
{
    const bool *verbose = ctx;
    if (!*verbose)
        return cli_interrupted();
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", sha256[i]);
    printf("%s %llu\n", hex, (unsigned long long)size);
    return cli_interrupted();
}

int cmd_gc(int argc, char **argv)
{
    cellar_gc_opts o = CELLAR_GC_OPTS_INIT;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return CLI_OK;
        } else if (!strcmp(argv[i], "--dry-run") || !strcmp(argv[i], "-n")) {
            o.dry_run = 1;
        } else if (!strcmp(argv[i], "--partials")) {
            o.partials = 1;
        } else if (!strcmp(argv[i], "-v")) {
            verbose = true;
        } else if (!strcmp(argv[i], "--grace")) {
            if (i + 1 == argc || !cli_parse_duration(argv[i + 1], &o.grace_seconds))
                return cli_usage("gc", "--grace needs a duration such as 1h or 30m");
            i++;
        } else {
            return cli_usage("gc", "unknown option '%s'", argv[i]);
        }
    }
    cellar_store *s;
    if (cli_store_open(&s) != 0)
        return cli_error_last();
    cellar_gc_stats st;
    cli_progress prog;
    cli_progress_init(&prog, "gc", !verbose);
    o.progress = cli_progress_cb;
    o.progress_ctx = &prog;
    cli_catch_interrupt();
    int rc = cellar_store_gc(&st, s, &o, on_removed, &verbose);
    cellar_store_free(s);
    cli_progress_clear(&prog);
    if (rc)
        return cli_error_last();
    char b[32];
    printf("%s %llu objects (%s), kept %llu; %llu temp files cleared\n",
           o.dry_run ? "would remove" : "removed", (unsigned long long)st.objects_removed,
           cli_human_size(b, st.bytes_removed), (unsigned long long)st.objects_kept,
           (unsigned long long)st.temp_removed);
    return CLI_OK;
}
