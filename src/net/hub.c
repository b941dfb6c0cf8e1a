/* The Hub's API calls and answers (hub.h). */
#include "hub.h"

#include "json.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_ENDPOINT "https://huggingface.co"
/* API answers are small; a listing page of a huge repo stays far below. */
#define API_BODY_MAX (64u << 20)
/* Bounds of a tree listing, far above any real repo (the Hub pages 1000
 * entries at a time; repos of over 100k files are discouraged): a server
 * handing out fresh cursors forever is stopped within seconds, not hours. */
#define MAX_PAGES 1000
#define MAX_ENTRIES 1000000
/* No file has more bytes than this (2^53: what a double, hence any JSON
 * reader, holds exactly; 8 PiB). Larger listed sizes are lies that would
 * wrap sums and part counts. */
#define MAX_FILE_SIZE (1ull << 53)
/* A body that does not parse was most likely cut short: worth a few tries,
 * not as many as a busy server. */
#define PARSE_ATTEMPTS 3

int cellar_hub_open(cellar_hub **out, const char *endpoint, const char *token)
{
    *out = NULL;
    if (!endpoint || !*endpoint)
        endpoint = DEFAULT_ENDPOINT;
    cellar_hub *hub = cellar_calloc(1, sizeof *hub);
    if (!hub)
        return CELLAR_ENOMEM;
    size_t n = strlen(endpoint);
    while (n && endpoint[n - 1] == '/')
        n--;
    hub->endpoint = cellar_strndup(endpoint, n);
    hub->has_token = token && *token;
    int rc = hub->endpoint ? cellar_http_new(&hub->http, hub->endpoint, token) : CELLAR_ENOMEM;
    if (rc) {
        cellar_hub_free(hub);
        return rc;
    }
    *out = hub;
    return 0;
}

void cellar_hub_free(cellar_hub *hub)
{
    if (!hub)
        return;
    cellar_http_free(hub->http);
    free(hub->endpoint);
    free(hub);
}

static bool repo_part_ok(const char *s, size_t n)
{
    if (n == 0 || n > 96 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return false;
    return true;
}

int cellar_hub_check_repo(const char *repo)
{
    const char *slash = strchr(repo, '/');
    if (!slash || !repo_part_ok(repo, (size_t)(slash - repo)) ||
        !repo_part_ok(slash + 1, strlen(slash + 1)))
        return cellar_fail(CELLAR_EINVAL, "'%s': a repo is named ORG/NAME", repo);
    return 0;
}

bool cellar_hub_path_safe(const char *path, size_t len)
{
    if (len == 0 || len > 4096 || path[0] == '/')
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len) {
            unsigned char c = (unsigned char)path[i];
            if (c < 0x20 || c == 0x7f || c == '\\')
                return false;
            if (c != '/')
                continue;
        }
        size_t n = i - start;
        if (n == 0 || (n == 1 && path[start] == '.') ||
            (n == 2 && path[start] == '.' && path[start + 1] == '.'))
            return false;
        /* A folder named with a leading dot (.git/config, .ssh/...) is
         * where tools keep configuration that runs code: never written. */
        if (i < len && path[start] == '.')
            return false;
        start = i + 1;
    }
    return true;
}

bool cellar_hub_retryable(int rc, const cellar_http_resp *r)
{
    if (rc == CELLAR_ENET)
        return true;
    return rc == 0 && (r->status == 429 || r->status >= 500);
}

unsigned cellar_hub_backoff_ms(unsigned attempt, const cellar_http_resp *r)
{
    if (r && r->retry_after >= 0)
        return r->retry_after > 60 ? 60000u : (unsigned)r->retry_after * 1000u;
    unsigned ms = 250u << (attempt > 5 ? 5 : attempt - 1);
    return ms > 8000 ? 8000 : ms;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int cellar_hub_status_error(const cellar_hub *hub, const cellar_http_resp *r, const char *repo,
                            const char *revision, const char *path)
{
    long st = r->status;
    if (st == 401 || st == 403) {
        if (!hub->has_token)
            return cellar_fail(CELLAR_EAUTH,
                               "%s: %ld %s: the repo is gated or private; pass a token with "
                               "--token or $HF_TOKEN",
                               repo, st, st == 401 ? "Unauthorized" : "Forbidden");
        return cellar_fail(CELLAR_EAUTH,
                           "%s: %ld %s: the token was refused; the repo is gated or private "
                           "(accept its terms on the Hub, or use a token with access)",
                           repo, st, st == 401 ? "Unauthorized" : "Forbidden");
    }
    if (st == 404) {
        const char *code = r->error_code;
        if (!strcmp(code, "RevisionNotFound"))
            return cellar_fail(CELLAR_ENOTFOUND, "%s: revision '%s' not found", repo, revision);
        if (!strcmp(code, "EntryNotFound") && path)
            return cellar_fail(CELLAR_ENOTFOUND, "%s: file '%s' not found at revision '%s'", repo,
                               path, revision);
        if (!strcmp(code, "RepoNotFound") || !path)
            return cellar_fail(CELLAR_ENOTFOUND,
                               "%s: repository not found (or private: a token may be needed)",
                               repo);
        return cellar_fail(CELLAR_ENOTFOUND, "%s: '%s' not found (404)", repo, path);
    }
    return cellar_fail(CELLAR_ENET, "%s: the server answered %ld%s%s", repo, st,
                       r->error_message[0] ? ": " : "", r->error_message);
}

/* GET url with retries; the body of the 2xx answer lands in *body. */
static int api_get(cellar_hub *hub, cellar_http_resp *resp, cellar_buf *body, const char *url,
                   const char *repo, const char *revision)
{
    for (unsigned attempt = 1;; attempt++) {
        int rc = cellar_http_fetch(hub->http, resp, body, url, API_BODY_MAX);
        if (rc == 0 && resp->status >= 200 && resp->status < 300)
            return 0;
        if (!cellar_hub_retryable(rc, resp) || attempt == CELLAR_HUB_ATTEMPTS) {
            bool retried = cellar_hub_retryable(rc, resp);
            if (rc == 0)
                rc = cellar_hub_status_error(hub, resp, repo, revision, NULL);
            if (retried)
                cellar_fail_prefix("gave up after %u tries", attempt);
            cellar_buf_free(body);
            cellar_http_resp_release(resp);
            return rc;
        }
        sleep_ms(cellar_hub_backoff_ms(attempt, rc ? NULL : resp));
        cellar_buf_free(body);
        cellar_http_resp_release(resp);
    }
}

/* GET + parse, retrying a body that does not parse (a cut answer) too. */
static int api_json(cellar_json_doc **doc, char **link_next, cellar_hub *hub, const char *url,
                    const char *repo, const char *revision, const char *what)
{
    for (unsigned attempt = 1;; attempt++) {
        cellar_http_resp resp;
        cellar_buf body;
        int rc = api_get(hub, &resp, &body, url, repo, revision);
        if (rc)
            return rc;
        rc = cellar_json_parse(doc, body.data ? body.data : "", body.len, 0, what, NULL);
        cellar_buf_free(&body);
        if (rc == 0) {
            if (link_next) {
                *link_next = resp.link_next;
                resp.link_next = NULL;
            }
            cellar_http_resp_release(&resp);
            return 0;
        }
        cellar_http_resp_release(&resp);
        if (rc != CELLAR_EFORMAT || attempt == PARSE_ATTEMPTS)
            return cellar_fail_prefix("%s", repo);
        sleep_ms(cellar_hub_backoff_ms(attempt, NULL));
    }
}

void cellar_hub_listing_free(cellar_hub_listing *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->files[i].path);
    free(l->files);
    free(l);
}

static bool hex_field(uint8_t *out, const cellar_json *v, size_t n)
{
    return cellar_json_is(v, CELLAR_JSON_STRING) && v->len == 2 * n &&
           cellar_unhex(out, v->u.str, n);
}

/* Appends the files of one parsed listing page. */
static int add_page(cellar_hub_listing *l, const cellar_json *page, const char *repo)
{
    RETURN_ERROR_IF(!cellar_json_is(page, CELLAR_JSON_ARRAY), CELLAR_EFORMAT,
                    "%s: tree listing is not a JSON array", repo);
    for (uint32_t i = 0; i < page->count; i++) {
        const cellar_json *e = &page->u.items[i];
        const cellar_json *type = cellar_json_getz(e, "type");
        const cellar_json *path = cellar_json_getz(e, "path");
        RETURN_ERROR_IF(!cellar_json_is(path, CELLAR_JSON_STRING), CELLAR_EFORMAT,
                        "%s: tree entry %u has no path", repo, i);
        /* Refuse the whole listing: a server that names one file outside
         * the repo is not trusted with the others either. */
        if (!cellar_hub_path_safe(path->u.str, path->len)) {
            cellar_buf shown;
            cellar_buf_init(&shown, 1024);
            cellar_json_escape(&shown, path->u.str, path->len, true);
            int rc = cellar_fail(CELLAR_EFORMAT,
                                 "%s: the server listed an unsafe path %s (absolute, '..', "
                                 "empty component, leading-dot folder, backslash or control "
                                 "character); "
                                 "nothing was written",
                                 repo, shown.data ? shown.data : "?");
            cellar_buf_free(&shown);
            return rc;
        }
        if (!cellar_json_str_eq(type, "file"))
            continue;
        int grown = cellar_grow(&l->files, &l->cap, l->n, sizeof *l->files, 64);
        if (grown)
            return cellar_fail_prefix("%s", repo);
        cellar_hub_file *f = &l->files[l->n];
        memset(f, 0, sizeof *f);
        const cellar_json *lfs = cellar_json_getz(e, "lfs");
        const cellar_json *size;
        if (cellar_json_is(lfs, CELLAR_JSON_OBJECT)) {
            f->lfs = true;
            size = cellar_json_getz(lfs, "size");
            RETURN_ERROR_IF(!hex_field(f->sha256, cellar_json_getz(lfs, "oid"), 32),
                            CELLAR_EFORMAT, "%s: %s: LFS entry without a sha256 oid", repo,
                            path->u.str);
        } else {
            size = cellar_json_getz(e, "size");
            RETURN_ERROR_IF(!hex_field(f->gitsha1, cellar_json_getz(e, "oid"), 20),
                            CELLAR_EFORMAT, "%s: %s: entry without a git blob oid", repo,
                            path->u.str);
        }
        RETURN_ERROR_IF(!cellar_json_u64(size, &f->size), CELLAR_EFORMAT,
                        "%s: %s: entry without a valid size", repo, path->u.str);
        RETURN_ERROR_IF(f->size > MAX_FILE_SIZE, CELLAR_EFORMAT,
                        "%s: %s: listed size %llu is more than any file holds (2^53); "
                        "nothing was written",
                        repo, path->u.str, (unsigned long long)f->size);
        f->path = cellar_strndup(path->u.str, path->len);
        if (!f->path)
            return CELLAR_ENOMEM;
        l->n++;
    }
    return 0;
}

int cellar_hub_parse_tree(cellar_hub_listing *l, const void *json, size_t len, const char *repo)
{
    cellar_json_doc *doc;
    int rc = cellar_json_parse(&doc, json, len, 0, "tree listing", NULL);
    if (rc)
        return cellar_fail_prefix("%s", repo);
    rc = add_page(l, cellar_json_root(doc), repo);
    cellar_json_free(doc);
    return rc;
}

/* Paths ordered component by component: '/' sorts before every byte a safe
 * path may hold, so a file "a" is directly followed by any "a/..." path. */
static int cmp_path(const void *a, const void *b)
{
    const unsigned char *x = *(const unsigned char *const *)a;
    const unsigned char *y = *(const unsigned char *const *)b;
    for (;; x++, y++) {
        unsigned cx = *x == '/' ? 1 : *x, cy = *y == '/' ? 1 : *y;
        if (cx != cy || !cx)
            return (cx > cy) - (cx < cy);
    }
}

int cellar_hub_listing_check(const cellar_hub_listing *l, const char *repo)
{
    if (l->n < 2)
        return 0;
    const char **v = cellar_malloc(l->n * sizeof *v);
    if (!v)
        return CELLAR_ENOMEM;
    for (size_t i = 0; i < l->n; i++)
        v[i] = l->files[i].path;
    qsort(v, l->n, sizeof *v, cmp_path);
    int rc = 0;
    for (size_t i = 1; i < l->n && rc == 0; i++) {
        size_t n = strlen(v[i - 1]);
        if (!strcmp(v[i - 1], v[i]))
            rc = cellar_fail(CELLAR_EFORMAT,
                             "%s: the server listed '%s' twice; nothing was written", repo,
                             v[i]);
        else if (!strncmp(v[i - 1], v[i], n) && v[i][n] == '/')
            rc = cellar_fail(CELLAR_EFORMAT,
                             "%s: the server listed '%s' both as a file and as the folder of "
                             "'%s'; nothing was written",
                             repo, v[i - 1], v[i]);
    }
    free(v);
    return rc;
}

int cellar_hub_list(cellar_hub_listing **out, cellar_hub *hub, const char *repo,
                    const char *revision)
{
    *out = NULL;
    int rc = cellar_hub_check_repo(repo);
    if (rc)
        return rc;
    cellar_hub_listing *l = cellar_calloc(1, sizeof *l);
    char *rev = cellar_http_escape(revision, false), *url = NULL, *next = NULL;
    cellar_json_doc *doc = NULL;
    uint64_t *seen = cellar_calloc(MAX_PAGES, sizeof *seen), entries = 0;
    rc = CELLAR_ENOMEM;
    if (!l || !rev || !seen)
        goto done;
    url = cellar_sprintf("%s/api/models/%s/revision/%s?blobs=true", hub->endpoint, repo, rev);
    if (!url)
        goto done;
    rc = api_json(&doc, NULL, hub, url, repo, revision, "repo info");
    if (rc)
        goto done;
    const cellar_json *sha = cellar_json_getz(cellar_json_root(doc), "sha");
    uint8_t commit[20];
    if (!hex_field(commit, sha, 20)) {
        rc = cellar_fail(CELLAR_EFORMAT, "%s: repo info has no 40-hex 'sha' commit", repo);
        goto done;
    }
    cellar_hex(l->commit, commit, 20);
    cellar_json_free(doc);
    doc = NULL;

    /* List the commit, not the branch, so a push in between cannot mix two
     * revisions' files. */
    free(url);
    url = cellar_sprintf("%s/api/models/%s/tree/%s?recursive=true&expand=false", hub->endpoint,
                         repo, l->commit);
    if (!url) {
        rc = CELLAR_ENOMEM;
        goto done;
    }
    for (unsigned page = 0; url; page++) {
        if (page == MAX_PAGES) {
            rc = cellar_fail(CELLAR_EFORMAT, "%s: tree listing has over %u pages", repo, page);
            goto done;
        }
        /* A page URL seen before would loop forever. */
        uint64_t h = 1469598103934665603ull;
        for (const char *c = url; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ull;
        for (unsigned j = 0; j < page; j++)
            if (seen[j] == h) {
                rc = cellar_fail(CELLAR_EFORMAT,
                                 "%s: tree listing page %u links back to an earlier page",
                                 repo, page);
                goto done;
            }
        seen[page] = h;
        rc = api_json(&doc, &next, hub, url, repo, revision, "tree listing");
        if (rc)
            goto done;
        const cellar_json *root = cellar_json_root(doc);
        if (cellar_json_is(root, CELLAR_JSON_ARRAY)) {
            entries += root->count;
            if (entries > MAX_ENTRIES) {
                rc = cellar_fail(CELLAR_EFORMAT, "%s: tree listing has over %u entries", repo,
                                 MAX_ENTRIES);
                goto done;
            }
        }
        rc = add_page(l, root, repo);
        cellar_json_free(doc);
        doc = NULL;
        if (rc)
            goto done;
        free(url);
        url = next;
        next = NULL;
    }
    if ((rc = cellar_hub_listing_check(l, repo)) != 0)
        goto done;
    *out = l;
    l = NULL;
    rc = 0;
done:
    cellar_json_free(doc);
    cellar_hub_listing_free(l);
    free(seen);
    free(rev);
    free(url);
    free(next);
    return rc;
}

char *cellar_hub_file_url(const cellar_hub *hub, const char *repo, const char *commit,
                          const char *path)
{
    char *p = cellar_http_escape(path, true);
    if (!p)
        return NULL;
    char *url = cellar_sprintf("%s/%s/resolve/%s/%s", hub->endpoint, repo, commit, p);
    free(p);
    return url;
}
