/* cellar dedup PATH...: identical files become hard links to one stored copy. */
#include "cli.h"

#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: cellar dedup [--dry-run] [--min-size SIZE] [--paranoid] [-L] [-v] PATH...\n\n"
    "Finds identical files under the PATHs (model folders, a Hugging Face\n"
    "cache...) and makes each a hard link to the one copy in the store, then\n"
    "prints the bytes on disk before, after and saved. Each replacement is\n"
    "atomic and keeps the file's name; linked files become read-only. Files\n"
    "with other bytes are never touched, nor files a process has open for\n"
    "writing (those are copied into the store, not shared). Read-only does\n"
    "not stop root: a write as root through any linked name changes every copy.\n\n"
    "  --dry-run        report what would change, change nothing\n"
    "  --min-size SIZE  ignore smaller files (e.g. 1MB; default 1)\n"
    "  --paranoid       compare bytes too before linking\n"
    "  -L               follow symlinks to files inside the PATHs (left alone by\n"
    "                   default; targets elsewhere are never changed)\n"
    "  -v               list every file linked\n";

struct report {
    bool verbose, dry;
    cli_progress prog;
};

static int on_event(cellar_dedup_event_kind kind, const char *path, uint64_t size,
                    const char *message, void *ctx)
{
    struct report *r = ctx;
    (void)size;
    if (kind != CELLAR_DEDUP_LINKED || r->verbose)
        cli_progress_clear(&r->prog);
    if (kind == CELLAR_DEDUP_ERROR)
        cli_warn("%s", message);
    else if (kind == CELLAR_DEDUP_SKIPPED)
        cli_warn("%s", message);
    else if (kind == CELLAR_DEDUP_LINKED && r->verbose)
        printf("%s %s\n", r->dry ? "would link" : "linked", path);
    return cli_interrupted();
}

int cmd_dedup(int argc, char **argv)
{
    static const char *const with_value[] = {"--min-size", NULL};
    if (!cli_options_first(argc, argv, with_value))
        return cli_error("out of memory");
    cellar_dedup_opts o = CELLAR_DEDUP_OPTS_INIT;
    o.min_size = 1;
    struct report r = {0};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--dry-run") || !strcmp(a, "-n")) {
            o.dry_run = 1;
        } else if (!strcmp(a, "--paranoid")) {
            o.flags |= CELLAR_DEDUP_PARANOID;
        } else if (!strcmp(a, "-L") || !strcmp(a, "--follow-symlinks")) {
            o.flags |= CELLAR_DEDUP_FOLLOW_SYMLINKS;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            r.verbose = true;
        } else if (!strcmp(a, "--min-size")) {
            unsigned long long v;
            if (i + 1 == argc || !cli_parse_size(argv[i + 1], &v))
                return cli_usage("dedup", "--min-size needs a size such as 1MB");
            o.min_size = v;
            i++;
        } else if (!strcmp(a, "--")) {
            i++;
            break;
        } else {
            return cli_usage("dedup", "unknown option '%s'", a);
        }
    }
    if (i == argc)
        return cli_usage("dedup", "no PATH given");
    r.dry = o.dry_run != 0;
    o.cb = on_event;
    o.ctx = &r;
    cli_progress_init(&r.prog, "dedup", !r.verbose);
    o.progress = cli_progress_cb;
    o.progress_ctx = &r.prog;
    cli_catch_interrupt();
    cellar_store *s;
    if (cli_store_open(&s) != 0)
        return cli_error_last();
    cellar_dedup_stats st;
    int rc = cellar_store_dedup(&st, s, (size_t)(argc - i), (const char *const *)argv + i, &o);
    cellar_store_free(s);
    cli_progress_clear(&r.prog);
    if (rc)
        return cli_error_last();
    char b1[32], b2[32], b3[32];
    uint64_t saved = st.bytes_before > st.bytes_after ? st.bytes_before - st.bytes_after : 0;
    printf("files:  %llu considered, %llu %s the store's copy\n", (unsigned long long)st.files,
           (unsigned long long)st.linked, r.dry ? "would share" : "share");
    printf("before: %llu bytes (%s)\n", (unsigned long long)st.bytes_before,
           cli_human_size(b1, st.bytes_before));
    printf("after:  %llu bytes (%s)%s\n", (unsigned long long)st.bytes_after,
           cli_human_size(b2, st.bytes_after), r.dry ? " (dry run: nothing changed)" : "");
    printf("saved:  %llu bytes (%s)\n", (unsigned long long)saved, cli_human_size(b3, saved));
    if (geteuid() == 0 && st.linked && !r.dry)
        printf("note:   running as root: read-only (0444) does not stop root's writes; a\n"
               "        write as root through any linked name changes every copy\n");
    return st.errors ? CLI_FAIL : CLI_OK;
}
