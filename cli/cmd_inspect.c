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
               "its .index.json), a diffusers folder or DDUF file (one section per\n"
               "component; in a DDUF, per component and weights variant, such as\n"
               "fp16) or a GGUF file (key/values and tensor types):\n"
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

static void json_key(FILE *f, bool *first, const char *key)
{
    fputs(*first ? "" : ",", f);
    *first = false;
    cli_json_string(f, key, strlen(key));
    fputc(':', f);
}

/* Opens a component's JSON object with the keys every format has. */
static void json_component_open(FILE *f, bool *first_comp, bool *first,
                                const cellar_component *c, const char *fmt)
{
    fputs(*first_comp ? "" : ",", f);
    *first_comp = false;
    fputc('{', f);
    json_key(f, first, "component");
    cli_json_string(f, c->name, strlen(c->name));
    json_key(f, first, "path");
    cli_json_string(f, c->path, strlen(c->path));
    json_key(f, first, "format");
    cli_json_string(f, fmt, strlen(fmt));
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

/* ---- the model: what the file is (cellar_identify_*) ---- */

/* Identifies open safetensors files; NULL (after a warning) if that fails,
 * so that the rest of inspect still prints. */
static cellar_identity *identify_files(cellar_st **files, size_t n, const cellar_registry *reg)
{
    cellar_identity *id = NULL;
    if (cellar_identify_st(&id, files, n, reg) != 0) {
        cli_warn("identify: %s", cellar_error_last());
        cellar_error_clear();
    }
    return id;
}

/* "model:       <what it is>" with the text's untrusted parts escaped. */
static void print_model_line(const char *indent, const cellar_identity *id)
{
    const char *t = id ? cellar_identity_text(id) : "unknown";
    printf("%smodel:       ", indent);
    cli_put_escaped_n(stdout, t, strlen(t));
    printf("\n");
    const cellar_identity_info *x = cellar_identity_get(id);
    for (size_t i = 0; x && i < x->nmatches && x->nmatches > 1; i++) {
        const cellar_model_info *m = x->matches[i];
        printf("%s  registry:  ", indent);
        cli_put_escaped_n(stdout, m->family, strlen(m->family));
        printf(" %s (%s; %s)\n", m->component, *m->model_name ? m->model_name : m->description,
               m->source);
    }
}

/* What cellar_identify_path() says of path; NULL (after a warning) if it
 * fails. */
static cellar_identity *identify_path(const char *path)
{
    cellar_registry *reg = cli_registry_open();
    cellar_identity *id = NULL;
    if (cellar_identify_path(&id, path, reg) != 0) {
        cli_warn("identify: %s", cellar_error_last());
        cellar_error_clear();
    }
    cellar_registry_free(reg);
    return id;
}

static void json_model(FILE *f, bool *first, const cellar_identity *id)
{
    json_key(f, first, "model");
    cli_identity_json(f, id);
}

/* A component whose weights are a PyTorch checkpoint (diffusers' .bin
 * fallback, transformers' pytorch_model.bin): figures, hash and model from
 * the pickle read without running it; `cellar inspect FILE` has the
 * container's details (globals, storages, views). */
static int inspect_pt_component(FILE *f, const cellar_component *c, const struct opts *o,
                                struct summary *total, bool *first_comp)
{
    cellar_pt *pt;
    if (cellar_pt_open(&pt, c->path, 0) != 0)
        return cli_error_last();
    struct summary sum = {0};
    for (size_t i = 0; i < cellar_pt_count(pt); i++) {
        const cellar_pt_tensor *t = cellar_pt_tensor_at(pt, i);
        sum.tensors++;
        if (__builtin_add_overflow(sum.params, t->nelem, &sum.params))
            sum.params_overflow = true;
        sum.bytes += t->nbytes;
        if (t->dtype < CELLAR_DTYPE__COUNT) {
            sum.dt[t->dtype].tensors++;
            sum.dt[t->dtype].bytes += t->nbytes;
        }
    }
    struct stat st;
    sum.size = stat(c->path, &st) == 0 ? (uint64_t)st.st_size : 0;
    cellar_pt_hash h;
    const char *hash = NULL;
    if (cellar_pt_structural_hash(&h, pt) == 0)
        hash = h.diffsynth[0] ? h.diffsynth : h.state_dict;
    else
        cellar_error_clear();
    cellar_identity *id = identify_path(c->path);
    const char *fmt = "pytorch";
    if (o->json) {
        bool first = true;
        json_component_open(f, first_comp, &first, c, fmt);
        json_key(f, &first, "container");
        cli_json_string(f, cellar_pt_format(pt), strlen(cellar_pt_format(pt)));
        json_summary(f, &first, &sum);
        json_key(f, &first, "metadata");
        fputs("{}", f);
        json_key(f, &first, "structural_hash");
        if (hash)
            cli_json_string(f, hash, 32);
        else
            fputs("null", f);
        json_model(f, &first, id);
        fputc('}', f);
    } else {
        const char *ind = *c->name ? "  " : "";
        if (*c->name)
            printf("\n[%s] %s\n", c->name, c->path);
        printf("%sformat:      PyTorch checkpoint (%s container)\n", ind, cellar_pt_format(pt));
        text_summary(&sum, ind);
        printf("%sstructural:  %s\n", ind, hash ? hash : "(none)");
        print_model_line(ind, id);
        for (size_t i = 0; o->tensors && i < cellar_pt_count(pt); i++) {
            const cellar_pt_tensor *t = cellar_pt_tensor_at(pt, i);
            printf("%s  ", ind);
            cli_put_escaped_n(stdout, t->name, t->name_len);
            printf("  %s  [", t->dtype_name);
            for (size_t d = 0; d < t->rank; d++)
                printf("%s%" PRIu64, d ? ", " : "", t->shape[d]);
            printf("]  %" PRIu64 "\n", t->nbytes);
        }
    }
    merge_summary(total, &sum);
    cellar_identity_free(id);
    cellar_pt_free(pt);
    return CLI_OK;
}

/* One component: a safetensors file or a shard set. */
static int inspect_component(FILE *f, const cellar_component *c, const cellar_registry *reg,
                             const struct opts *o, struct summary *total, bool *first_comp)
{
    struct stat pst;
    if (stat(c->path, &pst) == 0 && S_ISREG(pst.st_mode) && cellar_pt_sniff(c->path))
        return inspect_pt_component(f, c, o, total, first_comp);
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
    cellar_identity *id = identify_files(files, nfiles, reg);
    /* The identification hashed the tensors already. */
    int rc = id ? (memcpy(hash, cellar_identity_get(id)->structural, sizeof hash), 0)
                : cellar_structural_hash_st(hash, files, nfiles);
    if (rc) {
        free(files);
        cellar_shards_free(s);
        return cli_error_last();
    }
    const char *fmt = cellar_shards_indexed(s) ? "safetensors (sharded)" : "safetensors";
    /* Metadata of the first file (shards repeat it). */
    cellar_st *meta = nfiles ? files[0] : NULL;

    if (o->json) {
        bool first = true;
        json_component_open(f, first_comp, &first, c, fmt);
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
            cellar_st_metadata_at(&k, &kl, &v, &vl, meta, i);
            fputs(i ? "," : "", f);
            cli_json_string(f, k, kl);
            fputc(':', f);
            cli_json_string(f, v, vl);
        }
        fputc('}', f);
        json_key(f, &first, "structural_hash");
        cli_json_string(f, hash, 32);
        json_model(f, &first, id);
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
            cellar_st_metadata_at(&k, &kl, &v, &vl, meta, i);
            printf("%s%s", ind, i ? "             " : "metadata:    ");
            cli_put_escaped_n(stdout, k, kl);
            fputs(" = ", stdout);
            /* Long values (embedded configs) are cut: --json has them whole. */
            cli_put_escaped_n(stdout, v, vl > 200 ? 200 : vl);
            printf("%s\n", vl > 200 ? "..." : "");
        }
        printf("%sstructural:  %s\n", ind, hash);
        print_model_line(ind, id);
        if (o->tensors) {
            for (size_t i = 0; i < cellar_shards_count(s); i++) {
                const cellar_st_tensor *t = cellar_shards_tensor(s, i, NULL);
                printf("%s  ", ind);
                cli_put_escaped_n(stdout, t->name, t->name_len);
                printf("  %s  [", t->dtype_name);
                for (size_t d = 0; d < t->rank; d++)
                    printf("%s%" PRIu64, d ? ", " : "", t->shape[d]);
                printf("]  %" PRIu64 "\n", t->end - t->begin);
            }
        }
    }
    merge_summary(total, &sum);
    cellar_identity_free(id);
    free(files);
    cellar_shards_free(s);
    return CLI_OK;
}

/* ---- formats ----
 * The one place where a path's format is decided. Each row recognises its
 * format from the path and its first bytes; the first match inspects. */

struct format {
    cellar_format format;
    int (*inspect)(const char *path, const struct opts *o);
};

static int inspect_weights(const char *path, const struct opts *o)
{
    cellar_component *comps;
    size_t n;
    if (cellar_components(&comps, &n, path) != 0)
        return cli_error_last();
    cellar_registry *reg = cli_registry_open();
    bool folder = n > 1 || (n == 1 && *comps[0].name);
    struct summary total = {0};
    int rc = CLI_OK;
    bool first = true;
    cellar_identity *pipeline = folder ? identify_path(path) : NULL;
    if (o->json) {
        printf("{\"path\":");
        cli_json_string(stdout, path, strlen(path));
        printf(",\"format\":\"%s\",", folder ? "diffusers" : "safetensors");
        if (pipeline) {
            bool mfirst = true;
            json_model(stdout, &mfirst, pipeline);
            printf(",");
        }
        printf("\"components\":[");
    } else {
        printf("path:        %s\n", path);
        if (folder)
            printf("format:      diffusers folder, %zu weight components\n", n);
        if (pipeline)
            print_model_line("", pipeline);
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
    cellar_identity_free(pipeline);
    cellar_registry_free(reg);
    cellar_components_free(comps, n);
    return rc;
}

/* ---- DDUF: one component per top-level folder, its .safetensors entries
 * read in place from the archive's mapping ---- */

/* One weight set of a component (the library groups them by variant,
 * cellar_dduf_weight_sets, with the rule folders use). */
static int inspect_dduf_component(const cellar_dduf *d, const char *comp,
                                  const cellar_dduf_weights *set, const cellar_registry *reg,
                                  const struct opts *o, struct summary *total, bool *first_comp)
{
    const char *variant = set->variant;
    size_t variant_len = strlen(variant);
    size_t n = set->n, nfiles = 0;
    cellar_st **files = calloc(n ? n : 1, sizeof *files);
    const cellar_dduf_entry **entries = calloc(n ? n : 1, sizeof *entries);
    struct summary sum = {0};
    int rc = CLI_OK;
    if (!files || !entries)
        rc = cli_error("out of memory");
    for (size_t k = 0; k < n && rc == CLI_OK; k++) {
        size_t i = set->entries[k];
        const cellar_dduf_entry *e = cellar_dduf_entry_at(d, i);
        if (cellar_dduf_open_safetensors(&files[nfiles], d, i) != 0) {
            rc = cli_error_last();
            break;
        }
        entries[nfiles++] = e;
        sum.size += e->size;
        for (size_t t = 0; t < cellar_st_count(files[nfiles - 1]); t++)
            add_tensor(&sum, cellar_st_tensor_at(files[nfiles - 1], t));
    }
    char hash[33] = "";
    cellar_identity *id = NULL;
    if (rc == CLI_OK && nfiles) {
        id = identify_files(files, nfiles, reg);
        if (id)
            memcpy(hash, cellar_identity_get(id)->structural, sizeof hash);
        else if (cellar_structural_hash_st(hash, files, nfiles) != 0)
            rc = cli_error_last();
    }
    if (rc == CLI_OK && o->json) {
        fputs(*first_comp ? "" : ",", stdout);
        *first_comp = false;
        bool first = true;
        fputc('{', stdout);
        json_key(stdout, &first, "component");
        cli_json_string(stdout, comp, strlen(comp));
        json_key(stdout, &first, "variant");
        if (variant_len)
            cli_json_string(stdout, variant, variant_len);
        else
            fputs("null", stdout);
        json_key(stdout, &first, "entries");
        fputc('[', stdout);
        for (size_t i = 0; i < nfiles; i++) {
            fputs(i ? "," : "", stdout);
            fputs("{\"name\":", stdout);
            cli_json_string(stdout, entries[i]->name, entries[i]->name_len);
            printf(",\"offset\":%" PRIu64 ",\"size\":%" PRIu64 ",\"tensors\":%zu}",
                   entries[i]->offset, entries[i]->size, cellar_st_count(files[i]));
        }
        fputc(']', stdout);
        json_summary(stdout, &first, &sum);
        json_key(stdout, &first, "structural_hash");
        if (nfiles)
            cli_json_string(stdout, hash, 32);
        else
            fputs("null", stdout);
        if (id)
            json_model(stdout, &first, id);
        else {
            json_key(stdout, &first, "model");
            fputs("null", stdout);
        }
        if (o->tensors) {
            json_key(stdout, &first, "tensor_list");
            fputc('[', stdout);
            bool tfirst = true;
            for (size_t i = 0; i < nfiles; i++)
                for (size_t t = 0; t < cellar_st_count(files[i]); t++) {
                    const cellar_st_tensor *x = cellar_st_tensor_at(files[i], t);
                    fputs(tfirst ? "{\"name\":" : ",{\"name\":", stdout);
                    tfirst = false;
                    cli_json_string(stdout, x->name, x->name_len);
                    printf(",\"dtype\":\"%s\",\"shape\":[", x->dtype_name);
                    for (size_t k = 0; k < x->rank; k++)
                        printf("%s%" PRIu64, k ? "," : "", x->shape[k]);
                    printf("],\"bytes\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"entry\":%zu}",
                           x->end - x->begin, entries[i]->offset + x->offset, i);
                }
            fputc(']', stdout);
        }
        fputc('}', stdout);
    } else if (rc == CLI_OK) {
        /* Names come from the archive: printed escaped. */
        printf("\n[");
        cli_put_escaped_n(stdout, comp, strlen(comp));
        if (variant_len) {
            printf(", variant ");
            cli_put_escaped_n(stdout, variant, variant_len);
        }
        printf("] %zu weight entr%s\n", nfiles, nfiles == 1 ? "y" : "ies");
        for (size_t i = 0; i < nfiles; i++) {
            printf("  entry:       ");
            cli_put_escaped_n(stdout, entries[i]->name, entries[i]->name_len);
            printf(" (offset %" PRIu64 ", %" PRIu64 " bytes)\n", entries[i]->offset,
                   entries[i]->size);
        }
        if (nfiles) {
            text_summary(&sum, "  ");
            printf("  structural:  %s\n", hash);
            print_model_line("  ", id);
        }
        for (size_t i = 0; o->tensors && i < nfiles; i++)
            for (size_t t = 0; t < cellar_st_count(files[i]); t++) {
                const cellar_st_tensor *x = cellar_st_tensor_at(files[i], t);
                printf("    ");
                cli_put_escaped_n(stdout, x->name, x->name_len);
                printf("  %s  [", x->dtype_name);
                for (size_t k = 0; k < x->rank; k++)
                    printf("%s%" PRIu64, k ? ", " : "", x->shape[k]);
                printf("]  %" PRIu64 "\n", x->end - x->begin);
            }
    }
    if (rc == CLI_OK)
        merge_summary(total, &sum);
    cellar_identity_free(id);
    for (size_t i = 0; i < nfiles; i++)
        cellar_st_free(files[i]);
    free(files);
    free(entries);
    return rc;
}

/* One section per variant of a component's weights (diffusers loads one
 * set: the files without a variant, or those of the variant asked for), the
 * default first, the others in entry order; a component without weights
 * gets one empty section. Totals count every variant. */
static int inspect_dduf_variants(const cellar_dduf *d, const char *comp,
                                 const cellar_registry *reg, const struct opts *o,
                                 struct summary *total, bool *first)
{
    cellar_dduf_weights *sets;
    size_t nsets;
    if (cellar_dduf_weight_sets(&sets, &nsets, d, comp) != 0)
        return cli_error_last();
    int rc = CLI_OK;
    for (size_t i = 0; i < nsets && rc == CLI_OK; i++)
        rc = inspect_dduf_component(d, comp, &sets[i], reg, o, total, first);
    cellar_dduf_weight_sets_free(sets, nsets);
    return rc;
}

/* The pipeline's line: what cellar_identify_path() makes of the archive. */
static void inspect_dduf_model(const char *path)
{
    cellar_identity *id = identify_path(path);
    if (id)
        print_model_line("", id);
    cellar_identity_free(id);
}

static int inspect_dduf(const char *path, const struct opts *o)
{
    cellar_dduf *d;
    if (cellar_dduf_open(&d, path, 0) != 0)
        return cli_error_last();
    cellar_registry *reg = cli_registry_open();
    size_t nc = cellar_dduf_component_count(d);
    const cellar_dduf_entry *index;
    if (cellar_dduf_find(&index, d, "model_index.json") != 0) { /* the open checked it */
        cellar_dduf_free(d);
        cellar_registry_free(reg);
        return cli_error_last();
    }
    if (o->json) {
        printf("{\"path\":");
        cli_json_string(stdout, path, strlen(path));
        printf(",\"format\":\"dduf\",\"entries\":%zu,\"model_index\":",
               cellar_dduf_entry_count(d));
        /* Valid JSON already: the reader parsed it strictly. */
        fwrite(index->data, 1, (size_t)index->size, stdout);
        printf(",\"components\":[");
    } else {
        printf("path:        %s\n", path);
        printf("format:      DDUF, %zu entries, %zu components\n", cellar_dduf_entry_count(d),
               nc);
        inspect_dduf_model(path);
    }
    struct summary total = {0};
    bool first = true;
    int rc = CLI_OK;
    for (size_t i = 0; i < nc && rc == CLI_OK; i++)
        rc = inspect_dduf_variants(d, cellar_dduf_component_at(d, i), reg, o, &total, &first);
    if (o->json) {
        printf("]");
        if (rc == CLI_OK) {
            printf(",");
            bool tfirst = true;
            json_summary(stdout, &tfirst, &total);
        }
        printf("}\n");
    } else if (rc == CLI_OK) {
        printf("\ntotal\n");
        text_summary(&total, "  ");
    }
    cellar_registry_free(reg);
    cellar_dduf_free(d);
    return rc;
}

/* ---- GGUF: header only (key/values and tensor infos) ---- */

/* A key/value's value as text (JSON when json): scalars and strings in
 * full up to a cut, arrays as their type and length. */
static void gguf_value(const cellar_gguf *g, size_t i, bool json)
{
    const cellar_gguf_kv *kv = cellar_gguf_kv_at(g, i);
    cellar_gguf_value v;
    if (kv->type == CELLAR_GGUF_ARRAY) {
        if (json)
            printf("{\"array\":\"%s\",\"count\":%" PRIu64 "}", cellar_gguf_type_name(kv->item_type),
                   kv->count);
        else
            printf("[%s x %" PRIu64 "]", cellar_gguf_type_name(kv->item_type), kv->count);
        return;
    }
    if (cellar_gguf_kv_value(&v, g, i, 0) != 0)
        return;
    switch (v.type) {
    case CELLAR_GGUF_STRING:
        if (json) {
            cli_json_string(stdout, v.str, v.str_len);
        } else {
            cli_put_escaped_n(stdout, v.str, v.str_len > 200 ? 200 : v.str_len);
            printf("%s", v.str_len > 200 ? "..." : "");
        }
        break;
    case CELLAR_GGUF_BOOL:
        printf("%s", v.u ? "true" : "false");
        break;
    case CELLAR_GGUF_I8:
    case CELLAR_GGUF_I16:
    case CELLAR_GGUF_I32:
    case CELLAR_GGUF_I64:
        printf("%" PRId64, v.i);
        break;
    case CELLAR_GGUF_F32:
    case CELLAR_GGUF_F64:
        if (json && (v.f != v.f || v.f - v.f != 0))
            printf("null"); /* NaN and infinities are not JSON */
        else
            printf("%.17g", v.f);
        break;
    default:
        printf("%" PRIu64, v.u);
        break;
    }
}

static int inspect_gguf(const char *path, const struct opts *o)
{
    cellar_gguf *g;
    if (cellar_gguf_open(&g, path) != 0)
        return cli_error_last();
    size_t nkv = cellar_gguf_kv_count(g), nt = cellar_gguf_tensor_count(g);
    /* The totals and the histogram over ggml types: the library's. */
    cellar_tensor_stats *stats = NULL;
    if (cellar_tensor_stats_new(&stats) != 0 || cellar_tensor_stats_add_gguf(stats, g) != 0) {
        int rc = cli_error_last();
        cellar_tensor_stats_free(stats);
        cellar_gguf_free(g);
        return rc;
    }
    cellar_tensor_totals totals;
    cellar_tensor_stats_totals(&totals, stats);
    uint64_t params = totals.params, bytes = totals.bytes;
    bool params_overflow = totals.params_overflow != 0;
    size_t ntypes = cellar_tensor_stats_type_count(stats);
    const char *type_name;
    uint64_t type_tensors, type_bytes;
    struct stat st;
    uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    char a[32], b[32];
    cellar_identity *id = identify_path(path);
    if (o->json) {
        printf("{\"path\":");
        cli_json_string(stdout, path, strlen(path));
        printf(",\"format\":\"gguf\",\"version\":%u,\"alignment\":%u,\"data_offset\":%" PRIu64
               ",\"size\":%" PRIu64 ",\"tensors\":%zu,\"parameters\":%" PRIu64
               ",\"tensor_bytes\":%" PRIu64 ",\"types\":{",
               cellar_gguf_version(g), cellar_gguf_alignment(g), cellar_gguf_data_offset(g),
               size, nt, params, bytes);
        bool first = true;
        for (size_t t = 0; t < ntypes; t++)
            if (cellar_tensor_stats_type_at(&type_name, &type_tensors, &type_bytes, stats, t) == 0) {
                json_key(stdout, &first, type_name);
                printf("{\"tensors\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", type_tensors,
                       type_bytes);
            }
        printf("},\"metadata\":{");
        for (size_t i = 0; i < nkv; i++) {
            const cellar_gguf_kv *kv = cellar_gguf_kv_at(g, i);
            fputs(i ? "," : "", stdout);
            cli_json_string(stdout, kv->key, kv->key_len);
            fputc(':', stdout);
            gguf_value(g, i, true);
        }
        fputc('}', stdout);
        if (o->tensors) {
            printf(",\"tensor_list\":[");
            for (size_t i = 0; i < nt; i++) {
                const cellar_gguf_tensor *t = cellar_gguf_tensor_at(g, i);
                fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
                cli_json_string(stdout, t->name, t->name_len);
                printf(",\"type\":\"%s\",\"shape\":[", t->type_name);
                for (uint32_t k = 0; k < t->n_dims; k++)
                    printf("%s%" PRIu64, k ? "," : "", t->dims[k]);
                printf("],\"bytes\":%" PRIu64 ",\"offset\":%" PRIu64 "}", t->size,
                       cellar_gguf_data_offset(g) + t->offset);
            }
            fputc(']', stdout);
        }
        if (id) {
            bool mfirst = false;
            json_model(stdout, &mfirst, id);
        }
        printf("}\n");
    } else {
        printf("path:        %s\n", path);
        printf("format:      GGUF v%u, alignment %u, data at byte %" PRIu64 "\n",
               cellar_gguf_version(g), cellar_gguf_alignment(g), cellar_gguf_data_offset(g));
        printf("tensors:     %zu\n", nt);
        printf("parameters:  %" PRIu64, params);
        if (params >= 1000)
            printf(" (%s)", human_count(params, a, sizeof a));
        printf("%s\n", params_overflow ? " (overflowed)" : "");
        printf("size:        %" PRIu64 " bytes (%s), tensor data %s\n", size,
               human_bytes(size, a, sizeof a), human_bytes(bytes, b, sizeof b));
        printf("types:      ");
        bool any = false;
        for (size_t t = 0; t < ntypes; t++)
            if (cellar_tensor_stats_type_at(&type_name, &type_tensors, &type_bytes, stats, t) == 0) {
                printf("%s %s x%" PRIu64 " (%s)", any ? "," : "", type_name, type_tensors,
                       human_bytes(type_bytes, a, sizeof a));
                any = true;
            }
        printf("%s\n", any ? "" : " none");
        print_model_line("", id);
        printf("key/values:  %zu\n", nkv);
        for (size_t i = 0; i < nkv; i++) {
            const cellar_gguf_kv *kv = cellar_gguf_kv_at(g, i);
            printf("  ");
            cli_put_escaped_n(stdout, kv->key, kv->key_len);
            printf(" = ");
            gguf_value(g, i, false);
            printf("\n");
        }
        for (size_t i = 0; o->tensors && i < nt; i++) {
            const cellar_gguf_tensor *t = cellar_gguf_tensor_at(g, i);
            printf("  ");
            cli_put_escaped_n(stdout, t->name, t->name_len);
            printf("  %s  [", t->type_name);
            for (uint32_t k = 0; k < t->n_dims; k++)
                printf("%s%" PRIu64, k ? ", " : "", t->dims[k]);
            printf("]  %" PRIu64 "\n", t->size);
        }
    }
    cellar_identity_free(id);
    cellar_tensor_stats_free(stats);
    cellar_gguf_free(g);
    return CLI_OK;
}

/* ---- PyTorch checkpoints: cli/cmd_inspect_pt.c ---- */

static int inspect_pt_row(const char *path, const struct opts *o)
{
    return inspect_pt(path, o->tensors, o->json);
}

/* Which printer shows what cellar_detect_format() found. */
static const struct format formats[] = {
    {CELLAR_FORMAT_GGUF, inspect_gguf},
    {CELLAR_FORMAT_PYTORCH, inspect_pt_row},
    {CELLAR_FORMAT_DDUF, inspect_dduf},
    {CELLAR_FORMAT_SAFETENSORS, inspect_weights},
    {CELLAR_FORMAT_FOLDER, inspect_weights},
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
    cellar_format format;
    if (cellar_detect_format(&format, path) != 0)
        return cli_error_last();
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
        if (formats[i].format == format)
            return formats[i].inspect(path, &o);
    return cli_error("%s: not a weight file or model folder cellar knows", path);
}
