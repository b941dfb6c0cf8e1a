/* cellar convert: a PyTorch checkpoint to safetensors, without running it. */
#include "cli.h"

#include <getopt.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: cellar convert [--max-size SIZE] [--allow-unknown] -o DST SRC\n\n"
               "Writes the state dict of the PyTorch checkpoint SRC (.bin .pt .pth .ckpt,\n"
               "zip or legacy format; a Lightning checkpoint's 'state_dict') as\n"
               "safetensors, reading the pickle without running it. Each tensor is\n"
               "written as the row-major bytes of its view; tied weights (exact\n"
               "aliases) once, under the name first in byte order, the other names in\n"
               "the metadata as the HF converter does. The file is written atomically.\n"
               "A file naming a dangerous global (os.system, eval...) is refused, and\n"
               "so is one where an object of an unknown class holds tensors.\n\n"
               "  -o, --output DST   the .safetensors file (with --max-size: a folder)\n"
               "  --max-size SIZE    shard as huggingface_hub does (\"5GB\", bytes):\n"
               "                     model.safetensors, or shards and an index, in DST\n"
               "  --allow-unknown    convert the tensors reachable without passing\n"
               "                     through objects of unknown classes\n");
}

int cmd_convert(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"max-size", required_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'},
        {"allow-unknown", no_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *size = NULL;
    cellar_pt_convert_opts o = CELLAR_PT_CONVERT_OPTS_INIT;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'm': size = optarg; break;
        case 'o': out = optarg; break;
        case 'u': o.allow_unknown = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("convert", opt, argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage("convert", "expected one SRC");
    if (!out)
        return cli_usage("convert", "-o DST is required");
    if (size && cellar_shard_size_parse(&o.max_size, size) != 0)
        return cli_usage("convert", "%s", cellar_error_last());
    cellar_pt_convert_result r;
    if (cellar_pt_convert(&r, argv[optind], out, &o) != 0)
        return cli_error_last();
    printf("%zu tensors written to %s", r.tensors, out);
    if (size)
        printf(" (%zu file%s)", r.shards, r.shards == 1 ? "" : "s");
    if (r.dropped)
        printf(", %zu aliases recorded in metadata", r.dropped);
    if (r.skipped)
        printf(", %zu objects of unknown classes left out", r.skipped);
    printf("\n");
    return CLI_OK;
}
