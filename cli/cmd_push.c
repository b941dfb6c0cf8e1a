/* cellar push: a folder or a recorded snapshot to an OCI registry as a CNCF
 * ModelPack artifact (docs/oci.md). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: cellar push SRC oci://HOST[:PORT]/REPO[:TAG] [--plain-http] [--user USER:PASS]\n"
    "                   [--mount-from REPO] [--chunk-size SIZE] [--json]\n"
    "\n"
    "Pushes SRC to an OCI registry as a CNCF ModelPack artifact: one layer per\n"
    "file (its digest is the sha256 the store already knows), a config saying\n"
    "what cellar can tell of the model, a manifest tagged TAG (default latest).\n"
    "SRC is a folder (its files are added to the store) or ORG/NAME[@REV] of a\n"
    "snapshot the store records (from cellar pull). Blobs the registry holds are\n"
    "not sent again; blobs another repository of it holds are mounted.\n"
    "\n"
    "  --plain-http       http:// without TLS (TLS is verified otherwise)\n"
    "  --user USER:PASS   credentials (default: $CELLAR_REGISTRY_AUTH, else the\n"
    "                     Docker config: $DOCKER_CONFIG or ~/.docker/config.json)\n"
    "  --mount-from REPO  mount blobs from this repository of the same registry\n"
    "  --chunk-size SIZE  upload in PATCH chunks of SIZE (default: one PUT per blob)\n"
    "  --json             print the result as JSON\n";

/* Shared with cmd_pull.c: --plain-http, --user; 1 if a was one (and *i
 * moved past its value), 0 if not, -1 on a usage error. */
int cli_oci_option(cellar_oci_opts *o, int argc, char **argv, int *i, const char *verb)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--plain-http")) {
        o->plain_http = 1;
        return 1;
    }
    if (!strcmp(a, "--user") || !strcmp(a, "-u")) {
        if (*i + 1 >= argc) {
            cli_usage(verb, "%s needs USER:PASS", a);
            return -1;
        }
        o->auth = argv[++*i];
        if (!strchr(o->auth, ':')) {
            cli_usage(verb, "--user: USER:PASS");
            return -1;
        }
        return 1;
    }
    return 0;
}

static int on_event(const cellar_pull_event *ev, void *ctx)
{
    bool *tty = ctx;
    if (!*tty || !ev->path)
        return cli_interrupted();
    if (ev->kind == CELLAR_PULL_START)
        fprintf(stderr, "\r\033[K[%llu/%llu MB] %s", (unsigned long long)(ev->total_done >> 20),
                (unsigned long long)(ev->total_size >> 20), ev->path);
    return cli_interrupted();
}

int cmd_push(int argc, char **argv)
{
    cellar_oci_opts o = CELLAR_OCI_OPTS_INIT;
    const char *src = NULL, *ref = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_oci_option(&o, argc, argv, &i, "push");
        if (r < 0)
            return CLI_USAGE;
        if (r)
            continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--mount-from")) {
            if (i + 1 >= argc)
                return cli_usage("push", "--mount-from needs a repository");
            o.mount_from = argv[++i];
        } else if (!strcmp(a, "--chunk-size")) {
            unsigned long long cs;
            if (i + 1 >= argc || !cli_parse_size(argv[++i], &cs) || !cs)
                return cli_usage("push", "--chunk-size: a size such as 64MiB");
            o.chunk_size = cs;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage("push", "unknown option '%s'", a);
        } else if (!src) {
            src = a;
        } else if (!ref) {
            ref = a;
        } else {
            return cli_usage("push", "'%s' is extra", a);
        }
    }
    if (!src || !ref)
        return cli_usage("push", "SRC and oci://HOST/REPO[:TAG] are needed");
    if (strncmp(ref, "oci://", 6))
        return cli_usage("push", "the destination is oci://HOST[:PORT]/REPO[:TAG]");
    cellar_oci_opts_from_env(&o);
    bool tty = isatty(STDERR_FILENO) && !json;
    o.progress = on_event;
    o.progress_ctx = &tty;
    cli_catch_interrupt(); /* Ctrl-C: on_event's answer stops the push cleanly */
    cellar_store *s = NULL;
    if (cli_store_open(&s))
        return cli_error_last();
    cellar_oci_push_result r;
    int rc = cellar_oci_push(&r, s, src, ref, &o);
    if (tty)
        fputs("\r\033[K", stderr);
    int ret;
    if (rc) {
        ret = cli_error_last();
    } else if (json) {
        printf("{\"digest\": \"%s\", \"config\": \"%s\", \"layers\": %zu, \"blobs_present\": "
               "%llu, \"blobs_mounted\": %llu, \"blobs_uploaded\": %llu, \"bytes_uploaded\": "
               "%llu}\n",
               r.digest, r.config_digest, r.layers, (unsigned long long)r.blobs_present,
               (unsigned long long)r.blobs_mounted, (unsigned long long)r.blobs_uploaded,
               (unsigned long long)r.bytes_uploaded);
        ret = CLI_OK;
    } else {
        char up[32];
        printf("pushed %zu files as %s: %llu uploaded (%s), %llu mounted, %llu already there\n",
               r.layers, r.digest, (unsigned long long)r.blobs_uploaded,
               cli_human_size(up, r.bytes_uploaded), (unsigned long long)r.blobs_mounted,
               (unsigned long long)r.blobs_present);
        ret = CLI_OK;
    }
    cellar_store_free(s);
    return ret;
}
