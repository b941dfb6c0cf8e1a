/* cellar_pull: a Hub revision into the store, downloading only what the
 * store lacks, then laid out as a folder of links or an HF cache.
 *
 * Downloads run on a few worker threads (up to one per core), each with its
 * own event loop (http.h over libcurl multi) and its own store handle, and
 * several transfers at once per loop: `jobs` transfers at a time in all.
 * Each file streams into a store writer that hashes the bytes as they
 * arrive, so there is no second pass over a finished file and memory does
 * not grow with file sizes; the threads exist because hashing every byte
 * costs more CPU than receiving it. A large file with nothing else waiting
 * for a slot comes in ranged parts: the first streams into the writer, the
 * others land in an unlinked sidecar file and are fed to the writer in order
 * as it reaches them (docs/pull.md). A writer's partial survives a killed
 * run under a resume key naming the blob; the next run asks for the rest
 * with a Range request (and starts over if the server ignores it). */
#include "hfcache.h"
#include "hub.h"
#include "store.h"
#include "store_index.h"
#include "pull_source.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_JOBS 8
#define MAX_JOBS 64
/* How often to look again when another process holds a blob's lock. */
#define WAIT_POLL_MS 200
/* Tries that may end with bytes not matching their digest. */
#define MAX_MISMATCHES 3
/* Hashing threads are worth it up to about this many. */
#define MAX_WORKERS 8
/* Ranged parts of one file: a file with over twice this left, when no
 * other file waits for a slot, is fetched in up to MAX_PARTS parts. */
#define DEFAULT_PART_SIZE (32u << 20)
#define MAX_PARTS 16

enum item_state { ITEM_QUEUED, ITEM_ACTIVE, ITEM_DONE };

struct pull;

/* A download thread: its own event loop and store handle (neither may be
 * shared between threads). */
struct worker {
    struct pull *p;
    pthread_t tid;
    cellar_store *s;
    cellar_hub *hub;
    unsigned active, jobs;
    /* Under p->mu: */
    bool running;  /* its thread runs */
    uint64_t load; /* bytes its active items have yet to receive */
    struct timespec tick; /* worker 0, the pulling thread: its last TICK */
};

struct item;

/* One transfer of an attempt: part 0 streams into the store's writer; the
 * others (ranged mode) land in the sidecar at their offsets and are fed to
 * the writer in order as it reaches them. */
struct part {
    struct item *it;
    unsigned index;
    uint64_t start, end; /* bytes [start, end) of the file */
    uint64_t got;        /* received */
    uint64_t fed;        /* of those, passed from the sidecar to the writer */
    bool body_started, ok;
};

struct item {
    struct worker *wk; /* while ACTIVE */
    cellar_pull_file *f;
    const cellar_hub_file *hf; /* online pulls only */
    enum item_state state;     /* under p->mu */
    uint64_t left;             /* under p->mu: counted in wk->load while ACTIVE */
    cellar_store_writer *w;
    unsigned attempts;
    unsigned mismatches;
    uint64_t not_before; /* ms, monotonic */
    uint64_t offset;     /* where this attempt started */
    bool waiting;        /* reported WAIT already */
    bool no_ranges;      /* the server answered a range with the whole file */
    /* The attempt in flight. */
    struct part *parts;
    unsigned nparts, running;
    int sidecar;
    bool failed; /* a part failed: fail_rc (0: an HTTP error status), the */
    int fail_rc; /* answer and the message, kept past the transfer */
    cellar_http_resp fail_resp;
    char *fail_msg;
};

struct pull {
    cellar_store *s;
    cellar_hub *hub;
    const cellar_pull_source *src; /* NULL: the Hub */
    const char *hf_name;           /* HF layout's "ORG--NAME" when not from repo */
    cellar_remote *remote;         /* the team cache, offered each blob stored */
    const cellar_pull_opts *o;
    const char *repo, *revision;
    char commit[41];
    cellar_pull_result *res;
    struct item *items;
    size_t n;
    struct worker *wks;
    unsigned nwk;
    /* Below: shared by the workers, under mu. */
    pthread_mutex_t mu;
    uint64_t total_size, total_done;
    atomic_int rc;     /* first failure: stop starting, abort transfers */
    char *rc_msg;      /* its message (errors are per thread), restored at the end */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int pull_fail(struct pull *p, int rc);

/* No event, only counters. */
#define EV_NONE ((cellar_pull_event_kind)-1)

/* Updates the shared counters and reports an event, one thread at a time.
 * done_delta: change of the bytes in place; net: bytes received. */
static void update(struct pull *p, cellar_pull_event_kind kind, struct item *it,
                   int64_t done_delta, uint64_t net, const char *message)
{
    bool stop = false;
    pthread_mutex_lock(&p->mu);
    p->total_done += (uint64_t)done_delta;
    if (kind == CELLAR_PULL_PROGRESS && it->state == ITEM_ACTIVE) {
        uint64_t d = net < it->left ? net : it->left;
        it->left -= d;
        it->wk->load -= d;
    }
    p->res->bytes_downloaded += net;
    if (kind == CELLAR_PULL_REUSED) {
        p->res->files_reused++;
        p->res->bytes_reused += it->f->size;
    } else if (kind == CELLAR_PULL_FINISH) {
        p->res->files_downloaded++;
    }
    if (kind != EV_NONE && p->o->progress) {
        cellar_pull_event ev = {kind,
                                it ? it->f->path : NULL,
                                it ? it->f->size : 0,
                                it && it->w ? cellar_store_writer_offset(it->w) : 0,
                                p->total_size,
                                p->total_done,
                                p->n,
                                message};
        stop = p->o->progress(&ev, p->o->progress_ctx) != 0;
    }
    pthread_mutex_unlock(&p->mu);
    /* Like a failure: no new transfer starts, running ones are cut off at
     * their next write with their partials kept for the next pull. */
    if (stop)
        pull_fail(p, cellar_stopped("pull"));
}

/* Records the first failure (its message kept) and returns its code. */
static int pull_fail(struct pull *p, int rc)
{
    pthread_mutex_lock(&p->mu);
    if (!atomic_load(&p->rc)) {
        p->rc_msg = strdup(cellar_error_last());
        atomic_store(&p->rc, rc);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* include/exclude as huggingface_hub's allow/ignore patterns: fnmatch
 * without FNM_PATHNAME, a trailing '/' meaning everything below. */
static bool glob_match(const char *glob, const char *path)
{
    size_t n = strlen(glob);
    if (n && glob[n - 1] == '/') {
        char pat[4096];
        if (n + 2 > sizeof pat)
            return false;
        memcpy(pat, glob, n);
        pat[n] = '*';
        pat[n + 1] = '\0';
        return fnmatch(pat, path, 0) == 0;
    }
    return fnmatch(glob, path, 0) == 0;
}

static bool path_wanted(const cellar_pull_opts *o, const char *path)
{
    bool in = o->n_include == 0;
    for (size_t i = 0; i < o->n_include && !in; i++)
        in = glob_match(o->include[i], path);
    for (size_t i = 0; i < o->n_exclude && in; i++)
        in = !glob_match(o->exclude[i], path);
    return in;
}

/* Is the blob of it in store s? 1 (sha256 filled), 0, or < 0. A blob found
 * is pinned until the pull's store handle is freed, so a gc running before
 * the layout cannot take it (docs/store.md, gc). */
static int item_lookup(cellar_store *s, struct item *it)
{
    int rc = it->hf->lfs
                 ? cellar_store_find(it->f->sha256, s, CELLAR_ALGO_SHA256, it->hf->sha256)
                 : cellar_store_find(it->f->sha256, s, CELLAR_ALGO_GITSHA1, it->hf->gitsha1);
    if (rc == CELLAR_ENOTFOUND) {
        cellar_error_clear();
        return 0;
    }
    if (rc)
        return rc;
    rc = cellar_store_pin(s, it->f->sha256);
    if (rc == CELLAR_ENOTFOUND) {
        cellar_error_clear();
        return 0; /* a gc took it between the lookup and the pin */
    }
    return rc ? rc : 1;
}

static void set_state(struct pull *p, struct item *it, enum item_state st)
{
    pthread_mutex_lock(&p->mu);
    if (it->state == ITEM_ACTIVE && st != ITEM_ACTIVE) {
        it->wk->load -= it->left;
        it->left = 0;
    }
    it->state = st;
    pthread_mutex_unlock(&p->mu);
}

static void item_reused(struct pull *p, struct item *it)
{
    it->f->downloaded = 0;
    update(p, CELLAR_PULL_REUSED, it, (int64_t)it->f->size, 0, NULL);
    set_state(p, it, ITEM_DONE);
}

/* Throws a partial away, taking back its bytes from the progress. */
static void item_discard(struct pull *p, struct item *it)
{
    if (it->w) {
        update(p, EV_NONE, it, -(int64_t)cellar_store_writer_offset(it->w), 0, NULL);
        cellar_store_writer_free(it->w);
        it->w = NULL;
    }
}

/* Schedules another try of it after a delay, or fails the pull. */
static void item_retry(struct pull *p, struct item *it, const cellar_http_resp *resp)
{
    it->attempts++;
    /* Wrong bytes twice more are not bad luck: give up sooner on those. */
    if (it->attempts >= CELLAR_HUB_ATTEMPTS || it->mismatches >= MAX_MISMATCHES) {
        cellar_fail_prefix("%s: %s: gave up after %u tries", p->repo, it->f->path, it->attempts);
        pull_fail(p, cellar_error_code() ? cellar_error_code() : CELLAR_ENET);
        set_state(p, it, ITEM_QUEUED);
        return;
    }
    update(p, CELLAR_PULL_RETRY, it, 0, 0, cellar_error_last());
    /* +1: now_ms() truncates, and Retry-After is a minimum, so the wait
     * must not come out a fraction of a millisecond short of it. */
    it->not_before = now_ms() + cellar_hub_backoff_ms(it->attempts, resp) + 1;
    set_state(p, it, ITEM_QUEUED);
}

/* The bytes are all there: verify and admit (or throw away). */
static int item_commit(struct pull *p, struct item *it)
{
    cellar_digests extra = {0}, got;
    if (!it->hf->lfs) {
        extra.have = CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1);
        extra.size = it->f->size;
        memcpy(extra.d[CELLAR_ALGO_GITSHA1], it->hf->gitsha1, 20);
    }
    int rc = cellar_store_writer_commit(&got, it->w, &extra);
    uint64_t had = cellar_store_writer_offset(it->w);
    cellar_store_writer_free(it->w);
    it->w = NULL;
    if (rc == CELLAR_EMISMATCH) {
        update(p, EV_NONE, it, -(int64_t)had, 0, NULL);
        it->mismatches++;
        return rc;
    }
    if (rc)
        return cellar_fail_prefix("%s: %s", p->repo, it->f->path);
    memcpy(it->f->sha256, got.d[CELLAR_ALGO_SHA256], 32);
    it->f->downloaded = 1;
    cellar_remote_offer(p->remote, it->f->sha256, it->f->size);
    update(p, CELLAR_PULL_FINISH, it, 0, 0, NULL);
    set_state(p, it, ITEM_DONE);
    return 0;
}

static int pwrite_all(int fd, const void *data, size_t len, uint64_t off, const char *name)
{
    const char *q = data;
    while (len) {
        ssize_t n = pwrite(fd, q, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return cellar_fail_errno(n < 0 ? errno : EIO, "%s: writing a part", name);
        q += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Sends the bytes the ranged parts have put in the sidecar to the writer,
 * in order, as far as they are contiguous with what it has. */
static int drain(struct item *it)
{
    if (it->nparts < 2 || it->no_ranges || !it->parts[0].ok)
        return 0;
    uint8_t buf[64 * 1024];
    for (;;) {
        uint64_t w = cellar_store_writer_offset(it->w);
        if (w >= it->f->size)
            return 0;
        struct part *pt = NULL;
        for (unsigned j = 1; j < it->nparts && !pt; j++)
            if (w >= it->parts[j].start && w < it->parts[j].end)
                pt = &it->parts[j];
        if (!pt)
            return 0;
        uint64_t avail = pt->start + pt->got - w;
        if (avail == 0)
            return 0;
        size_t n = avail < sizeof buf ? (size_t)avail : sizeof buf;
        ssize_t r = cellar_full_pread(it->sidecar, buf, n, w);
        if (r != (ssize_t)n)
            return cellar_fail_errno(r < 0 ? errno : EIO, "%s: reading back a part",
                                     it->f->path);
        int rc = cellar_store_writer_write(it->w, buf, n);
        if (rc)
            return rc;
        pt->fed += n;
    }
}

/* Ends the ranged state of an attempt: the sidecar and what it held that
 * the writer did not take. */
static void parts_release(struct pull *p, struct item *it)
{
    int64_t lost = 0;
    for (unsigned j = 1; j < it->nparts; j++)
        lost += (int64_t)(it->parts[j].got - it->parts[j].fed);
    if (lost)
        update(p, EV_NONE, it, -lost, 0, NULL);
    if (it->sidecar >= 0)
        close(it->sidecar);
    it->sidecar = -1;
    free(it->parts);
    it->parts = NULL;
    it->nparts = 0;
    free(it->fail_msg);
    it->fail_msg = NULL;
    it->failed = false;
    it->fail_rc = 0;
}

/* Remembers the first failure of an attempt's parts (their answers are
 * gone when the last part ends). */
static void part_failed(struct item *it, int rc, const cellar_http_resp *resp)
{
    if (it->failed)
        return;
    it->failed = true;
    it->fail_rc = rc;
    it->fail_resp = *resp;
    it->fail_resp.link_next = NULL;
    it->fail_msg = strdup(cellar_error_last());
}

static int on_write(void *ud, const cellar_http_resp *resp, const void *data, size_t len)
{
    struct part *pt = ud;
    struct item *it = pt->it;
    struct pull *p = it->wk->p;
    int failed = atomic_load(&p->rc);
    if (failed)
        return failed; /* another file failed: stop this one, keep its partial */
    if (it->failed)
        return cellar_fail(CELLAR_ENET, "%s: stopped: another part failed", it->f->path);
    bool ranged = it->nparts > 1 && !it->no_ranges;
    if (!pt->body_started) {
        pt->body_started = true;
        if (pt->index == 0 && resp->status == 200) {
            /* The server ignored the range: the whole body comes here. */
            if (it->nparts > 1)
                it->no_ranges = true;
            if (it->offset > 0) {
                update(p, EV_NONE, it, -(int64_t)cellar_store_writer_offset(it->w), 0, NULL);
                int rc = cellar_store_writer_truncate(it->w, 0);
                if (rc)
                    return rc;
            }
            ranged = false;
        } else if (resp->status != 206 || resp->range_start != (int64_t)pt->start) {
            if (pt->index > 0)
                it->no_ranges = true;
            return cellar_fail(CELLAR_ENET, "%s: asked for bytes from %llu, the server sent "
                               "them from %lld", it->f->path, (unsigned long long)pt->start,
                               (long long)resp->range_start);
        }
    }
    if (pt->index > 0 && it->no_ranges)
        return cellar_fail(CELLAR_ENET, "%s: the server ignores ranges", it->f->path);
    if (ranged && pt->got + len > pt->end - pt->start)
        return cellar_fail(CELLAR_EMISMATCH, "%s: more bytes than the range asked for",
                           it->f->path);
    int rc = pt->index == 0 ? cellar_store_writer_write(it->w, data, len)
                            : pwrite_all(it->sidecar, data, len, pt->start + pt->got, it->f->path);
    if (rc)
        return rc;
    pt->got += len;
    update(p, CELLAR_PULL_PROGRESS, it, (int64_t)len, len, NULL);
    return pt->index > 0 ? drain(it) : 0;
}

/* The last part of an attempt ended: commit, retry or fail the item. */
static void attempt_end(struct pull *p, struct item *it)
{
    struct worker *wk = it->wk;
    bool complete = cellar_store_writer_offset(it->w) == it->f->size;
    bool failed = it->failed;
    int fail_rc = it->fail_rc;
    cellar_http_resp fail_resp = it->fail_resp;
    bool no_ranges = it->no_ranges;
    if (failed && it->fail_msg)
        cellar_fail(fail_rc ? fail_rc : CELLAR_ENET, "%s", it->fail_msg);
    parts_release(p, it);
    it->no_ranges = no_ranges;
    /* Complete despite a part stopped early: part 0 got the whole file
     * from a server that ignored the ranges. The commit verifies it. */
    if (complete && (!failed || fail_rc == CELLAR_ENET)) {
        int rc = item_commit(p, it);
        if (rc == CELLAR_EMISMATCH)
            item_retry(p, it, NULL);
        else if (rc) {
            pull_fail(p, rc);
            set_state(p, it, ITEM_QUEUED);
        }
        return;
    }
    if (!failed)
        fail_rc = cellar_fail(CELLAR_ENET, "%s: the transfer ended early", it->f->path);
    if (fail_rc == CELLAR_EMISMATCH) {
        /* More bytes than listed: start over. */
        it->mismatches++;
        item_discard(p, it);
        item_retry(p, it, NULL);
        return;
    }
    if (cellar_hub_retryable(fail_rc, &fail_resp)) {
        if (fail_rc == 0)
            cellar_fail(CELLAR_ENET, "the server answered %ld", fail_resp.status);
        item_retry(p, it, fail_rc ? NULL : &fail_resp);
        return;
    }
    if (fail_rc == 0 && fail_resp.status == 401 && p->src && p->src->refresh &&
        p->src->refresh(p->src->ctx, wk->hub) == 0) {
        /* A token that expired mid-pull: this thread has a new one. */
        cellar_fail(CELLAR_EAUTH, "%s: the token expired", it->f->path);
        item_retry(p, it, NULL);
        return;
    }
    if (fail_rc == 0 && p->src)
        fail_rc = p->src->status_error(p->src->ctx, &fail_resp, it->f->path);
    else if (fail_rc == 0)
        fail_rc = cellar_hub_status_error(wk->hub, &fail_resp, p->repo, p->revision,
                                          it->f->path);
    pull_fail(p, fail_rc);
    set_state(p, it, ITEM_QUEUED);
}

static void on_done(void *ud, const cellar_http_resp *resp, int rc)
{
    struct part *pt = ud;
    struct item *it = pt->it;
    struct worker *wk = it->wk;
    struct pull *p = wk->p;
    wk->active--;
    it->running--;
    bool ok = rc == 0 && resp->status >= 200 && resp->status < 300;
    if (ok && it->hf->lfs && resp->linked_etag[0]) {
        char want[65];
        cellar_hex(want, it->hf->sha256, 32);
        if (strcmp(resp->linked_etag, want)) {
            rc = cellar_fail(CELLAR_EFORMAT,
                             "%s: %s: the listing says sha256 %s, the download header says %s",
                             p->repo, it->f->path, want, resp->linked_etag);
            ok = false;
        }
    }
    if (ok) {
        pt->ok = true;
        if (pt->index == 0) {
            int drc = drain(it);
            if (drc)
                part_failed(it, drc, resp);
        }
    } else if (rc == CELLAR_EFORMAT) {
        pull_fail(p, rc);
    } else {
        part_failed(it, rc, resp);
    }
    if (it->running > 0)
        return;
    if (atomic_load(&p->rc)) {
        /* Stopped because a file failed: the writer's partial stays. */
        parts_release(p, it);
        set_state(p, it, ITEM_QUEUED);
        return;
    }
    attempt_end(p, it);
}

/* How many ranged parts to fetch the rest of it in: several only for a
 * large file, on the free slots that the other files waiting would not
 * fill (parts cost a second write and read of their bytes, see
 * docs/pull.md). */
static unsigned parts_for(const struct worker *wk, const struct item *it, size_t others_waiting)
{
    uint64_t ps = wk->p->o->part_size ? wk->p->o->part_size : DEFAULT_PART_SIZE;
    uint64_t rest = it->f->size - it->offset;
    unsigned free_slots = wk->jobs > wk->active ? wk->jobs - wk->active : 1;
    if (it->no_ranges || others_waiting + 1 >= free_slots || wk->p->o->part_size == UINT64_MAX ||
        rest / 2 < ps)
        return 1;
    free_slots -= (unsigned)others_waiting;
    uint64_t n = rest / ps + (rest % ps != 0); /* no wrap near 2^64 */
    if (n > free_slots)
        n = free_slots;
    if (n > MAX_PARTS)
        n = MAX_PARTS;
    return n ? (unsigned)n : 1; /* zero parts would wait forever */
}

/* Opens the unnamed scratch file the parts past the first land in. */
static int sidecar_open(struct worker *wk, struct item *it)
{
    static atomic_uint seq;
    char *path = cellar_sprintf("%s/tmp/parts.%ld.%u", cellar_store_home(wk->s), (long)getpid(),
                                atomic_fetch_add(&seq, 1));
    if (!path)
        return CELLAR_ENOMEM;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = fd < 0 ? cellar_fail_errno(errno, "%s", path) : 0;
    if (fd >= 0)
        unlink(path); /* nothing to clean up after a crash */
    free(path);
    it->sidecar = fd;
    return rc;
}

/* Starts the transfers of one attempt: the rest of the file in one stream,
 * or in ranged parts. */
static int attempt_start(struct worker *wk, struct item *it, size_t others_waiting)
{
    struct pull *p = wk->p;
    unsigned n = parts_for(wk, it, others_waiting);
    it->parts = cellar_calloc(n, sizeof *it->parts);
    if (!it->parts)
        return CELLAR_ENOMEM;
    it->nparts = n;
    it->running = 0;
    it->sidecar = -1;
    int rc = n > 1 ? sidecar_open(wk, it) : 0;
    if (rc) {
        parts_release(p, it);
        return rc;
    }
    uint64_t rest = it->f->size - it->offset, each = (rest + n - 1) / n;
    for (unsigned j = 0; j < n; j++) {
        struct part *pt = &it->parts[j];
        pt->it = it;
        pt->index = j;
        pt->start = it->offset + j * each;
        pt->end = j == n - 1 ? it->f->size : pt->start + each;
    }
    char *url = p->src ? p->src->blob_url(p->src->ctx, it->hf)
                       : cellar_hub_file_url(wk->hub, p->repo, p->commit, it->f->path);
    if (!url) {
        parts_release(p, it);
        return CELLAR_ENOMEM;
    }
    for (unsigned j = 0; j < n; j++) {
        struct part *pt = &it->parts[j];
        /* A single stream asks for the rest open-ended, as any client. */
        rc = cellar_http_start(wk->hub->http, url, pt->start, n > 1 ? pt->end : 0, on_write,
                               on_done, pt);
        if (rc) {
            /* The parts started fail through part_failed and end the try. */
            if (it->running == 0) {
                free(url);
                parts_release(p, it);
                return rc;
            }
            part_failed(it, rc, &(cellar_http_resp){.status = 0});
            break;
        }
        it->running++;
        wk->active++;
    }
    free(url);
    return 0;
}

/* Starts (or resumes) the download of it, claimed by wk, or finds it needs
 * none. On return the item is ACTIVE (a transfer runs), DONE, or QUEUED
 * again (waiting for another process, or failed). */
static int item_start(struct worker *wk, struct item *it, size_t others_waiting)
{
    struct pull *p = wk->p;
    int rc = item_lookup(wk->s, it);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        /* Another process stored it meanwhile. */
        item_discard(p, it);
        item_reused(p, it);
        return 0;
    }
    if (!it->w) {
        char key[80], hex[65];
        if (it->hf->lfs) {
            cellar_hex(hex, it->hf->sha256, 32);
            snprintf(key, sizeof key, "sha256:%s", hex);
        } else {
            cellar_hex(hex, it->hf->gitsha1, 20);
            snprintf(key, sizeof key, "git:%s", hex);
        }
        rc = cellar_store_writer_open(&it->w, wk->s, it->hf->lfs ? it->hf->sha256 : NULL,
                                      it->f->size, key);
        if (rc == CELLAR_EBUSY) {
            /* Another pull downloads this blob: wait for it, download
             * nothing twice. */
            if (!it->waiting)
                update(p, CELLAR_PULL_WAIT, it, 0, 0, NULL);
            it->waiting = true;
            it->not_before = now_ms() + WAIT_POLL_MS;
            set_state(p, it, ITEM_QUEUED);
            return 0;
        }
        if (rc)
            return cellar_fail_prefix("%s: %s", p->repo, it->f->path);
        /* Holding the blob's lock now: a pull that held it before us may
         * have stored the blob between our lookup and the lock. */
        rc = item_lookup(wk->s, it);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            cellar_store_writer_free(it->w);
            it->w = NULL;
            item_reused(p, it);
            return 0;
        }
        update(p, EV_NONE, it, (int64_t)cellar_store_writer_offset(it->w), 0, NULL);
    }
    it->offset = cellar_store_writer_offset(it->w);
    update(p, CELLAR_PULL_START, it, 0, 0, NULL);
    if (it->offset == it->f->size) {
        rc = item_commit(p, it);
        if (rc == CELLAR_EMISMATCH) {
            item_retry(p, it, NULL);
            return 0;
        }
        return rc;
    }
    return attempt_start(wk, it, others_waiting);
}

/* Is wk's load above another running worker's? Under p->mu. */
static bool busier_than_others(const struct pull *p, const struct worker *wk)
{
    for (unsigned i = 0; i < p->nwk; i++)
        if (&p->wks[i] != wk && p->wks[i].running && p->wks[i].load < wk->load)
            return true;
    return false;
}

/* Claims for wk the largest item that may start now; NULL if none. Each
 * thread hashes every byte of its transfers, so a thread with transfers
 * running takes more only while it has no more bytes left to receive than
 * any other: the threads stay equally loaded, and the largest file (whose
 * sha256 is one serial chain, the least the pull can take) starts first.
 * *pending tells whether any item is still waiting, *next when the
 * earliest may start, *others_waiting how many others are queued. */
static struct item *claim(struct pull *p, struct worker *wk, bool *pending, uint64_t *next,
                          size_t *others_waiting)
{
    uint64_t now = now_ms();
    struct item *got = NULL;
    size_t queued = 0;
    *pending = false;
    *next = UINT64_MAX;
    pthread_mutex_lock(&p->mu);
    bool may = wk->active == 0 || !busier_than_others(p, wk);
    for (size_t i = 0; i < p->n; i++) {
        struct item *it = &p->items[i];
        if (it->state == ITEM_ACTIVE)
            *pending = true;
        if (it->state != ITEM_QUEUED)
            continue;
        *pending = true;
        queued++;
        if (it->not_before > now) {
            if (it->not_before < *next)
                *next = it->not_before;
            continue;
        }
        if (may && (!got || it->f->size > got->f->size))
            got = it;
    }
    *others_waiting = got ? queued - 1 : queued;
    if (got) {
        got->state = ITEM_ACTIVE;
        got->wk = wk;
        got->left = got->f->size;
        wk->load += got->left;
    }
    pthread_mutex_unlock(&p->mu);
    return got;
}

static void *worker_run(void *arg)
{
    struct worker *wk = arg;
    struct pull *p = wk->p;
    for (;;) {
        bool pending = true;
        uint64_t next = UINT64_MAX;
        while (!atomic_load(&p->rc) && wk->active < wk->jobs) {
            size_t others;
            struct item *it = claim(p, wk, &pending, &next, &others);
            if (!it)
                break;
            int rc = item_start(wk, it, others);
            if (rc) {
                pull_fail(p, rc);
                set_state(p, it, ITEM_QUEUED);
            }
        }
        if (wk->active == 0 && (atomic_load(&p->rc) || !pending))
            break;
        uint64_t now = now_ms();
        int wait = 100;
        if (next != UINT64_MAX && next > now && next - now < (uint64_t)wait)
            wait = (int)(next - now);
        if (wk->active) {
            int rc = cellar_http_step(wk->hub->http, wait);
            if (rc) {
                /* The loop itself broke: its transfers cannot finish. */
                pull_fail(p, rc);
                break;
            }
        } else {
            /* Nothing of ours runs: others' items, or retries, are pending. */
            struct timespec ts = {0, (long)wait * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (wk == p->wks && p->o->progress && cellar_tick(&wk->tick, 100))
            update(p, CELLAR_PULL_TICK, NULL, 0, 0, NULL);
    }
    pthread_mutex_lock(&p->mu);
    wk->running = false;
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int download_all(struct pull *p)
{
    unsigned jobs = p->o->jobs ? p->o->jobs : DEFAULT_JOBS;
    if (jobs > MAX_JOBS)
        jobs = MAX_JOBS;
    size_t todo = 0;
    for (size_t i = 0; i < p->n; i++)
        todo += p->items[i].state == ITEM_QUEUED;
    unsigned nw = cellar_ncpus();
    if (nw > jobs)
        nw = jobs;
    if (nw > MAX_WORKERS)
        nw = MAX_WORKERS;
    if (nw > todo)
        nw = todo ? (unsigned)todo : 1;
    struct worker *wks = cellar_calloc(nw, sizeof *wks);
    if (!wks)
        return CELLAR_ENOMEM;
    /* Worker 0 is this thread with the caller's handles; the others open
     * their own. One that cannot is simply not started. */
    unsigned started = 1;
    wks[0] = (struct worker){.p = p, .s = p->s, .hub = p->hub};
    for (unsigned i = 1; i < nw; i++) {
        struct worker *wk = &wks[started];
        *wk = (struct worker){.p = p};
        if (cellar_store_open(&wk->s, cellar_store_home(p->s)) ||
            store_pins_share(wk->s, p->s) ||
            (p->src ? p->src->open_hub(&wk->hub, p->src->ctx)
                    : cellar_hub_open(&wk->hub, p->hub->endpoint, p->o->token))) {
            cellar_store_free(wk->s);
            cellar_hub_free(wk->hub);
            continue;
        }
        started++;
    }
    for (unsigned i = 0; i < started; i++)
        wks[i].jobs = (jobs + started - 1 - i) / started;
    p->wks = wks;
    p->nwk = started;
    wks[0].running = true;
    unsigned threads = 1;
    for (; threads < started; threads++) {
        pthread_mutex_lock(&p->mu);
        wks[threads].running = true;
        pthread_mutex_unlock(&p->mu);
        if (pthread_create(&wks[threads].tid, NULL, worker_run, &wks[threads]) != 0) {
            pthread_mutex_lock(&p->mu);
            wks[threads].running = false;
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
    /* Items of a worker that could not start are claimed by the others. */
    worker_run(&wks[0]);
    for (unsigned i = 1; i < threads; i++)
        pthread_join(wks[i].tid, NULL);
    for (size_t i = 0; i < p->n; i++) {
        cellar_store_writer_free(p->items[i].w); /* partials stay for the next run */
        p->items[i].w = NULL;
    }
    for (unsigned i = 1; i < started; i++) {
        cellar_hub_free(wks[i].hub);
        cellar_store_free(wks[i].s);
    }
    free(wks);
    return atomic_load(&p->rc);
}

/* ---- layout ---- */

/* Is the file at dest (regular, stat st) the object of a stored blob, or
 * the very bytes of f (its sha256 or, for a git file not downloaded yet, the
 * listing's git blob id gitsha1)? Then replacing it loses nothing. */
static int dest_replaceable(struct pull *p, const char *dest, const struct stat *st,
                            const cellar_pull_file *f, const uint8_t *gitsha1)
{
    uint8_t sha[32];
    struct stat obj;
    int rc = index_blob_by_inode(p->s->db, (uint64_t)st->st_dev, (uint64_t)st->st_ino, sha);
    if (rc < 0)
        return rc;
    if (rc == 1 && store_object_stat(p->s, sha, &obj) == 1 && obj.st_ino == st->st_ino &&
        obj.st_dev == st->st_dev)
        return 1;
    if ((uint64_t)st->st_size != f->size)
        return 0;
    static const uint8_t unknown[32];
    cellar_algo algo = gitsha1 && !memcmp(f->sha256, unknown, 32) ? CELLAR_ALGO_GITSHA1
                                                                   : CELLAR_ALGO_SHA256;
    cellar_digests d;
    cellar_hash_opts ho = CELLAR_HASH_OPTS_INIT;
    ho.algos = CELLAR_ALGO_BIT(algo);
    ho.flags = CELLAR_HASH_NO_CACHE;
    if ((rc = cellar_hash_path(&d, dest, &ho)) != 0)
        return rc;
    return algo == CELLAR_ALGO_GITSHA1 ? !memcmp(d.d[algo], gitsha1, 20)
                                       : !memcmp(d.d[algo], f->sha256, 32);
}

/* Before anything is written into root: no folder on the way to a file is
 * a symlink or anything but a folder (a link to ../outside would have the
 * listing write outside root), and no file there would be replaced that
 * the store does not hold (the user's edit), unless force. Run before the
 * download (so a refusal costs no transfer) and again before the layout. */
static int check_dir_targets(struct pull *p, const char *root)
{
    for (size_t i = 0; i < p->res->n; i++) {
        const cellar_pull_file *f = &p->res->files[i];
        /* Online plans keep item i for file i; an offline plan has no
         * items, and every sha256 known. */
        const uint8_t *gitsha1 =
            i < p->n && p->items[i].f == f && !p->items[i].hf->lfs ? p->items[i].hf->gitsha1
                                                                   : NULL;
        char *dest = cellar_path_join(root, f->path);
        if (!dest)
            return CELLAR_ENOMEM;
        int rc = 0;
        size_t rl = strlen(root);
        struct stat st;
        for (char *c = dest + rl + 1; (c = strchr(c, '/')) != NULL; c++) {
            *c = '\0';
            if (lstat(dest, &st) == 0 && !S_ISDIR(st.st_mode))
                rc = cellar_fail(CELLAR_EINVAL,
                                 "%s: %s, not a folder, where '%s' goes; nothing was written",
                                 dest, S_ISLNK(st.st_mode) ? "a symlink" : "a file", f->path);
            *c = '/';
            if (rc)
                break;
        }
        if (!rc && !p->o->force && lstat(dest, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                rc = cellar_fail(CELLAR_EINVAL, "%s: a folder where a file goes; nothing was "
                                 "written", dest);
            else if (!S_ISREG(st.st_mode) ||
                     (rc = dest_replaceable(p, dest, &st, f, gitsha1)) == 0)
                rc = cellar_fail(CELLAR_EEXISTS,
                                 "%s: exists and is not this revision's file nor a file from "
                                 "the store (edited?); nothing was written (--force replaces it)",
                                 dest);
            else if (rc == 1)
                rc = 0;
        }
        free(dest);
        if (rc)
            return rc;
    }
    return 0;
}

static int layout_dir(struct pull *p, const char *root)
{
    int rc0 = check_dir_targets(p, root);
    if (rc0)
        return rc0;
    for (size_t i = 0; i < p->res->n; i++) {
        /* Folders opened without following links: the check above is
         * not the only guard against a folder swapped meanwhile. */
        int rc = cellar_store_link_under(NULL, p->s, p->res->files[i].sha256, root,
                                         p->res->files[i].path, CELLAR_LINK_AUTO);
        if (rc)
            return rc;
    }
    return 0;
}

static int record_and_layout(struct pull *p)
{
    size_t n = p->res->n;
    const char **paths = cellar_calloc(n ? n : 1, sizeof *paths);
    const char **etags = cellar_calloc(n ? n : 1, sizeof *etags);
    uint8_t(*shas)[32] = cellar_calloc(n ? n : 1, 32);
    int rc = CELLAR_ENOMEM;
    if (!paths || !etags || !shas)
        goto done;
    for (size_t i = 0; i < n; i++) {
        paths[i] = p->res->files[i].path;
        etags[i] = p->res->files[i].etag;
        memcpy(shas[i], p->res->files[i].sha256, 32);
    }
    rc = cellar_store_record_snapshot(p->s, p->repo, p->revision, p->commit, n, paths,
                                      (const uint8_t(*)[32])shas);
    if (!rc && p->o->to_dir)
        rc = layout_dir(p, p->o->to_dir);
    if (!rc && p->o->hf_cache)
        rc = hfcache_layout(p->s, p->o->hf_cache, p->repo, p->hf_name, p->revision, p->commit,
                            n, paths, (const uint8_t(*)[32])shas, etags);
done:
    free(paths);
    free(etags);
    free(shas);
    return rc;
}

/* ---- the two ways of finding the files ---- */

static int files_alloc(cellar_pull_result *r, size_t n)
{
    r->files = cellar_calloc(n ? n : 1, sizeof *r->files);
    return r->files ? 0 : CELLAR_ENOMEM;
}

static int plan_offline(struct pull *p)
{
    cellar_snapshot *snap = NULL;
    int rc = cellar_store_find_snapshot(&snap, p->s, p->repo, p->revision);
    if (rc == CELLAR_ENOTFOUND)
        return cellar_fail(CELLAR_ENOTFOUND, "%s: no snapshot of revision '%s' recorded in the "
                           "store (offline: pull it once online first)", p->repo, p->revision);
    if (rc)
        return rc;
    snprintf(p->commit, sizeof p->commit, "%s", snap->commit);
    rc = files_alloc(p->res, snap->n);
    for (size_t i = 0; i < snap->n && !rc; i++) {
        const cellar_snapshot_file *sf = &snap->files[i];
        if (!path_wanted(p->o, sf->path))
            continue;
        cellar_pull_file *f = &p->res->files[p->res->n];
        f->path = cellar_strdup(sf->path);
        if (!f->path) {
            rc = CELLAR_ENOMEM;
            break;
        }
        p->res->n++;
        f->size = sf->size;
        memcpy(f->sha256, sf->sha256, 32);
        if ((rc = cellar_store_pin(p->s, f->sha256)) != 0)
            break;
        /* The git blob id of a file kept in git is not recorded: name its
         * cache blob by sha256 (loaders follow the symlinks, not the names). */
        cellar_hex(f->etag, sf->sha256, 32);
        p->res->files_reused++;
        p->res->bytes_reused += f->size;
    }
    cellar_snapshot_free(snap);
    return rc;
}

static int plan_online(struct pull *p, cellar_hub_listing *l)
{
    memcpy(p->commit, l->commit, sizeof p->commit);
    int rc = files_alloc(p->res, l->n);
    if (rc)
        return rc;
    p->items = cellar_calloc(l->n ? l->n : 1, sizeof *p->items);
    if (!p->items)
        return CELLAR_ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        const cellar_hub_file *hf = &l->files[i];
        if (!path_wanted(p->o, hf->path))
            continue;
        cellar_pull_file *f = &p->res->files[p->res->n++];
        struct item *it = &p->items[p->n++];
        it->f = f;
        it->hf = hf;
        f->path = cellar_strdup(hf->path);
        if (!f->path)
            return CELLAR_ENOMEM;
        f->size = hf->size;
        if (hf->lfs)
            cellar_hex(f->etag, hf->sha256, 32);
        else
            cellar_hex(f->etag, hf->gitsha1, 20);
        RETURN_ERROR_IF(ck_add(p->total_size, f->size, &p->total_size), CELLAR_ERANGE,
                        "%s: sizes overflow", p->repo);
    }
    update(p, CELLAR_PULL_PLAN, NULL, 0, 0, NULL);
    for (size_t i = 0; i < p->n; i++) {
        struct item *it = &p->items[i];
        rc = item_lookup(p->s, it);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            item_reused(p, it);
        } else if (p->o->dry_run) {
            it->state = ITEM_DONE;
            it->f->downloaded = 1;
            p->res->files_downloaded++;
            p->res->bytes_downloaded += it->f->size;
        }
    }
    return 0;
}

int cellar_pull_listing(cellar_store *s, const cellar_pull_source *src, cellar_hub *hub,
                        const cellar_hub_listing *l, const char *repo, const char *revision,
                        const char *hf_name, bool record, const cellar_pull_opts *o,
                        cellar_pull_result *res)
{
    memset(res, 0, sizeof *res);
    struct pull p = {.s = s, .o = o, .repo = repo, .res = res, .src = src, .hub = hub,
                     .revision = revision, .hf_name = hf_name};
    if (o->to_dir && o->hf_cache)
        return cellar_fail(CELLAR_EINVAL, "choose one layout: a folder or an HF cache");
    pthread_mutex_init(&p.mu, NULL);
    int rc = plan_online(&p, (cellar_hub_listing *)l);
    if (!rc && record && o->to_dir)
        rc = check_dir_targets(&p, o->to_dir);
    if (!rc && !o->dry_run)
        rc = download_all(&p);
    if (rc && p.rc_msg)
        cellar_fail(rc, "%s", p.rc_msg);
    memcpy(res->commit, p.commit, sizeof res->commit);
    if (!rc && !o->dry_run && record)
        rc = record_and_layout(&p);
    free(p.rc_msg);
    free(p.items);
    pthread_mutex_destroy(&p.mu);
    return rc;
}

/* ---- the team cache (docs/oci.md) ---- */

static void remote_failed(cellar_pull_result *res, int rc)
{
    if (!res->remote_rc) {
        res->remote_rc = rc;
        snprintf(res->remote_message, sizeof res->remote_message, "%s", cellar_error_last());
    }
    cellar_error_clear();
}

/* Takes what the team's registry holds of the blobs still to download;
 * *remote stays open for sharing afterwards (NULL if it cannot be used). */
static void remote_fetch(struct pull *p, cellar_remote **remote)
{
    int rc =
        cellar_remote_open(remote, p->o->remote, p->o->remote_opts, cellar_store_home(p->s));
    if (rc) {
        remote_failed(p->res, rc);
        return;
    }
    cellar_hub_listing want = {0};
    want.files = cellar_calloc(p->n ? p->n : 1, sizeof *want.files);
    if (!want.files) {
        remote_failed(p->res, CELLAR_ENOMEM);
        return;
    }
    memcpy(want.commit, p->commit, sizeof want.commit);
    for (size_t i = 0; i < p->n; i++)
        if (p->items[i].state == ITEM_QUEUED)
            want.files[want.n++] = *p->items[i].hf;
    uint64_t files = 0, bytes = 0;
    rc = want.n ? cellar_remote_fetch(*remote, p->s, &want, p->repo, p->o, &files, &bytes) : 0;
    free(want.files);
    if (rc)
        remote_failed(p->res, rc);
    for (size_t i = 0; i < p->n; i++) {
        struct item *it = &p->items[i];
        if (it->state != ITEM_QUEUED || item_lookup(p->s, it) != 1)
            continue;
        item_reused(p, it);
        /* Counted as from the registry, not as reused. */
        p->res->files_reused--;
        p->res->bytes_reused -= it->f->size;
        p->res->files_from_remote++;
        p->res->bytes_from_remote += it->f->size;
    }
    cellar_error_clear();
}

void cellar_pull_result_free(cellar_pull_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->files[i].path);
    free(r->files);
    r->files = NULL;
    r->n = 0;
}

int cellar_pull(cellar_pull_result *out, cellar_store *s, const char *repo,
                const cellar_pull_opts *opts)
{
    cellar_pull_result local;
    cellar_pull_result *res = out ? out : &local;
    memset(res, 0, sizeof *res);
    CELLAR_OPTS_CHECK(opts, "cellar_pull_opts", CELLAR_PULL_OPTS_VERSION, "CELLAR_PULL_OPTS_INIT");
    cellar_pull_opts defaults = CELLAR_PULL_OPTS_INIT;
    const cellar_pull_opts *o = opts ? opts : &defaults;
    struct pull p = {.s = s, .o = o, .repo = repo, .res = res};
    p.revision = o->revision && *o->revision ? o->revision : "main";
    cellar_hub_listing *listing = NULL;
    int rc = cellar_hub_check_repo(repo);
    if (rc)
        return rc;
    if (o->to_dir && o->hf_cache)
        return cellar_fail(CELLAR_EINVAL, "choose one layout: a folder or an HF cache");
    if (!cellar_hub_path_safe(p.revision, strlen(p.revision)))
        return cellar_fail(CELLAR_EINVAL, "'%s': not a valid revision name", p.revision);
    bool offline = o->offline != 0;
    pthread_mutex_init(&p.mu, NULL);

    cellar_remote *remote = NULL;
    if (offline) {
        rc = plan_offline(&p);
    } else {
        rc = cellar_hub_open(&p.hub, o->endpoint, o->token);
        if (!rc)
            rc = cellar_hub_list(&listing, p.hub, repo, p.revision);
        if (!rc)
            rc = plan_online(&p, listing);
        if (!rc && o->to_dir)
            rc = check_dir_targets(&p, o->to_dir);
        if (!rc && !o->dry_run && o->remote)
            remote_fetch(&p, &remote);
        p.remote = remote;
        if (!rc && !o->dry_run)
            rc = download_all(&p);
        if (rc && p.rc_msg)
            cellar_fail(rc, "%s", p.rc_msg);
    }
    memcpy(res->commit, p.commit, sizeof res->commit);
    if (!rc && !o->dry_run)
        rc = record_and_layout(&p);
    if (!rc && remote) {
        /* Shared before the command ends; a failure is reported, never
         * fatal. */
        int rrc = cellar_remote_share(remote, s, repo, p.revision, res, &res->files_shared,
                                      &res->bytes_shared);
        if (rrc)
            remote_failed(res, rrc);
    }
    cellar_remote_free(remote);
    free(p.rc_msg);
    free(p.items);
    cellar_hub_listing_free(listing);
    cellar_hub_free(p.hub);
    pthread_mutex_destroy(&p.mu);
    if (!out)
        cellar_pull_result_free(&local);
    return rc;
}

/* huggingface_hub's _is_true: "1", "ON", "YES", "TRUE" in any case. */
static bool env_true(const char *v)
{
    static const char *const yes[] = {"1", "on", "yes", "true"};
    for (size_t i = 0; v && i < sizeof yes / sizeof yes[0]; i++)
        if (!strcasecmp(v, yes[i]))
            return true;
    return false;
}

int cellar_pull_opts_from_env(cellar_pull_opts *o)
{
    RETURN_ERROR_IF(!o, CELLAR_EINVAL, "cellar_pull_opts_from_env: no options given");
    CELLAR_OPTS_CHECK(o, "cellar_pull_opts", CELLAR_PULL_OPTS_VERSION, "CELLAR_PULL_OPTS_INIT");
    const char *v;
    if (!o->endpoint && (v = getenv("HF_ENDPOINT")) && *v)
        o->endpoint = v;
    if (!o->token && (v = getenv("HF_TOKEN")) && *v)
        o->token = v;
    if (env_true(getenv("HF_HUB_OFFLINE")))
        o->offline = 1;
    return 0;
}
