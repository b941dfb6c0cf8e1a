/* cellar inspect: what a weight file or model folder holds (format, tensors,
 * parameters, dtypes, sizes, metadata, structural hash, known model). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct opts {
    bool tensors, json;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: cellar inspect [--tensors] [--json] PATH\n\n"
               "Describes a safetensors file, a sharded checkpoint (its directory or\n"
               "its .index.json) or a diffusers folder (one section per component):\n"
               "format, tensor and parameter counts, dtypes, sizes, metadata, the\n"
               "structural hash and, when the registry knows it, the model.\n"
               "An invalid file is reported with the rule it breaks (exit 1).\n\n"
               "  --tensors  list every tensor (name, dtype, shape, bytes)\n"
               "  --json     one JSON object on standard output\n");
}

/* ---- figures for one component ---- */

struct dtype_count {
    uint64_t tensors, bytes;
};

struct summary {
    uint64_t tensors, params, bytes, size;
    bool params_overflow;
    struct dtype_count dt[CELLAR_DTYPE__COUNT];
};

static void add_tensor(struct summary *s, const cellar_st_tensor *t)
{
    uint64_t bytes = t->end - t->begin;
    s->tensors++;
    if (__builtin_add_overflow(s->params, t->nelem, &s->params))
        s->params_overflow = true;
    s->bytes += bytes;
    s->dt[t->dtype].tensors++;
    s->dt[t->dtype].bytes += bytes;
}

static void merge_summary(struct summary *into, const struct summary *s)
{
    into->tensors += s->tensors;
    if (__builtin_add_overflow(into->params, s->params, &into->params) || s->params_overflow)
        into->params_overflow = true;
    into->bytes += s->bytes;
    into->size += s->size;
    for (int d = 0; d < CELLAR_DTYPE__COUNT; d++) {
        into->dt[d].tensors += s->dt[d].tensors;
        into->dt[d].bytes += s->dt[d].bytes;
    }
}

static const char *human(uint64_t v, char *buf, size_t size, const char *const units[])
{
    double x = (double)v;
    int u = 0;
    while (x >= 1000 && units[u + 1]) {
        x /= 1000;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%" PRIu64 "%s", v, units[0]);
    else
        snprintf(buf, size, "%.2f %s", x, units[u]);
    return buf;
}

static const char *human_bytes(uint64_t v, char *buf, size_t size)
{
    static const char *const units[] = {" B", "kB", "MB", "GB", "TB", "PB", NULL};
    return human(v, buf, size, units);
}

static const char *human_count(uint64_t v, char *buf, size_t size)
{
    static const char *const units[] = {"", "K", "M", "B", "T", NULL};
    return human(v, buf, size, units);
}

/* ---- output ---- */

static void print_name(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
}

static void json_key(FILE *f, bool *first, const char *key)
{
    fputs(*first ? "" : ",", f);
    *first = false;
    cli_json_string(f, key, strlen(key));
    fputc(':', f);
}

static void json_summary(FILE *f, bool *first, const struct summary *s)
{
    json_key(f, first, "tensors");
    fprintf(f, "%" PRIu64, s->tensors);
    json_key(f, first, "parameters");
    fprintf(f, "%" PRIu64, s->params);
    json_key(f, first, "tensor_bytes");
    fprintf(f, "%" PRIu64, s->bytes);
    json_key(f, first, "size");
    fprintf(f, "%" PRIu64, s->size);
    json_key(f, first, "dtypes");
    fputc('{', f);
    bool dfirst = true;
    for (int d = CELLAR_DTYPE__COUNT - 1; d >= 0; d--) {
        if (!s->dt[d].tensors)
            continue;
        json_key(f, &dfirst, cellar_dtype_name((cellar_dtype)d));
        fprintf(f, "{\"tensors\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", s->dt[d].tensors, s->dt[d].bytes);
    }
    fputc('}', f);
}

static void text_summary(const struct summary *s, const char *indent)
{
    char a[32], b[32];
    printf("%stensors:     %" PRIu64 "\n", indent, s->tensors);
    printf("%sparameters:  %" PRIu64, indent, s->params);
    if (s->params >= 1000)
        printf(" (%s)", human_count(s->params, a, sizeof a));
    printf("%s\n", s->params_overflow ? " (overflowed)" : "");
    printf("%ssize:        %" PRIu64 " bytes", indent, s->size);
    if (s->size >= 1000)
        printf(" (%s)", human_bytes(s->size, a, sizeof a));
    printf(", tensor data %s\n", human_bytes(s->bytes, b, sizeof b));
    printf("%sdtypes:     ", indent);
    bool any = false;
    for (int d = CELLAR_DTYPE__COUNT - 1; d >= 0; d--) {
        if (!s->dt[d].tensors)
            continue;
        printf("%s %s x%" PRIu64 " (%s)", any ? "," : "", cellar_dtype_name((cellar_dtype)d),
               s->dt[d].tensors, human_bytes(s->dt[d].bytes, a, sizeof a));
        any = true;
    }
    printf("%s\n", any ? "" : " none");
}

/* One component: a safetensors file or a shard set. */
static int inspect_component(FILE *f, const cellar_component *c, const cellar_registry *reg,
                             const struct opts *o, struct summary *total, bool *first_comp)
{
    cellar_shards *s;
    if (cellar_shards_open(&s, c->path) != 0)
        return cli_error_last();
    size_t nfiles = cellar_shards_nfiles(s);
    cellar_st **files = calloc(nfiles ? nfiles : 1, sizeof *files);
    if (!files) {
        cellar_shards_free(s);
        return cli_error("out of memory");
    }
    struct summary sum = {0};
    for (size_t i = 0; i < nfiles; i++)
        files[i] = cellar_shards_file(s, i);
    for (size_t i = 0; i < cellar_shards_count(s); i++)
        add_tensor(&sum, cellar_shards_tensor(s, i, NULL));
    sum.size = cellar_shards_size(s);
    char hash[33];
    int rc = cellar_structural_hash_st(hash, files, nfiles);
    if (rc) {
        free(files);
        cellar_shards_free(s);
        return cli_error_last();
    }
    const cellar_model_info *m = cellar_registry_find(reg, hash);
    const char *fmt = cellar_shards_indexed(s) ? "safetensors (sharded)" : "safetensors";
    /* Metadata of the first file (shards repeat it). */
    cellar_st *meta = nfiles ? files[0] : NULL;

    if (o->json) {
        fputs(*first_comp ? "" : ",", f);
        *first_comp = false;
        bool first = true;
        fputc('{', f);
        json_key(f, &first, "component");
        cli_json_string(f, c->name, strlen(c->name));
        json_key(f, &first, "path");
        cli_json_string(f, c->path, strlen(c->path));
        json_key(f, &first, "format");
        cli_json_string(f, fmt, strlen(fmt));
        json_key(f, &first, "files");
        fputc('[', f);
        for (size_t i = 0; i < nfiles; i++) {
            const char *p = cellar_shards_path(s, i);
            fputs(i ? "," : "", f);
            fprintf(f, "{\"path\":");
            cli_json_string(f, p, strlen(p));
            fprintf(f, ",\"size\":%" PRIu64 ",\"header_bytes\":%" PRIu64 ",\"tensors\":%zu}",
                    cellar_st_file_size(files[i]), cellar_st_header_len(files[i]),
                    cellar_st_count(files[i]));
        }
        fputc(']', f);
        json_summary(f, &first, &sum);
        json_key(f, &first, "metadata");
        fputc('{', f);
        for (size_t i = 0; meta && i < cellar_st_metadata_count(meta); i++) {
            const char *k, *v;
            size_t kl, vl;
            cellar_st_metadata_at(meta, i, &k, &kl, &v, &vl);
            fputs(i ? "," : "", f);
            cli_json_string(f, k, kl);
            fputc(':', f);
            cli_json_string(f, v, vl);
        }
        fputc('}', f);
        json_key(f, &first, "structural_hash");
        cli_json_string(f, hash, 32);
        json_key(f, &first, "model");
        if (m) {
            fprintf(f, "{\"family\":");
            cli_json_string(f, m->family, strlen(m->family));
            fprintf(f, ",\"component\":");
            cli_json_string(f, m->component, strlen(m->component));
            fprintf(f, ",\"description\":");
            cli_json_string(f, m->description, strlen(m->description));
            fputc('}', f);
        } else {
            fputs("null", f);
        }
        if (o->tensors) {
            json_key(f, &first, "tensor_list");
            fputc('[', f);
            for (size_t i = 0; i < cellar_shards_count(s); i++) {
                size_t file;
                const cellar_st_tensor *t = cellar_shards_tensor(s, i, &file);
                fputs(i ? "," : "", f);
                fputs("{\"name\":", f);
                cli_json_string(f, t->name, t->name_len);
                fprintf(f, ",\"dtype\":\"%s\",\"shape\":[", t->dtype_name);
                for (size_t d = 0; d < t->rank; d++)
                    fprintf(f, "%s%" PRIu64, d ? "," : "", t->shape[d]);
                fprintf(f, "],\"bytes\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"file\":%zu}",
                        t->end - t->begin, t->offset, file);
            }
            fputc(']', f);
        }
        fputc('}', f);
    } else {
        const char *ind = *c->name ? "  " : "";
        if (*c->name)
            printf("\n[%s] %s\n", c->name, c->path);
        printf("%sformat:      %s", ind, fmt);
        if (nfiles > 1)
            printf(", %zu files", nfiles);
        else if (nfiles == 1)
            printf(", header %" PRIu64 " bytes", cellar_st_header_len(files[0]));
        printf("\n");
        text_summary(&sum, ind);
        for (size_t i = 0; meta && i < cellar_st_metadata_count(meta); i++) {
            const char *k, *v;
            size_t kl, vl;
            cellar_st_metadata_at(meta, i, &k, &kl, &v, &vl);
            printf("%s%s", ind, i ? "             " : "metadata:    ");
            print_name(stdout, k, kl);
            fputs(" = ", stdout);
            /* Long values (embedded configs) are cut: --json has them whole. */
            print_name(stdout, v, vl > 200 ? 200 : vl);
            printf("%s\n", vl > 200 ? "..." : "");
        }
        printf("%sstructural:  %s\n", ind, hash);
        if (m)
            printf("%smodel:       %s (family %s, component %s)\n", ind, m->description, m->family,
                   m->component);
        else
            printf("%smodel:       unknown\n", ind);
        if (o->tensors) {
            for (size_t i = 0; i < cellar_shards_count(s); i++) {
                const cellar_st_tensor *t = cellar_shards_tensor(s, i, NULL);
                printf("%s  ", ind);
                print_name(stdout, t->name, t->name_len);
                printf("  %s  [", t->dtype_name);
                for (size_t d = 0; d < t->rank; d++)
                    printf("%s%" PRIu64, d ? ", " : "", t->shape[d]);
                printf("]  %" PRIu64 "\n", t->end - t->begin);
            }
        }
    }
    merge_summary(total, &sum);
    free(files);
    cellar_shards_free(s);
    return CLI_OK;
}

/* ---- formats ----
 * The one place where a path's format is decided. Each row recognises its
 * format from the path and its first bytes; the first match inspects. */

struct format {
    const char *name;
    bool (*match)(const char *path, const struct stat *st, const unsigned char *head, size_t n);
    int (*inspect)(const char *path, const struct opts *o);
};

static bool match_weights(const char *path, const struct stat *st, const unsigned char *head,
                          size_t n)
{
    (void)path;
    (void)head;
    (void)n;
    /* safetensors has no magic: anything not claimed by a row above it. */
    return S_ISDIR(st->st_mode) || S_ISREG(st->st_mode);
}

static int inspect_weights(const char *path, const struct opts *o)
{
    cellar_component *comps;
    size_t n;
    if (cellar_components(&comps, &n, path) != 0)
        return cli_error_last();
    cellar_registry *reg = NULL;
    if (cellar_registry_open(&reg, NULL) != 0)
        cellar_error_clear(); /* without a registry, models are just unknown */
    bool folder = n > 1 || (n == 1 && *comps[0].name);
    struct summary total = {0};
    int rc = CLI_OK;
    bool first = true;
    if (o->json) {
        printf("{\"path\":");
        cli_json_string(stdout, path, strlen(path));
        printf(",\"format\":\"%s\",\"components\":[", folder ? "diffusers" : "safetensors");
    } else {
        printf("path:        %s\n", path);
        if (folder)
            printf("format:      diffusers folder, %zu weight components\n", n);
    }
    for (size_t i = 0; i < n && rc == CLI_OK; i++)
        rc = inspect_component(stdout, &comps[i], reg, o, &total, &first);
    if (rc == CLI_OK) {
        if (o->json) {
            printf("],");
            bool tfirst = true;
            json_summary(stdout, &tfirst, &total);
            printf("}\n");
        } else if (folder) {
            printf("\ntotal\n");
            text_summary(&total, "  ");
        }
    } else if (o->json) {
        printf("],\"error\":");
        cli_json_string(stdout, cellar_error_last(), strlen(cellar_error_last()));
        printf("}\n");
    }
    cellar_registry_free(reg);
    cellar_components_free(comps, n);
    return rc;
}

static const struct format formats[] = {
    {"safetensors", match_weights, inspect_weights},
};

int cmd_inspect(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tensors", no_argument, NULL, 't'},
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct opts o = {0};
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 't': o.tensors = true; break;
        case 'J': o.json = true; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("inspect", opt, argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage("inspect", "expected one PATH");
    const char *path = argv[optind];
    struct stat st;
    if (stat(path, &st) != 0)
        return cli_error("%s: %s", path, strerror(errno));
    unsigned char head[16] = {0};
    size_t n = 0;
    if (S_ISREG(st.st_mode)) {
        FILE *f = fopen(path, "rb");
        if (!f)
            return cli_error("%s: %s", path, strerror(errno));
        n = fread(head, 1, sizeof head, f);
        fclose(f);
    }
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
        if (formats[i].match(path, &st, head, n))
            return formats[i].inspect(path, &o);
    return cli_error("%s: not a weight file or model folder cellar knows", path);
}
