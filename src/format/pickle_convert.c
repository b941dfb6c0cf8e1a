/* PyTorch checkpoint -> safetensors, without running the pickle.
 *
 * The HF converter's rules (safetensors' convert.py): the state dict (a
 * Lightning 'state_dict' unwrapped), names sharing memory deduplicated with
 * the dropped names in metadata ({dropped: kept}) and "format": "pt". cellar
 * dedupes exact aliases only (same storage, offset, shape, strides, dtype)
 * and writes every other view as its own row-major copy, so no tensor's
 * bytes are lost. Contiguous tensors go from the checkpoint to the output
 * with copy_file_range (no pass through user space, no page-cache mapping
 * of the weights in this process); views are gathered in memory. */
#include "pickle.h"

#include "safetensors.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cellar_pt_refuse(const cellar_pt *pt, int allow_unknown, const char *verb, const char *hint)
{
    for (size_t i = 0; i < cellar_pt_global_count(pt); i++) {
        const cellar_pt_global *g = cellar_pt_global_at(pt, i);
        if (g->cls == CELLAR_PT_DANGEROUS)
            return cellar_fail(CELLAR_EUNSUPPORTED,
                               "%s: dangerous global %s.%s at offset %llu: refusing to %s",
                               cellar_pt_label(pt), g->module, g->name,
                               (unsigned long long)g->offset, verb);
    }
    if (!allow_unknown && cellar_pt_blocked_count(pt)) {
        const char *path;
        const cellar_pt_global *g;
        cellar_pt_blocked_at(pt, 0, &path, &g);
        return cellar_fail(CELLAR_EUNSUPPORTED,
                           "%s: %s global %s%s%s holds tensors under '%s': refusing to "
                           "%s (%s)",
                           cellar_pt_label(pt), g ? cellar_pt_class_name(g->cls) : "an unnamed",
                           g ? g->module : "(object)", g ? "." : "", g ? g->name : "", path, verb,
                           hint);
    }
    return 0;
}

static int write_one(cellar_pt_convert_result *res, cellar_pt *pt, const char *dst)
{
    size_t n = cellar_pt_count(pt);
    cellar_st_writer *w = NULL;
    void **bufs = cellar_calloc(n ? n : 1, sizeof *bufs);
    int rc = bufs ? cellar_st_writer_new(&w) : CELLAR_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const cellar_pt_tensor *t = cellar_pt_tensor_at(pt, i);
        if (t->dtype == CELLAR_DTYPE__COUNT) {
            rc = cellar_fail(CELLAR_EUNSUPPORTED, "%s: tensor '%s' is %s: safetensors has no such dtype",
                             cellar_pt_label(pt), t->name, t->torch_dtype);
            break;
        }
        if (t->alias != i) {
            const cellar_pt_tensor *k = cellar_pt_tensor_at(pt, t->alias);
            char *name = cellar_strndup(t->name, t->name_len);
            rc = name ? cellar_st_writer_set_metadata(w, name, k->name) : CELLAR_ENOMEM;
            free(name);
            res->dropped++;
            continue;
        }
        if (t->contiguous && cellar_pt_fd(pt) >= 0) {
            rc = cellar_st_writer_add_fd(w, t->name, t->name_len, t->dtype, t->rank, t->shape,
                                         cellar_pt_fd(pt), t->offset, t->nbytes);
        } else {
            if (t->nbytes > SIZE_MAX) {
                rc = cellar_fail(CELLAR_ERANGE, "%s: tensor '%s' is too large", cellar_pt_label(pt),
                                 t->name);
                break;
            }
            bufs[i] = cellar_malloc(t->nbytes ? (size_t)t->nbytes : 1);
            if (!bufs[i]) {
                rc = CELLAR_ENOMEM;
                break;
            }
            if ((rc = cellar_pt_read(bufs[i], (size_t)t->nbytes, pt, i)) == 0)
                rc = cellar_st_writer_add(w, t->name, t->name_len, t->dtype, t->rank, t->shape,
                                          bufs[i], t->nbytes);
        }
        res->tensors++;
    }
    if (rc == 0)
        rc = cellar_st_writer_set_metadata(w, "format", "pt");
    if (rc == 0)
        rc = cellar_st_writer_write(w, dst);
    cellar_st_writer_free(w);
    for (size_t i = 0; bufs && i < n; i++)
        free(bufs[i]);
    free(bufs);
    return rc;
}

int cellar_pt_convert(cellar_pt_convert_result *res, const char *src, const char *dst,
                      const cellar_pt_convert_opts *opts)
{
    RETURN_ERROR_IF(!src || !dst, CELLAR_EINVAL, "cellar_pt_convert: bad argument");
    cellar_pt_convert_opts def = CELLAR_PT_CONVERT_OPTS_INIT;
    if (!opts)
        opts = &def;
    CELLAR_OPTS_CHECK(opts, "cellar_pt_convert_opts", CELLAR_PT_CONVERT_OPTS_VERSION,
                      "CELLAR_PT_CONVERT_OPTS_INIT");
    cellar_pt_convert_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    cellar_pt *pt;
    /* Keep going so that a dangerous global is named even when the pickle
     * is also malformed; the parse error is reported after it. */
    int rc = cellar_pt_open(&pt, src, CELLAR_PT_KEEP_GOING);
    if (rc)
        return rc;
    if ((rc = cellar_pt_refuse(pt, opts->allow_unknown, "convert",
                               "--allow-unknown converts the others")) == 0 && cellar_pt_problem(pt))
        rc = cellar_fail(CELLAR_EFORMAT, "%s", cellar_pt_problem(pt));
    for (size_t i = 0; i < cellar_pt_blocked_count(pt); i++)
        res->skipped++;
    if (rc == 0 && opts->max_size == 0) {
        rc = write_one(res, pt, dst);
        res->shards = rc == 0;
    } else if (rc == 0) {
        /* Sharded: one canonical file beside the folder, split exactly as
         * `cellar shard` does, then removed. */
        if ((rc = cellar_mkdirs(dst, 0755)) == 0) {
            char *tmp = cellar_sprintf("%s/.cellar-convert-%ld.safetensors", dst, (long)getpid());
            if (!tmp) {
                rc = CELLAR_ENOMEM;
            } else {
                if ((rc = write_one(res, pt, tmp)) == 0)
                    rc = cellar_shard_split(&res->shards, tmp, dst, opts->max_size, NULL, NULL);
                unlink(tmp);
                free(tmp);
            }
        }
    }
    cellar_pt_free(pt);
    return rc;
}
