/* cellar pull: a Hub repo into the store, downloading only what it lacks. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: cellar pull ORG/NAME [--revision REV] [--include GLOB]... [--exclude GLOB]...\n"
    "                   [--to DIR | --hf-cache[=DIR]] [--jobs N] [--part-size SIZE]\n"
    "                   [--token T] [--offline] [--dry-run] [--force] [--json]\n"
    "                   [--remote oci://H/R]\n"
    "       cellar pull oci://HOST[:PORT]/REPO[:TAG|@DIGEST] [--to DIR | --hf-cache[=DIR]]\n"
    "                   [--plain-http] [--user USER:PASS] [--jobs N] [--json]\n"
    "\n"
    "Downloads one revision of a Hugging Face Hub repo into the store. Files the\n"
    "store already holds (same sha256 or git blob id) are linked, not downloaded;\n"
    "the rest are downloaded in parallel, verified while they stream, and resumed\n"
    "by range if a pull was interrupted.\n"
    "\n"
    "  --revision REV   branch, tag or commit (default: main)\n"
    "  --include GLOB   only paths matching a glob (repeatable)\n"
    "  --exclude GLOB   skip paths matching a glob (repeatable)\n"
    "  --to DIR         lay the files out in DIR as hard links to the store; a file\n"
    "                   there that is neither in the store nor this revision's\n"
    "                   (an edit) stops the pull before anything is written\n"
    "  --force          with --to, replace such files\n"
    "  --hf-cache[=DIR] lay out a Hugging Face cache (the default; DIR defaults to\n"
    "                   $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)\n"
    "  --jobs N         downloads at once (default 8)\n"
    "  --part-size SIZE a file with over twice SIZE left, when no other waits, comes\n"
    "                   in parallel ranged parts (default 32MiB; 0: never)\n"
    "  --token T        Hub token (default: $HF_TOKEN); sent only to the endpoint\n"
    "  --offline        use the store's records only (also HF_HUB_OFFLINE=1)\n"
    "  --dry-run        say what would be downloaded and what reused\n"
    "  --json           print the result as JSON\n"
    "\n"
    "  --remote oci://HOST[:PORT]/REPO  a team cache (also $CELLAR_REMOTE): blobs it\n"
    "                   holds come from it, what comes from the Hub is uploaded to it\n"
    "  --plain-http     the registry speaks http:// without TLS\n"
    "  --user USER:PASS registry credentials (default: $CELLAR_REGISTRY_AUTH, else the\n"
    "                   Docker config: $DOCKER_CONFIG or ~/.docker/config.json)\n"
    "\n"
    "Endpoint: $HF_ENDPOINT (default https://huggingface.co). An oci:// reference\n"
    "pulls a CNCF ModelPack artifact from an OCI registry by the same rules.\n";

struct progress {
    bool tty;
    double started, last_draw;
    size_t files_total, files_done;
    const char *current;
    uint64_t cur_size, cur_done;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(char *out, size_t cap, double bytes)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1000 && u < 4) {
        bytes /= 1000;
        u++;
    }
    snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

static int on_progress(const cellar_pull_event *ev, void *ctx)
{
    struct progress *pr = ctx;
    double t = now_s();
    switch (ev->kind) {
    case CELLAR_PULL_PLAN:
        pr->started = t;
        pr->files_total = ev->total_files;
        return cli_interrupted();
    case CELLAR_PULL_REUSED:
    case CELLAR_PULL_FINISH:
        pr->files_done++;
        break;
    case CELLAR_PULL_RETRY:
        if (pr->tty)
            fprintf(stderr, "\r\033[K%s: retrying: %s\n", ev->path, ev->message);
        break;
    case CELLAR_PULL_WAIT:
        if (pr->tty)
            fprintf(stderr, "\r\033[K%s: another pull is downloading it; waiting\n", ev->path);
        break;
    case CELLAR_PULL_TICK:
        return cli_interrupted();
    case CELLAR_PULL_START:
    case CELLAR_PULL_PROGRESS:
        pr->current = ev->path;
        pr->cur_size = ev->size;
        pr->cur_done = ev->done;
        break;
    }
    if (!pr->tty || (ev->kind == CELLAR_PULL_PROGRESS && t - pr->last_draw < 0.1))
        return cli_interrupted();
    pr->last_draw = t;
    char done[32], total[32], rate[32];
    human(done, sizeof done, (double)ev->total_done);
    human(total, sizeof total, (double)ev->total_size);
    double el = t - pr->started;
    human(rate, sizeof rate, el > 0.05 ? (double)ev->total_done / el : 0);
    int pct = pr->cur_size ? (int)(100.0 * (double)pr->cur_done / (double)pr->cur_size) : 100;
    fprintf(stderr, "\r\033[K[%zu/%zu] %s / %s  %s/s  %s %d%%", pr->files_done, pr->files_total,
            done, total, rate, pr->current ? pr->current : "", pct);
    fflush(stderr);
    return cli_interrupted();
}

static void print_json(const char *repo, const char *rev, const cellar_pull_result *r,
                       bool dry_run)
{
    printf("{\"repo\": ");
    cli_json_string(stdout, repo, strlen(repo));
    printf(", \"revision\": ");
    cli_json_string(stdout, rev, strlen(rev));
    printf(", \"commit\": \"%s\", \"dry_run\": %s, \"files_downloaded\": %llu, "
           "\"bytes_downloaded\": %llu, \"files_reused\": %llu, \"bytes_reused\": %llu, "
           "\"files\": [",
           r->commit, dry_run ? "true" : "false", (unsigned long long)r->files_downloaded,
           (unsigned long long)r->bytes_downloaded, (unsigned long long)r->files_reused,
           (unsigned long long)r->bytes_reused);
    for (size_t i = 0; i < r->n; i++) {
        const cellar_pull_file *f = &r->files[i];
        printf("%s{\"path\": ", i ? ", " : "");
        cli_json_string(stdout, f->path, strlen(f->path));
        printf(", \"size\": %llu, \"etag\": \"%s\", \"action\": \"%s\"}",
               (unsigned long long)f->size, f->etag, f->downloaded ? "download" : "reuse");
    }
    printf("]}\n");
}

/* The options followed by a value. */
static bool takes_value(const char *a)
{
    static const char *const with_value[] = {"--revision", "--include", "--exclude", "--to",
                                             "--jobs", "-j", "--part-size", "--token",
                                             "--remote", "--user", "-u"};
    for (size_t i = 0; i < sizeof with_value / sizeof *with_value; i++)
        if (!strcmp(a, with_value[i]))
            return true;
    return false;
}

int cmd_pull(int argc, char **argv)
{
    const char *repo = NULL, *hf_dir = NULL;
    const char **include = calloc((size_t)argc, sizeof *include);
    const char **exclude = calloc((size_t)argc, sizeof *exclude);
    cellar_pull_opts o = CELLAR_PULL_OPTS_INIT;
    cellar_oci_opts oo = CELLAR_OCI_OPTS_INIT;
    bool json = false, hf = false;
    char *hf_default = NULL;
    int ret = CLI_FAIL;
    if (!include || !exclude) {
        ret = cli_error("out of memory");
        goto done;
    }
    o.include = include;
    o.exclude = exclude;
    cellar_pull_opts_from_env(&o); /* HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE; flags override */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDS_VALUE()                                                                              \
    do {                                                                                           \
        if (!val) {                                                                                \
            ret = cli_usage("pull", "%s needs a value", a);                                        \
            goto done;                                                                             \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        int oci = cli_oci_option(&oo, argc, argv, &i, "pull");
        if (oci < 0) {
            ret = CLI_USAGE;
            goto done;
        }
        if (oci)
            continue;
        if (!strcmp(a, "--remote")) {
            NEEDS_VALUE();
            o.remote = val;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            ret = CLI_OK;
            goto done;
        } else if (!strcmp(a, "--revision")) {
            NEEDS_VALUE();
            o.revision = val;
        } else if (!strcmp(a, "--include")) {
            NEEDS_VALUE();
            include[o.n_include++] = val;
        } else if (!strcmp(a, "--exclude")) {
            NEEDS_VALUE();
            exclude[o.n_exclude++] = val;
        } else if (!strcmp(a, "--to")) {
            NEEDS_VALUE();
            o.to_dir = val;
        } else if (!strcmp(a, "--hf-cache")) {
            hf = true;
            /* "--hf-cache DIR" when DIR cannot be the repo: the repo came
             * already, or another word follows (not an option's value). */
            bool more = false;
            for (int j = i + 2; j < argc; j++) {
                if (takes_value(argv[j]))
                    j++;
                else
                    more |= argv[j][0] != '-';
            }
            if (val && val[0] != '-' && (repo || more)) {
                hf_dir = val;
                i++;
            }
        } else if (!strncmp(a, "--hf-cache=", 11)) {
            hf = true;
            hf_dir = a + 11;
        } else if (!strcmp(a, "--jobs") || !strcmp(a, "-j")) {
            NEEDS_VALUE();
            char *end;
            long n = strtol(val, &end, 10);
            if (*end || n < 1 || n > 64) {
                ret = cli_usage("pull", "--jobs: a number from 1 to 64");
                goto done;
            }
            o.jobs = (unsigned)n;
        } else if (!strcmp(a, "--part-size")) {
            NEEDS_VALUE();
            unsigned long long ps;
            if (!cli_parse_size(val, &ps)) {
                ret = cli_usage("pull", "--part-size: a size such as 64MiB");
                goto done;
            }
            o.part_size = ps ? ps : UINT64_MAX;
        } else if (!strcmp(a, "--token")) {
            NEEDS_VALUE();
            o.token = val;
        } else if (!strcmp(a, "--offline")) {
            o.offline = 1;
        } else if (!strcmp(a, "--dry-run") || !strcmp(a, "-n")) {
            o.dry_run = 1;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--force")) {
            o.force = 1;
        } else if (a[0] == '-') {
            ret = cli_usage("pull", "unknown option '%s'", a);
            goto done;
        } else if (!repo) {
            repo = a;
        } else {
            ret = cli_usage("pull", "one repo at a time ('%s' is extra)", a);
            goto done;
        }
#undef NEEDS_VALUE
    }
    if (!repo) {
        ret = cli_usage("pull", "which repo? (ORG/NAME)");
        goto done;
    }
    if (hf && o.to_dir) {
        ret = cli_usage("pull", "--to and --hf-cache exclude each other");
        goto done;
    }
    if (!o.to_dir) {
        if ((!hf_dir || !*hf_dir) && cellar_hf_cache_from_env(&hf_default) != 0) {
            ret = cli_error_last();
            goto done;
        }
        if (!hf_dir || !*hf_dir)
            hf_dir = hf_default;
        o.hf_cache = hf_dir;
    }

    struct progress pr = {.tty = isatty(STDERR_FILENO) && !json};
    o.progress = on_progress;
    o.progress_ctx = &pr;
    cellar_store *s = NULL;
    if (cli_store_open(&s)) {
        ret = cli_error_last();
        goto done;
    }
    cellar_pull_result r;
    pr.started = now_s();
    cli_catch_interrupt();
    cellar_oci_opts_from_env(&oo);
    bool is_oci = !strncmp(repo, "oci://", 6);
    if (!o.remote && !is_oci) {
        const char *env = getenv("CELLAR_REMOTE");
        if (env && *env)
            o.remote = env;
    }
    o.remote_opts = &oo;
    int rc = is_oci ? cellar_oci_pull(&r, s, repo, &oo, &o) : cellar_pull(&r, s, repo, &o);
    if (!rc && r.remote_rc)
        cli_warn("team cache %s: %s (the pull itself succeeded)", o.remote, r.remote_message);
    if (pr.tty && pr.last_draw > 0)
        fputs("\r\033[K", stderr);
    if (rc) {
        ret = cli_error_last();
    } else if (json) {
        print_json(repo, o.revision ? o.revision : "main", &r, o.dry_run);
        ret = CLI_OK;
    } else {
        char down[32], reuse[32];
        human(down, sizeof down, (double)r.bytes_downloaded);
        human(reuse, sizeof reuse, (double)r.bytes_reused);
        if (o.dry_run)
            for (size_t i = 0; i < r.n; i++)
                printf("%s %s (%llu bytes)\n", r.files[i].downloaded ? "download" : "reuse   ",
                       r.files[i].path, (unsigned long long)r.files[i].size);
        printf("%s %s at %.12s: %s %llu files (%s), %s %llu files (%s)\n",
               o.dry_run ? "would pull" : "pulled", repo, r.commit,
               o.dry_run ? "would download" : "downloaded",
               (unsigned long long)r.files_downloaded, down, o.dry_run ? "reuse" : "reused",
               (unsigned long long)r.files_reused, reuse);
        if (o.remote && !is_oci) {
            char from[32], shared[32];
            human(from, sizeof from, (double)r.bytes_from_remote);
            human(shared, sizeof shared, (double)r.bytes_shared);
            printf("team cache: %llu files (%s) taken from it, %llu files (%s) uploaded to it\n",
                   (unsigned long long)r.files_from_remote, from,
                   (unsigned long long)r.files_shared, shared);
        }
        ret = CLI_OK;
    }
    cellar_pull_result_free(&r);
    cellar_store_free(s);
done:
    free(include);
    free(exclude);
    cellar_free(hf_default);
    return ret;
}
