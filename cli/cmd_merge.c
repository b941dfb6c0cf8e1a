/* cellar merge: join a sharded checkpoint back into one safetensors file. */
#include "cli.h"

#include <getopt.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: cellar merge -o FILE SHARDS\n\n"
               "Merges a sharded checkpoint (its directory or its .index.json) into one\n"
               "canonical safetensors file; tensor bytes are copied unchanged (with\n"
               "copy_file_range where the file system allows) and the file appears\n"
               "atomically.\n\n"
               "  -o, --output FILE  the merged file (replaced if it exists)\n");
}

int cmd_merge(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("merge", opt, argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage("merge", "expected one SHARDS path");
    if (!out)
        return cli_usage("merge", "-o FILE is required");
    cellar_shards *s;
    if (cellar_shards_open(&s, argv[optind]) != 0)
        return cli_error_last();
    size_t tensors = cellar_shards_count(s), files = cellar_shards_nfiles(s);
    cellar_shards_free(s);
    cli_progress prog;
    cli_progress_init(&prog, "merge", true);
    cli_catch_interrupt();
    int rc = cellar_shard_merge(argv[optind], out, cli_progress_cb, &prog);
    cli_progress_clear(&prog);
    if (rc != 0)
        return cli_error_last();
    printf("%zu tensor%s from %zu file%s merged into %s\n", tensors, tensors == 1 ? "" : "s", files,
           files == 1 ? "" : "s", out);
    return CLI_OK;
}
