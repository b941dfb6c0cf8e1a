/* cellar get REF: resolves a model reference to local files (pulling from
 * the Hub through the store when needed) and prints their paths, what
 * DiffSynth-Studio puts in ModelConfig.path. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: cellar get REF [--base DIR] [--revision REV] [--pattern GLOB]\n"
    "                      [--skip-download] [--last-wins] [--json]\n\n"
    "Resolves a model reference to local files and prints one path a line.\n"
    "REF is a local file, shard folder or *.index.json; ARCHIVE.dduf:COMPONENT;\n"
    "or a Hub repo ORG/NAME[@REV][:PATTERN] (DiffSynth's model_id and\n"
    "origin_file_pattern: a trailing '/' means a folder, '*' globs). Hub files\n"
    "are pulled through the store (only what it lacks) and hard-linked under\n"
    "BASE/ORG/NAME/<path>. Local references are opened and checked (a tensor\n"
    "in two shards is an error unless --last-wins).\n\n"
    "  --base DIR        where Hub files go (default $DIFFSYNTH_MODEL_BASE_PATH,\n"
    "                    else ./models)\n"
    "  --skip-download   no network: only files already under BASE\n"
    "                    (default from $DIFFSYNTH_SKIP_DOWNLOAD)\n"
    "  --json            print {\"files\": [...], \"tensors\": N} as JSON\n"
    "\n"
    "Endpoint: $HF_ENDPOINT (default https://huggingface.co); token $HF_TOKEN.\n"
    "HF_HUB_OFFLINE=1: no network; the revision and files from what earlier\n"
    "pulls recorded in the store.\n";

static void print_path(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '\\')
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('\n');
}

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    return v && !strcasecmp(v, "true");
}

int cmd_get(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"base", required_argument, NULL, 'b'},   {"revision", required_argument, NULL, 'r'},
        {"pattern", required_argument, NULL, 'p'}, {"skip-download", no_argument, NULL, 's'},
        {"last-wins", no_argument, NULL, 'l'},    {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *base = getenv("DIFFSYNTH_MODEL_BASE_PATH"), *revision = NULL, *pattern = NULL;
    bool skip = env_true("DIFFSYNTH_SKIP_DOWNLOAD"), json = false, last_wins = false;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': base = optarg; break;
        case 'r': revision = optarg; break;
        case 'p': pattern = optarg; break;
        case 's': skip = true; break;
        case 'l': last_wins = true; break;
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        default: return cli_bad_option("get", c, argv);
        }
    }
    if (optind + 1 != argc)
        return cli_usage("get", "expected one REF");
    const char *arg = argv[optind];
    char *work = strdup(arg);
    if (!work)
        return cli_error("out of memory");
    cellar_ref *ref = NULL;
    bool hub = false;
    int rc;
    struct stat st;
    char *colon = strrchr(work, ':');
    size_t wl = strlen(work);
    if (stat(work, &st) == 0) {
        rc = cellar_ref_path(&ref, work);
        if (!rc && wl > 5 && !strcmp(work + wl - 5, ".dduf")) {
            cellar_ref_free(ref);
            ref = NULL;
            free(work);
            return cli_usage("get", "'%s': name a component as %s:COMPONENT", arg, arg);
        }
    } else if (colon && colon - work > 5 && !strncmp(colon - 5, ".dduf", 5)) {
        *colon = '\0';
        rc = cellar_ref_dduf(&ref, work, colon + 1);
    } else if (work[0] == '/' || work[0] == '.' || strstr(work, ".safetensors") ||
               strstr(work, ".json")) {
        free(work);
        return cli_error("%s: no such file or folder", arg);
    } else {
        hub = true;
        if (colon) {
            *colon = '\0';
            if (!pattern)
                pattern = colon + 1;
        }
        char *at = strchr(work, '@');
        if (at) {
            *at = '\0';
            if (!revision)
                revision = at + 1;
        }
        rc = cellar_ref_repo(&ref, work, revision, pattern);
    }
    if (rc) {
        free(work);
        return cli_error_last();
    }
    cellar_resolve_opts o = CELLAR_RESOLVE_OPTS_INIT;
    o.base_dir = base;
    o.skip_download = skip;
    /* The library reads no environment: HF_ENDPOINT and HF_TOKEN here. */
    cellar_pull_opts env = CELLAR_PULL_OPTS_INIT;
    cellar_pull_opts_from_env(&env);
    o.endpoint = env.endpoint;
    o.token = env.token;
    o.offline = env.offline;
    cellar_store *s = NULL;
    if (hub && !skip && cli_store_open(&s) != 0) {
        cellar_ref_free(ref);
        free(work);
        return cli_error_last();
    }
    char **files = NULL;
    size_t n = 0;
    int ret = CLI_OK;
    rc = cellar_ref_resolve(&files, &n, ref, s, &o);
    cellar_store_free(s);
    size_t ntensors = 0;
    bool counted = false;
    if (!rc && !hub) {
        /* Local references are opened: a broken shard set fails here. */
        cellar_model_opts mo = CELLAR_MODEL_OPTS_INIT;
        mo.flags = last_wins ? CELLAR_MODEL_LAST_WINS : 0;
        cellar_model *m;
        rc = cellar_model_open(&m, ref, &mo);
        if (!rc) {
            ntensors = cellar_model_count(m);
            counted = true;
        }
        cellar_model_free(m);
    }
    if (rc) {
        ret = cli_error_last();
    } else if (json) {
        printf("{\"files\": [");
        for (size_t i = 0; i < n; i++) {
            if (i)
                printf(", ");
            cli_json_string(stdout, files[i], strlen(files[i]));
        }
        printf("]");
        if (counted)
            printf(", \"tensors\": %zu", ntensors);
        printf("}\n");
    } else {
        for (size_t i = 0; i < n; i++)
            print_path(files[i]);
    }
    cellar_free(files);
    cellar_ref_free(ref);
    free(work);
    return ret;
}
