/* cellar dduf: list, check, unpack and pack DDUF files. */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "usage: cellar dduf ls FILE [--json]\n"
    "       cellar dduf check FILE [--crc]\n"
    "       cellar dduf unpack FILE DIR [--force]\n"
    "       cellar dduf pack DIR OUT.dduf [--force]\n"
    "\n"
    "DDUF files hold a diffusers pipeline in one uncompressed ZIP archive.\n"
    "\n"
    "  ls      entries with their data offset and size (--json for scripts)\n"
    "  check   every DDUF rule (exit 1 naming the broken one); --crc also\n"
    "          checks each entry's CRC-32\n"
    "  unpack  extract into DIR; never overwrites without --force and\n"
    "          refuses names that would leave DIR\n"
    "  pack    a diffusers folder (model_index.json and one level of\n"
    "          component folders) into OUT.dduf, as huggingface_hub writes it;\n"
    "          files a DDUF does not take (README.md, .gitattributes, other\n"
    "          extensions, hidden files) are left out, one 'skipped' line\n"
    "          each; refuses a folder that would make an invalid DDUF\n";

/* Splits argv into positional arguments and the flags a subcommand allows. */
struct args {
    const char *pos[2];
    int npos;
    bool json, crc, force;
};

static int parse_args(struct args *a, int argc, char **argv, const char *verb, int want,
                      const char *allowed)
{
    memset(a, 0, sizeof *a);
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--json") && strstr(allowed, "json"))
            a->json = true;
        else if (!strcmp(s, "--crc") && strstr(allowed, "crc"))
            a->crc = true;
        else if (!strcmp(s, "--force") && strstr(allowed, "force"))
            a->force = true;
        else if (s[0] == '-' && s[1])
            return cli_usage(verb, "unknown option '%s'", s);
        else if (a->npos < 2)
            a->pos[a->npos++] = s;
        else
            return cli_usage(verb, "too many arguments");
    }
    if (a->npos != want)
        return cli_usage(verb, "expected %d argument%s", want, want > 1 ? "s" : "");
    return CLI_OK;
}

static int dduf_ls(int argc, char **argv)
{
    struct args a;
    int rc = parse_args(&a, argc, argv, "dduf ls", 1, "json");
    if (rc)
        return rc;
    cellar_dduf *d;
    if (cellar_dduf_open(&d, a.pos[0], 0) < 0)
        return cli_error_last();
    size_t n = cellar_dduf_entry_count(d);
    if (a.json) {
        printf("{\"file\":");
        cli_json_string(stdout, a.pos[0], strlen(a.pos[0]));
        printf(",\"entries\":[");
        for (size_t i = 0; i < n; i++) {
            const cellar_dduf_entry *e = cellar_dduf_entry_at(d, i);
            printf("%s{\"name\":", i ? "," : "");
            cli_json_string(stdout, e->name, e->name_len);
            printf(",\"offset\":%llu,\"size\":%llu,\"header_offset\":%llu,\"crc32\":\"%08x\"}",
                   (unsigned long long)e->offset, (unsigned long long)e->size,
                   (unsigned long long)e->header_offset, e->crc32);
        }
        printf("]}\n");
    } else {
        printf("%12s %14s  %s\n", "offset", "size", "name");
        for (size_t i = 0; i < n; i++) {
            const cellar_dduf_entry *e = cellar_dduf_entry_at(d, i);
            printf("%12llu %14llu  ", (unsigned long long)e->offset,
                   (unsigned long long)e->size);
            cli_put_escaped_n(stdout, e->name, e->name_len);
            putchar('\n');
        }
    }
    cellar_dduf_free(d);
    return CLI_OK;
}

static int dduf_check(int argc, char **argv)
{
    struct args a;
    int rc = parse_args(&a, argc, argv, "dduf check", 1, "crc");
    if (rc)
        return rc;
    cellar_dduf *d;
    if (cellar_dduf_open(&d, a.pos[0], a.crc ? CELLAR_DDUF_CRC : 0) < 0)
        return cli_error_last();
    printf("%s: ok (%zu entries, %zu components%s)\n", a.pos[0], cellar_dduf_entry_count(d),
           cellar_dduf_component_count(d), a.crc ? ", CRC-32 checked" : "");
    cellar_dduf_free(d);
    return CLI_OK;
}

static int dduf_unpack(int argc, char **argv)
{
    struct args a;
    int rc = parse_args(&a, argc, argv, "dduf unpack", 2, "force");
    if (rc)
        return rc;
    cellar_dduf *d;
    if (cellar_dduf_open(&d, a.pos[0], 0) < 0)
        return cli_error_last();
    rc = cellar_dduf_unpack(d, a.pos[1], a.force ? CELLAR_DDUF_REPLACE : 0) < 0
             ? cli_error_last()
             : CLI_OK;
    if (rc == CLI_OK)
        printf("%s: %zu entries extracted to %s\n", a.pos[0], cellar_dduf_entry_count(d),
               a.pos[1]);
    cellar_dduf_free(d);
    return rc;
}

static int print_skipped(const char *name, const char *why, void *ctx)
{
    cli_progress_clear(ctx);
    printf("skipped ");
    cli_put_escaped_n(stdout, name, strlen(name));
    printf(" (%s)\n", why);
    return 0;
}

static int dduf_pack(int argc, char **argv)
{
    struct args a;
    int rc = parse_args(&a, argc, argv, "dduf pack", 2, "force");
    if (rc)
        return rc;
    cli_progress prog;
    cli_progress_init(&prog, "dduf pack", false);
    cli_catch_interrupt();
    rc = cellar_dduf_pack(a.pos[1], a.pos[0], a.force ? CELLAR_DDUF_REPLACE : 0, print_skipped,
                          cli_progress_cb, &prog);
    cli_progress_clear(&prog);
    if (rc < 0)
        return cli_error_last();
    cellar_dduf *d;
    if (cellar_dduf_open(&d, a.pos[1], 0) < 0)
        return cli_error_last();
    printf("%s: %zu entries, %zu components\n", a.pos[1], cellar_dduf_entry_count(d),
           cellar_dduf_component_count(d));
    cellar_dduf_free(d);
    return CLI_OK;
}

int cmd_dduf(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage("dduf", "expected a subcommand: ls, check, unpack or pack");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return CLI_OK;
        }
    if (!strcmp(sub, "ls"))
        return dduf_ls(argc, argv);
    if (!strcmp(sub, "check"))
        return dduf_check(argc, argv);
    if (!strcmp(sub, "unpack"))
        return dduf_unpack(argc, argv);
    if (!strcmp(sub, "pack"))
        return dduf_pack(argc, argv);
    return cli_usage("dduf", "unknown subcommand '%s'", sub);
}
