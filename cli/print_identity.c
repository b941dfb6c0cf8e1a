/* What a file is (cellar_identify_*), printed for inspect and ls. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

cellar_registry *cli_registry_open(void)
{
    const char *extra = getenv("CELLAR_REGISTRY");
    cellar_registry *r = NULL;
    if (cellar_registry_open(&r, extra && *extra ? extra : NULL) != 0) {
        cli_warn("%s (using the built-in registry alone)", cellar_error_last());
        cellar_error_clear();
        if (cellar_registry_open(&r, NULL) != 0)
            r = NULL; /* out of memory: lookups take NULL as the table */
    }
    return r;
}

static void json_str(FILE *f, const char *key, const char *v, bool *first)
{
    fprintf(f, "%s\"%s\":", *first ? "" : ",", key);
    *first = false;
    if (v)
        cli_json_string(f, v, strlen(v));
    else
        fputs("null", f);
}

static void json_entry(FILE *f, const cellar_model_info *m)
{
    bool first = true;
    fputc('{', f);
    json_str(f, "hash", m->hash, &first);
    json_str(f, "family", m->family, &first);
    json_str(f, "component", m->component, &first);
    json_str(f, "layout", m->layout, &first);
    json_str(f, "model_name", m->model_name, &first);
    json_str(f, "model_class", m->model_class, &first);
    json_str(f, "source", m->source, &first);
    json_str(f, "description", m->description, &first);
    fputc('}', f);
}

void cli_identity_json(FILE *f, const cellar_identity *id)
{
    const cellar_identity_info *x = cellar_identity_get(id);
    if (!x) {
        fputs("null", f);
        return;
    }
    static const char *const conf[] = {"none", "low", "medium", "high"};
    bool first = true;
    fputc('{', f);
    json_str(f, "text", x->text, &first);
    json_str(f, "kind", x->kind_name, &first);
    json_str(f, "base", x->base, &first);
    json_str(f, "variant", x->variant, &first);
    json_str(f, "component", x->component, &first);
    json_str(f, "layout", x->layout, &first);
    json_str(f, "precision", x->precision, &first);
    json_str(f, "parts", x->parts, &first);
    json_str(f, "confidence",
             x->confidence >= 0 && x->confidence < 4 ? conf[x->confidence] : "none", &first);
    fputs(",\"evidence\":[", f);
    static const struct {
        unsigned bit;
        const char *name;
    } ev[] = {{CELLAR_EVIDENCE_HASH, "hash"},
              {CELLAR_EVIDENCE_GROUP_HASH, "group-hash"},
              {CELLAR_EVIDENCE_RULE, "rule"},
              {CELLAR_EVIDENCE_METADATA, "metadata"}};
    bool efirst = true;
    for (size_t i = 0; i < sizeof ev / sizeof *ev; i++)
        if (x->evidence & ev[i].bit) {
            fprintf(f, "%s\"%s\"", efirst ? "" : ",", ev[i].name);
            efirst = false;
        }
    fputc(']', f);
    json_str(f, "rule", x->rule, &first);
    json_str(f, "declared", x->declared, &first);
    json_str(f, "conflict", x->conflict, &first);
    json_str(f, "structural", *x->structural ? x->structural : NULL, &first);
    fprintf(f, ",\"tensors\":%zu,\"registry\":[", x->tensors);
    for (size_t i = 0; i < x->nmatches; i++) {
        fputs(i ? "," : "", f);
        json_entry(f, x->matches[i]);
    }
    fputs("],\"groups\":[", f);
    for (size_t i = 0; i < x->ngroups; i++) {
        fprintf(f, "%s{\"group\":", i ? "," : "");
        cli_json_string(f, x->groups[i].group, strlen(x->groups[i].group));
        fprintf(f, ",\"tensors\":%zu,\"entry\":", x->groups[i].tensors);
        json_entry(f, x->groups[i].entry);
        fputc('}', f);
    }
    fputc(']', f);
    if (x->kind == CELLAR_KIND_LORA) {
        fputs(",\"lora\":{", f);
        bool lfirst = true;
        json_str(f, "format", x->lora_format, &lfirst);
        if (x->lora_rank)
            fprintf(f, ",\"rank\":%u", x->lora_rank);
        else
            fputs(",\"rank\":null", f);
        if (x->lora_has_alpha && x->lora_alpha == x->lora_alpha &&
            x->lora_alpha - x->lora_alpha == 0)
            fprintf(f, ",\"alpha\":%.17g", x->lora_alpha);
        else
            fputs(",\"alpha\":null", f);
        json_str(f, "targets", x->lora_targets, &lfirst);
        fputc('}', f);
    }
    if (x->kind == CELLAR_KIND_PIPELINE) {
        fputs(",\"components\":{", f);
        for (size_t i = 0; i < x->ncomponents; i++) {
            fputs(i ? "," : "", f);
            cli_json_string(f, x->component_names[i], strlen(x->component_names[i]));
            fputc(':', f);
            cli_identity_json(f, x->components[i]);
        }
        fputc('}', f);
    }
    fputc('}', f);
}
