/* The HTTP client (http.h) over libcurl's multi interface: one event loop,
 * many transfers, redirects followed by hand so the token stays with the
 * endpoint's origin. The only file that includes curl.h. */
#include "http.h"
#include "http_parse.h"

#include <ctype.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#define MAX_REDIRECTS 8
#define ERROR_BODY_MAX 4096

struct cellar_http {
    CURLM *multi;
    char *origin; /* "scheme://host:port" of the endpoint, lower case */
    char *auth;   /* "Authorization: Bearer ..." or NULL */
    unsigned active;
};

struct cellar_http_req {
    cellar_http *h;
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    uint64_t range_from, range_to;
    cellar_http_write_fn write;
    cellar_http_done_fn done;
    void *ud;
    cellar_http_resp resp;
    char *location;       /* Location of the current answer */
    long hop_status;      /* status of the current answer */
    int write_rc;         /* the write callback's error, if it stopped us */
    char errbuf[CURL_ERROR_SIZE];
    /* cellar_http_request: */
    cellar_http_req_opts o; /* o.headers and o.auth point into the copies below */
    char **extra;           /* extra header lines (copied), NULL-terminated */
    char *auth;             /* the request's own Authorization line, or NULL */
    char *auth_origin;      /* the origin it may go to */
    uint64_t body_pos;      /* bytes of the body sent so far */
};

/* libcurl is loaded on first use, not linked: its dependencies are some 28
 * shared libraries (krb5, ldap, gnutls, ssh2...) that the dynamic loader
 * would otherwise map and relocate at the start of every cellar command,
 * although only pull speaks HTTP. curl.h still gives types and constants;
 * every call goes through this table. */
#define LIBCURL_SONAME "libcurl.so.4"
/* 7.85.0 brought CURLOPT_PROTOCOLS_STR, which keeps transfers to http(s). */
#define LIBCURL_MIN_VERSION 0x075500
#define LIBCURL_MIN_VERSION_STRING "7.85.0"

#define CURL_FUNCTIONS(X)                                                                          \
    X(global_init)                                                                                 \
    X(version_info)                                                                                \
    X(free)                                                                                        \
    X(getdate)                                                                                     \
    X(url)                                                                                         \
    X(url_set)                                                                                     \
    X(url_get)                                                                                     \
    X(url_cleanup)                                                                                 \
    X(slist_append)                                                                                \
    X(slist_free_all)                                                                              \
    X(easy_init)                                                                                   \
    X(easy_setopt)                                                                                 \
    X(easy_getinfo)                                                                                \
    X(easy_cleanup)                                                                                \
    X(easy_strerror)                                                                               \
    X(multi_init)                                                                                  \
    X(multi_add_handle)                                                                            \
    X(multi_remove_handle)                                                                         \
    X(multi_perform)                                                                               \
    X(multi_info_read)                                                                             \
    X(multi_poll)                                                                                  \
    X(multi_cleanup)                                                                               \
    X(multi_strerror)

static struct {
#define CURL_FIELD(name) __typeof__(curl_##name) *name;
    CURL_FUNCTIONS(CURL_FIELD)
#undef CURL_FIELD
} curl;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_rc;          /* 0 once libcurl is loaded and initialized */
static char curl_error[384]; /* the reason, when curl_rc is not */

/* The library stays loaded for the life of the process: libcurl cannot be
 * unloaded safely once curl_global_init ran. */
static void curl_load(void)
{
    curl_rc = CELLAR_EUNSUPPORTED;
    void *lib = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(curl_error, sizeof curl_error,
                 "HTTP needs " LIBCURL_SONAME " (Debian package libcurl4): %s", dlerror());
        return;
    }
#define CURL_SYMBOL(name)                                                                          \
    if (!(curl.name = (__typeof__(curl.name))dlsym(lib, "curl_" #name))) {                         \
        snprintf(curl_error, sizeof curl_error,                                                    \
                 "%s lacks curl_%s: install the Debian package libcurl4, %s or later",             \
                 LIBCURL_SONAME, #name, LIBCURL_MIN_VERSION_STRING);                               \
        goto fail;                                                                                 \
    }
    CURL_FUNCTIONS(CURL_SYMBOL)
#undef CURL_SYMBOL
    const curl_version_info_data *v = curl.version_info(CURLVERSION_NOW);
    if (!v || v->version_num < LIBCURL_MIN_VERSION) {
        snprintf(curl_error, sizeof curl_error,
                 "%s is libcurl %s; cellar needs %s or later (Debian package libcurl4)",
                 LIBCURL_SONAME, v ? v->version : "of unknown version", LIBCURL_MIN_VERSION_STRING);
        goto fail;
    }
    CURLcode rc = curl.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(curl_error, sizeof curl_error, "libcurl failed to initialize: %s",
                 curl.easy_strerror(rc));
        curl_rc = CELLAR_ENET;
        return;
    }
    curl_rc = 0;
    return;
fail:
    memset(&curl, 0, sizeof curl);
    dlclose(lib);
}

/* "scheme://host:port" of url, lower case; NULL (error set) if unparsable. */
static char *url_origin(const char *url)
{
    CURLU *u = curl.url();
    char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;
    if (!u) {
        cellar_fail(CELLAR_ENOMEM, "out of memory parsing a URL");
        return NULL;
    }
    if (curl.url_set(u, CURLUPART_URL, url, 0) || curl.url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
        curl.url_get(u, CURLUPART_HOST, &host, 0) ||
        curl.url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)) {
        char *shown = http_url_for_message(url);
        cellar_fail(CELLAR_EINVAL, "%s: not a valid URL", shown ? shown : "(URL)");
        free(shown);
        goto done;
    }
    out = cellar_sprintf("%s://%s:%s", scheme, host, port);
    for (char *p = out; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
done:
    curl.free(scheme);
    curl.free(host);
    curl.free(port);
    curl.url_cleanup(u);
    return out;
}

/* location resolved against base; NULL (error set) if unusable. Only
 * http(s) targets are followed. */
static char *url_resolve(const char *base, const char *location)
{
    CURLU *u = curl.url();
    char *res = NULL, *scheme = NULL, *out = NULL;
    if (!u) {
        cellar_fail(CELLAR_ENOMEM, "out of memory parsing a URL");
        return NULL;
    }
    if (curl.url_set(u, CURLUPART_URL, base, 0) || curl.url_set(u, CURLUPART_URL, location, 0) ||
        curl.url_get(u, CURLUPART_URL, &res, 0) || curl.url_get(u, CURLUPART_SCHEME, &scheme, 0)) {
        char *shown = http_url_for_message(base);
        cellar_fail(CELLAR_ENET, "%s: redirect to an invalid URL", shown ? shown : "(URL)");
        free(shown);
        goto done;
    }
    if (strcasecmp(scheme, "http") && strcasecmp(scheme, "https")) {
        char *shown = http_url_for_message(base);
        cellar_fail(CELLAR_ENET, "%s: redirect to a %s URL refused", shown ? shown : "(URL)",
                    scheme);
        free(shown);
        goto done;
    }
    out = cellar_strdup(res);
done:
    curl.free(res);
    curl.free(scheme);
    curl.url_cleanup(u);
    return out;
}

int cellar_http_new(cellar_http **out, const char *endpoint, const char *token)
{
    *out = NULL;
    pthread_once(&curl_once, curl_load);
    RETURN_ERROR_IF(curl_rc, curl_rc, "%s", curl_error);
    RETURN_ERROR_IF(token && strpbrk(token, "\r\n"), CELLAR_EINVAL,
                    "the token holds a line break");
    cellar_http *h = cellar_calloc(1, sizeof *h);
    if (!h)
        return CELLAR_ENOMEM;
    h->origin = url_origin(endpoint);
    if (!h->origin)
        goto fail;
    if (token && *token) {
        h->auth = cellar_sprintf("Authorization: Bearer %s", token);
        if (!h->auth)
            goto fail;
    }
    h->multi = curl.multi_init();
    if (!h->multi) {
        cellar_fail(CELLAR_ENOMEM, "out of memory creating an HTTP client");
        goto fail;
    }
    *out = h;
    return 0;
fail:
    cellar_http_free(h);
    return cellar_error_code() ? cellar_error_code() : CELLAR_ENOMEM;
}

void cellar_http_free(cellar_http *h)
{
    if (!h)
        return;
    if (h->multi)
        curl.multi_cleanup(h->multi);
    free(h->origin);
    if (h->auth) {
        /* Do not leave the token lying in freed memory. */
        memset(h->auth, 0, strlen(h->auth));
        free(h->auth);
    }
    free(h);
}

void cellar_http_resp_release(cellar_http_resp *resp)
{
    free(resp->link_next);
    resp->link_next = NULL;
}

static void req_free(cellar_http_req *r)
{
    if (!r)
        return;
    if (r->easy)
        curl.easy_cleanup(r->easy);
    curl.slist_free_all(r->headers);
    free(r->url);
    free(r->location);
    cellar_http_resp_release(&r->resp);
    for (char **e = r->extra; e && *e; e++)
        free(*e);
    free(r->extra);
    if (r->auth) {
        memset(r->auth, 0, strlen(r->auth));
        free(r->auth);
    }
    free(r->auth_origin);
    free(r);
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
    cellar_http_req *r = ud;
    cellar_http_resp *s = &r->resp;
    size_t n = size * nmemb;
    if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
        /* A new answer (after a redirect or a 100 Continue): per-answer
         * fields start over, the Hub's own headers are kept. */
        const char *sp = memchr(line, ' ', n);
        r->hop_status = sp ? strtol(sp + 1, NULL, 10) : 0;
        s->content_length = s->range_start = s->retry_after = -1;
        s->error_code[0] = s->error_message[0] = '\0';
        s->location[0] = s->content_digest[0] = s->www_authenticate[0] = '\0';
        s->range[0] = s->content_type[0] = '\0';
        free(r->location);
        r->location = NULL;
        return n;
    }
    /* A failure to keep a field (out of memory) leaves it unset. */
    (void)http_parse_field(s, &r->location, line, n, time(NULL));
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    cellar_http_req *r = ud;
    size_t n = size * nmemb;
    bool pass = r->hop_status >= 200 && r->hop_status < 300;
    if (r->o.error_body && !(r->hop_status >= 300 && r->hop_status < 400))
        pass = true;
    if (!pass || !r->write)
        return n; /* redirect and error bodies: headers say enough */
    r->resp.status = r->hop_status;
    int rc = r->write(r->ud, &r->resp, data, n);
    if (rc) {
        r->write_rc = rc;
        return n ? 0 : 1; /* any short count makes curl stop */
    }
    return n;
}

/* (Re)arms the easy handle for r->url: headers chosen by origin. */
static int req_arm(cellar_http_req *r)
{
    cellar_http *h = r->h;
    curl.slist_free_all(r->headers);
    r->headers = NULL;
    char *origin = url_origin(r->url);
    if (!origin)
        return cellar_error_code();
    bool own = strcmp(origin, h->origin) == 0;
    const char *auth = h->auth;
    if (r->auth) {
        own = r->auth_origin && strcmp(origin, r->auth_origin) == 0;
        auth = r->auth;
    }
    free(origin);
    struct curl_slist *l = curl.slist_append(NULL, "User-Agent: cellar/" CELLAR_VERSION_STRING);
    if (l && own && auth) {
        struct curl_slist *l2 = curl.slist_append(l, auth);
        l = l2 ? l2 : (curl.slist_free_all(l), NULL);
    }
    for (char **x = r->extra; l && x && *x; x++) {
        struct curl_slist *l2 = curl.slist_append(l, *x);
        l = l2 ? l2 : (curl.slist_free_all(l), NULL);
    }
    if (l && r->o.method && (!strcmp(r->o.method, "PUT") || !strcmp(r->o.method, "POST") ||
                             !strcmp(r->o.method, "PATCH"))) {
        /* No "Expect: 100-continue" round trip before a body. */
        struct curl_slist *l2 = curl.slist_append(l, "Expect:");
        l = l2 ? l2 : (curl.slist_free_all(l), NULL);
    }
    r->body_pos = 0; /* a redirected or retried body starts over */
    RETURN_ERROR_IF(!l, CELLAR_ENOMEM, "out of memory building HTTP headers");
    r->headers = l;
    CURL *e = r->easy;
    curl.easy_setopt(e, CURLOPT_URL, r->url);
    curl.easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    if (r->range_to > r->range_from) {
        char range[48];
        snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)r->range_from,
                 (unsigned long long)r->range_to - 1);
        curl.easy_setopt(e, CURLOPT_RANGE, range);
    } else if (r->range_from > 0) {
        char range[32];
        snprintf(range, sizeof range, "%llu-", (unsigned long long)r->range_from);
        curl.easy_setopt(e, CURLOPT_RANGE, range);
    } else {
        curl.easy_setopt(e, CURLOPT_RANGE, NULL);
    }
    r->hop_status = 0;
    CURLMcode mc = curl.multi_add_handle(h->multi, e);
    if (mc != CURLM_OK) {
        char *shown = http_url_for_message(r->url);
        cellar_fail(CELLAR_ENET, "%s: cannot start the transfer: %s", shown ? shown : "(URL)",
                    curl.multi_strerror(mc));
        free(shown);
        return CELLAR_ENET;
    }
    return 0;
}

int cellar_http_start(cellar_http *h, const char *url, uint64_t range_from, uint64_t range_to,
                      cellar_http_write_fn write, cellar_http_done_fn done, void *ud)
{
    cellar_http_req_opts o = {.range_from = range_from, .range_to = range_to};
    return cellar_http_request(h, url, &o, write, done, ud);
}

/* The request body, from memory or a file range. */
static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    cellar_http_req *r = ud;
    size_t cap = size * nitems;
    uint64_t left = r->o.body_len - r->body_pos;
    size_t n = left < cap ? (size_t)left : cap;
    if (n == 0)
        return 0;
    if (r->o.body_from_fd) {
        ssize_t got = cellar_full_pread(r->o.body_fd, buf, n, r->o.body_off + r->body_pos);
        if (got != (ssize_t)n)
            return CURL_READFUNC_ABORT;
    } else {
        memcpy(buf, (const char *)r->o.body + r->body_pos, n);
    }
    r->body_pos += n;
    if (r->o.sent) {
        int stop = r->o.sent(r->o.body_off + r->body_pos, r->o.sent_ctx);
        if (stop) {
            r->write_rc = stop < 0 ? stop : cellar_fail(CELLAR_EUSER, "upload stopped by the caller");
            return CURL_READFUNC_ABORT;
        }
    }
    return n;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
    cellar_http_req *r = ud;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > r->o.body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    r->body_pos = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* Copies what o points to into r (the caller's strings may go away). */
static int req_take_opts(cellar_http_req *r, const char *url, const cellar_http_req_opts *o)
{
    r->o = *o;
    r->o.headers = NULL;
    r->o.auth = NULL;
    size_t n = 0;
    while (o->headers && o->headers[n]) {
        RETURN_ERROR_IF(strpbrk(o->headers[n], "\r\n"), CELLAR_EINVAL,
                        "an HTTP header holds a line break");
        n++;
    }
    if (n) {
        r->extra = cellar_calloc(n + 1, sizeof *r->extra);
        if (!r->extra)
            return CELLAR_ENOMEM;
        for (size_t i = 0; i < n; i++)
            if (!(r->extra[i] = cellar_strdup(o->headers[i])))
                return CELLAR_ENOMEM;
    }
    if (o->auth) {
        RETURN_ERROR_IF(strpbrk(o->auth, "\r\n"), CELLAR_EINVAL,
                        "the credentials hold a line break");
        r->auth = cellar_strdup(o->auth);
        r->auth_origin = url_origin(url);
        if (!r->auth || !r->auth_origin)
            return cellar_error_code() ? cellar_error_code() : CELLAR_ENOMEM;
    }
    const char *m = o->method;
    if (!m || !strcmp(m, "GET"))
        r->o.method = NULL;
    else if (!strcmp(m, "HEAD"))
        r->o.method = "HEAD";
    else if (!strcmp(m, "PUT"))
        r->o.method = "PUT";
    else if (!strcmp(m, "POST"))
        r->o.method = "POST";
    else if (!strcmp(m, "PATCH"))
        r->o.method = "PATCH";
    else if (!strcmp(m, "DELETE"))
        r->o.method = "DELETE";
    else
        return cellar_fail(CELLAR_EINVAL, "HTTP method %s not supported", m);
    if (r->o.method && r->o.method[0] == 'P') {
        RETURN_ERROR_IF(r->o.body_len > (uint64_t)INT64_MAX, CELLAR_ERANGE, "body too large");
        RETURN_ERROR_IF(!r->o.body_from_fd && r->o.body_len && !r->o.body, CELLAR_EINVAL,
                        "a body of %llu bytes without data", (unsigned long long)r->o.body_len);
        curl.easy_setopt(r->easy, CURLOPT_UPLOAD, 1L);
        curl.easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, r->o.method);
        curl.easy_setopt(r->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->o.body_len);
        curl.easy_setopt(r->easy, CURLOPT_READFUNCTION, on_read);
        curl.easy_setopt(r->easy, CURLOPT_READDATA, r);
        curl.easy_setopt(r->easy, CURLOPT_SEEKFUNCTION, on_seek);
        curl.easy_setopt(r->easy, CURLOPT_SEEKDATA, r);
    } else if (r->o.method && !strcmp(r->o.method, "HEAD")) {
        curl.easy_setopt(r->easy, CURLOPT_NOBODY, 1L);
    } else if (r->o.method) {
        curl.easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, r->o.method);
    }
    return 0;
}

int cellar_http_request(cellar_http *h, const char *url, const cellar_http_req_opts *o,
                        cellar_http_write_fn write, cellar_http_done_fn done, void *ud)
{
    static const cellar_http_req_opts get = {0};
    if (!o)
        o = &get;
    cellar_http_req *r = cellar_calloc(1, sizeof *r);
    if (!r)
        return CELLAR_ENOMEM;
    r->h = h;
    r->range_from = o->range_from;
    r->range_to = o->range_to;
    r->write = write;
    r->done = done;
    r->ud = ud;
    r->resp.linked_size = r->resp.content_length = r->resp.range_start = -1;
    r->resp.retry_after = -1;
    r->url = cellar_strdup(url);
    r->easy = curl.easy_init();
    int rc = CELLAR_ENOMEM;
    if (!r->url || !r->easy)
        goto fail;
    CURL *e = r->easy;
    curl.easy_setopt(e, CURLOPT_PRIVATE, r);
    curl.easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl.easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl.easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl.easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl.easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl.easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A transfer that moves less than 1 KiB/s for a minute is dead. */
    curl.easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl.easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 60L);
    curl.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl.easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
    rc = req_take_opts(r, url, o);
    if (rc)
        goto fail;
    rc = req_arm(r);
    if (rc)
        goto fail;
    h->active++;
    return 0;
fail:
    req_free(r);
    return rc;
}

/* A transfer finished: follow a redirect or report. */
static void req_finish(cellar_http *h, cellar_http_req *r, CURLcode result)
{
    curl.multi_remove_handle(h->multi, r->easy);
    int rc = 0;
    long status = r->hop_status;
    if (r->write_rc) {
        rc = r->write_rc;
    } else if (result != CURLE_OK) {
        char *shown = http_url_for_message(r->url);
        rc = cellar_fail(CELLAR_ENET, "%s: %s", shown ? shown : "(URL)",
                         r->errbuf[0] ? r->errbuf : curl.easy_strerror(result));
        free(shown);
    } else if (status >= 300 && status < 400 && status != 304 && r->location) {
        if (r->resp.redirects >= MAX_REDIRECTS) {
            char *shown = http_url_for_message(r->url);
            rc = cellar_fail(CELLAR_ENET, "%s: more than %d redirects", shown ? shown : "(URL)",
                             MAX_REDIRECTS);
            free(shown);
        } else {
            char *next = url_resolve(r->url, r->location);
            if (!next) {
                rc = cellar_error_code();
            } else {
                free(r->url);
                r->url = next;
                r->resp.redirects++;
                r->errbuf[0] = '\0';
                rc = req_arm(r);
                if (!rc)
                    return; /* still active */
            }
        }
    }
    if (r->location && !r->resp.location[0])
        http_copy_value(r->resp.location, sizeof r->resp.location, r->location,
                        strlen(r->location), false);
    r->resp.status = rc == CELLAR_ENET && !r->write_rc && result != CURLE_OK ? 0 : status;
    h->active--;
    if (r->done)
        r->done(r->ud, &r->resp, rc);
    req_free(r);
}

int cellar_http_step(cellar_http *h, int wait_ms)
{
    int running = 0;
    CURLMcode mc = curl.multi_perform(h->multi, &running);
    RETURN_ERROR_IF(mc != CURLM_OK, CELLAR_ENET, "HTTP event loop failed: %s",
                    curl.multi_strerror(mc));
    CURLMsg *m;
    int left;
    bool finished = false;
    while ((m = curl.multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        cellar_http_req *r = NULL;
        curl.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        req_finish(h, r, m->data.result);
        finished = true;
    }
    /* A callback may have started transfers: let them run before waiting. */
    if (finished || wait_ms <= 0)
        return 0;
    mc = curl.multi_poll(h->multi, NULL, 0, wait_ms, NULL);
    RETURN_ERROR_IF(mc != CURLM_OK, CELLAR_ENET, "HTTP event loop failed: %s",
                    curl.multi_strerror(mc));
    return 0;
}

int cellar_http_run(cellar_http *h)
{
    while (h->active) {
        int rc = cellar_http_step(h, 200);
        if (rc)
            return rc;
    }
    return 0;
}

struct fetch {
    cellar_buf *body;
    cellar_http_resp *resp;
    int rc;
    bool done;
};

static int fetch_write(void *ud, const cellar_http_resp *resp, const void *data, size_t len)
{
    struct fetch *f = ud;
    (void)resp;
    int rc = cellar_buf_append(f->body, data, len);
    if (rc == CELLAR_ERANGE)
        return cellar_fail(CELLAR_ERANGE, "answer larger than %zu bytes", f->body->limit);
    return rc;
}

static void fetch_done(void *ud, const cellar_http_resp *resp, int rc)
{
    struct fetch *f = ud;
    *f->resp = *resp;
    /* The request frees its copy; keep ours. */
    f->resp->link_next = resp->link_next ? cellar_strdup(resp->link_next) : NULL;
    f->rc = rc;
    f->done = true;
}

int cellar_http_fetch(cellar_http *h, cellar_http_resp *resp, cellar_buf *body, const char *url,
                      size_t limit)
{
    return cellar_http_fetch_req(h, resp, body, url, NULL, limit);
}

int cellar_http_fetch_req(cellar_http *h, cellar_http_resp *resp, cellar_buf *body,
                          const char *url, const cellar_http_req_opts *o, size_t limit)
{
    memset(resp, 0, sizeof *resp);
    cellar_buf_init(body, limit);
    struct fetch f = {body, resp, 0, false};
    int rc = cellar_http_request(h, url, o, fetch_write, fetch_done, &f);
    if (rc)
        return rc;
    rc = cellar_http_run(h);
    if (rc)
        return rc;
    return f.rc;
}

char *cellar_http_escape(const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s), cap;
    if (ck_mul(n, (size_t)3, &cap) || ck_add(cap, (size_t)1, &cap)) {
        cellar_fail(CELLAR_ERANGE, "string too long to escape");
        return NULL;
    }
    char *out = cellar_malloc(cap), *p = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || strchr("-._~", c) || (keep_slash && c == '/')) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}

int cellar_http_set_auth(cellar_http *h, const char *auth_line)
{
    RETURN_ERROR_IF(auth_line && strpbrk(auth_line, "\r\n"), CELLAR_EINVAL,
                    "the credentials hold a line break");
    char *copy = NULL;
    if (auth_line && !(copy = cellar_strdup(auth_line)))
        return CELLAR_ENOMEM;
    if (h->auth) {
        memset(h->auth, 0, strlen(h->auth));
        free(h->auth);
    }
    h->auth = copy;
    return 0;
}

char *cellar_http_resolve(const char *base, const char *location)
{
    pthread_once(&curl_once, curl_load);
    if (curl_rc) {
        cellar_fail(curl_rc, "%s", curl_error);
        return NULL;
    }
    return url_resolve(base, location);
}
