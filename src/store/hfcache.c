/* import-hf: adopts a Hugging Face cache into the store.
 *
 * The cache keeps one blobs/ folder per repo, so a file shared by two repos
 * is stored twice. Each blobs/<etag> is checked against its name (a sha256
 * for LFS files, a git blob sha1 for the others) and replaced by a hard
 * link to the stored copy; the snapshots' relative symlinks into blobs/
 * keep resolving, so diffusers and transformers load as before. Snapshots
 * and refs are recorded so the repos resolve offline through the store.
 *
 * Also the other direction: hfcache_layout() writes a pulled revision out
 * as such a cache (blobs, snapshots, refs), for cellar_pull's hf_cache. */
#include "hfcache.h"
#include "store.h"

#include "inoset.h"
#include "store_index.h"
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct etag {
    char name[65];
    uint8_t sha256[32];
};

struct repo {
    cellar_store *s;
    const char *dir;     /* models--org--name */
    char *id;            /* org/name, datasets/org/name, spaces/org/name */
    struct etag *etags;  /* blobs verified and stored */
    size_t netags;
    cellar_dedup_cb cb;
    void *ctx;
    const cellar_import_opts *o;
    cellar_progress *pr; /* blobs and bytes gone through, of all repos */
    struct timespec *tick;
    bool *stop; /* the caller's callback asked to stop */
    cellar_import_stats *stats;
    /* one snapshot being collected */
    const char *snap_root;
    char **paths;
    uint8_t (*shas)[32];
    size_t nfiles;
    bool broken;
};

static void event(struct repo *r, cellar_dedup_event_kind kind, const char *path, uint64_t size,
                  const char *message)
{
    if (kind == CELLAR_DEDUP_ERROR)
        r->stats->errors++;
    if (r->cb && r->cb(kind, path, size, message, r->ctx))
        *r->stop = true;
}

/* "models--org--name" -> "org/name"; "datasets--a--b" -> "datasets/a/b". */
static char *repo_id(const char *dir)
{
    static const struct {
        const char *prefix, *type;
    } kinds[] = {{"models--", ""}, {"datasets--", "datasets/"}, {"spaces--", "spaces/"}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncmp(dir, kinds[i].prefix, n) != 0 || !dir[n])
            continue;
        cellar_buf b;
        cellar_buf_init(&b, 0);
        if (cellar_buf_printf(&b, "%s", kinds[i].type))
            return NULL;
        for (const char *p = dir + n; *p; p++) {
            int rc = p[0] == '-' && p[1] == '-' ? (p++, cellar_buf_append(&b, "/", 1))
                                                : cellar_buf_append(&b, p, 1);
            if (rc) {
                cellar_buf_free(&b);
                return NULL;
            }
        }
        return b.data;
    }
    return NULL;
}

static bool all_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static int import_blob(const char *path, const char *name, const struct stat *st, void *vctx)
{
    struct repo *r = vctx;
    if (*r->stop)
        return cellar_stopped("import-hf");
    if (!S_ISREG(st->st_mode) || strlen(name) > 64)
        return 0;
    uint8_t want[32];
    cellar_algo algo;
    if (all_hex(name, 64))
        algo = CELLAR_ALGO_SHA256;
    else if (all_hex(name, 40))
        algo = CELLAR_ALGO_GITSHA1;
    else
        return 0; /* *.incomplete downloads and other strangers */
    cellar_unhex(want, name, cellar_algo_len(algo));
    r->stats->blobs++;
    dedup_one res;
    int rc = dedup_file(r->s, path, st, 0, algo, want, &res);
    if (rc == CELLAR_ENOMEM)
        return rc;
    if (rc) {
        event(r, rc == CELLAR_ECHANGED || rc == CELLAR_EUNSUPPORTED ? CELLAR_DEDUP_SKIPPED
                                                                    : CELLAR_DEDUP_ERROR,
              path, (uint64_t)st->st_size, cellar_error_last());
        /* Even unlinked, a verified blob is in the store by now. */
        if (rc != CELLAR_EUNSUPPORTED)
            return 0;
    } else if (res.linked) {
        r->stats->linked++;
        if (!res.already)
            event(r, CELLAR_DEDUP_LINKED, path, (uint64_t)st->st_size, NULL);
    }
    r->pr->files_done++;
    r->pr->bytes_done += (uint64_t)st->st_size;
    r->pr->path = path;
    if (r->o->progress && cellar_tick(r->tick, 100) && r->o->progress(r->pr, r->o->progress_ctx))
        *r->stop = true;
    struct etag *e = cellar_realloc(r->etags, (r->netags + 1) * sizeof *e);
    if (!e)
        return CELLAR_ENOMEM;
    r->etags = e;
    snprintf(e[r->netags].name, sizeof e[r->netags].name, "%s", name);
    memcpy(e[r->netags].sha256, res.d.d[CELLAR_ALGO_SHA256], 32);
    r->netags++;
    return 0;
}

static const struct etag *find_etag(const struct repo *r, const char *name)
{
    for (size_t i = 0; i < r->netags; i++)
        if (!strcmp(r->etags[i].name, name))
            return &r->etags[i];
    return NULL;
}

/* One file of a snapshot: a symlink into blobs/, resolved by its etag. */
static int snapshot_file(const char *path, const char *name, const struct stat *st, void *vctx)
{
    (void)name;
    struct repo *r = vctx;
    const struct etag *e = NULL;
    if (S_ISLNK(st->st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            const char *base = strrchr(target, '/');
            e = find_etag(r, base ? base + 1 : target);
        }
    }
    if (!e) {
        r->broken = true;
        return 0;
    }
    size_t rootlen = strlen(r->snap_root);
    char **p = cellar_realloc(r->paths, (r->nfiles + 1) * sizeof *p);
    if (!p)
        return CELLAR_ENOMEM;
    r->paths = p;
    uint8_t(*s)[32] = cellar_realloc(r->shas, (r->nfiles + 1) * sizeof *s);
    if (!s)
        return CELLAR_ENOMEM;
    r->shas = s;
    if (!(r->paths[r->nfiles] = cellar_strdup(path + rootlen + 1)))
        return CELLAR_ENOMEM;
    memcpy(r->shas[r->nfiles], e->sha256, 32);
    r->nfiles++;
    return 0;
}

static void clear_snapshot(struct repo *r)
{
    for (size_t i = 0; i < r->nfiles; i++)
        free(r->paths[i]);
    free(r->paths);
    free(r->shas);
    r->paths = NULL;
    r->shas = NULL;
    r->nfiles = 0;
    r->broken = false;
}

/* Records every snapshots/<commit> whose files all resolved, then the refs. */
static int record_snapshots(struct repo *r)
{
    char *snaps = cellar_path_join(r->dir, "snapshots");
    if (!snaps)
        return CELLAR_ENOMEM;
    int rc = 0;
    DIR *d = opendir(snaps);
    struct dirent *e;
    while (rc == 0 && d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *root = cellar_path_join(snaps, e->d_name);
        if (!root) {
            rc = CELLAR_ENOMEM;
            break;
        }
        r->snap_root = root;
        walk_opts wo = {.fn = snapshot_file, .ctx = r};
        rc = walk_tree(root, &wo);
        if (rc == 0 && !r->broken) {
            rc = cellar_store_record_snapshot(r->s, r->id, e->d_name, e->d_name, r->nfiles,
                                              (const char *const *)r->paths,
                                              (const uint8_t(*)[32])r->shas);
        } else if (rc == 0) {
            event(r, CELLAR_DEDUP_SKIPPED, root, 0,
                  "snapshot not recorded: some of its files are not verified blobs");
        }
        if (rc && rc != CELLAR_ENOMEM && rc != CELLAR_EUSER) {
            event(r, CELLAR_DEDUP_ERROR, root, 0, cellar_error_last());
            rc = 0;
        }
        clear_snapshot(r);
        free(root);
    }
    if (d)
        closedir(d);
    free(snaps);
    if (rc)
        return rc;

    char *refs = cellar_path_join(r->dir, "refs");
    if (!refs)
        return CELLAR_ENOMEM;
    d = opendir(refs);
    while (rc == 0 && d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *path = cellar_path_join(refs, e->d_name), *commit = NULL;
        size_t len;
        if (!path) {
            rc = CELLAR_ENOMEM;
            break;
        }
        if (cellar_read_file(&commit, &len, path, 256) == 0) {
            while (len && (commit[len - 1] == '\n' || commit[len - 1] == '\r'))
                commit[--len] = '\0';
            cellar_snapshot *snap;
            /* Only a ref whose commit has a recorded snapshot resolves. */
            if (index_snapshot_get(r->s->db, r->id, commit, &snap) == 0) {
                cellar_snapshot_free(snap);
                rc = index_ref_put(r->s->db, r->id, e->d_name, commit);
            }
        }
        cellar_error_clear();
        free(commit);
        free(path);
    }
    if (d)
        closedir(d);
    free(refs);
    return rc;
}

struct bytes_ctx {
    inoset seen;
    uint64_t total;
    uint64_t files, size; /* every blob name, and their sizes: progress totals */
};

static int add_bytes(const char *path, const char *name, const struct stat *st, void *vctx)
{
    (void)path;
    (void)name;
    struct bytes_ctx *c = vctx;
    if (!S_ISREG(st->st_mode))
        return 0;
    c->files++;
    c->size += (uint64_t)st->st_size;
    if (inoset_add(&c->seen, (uint64_t)st->st_dev, (uint64_t)st->st_ino) == 1)
        c->total += (uint64_t)st->st_blocks * 512;
    return 0;
}

/* Bytes on disk of every blob in every repo, each inode once; pr (may be
 * NULL) gets the blob count and apparent bytes as totals. */
static uint64_t blob_bytes(const char *cache, char **repos, size_t n, cellar_progress *pr)
{
    struct bytes_ctx c = {.total = 0};
    inoset_init(&c.seen);
    walk_opts wo = {.fn = add_bytes, .ctx = &c};
    for (size_t i = 0; i < n; i++) {
        char *blobs = cellar_sprintf("%s/%s/blobs", cache, repos[i]);
        struct stat st;
        if (blobs && stat(blobs, &st) == 0)
            walk_tree(blobs, &wo);
        free(blobs);
    }
    inoset_free(&c.seen);
    cellar_error_clear();
    if (pr) {
        pr->files_total = c.files;
        pr->bytes_total = c.size;
    }
    return c.total;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cellar_store_import_hf(cellar_import_stats *stats, cellar_store *s, const char *hf_cache,
                           const cellar_import_opts *opts)
{
    CELLAR_OPTS_CHECK(opts, "cellar_import_opts", CELLAR_IMPORT_OPTS_VERSION,
                      "CELLAR_IMPORT_OPTS_INIT");
    const cellar_import_opts defaults = CELLAR_IMPORT_OPTS_INIT;
    const cellar_import_opts *o = opts ? opts : &defaults;
    cellar_progress pr = {0};
    struct timespec tick = {0, 0};
    cellar_import_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    RETURN_ERROR_IF(!hf_cache || !*hf_cache, CELLAR_EINVAL,
                    "import-hf: no Hugging Face cache given (cellar_hf_cache_from_env() gives "
                    "the default)");
    char *cache = cellar_strdup(hf_cache);
    if (!cache)
        return CELLAR_ENOMEM;
    DIR *d = opendir(cache);
    if (!d) {
        int rc = cellar_fail_errno(errno, "%s: not a Hugging Face cache", cache);
        free(cache);
        return rc;
    }
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *id = repo_id(e->d_name);
        if (!id)
            continue;
        free(id);
        char **p = cellar_realloc(names, (n + 1) * sizeof *p);
        if (!p || !(p[n] = cellar_strdup(e->d_name))) {
            names = p ? p : names;
            rc = CELLAR_ENOMEM;
            break;
        }
        names = p;
        n++;
    }
    closedir(d);
    if (names)
        qsort(names, n, sizeof *names, cmp_name);
    if (rc == 0)
        stats->bytes_before = blob_bytes(cache, names, n, &pr);
    s->batch = true;
    bool stop = false;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct repo r = {.s = s,
                         .cb = o->cb,
                         .ctx = o->ctx,
                         .o = o,
                         .pr = &pr,
                         .tick = &tick,
                         .stop = &stop,
                         .stats = stats};
        char *dir = cellar_path_join(cache, names[i]);
        char *blobs = dir ? cellar_path_join(dir, "blobs") : NULL;
        r.dir = dir;
        r.id = repo_id(names[i]);
        if (!dir || !blobs || !r.id) {
            rc = CELLAR_ENOMEM;
        } else {
            stats->repos++;
            struct stat st;
            walk_opts wo = {.fn = import_blob, .ctx = &r};
            if (stat(blobs, &st) == 0)
                rc = walk_tree(blobs, &wo);
            if (rc == 0)
                rc = record_snapshots(&r);
            if (rc && rc != CELLAR_ENOMEM && rc != CELLAR_EUSER) {
                event(&r, CELLAR_DEDUP_ERROR, dir, 0, cellar_error_last());
                rc = 0;
            }
            if (rc == 0 && stop)
                rc = cellar_stopped("import-hf");
        }
        clear_snapshot(&r);
        free(r.etags);
        free(r.id);
        free(blobs);
        free(dir);
    }
    s->batch = false;
    if (rc == 0 && o->progress) {
        pr.path = NULL;
        if (o->progress(&pr, o->progress_ctx))
            rc = cellar_stopped("import-hf");
    }
    if (rc == 0)
        stats->bytes_after = blob_bytes(cache, names, n, NULL);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(cache);
    return rc;
}

/* ---- writing the layout (cellar_pull --hf-cache) ---- */

/* Makes link a symlink to target, atomically (a temp name, then rename). */
static int symlink_atomic(const char *target, const char *link)
{
    char buf[4096];
    ssize_t n = readlink(link, buf, sizeof buf - 1);
    if (n >= 0) {
        buf[n] = '\0';
        if (!strcmp(buf, target))
            return 0;
    }
    char *tmp = cellar_sprintf("%s.cellar-tmp-%ld", link, (long)getpid());
    if (!tmp)
        return CELLAR_ENOMEM;
    unlink(tmp);
    int rc = 0;
    if (symlink(target, tmp) != 0)
        rc = cellar_fail_errno(errno, "%s: cannot create a symlink", tmp);
    else if (rename(tmp, link) != 0) {
        rc = cellar_fail_errno(errno, "%s: cannot rename a symlink into place", link);
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

static int mkparent(const char *path)
{
    char *dir = cellar_strdup(path);
    if (!dir)
        return CELLAR_ENOMEM;
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        rc = cellar_mkdirs(dir, 0755);
    }
    free(dir);
    return rc;
}

/* HUB.md's cache layout: blobs/<etag> (hard links to the store's objects),
 * snapshots/<commit>/<path> -> ../../blobs/<etag>, refs/<revision>. */
int hfcache_layout(cellar_store *s, const char *root, const char *repo, const char *hf_name,
                   const char *revision, const char *commit, size_t n,
                   const char *const *paths, const uint8_t (*shas)[32],
                   const char *const *etags)
{
    const char *slash = strchr(repo, '/');
    char *repo_dir = hf_name ? cellar_sprintf("%s/models--%s", root, hf_name)
                                : cellar_sprintf("%s/models--%.*s--%s", root,
                                                 (int)(slash - repo), repo, slash + 1);
    if (!repo_dir)
        return CELLAR_ENOMEM;
    int rc = 0;
    cellar_buf target;
    cellar_buf_init(&target, 8192);
    for (size_t i = 0; i < n && !rc; i++) {
        char *blob = cellar_sprintf("%s/blobs/%s", repo_dir, etags[i]);
        char *snap = cellar_sprintf("%s/snapshots/%s/%s", repo_dir, commit, paths[i]);
        rc = blob && snap ? 0 : CELLAR_ENOMEM;
        if (!rc) rc = cellar_store_link(NULL, s, shas[i], blob, CELLAR_LINK_AUTO);
        if (!rc)
            rc = mkparent(snap);
        if (!rc) {
            /* One "../" per directory between the link and the repo dir. */
            target.len = 0;
            rc = cellar_buf_append(&target, "../../", 6);
            for (const char *c = paths[i]; !rc && (c = strchr(c, '/')); c++)
                rc = cellar_buf_append(&target, "../", 3);
            if (!rc)
                rc = cellar_buf_printf(&target, "blobs/%s", etags[i]);
        }
        if (!rc)
            rc = symlink_atomic(target.data, snap);
        free(blob);
        free(snap);
    }
    cellar_buf_free(&target);
    /* A pull by commit names no branch: HF's layout writes no ref then. */
    if (!rc && strcmp(revision, commit)) {
        char *ref = cellar_sprintf("%s/refs/%s", repo_dir, revision);
        rc = ref ? mkparent(ref) : CELLAR_ENOMEM;
        if (!rc)
            rc = cellar_write_file_atomic(ref, commit, 40, 0644);
        free(ref);
    }
    free(repo_dir);
    return rc;
}
