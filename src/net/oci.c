/* CNCF ModelPack artifacts in an OCI registry (OCI.md s.3, docs/oci.md):
 * the manifest and config writer and reader, cellar_oci_push,
 * cellar_oci_pull (the Hub pull's engine with the registry as its source)
 * and the team cache around a Hub pull. */
#include "json.h"
#include "oci.h"
#include "pull_source.h"
#include "oci_registry.h"
#include "walk.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MT_PREFIX "application/vnd.cncf.model."
#define MT_OLD_PREFIX "application/vnd.cnai.model."
#define MT_MANIFEST_ARTIFACT "application/vnd.cncf.model.manifest.v1+json"
#define MT_CONFIG "application/vnd.cncf.model.config.v1+json"
#define ANN_FILEPATH "org.cncf.model.filepath"
#define ANN_METADATA "org.cncf.model.file.metadata+json"
#define ANN_UNTESTED "org.cncf.model.file.mediatype.untested"
#define DEFAULT_TAG "latest"
/* The record of which repository of a registry holds a blob (for mounts). */
#define SEEN_FILE "oci-seen"
#define SEEN_MAX (16u << 20)

/* ---- options ---- */

int cellar_oci_opts_from_env(cellar_oci_opts *o)
{
    const char *a = getenv("CELLAR_REGISTRY_AUTH");
    if (a && *a && !o->auth)
        o->auth = a;
    const char *plain = getenv("CELLAR_REGISTRY_PLAIN_HTTP");
    if (plain && (!strcmp(plain, "1") || !strcasecmp(plain, "true")))
        o->plain_http = 1;
    const char *d = getenv("DOCKER_CONFIG");
    if (!o->docker_config && d && *d)
        o->docker_config = d;
    const char *home = getenv("HOME");
    if (o->version >= 2 && !o->home && home && *home)
        o->home = home;
    return 0;
}

/* The registry client for ref's host with the credentials o gives. */
static int reg_open_for(cellar_reg **out, const cellar_oci_ref *ref, const cellar_oci_opts *o)
{
    char *creds = NULL;
    int rc = 0;
    if (!o->auth) {
        /* docker_config, else home/.docker (no Docker config without either). */
        char *dir = NULL;
        if (!o->docker_config && o->version >= 2 && o->home && *o->home &&
            !(dir = cellar_sprintf("%s/.docker", o->home)))
            return CELLAR_ENOMEM;
        rc = cellar_reg_docker_creds(&creds, o->docker_config ? o->docker_config : dir,
                                     ref->host);
        free(dir);
    }
    if (!rc)
        rc = cellar_reg_open(out, ref->host, o->plain_http != 0, o->auth ? o->auth : creds);
    if (creds) {
        memset(creds, 0, strlen(creds));
        free(creds);
    }
    return rc;
}

/* ---- the files of a model ---- */

struct mfile {
    char *path;   /* relative, '/'-separated */
    char *object; /* the store's object path */
    uint8_t sha256[32];
    uint64_t size;
    time_t mtime;
    unsigned mode;
};

struct model {
    char *name;     /* descriptor.name */
    char *revision; /* descriptor.revision, or NULL */
    struct mfile *f;
    size_t n, cap;
};

static void model_free(struct model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->f[i].path);
        free(m->f[i].object);
    }
    free(m->f);
    free(m->name);
    free(m->revision);
    memset(m, 0, sizeof *m);
}

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcasecmp(s + n - k, suf);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* The ModelPack kind of a file, by its name (OCI.md s.3); *guessed when
 * no rule named it. */
static const char *file_kind(const char *path, bool *guessed)
{
    static const char *const weights[] = {".safetensors", ".bin", ".pt", ".pth", ".ckpt",
                                          ".gguf", ".onnx", ".msgpack", ".h5", ".dduf",
                                          ".pb", ".tflite", ".npz", ".ggml", ".mlmodel"};
    const char *b = base_name(path);
    *guessed = false;
    for (size_t i = 0; i < sizeof weights / sizeof *weights; i++)
        if (ends_with(b, weights[i]))
            return "weight";
    if (ends_with(b, ".json") || ends_with(b, ".model") || ends_with(b, ".tiktoken") ||
        (ends_with(b, ".txt") && (strstr(b, "merges") || strstr(b, "vocab"))) ||
        ends_with(b, ".yaml") || ends_with(b, ".yml"))
        return "weight.config";
    if (ends_with(b, ".py") || ends_with(b, ".sh") || ends_with(b, ".ipynb"))
        return "code";
    if (ends_with(b, ".md") || !strncasecmp(b, "LICENSE", 7) || !strncasecmp(b, "README", 6) ||
        ends_with(b, ".txt") || !strncasecmp(b, "NOTICE", 6) || ends_with(b, ".pdf") ||
        ends_with(b, ".png") || ends_with(b, ".jpg") || ends_with(b, ".gitattributes"))
        return "doc";
    *guessed = true;
    return "doc";
}

static int kind_rank(const char *k)
{
    return !strcmp(k, "weight.config") ? 0 : !strcmp(k, "weight") ? 1 : !strcmp(k, "code") ? 2
                                                                                              : 3;
}

static int mfile_cmp(const void *a, const void *b)
{
    const struct mfile *x = a, *y = b;
    bool g;
    int d = kind_rank(file_kind(x->path, &g)) - kind_rank(file_kind(y->path, &g));
    return d ? d : strcmp(x->path, y->path);
}

static int model_add(struct model *m, const char *path, const uint8_t sha256[32], uint64_t size,
                     time_t mtime, unsigned mode, cellar_store *s)
{
    int rc = cellar_grow(&m->f, &m->cap, m->n + 1, sizeof *m->f, 16);
    if (rc)
        return rc;
    struct mfile *f = &m->f[m->n];
    memset(f, 0, sizeof *f);
    f->path = cellar_strdup(path);
    if (!f->path)
        return CELLAR_ENOMEM;
    m->n++;
    memcpy(f->sha256, sha256, 32);
    f->size = size;
    f->mtime = mtime;
    f->mode = mode;
    return cellar_store_object_path(&f->object, s, sha256);
}

struct folder_walk {
    cellar_store *s;
    struct model *m;
    size_t rootlen;
};

static int folder_file(const char *path, const char *name, const struct stat *st, void *ctx)
{
    struct folder_walk *w = ctx;
    (void)name;
    if (!S_ISREG(st->st_mode))
        return 0;
    const char *rel = path + w->rootlen;
    while (*rel == '/')
        rel++;
    if (!cellar_hub_path_safe(rel, strlen(rel)))
        return cellar_fail(CELLAR_EINVAL, "%s: a path that cannot go into a model", path);
    cellar_digests d;
    /* Adopted into the store (its sha256 is then known to every later push
     * and pull, no re-hash); a file already there is found by the hash
     * cache. */
    int rc = cellar_store_add_file(&d, w->s, path, CELLAR_ADD_NO_GITSHA1);
    if (rc)
        return rc;
    /* The store makes its objects read-only: say what a checkout gets. */
    return model_add(w->m, rel, d.d[CELLAR_ALGO_SHA256], d.size, st->st_mtime,
                     st->st_mode & 0111 ? 0755u : 0644u, w->s);
}

/* src: a folder, or ORG/NAME[@REV] of a recorded snapshot. */
static int model_from_source(struct model *m, cellar_store *s, const char *src)
{
    memset(m, 0, sizeof *m);
    struct stat st;
    int rc;
    if (stat(src, &st) == 0 && S_ISDIR(st.st_mode)) {
        char *real = realpath(src, NULL);
        if (!real)
            return cellar_fail_errno(errno, "%s", src);
        struct folder_walk w = {s, m, strlen(real)};
        walk_opts wo = {.follow = true, .skip_dir = cellar_store_home(s), .fn = folder_file,
                        .ctx = &w};
        rc = walk_tree(real, &wo);
        m->name = cellar_strdup(base_name(real));
        free(real);
        if (!rc && !m->name)
            rc = CELLAR_ENOMEM;
    } else {
        char *repo = cellar_strdup(src);
        if (!repo)
            return CELLAR_ENOMEM;
        char *at = strchr(repo, '@');
        const char *rev = "main";
        if (at) {
            *at = '\0';
            rev = at + 1;
        }
        cellar_snapshot *snap = NULL;
        rc = cellar_store_find_snapshot(&snap, s, repo, rev);
        if (rc == CELLAR_ENOTFOUND)
            rc = cellar_fail(CELLAR_ENOTFOUND, "%s: neither a folder nor a snapshot the store "
                             "records (pull it first, or give a folder)", src);
        for (size_t i = 0; !rc && i < snap->n; i++)
            rc = model_add(m, snap->files[i].path, snap->files[i].sha256, snap->files[i].size, 0,
                           0644, s);
        if (!rc) {
            m->name = cellar_strdup(repo);
            m->revision = cellar_strdup(snap->commit);
            if (!m->name || !m->revision)
                rc = CELLAR_ENOMEM;
        }
        cellar_snapshot_free(snap);
        free(repo);
    }
    if (!rc && m->n == 0)
        rc = cellar_fail(CELLAR_ENOTFOUND, "%s: no files to push", src);
    if (!rc)
        qsort(m->f, m->n, sizeof *m->f, mfile_cmp);
    for (size_t i = 1; !rc && i < m->n; i++)
        if (!strcmp(m->f[i].path, m->f[i - 1].path))
            rc = cellar_fail(CELLAR_EINVAL, "%s: %s twice", src, m->f[i].path);
    return rc;
}

/* ---- config and manifest ---- */

static const char *precision_name(cellar_dtype d)
{
    switch (d) {
    case CELLAR_DTYPE_F16: return "fp16";
    case CELLAR_DTYPE_BF16: return "bf16";
    case CELLAR_DTYPE_F32: return "fp32";
    case CELLAR_DTYPE_F64: return "fp64";
    case CELLAR_DTYPE_I8: return "int8";
    case CELLAR_DTYPE_U8: return "uint8";
    case CELLAR_DTYPE_F8_E4M3:
    case CELLAR_DTYPE_F8_E5M2:
    case CELLAR_DTYPE_F8_E8M0:
    case CELLAR_DTYPE_F8_E4M3FNUZ:
    case CELLAR_DTYPE_F8_E5M2FNUZ: return "fp8";
    default: return NULL;
    }
}

/* "8b", "1.5b", "350m", "12k": ModelPack's paramSize. */
static void param_size(char *out, size_t cap, uint64_t n)
{
    static const struct {
        double div;
        const char *unit;
    } u[] = {{1e12, "t"}, {1e9, "b"}, {1e6, "m"}, {1e3, "k"}};
    for (size_t i = 0; i < 4; i++)
        if ((double)n >= u[i].div) {
            snprintf(out, cap, "%.3g%s", (double)n / u[i].div, u[i].unit);
            return;
        }
    snprintf(out, cap, "%llu", (unsigned long long)n);
}

/* What cellar can tell of the weights: format, dominant dtype, parameters. */
static void weights_info(const struct model *m, const char **format, const char **precision,
                         uint64_t *params)
{
    uint64_t by_dtype[CELLAR_DTYPE__COUNT] = {0};
    *format = NULL;
    *precision = NULL;
    *params = 0;
    for (size_t i = 0; i < m->n; i++) {
        const char *p = m->f[i].path;
        if (ends_with(p, ".safetensors")) {
            *format = "safetensors";
            cellar_st *st = NULL;
            if (m->f[i].object && cellar_st_open(&st, m->f[i].object) == 0) {
                for (size_t t = 0; t < cellar_st_count(st); t++) {
                    const cellar_st_tensor *x = cellar_st_tensor_at(st, t);
                    *params += x->nelem;
                    if ((unsigned)x->dtype < CELLAR_DTYPE__COUNT)
                        by_dtype[x->dtype] += x->end - x->begin;
                }
            }
            cellar_st_free(st);
            cellar_error_clear();
        } else if (!*format && ends_with(p, ".gguf")) {
            *format = "gguf";
        } else if (!*format && ends_with(p, ".onnx")) {
            *format = "onnx";
        } else if (!*format && (ends_with(p, ".bin") || ends_with(p, ".pt") ||
                                ends_with(p, ".pth") || ends_with(p, ".ckpt"))) {
            *format = "pytorch";
        }
    }
    uint64_t best = 0;
    for (unsigned d = 0; d < CELLAR_DTYPE__COUNT; d++)
        if (by_dtype[d] > best && precision_name((cellar_dtype)d)) {
            best = by_dtype[d];
            *precision = precision_name((cellar_dtype)d);
        }
}

static void jw_kv(cellar_jw *w, const char *k, const char *v)
{
    cellar_jw_keyz(w, k);
    cellar_jw_stringz(w, v);
}

static void sha_str(char out[72], const uint8_t sha256[32])
{
    memcpy(out, "sha256:", 7);
    cellar_hex(out + 7, sha256, 32);
}

/* The config: only properties of ModelPack's schema. */
static int write_config(cellar_buf *out, const struct model *m)
{
    const char *format, *precision;
    uint64_t params;
    weights_info(m, &format, &precision, &params);
    cellar_buf_init(out, 0);
    cellar_jw w;
    cellar_jw_init(&w, out, 0, false);
    cellar_jw_object(&w);
    cellar_jw_keyz(&w, "descriptor");
    cellar_jw_object(&w);
    jw_kv(&w, "name", m->name && *m->name ? m->name : "model");
    if (m->revision)
        jw_kv(&w, "revision", m->revision);
    cellar_jw_object_end(&w);
    cellar_jw_keyz(&w, "config");
    cellar_jw_object(&w);
    if (format)
        jw_kv(&w, "format", format);
    if (params) {
        char ps[32];
        param_size(ps, sizeof ps, params);
        jw_kv(&w, "paramSize", ps);
    }
    if (precision)
        jw_kv(&w, "precision", precision);
    cellar_jw_object_end(&w);
    cellar_jw_keyz(&w, "modelfs");
    cellar_jw_object(&w);
    jw_kv(&w, "type", "layers");
    cellar_jw_keyz(&w, "diffIds");
    cellar_jw_array(&w);
    for (size_t i = 0; i < m->n; i++) {
        char d[72];
        sha_str(d, m->f[i].sha256);
        cellar_jw_stringz(&w, d);
    }
    cellar_jw_array_end(&w);
    cellar_jw_object_end(&w);
    cellar_jw_object_end(&w);
    return cellar_jw_finish(&w);
}

static void rfc3339(char *out, size_t cap, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int write_manifest(cellar_buf *out, const struct model *m, const char config_digest[72],
                          size_t config_size)
{
    cellar_buf_init(out, 0);
    cellar_buf meta;
    cellar_buf_init(&meta, 0);
    cellar_jw w;
    cellar_jw_init(&w, out, 0, false);
    cellar_jw_object(&w);
    cellar_jw_keyz(&w, "schemaVersion");
    cellar_jw_u64(&w, 2);
    jw_kv(&w, "mediaType", CELLAR_OCI_MANIFEST_TYPE);
    jw_kv(&w, "artifactType", MT_MANIFEST_ARTIFACT);
    cellar_jw_keyz(&w, "config");
    cellar_jw_object(&w);
    jw_kv(&w, "mediaType", MT_CONFIG);
    jw_kv(&w, "digest", config_digest);
    cellar_jw_keyz(&w, "size");
    cellar_jw_u64(&w, config_size);
    cellar_jw_object_end(&w);
    cellar_jw_keyz(&w, "layers");
    cellar_jw_array(&w);
    int rc = 0;
    for (size_t i = 0; i < m->n && !rc; i++) {
        const struct mfile *f = &m->f[i];
        bool guessed;
        const char *kind = file_kind(f->path, &guessed);
        char mt[96], d[72], when[40];
        snprintf(mt, sizeof mt, MT_PREFIX "%s.v1.raw", kind);
        sha_str(d, f->sha256);
        rfc3339(when, sizeof when, f->mtime);
        /* The metadata annotation is a JSON document in a string. */
        meta.len = 0;
        cellar_jw mw;
        cellar_jw_init(&mw, &meta, 0, false);
        cellar_jw_object(&mw);
        jw_kv(&mw, "name", base_name(f->path));
        cellar_jw_keyz(&mw, "mode");
        cellar_jw_u64(&mw, f->mode);
        cellar_jw_keyz(&mw, "uid");
        cellar_jw_u64(&mw, 0);
        cellar_jw_keyz(&mw, "gid");
        cellar_jw_u64(&mw, 0);
        cellar_jw_keyz(&mw, "size");
        cellar_jw_u64(&mw, f->size);
        jw_kv(&mw, "mtime", when);
        cellar_jw_keyz(&mw, "typeflag");
        cellar_jw_u64(&mw, 0);
        cellar_jw_object_end(&mw);
        rc = cellar_jw_finish(&mw);
        cellar_jw_object(&w);
        jw_kv(&w, "mediaType", mt);
        jw_kv(&w, "digest", d);
        cellar_jw_keyz(&w, "size");
        cellar_jw_u64(&w, f->size);
        cellar_jw_keyz(&w, "annotations");
        cellar_jw_object(&w);
        jw_kv(&w, ANN_FILEPATH, f->path);
        cellar_jw_keyz(&w, ANN_METADATA);
        cellar_jw_string(&w, meta.data ? meta.data : "", meta.len);
        if (guessed)
            jw_kv(&w, ANN_UNTESTED, "true");
        cellar_jw_object_end(&w);
        cellar_jw_object_end(&w);
    }
    cellar_jw_array_end(&w);
    cellar_jw_object_end(&w);
    cellar_buf_free(&meta);
    int wrc = cellar_jw_finish(&w);
    return rc ? rc : wrc;
}

/* ---- which repository holds a blob (for mounts) ---- */

static char *seen_path(cellar_store *s)
{
    return cellar_path_join(cellar_store_home(s), SEEN_FILE);
}

/* Appends "host repo digest" lines (small appends: atomic in O_APPEND). */
static void seen_record(cellar_store *s, const char *host, const char *repo,
                        const struct model *m)
{
    char *path = seen_path(s);
    int fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    for (size_t i = 0; fd >= 0 && i < m->n; i++) {
        char d[72], *line;
        sha_str(d, m->f[i].sha256);
        line = cellar_sprintf("%s %s %s\n", host, repo, d);
        if (line)
            (void)cellar_full_write(fd, line, strlen(line));
        free(line);
    }
    if (fd >= 0)
        close(fd);
    free(path);
    cellar_error_clear();
}

/* A repository of host other than repo recorded as holding digest;
 * allocated, NULL if none. */
static char *seen_find(const char *seen, const char *host, const char *repo, const char *digest)
{
    if (!seen)
        return NULL;
    size_t hl = strlen(host);
    for (const char *l = seen; *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        if (len > hl + 73 && !strncmp(l, host, hl) && l[hl] == ' ' &&
            !strncmp(l + len - 71, digest, 71) && l[len - 72] == ' ') {
            const char *r = l + hl + 1;
            size_t rl = (size_t)(l + len - 72 - r);
            if (rl && (strlen(repo) != rl || strncmp(r, repo, rl)))
                return cellar_strndup(r, rl);
        }
        l += len + (nl ? 1 : 0);
    }
    return NULL;
}

/* ---- push ---- */

/* Non-zero: the caller's callback asked to stop (the push then fails with
 * CELLAR_EUSER, as every cellar operation does). */
static int push_event(const cellar_oci_opts *o, cellar_pull_event_kind k, const struct mfile *f,
                      uint64_t total, uint64_t done, size_t n)
{
    if (!o->progress)
        return 0;
    cellar_pull_event ev = {k, f->path, f->size, k == CELLAR_PULL_START ? 0 : f->size,
                            total, done, n, NULL};
    return o->progress(&ev, o->progress_ctx);
}

/* Puts every blob of m and its config and manifest into ref's repository,
 * tagged tag (may be NULL: by digest only). */
/* The blobs of a push, shared by its upload threads. */
struct push_job {
    const cellar_oci_ref *ref;
    const cellar_oci_opts *o;
    struct model *m;
    const char *seen;
    cellar_oci_push_result *res;
    pthread_mutex_t mu;
    size_t next;       /* under mu: the next file to take */
    uint64_t total, done;
    int rc;            /* under mu: the first failure */
    char *msg;         /* its message (errors are per thread) */
};

struct push_worker {
    struct push_job *j;
    cellar_reg *reg;   /* this thread's client */
    pthread_t tid;
};

static void push_failed(struct push_job *j, int rc)
{
    pthread_mutex_lock(&j->mu);
    if (!j->rc) {
        j->rc = rc;
        j->msg = strdup(cellar_error_last());
    }
    pthread_mutex_unlock(&j->mu);
}

/* The progress of one blob's upload, told to the caller every MiB: a
 * non-zero answer stops the upload mid-blob (a Ctrl-C does not wait for
 * a multi-GB file to finish). */
struct push_sent {
    struct push_worker *w;
    const struct mfile *f;
    uint64_t told;
};

static int push_on_sent(uint64_t upto, void *ctx)
{
    struct push_sent *ps = ctx;
    struct push_job *j = ps->w->j;
    if (upto < ps->told) /* the body rewound (a retry, a redirect) */
        ps->told = 0;
    if (upto - ps->told < (1u << 20) && upto != ps->f->size)
        return 0;
    ps->told = upto;
    pthread_mutex_lock(&j->mu);
    if (j->rc) { /* another blob failed: this upload is for nothing */
        pthread_mutex_unlock(&j->mu);
        return cellar_fail(CELLAR_EUSER, "%s: push stopped: another file failed", ps->f->path);
    }
    cellar_pull_event ev = {CELLAR_PULL_PROGRESS, ps->f->path, ps->f->size, upto, j->total,
                            j->done + upto, j->m->n, NULL};
    int stop = j->o->progress(&ev, j->o->progress_ctx);
    pthread_mutex_unlock(&j->mu);
    return stop;
}

/* One blob: HEAD, else a mount, else an upload. */
static int push_one(struct push_worker *w, struct mfile *f)
{
    struct push_job *j = w->j;
    const cellar_oci_opts *o = j->o;
    char d[72];
    sha_str(d, f->sha256);
    char *from = o->mount_from ? cellar_strdup(o->mount_from)
                               : seen_find(j->seen, j->ref->host, j->ref->repo, d);
    int fd = open(f->object, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = cellar_fail_errno(errno, "%s", f->object);
        free(from);
        return rc;
    }
    pthread_mutex_lock(&j->mu);
    int stop = push_event(o, CELLAR_PULL_START, f, j->total, j->done, j->m->n);
    pthread_mutex_unlock(&j->mu);
    if (stop) {
        close(fd);
        free(from);
        return cellar_fail(CELLAR_EUSER, "%s: push stopped by the caller", f->path);
    }
    int how;
    struct push_sent ps = {w, f, 0};
    w->reg->sent = o->progress ? push_on_sent : NULL;
    w->reg->sent_ctx = &ps;
    int rc = cellar_reg_blob_push(w->reg, j->ref->repo, d, fd, f->size, from, o->chunk_size, &how);
    if (rc == CELLAR_EAUTH && from) {
        /* No pull right on the other repository: upload instead. */
        cellar_error_clear();
        rc = cellar_reg_blob_push(w->reg, j->ref->repo, d, fd, f->size, NULL, o->chunk_size,
                                  &how);
    }
    w->reg->sent = NULL;
    close(fd);
    free(from);
    if (rc == CELLAR_EUSER)
        return cellar_fail(CELLAR_EUSER, "%s: push stopped by the caller", f->path);
    if (rc)
        return cellar_fail_prefix("%s", f->path);
    pthread_mutex_lock(&j->mu);
    j->done += f->size;
    if (how == CELLAR_REG_HAD)
        j->res->blobs_present++;
    else if (how == CELLAR_REG_MOUNTED)
        j->res->blobs_mounted++;
    else {
        j->res->blobs_uploaded++;
        j->res->bytes_uploaded += f->size;
    }
    stop = push_event(o, how == CELLAR_REG_UPLOADED ? CELLAR_PULL_FINISH : CELLAR_PULL_REUSED, f,
                      j->total, j->done, j->m->n);
    pthread_mutex_unlock(&j->mu);
    if (stop)
        return cellar_fail(CELLAR_EUSER, "%s: push stopped by the caller", f->path);
    return 0;
}

static void *push_run(void *arg)
{
    struct push_worker *w = arg;
    struct push_job *j = w->j;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t i = j->rc ? j->m->n : j->next++;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->m->n)
            break;
        int rc = push_one(w, &j->m->f[i]);
        if (rc) {
            push_failed(j, rc);
            break;
        }
    }
    return NULL;
}

/* Blobs go up on a few threads (each its own client and auth): the
 * registry writes one while it receives another. Largest first. */
#define PUSH_THREADS 4

static int push_blobs(cellar_oci_push_result *res, cellar_reg *reg, const cellar_oci_ref *ref,
                      struct model *m, const char *seen, const cellar_oci_opts *o)
{
    struct push_job j = {.ref = ref, .o = o, .m = m, .seen = seen, .res = res};
    for (size_t i = 0; i < m->n; i++)
        j.total += m->f[i].size;
    pthread_mutex_init(&j.mu, NULL);
    unsigned nt = o->jobs ? o->jobs : PUSH_THREADS;
    if (nt > 16)
        nt = 16;
    if (nt > m->n)
        nt = m->n ? (unsigned)m->n : 1;
    struct push_worker w[16];
    memset(w, 0, sizeof w);
    w[0] = (struct push_worker){&j, reg, 0};
    unsigned started = 1;
    for (unsigned t = 1; t < nt; t++) {
        struct push_worker *x = &w[started];
        x->j = &j;
        if (reg_open_for(&x->reg, ref, o)) {
            cellar_error_clear();
            continue;
        }
        if (pthread_create(&x->tid, NULL, push_run, x) != 0) {
            cellar_reg_free(x->reg);
            x->reg = NULL;
            continue;
        }
        started++;
    }
    push_run(&w[0]);
    for (unsigned t = 1; t < started; t++) {
        pthread_join(w[t].tid, NULL);
        cellar_reg_free(w[t].reg);
    }
    int rc = j.rc;
    if (rc)
        cellar_fail(rc, "%s", j.msg ? j.msg : "push failed");
    free(j.msg);
    pthread_mutex_destroy(&j.mu);
    return rc;
}

static int mfile_size_desc(const void *a, const void *b)
{
    const struct mfile *x = a, *y = b;
    return x->size < y->size ? 1 : x->size > y->size ? -1 : 0;
}

/* Puts every blob of m and its config and manifest into ref's repository,
 * tagged with each of tags. */
static int push_model(cellar_oci_push_result *res, cellar_reg *reg, cellar_store *s,
                      const cellar_oci_ref *ref, const char *const *tags, size_t ntags,
                      struct model *m, const cellar_oci_opts *o)
{
    char *seenp = seen_path(s), *seen = NULL;
    size_t seenlen;
    if (!seenp || cellar_read_file(&seen, &seenlen, seenp, SEEN_MAX))
        cellar_error_clear();
    free(seenp);
    /* Upload order: largest first; the manifest keeps the layer order. */
    struct model by_size = *m;
    by_size.f = cellar_calloc(m->n ? m->n : 1, sizeof *m->f);
    int rc = by_size.f ? 0 : CELLAR_ENOMEM;
    if (!rc) {
        memcpy(by_size.f, m->f, m->n * sizeof *m->f);
        qsort(by_size.f, by_size.n, sizeof *by_size.f, mfile_size_desc);
        rc = push_blobs(res, reg, ref, &by_size, seen, o);
    }
    free(by_size.f);
    free(seen);
    if (rc)
        return rc;
    cellar_buf config, manifest;
    cellar_buf_init(&manifest, 0);
    rc = write_config(&config, m);
    if (!rc) {
        /* The config is a blob like the others. */
        char tmpl[4096];
        snprintf(tmpl, sizeof tmpl, "%s/tmp/oci-config-XXXXXX", cellar_store_home(s));
        int fd = mkstemp(tmpl);
        if (fd < 0) {
            rc = cellar_fail_errno(errno, "%s", tmpl);
        } else {
            unlink(tmpl);
            rc = cellar_full_write(fd, config.data, config.len);
            cellar_hasher *h = NULL;
            cellar_digests dg;
            if (!rc)
                rc = cellar_hasher_new(&h, CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256), config.len);
            if (!rc) {
                cellar_hasher_update(h, config.data, config.len);
                rc = cellar_hasher_final(&dg, h);
            }
            cellar_hasher_free(h);
            if (!rc) {
                sha_str(res->config_digest, dg.d[CELLAR_ALGO_SHA256]);
                rc = cellar_reg_blob_push(reg, ref->repo, res->config_digest, fd, config.len,
                                          NULL, 0, NULL);
            }
            close(fd);
        }
    }
    if (!rc)
        rc = write_manifest(&manifest, m, res->config_digest, config.len);
    for (size_t t = 0; !rc && t < (ntags ? ntags : 1); t++) {
        rc = cellar_reg_manifest_put(reg, ref->repo, ntags ? tags[t] : DEFAULT_TAG,
                                     CELLAR_OCI_MANIFEST_TYPE,
                                     manifest.data, manifest.len, res->digest);
    }
    res->layers = m->n;
    cellar_buf_free(&config);
    cellar_buf_free(&manifest);
    if (!rc)
        seen_record(s, ref->host, ref->repo, m);
    return rc;
}

int cellar_oci_push(cellar_oci_push_result *out, cellar_store *s, const char *src,
                    const char *refstr, const cellar_oci_opts *o)
{
    cellar_oci_push_result local;
    cellar_oci_push_result *res = out ? out : &local;
    memset(res, 0, sizeof *res);
    static const cellar_oci_opts defaults = {.version = CELLAR_OCI_OPTS_VERSION};
    if (!o)
        o = &defaults;
    cellar_oci_ref ref;
    int rc = cellar_oci_ref_parse(&ref, refstr);
    if (rc)
        return rc;
    if (ref.digest) {
        cellar_oci_ref_clear(&ref);
        return cellar_fail(CELLAR_EINVAL, "%s: push to a tag, not a digest", refstr);
    }
    struct model m;
    cellar_reg *reg = NULL;
    rc = model_from_source(&m, s, src);
    if (!rc)
        rc = reg_open_for(&reg, &ref, o);
    if (!rc)
        rc = cellar_reg_ping(reg);
    if (!rc) {
        const char *tag = ref.tag ? ref.tag : DEFAULT_TAG;
        rc = push_model(res, reg, s, &ref, &tag, 1, &m, o);
    }
    cellar_reg_free(reg);
    model_free(&m);
    cellar_oci_ref_clear(&ref);
    return rc;
}

/* ---- reading a manifest ---- */

void cellar_oci_manifest_clear(struct parsed *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->l[i].path);
    free(p->l);
    memset(p, 0, sizeof *p);
}

static bool parse_digest(uint8_t out[32], const cellar_json *v)
{
    return cellar_json_is(v, CELLAR_JSON_STRING) && v->len == 71 &&
           !strncmp(v->u.str, "sha256:", 7) && cellar_unhex(out, v->u.str + 7, 32);
}

static const cellar_json *ann(const cellar_json *a, const char *cncf, const char *cnai)
{
    const cellar_json *v = cellar_json_getz(a, cncf);
    return v ? v : cellar_json_getz(a, cnai);
}

/* The layers of a ModelPack manifest (or of an OCI manifest whose layers
 * carry the filepath annotation). */
int cellar_oci_manifest_parse(struct parsed *out, const void *data, size_t len,
                              const char *label)
{
    memset(out, 0, sizeof *out);
    cellar_json_doc *doc = NULL;
    int rc = cellar_json_parse(&doc, data, len, 32, label, NULL);
    if (rc)
        return rc;
    const cellar_json *root = cellar_json_root(doc);
    const cellar_json *mt = cellar_json_getz(root, "mediaType");
    const cellar_json *layers = cellar_json_getz(root, "layers");
    const cellar_json *sv = cellar_json_getz(root, "schemaVersion");
    uint64_t svn = 0;
    if (cellar_json_str_eq(mt, CELLAR_OCI_INDEX_TYPE)) {
        rc = cellar_fail(CELLAR_EUNSUPPORTED, "%s: an image index, not a model manifest", label);
        goto done;
    }
    if (!cellar_json_u64(sv, &svn) || svn != 2 || !cellar_json_is(layers, CELLAR_JSON_ARRAY) ||
        (mt && !cellar_json_str_eq(mt, CELLAR_OCI_MANIFEST_TYPE))) {
        rc = cellar_fail(CELLAR_EFORMAT, "%s: not an OCI image manifest (schemaVersion 2, "
                         "mediaType %s, layers)", label, CELLAR_OCI_MANIFEST_TYPE);
        goto done;
    }
    out->l = cellar_calloc(layers->count ? layers->count : 1, sizeof *out->l);
    if (!out->l) {
        rc = CELLAR_ENOMEM;
        goto done;
    }
    for (uint32_t i = 0; i < layers->count && !rc; i++) {
        const cellar_json *L = &layers->u.items[i];
        const cellar_json *lmt = cellar_json_getz(L, "mediaType");
        const cellar_json *a = cellar_json_getz(L, "annotations");
        const cellar_json *fp = ann(a, ANN_FILEPATH, "org.cnai.model.filepath");
        if (!fp)
            fp = cellar_json_getz(a, "org.opencontainers.image.title");
        struct layer *ly = &out->l[out->n];
        uint64_t size;
        if (!cellar_json_is(lmt, CELLAR_JSON_STRING) || !parse_digest(ly->sha256,
            cellar_json_getz(L, "digest")) || !cellar_json_u64(cellar_json_getz(L, "size"), &size)) {
            rc = cellar_fail(CELLAR_EFORMAT, "%s: layer %u lacks mediaType, a sha256 digest or "
                             "size", label, i);
            break;
        }
        const char *t = lmt->u.str;
        bool model = !strncmp(t, MT_PREFIX, strlen(MT_PREFIX)) ||
                     !strncmp(t, MT_OLD_PREFIX, strlen(MT_OLD_PREFIX));
        if (ends_with(t, ".tar+gzip") || ends_with(t, ".tar+zstd") || ends_with(t, "+gzip") ||
            ends_with(t, "+zstd")) {
            rc = cellar_fail(CELLAR_EUNSUPPORTED, "%s: layer %u is compressed (%s): cellar "
                             "reads .raw and .tar layers", label, i, t);
            break;
        }
        if (model && ends_with(t, ".tar"))
            ly->fmt = LAYER_TAR;
        else if ((model && ends_with(t, ".raw")) || (!model && fp))
            ly->fmt = LAYER_RAW;
        else {
            rc = cellar_fail(CELLAR_EUNSUPPORTED, "%s: layer %u has type %s and no file path: "
                             "not a model file", label, i, t);
            break;
        }
        if (ly->fmt == LAYER_RAW) {
            if (!cellar_json_is(fp, CELLAR_JSON_STRING) ||
                !cellar_hub_path_safe(fp->u.str, fp->len)) {
                rc = cellar_fail(CELLAR_EFORMAT, "%s: layer %u: missing or unsafe %s", label, i,
                                 ANN_FILEPATH);
                break;
            }
        }
        ly->size = size;
        ly->path = cellar_strdup(cellar_json_is(fp, CELLAR_JSON_STRING) ? fp->u.str : "");
        if (!ly->path)
            rc = CELLAR_ENOMEM;
        else
            out->n++;
    }
done:
    cellar_json_free(doc);
    if (rc)
        cellar_oci_manifest_clear(out);
    return rc;
}

/* ---- tar layers ---- */

static uint64_t tar_num(const unsigned char *f, size_t n, bool *ok)
{
    if (f[0] & 0x80) { /* base-256 */
        uint64_t v = f[0] & 0x7f;
        for (size_t i = 1; i < n; i++) {
            if (v >> 56) {
                *ok = false;
                return 0;
            }
            v = v << 8 | f[i];
        }
        return v;
    }
    uint64_t v = 0;
    size_t i = 0;
    while (i < n && f[i] == ' ')
        i++;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v >> 60) {
            *ok = false;
            return 0;
        }
        v = v << 3 | (uint64_t)(f[i] - '0');
    }
    if (i < n && f[i] != ' ' && f[i] != '\0')
        *ok = false;
    return v;
}

/* The "path" record of a pax header block; allocated or NULL. */
static char *pax_path(const char *d, size_t n, uint64_t *size, bool *has_size)
{
    char *path = NULL;
    size_t i = 0;
    while (i < n) {
        size_t j = i, len = 0;
        while (j < n && isdigit((unsigned char)d[j]) && len < 1000000)
            len = len * 10 + (size_t)(d[j++] - '0');
        if (j >= n || d[j] != ' ' || len < 5 || len > n - i)
            break;
        const char *kv = d + j + 1, *end = d + i + len - 1; /* at the '\n' */
        const char *eq = memchr(kv, '=', (size_t)(end - kv));
        if (eq && *end == '\n') {
            if ((size_t)(eq - kv) == 4 && !memcmp(kv, "path", 4)) {
                free(path);
                path = cellar_strndup(eq + 1, (size_t)(end - eq - 1));
            } else if ((size_t)(eq - kv) == 4 && !memcmp(kv, "size", 4)) {
                char tmp[32];
                size_t l = (size_t)(end - eq - 1);
                if (l && l < sizeof tmp) {
                    memcpy(tmp, eq + 1, l);
                    tmp[l] = '\0';
                    *size = strtoull(tmp, NULL, 10);
                    *has_size = true;
                }
            }
        }
        i += len;
    }
    return path;
}

/* Unpacks the tar at path (a stored blob) file by file into the store,
 * adding each regular file to l. Bounded: every size is checked against
 * the bytes left; pax records at most 1 MiB. */
int cellar_oci_tar_unpack(cellar_store *s, const char *path, const char *label,
                          cellar_hub_listing *l, size_t *cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cellar_fail_errno(errno, "%s", path);
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return cellar_fail_errno(errno, "%s", path);
    }
    uint64_t total = (uint64_t)st.st_size, off = 0;
    char *next_path = NULL;
    uint64_t next_size = 0;
    bool has_next_size = false;
    unsigned char h[512];
    int rc = 0;
    uint8_t *buf = cellar_malloc(1u << 20);
    if (!buf) {
        close(fd);
        return CELLAR_ENOMEM;
    }
    while (!rc) {
        if (off + 512 > total) {
            rc = cellar_fail(CELLAR_EFORMAT, "%s: tar ends without its end blocks", label);
            break;
        }
        if (cellar_full_pread(fd, h, 512, off) != 512) {
            rc = cellar_fail_errno(errno ? errno : EIO, "%s", path);
            break;
        }
        off += 512;
        bool zero = true;
        for (int i = 0; i < 512 && zero; i++)
            zero = h[i] == 0;
        if (zero)
            break; /* end of archive */
        bool ok = true;
        uint64_t size = tar_num(h + 124, 12, &ok);
        unsigned sum = 0;
        for (int i = 0; i < 512; i++)
            sum += i >= 148 && i < 156 ? ' ' : h[i];
        if (!ok || tar_num(h + 148, 8, &ok) != sum || !ok) {
            rc = cellar_fail(CELLAR_EFORMAT, "%s: tar header at byte %llu is damaged", label,
                             (unsigned long long)(off - 512));
            break;
        }
        if (has_next_size)
            size = next_size;
        uint64_t padded = (size + 511) / 512 * 512;
        if (size > total - off || padded > total - off) {
            rc = cellar_fail(CELLAR_EFORMAT, "%s: a tar entry of %llu bytes overruns the "
                             "archive", label, (unsigned long long)size);
            break;
        }
        char type = (char)h[156];
        if (type == 'x' || type == 'L') {
            if (size > (1u << 20)) {
                rc = cellar_fail(CELLAR_EFORMAT, "%s: a tar extended header over 1 MiB", label);
                break;
            }
            if (cellar_full_pread(fd, buf, (size_t)size, off) != (ssize_t)size) {
                rc = cellar_fail_errno(errno ? errno : EIO, "%s", path);
                break;
            }
            free(next_path);
            if (type == 'x') {
                next_path = pax_path((const char *)buf, (size_t)size, &next_size, &has_next_size);
            } else {
                size_t n = (size_t)size;
                while (n && buf[n - 1] == '\0')
                    n--;
                next_path = cellar_strndup((const char *)buf, n);
            }
            off += padded;
            continue;
        }
        char name[256 + 2];
        if (next_path) {
            snprintf(name, sizeof name, "%s", next_path);
            if (strlen(next_path) >= sizeof name) {
                rc = cellar_fail(CELLAR_EFORMAT, "%s: a tar path over 255 bytes", label);
                break;
            }
        } else if (!memcmp(h + 257, "ustar\0", 6) && h[345]) {
            /* POSIX ustar's prefix (GNU's "ustar  " keeps times there) */
            snprintf(name, sizeof name, "%.155s/%.100s", (const char *)h + 345,
                     (const char *)h + 0);
        } else {
            snprintf(name, sizeof name, "%.100s", (const char *)h);
        }
        free(next_path);
        next_path = NULL;
        has_next_size = false;
        const char *rel = name;
        while (rel[0] == '.' && rel[1] == '/')
            rel += 2;
        size_t rl = strlen(rel);
        if (type == '0' || type == '\0' || type == '7') {
            if (!cellar_hub_path_safe(rel, rl)) {
                rc = cellar_fail(CELLAR_EFORMAT, "%s: unsafe path in tar: %s", label, rel);
                break;
            }
            cellar_store_writer *w = NULL;
            cellar_digests d;
            rc = cellar_store_writer_open(&w, s, NULL, size, NULL);
            for (uint64_t got = 0; !rc && got < size;) {
                size_t n = size - got < (1u << 20) ? (size_t)(size - got) : (1u << 20);
                if (cellar_full_pread(fd, buf, n, off + got) != (ssize_t)n)
                    rc = cellar_fail_errno(errno ? errno : EIO, "%s", path);
                else
                    rc = cellar_store_writer_write(w, buf, n);
                got += n;
            }
            if (!rc) rc = cellar_store_writer_commit(&d, w, NULL);
            cellar_store_writer_free(w);
            if (!rc)
                rc = cellar_grow(&l->files, cap, l->n + 1, sizeof *l->files, 16);
            if (!rc) {
                cellar_hub_file *f = &l->files[l->n];
                memset(f, 0, sizeof *f);
                f->path = cellar_strdup(rel);
                if (!f->path)
                    rc = CELLAR_ENOMEM;
                else {
                    f->size = size;
                    f->lfs = true;
                    memcpy(f->sha256, d.d[CELLAR_ALGO_SHA256], 32);
                    l->n++;
                }
            }
        } else if (type != '5' && type != 'g') {
            /* links, devices: not model files */
            rc = cellar_fail(CELLAR_EUNSUPPORTED, "%s: tar entry %s of type '%c' (only files "
                             "and folders)", label, rel, type);
        }
        off += padded;
    }
    free(next_path);
    free(buf);
    close(fd);
    return rc;
}

/* ---- the registry as the pull engine's source ---- */

struct oci_src {
    cellar_reg *reg; /* used by the workers' refresh only, under mu */
    const char *repo;
    pthread_mutex_t mu;
};

static char *src_blob_url(void *ctx, const cellar_hub_file *f)
{
    struct oci_src *o = ctx;
    char d[72];
    sha_str(d, f->sha256);
    return cellar_reg_blob_url(o->reg, o->repo, d);
}

static int src_open_hub(cellar_hub **out, void *ctx)
{
    struct oci_src *o = ctx;
    cellar_hub *h = cellar_calloc(1, sizeof *h);
    if (!h)
        return CELLAR_ENOMEM;
    h->endpoint = cellar_strdup(o->reg->base);
    int rc = h->endpoint ? cellar_reg_http_clone(&h->http, o->reg) : CELLAR_ENOMEM;
    if (rc) {
        cellar_hub_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

/* A worker's token expired: one new token, shared by the threads that ask
 * at about the same time (a token newer than the one that failed is just
 * copied). */
static int src_refresh(void *ctx, cellar_hub *hub)
{
    struct oci_src *o = ctx;
    pthread_mutex_lock(&o->mu);
    int rc = cellar_reg_reauthorize(o->reg);
    if (!rc)
        rc = cellar_http_set_auth(hub->http, o->reg->auth_line);
    pthread_mutex_unlock(&o->mu);
    return rc;
}

static int src_status_error(void *ctx, const cellar_http_resp *resp, const char *path)
{
    struct oci_src *o = ctx;
    return cellar_reg_status_error(o->reg, resp, NULL, o->repo, path);
}

/* Runs the engine on l from the registry. */
static int engine(cellar_store *s, cellar_reg *reg, const char *repo, const cellar_hub_listing *l,
                  const char *snap_repo, const char *revision, const char *hf_name, bool record,
                  const cellar_pull_opts *po, cellar_pull_result *res)
{
    char *scope = cellar_sprintf("repository:%s:pull", repo);
    int rc = scope ? cellar_reg_authorize(reg, reg->scope ? reg->scope : scope) : CELLAR_ENOMEM;
    free(scope);
    if (rc)
        return rc;
    struct oci_src os = {reg, repo, PTHREAD_MUTEX_INITIALIZER};
    cellar_pull_source src = {&os, src_blob_url, src_open_hub, src_status_error,
                              reg->bearer ? src_refresh : NULL};
    cellar_hub *hub = NULL;
    rc = src_open_hub(&hub, &os);
    if (!rc)
        rc = cellar_pull_listing(s, &src, hub, l, snap_repo, revision, hf_name, record, po, res);
    cellar_hub_free(hub);
    pthread_mutex_destroy(&os.mu);
    return rc;
}

static void listing_clear(cellar_hub_listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->files[i].path);
    free(l->files);
    memset(l, 0, sizeof *l);
}

/* A missing tag: the message also names the tags the repository has. */
static void tags_hint(cellar_reg *reg, const char *repo)
{
    char *msg = cellar_strdup(cellar_error_last());
    char **tags = NULL;
    size_t n = 0;
    if (msg && cellar_reg_tags(reg, repo, &tags, &n) == 0) {
        cellar_buf b;
        cellar_buf_init(&b, 4096);
        for (size_t i = 0; i < n && i < 12; i++)
            (void)cellar_buf_printf(&b, "%s%s", i ? ", " : "", tags[i]);
        if (n > 12)
            (void)cellar_buf_printf(&b, "... (%zu in all)", n);
        cellar_fail(CELLAR_ENOTFOUND, "%s; %s has %s%s", msg, repo, n ? "tags " : "no tags",
                    b.data ? b.data : "");
        cellar_buf_free(&b);
    } else if (msg) {
        cellar_fail(CELLAR_ENOTFOUND, "%s", msg);
    }
    for (size_t i = 0; i < n; i++)
        free(tags[i]);
    free(tags);
    free(msg);
}

int cellar_oci_pull(cellar_pull_result *out, cellar_store *s, const char *refstr,
                    const cellar_oci_opts *o, const cellar_pull_opts *po)
{
    cellar_pull_result local;
    cellar_pull_result *res = out ? out : &local;
    memset(res, 0, sizeof *res);
    static const cellar_oci_opts defaults = {.version = CELLAR_OCI_OPTS_VERSION};
    static const cellar_pull_opts pdefaults = CELLAR_PULL_OPTS_INIT;
    if (!o)
        o = &defaults;
    if (!po)
        po = &pdefaults;
    cellar_oci_ref ref;
    int rc = cellar_oci_ref_parse(&ref, refstr);
    if (rc)
        return rc;
    cellar_reg *reg = NULL;
    cellar_buf man;
    cellar_buf_init(&man, 0);
    struct parsed pm = {0};
    cellar_hub_listing l = {0}, tars = {0};
    size_t lcap = 0;
    char digest[72] = "", *snap_repo = NULL, *hf_name = NULL, *label = NULL;
    const char *want = ref.digest ? ref.digest : ref.tag ? ref.tag : DEFAULT_TAG;
    rc = reg_open_for(&reg, &ref, o);
    if (!rc)
        rc = cellar_reg_manifest_get(reg, ref.repo, want, &man, digest);
    if (rc == CELLAR_ENOTFOUND && !ref.digest)
        tags_hint(reg, ref.repo);
    label = cellar_sprintf("%s/%s@%s", ref.host, ref.repo, digest);
    if (!rc && !label)
        rc = CELLAR_ENOMEM;
    if (!rc)
        rc = cellar_oci_manifest_parse(&pm, man.data, man.len, label);
    /* The tar layers first: fetched as blobs, then unpacked into the store. */
    size_t ntar = 0;
    for (size_t i = 0; !rc && i < pm.n; i++)
        ntar += pm.l[i].fmt == LAYER_TAR;
    if (!rc && ntar) {
        tars.files = cellar_calloc(ntar, sizeof *tars.files);
        rc = tars.files ? 0 : CELLAR_ENOMEM;
        for (size_t i = 0; !rc && i < pm.n; i++) {
            if (pm.l[i].fmt != LAYER_TAR)
                continue;
            cellar_hub_file *f = &tars.files[tars.n];
            char hex[65];
            cellar_hex(hex, pm.l[i].sha256, 32);
            f->path = cellar_sprintf("tar-layer-%s", hex);
            if (!f->path) {
                rc = CELLAR_ENOMEM;
                break;
            }
            tars.n++;
            f->size = pm.l[i].size;
            f->lfs = true;
            memcpy(f->sha256, pm.l[i].sha256, 32);
        }
        cellar_pull_opts tpo = *po;
        tpo.to_dir = tpo.hf_cache = NULL;
        tpo.progress = NULL;
        cellar_pull_result tres;
        if (!rc)
            rc = engine(s, reg, ref.repo, &tars, NULL, NULL, NULL, false, &tpo, &tres);
        if (!rc) {
            res->bytes_downloaded += tres.bytes_downloaded;
            cellar_pull_result_free(&tres);
        }
        for (size_t i = 0; !rc && i < tars.n; i++) {
            char *obj = NULL;
            rc = cellar_store_object_path(&obj, s, tars.files[i].sha256);
            if (!rc)
                rc = cellar_oci_tar_unpack(s, obj, label, &l, &lcap);
            free(obj);
        }
    }
    for (size_t i = 0; !rc && i < pm.n; i++) {
        if (pm.l[i].fmt != LAYER_RAW)
            continue;
        rc = cellar_grow(&l.files, &lcap, l.n + 1, sizeof *l.files, 16);
        if (rc)
            break;
        cellar_hub_file *f = &l.files[l.n];
        memset(f, 0, sizeof *f);
        f->path = cellar_strdup(pm.l[i].path);
        if (!f->path) {
            rc = CELLAR_ENOMEM;
            break;
        }
        l.n++;
        f->size = pm.l[i].size;
        f->lfs = true;
        memcpy(f->sha256, pm.l[i].sha256, 32);
    }
    if (!rc)
        rc = cellar_hub_listing_check(&l, label);
    if (!rc) {
        memcpy(l.commit, digest + 7, 40);
        l.commit[40] = '\0';
        snap_repo = cellar_sprintf("oci://%s/%s", ref.host, ref.repo);
        hf_name = cellar_strdup(ref.repo);
        rc = snap_repo && hf_name ? 0 : CELLAR_ENOMEM;
    }
    if (!rc) {
        /* models--<repo with '/' as "--"> */
        cellar_buf b;
        cellar_buf_init(&b, 0);
        for (const char *c = ref.repo; !rc && *c; c++)
            rc = *c == '/' ? cellar_buf_append(&b, "--", 2) : cellar_buf_append(&b, c, 1);
        if (!rc)
            rc = cellar_buf_append(&b, "", 1);
        free(hf_name);
        hf_name = rc ? NULL : b.data;
        if (rc)
            cellar_buf_free(&b);
    }
    if (!rc) {
        const char *rev = ref.digest || !ref.tag ? (ref.digest ? l.commit : DEFAULT_TAG)
                                                 : ref.tag;
        uint64_t tar_bytes = res->bytes_downloaded;
        rc = engine(s, reg, ref.repo, &l, snap_repo, rev, hf_name, true, po, res);
        res->bytes_downloaded += tar_bytes;
    }
    if (!rc) {
        struct model m = {0};
        m.f = cellar_calloc(res->n ? res->n : 1, sizeof *m.f);
        if (m.f) {
            for (size_t i = 0; i < res->n; i++)
                memcpy(m.f[i].sha256, res->files[i].sha256, 32);
            m.n = res->n;
            seen_record(s, ref.host, ref.repo, &m);
            free(m.f);
        }
    }
    listing_clear(&l);
    listing_clear(&tars);
    cellar_oci_manifest_clear(&pm);
    cellar_buf_free(&man);
    cellar_reg_free(reg);
    cellar_oci_ref_clear(&ref);
    free(snap_repo);
    free(hf_name);
    free(label);
    if (!out)
        cellar_pull_result_free(&local);
    return rc;
}

/* ---- the team cache ---- */

struct cellar_remote {
    cellar_oci_ref ref;
    cellar_reg *reg;
    cellar_oci_opts o;
    /* The uploader: blobs offered while the pull downloads go up on its
     * own thread, client and store handle. */
    pthread_t tid;
    bool running, mu_init;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t (*queue)[32]; /* under mu */
    uint64_t *sizes;
    size_t qn, qcap, qhead;
    bool closing;           /* under mu: no more offers */
    uint64_t up_files, up_bytes; /* under mu: uploaded by the thread */
    int up_rc;              /* under mu: its first failure */
    char up_msg[512];
    cellar_store *us;
    cellar_reg *ureg;
};

static void *uploader_run(void *arg)
{
    cellar_remote *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (r->qhead == r->qn && !r->closing)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->qhead == r->qn || r->up_rc) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        uint8_t sha[32];
        memcpy(sha, r->queue[r->qhead], 32);
        uint64_t size = r->sizes[r->qhead];
        r->qhead++;
        pthread_mutex_unlock(&r->mu);
        char d[72], *obj = NULL;
        sha_str(d, sha);
        int how = CELLAR_REG_HAD, rc = cellar_store_object_path(&obj, r->us, sha);
        int fd = rc ? -1 : open(obj, O_RDONLY | O_CLOEXEC);
        if (!rc && fd < 0)
            rc = cellar_fail_errno(errno, "%s", obj);
        if (!rc)
            rc = cellar_reg_blob_push(r->ureg, r->ref.repo, d, fd, size, NULL, r->o.chunk_size,
                                      &how);
        if (fd >= 0)
            close(fd);
        free(obj);
        pthread_mutex_lock(&r->mu);
        if (rc && !r->up_rc) {
            r->up_rc = rc;
            snprintf(r->up_msg, sizeof r->up_msg, "%s", cellar_error_last());
        } else if (!rc && how == CELLAR_REG_UPLOADED) {
            r->up_files++;
            r->up_bytes += size;
        }
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

/* Starts the uploader (best effort: without it, everything goes up in
 * cellar_remote_share). */
static void uploader_start(cellar_remote *r, const char *home)
{
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->mu_init = true;
    if (cellar_store_open(&r->us, home) || reg_open_for(&r->ureg, &r->ref, &r->o) ||
        pthread_create(&r->tid, NULL, uploader_run, r) != 0) {
        cellar_error_clear();
        return;
    }
    r->running = true;
}

void cellar_remote_offer(cellar_remote *r, const uint8_t sha256[32], uint64_t size)
{
    if (!r || !r->running)
        return;
    pthread_mutex_lock(&r->mu);
    if (!r->closing && cellar_grow(&r->queue, &r->qcap, r->qn + 1, 32, 16) == 0) {
        size_t cap = r->qcap;
        uint64_t *ns = realloc(r->sizes, cap * sizeof *ns);
        if (ns) {
            r->sizes = ns;
            memcpy(r->queue[r->qn], sha256, 32);
            r->sizes[r->qn++] = size;
            pthread_cond_signal(&r->cv);
        }
    }
    pthread_mutex_unlock(&r->mu);
    cellar_error_clear();
}

/* Lets the uploader finish its queue and stops it. */
static void uploader_stop(cellar_remote *r)
{
    if (!r->running)
        return;
    pthread_mutex_lock(&r->mu);
    r->closing = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->tid, NULL);
    r->running = false;
}

int cellar_remote_open(cellar_remote **out, const char *refstr, const cellar_oci_opts *o,
                       const char *home)
{
    static const cellar_oci_opts defaults = {.version = CELLAR_OCI_OPTS_VERSION};
    *out = NULL;
    cellar_remote *r = cellar_calloc(1, sizeof *r);
    if (!r)
        return CELLAR_ENOMEM;
    r->o = defaults;
    if (o) /* a version 1 struct ends before home */
        memcpy(&r->o, o, o->version >= 2 ? sizeof *o : offsetof(cellar_oci_opts, home));
    int rc = cellar_oci_ref_parse(&r->ref, refstr);
    if (!rc)
        rc = reg_open_for(&r->reg, &r->ref, &r->o);
    if (!rc)
        rc = cellar_reg_ping(r->reg);
    if (!rc) {
        char *scope = cellar_sprintf("repository:%s:pull,push", r->ref.repo);
        rc = scope ? cellar_reg_authorize(r->reg, scope) : CELLAR_ENOMEM;
        free(scope);
    }
    if (rc) {
        cellar_remote_free(r);
        return rc;
    }
    if (home)
        uploader_start(r, home);
    *out = r;
    return 0;
}

void cellar_remote_free(cellar_remote *r)
{
    if (!r)
        return;
    uploader_stop(r);
    if (r->mu_init) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
    }
    free(r->queue);
    free(r->sizes);
    cellar_reg_free(r->ureg);
    cellar_store_free(r->us);
    cellar_reg_free(r->reg);
    cellar_oci_ref_clear(&r->ref);
    free(r);
}

static void tag_for(char *out, size_t cap, const char *repo, const char *rev);

/* The sha256 of the files kept in git (the Hub lists only their git blob
 * id), from the manifest another machine shared for repo at commit. */
static void git_files_from_manifest(cellar_remote *r, cellar_hub_listing *have,
                                    const cellar_hub_listing *want, const char *repo,
                                    const char *commit)
{
    char tag[160], digest[72];
    tag_for(tag, sizeof tag, repo, commit);
    cellar_buf man;
    struct parsed pm = {0};
    if (cellar_reg_manifest_get(r->reg, r->ref.repo, tag, &man, digest) == 0 &&
        cellar_oci_manifest_parse(&pm, man.data, man.len, tag) == 0) {
        for (size_t i = 0; i < want->n; i++) {
            const cellar_hub_file *f = &want->files[i];
            if (f->lfs)
                continue;
            for (size_t j = 0; j < pm.n; j++)
                if (pm.l[j].fmt == LAYER_RAW && pm.l[j].size == f->size &&
                    !strcmp(pm.l[j].path, f->path)) {
                    /* Its git blob id is checked once stored (the store's
                     * lookup by it); a wrong one is fetched from the Hub. */
                    cellar_hub_file *h = &have->files[have->n++];
                    *h = *f;
                    h->lfs = true;
                    memcpy(h->sha256, pm.l[j].sha256, 32);
                    break;
                }
        }
    }
    cellar_oci_manifest_clear(&pm);
    cellar_buf_free(&man);
    cellar_error_clear();
}

int cellar_remote_fetch(cellar_remote *r, cellar_store *s, const cellar_hub_listing *want,
                        const char *repo, const cellar_pull_opts *o, uint64_t *files,
                        uint64_t *bytes)
{
    *files = *bytes = 0;
    cellar_hub_listing have = {0};
    have.files = cellar_calloc(want->n ? want->n : 1, sizeof *have.files);
    if (!have.files)
        return CELLAR_ENOMEM;
    int rc = 0;
    git_files_from_manifest(r, &have, want, repo, want->commit);
    for (size_t i = 0; i < want->n && !rc; i++) {
        const cellar_hub_file *f = &want->files[i];
        if (!f->lfs)
            continue;
        char d[72];
        sha_str(d, f->sha256);
        uint64_t size = 0;
        int e = cellar_reg_blob_exists(r->reg, r->ref.repo, d, &size);
        if (e < 0) {
            rc = e;
            break;
        }
        if (e == 1 && size == f->size)
            have.files[have.n++] = *f; /* borrowed path */
    }
    if (!rc && have.n) {
        cellar_pull_opts po = CELLAR_PULL_OPTS_INIT;
        po.jobs = o->jobs;
        po.part_size = o->part_size;
        cellar_pull_result res;
        rc = engine(s, r->reg, r->ref.repo, &have, NULL, NULL, NULL, false, &po, &res);
        if (!rc) {
            *files = res.files_downloaded;
            *bytes = res.bytes_downloaded;
        }
        cellar_pull_result_free(&res);
    }
    free(have.files);
    return rc;
}

/* A tag naming repo + rev: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
static void tag_for(char *out, size_t cap, const char *repo, const char *rev)
{
    size_t n = 0;
    char both[1024];
    snprintf(both, sizeof both, "%s/%s", repo, rev);
    for (const char *c = both; *c && n + 3 < cap; c++) {
        if (*c == '/') {
            out[n++] = '-';
            out[n++] = '-';
        } else {
            out[n++] = isalnum((unsigned char)*c) || strchr("._-", *c) ? *c : '_';
        }
    }
    out[n] = '\0';
    if (!isalnum((unsigned char)out[0]))
        out[0] = '_';
    if (strlen(out) > 128)
        out[128] = '\0';
}

int cellar_remote_share(cellar_remote *r, cellar_store *s, const char *repo, const char *revision,
                        const cellar_pull_result *res, uint64_t *files, uint64_t *bytes)
{
    *files = *bytes = 0;
    uploader_stop(r);
    if (r->us) {
        *files = r->up_files;
        *bytes = r->up_bytes;
        if (r->up_rc)
            return cellar_fail(r->up_rc, "%s", r->up_msg);
    }
    struct model m = {0};
    int rc = 0;
    for (size_t i = 0; i < res->n && !rc; i++)
        rc = model_add(&m, res->files[i].path, res->files[i].sha256, res->files[i].size, 0, 0644,
                       s);
    if (!rc) {
        m.name = cellar_strdup(repo);
        m.revision = cellar_strdup(res->commit);
        if (!m.name || !m.revision)
            rc = CELLAR_ENOMEM;
    }
    if (!rc && m.n) {
        qsort(m.f, m.n, sizeof *m.f, mfile_cmp);
        char t1[160], t2[160];
        tag_for(t1, sizeof t1, repo, revision);
        tag_for(t2, sizeof t2, repo, res->commit);
        const char *tags[] = {t1, t2};
        cellar_oci_push_result pr;
        memset(&pr, 0, sizeof pr);
        rc = push_model(&pr, r->reg, s, &r->ref, tags, strcmp(t1, t2) ? 2 : 1, &m, &r->o);
        *files += pr.blobs_uploaded;
        *bytes += pr.bytes_uploaded;
    }
    model_free(&m);
    return rc;
}
