/* Models: references (local files, shard sets, DDUF components, Hub repos),
 * their resolution to local files, and the merged tensor map over them with
 * zero-copy and bulk reads (docs/load.md). */
#include "cellar.h"
#include "json.h"
#include "pickle.h"
#include "shard.h"
#include "structural.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* ---- references ---------------------------------------------------------- */

typedef enum { REF_PATH, REF_FILES, REF_DDUF, REF_REPO } ref_kind;

struct cellar_ref {
    ref_kind kind;
    size_t n;
    char **paths;    /* REF_PATH: 1, REF_FILES: n, REF_DDUF: the archive */
    char *component; /* REF_DDUF */
    char *repo, *revision, *pattern; /* REF_REPO (pattern normalized) */
};

void cellar_ref_free(cellar_ref *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->paths[i]);
    free(r->paths);
    free(r->component);
    free(r->repo);
    free(r->revision);
    free(r->pattern);
    free(r);
}

static int ref_new(cellar_ref **out, ref_kind kind, const char *const *paths, size_t n)
{
    *out = NULL;
    cellar_ref *r = cellar_calloc(1, sizeof *r);
    if (!r)
        return CELLAR_ENOMEM;
    r->kind = kind;
    r->paths = cellar_calloc(n ? n : 1, sizeof *r->paths);
    if (!r->paths) {
        free(r);
        return CELLAR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!paths[i] || !*paths[i]) {
            cellar_ref_free(r);
            return cellar_fail(CELLAR_EINVAL, "model reference: empty path (item %zu)", i);
        }
        r->paths[i] = cellar_strdup(paths[i]);
        r->n = i + 1;
        if (!r->paths[i]) {
            cellar_ref_free(r);
            return CELLAR_ENOMEM;
        }
    }
    *out = r;
    return 0;
}

int cellar_ref_path(cellar_ref **out, const char *path)
{
    if (!path)
        return cellar_fail(CELLAR_EINVAL, "model reference: no path");
    return ref_new(out, REF_PATH, &path, 1);
}

int cellar_ref_files(cellar_ref **out, const char *const *paths, size_t n)
{
    if (!n || !paths) {
        *out = NULL;
        return cellar_fail(CELLAR_EINVAL, "model reference: an empty list of files");
    }
    return ref_new(out, REF_FILES, paths, n);
}

int cellar_ref_dduf(cellar_ref **out, const char *dduf_path, const char *component)
{
    if (!dduf_path || !component) {
        *out = NULL;
        return cellar_fail(CELLAR_EINVAL, "DDUF reference: archive and component needed");
    }
    int rc = ref_new(out, REF_DDUF, &dduf_path, 1);
    if (rc)
        return rc;
    (*out)->component = cellar_strdup(component);
    if (!(*out)->component) {
        cellar_ref_free(*out);
        *out = NULL;
        return CELLAR_ENOMEM;
    }
    return 0;
}

/* DiffSynth's rules: empty or "./" is everything, a trailing '/' gets '*'. */
static char *normalize_pattern(const char *p)
{
    if (!p || !*p || !strcmp(p, "./"))
        return cellar_strdup("*");
    size_t n = strlen(p);
    if (p[n - 1] == '/')
        return cellar_sprintf("%s*", p);
    return cellar_strdup(p);
}

int cellar_ref_repo(cellar_ref **out, const char *repo, const char *revision, const char *pattern)
{
    *out = NULL;
    if (!repo || !*repo || repo[0] == '/' || !strchr(repo, '/') || strstr(repo, ".."))
        return cellar_fail(CELLAR_EINVAL, "'%s': not a Hub repo name (ORG/NAME)",
                           repo ? repo : "");
    int rc = ref_new(out, REF_REPO, NULL, 0);
    if (rc)
        return rc;
    cellar_ref *r = *out;
    r->repo = cellar_strdup(repo);
    r->revision = revision && *revision ? cellar_strdup(revision) : NULL;
    r->pattern = normalize_pattern(pattern);
    if (!r->repo || !r->pattern || (revision && *revision && !r->revision)) {
        cellar_ref_free(r);
        *out = NULL;
        return CELLAR_ENOMEM;
    }
    return 0;
}

/* ---- string lists handed out as one allocation ----------------------------- */

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

static int strlist_add(strlist *l, char *owned)
{
    if (!owned)
        return CELLAR_ENOMEM;
    if (cellar_grow(&l->v, &l->cap, l->n + 1, sizeof *l->v, 16)) {
        free(owned);
        return CELLAR_ENOMEM;
    }
    l->v[l->n++] = owned;
    return 0;
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* n pointers, a NULL, then the strings: freed by one cellar_free(). */
static int strlist_pack(char ***out, size_t *n, const strlist *l)
{
    size_t bytes = (l->n + 1) * sizeof(char *);
    for (size_t i = 0; i < l->n; i++)
        bytes += strlen(l->v[i]) + 1;
    char **v = cellar_malloc(bytes);
    if (!v)
        return CELLAR_ENOMEM;
    char *p = (char *)(v + l->n + 1);
    for (size_t i = 0; i < l->n; i++) {
        size_t len = strlen(l->v[i]) + 1;
        memcpy(p, l->v[i], len);
        v[i] = p;
        p += len;
    }
    v[l->n] = NULL;
    *out = v;
    *n = l->n;
    return 0;
}

/* ---- resolution ------------------------------------------------------------ */

/* A regular file that is a PyTorch checkpoint (by content; safetensors and
 * index names are not asked). */
static bool is_checkpoint(const char *path)
{
    struct stat st;
    size_t n = strlen(path);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    if ((n >= 12 && !strcmp(path + n - 12, ".safetensors")) ||
        (n >= 5 && !strcmp(path + n - 5, ".json")))
        return false;
    return cellar_pt_sniff(path) == 1;
}

/* A folder whose only weights are a checkpoint (transformers'
 * pytorch_model.bin): that file's path (owned), else NULL. */
static char *folder_checkpoint(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    cellar_component *c;
    size_t n;
    if (cellar_components(&c, &n, path) != 0) {
        cellar_error_clear(); /* the shard reader will say what is wrong */
        return NULL;
    }
    char *p = n == 1 && !*c[0].name && is_checkpoint(c[0].path) ? cellar_strdup(c[0].path) : NULL;
    cellar_components_free(c, n);
    return p;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* A sharded checkpoint's index (pytorch_model.bin.index.json): its
 * weight_map, and the distinct shard files (sorted, under the index's
 * folder; names checked as safetensors indexes' are). */
typedef struct bin_index {
    cellar_json_doc *doc;
    char *text;
    const cellar_json *map;
    strlist files;
} bin_index;

static void bin_index_free(bin_index *b)
{
    cellar_json_free(b->doc);
    free(b->text);
    strlist_free(&b->files);
}

static int bin_index_open(bin_index *b, const char *path)
{
    memset(b, 0, sizeof *b);
    size_t len;
    int rc = cellar_read_file(&b->text, &len, path, (size_t)256 << 20);
    if (!rc)
        rc = cellar_json_parse(&b->doc, b->text, len, 0, path, NULL);
    if (rc)
        return rc;
    b->map = cellar_json_getz(cellar_json_root(b->doc), "weight_map");
    if (!cellar_json_is(b->map, CELLAR_JSON_OBJECT))
        return cellar_fail(CELLAR_EFORMAT, "%s: no \"weight_map\" object", path);
    const char *slash = strrchr(path, '/');
    int dl = slash ? (int)(slash - path) : 1;
    const char *dir = slash ? path : ".";
    strlist names = {0};
    for (size_t i = 0; !rc && i < b->map->count; i++) {
        const cellar_json_member *m = &b->map->u.members[i];
        if (m->value.type != CELLAR_JSON_STRING) {
            rc = cellar_fail(CELLAR_EFORMAT, "%s: weight_map entry %zu is not a string", path, i);
            break;
        }
        /* The safetensors index's rules (no root, drive or ".."), with .bin
         * in place of .safetensors. */
        const char *why = cellar_index_path_problem(m->value.u.str, m->value.len);
        if (why && !strcmp(why, "is not a .safetensors file"))
            why = m->value.len >= 4 && !memcmp(m->value.u.str + m->value.len - 4, ".bin", 4)
                      ? NULL
                      : "is not a .bin file";
        if (why)
            rc = cellar_fail(CELLAR_EFORMAT, "%s: shard path of entry %zu %s", path, i, why);
        else
            rc = strlist_add(&names, cellar_strndup(m->value.u.str, m->value.len));
    }
    if (!rc && names.n)
        qsort(names.v, names.n, sizeof *names.v, cmp_str);
    for (size_t i = 0; !rc && i < names.n; i++)
        if (!i || strcmp(names.v[i], names.v[i - 1]))
            rc = strlist_add(&b->files, cellar_sprintf("%.*s/%s", dl, dir, names.v[i]));
    strlist_free(&names);
    if (!rc && !b->files.n)
        rc = cellar_fail(CELLAR_EFORMAT, "%s: an empty weight_map", path);
    return rc;
}

/* The index of a checkpoint folder without safetensors, else NULL. */
static char *folder_bin_index(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    const char *names[] = {"pytorch_model.bin.index.json", "diffusion_pytorch_model.bin.index.json"};
    for (size_t i = 0; i < 2; i++) {
        char *p = cellar_path_join(path, names[i]);
        char *sidx = cellar_path_join(path, "model.safetensors.index.json");
        char *sidx2 = cellar_path_join(path, "diffusion_pytorch_model.safetensors.index.json");
        bool st_too = (sidx && access(sidx, F_OK) == 0) || (sidx2 && access(sidx2, F_OK) == 0);
        free(sidx);
        free(sidx2);
        if (p && !st_too && access(p, F_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

/* The files a local path stands for (a file, a folder, an index). */
static int expand_local(strlist *l, const char *path)
{
    char *bidx = has_suffix(path, ".bin.index.json") ? cellar_strdup(path) : folder_bin_index(path);
    if (bidx) {
        bin_index b;
        int rc = bin_index_open(&b, bidx);
        for (size_t i = 0; !rc && i < b.files.n; i++)
            rc = strlist_add(l, cellar_strdup(b.files.v[i]));
        bin_index_free(&b);
        free(bidx);
        return rc;
    }
    if (is_checkpoint(path))
        return strlist_add(l, cellar_strdup(path));
    char *ck = folder_checkpoint(path);
    if (ck)
        return strlist_add(l, ck);
    cellar_shards *s;
    int rc = cellar_shards_open(&s, path);
    if (rc)
        return rc;
    for (size_t i = 0; i < cellar_shards_nfiles(s) && !rc; i++)
        rc = strlist_add(l, cellar_strdup(cellar_shards_path(s, i)));
    cellar_shards_free(s);
    return rc;
}

/* Files under root (relative paths rel) matching pattern, recursively. */
static int glob_local(strlist *l, const char *root, const char *rel, const char *pattern)
{
    char *dir = *rel ? cellar_path_join(root, rel) : cellar_strdup(root);
    if (!dir)
        return CELLAR_ENOMEM;
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        free(dir);
        return e == ENOENT ? 0 : cellar_fail_errno(e, "%s", root);
    }
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *sub = *rel ? cellar_sprintf("%s/%s", rel, de->d_name) : cellar_strdup(de->d_name);
        char *full = sub ? cellar_path_join(root, sub) : NULL;
        struct stat st;
        if (!sub || !full) {
            rc = CELLAR_ENOMEM;
        } else if (stat(full, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                rc = glob_local(l, root, sub, pattern);
            else if (S_ISREG(st.st_mode) && fnmatch(pattern, sub, 0) == 0) {
                rc = strlist_add(l, full);
                full = NULL;
            }
        }
        free(sub);
        free(full);
    }
    closedir(d);
    free(dir);
    return rc;
}

static int resolve_repo(strlist *l, const cellar_ref *r, cellar_store *s,
                        const cellar_resolve_opts *o)
{
    const char *base = o && o->base_dir && *o->base_dir ? o->base_dir : "./models";
    char *root = cellar_path_join(base, r->repo);
    if (!root)
        return CELLAR_ENOMEM;
    int rc = 0;
    if (o && o->skip_download) {
        rc = glob_local(l, root, "", r->pattern);
        if (!rc && l->n == 0)
            rc = cellar_fail(CELLAR_ENOTFOUND,
                             "%s: no file matching '%s' and downloads are skipped", root,
                             r->pattern);
    } else if (!s) {
        rc = cellar_fail(CELLAR_EINVAL, "%s: a store is needed to download", r->repo);
    } else {
        const char *include[1] = {r->pattern};
        cellar_pull_opts po = CELLAR_PULL_OPTS_INIT;
        po.endpoint = o ? o->endpoint : NULL;
        po.token = o ? o->token : NULL;
        po.revision = r->revision;
        po.include = include;
        po.n_include = 1;
        po.to_dir = root;
        po.jobs = o ? o->jobs : 0;
        po.progress = o ? o->progress : NULL;
        po.progress_ctx = o ? o->progress_ctx : NULL;
        po.offline = o && o->version >= 2 ? o->offline : 0;
        cellar_pull_result res;
        rc = cellar_pull(&res, s, r->repo, &po);
        for (size_t i = 0; !rc && i < res.n; i++)
            rc = strlist_add(l, cellar_path_join(root, res.files[i].path));
        if (!rc && l->n == 0)
            rc = cellar_fail(CELLAR_ENOTFOUND, "%s@%s: no file matches '%s'", r->repo,
                             r->revision ? r->revision : "main", r->pattern);
        cellar_pull_result_free(&res);
    }
    if (!rc)
        qsort(l->v, l->n, sizeof *l->v, cmp_str);
    free(root);
    return rc;
}

int cellar_ref_resolve(char ***files, size_t *n, const cellar_ref *r, cellar_store *s,
                       const cellar_resolve_opts *o)
{
    *files = NULL;
    *n = 0;
    if (!r)
        return cellar_fail(CELLAR_EINVAL, "resolve: no reference");
    CELLAR_OPTS_CHECK(o, "cellar_resolve_opts", CELLAR_RESOLVE_OPTS_VERSION,
                      "CELLAR_RESOLVE_OPTS_INIT");
    strlist l = {0};
    int rc = 0;
    switch (r->kind) {
    case REF_PATH:
    case REF_FILES:
        for (size_t i = 0; i < r->n && !rc; i++)
            rc = expand_local(&l, r->paths[i]);
        break;
    case REF_DDUF: {
        struct stat st;
        if (stat(r->paths[0], &st) != 0)
            rc = cellar_fail_errno(errno, "%s", r->paths[0]);
        else
            rc = strlist_add(&l, cellar_strdup(r->paths[0]));
        break;
    }
    case REF_REPO:
        rc = resolve_repo(&l, r, s, o);
        break;
    }
    if (!rc)
        rc = strlist_pack(files, n, &l);
    strlist_free(&l);
    return rc;
}

/* ---- the open model ------------------------------------------------------- */

typedef struct mfile {
    char *path;        /* label */
    cellar_st *st;     /* owned unless from a shard set; NULL for a checkpoint */
    bool own_st;
    cellar_pt *pt;     /* a PyTorch checkpoint (owned), else NULL */
    uint64_t *pt_off;  /* its tensors' offsets in the mapping (owned) */
    int fd;            /* borrowed from the mapping record */
    uint64_t base;     /* offset of the safetensors' byte 0 in fd */
    uint64_t tail;     /* offsets from here on (in fd terms) are gathered
                        * bytes in memory past the file: never pread */
    uint8_t *data;     /* the private mapping at base */
} mfile;

typedef struct mapping {
    int fd;
    void *addr;
    size_t len;
} mapping;

struct cellar_model {
    size_t nfiles;
    mfile *files;
    size_t nmaps;
    mapping *maps;
    size_t nshards;
    cellar_shards **shards;
    cellar_dduf *dduf;
    size_t n;
    cellar_model_tensor *t;
};

void cellar_model_free(cellar_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nfiles; i++) {
        if (m->files[i].own_st)
            cellar_st_free(m->files[i].st);
        cellar_pt_free(m->files[i].pt);
        free(m->files[i].pt_off);
        free(m->files[i].path);
    }
    free(m->files);
    for (size_t i = 0; i < m->nshards; i++)
        cellar_shards_free(m->shards[i]);
    free(m->shards);
    cellar_dduf_free(m->dduf);
    for (size_t i = 0; i < m->nmaps; i++) {
        if (m->maps[i].addr && m->maps[i].len)
            munmap(m->maps[i].addr, m->maps[i].len);
        if (m->maps[i].fd >= 0)
            close(m->maps[i].fd);
    }
    free(m->maps);
    free(m->t);
    free(m);
}

/* Maps path privately (read + write, copy-on-write); returns the record's
 * index. extra > 0: that many anonymous bytes follow the file, from *tail
 * (the file's length rounded up to pages) on, in the same mapping. */
static int map_private(cellar_model *m, const char *path, uint64_t extra, size_t *index,
                       uint64_t *tail)
{
    mapping *nm = cellar_realloc(m->maps, (m->nmaps + 1) * sizeof *nm);
    if (!nm)
        return CELLAR_ENOMEM;
    m->maps = nm;
    mapping *mp = &m->maps[m->nmaps];
    mp->fd = open(path, O_RDONLY | O_CLOEXEC);
    mp->addr = NULL;
    mp->len = 0;
    if (mp->fd < 0)
        return cellar_fail_errno(errno, "%s", path);
    m->nmaps++;
    struct stat st;
    if (fstat(mp->fd, &st) != 0)
        return cellar_fail_errno(errno, "%s", path);
    if (extra > 0) {
        long page = sysconf(_SC_PAGESIZE);
        uint64_t pg = page > 0 ? (uint64_t)page : 4096, al, total;
        if (__builtin_add_overflow((uint64_t)st.st_size, pg - 1, &al) ||
            __builtin_add_overflow(al & ~(pg - 1), extra, &total) || total > SIZE_MAX)
            return cellar_fail(CELLAR_ERANGE, "%s: too large to map", path);
        al &= ~(pg - 1);
        void *a = mmap(NULL, (size_t)total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (a == MAP_FAILED)
            return cellar_fail_errno(errno, "%s: mmap", path);
        mp->addr = a;
        mp->len = (size_t)total;
        if (st.st_size > 0 && mmap(a, (size_t)st.st_size, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_FIXED, mp->fd, 0) == MAP_FAILED)
            return cellar_fail_errno(errno, "%s: mmap", path);
        *tail = al;
    } else if (st.st_size > 0) {
        void *a = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, mp->fd, 0);
        if (a == MAP_FAILED)
            return cellar_fail_errno(errno, "%s: mmap", path);
        mp->addr = a;
        mp->len = (size_t)st.st_size;
    }
    *index = m->nmaps - 1;
    return 0;
}

static int add_file(cellar_model *m, const char *label, cellar_st *st, bool own, size_t map,
                    uint64_t base)
{
    mfile *nf = cellar_realloc(m->files, (m->nfiles + 1) * sizeof *nf);
    if (!nf) {
        if (own)
            cellar_st_free(st);
        return CELLAR_ENOMEM;
    }
    m->files = nf;
    mfile *f = &m->files[m->nfiles];
    memset(f, 0, sizeof *f);
    f->path = cellar_strdup(label);
    f->st = st;
    f->own_st = own;
    m->nfiles++;
    if (!f->path)
        return CELLAR_ENOMEM;
    mapping *mp = &m->maps[map];
    uint64_t fsize = cellar_st_file_size(st);
    if (base > mp->len || fsize > mp->len - base)
        return cellar_fail(CELLAR_ECHANGED, "%s: file shorter than when its header was read",
                           label);
    f->fd = mp->fd;
    f->base = base;
    f->tail = UINT64_MAX;
    f->data = (uint8_t *)mp->addr + base;
    return 0;
}

/* A PyTorch checkpoint, read without running its pickle: refused as
 * cellar_pt_convert() refuses; contiguous views point into the file's
 * mapping, other views are gathered now into the mapping's tail. */
static int open_pt(cellar_model *m, const char *path, bool allow_unknown)
{
    cellar_pt *pt;
    int rc = cellar_pt_open(&pt, path, CELLAR_PT_KEEP_GOING);
    if (rc)
        return rc;
    /* Kept going so that a dangerous global is named even in a file that
     * is also malformed; the parse error comes after. */
    if ((rc = cellar_pt_refuse(pt, allow_unknown, "load",
                               "CELLAR_MODEL_ALLOW_UNKNOWN loads the others")) == 0 &&
        cellar_pt_problem(pt))
        rc = cellar_fail(CELLAR_EFORMAT, "%s", cellar_pt_problem(pt));
    size_t n = cellar_pt_count(pt);
    uint64_t extra = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        const cellar_pt_tensor *t = cellar_pt_tensor_at(pt, i);
        if (t->dtype == CELLAR_DTYPE__COUNT)
            rc = cellar_fail(CELLAR_EUNSUPPORTED, "%s: tensor '%s' is %s: not a dtype cellar loads",
                             path, t->name, t->torch_dtype);
        else if (!t->contiguous && t->alias == i &&
                 (__builtin_add_overflow((extra + 63) & ~(uint64_t)63, t->nbytes, &extra)))
            rc = cellar_fail(CELLAR_ERANGE, "%s: views too large to gather", path);
    }
    mfile *nf = rc ? NULL : cellar_realloc(m->files, (m->nfiles + 1) * sizeof *nf);
    if (!nf) {
        cellar_pt_free(pt);
        return rc ? rc : CELLAR_ENOMEM;
    }
    m->files = nf;
    mfile *f = &m->files[m->nfiles++];
    memset(f, 0, sizeof *f);
    f->pt = pt;
    f->path = cellar_strdup(path);
    f->pt_off = cellar_calloc(n ? n : 1, sizeof *f->pt_off);
    if (!f->path || !f->pt_off)
        return CELLAR_ENOMEM;
    size_t map;
    uint64_t tail = UINT64_MAX;
    if ((rc = map_private(m, path, extra, &map, &tail)) != 0)
        return rc;
    mapping *mp = &m->maps[map];
    f->fd = mp->fd;
    f->tail = tail;
    f->data = mp->addr;
    uint64_t cursor = tail;
    for (size_t i = 0; i < n; i++) {
        const cellar_pt_tensor *t = cellar_pt_tensor_at(pt, i);
        if (t->contiguous) {
            if (t->offset > mp->len || t->nbytes > mp->len - t->offset || t->offset + t->nbytes > tail)
                return cellar_fail(CELLAR_ECHANGED, "%s: file shorter than when it was read",
                                   path);
            f->pt_off[i] = t->offset;
        } else if (t->alias == i) {
            cursor = (cursor + 63) & ~(uint64_t)63;
            f->pt_off[i] = cursor;
            if ((rc = cellar_pt_read(f->data + cursor, (size_t)t->nbytes, pt, i)) != 0)
                return rc;
            cursor += t->nbytes;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const cellar_pt_tensor *t = cellar_pt_tensor_at(pt, i);
        if (!t->contiguous && t->alias != i)
            f->pt_off[i] = f->pt_off[t->alias]; /* tied: one copy, as torch shares it */
    }
    return 0;
}

/* A sharded checkpoint: its shards in name order, and every tensor where
 * the index places it (as cellar_shards_open() checks a safetensors index). */
static int open_bin_index(cellar_model *m, const char *path, bool allow_unknown)
{
    bin_index b;
    int rc = bin_index_open(&b, path);
    size_t first = m->nfiles, listed = 0;
    for (size_t i = 0; !rc && i < b.files.n; i++) {
        if (!is_checkpoint(b.files.v[i])) {
            rc = cellar_fail(CELLAR_EFORMAT, "%s: shard %s is not a PyTorch checkpoint", path,
                             b.files.v[i]);
            break;
        }
        rc = open_pt(m, b.files.v[i], allow_unknown);
    }
    const char *slash = strrchr(path, '/');
    size_t pre = slash ? (size_t)(slash - path) + 1 : 2; /* bin_index_open's "dir/" */
    for (size_t f = first; !rc && f < m->nfiles; f++) {
        const char *fname = m->files[f].path + pre;
        cellar_pt *pt = m->files[f].pt;
        for (size_t i = 0; !rc && i < cellar_pt_count(pt); i++) {
            const cellar_pt_tensor *t = cellar_pt_tensor_at(pt, i);
            const cellar_json *v = cellar_json_get(b.map, t->name, t->name_len);
            if (!v)
                rc = cellar_fail(CELLAR_EFORMAT, "%s: tensor '%.*s' of %s is not in the index",
                                 path, (int)t->name_len, t->name, fname);
            else if (!cellar_json_str_eq(v, fname))
                rc = cellar_fail(CELLAR_EFORMAT,
                                 "%s: the index places tensor '%.*s' elsewhere, but it is in %s",
                                 path, (int)t->name_len, t->name, fname);
            listed++;
        }
    }
    if (!rc && listed != b.map->count)
        rc = cellar_fail(CELLAR_EFORMAT,
                         "%s: the index names %zu tensors, its shards hold %zu", path,
                         (size_t)b.map->count, listed);
    bin_index_free(&b);
    return rc;
}

static int open_local(cellar_model *m, const char *path, bool allow_unknown)
{
    if (is_checkpoint(path))
        return open_pt(m, path, allow_unknown);
    char *ck = folder_checkpoint(path);
    if (ck) {
        int r = open_pt(m, ck, allow_unknown);
        free(ck);
        return r;
    }
    char *bidx = has_suffix(path, ".bin.index.json") ? cellar_strdup(path) : folder_bin_index(path);
    if (bidx) {
        int r = open_bin_index(m, bidx, allow_unknown);
        free(bidx);
        return r;
    }
    cellar_shards **ns = cellar_realloc(m->shards, (m->nshards + 1) * sizeof *ns);
    if (!ns)
        return CELLAR_ENOMEM;
    m->shards = ns;
    cellar_shards *s;
    int rc = cellar_shards_open(&s, path);
    if (rc)
        return rc;
    m->shards[m->nshards++] = s;
    for (size_t i = 0; i < cellar_shards_nfiles(s) && !rc; i++) {
        size_t map;
        rc = map_private(m, cellar_shards_path(s, i), 0, &map, NULL);
        if (!rc)
            rc = add_file(m, cellar_shards_path(s, i), cellar_shards_file(s, i), false, map, 0);
    }
    return rc;
}

static int open_dduf(cellar_model *m, const char *path, const char *component)
{
    int rc = cellar_dduf_open(&m->dduf, path, 0);
    if (rc)
        return rc;
    size_t map;
    rc = map_private(m, path, 0, &map, NULL);
    size_t clen = strlen(component), found = 0;
    for (size_t i = 0; !rc && i < cellar_dduf_entry_count(m->dduf); i++) {
        const cellar_dduf_entry *e = cellar_dduf_entry_at(m->dduf, i);
        size_t nl = e->name_len;
        if (nl < 12 || strcmp(e->name + nl - 12, ".safetensors") != 0)
            continue;
        const char *slash = strrchr(e->name, '/');
        bool in = clen ? (slash && (size_t)(slash - e->name) == clen &&
                          !memcmp(e->name, component, clen))
                       : slash == NULL;
        if (!in)
            continue;
        cellar_st *st;
        rc = cellar_dduf_open_safetensors(&st, m->dduf, i);
        if (rc)
            break;
        char *label = cellar_sprintf("%s/%s", path, e->name);
        if (!label) {
            cellar_st_free(st);
            return CELLAR_ENOMEM;
        }
        rc = add_file(m, label, st, true, map, e->offset);
        free(label);
        found++;
    }
    if (!rc && !found)
        rc = cellar_fail(CELLAR_ENOTFOUND, "%s: no .safetensors entry in component '%s'", path,
                         component);
    return rc;
}

static int cmp_tensor(const void *a, const void *b)
{
    const cellar_model_tensor *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    if (x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    return x->file < y->file ? -1 : x->file > y->file; /* stable by file */
}

static int build_map(cellar_model *m, bool last_wins)
{
    size_t total = 0;
    for (size_t f = 0; f < m->nfiles; f++)
        total += m->files[f].pt ? cellar_pt_count(m->files[f].pt) : cellar_st_count(m->files[f].st);
    m->t = cellar_calloc(total ? total : 1, sizeof *m->t);
    if (!m->t)
        return CELLAR_ENOMEM;
    size_t k = 0;
    for (size_t f = 0; f < m->nfiles; f++) {
        cellar_st *st = m->files[f].st;
        cellar_pt *pt = m->files[f].pt;
        for (size_t i = 0; pt && i < cellar_pt_count(pt); i++) {
            const cellar_pt_tensor *s = cellar_pt_tensor_at(pt, i);
            m->t[k++] = (cellar_model_tensor){s->name,   s->name_len, s->dtype,
                                              s->rank,   s->shape,    s->nelem,
                                              s->nbytes, f,           m->files[f].pt_off[i]};
        }
        for (size_t i = 0; st && i < cellar_st_count(st); i++) {
            const cellar_st_tensor *s = cellar_st_tensor_at(st, i);
            m->t[k++] =
                (cellar_model_tensor){s->name,           s->name_len, s->dtype,
                                      s->rank,           s->shape,    s->nelem,
                                      s->end - s->begin, f,           m->files[f].base + s->offset};
        }
    }
    qsort(m->t, total, sizeof *m->t, cmp_tensor);
    size_t w = 0;
    for (size_t i = 0; i < total; i++) {
        if (w > 0 && m->t[w - 1].name_len == m->t[i].name_len &&
            !memcmp(m->t[w - 1].name, m->t[i].name, m->t[i].name_len)) {
            if (!last_wins)
                return cellar_fail(CELLAR_EFORMAT,
                                   "tensor '%.*s' is in both %s and %s (pass last-wins to let "
                                   "the later file win)",
                                   (int)m->t[i].name_len, m->t[i].name,
                                   m->files[m->t[w - 1].file].path, m->files[m->t[i].file].path);
            m->t[w - 1] = m->t[i]; /* sorted by file: i is the later one */
            continue;
        }
        m->t[w++] = m->t[i];
    }
    m->n = w;
    return 0;
}

int cellar_model_open(cellar_model **out, const cellar_ref *r, const cellar_model_opts *o)
{
    *out = NULL;
    if (!r)
        return cellar_fail(CELLAR_EINVAL, "model: no reference");
    CELLAR_OPTS_CHECK(o, "cellar_model_opts", CELLAR_MODEL_OPTS_VERSION, "CELLAR_MODEL_OPTS_INIT");
    if (r->kind == REF_REPO)
        return cellar_fail(CELLAR_EINVAL, "%s: a Hub reference is resolved to files first",
                           r->repo);
    cellar_model *m = cellar_calloc(1, sizeof *m);
    if (!m)
        return CELLAR_ENOMEM;
    int rc = 0;
    if (r->kind == REF_DDUF)
        rc = open_dduf(m, r->paths[0], r->component);
    else
        for (size_t i = 0; i < r->n && !rc; i++)
            rc = open_local(m, r->paths[i], o && (o->flags & CELLAR_MODEL_ALLOW_UNKNOWN));
    if (!rc)
        rc = build_map(m, o && (o->flags & CELLAR_MODEL_LAST_WINS));
    if (rc) {
        cellar_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

size_t cellar_model_count(const cellar_model *m)
{
    return m ? m->n : 0;
}

const cellar_model_tensor *cellar_model_tensor_at(const cellar_model *m, size_t i)
{
    return m && i < m->n ? &m->t[i] : NULL;
}

int cellar_model_find(size_t *index, const cellar_model *m, const char *name, size_t name_len)
{
    size_t lo = 0, hi = m->n;
    cellar_model_tensor key = {.name = name, .name_len = name_len};
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        key.file = m->t[mid].file;
        int c = cmp_tensor(&key, &m->t[mid]);
        if (c == 0) {
            *index = mid;
            return 0;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return cellar_fail(CELLAR_ENOTFOUND, "no tensor named '%.*s'", (int)name_len, name);
}

size_t cellar_model_nfiles(const cellar_model *m)
{
    return m ? m->nfiles : 0;
}

const char *cellar_model_file_path(const cellar_model *m, size_t i)
{
    return m && i < m->nfiles ? m->files[i].path : NULL;
}

cellar_st *cellar_model_file_st(const cellar_model *m, size_t i)
{
    return m && i < m->nfiles ? m->files[i].st : NULL;
}

int cellar_model_data(void **out, const cellar_model *m, size_t i)
{
    *out = NULL;
    if (!m || i >= m->n)
        return cellar_fail(CELLAR_EINVAL, "model: tensor %zu out of range", i);
    const cellar_model_tensor *t = &m->t[i];
    const mfile *f = &m->files[t->file];
    *out = f->data + (t->offset - f->base);
    return 0;
}

int cellar_model_file_map(void **base, size_t *len, const cellar_model *m, size_t i)
{
    *base = NULL;
    *len = 0;
    if (!m || i >= m->nfiles)
        return cellar_fail(CELLAR_EINVAL, "model: file %zu out of range", i);
    for (size_t k = 0; k < m->nmaps; k++)
        if (m->maps[k].fd == m->files[i].fd) {
            *base = m->maps[k].addr;
            *len = m->maps[k].len;
            return 0;
        }
    return cellar_fail(CELLAR_EINVAL, "model: file %zu has no mapping", i);
}

int cellar_model_identify(char hash[33], const cellar_model_info **info, const cellar_model *m,
                          const cellar_registry *reg)
{
    if (info)
        *info = NULL;
    /* The merged map is the union of the files with a later file's name
     * winning, as DiffSynth's hash over several files; a checkpoint counts
     * its state dict's tensors (cellar_pt_hash.state_dict). */
    cellar_tensor_desc *d = cellar_calloc(m->n ? m->n : 1, sizeof *d);
    if (!d)
        return CELLAR_ENOMEM;
    for (size_t i = 0; i < m->n; i++)
        d[i] = (cellar_tensor_desc){.name = m->t[i].name,
                                    .name_len = m->t[i].name_len,
                                    .rank = m->t[i].rank,
                                    .shape = m->t[i].shape};
    int rc = cellar_structural_hash_list(hash, d, m->n);
    free(d);
    if (!rc && reg && info && cellar_registry_find(info, reg, hash) != 0)
        cellar_error_clear(); /* not a known model: *info stays NULL */
    return rc;
}

/* ---- bulk loading across threads ------------------------------------------ */

typedef struct piece {
    size_t item;
    uint64_t from, len; /* bytes of the source tensor */
} piece;

typedef struct job {
    cellar_model *m;
    const cellar_read_item *items; /* read; NULL for populate */
    const size_t *indices;         /* populate */
    piece *pieces;
    size_t npieces;
    size_t next;          /* atomic */
    size_t *left;         /* per item: pieces not done (atomic) */
    size_t chunk;
    int rc;               /* first failure (under mu) */
    char msg[1024];       /* its message, set on a worker thread */
    int stop;             /* atomic */
    pthread_mutex_t mu;
    cellar_tensor_ready_fn on_ready;
    void *ctx;
    long page;
} job;

static void job_fail(job *j, int rc)
{
    pthread_mutex_lock(&j->mu);
    if (!j->rc) {
        j->rc = rc;
        snprintf(j->msg, sizeof j->msg, "%s", cellar_error_last());
    }
    pthread_mutex_unlock(&j->mu);
    __atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
}

static void piece_done(job *j, size_t item)
{
    if (__atomic_sub_fetch(&j->left[item], 1, __ATOMIC_ACQ_REL) != 0 || !j->on_ready)
        return;
    pthread_mutex_lock(&j->mu);
    int stop = j->rc == 0 && j->on_ready(item, j->ctx) != 0;
    pthread_mutex_unlock(&j->mu);
    if (stop)
        job_fail(j, cellar_fail(CELLAR_EUSER, "load stopped by the ready callback"));
}

static size_t tensor_of(const job *j, size_t item)
{
    if (j->items)
        return j->items[item].tensor;
    return j->indices ? j->indices[item] : item;
}

static int populate_piece(job *j, const piece *p)
{
    void *data;
    cellar_model_data(&data, j->m, tensor_of(j, p->item));
    uintptr_t a = (uintptr_t)data + p->from;
    uintptr_t start = a & ~(uintptr_t)(j->page - 1);
    size_t len = (size_t)(a + p->len - start);
    if (madvise((void *)start, len, MADV_POPULATE_READ) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return cellar_fail_errno(errno, "%s: populating the mapping",
                                 j->m->files[j->m->t[tensor_of(j, p->item)].file].path);
    /* Kernels before 5.14: touch each page. */
    volatile const uint8_t *b = (const uint8_t *)start;
    uint8_t sink = 0;
    for (size_t o = 0; o < len; o += (size_t)j->page)
        sink ^= b[o];
    (void)sink;
    return 0;
}

/* Fresh caller memory (torch.empty, malloc) faults one page at a time on
 * first write; on the VMs measured a trap per page cost more than the copy
 * and the conversion together. Asking the kernel to fault the range in one
 * call (Linux 5.14+) avoids the traps; it is only a hint, and pages holding
 * any byte of the range are the caller's, so rounding outward is safe. */
static void prefault_write(void *dst, size_t len, long page)
{
    if (!len)
        return;
    uintptr_t a = (uintptr_t)dst & ~(uintptr_t)(page - 1);
    uintptr_t e = ((uintptr_t)dst + len + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
    (void)madvise((void *)a, (size_t)(e - a), MADV_POPULATE_WRITE);
}

static int read_piece(job *j, const piece *p, uint8_t **bounce)
{
    const cellar_read_item *it = &j->items[p->item];
    const cellar_model_tensor *t = &j->m->t[it->tensor];
    const mfile *f = &j->m->files[t->file];
    unsigned sbits = cellar_dtype_bits(t->dtype);
    uint8_t *dst;
    bool same = it->dtype == t->dtype;
    if (t->offset >= f->tail) { /* a gathered view: already in memory */
        const uint8_t *src = f->data + (t->offset - f->base) + p->from;
        if (same) {
            prefault_write((uint8_t *)it->dst + p->from, (size_t)p->len, j->page);
            memcpy((uint8_t *)it->dst + p->from, src, (size_t)p->len);
            return 0;
        }
        size_t el = (size_t)(p->from / (sbits / 8)), n = (size_t)(p->len / (sbits / 8));
        unsigned dbits = cellar_dtype_bits(it->dtype);
        return cellar_convert((uint8_t *)it->dst + el * (dbits / 8), it->dtype, src, t->dtype, n);
    }
    if (same) {
        dst = (uint8_t *)it->dst + p->from;
        prefault_write(dst, (size_t)p->len, j->page);
    } else {
        if (!*bounce && !(*bounce = cellar_malloc(j->chunk)))
            return CELLAR_ENOMEM;
        dst = *bounce;
    }
    ssize_t got = cellar_full_pread(f->fd, dst, (size_t)p->len, t->offset + p->from);
    if (got < 0)
        return cellar_fail_errno(errno, "%s: reading tensor '%.*s'", f->path, (int)t->name_len,
                                 t->name);
    if ((uint64_t)got != p->len)
        return cellar_fail(CELLAR_ECHANGED, "%s: file ends inside tensor '%.*s'", f->path,
                           (int)t->name_len, t->name);
    if (!same) {
        size_t el = (size_t)(p->from / (sbits / 8)), n = (size_t)(p->len / (sbits / 8));
        unsigned dbits = cellar_dtype_bits(it->dtype);
        prefault_write((uint8_t *)it->dst + el * (dbits / 8), n * (dbits / 8), j->page);
        return cellar_convert((uint8_t *)it->dst + el * (dbits / 8), it->dtype, dst, t->dtype, n);
    }
    return 0;
}

static void *worker(void *arg)
{
    job *j = arg;
    uint8_t *bounce = NULL;
    while (!__atomic_load_n(&j->stop, __ATOMIC_RELAXED)) {
        size_t k = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (k >= j->npieces)
            break;
        const piece *p = &j->pieces[k];
        int rc = j->items ? read_piece(j, p, &bounce) : populate_piece(j, p);
        if (rc) {
            job_fail(j, rc);
            break;
        }
        piece_done(j, p->item);
    }
    free(bounce);
    return NULL;
}

static int run_job(job *j, size_t nitems, const cellar_load_opts *o)
{
    int rc = 0;
    j->page = sysconf(_SC_PAGESIZE);
    if (j->page <= 0)
        j->page = 4096;
    /* Count then cut the pieces; conversions cut on element boundaries. */
    size_t npieces = 0;
    for (size_t i = 0; i < nitems; i++) {
        const cellar_model_tensor *t = &j->m->t[tensor_of(j, i)];
        npieces += t->nbytes ? (size_t)((t->nbytes + j->chunk - 1) / j->chunk) : 1;
    }
    j->pieces = cellar_calloc(npieces ? npieces : 1, sizeof *j->pieces);
    j->left = cellar_calloc(nitems ? nitems : 1, sizeof *j->left);
    if (!j->pieces || !j->left) {
        rc = CELLAR_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nitems; i++) {
        const cellar_model_tensor *t = &j->m->t[tensor_of(j, i)];
        uint64_t from = 0;
        do {
            uint64_t len = t->nbytes - from < j->chunk ? t->nbytes - from : j->chunk;
            j->pieces[j->npieces++] = (piece){.item = i, .from = from, .len = len};
            j->left[i]++;
            from += len;
        } while (from < t->nbytes);
    }
    /* Empty tensors are ready at once; larger ones as their pieces finish. */
    unsigned nth = o && o->nthreads ? o->nthreads : cellar_ncpus();
    if (nth > 16)
        nth = 16;
    if (nth > j->npieces)
        nth = (unsigned)j->npieces;
    if (nth < 1)
        nth = 1;
    pthread_mutex_init(&j->mu, NULL);
    pthread_t tids[16];
    unsigned started = 0;
    for (unsigned i = 1; i < nth; i++) {
        if (pthread_create(&tids[started], NULL, worker, j) != 0)
            break;
        started++;
    }
    worker(j);
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_mutex_destroy(&j->mu);
    rc = j->rc;
    if (rc) /* the message was set on the thread that failed */
        cellar_fail(rc, "%s", j->msg);
done:
    free(j->pieces);
    free(j->left);
    return rc;
}

static int check_load_opts(const cellar_load_opts *o)
{
    CELLAR_OPTS_CHECK(o, "cellar_load_opts", CELLAR_LOAD_OPTS_VERSION, "CELLAR_LOAD_OPTS_INIT");
    return 0;
}

/* Asks for 2 MiB pages under [dst, dst + len) where whole ones fit: fresh
 * anonymous memory is written once, and its faults cost more than the
 * copy (a VM's nested paging most of all). Advice only: a kernel without
 * transparent huge pages, or memory that is not anonymous, refuses it and
 * nothing changes. */
static void advise_huge(void *dst, uint64_t len)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (len < 2 * huge)
        return;
    uintptr_t from = ((uintptr_t)dst + huge - 1) & ~(huge - 1);
    uintptr_t to = ((uintptr_t)dst + (uintptr_t)len) & ~(huge - 1);
    if (to > from)
        (void)madvise((void *)from, to - from, MADV_HUGEPAGE);
#else
    (void)dst;
    (void)len;
#endif
}

int cellar_model_populate(cellar_model *m, const size_t *indices, size_t n,
                          const cellar_load_opts *o, cellar_tensor_ready_fn on_ready, void *ctx)
{
    int rc = check_load_opts(o);
    if (rc)
        return rc;
    if (!indices)
        n = m->n;
    for (size_t i = 0; indices && i < n; i++)
        if (indices[i] >= m->n)
            return cellar_fail(CELLAR_EINVAL, "populate: tensor %zu out of range", indices[i]);
    job j = {.m = m, .indices = indices, .on_ready = on_ready, .ctx = ctx};
    j.chunk = o && o->chunk ? o->chunk : (size_t)64 << 20;
    return run_job(&j, n, o);
}

int cellar_model_read(cellar_model *m, const cellar_read_item *items, size_t n,
                      const cellar_load_opts *o, cellar_tensor_ready_fn on_ready, void *ctx)
{
    int rc = check_load_opts(o);
    if (rc)
        return rc;
    size_t chunk = o && o->chunk ? o->chunk : (size_t)8 << 20;
    chunk = (chunk + 7) & ~(size_t)7; /* whole elements of every dtype read by element */
    for (size_t i = 0; i < n; i++) {
        if (items[i].tensor >= m->n)
            return cellar_fail(CELLAR_EINVAL, "read: tensor %zu out of range", items[i].tensor);
        const cellar_model_tensor *t = &m->t[items[i].tensor];
        if (!items[i].dst && t->nbytes)
            return cellar_fail(CELLAR_EINVAL, "read: no destination for '%.*s'",
                               (int)t->name_len, t->name);
        if (items[i].dtype != t->dtype) {
            bool f = (t->dtype == CELLAR_DTYPE_F32 || t->dtype == CELLAR_DTYPE_F16 ||
                      t->dtype == CELLAR_DTYPE_BF16) &&
                     (items[i].dtype == CELLAR_DTYPE_F32 || items[i].dtype == CELLAR_DTYPE_F16 ||
                      items[i].dtype == CELLAR_DTYPE_BF16);
            if (!f)
                return cellar_fail(CELLAR_EINVAL, "read: '%.*s' is %s, %s is not offered",
                                   (int)t->name_len, t->name, cellar_dtype_name(t->dtype),
                                   cellar_dtype_name(items[i].dtype));
        }
    }
    bool huge = o && o->version >= 2 && (o->flags & CELLAR_LOAD_HUGE_PAGES);
    for (size_t i = 0; huge && i < n; i++) {
        const cellar_model_tensor *t = &m->t[items[i].tensor];
        uint64_t len = t->nbytes;
        if (items[i].dtype != t->dtype) /* converted: the destination's own size */
            len = t->nelem * (items[i].dtype == CELLAR_DTYPE_F32 ? 4u : 2u);
        advise_huge(items[i].dst, len);
    }
    job j = {.m = m, .items = items, .on_ready = on_ready, .ctx = ctx, .chunk = chunk};
    return run_job(&j, n, o);
}
