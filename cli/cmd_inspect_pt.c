/* cellar inspect of PyTorch checkpoints (.bin .pt .pth .ckpt): the same
 * figures as for safetensors, plus the storages and the globals the pickle
 * names with their verdict. Kept apart from cmd_inspect.c, which only adds
 * a row to its format table. */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void jstr(const char *s)
{
    if (s)
        cli_json_string(stdout, s, strlen(s));
    else
        fputs("null", stdout);
}

bool inspect_pt_match(const char *path)
{
    return cellar_pt_sniff(path) != 0;
}

int inspect_pt(const char *path, bool tensors, bool json)
{
    cellar_pt *pt;
    if (cellar_pt_open(&pt, path, CELLAR_PT_KEEP_GOING) != 0)
        return cli_error_last();
    size_t nt = cellar_pt_count(pt), ng = cellar_pt_global_count(pt);
    uint64_t params = 0, bytes = 0, dt_n[CELLAR_DTYPE__COUNT + 1] = {0},
             dt_b[CELLAR_DTYPE__COUNT + 1] = {0};
    const char *dt_name[CELLAR_DTYPE__COUNT + 1] = {0};
    for (size_t i = 0; i < nt; i++) {
        const cellar_pt_tensor *t = cellar_pt_tensor_at(pt, i);
        params += t->nelem;
        bytes += t->nbytes;
        dt_n[t->dtype]++;
        dt_b[t->dtype] += t->nbytes;
        dt_name[t->dtype] = t->dtype_name;
    }
    struct stat st;
    uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    const char *problem = cellar_pt_problem(pt);
    cellar_pt_hash h = {0};
    bool have_hash = !problem && cellar_pt_structural_hash(&h, pt) == 0;
    if (!have_hash)
        cellar_error_clear();
    cellar_registry *reg = NULL;
    if (cellar_registry_open(&reg, NULL) != 0)
        cellar_error_clear();
    const cellar_model_info *m = NULL;
    if (have_hash && cellar_registry_find(&m, reg, h.diffsynth[0] ? h.diffsynth : h.state_dict))
        cellar_error_clear(); /* an unknown model: m stays NULL */
    /* What the model is, from its names and shapes (cellar_identify_*). */
    cellar_identity *id = NULL;
    if (!problem && cellar_identify_path(&id, path, reg) != 0) {
        cli_warn("identify: %s", cellar_error_last());
        id = NULL;
    }
    const char *idtext = id ? cellar_identity_text(id) : NULL;
    size_t dangerous = cellar_pt_dangerous_count(pt), nbl = cellar_pt_blocked_count(pt);
    if (cellar_pt_duplicate_count(pt))
        cli_warn("%s: %zu tensor names appear twice; the last value of each is listed", path,
                 cellar_pt_duplicate_count(pt));

    if (json) {
        /* The safetensors shape (one component, its files, figures, hash,
         * model, tensor_list) plus the container and the globals. */
        char dtypes[1024] = "";
        size_t dl = 0;
        for (int d = CELLAR_DTYPE__COUNT; d >= 0; d--)
            if (dt_n[d] && dl < sizeof dtypes)
                dl += (size_t)snprintf(dtypes + dl, sizeof dtypes - dl,
                                       "%s\"%s\":{\"tensors\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                                       dl ? "," : "", dt_name[d], dt_n[d], dt_b[d]);
        char figures[1400];
        snprintf(figures, sizeof figures,
                 "\"tensors\":%zu,\"parameters\":%" PRIu64 ",\"tensor_bytes\":%" PRIu64
                 ",\"size\":%" PRIu64 ",\"dtypes\":{%s}",
                 nt, params, bytes, size, dtypes);
        printf("{\"path\":");
        jstr(path);
        printf(",\"format\":\"pytorch\",\"container\":\"%s\",\"protocol\":%u,\"components\":[",
               cellar_pt_format(pt), cellar_pt_protocol(pt));
        printf("{\"component\":\"\",\"path\":");
        jstr(path);
        printf(",\"format\":\"pytorch\",\"files\":[{\"path\":");
        jstr(path);
        printf(",\"size\":%" PRIu64 ",\"tensors\":%zu,\"storages\":%zu}],%s,\"metadata\":{}",
               size, nt, cellar_pt_storage_count(pt), figures);
        printf(",\"structural_hash\":");
        jstr(have_hash && h.diffsynth[0] ? h.diffsynth : NULL);
        printf(",\"state_dict_hash\":");
        jstr(have_hash ? h.state_dict : NULL);
        printf(",\"diffsynth_problem\":");
        jstr(have_hash && h.problem[0] ? h.problem : NULL);
        printf(",\"identity\":");
        jstr(idtext);
        printf(",\"model\":");
        if (m) {
            printf("{\"family\":");
            jstr(m->family);
            printf(",\"component\":");
            jstr(m->component);
            printf(",\"description\":");
            jstr(m->description);
            printf("}");
        } else {
            printf("null");
        }
        if (tensors) {
            printf(",\"tensor_list\":[");
            /* safetensors' fields (offset: of the bytes in the file, null
             * for a view that is not contiguous), then torch's view. */
            for (size_t i = 0; i < nt; i++) {
                const cellar_pt_tensor *t = cellar_pt_tensor_at(pt, i);
                const cellar_pt_storage *s = cellar_pt_storage_at(pt, t->storage);
                printf("%s{\"name\":", i ? "," : "");
                cli_json_string(stdout, t->name, t->name_len);
                printf(",\"dtype\":\"%s\",\"shape\":[", t->dtype_name);
                for (size_t k = 0; k < t->rank; k++)
                    printf("%s%" PRIu64, k ? "," : "", t->shape[k]);
                printf("],\"bytes\":%" PRIu64 ",\"offset\":", t->nbytes);
                if (t->contiguous)
                    printf("%" PRIu64, t->offset);
                else
                    printf("null");
                printf(",\"file\":0,\"torch_dtype\":\"%s\",\"stride\":[", t->torch_dtype);
                for (size_t k = 0; k < t->rank; k++)
                    printf("%s%" PRIu64, k ? "," : "", t->stride[k]);
                printf("],\"storage_offset\":%" PRIu64 ",\"storage\":", t->storage_offset);
                jstr(s->key);
                printf(",\"storage_bytes\":%" PRIu64 ",\"contiguous\":%s,\"alias\":",
                       s->nbytes, t->contiguous ? "true" : "false");
                if (t->alias != i) {
                    const cellar_pt_tensor *a = cellar_pt_tensor_at(pt, t->alias);
                    cli_json_string(stdout, a->name, a->name_len);
                } else {
                    printf("null");
                }
                printf("}");
            }
            printf("]");
        }
        printf("}],%s,\"problem\":", figures);
        jstr(problem);
        printf(",\"dangerous\":%zu,\"globals\":[", dangerous);
        for (size_t i = 0; i < ng; i++) {
            const cellar_pt_global *g = cellar_pt_global_at(pt, i);
            printf("%s{\"module\":", i ? "," : "");
            jstr(g->module);
            printf(",\"name\":");
            jstr(g->name);
            printf(",\"class\":\"%s\",\"count\":%" PRIu64 ",\"offset\":%" PRIu64 "}",
                   cellar_pt_class_name(g->cls), g->count, g->offset);
        }
        printf("],\"blocked\":[");
        for (size_t i = 0; i < nbl; i++) {
            const char *p;
            const cellar_pt_global *g;
            cellar_pt_blocked_at(pt, i, &p, &g);
            printf("%s{\"path\":", i ? "," : "");
            jstr(p);
            printf(",\"global\":");
            if (g)
                printf("\"%s.%s\"", g->module, g->name);
            else
                printf("null");
            printf("}");
        }
        printf("]}\n");
    } else {
        printf("path:        %s\n", path);
        printf("format:      PyTorch checkpoint (%s container, pickle protocol %u)\n",
               cellar_pt_format(pt), cellar_pt_protocol(pt));
        if (problem)
            printf("problem:     %s\n", problem);
        printf("tensors:     %zu in %zu storages\n", nt, cellar_pt_storage_count(pt));
        printf("parameters:  %" PRIu64 "\n", params);
        printf("size:        %" PRIu64 " bytes, tensor data %" PRIu64 " bytes\n", size, bytes);
        printf("dtypes:     ");
        bool any = false;
        for (int d = CELLAR_DTYPE__COUNT; d >= 0; d--)
            if (dt_n[d]) {
                printf("%s %s x%" PRIu64, any ? "," : "", dt_name[d], dt_n[d]);
                any = true;
            }
        printf("%s\n", any ? "" : " none");
        if (have_hash) {
            if (h.diffsynth[0])
                printf("structural:  %s\n", h.diffsynth);
            else
                printf("structural:  none (%s)\n", h.problem);
            printf("state dict:  %s (structural hash of the tensors listed)\n", h.state_dict);
        }
        if (idtext)
            printf("identity:    %s\n", idtext);
        if (m)
            printf("model:       %s (family %s, component %s)\n", m->description, m->family,
                   m->component);
        else
            printf("model:       unknown\n");
        printf("globals:     %zu (%zu dangerous)\n", ng, dangerous);
        for (size_t i = 0; i < ng; i++) {
            const cellar_pt_global *g = cellar_pt_global_at(pt, i);
            printf("  %-9s  ", cellar_pt_class_name(g->cls));
            cli_put_escaped_n(stdout, g->module, strlen(g->module));
            putchar('.');
            cli_put_escaped_n(stdout, g->name, strlen(g->name));
            printf("\n");
        }
        for (size_t i = 0; i < nbl; i++) {
            const char *p;
            const cellar_pt_global *g;
            cellar_pt_blocked_at(pt, i, &p, &g);
            printf("blocked:     tensors under '");
            cli_put_escaped_n(stdout, p, strlen(p));
            printf("' are held by %s%s%s\n", g ? g->module : "an object", g ? "." : "",
                   g ? g->name : "");
        }
        for (size_t i = 0; tensors && i < nt; i++) {
            const cellar_pt_tensor *t = cellar_pt_tensor_at(pt, i);
            printf("  ");
            cli_put_escaped_n(stdout, t->name, t->name_len);
            printf("  %s  [", t->dtype_name);
            for (size_t k = 0; k < t->rank; k++)
                printf("%s%" PRIu64, k ? ", " : "", t->shape[k]);
            printf("]  %" PRIu64, t->nbytes);
            if (t->alias != i) {
                printf("  (alias of ");
                const cellar_pt_tensor *a = cellar_pt_tensor_at(pt, t->alias);
                cli_put_escaped_n(stdout, a->name, a->name_len);
                printf(")");
            }
            printf("\n");
        }
    }
    cellar_identity_free(id);
    cellar_registry_free(reg);
    /* A broken file is reported (globals included) and then fails. */
    int rc = problem ? cli_error("%s", problem) : CLI_OK;
    cellar_pt_free(pt);
    return rc;
}
