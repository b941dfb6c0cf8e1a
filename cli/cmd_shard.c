/* cellar shard: split a safetensors file into shards as huggingface_hub does. */
#include "cli.h"

#include <getopt.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: cellar shard [--max-size SIZE] -o DIR FILE\n\n"
               "Splits FILE (or a shard set) into DIR exactly as huggingface_hub's\n"
               "split_state_dict_into_shards: tensors in name order, greedily, a tensor\n"
               "over the limit alone. One shard is written as model.safetensors; more as\n"
               "model-00001-of-0000N.safetensors with model.safetensors.index.json.\n\n"
               "  --max-size SIZE  shard limit: decimal KB, MB, GB, TB (\"5GB\", the\n"
               "                   default; \"5GiB\" is refused as huggingface_hub does)\n"
               "                   or plain bytes\n"
               "  -o, --output DIR where the shards go (created)\n");
}

int cmd_shard(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"max-size", required_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *size = "5GB";
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'm': size = optarg; break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("shard", opt, argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage("shard", "expected one FILE");
    if (!out)
        return cli_usage("shard", "-o DIR is required");
    uint64_t max;
    if (cellar_shard_size_parse(&max, size) != 0)
        return cli_usage("shard", "%s", cellar_error_last());
    size_t n;
    cli_progress prog;
    cli_progress_init(&prog, "shard", true);
    cli_catch_interrupt();
    int rc = cellar_shard_split(&n, argv[optind], out, max, cli_progress_cb, &prog);
    cli_progress_clear(&prog);
    if (rc != 0)
        return cli_error_last();
    printf("%zu shard%s written to %s\n", n, n == 1 ? "" : "s", out);
    return CLI_OK;
}
