/* cellar scan: the globals PyTorch checkpoints (pickles) name, with their
 * verdict, for files and folders; exit 1 if any is dangerous. Nothing is
 * run: the pickles are read by cellar's interpreter. */
#include "cli.h"

#include <ftw.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct {
    bool json, all;
    size_t files, dangerous_files, unknown_files, errors;
    bool first;
} S;

static void usage(FILE *f)
{
    fprintf(f, "usage: cellar scan [--all] [--json] PATH...\n\n"
               "Lists the globals (module.name) named by the pickles of PyTorch\n"
               "checkpoints (.bin .pt .pth .ckpt, any pickle, found by content) under\n"
               "each PATH, judged as picklescan does: dangerous (os, subprocess, eval,\n"
               "...), unknown (not in torch's weights_only allowlist) or safe. Nothing\n"
               "is executed. Exit status 1 if any file names a dangerous global or\n"
               "cannot be read.\n\n"
               "  --all   also list the safe globals\n"
               "  --json  one JSON object per file\n");
}

static void scan_file(const char *path)
{
    cellar_pt *pt;
    S.files++;
    if (cellar_pt_open(&pt, path, CELLAR_PT_KEEP_GOING) != 0) {
        S.errors++;
        cli_error_last();
        return;
    }
    size_t ng = cellar_pt_global_count(pt), nd = cellar_pt_dangerous_count(pt), nu = 0;
    for (size_t i = 0; i < ng; i++)
        nu += cellar_pt_global_at(pt, i)->cls == CELLAR_PT_UNKNOWN;
    S.dangerous_files += nd > 0;
    S.unknown_files += nu > 0;
    const char *verdict = nd ? "dangerous" : nu ? "unknown" : "safe";
    if (S.json) {
        printf("{\"path\":");
        cli_json_string(stdout, path, strlen(path));
        printf(",\"verdict\":\"%s\",\"problem\":", verdict);
        if (cellar_pt_problem(pt))
            cli_json_string(stdout, cellar_pt_problem(pt), strlen(cellar_pt_problem(pt)));
        else
            printf("null");
        printf(",\"globals\":[");
        for (size_t i = 0; i < ng; i++) {
            const cellar_pt_global *g = cellar_pt_global_at(pt, i);
            printf("%s{\"module\":", i ? "," : "");
            cli_json_string(stdout, g->module, strlen(g->module));
            printf(",\"name\":");
            cli_json_string(stdout, g->name, strlen(g->name));
            printf(",\"class\":\"%s\",\"count\":%llu}", cellar_pt_class_name(g->cls),
                   (unsigned long long)g->count);
        }
        printf("]}\n");
    } else {
        cli_put_escaped(stdout, path);
        printf(": %s (%zu globals: %zu dangerous, %zu unknown)\n", verdict, ng, nd, nu);
        if (cellar_pt_problem(pt)) {
            printf("  unreadable past: ");
            cli_put_escaped(stdout, cellar_pt_problem(pt));
            printf("\n");
        }
        for (size_t i = 0; i < ng; i++) {
            const cellar_pt_global *g = cellar_pt_global_at(pt, i);
            if (g->cls == CELLAR_PT_SAFE && !S.all)
                continue;
            printf("  %-9s  ", cellar_pt_class_name(g->cls));
            cli_put_escaped(stdout, g->module);
            putchar('.');
            cli_put_escaped(stdout, g->name);
            printf("\n");
        }
    }
    cellar_pt_free(pt);
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_F && S_ISREG(st->st_mode) && cellar_pt_sniff(path))
        scan_file(path);
    return 0;
}

int cmd_scan(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'J'},
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(&S, 0, sizeof S);
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'J': S.json = true; break;
        case 'a': S.all = true; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("scan", opt, argv);
        }
    }
    if (argc == optind)
        return cli_usage("scan", "expected at least one PATH");
    for (int i = optind; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            S.errors++;
            cli_error("%s: cannot stat", argv[i]);
        } else if (S_ISDIR(st.st_mode)) {
            if (nftw(argv[i], visit, 32, FTW_PHYS) != 0) {
                S.errors++;
                cli_error("%s: cannot walk", argv[i]);
            }
        } else {
            scan_file(argv[i]); /* named explicitly: read whatever it is */
        }
    }
    if (!S.json)
        printf("%zu file%s scanned: %zu dangerous, %zu with unknown globals, %zu unreadable\n",
               S.files, S.files == 1 ? "" : "s", S.dangerous_files, S.unknown_files, S.errors);
    return S.dangerous_files || S.errors ? CLI_FAIL : CLI_OK;
}
