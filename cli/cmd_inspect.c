/* cellar inspect: what a weight file or model folder holds (format, tensors,
 * parameters, dtypes, sizes, metadata, structural hash, known model). The
 * library builds the result (cellar_inspect()); this file only prints it,
 * as text or JSON, with the printers of cli/print_tree.c. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: cellar inspect [--tensors] [--json] PATH\n\n"
               "Describes a safetensors file, a sharded checkpoint (its directory or\n"
               "its .index.json), a diffusers folder or DDUF file (one section per\n"
               "component; in a DDUF, per component and weights variant, such as\n"
               "fp16), a GGUF file (key/values and tensor types) or a PyTorch\n"
               "checkpoint (read without running its pickle; the globals it names):\n"
               "format, tensor and parameter counts, dtypes, sizes, metadata, the\n"
               "structural hash and, when the registry knows it, the model.\n"
               "An invalid file is reported with the rule it breaks (exit 1).\n\n"
               "  --tensors  list every tensor (name, dtype, shape, bytes, and its file\n"
               "             when there are several)\n"
               "  --json     one JSON object on standard output\n");
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tensors", no_argument, NULL, 't'},
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cellar_inspect_opts io = CELLAR_INSPECT_OPTS_INIT;
    bool json = false;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 't': io.flags |= CELLAR_INSPECT_TENSORS; break;
        case 'J': json = true; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("inspect", opt, argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage("inspect", "expected one PATH");
    cellar_registry *reg = cli_registry_open();
    io.registry = reg;
    cellar_tree *t;
    int rc = cellar_inspect(&t, argv[optind], &io);
    /* On failure the tree holds what was read, and the message. */
    char *msg = rc ? strdup(cellar_error_last()) : NULL;
    const cellar_node *root = cellar_tree_root(t);
    const cellar_node *w = NULL;
    if (cellar_node_find(&w, root, "warnings") != 0)
        cellar_error_clear(); /* none: w stays NULL */
    for (const cellar_node *m = w ? w->v.list.first : NULL; m; m = m->next)
        if (m->type == CELLAR_NODE_STRING)
            cli_warn("%s", m->v.str.s);
    if (root && json)
        cli_tree_json(stdout, root);
    else if (root)
        cli_tree_text(stdout, root);
    cellar_tree_free(t);
    cellar_registry_free(reg);
    int status = rc ? cli_error("%s", msg ? msg : "out of memory") : CLI_OK;
    free(msg);
    return status;
}
