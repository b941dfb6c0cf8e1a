/* cellar: the command's entry point and verb dispatch. */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct verb {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
};

/* One line per verb, in the order --help lists them; NULL ends the table. */
static const struct verb verbs[] = {
    {"pull", cmd_pull, "download a Hub repo or an oci:// artifact, fetching only what the store lacks"},
    {"push", cmd_push, "put a folder or a pulled repo into an OCI registry (ModelPack)"},
    {"hash", cmd_hash, "digests and model identifiers of files (sha256sum/b3sum format)"},
    {"inspect", cmd_inspect, "what a weight file, shard set, folder, DDUF, GGUF or checkpoint holds"},
    {"shard", cmd_shard, "split a safetensors file into shards as huggingface_hub does"},
    {"merge", cmd_merge, "join a sharded checkpoint into one safetensors file"},
    {"add", cmd_add, "put files or folders into the store"},
    {"dedup", cmd_dedup, "make identical files hard links to one stored copy"},
    {"import-hf", cmd_import_hf, "adopt a Hugging Face cache: one copy per sha256"},
    {"du", cmd_du, "disk usage counting each file once"},
    {"ls", cmd_ls, "list the store's objects, or a models folder by model (--by-model)"},
    {"which", cmd_which, "where the store keeps a blob"},
    {"map", cmd_map, "every stored sha256 and its path"},
    {"verify", cmd_verify, "re-hash objects and report damage"},
    {"gc", cmd_gc, "remove objects nothing links to"},
    {"dduf", cmd_dduf, "list, check, unpack and pack DDUF pipeline files"},
    {"get", cmd_get, "resolve a model reference to local files (pulling what is missing)"},
    {"convert", cmd_convert, "a PyTorch checkpoint to safetensors, without running it"},
    {"scan", cmd_scan, "the globals PyTorch checkpoints name: dangerous, unknown, safe"},
    {NULL, NULL, NULL},
};

static void print_help(FILE *f)
{
    fprintf(f, "usage: cellar [--version] [--help] <command> [<args>]\n\n"
               "cellar keeps one copy of every model weight file on this machine.\n\n"
               "commands:\n");
    for (const struct verb *v = verbs; v->name; v++)
        fprintf(f, "  %-10s %s\n", v->name, v->summary);
    fprintf(f, "\nRun 'cellar <command> --help' for a command's options.\n"
               "Store: $CELLAR_HOME (default ~/.cache/cellar).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return CLI_USAGE;
    }
    /* The environment's settings, resolved here: the library reads none. */
    cellar_blake3_isa_from_env(); /* an unknown value means no cap */
    cellar_error_clear();
    const char *verb = argv[1];
    if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || !strcmp(verb, "help")) {
        print_help(stdout);
        return CLI_OK;
    }
    if (!strcmp(verb, "--version") || !strcmp(verb, "-V")) {
        printf("cellar %s (blake3: %s)\n", cellar_version(), cellar_blake3_isa());
        return CLI_OK;
    }
    for (const struct verb *v = verbs; v->name; v++)
        if (!strcmp(verb, v->name))
            return v->fn(argc - 1, argv + 1);
    fprintf(stderr, "cellar: '%s' is not a cellar command; see 'cellar --help'\n", verb);
    return CLI_USAGE;
}
