/* A model folder's weight components: a diffusers folder gives one per
 * sub-folder holding weights (the variant-free file where variants sit side
 * by side, as diffusers loads it); any other path is one component. */
#include "safetensors.h"
#include "variant.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A PyTorch checkpoint as transformers and diffusers name it
 * (pytorch_model.bin, diffusion_pytorch_model.fp16.bin...). */
static bool is_torch_bin(const char *name)
{
    return has_suffix(name, ".bin") &&
           (!strncmp(name, "pytorch_model.", 14) || !strncmp(name, "diffusion_pytorch_model.", 24));
}

/* Whether dir directly holds weights (a .safetensors file or an index; with
 * bins, a torch checkpoint too). */
static bool holds_weights_in(const char *dir, bool bins)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL)
        found = e->d_name[0] != '.' && (has_suffix(e->d_name, ".safetensors") ||
                                        has_suffix(e->d_name, ".safetensors.index.json") ||
                                        (bins && is_torch_bin(e->d_name)));
    closedir(d);
    return found;
}

static bool holds_weights(const char *dir)
{
    return holds_weights_in(dir, true);
}

/* What cellar_shards_open() should take for a component folder. Diffusers
 * folders often hold variants side by side (diffusion_pytorch_model
 * .safetensors and diffusion_pytorch_model.fp16.safetensors, or their
 * indexes); loaded without a variant, diffusers takes the file whose stem
 * has no ".<variant>", so that one is the component when it is the only
 * such file. Otherwise the folder itself (shards_open reports ambiguity). */
static char *component_path(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return cellar_strdup(dir);
    size_t nidx = 0, nst = 0, plain_idx = 0, plain_st = 0, plain_bin = 0;
    char *idx = NULL, *st = NULL, *bin = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (name[0] == '.')
            continue;
        /* diffusers falls back to the variant-free .bin without safetensors. */
        if ((!strcmp(name, "pytorch_model.bin") || !strcmp(name, "diffusion_pytorch_model.bin")) &&
            plain_bin++ == 0)
            bin = cellar_strdup(name);
        bool is_idx = has_suffix(name, ".safetensors.index.json");
        if (!is_idx && !has_suffix(name, ".safetensors"))
            continue;
        size_t stem = strlen(name) - strlen(is_idx ? ".safetensors.index.json" : ".safetensors");
        /* the variant rule DDUF weight sets use too (variant.c) */
        const char *variant;
        size_t variant_len;
        bool plain = !cellar_weights_variant(name, stem, &variant, &variant_len);
        size_t *count = is_idx ? &nidx : &nst, *plains = is_idx ? &plain_idx : &plain_st;
        char **keep = is_idx ? &idx : &st;
        (*count)++;
        if (plain && (*plains)++ == 0)
            *keep = cellar_strdup(name); /* NULL (no memory): the folder is used */
    }
    closedir(d);
    char *path = NULL;
    if (nidx > 1 && plain_idx == 1 && idx)
        path = cellar_path_join(dir, idx);
    else if (nidx == 0 && nst > 1 && plain_st == 1 && st)
        path = cellar_path_join(dir, st);
    else if (nidx == 0 && nst == 0 && plain_bin == 1 && bin)
        path = cellar_path_join(dir, bin); /* a PyTorch checkpoint */
    else
        path = cellar_strdup(dir);
    free(idx);
    free(st);
    free(bin);
    return path;
}

static int cmp_component(const void *a, const void *b)
{
    return strcmp(((const cellar_component *)a)->name, ((const cellar_component *)b)->name);
}

void cellar_components_free(cellar_component *c, size_t count)
{
    if (!c)
        return;
    for (size_t i = 0; i < count; i++) {
        free(c[i].name);
        free(c[i].path);
    }
    free(c);
}

int cellar_components(cellar_component **out, size_t *count, const char *path)
{
    *out = NULL;
    *count = 0;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return cellar_fail_errno(errno, "%s", path);
    char *mi = S_ISDIR(sb.st_mode) ? cellar_path_join(path, "model_index.json") : NULL;
    bool diffusers = mi && (access(mi, F_OK) == 0 || !holds_weights(path));
    free(mi);
    cellar_component *c = NULL;
    size_t n = 0;
    int rc = 0;
    if (!diffusers) {
        /* A folder holding only a checkpoint (transformers' pytorch_model.bin)
         * stands for it. */
        bool bin = S_ISDIR(sb.st_mode) && !holds_weights_in(path, false);
        c = cellar_calloc(1, sizeof *c);
        if (!c || !(c->name = cellar_strdup("")) ||
            !(c->path = bin ? component_path(path) : cellar_strdup(path))) {
            cellar_components_free(c, 1);
            return CELLAR_ENOMEM;
        }
        *out = c;
        *count = 1;
        return 0;
    }
    DIR *d = opendir(path);
    if (!d)
        return cellar_fail_errno(errno, "%s", path);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && rc == 0) {
        if (e->d_name[0] == '.')
            continue;
        char *sub = cellar_path_join(path, e->d_name);
        if (!sub) {
            rc = CELLAR_ENOMEM;
            break;
        }
        struct stat ss;
        if (stat(sub, &ss) != 0 || !S_ISDIR(ss.st_mode) || !holds_weights(sub)) {
            free(sub);
            continue;
        }
        cellar_component *nc = cellar_realloc(c, (n + 1) * sizeof *nc);
        if (!nc) {
            free(sub);
            rc = CELLAR_ENOMEM;
            break;
        }
        c = nc;
        c[n].path = component_path(sub);
        c[n].name = cellar_strdup(e->d_name);
        free(sub);
        if (!c[n].path || !c[n].name) {
            free(c[n].path);
            free(c[n].name);
            rc = CELLAR_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n == 0)
        rc = cellar_fail(CELLAR_ENOTFOUND, "%s: no safetensors or PyTorch weights in it or its sub-folders", path);
    if (rc) {
        cellar_components_free(c, n);
        return rc;
    }
    qsort(c, n, sizeof *c, cmp_component);
    *out = c;
    *count = n;
    return 0;
}

