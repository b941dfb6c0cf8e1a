/* The OCI Distribution client (oci_registry.h): every call is one or a few
 * synchronous requests on the client's own event loop. Auth follows
 * OCI.md s.2: a 401 names Basic or Bearer; Basic resends with the user's
 * credentials, Bearer fetches a token from the realm (with the credentials,
 * sent to the realm's origin only) for the scopes the call needs, then
 * resends. A second 401 is final and worded without the password. */
#include "oci_registry.h"

#include "hub.h"
#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ERROR_BODY_LIMIT (64u << 10)
#define TAGS_PAGE_LIMIT (8u << 20)
#define MAX_TAG_PAGES 10000

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *cellar_base64(const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t cap;
    if (ck_add(len, (size_t)2, &cap) || ck_mul(cap / 3, (size_t)4, &cap) ||
        ck_add(cap, (size_t)1, &cap)) {
        cellar_fail(CELLAR_ERANGE, "too long to encode");
        return NULL;
    }
    char *out = cellar_malloc(cap), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? b64[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

bool cellar_unbase64(char **out, size_t *len, const char *s, size_t n)
{
    *out = NULL;
    char *buf = cellar_malloc(n / 4 * 3 + 4);
    if (!buf)
        return false;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t pad = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '=') {
            pad++;
            continue;
        }
        const char *at = c ? strchr(b64, c) : NULL;
        if (!at || pad) {
            free(buf);
            return false;
        }
        acc = (acc << 6) | (uint32_t)(at - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    buf[o] = '\0';
    *out = buf;
    if (len)
        *len = o;
    return true;
}

/* ---- references ---- */

static bool repo_valid(const char *s)
{
    /* path-component ("/" path-component)*, each [a-z0-9]+ ([._-]+ [a-z0-9]+)*
     * kept simple: lower-case alnum and separators, no empty component,
     * no component starting or ending with a separator. */
    size_t n = strlen(s);
    if (n == 0 || n > 255)
        return false;
    const char *c = s;
    for (;;) {
        const char *end = strchr(c, '/');
        size_t len = end ? (size_t)(end - c) : strlen(c);
        if (len == 0 || !isalnum((unsigned char)c[0]) || !isalnum((unsigned char)c[len - 1]))
            return false;
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)c[i];
            if (!(islower(ch) || isdigit(ch) || ch == '.' || ch == '_' || ch == '-'))
                return false;
        }
        if (!end)
            return true;
        c = end + 1;
    }
}

bool cellar_oci_tag_valid(const char *tag)
{
    size_t n = strlen(tag);
    if (n == 0 || n > 128 || !(isalnum((unsigned char)tag[0]) || tag[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)tag[i]) && !strchr("._-", tag[i]))
            return false;
    return true;
}

static bool digest_valid(const char *d)
{
    if (strncmp(d, "sha256:", 7) || strlen(d) != 71)
        return false;
    for (const char *p = d + 7; *p; p++)
        if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
            return false;
    return true;
}

void cellar_oci_ref_clear(cellar_oci_ref *r)
{
    free(r->host);
    free(r->repo);
    free(r->tag);
    free(r->digest);
    memset(r, 0, sizeof *r);
}

int cellar_oci_ref_parse(cellar_oci_ref *out, const char *s)
{
    memset(out, 0, sizeof *out);
    const char *in = s;
    if (!strncmp(s, "oci://", 6))
        s += 6;
    const char *slash = strchr(s, '/');
    RETURN_ERROR_IF(!slash || slash == s, CELLAR_EINVAL,
                    "'%s': not a registry reference (oci://HOST[:PORT]/REPO[:TAG|@DIGEST])", in);
    for (const char *p = s; p < slash; p++)
        RETURN_ERROR_IF(!isalnum((unsigned char)*p) && !strchr(".-:[]", *p), CELLAR_EINVAL,
                        "'%s': the registry host holds '%c'", in, *p);
    out->host = cellar_strndup(s, (size_t)(slash - s));
    char *rest = cellar_strdup(slash + 1);
    if (!out->host || !rest) {
        free(rest);
        cellar_oci_ref_clear(out);
        return CELLAR_ENOMEM;
    }
    int rc = 0;
    char *at = strchr(rest, '@');
    if (at) {
        *at = '\0';
        if (!digest_valid(at + 1))
            rc = cellar_fail(CELLAR_EINVAL, "'%s': a digest is sha256:<64 lower-case hex>", in);
        else
            out->digest = cellar_strdup(at + 1);
    }
    char *colon = strrchr(rest, ':');
    if (!rc && colon && !strchr(colon, '/')) {
        *colon = '\0';
        if (!cellar_oci_tag_valid(colon + 1))
            rc = cellar_fail(CELLAR_EINVAL, "'%s': '%s' is not a valid tag", in, colon + 1);
        else
            out->tag = cellar_strdup(colon + 1);
    }
    if (!rc && !repo_valid(rest))
        rc = cellar_fail(CELLAR_EINVAL,
                         "'%s': repository '%s' must be lower-case [a-z0-9._-] components", in,
                         rest);
    if (!rc)
        out->repo = rest;
    else
        free(rest);
    if (rc)
        cellar_oci_ref_clear(out);
    return rc;
}

/* ---- client ---- */

static void wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

int cellar_reg_open(cellar_reg **out, const char *host, bool plain_http, const char *userpass)
{
    *out = NULL;
    cellar_reg *r = cellar_calloc(1, sizeof *r);
    if (!r)
        return CELLAR_ENOMEM;
    int rc = CELLAR_ENOMEM;
    r->host = cellar_strdup(host);
    r->base = cellar_sprintf("%s://%s", plain_http ? "http" : "https", host);
    if (!r->host || !r->base)
        goto fail;
    if (userpass && *userpass) {
        const char *colon = strchr(userpass, ':');
        if (!colon) {
            rc = cellar_fail(CELLAR_EINVAL, "registry credentials are USER:PASSWORD");
            goto fail;
        }
        r->user = cellar_strndup(userpass, (size_t)(colon - userpass));
        char *enc = cellar_base64(userpass, strlen(userpass));
        r->basic = enc ? cellar_sprintf("Authorization: Basic %s", enc) : NULL;
        wipe_free(enc);
        if (!r->user || !r->basic)
            goto fail;
    }
    rc = cellar_http_new(&r->http, r->base, NULL);
    if (rc)
        goto fail;
    *out = r;
    return 0;
fail:
    cellar_reg_free(r);
    return rc;
}

void cellar_reg_free(cellar_reg *r)
{
    if (!r)
        return;
    cellar_http_free(r->http);
    free(r->base);
    free(r->host);
    free(r->user);
    wipe_free(r->basic);
    wipe_free(r->auth_line);
    free(r->realm);
    free(r->service);
    free(r->scope);
    free(r);
}

int cellar_reg_http_clone(cellar_http **out, const cellar_reg *r)
{
    int rc = cellar_http_new(out, r->base, NULL);
    if (!rc && r->auth_line)
        rc = cellar_http_set_auth(*out, r->auth_line);
    if (rc) {
        cellar_http_free(*out);
        *out = NULL;
    }
    return rc;
}

static int set_auth(cellar_reg *r, const char *line)
{
    char *copy = NULL;
    if (line && !(copy = cellar_strdup(line)))
        return CELLAR_ENOMEM;
    int rc = cellar_http_set_auth(r->http, line);
    if (rc) {
        wipe_free(copy);
        return rc;
    }
    wipe_free(r->auth_line);
    r->auth_line = copy;
    return 0;
}

/* ---- errors ---- */

static const char *status_phrase(long status)
{
    switch (status) {
    case 400: return "bad request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 413: return "too large";
    case 416: return "range not satisfiable";
    case 429: return "too many requests";
    default: return status >= 500 ? "server error" : "unexpected answer";
    }
}

/* Printable copy of at most cap-1 bytes of s. */
static void clean(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    dst[n] = '\0';
}

int cellar_reg_status_error(const cellar_reg *r, const cellar_http_resp *resp,
                            const cellar_buf *body, const char *repo, const char *what)
{
    char code[64] = "", msg[256] = "";
    if (body && body->len) {
        cellar_json_doc *doc = NULL;
        if (cellar_json_parse(&doc, body->data, body->len, 16, "registry error", NULL) == 0) {
            const cellar_json *e = cellar_json_at(cellar_json_getz(cellar_json_root(doc),
                                                                   "errors"), 0);
            const cellar_json *c = cellar_json_getz(e, "code");
            const cellar_json *m = cellar_json_getz(e, "message");
            if (cellar_json_is(c, CELLAR_JSON_STRING))
                clean(code, sizeof code, c->u.str, c->len);
            if (cellar_json_is(m, CELLAR_JSON_STRING))
                clean(msg, sizeof msg, m->u.str, m->len);
        }
        cellar_json_free(doc);
        cellar_error_clear();
    }
    int err = CELLAR_ENET;
    if (resp->status == 401 || resp->status == 403 || !strcmp(code, "UNAUTHORIZED") ||
        !strcmp(code, "DENIED"))
        err = CELLAR_EAUTH;
    else if (resp->status == 404 || !strcmp(code, "BLOB_UNKNOWN") ||
             !strcmp(code, "MANIFEST_UNKNOWN") || !strcmp(code, "NAME_UNKNOWN"))
        err = CELLAR_ENOTFOUND;
    else if (!strcmp(code, "DIGEST_INVALID") || !strcmp(code, "SIZE_INVALID"))
        err = CELLAR_EMISMATCH;
    else if (!strcmp(code, "MANIFEST_INVALID") || !strcmp(code, "MANIFEST_BLOB_UNKNOWN") ||
             !strcmp(code, "NAME_INVALID"))
        err = CELLAR_EFORMAT;
    const char *hint = "";
    if (err == CELLAR_EAUTH)
        hint = r->user ? " (check the user and password)"
                       : " (give credentials: --user USER:PASS, CELLAR_REGISTRY_AUTH or docker "
                         "login)";
    if (code[0])
        return cellar_fail(err, "registry %s: %s%s%s: %s%s%s%s%s", r->host, repo ? repo : "",
                           what ? " " : "", what ? what : "", code, msg[0] ? " (" : "", msg,
                           msg[0] ? ")" : "", hint);
    return cellar_fail(err, "registry %s: %s%s%s: HTTP %ld %s%s", r->host, repo ? repo : "",
                       what ? " " : "", what ? what : "", resp->status,
                       status_phrase(resp->status), hint);
}

/* ---- auth ---- */

/* The value of param in a challenge (key="value" or key=value, comma
 * separated); allocated, NULL if absent. */
static char *challenge_param(const char *h, const char *param)
{
    size_t plen = strlen(param);
    const char *p = h;
    while ((p = strcasestr(p, param))) {
        bool start = p == h || p[-1] == ' ' || p[-1] == ',' || p[-1] == '\t';
        const char *q = p + plen;
        while (*q == ' ')
            q++;
        if (!start || *q != '=') {
            p += plen;
            continue;
        }
        q++;
        while (*q == ' ')
            q++;
        if (*q == '"') {
            const char *e = strchr(q + 1, '"');
            return e ? cellar_strndup(q + 1, (size_t)(e - q - 1)) : NULL;
        }
        size_t n = strcspn(q, ", ");
        return cellar_strndup(q, n);
    }
    return NULL;
}

static bool has_scheme(const char *url)
{
    return !strncasecmp(url, "https://", 8) || !strncasecmp(url, "http://", 7);
}

/* GET realm?service=&scope=... with the user's credentials (to the realm's
 * origin only): the token becomes the Authorization. */
static int fetch_token(cellar_reg *r, const char *scope)
{
    RETURN_ERROR_IF(!r->realm || !has_scheme(r->realm), CELLAR_EAUTH,
                    "registry %s: the token realm is not an http(s) URL", r->host);
    RETURN_ERROR_IF(!strncasecmp(r->base, "https://", 8) && strncasecmp(r->realm, "https://", 8),
                    CELLAR_EAUTH,
                    "registry %s: refusing to send credentials to a plain-http token realm",
                    r->host);
    cellar_buf url;
    cellar_buf_init(&url, 64 << 10);
    int rc = cellar_buf_printf(&url, "%s", r->realm);
    char sep = strchr(r->realm, '?') ? '&' : '?';
    if (!rc && r->service) {
        char *e = cellar_http_escape(r->service, false);
        rc = e ? cellar_buf_printf(&url, "%cservice=%s", sep, e) : CELLAR_ENOMEM;
        sep = '&';
        free(e);
    }
    /* One scope parameter per resource. */
    for (const char *s = scope; !rc && s && *s;) {
        size_t n = strcspn(s, " ");
        char *one = cellar_strndup(s, n);
        char *e = one ? cellar_http_escape(one, false) : NULL;
        rc = e ? cellar_buf_printf(&url, "%cscope=%s", sep, e) : CELLAR_ENOMEM;
        sep = '&';
        free(one);
        free(e);
        s += n;
        while (*s == ' ')
            s++;
    }
    if (rc) {
        cellar_buf_free(&url);
        return rc;
    }
    cellar_http_req_opts o = {.auth = r->basic, .error_body = true};
    cellar_http_resp resp;
    cellar_buf body;
    rc = cellar_http_fetch_req(r->http, &resp, &body, url.data, &o, 1u << 20);
    r->requests++;
    cellar_buf_free(&url);
    if (rc) {
        cellar_fail_prefix("registry %s: token request", r->host);
        goto done;
    }
    if (resp.status == 401 || resp.status == 403) {
        if (r->user)
            rc = cellar_fail(CELLAR_EAUTH,
                             "registry %s: the token server refused user '%s' (wrong password?)",
                             r->host, r->user);
        else
            rc = cellar_fail(CELLAR_EAUTH,
                             "registry %s: the token server wants credentials (--user USER:PASS, "
                             "CELLAR_REGISTRY_AUTH or docker login)", r->host);
        goto done;
    }
    if (resp.status != 200) {
        rc = cellar_fail(CELLAR_EAUTH, "registry %s: the token server answered HTTP %ld", r->host,
                         resp.status);
        goto done;
    }
    cellar_json_doc *doc = NULL;
    rc = cellar_json_parse(&doc, body.data, body.len, 8, "token answer", NULL);
    if (!rc) {
        const cellar_json *root = cellar_json_root(doc);
        const cellar_json *t = cellar_json_getz(root, "token");
        if (!cellar_json_is(t, CELLAR_JSON_STRING) || !t->len)
            t = cellar_json_getz(root, "access_token");
        if (!cellar_json_is(t, CELLAR_JSON_STRING) || !t->len ||
            strlen(t->u.str) != t->len || strpbrk(t->u.str, "\r\n ")) {
            rc = cellar_fail(CELLAR_EAUTH, "registry %s: the token answer holds no usable token",
                             r->host);
        } else {
            char *line = cellar_sprintf("Authorization: Bearer %s", t->u.str);
            rc = line ? set_auth(r, line) : CELLAR_ENOMEM;
            wipe_free(line);
            free(r->scope);
            r->scope = scope ? cellar_strdup(scope) : NULL;
        }
    } else {
        rc = cellar_fail(CELLAR_EAUTH, "registry %s: the token answer is not JSON", r->host);
    }
    if (body.data)
        memset(body.data, 0, body.len);
    cellar_json_free(doc);
done:
    cellar_http_resp_release(&resp);
    cellar_buf_free(&body);
    return rc;
}

/* A 401: take the challenge. 0 means "send again". */
static int take_challenge(cellar_reg *r, const cellar_http_resp *resp, const char *scope,
                          bool retried)
{
    const char *h = resp->www_authenticate;
    if (!strncasecmp(h, "Basic", 5)) {
        if (!r->basic)
            return cellar_fail(CELLAR_EAUTH,
                               "registry %s asks for a user and password: give --user "
                               "USER:PASS, CELLAR_REGISTRY_AUTH or docker login", r->host);
        if (r->auth_line && !strcmp(r->auth_line, r->basic))
            return cellar_fail(CELLAR_EAUTH,
                               "registry %s refused user '%s' (wrong password?)", r->host,
                               r->user);
        return set_auth(r, r->basic);
    }
    if (!strncasecmp(h, "Bearer", 6)) {
        char *realm = challenge_param(h + 6, "realm");
        char *service = challenge_param(h + 6, "service");
        char *cscope = challenge_param(h + 6, "scope");
        r->bearer = true;
        free(r->realm);
        free(r->service);
        r->realm = realm;
        r->service = service;
        int rc;
        if (retried && r->scope) {
            rc = cellar_fail(CELLAR_EAUTH, "registry %s refused the token for %s%s%s%s",
                             r->host, r->scope, r->user ? " (user '" : " (anonymous: give "
                             "--user USER:PASS, CELLAR_REGISTRY_AUTH or docker login",
                             r->user ? r->user : "", r->user ? "' has no access?)" : ")");
        } else {
            rc = fetch_token(r, scope ? scope : cscope);
        }
        free(cscope);
        return rc;
    }
    return cellar_fail(CELLAR_EAUTH, "registry %s: HTTP 401 without a usable challenge",
                       r->host);
}

int cellar_reg_reauthorize(cellar_reg *r)
{
    if (!r->bearer)
        return cellar_fail(CELLAR_EAUTH, "registry %s refused the credentials", r->host);
    char *scope = r->scope ? cellar_strdup(r->scope) : NULL;
    int rc = r->scope && !scope ? CELLAR_ENOMEM : fetch_token(r, scope);
    free(scope);
    return rc;
}

int cellar_reg_authorize(cellar_reg *r, const char *scope)
{
    if (!r->bearer || !scope)
        return 0;
    if (r->scope && !strcmp(r->scope, scope))
        return 0;
    return fetch_token(r, scope);
}

/* One request with auth and retries: 401 -> challenge (once), 429/5xx and
 * transport failures -> backoff. The caller releases resp and body (also
 * on error). */
static int reg_do(cellar_reg *r, const char *url, const cellar_http_req_opts *o0,
                  cellar_http_resp *resp, cellar_buf *body, size_t limit, const char *scope)
{
    cellar_http_req_opts o = o0 ? *o0 : (cellar_http_req_opts){0};
    o.error_body = true;
    int rc = cellar_reg_authorize(r, scope);
    if (rc)
        return rc;
    bool challenged = false;
    memset(resp, 0, sizeof *resp);
    cellar_buf_init(body, limit);
    for (unsigned attempt = 1;; attempt++) {
        rc = cellar_http_fetch_req(r->http, resp, body, url, &o, limit);
        r->requests++;
        if (rc && rc != CELLAR_ENET)
            return rc;
        if (resp->status == 401 && !rc) {
            if (challenged && !r->bearer)
                return take_challenge(r, resp, scope, true);
            rc = take_challenge(r, resp, scope, challenged);
            if (rc)
                return rc;
            challenged = true;
        } else if (cellar_hub_retryable(rc, resp) && attempt < CELLAR_HUB_ATTEMPTS) {
            unsigned ms = cellar_hub_backoff_ms(attempt, rc ? NULL : resp);
            struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        } else {
            return rc;
        }
        cellar_http_resp_release(resp);
        cellar_buf_free(body);
        cellar_buf_init(body, limit);
    }
}

static char *scope_of(const char *repo, const char *actions)
{
    return cellar_sprintf("repository:%s:%s", repo, actions);
}

int cellar_reg_ping(cellar_reg *r)
{
    char *url = cellar_sprintf("%s/v2/", r->base);
    if (!url)
        return CELLAR_ENOMEM;
    cellar_http_resp resp;
    cellar_buf body;
    int rc = reg_do(r, url, NULL, &resp, &body, ERROR_BODY_LIMIT, NULL);
    if (!rc && resp.status == 401 && r->bearer)
        rc = 0; /* a token is fetched per scope later */
    else if (!rc && resp.status != 200)
        rc = cellar_reg_status_error(r, &resp, &body, NULL, "/v2/");
    else if (rc)
        cellar_fail_prefix("registry %s", r->host);
    cellar_http_resp_release(&resp);
    cellar_buf_free(&body);
    free(url);
    return rc;
}

/* ---- blobs ---- */

char *cellar_reg_blob_url(const cellar_reg *r, const char *repo, const char *digest)
{
    return cellar_sprintf("%s/v2/%s/blobs/%s", r->base, repo, digest);
}

int cellar_reg_blob_exists(cellar_reg *r, const char *repo, const char *digest, uint64_t *size)
{
    char *url = cellar_reg_blob_url(r, repo, digest);
    char *scope = scope_of(repo, "pull");
    if (!url || !scope) {
        free(url);
        free(scope);
        return CELLAR_ENOMEM;
    }
    cellar_http_req_opts o = {.method = "HEAD"};
    cellar_http_resp resp;
    cellar_buf body;
    int rc = reg_do(r, url, &o, &resp, &body, ERROR_BODY_LIMIT, r->scope ? r->scope : scope);
    if (!rc) {
        if (resp.status == 200) {
            rc = 1;
            if (size)
                *size = resp.content_length >= 0 ? (uint64_t)resp.content_length : 0;
        } else if (resp.status == 404) {
            rc = 0;
        } else {
            rc = cellar_reg_status_error(r, &resp, &body, repo, digest);
        }
    }
    cellar_http_resp_release(&resp);
    cellar_buf_free(&body);
    free(url);
    free(scope);
    return rc;
}

/* url + "?digest=" or "&digest=" (a Location may already carry a query). */
static char *with_digest(const char *url, const char *digest)
{
    char *e = cellar_http_escape(digest, false);
    char *out = e ? cellar_sprintf("%s%cdigest=%s", url, strchr(url, '?') ? '&' : '?', e) : NULL;
    free(e);
    return out;
}

/* The Location of an upload answer, resolved against the request's URL. */
static char *upload_location(cellar_reg *r, const cellar_http_resp *resp, const char *req_url,
                             const char *repo)
{
    if (!resp->location[0]) {
        cellar_fail(CELLAR_ENET, "registry %s: %s: the upload answer names no Location", r->host,
                    repo);
        return NULL;
    }
    return cellar_http_resolve(req_url, resp->location);
}

/* The chunks of [0, size), each a PATCH on the newest Location. */
static int upload_chunks(cellar_reg *r, const char *repo, char **loc, int fd, uint64_t size,
                         uint64_t chunk, const char *scope)
{
    for (uint64_t off = 0; off < size;) {
        uint64_t n = size - off < chunk ? size - off : chunk;
        char cr[80];
        snprintf(cr, sizeof cr, "Content-Range: %llu-%llu", (unsigned long long)off,
                 (unsigned long long)(off + n - 1));
        const char *hdrs[] = {cr, "Content-Type: application/octet-stream", NULL};
        cellar_http_req_opts o = {.method = "PATCH", .headers = hdrs, .body_from_fd = true,
                                  .body_fd = fd, .body_off = off, .body_len = n,
                                  .sent = r->sent, .sent_ctx = r->sent_ctx};
        cellar_http_resp resp;
        cellar_buf body;
        int rc = reg_do(r, *loc, &o, &resp, &body, ERROR_BODY_LIMIT, scope);
        if (!rc && resp.status != 202 && resp.status != 204)
            rc = cellar_reg_status_error(r, &resp, &body, repo, "chunk upload");
        if (!rc) {
            char *next = upload_location(r, &resp, *loc, repo);
            if (!next)
                rc = cellar_error_code();
            else {
                free(*loc);
                *loc = next;
            }
        }
        cellar_http_resp_release(&resp);
        cellar_buf_free(&body);
        if (rc)
            return rc;
        off += n;
    }
    return 0;
}

int cellar_reg_blob_push(cellar_reg *r, const char *repo, const char *digest, int fd,
                         uint64_t size, const char *mount_from, uint64_t chunk, int *how)
{
    if (how)
        *how = CELLAR_REG_HAD;
    RETURN_ERROR_IF(!digest_valid(digest), CELLAR_EINVAL, "'%s': not a sha256 digest", digest);
    char *scope = mount_from && strcmp(mount_from, repo)
                      ? cellar_sprintf("repository:%s:pull,push repository:%s:pull", repo,
                                       mount_from)
                      : scope_of(repo, "pull,push");
    if (!scope)
        return CELLAR_ENOMEM;
    int rc = cellar_reg_authorize(r, scope);
    if (!rc && (r->scope == NULL || !strcmp(r->scope, scope)))
        rc = cellar_reg_blob_exists(r, repo, digest, NULL);
    if (rc == 1) {
        free(scope);
        return 0;
    }
    char *post = NULL, *loc = NULL, *put = NULL;
    if (rc < 0)
        goto done;
    if (mount_from && strcmp(mount_from, repo)) {
        char *d = cellar_http_escape(digest, false), *f = cellar_http_escape(mount_from, true);
        post = d && f ? cellar_sprintf("%s/v2/%s/blobs/uploads/?mount=%s&from=%s", r->base, repo,
                                       d, f)
                      : NULL;
        free(d);
        free(f);
    } else {
        post = cellar_sprintf("%s/v2/%s/blobs/uploads/", r->base, repo);
    }
    rc = CELLAR_ENOMEM;
    if (!post)
        goto done;
    cellar_http_req_opts o = {.method = "POST"};
    cellar_http_resp resp;
    cellar_buf body;
    rc = reg_do(r, post, &o, &resp, &body, ERROR_BODY_LIMIT, scope);
    if (!rc && resp.status == 201) {
        if (how)
            *how = CELLAR_REG_MOUNTED;
    } else if (!rc && resp.status == 202) {
        loc = upload_location(r, &resp, post, repo);
        if (!loc)
            rc = cellar_error_code();
    } else if (!rc) {
        rc = cellar_reg_status_error(r, &resp, &body, repo, "upload");
    }
    cellar_http_resp_release(&resp);
    cellar_buf_free(&body);
    if (rc || !loc)
        goto done;
    uint64_t put_len = size;
    if (chunk && size > 0) {
        rc = upload_chunks(r, repo, &loc, fd, size, chunk, scope);
        if (rc)
            goto done;
        put_len = 0;
    }
    put = with_digest(loc, digest);
    rc = CELLAR_ENOMEM;
    if (!put)
        goto done;
    const char *hdrs[] = {"Content-Type: application/octet-stream", NULL};
    cellar_http_req_opts po = {.method = "PUT", .headers = hdrs, .body_from_fd = put_len > 0,
                               .body_fd = fd, .body_len = put_len, .sent = r->sent,
                               .sent_ctx = r->sent_ctx};
    rc = reg_do(r, put, &po, &resp, &body, ERROR_BODY_LIMIT, scope);
    if (!rc && resp.status != 201 && resp.status != 204)
        rc = cellar_reg_status_error(r, &resp, &body, repo, digest);
    if (!rc && resp.content_digest[0] && strcmp(resp.content_digest, digest))
        rc = cellar_fail(CELLAR_EMISMATCH, "registry %s: %s: uploaded %s, the registry made %s",
                         r->host, repo, digest, resp.content_digest);
    if (!rc && how)
        *how = CELLAR_REG_UPLOADED;
    cellar_http_resp_release(&resp);
    cellar_buf_free(&body);
done:
    free(scope);
    free(post);
    free(loc);
    free(put);
    return rc;
}

static void sha256_of(char out[72], const void *data, size_t len)
{
    cellar_hasher *h = NULL;
    cellar_digests d;
    out[0] = '\0';
    if (cellar_hasher_new(&h, CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256), len))
        return;
    cellar_hasher_update(h, data, len);
    if (cellar_hasher_final(&d, h) == 0) {
        memcpy(out, "sha256:", 7);
        cellar_hex(out + 7, d.d[CELLAR_ALGO_SHA256], 32);
    }
    cellar_hasher_free(h);
}

int cellar_reg_blob_fetch(cellar_reg *r, const char *repo, const char *digest, cellar_buf *out,
                          size_t limit)
{
    char *url = cellar_reg_blob_url(r, repo, digest);
    char *scope = scope_of(repo, "pull");
    int rc = CELLAR_ENOMEM;
    cellar_http_resp resp;
    memset(&resp, 0, sizeof resp);
    cellar_buf_init(out, limit);
    if (url && scope) {
        rc = reg_do(r, url, NULL, &resp, out, limit, r->scope ? r->scope : scope);
        if (!rc && resp.status != 200)
            rc = cellar_reg_status_error(r, &resp, out, repo, digest);
    }
    if (!rc) {
        char got[72];
        sha256_of(got, out->data, out->len);
        if (strcmp(got, digest))
            rc = cellar_fail(CELLAR_EMISMATCH, "registry %s: %s: blob %s holds bytes of %s",
                             r->host, repo, digest, got);
    }
    if (rc) {
        cellar_buf_free(out);
        cellar_buf_init(out, limit);
    }
    cellar_http_resp_release(&resp);
    free(url);
    free(scope);
    return rc;
}

/* ---- manifests and tags ---- */

int cellar_reg_manifest_put(cellar_reg *r, const char *repo, const char *ref,
                            const char *media_type, const void *data, size_t len,
                            char digest_out[72])
{
    char digest[72];
    sha256_of(digest, data, len);
    RETURN_ERROR_IF(!digest[0], CELLAR_ENOMEM, "out of memory hashing a manifest");
    char *url = cellar_sprintf("%s/v2/%s/manifests/%s", r->base, repo, ref);
    char *ct = cellar_sprintf("Content-Type: %s", media_type);
    char *scope = scope_of(repo, "pull,push");
    int rc = CELLAR_ENOMEM;
    cellar_http_resp resp;
    cellar_buf body;
    memset(&resp, 0, sizeof resp);
    cellar_buf_init(&body, 0);
    if (url && ct && scope) {
        const char *hdrs[] = {ct, NULL};
        cellar_http_req_opts o = {.method = "PUT", .headers = hdrs, .body = data,
                                  .body_len = len};
        rc = reg_do(r, url, &o, &resp, &body, ERROR_BODY_LIMIT,
                    r->scope && strstr(r->scope, "push") ? r->scope : scope);
        if (!rc && resp.status != 201 && resp.status != 200)
            rc = cellar_reg_status_error(r, &resp, &body, repo, "manifest");
        if (!rc && resp.content_digest[0] && strcmp(resp.content_digest, digest))
            rc = cellar_fail(CELLAR_EFORMAT, "registry %s: %s: the manifest's digest is %s, the "
                             "registry says %s", r->host, repo, digest, resp.content_digest);
    }
    if (!rc && digest_out)
        memcpy(digest_out, digest, 72);
    cellar_http_resp_release(&resp);
    cellar_buf_free(&body);
    free(url);
    free(ct);
    free(scope);
    return rc;
}

int cellar_reg_manifest_get(cellar_reg *r, const char *repo, const char *ref, cellar_buf *out,
                            char digest_out[72])
{
    char *url = cellar_sprintf("%s/v2/%s/manifests/%s", r->base, repo, ref);
    char *scope = scope_of(repo, "pull");
    const char *hdrs[] = {"Accept: " CELLAR_OCI_MANIFEST_TYPE ", " CELLAR_OCI_INDEX_TYPE
                          ", application/vnd.docker.distribution.manifest.v2+json",
                          NULL};
    cellar_http_req_opts o = {.headers = hdrs};
    cellar_http_resp resp;
    memset(&resp, 0, sizeof resp);
    cellar_buf_init(out, CELLAR_OCI_MANIFEST_MAX);
    int rc = CELLAR_ENOMEM;
    if (url && scope) {
        rc = reg_do(r, url, &o, &resp, out, CELLAR_OCI_MANIFEST_MAX,
                    r->scope ? r->scope : scope);
        if (!rc && resp.status != 200)
            rc = cellar_reg_status_error(r, &resp, out, repo, ref);
        else if (rc == CELLAR_ERANGE)
            cellar_fail_prefix("registry %s: %s: manifest %s", r->host, repo, ref);
    }
    if (!rc) {
        char got[72];
        sha256_of(got, out->data, out->len);
        const char *want = !strncmp(ref, "sha256:", 7) ? ref
                           : resp.content_digest[0]    ? resp.content_digest
                                                       : NULL;
        if (want && strcmp(got, want))
            rc = cellar_fail(CELLAR_EMISMATCH, "registry %s: %s: manifest %s: its bytes hash to "
                             "%s, not %s", r->host, repo, ref, got, want);
        else
            memcpy(digest_out, got, 72);
    }
    if (rc) {
        cellar_buf_free(out);
        cellar_buf_init(out, 0);
    }
    cellar_http_resp_release(&resp);
    free(url);
    free(scope);
    return rc;
}

int cellar_reg_tags(cellar_reg *r, const char *repo, char ***tags, size_t *n)
{
    *tags = NULL;
    *n = 0;
    size_t cap = 0;
    char *url = cellar_sprintf("%s/v2/%s/tags/list?n=1000", r->base, repo);
    char *scope = scope_of(repo, "pull");
    int rc = url && scope ? 0 : CELLAR_ENOMEM;
    for (unsigned page = 0; !rc && url; page++) {
        if (page >= MAX_TAG_PAGES) {
            rc = cellar_fail(CELLAR_EFORMAT, "registry %s: %s: more than %u tag pages", r->host,
                             repo, MAX_TAG_PAGES);
            break;
        }
        cellar_http_resp resp;
        cellar_buf body;
        rc = reg_do(r, url, NULL, &resp, &body, TAGS_PAGE_LIMIT, r->scope ? r->scope : scope);
        if (!rc && resp.status != 200)
            rc = cellar_reg_status_error(r, &resp, &body, repo, "tags");
        cellar_json_doc *doc = NULL;
        if (!rc)
            rc = cellar_json_parse(&doc, body.data, body.len, 8, "tag list", NULL);
        const cellar_json *list = doc ? cellar_json_getz(cellar_json_root(doc), "tags") : NULL;
        for (uint32_t i = 0; !rc && cellar_json_is(list, CELLAR_JSON_ARRAY) && i < list->count;
             i++) {
            const cellar_json *t = &list->u.items[i];
            if (!cellar_json_is(t, CELLAR_JSON_STRING))
                continue;
            rc = cellar_grow(tags, &cap, *n + 1, sizeof **tags, 16);
            if (!rc && !((*tags)[*n] = cellar_strdup(t->u.str)))
                rc = CELLAR_ENOMEM;
            if (!rc)
                (*n)++;
        }
        cellar_json_free(doc);
        char *next = !rc && resp.link_next ? cellar_http_resolve(url, resp.link_next) : NULL;
        cellar_http_resp_release(&resp);
        cellar_buf_free(&body);
        free(url);
        url = next;
    }
    free(url);
    free(scope);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            free((*tags)[i]);
        free(*tags);
        *tags = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- credentials ---- */

/* Runs docker-credential-<helper> get with host on stdin; the JSON answer
 * (at most 64 KiB) in *out. */
static int run_helper(cellar_buf *out, const char *helper, const char *host)
{
    cellar_buf_init(out, 64 << 10);
    for (const char *p = helper; *p; p++)
        RETURN_ERROR_IF(!isalnum((unsigned char)*p) && !strchr("-_.", *p), CELLAR_EFORMAT,
                        "credential helper name '%s' is not a plain name", helper);
    char *prog = cellar_sprintf("docker-credential-%s", helper);
    if (!prog)
        return CELLAR_ENOMEM;
    int in[2], outp[2];
    if (pipe2(in, O_CLOEXEC)) {
        int e = cellar_fail_errno(errno, "pipe for %s", prog);
        free(prog);
        return e;
    }
    if (pipe2(outp, O_CLOEXEC)) {
        int e = cellar_fail_errno(errno, "pipe for %s", prog);
        close(in[0]), close(in[1]);
        free(prog);
        return e;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(in[0]), close(in[1]), close(outp[0]), close(outp[1]);
        free(prog);
        return cellar_fail_errno(e, "fork for a credential helper");
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(outp[1], 1);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2);
        execlp(prog, prog, "get", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    cellar_full_write(in[1], host, strlen(host));
    close(in[1]);
    signal(SIGPIPE, old);
    char buf[4096];
    int rc = 0;
    for (;;) {
        ssize_t n = read(outp[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (!rc)
            rc = cellar_buf_append(out, buf, (size_t)n);
    }
    close(outp[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!rc && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        rc = cellar_fail(WIFEXITED(status) && WEXITSTATUS(status) == 127 ? CELLAR_ENOTFOUND
                                                                         : CELLAR_EAUTH,
                         "%s get failed for %s (exit %d)", prog, host,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    else if (rc == CELLAR_ERANGE)
        rc = cellar_fail(CELLAR_EFORMAT, "%s: answer too long", prog);
    free(prog);
    return rc;
}

int cellar_reg_docker_creds(char **userpass, const char *config_dir, const char *host)
{
    *userpass = NULL;
    if (!config_dir)
        return 0;
    char *path = cellar_path_join(config_dir, "config.json");
    if (!path)
        return CELLAR_ENOMEM;
    char *data = NULL;
    size_t len = 0;
    int rc = cellar_read_file(&data, &len, path, 4u << 20);
    if (rc == CELLAR_ENOTFOUND) {
        cellar_error_clear();
        free(path);
        return 0;
    }
    cellar_json_doc *doc = NULL;
    if (!rc)
        rc = cellar_json_parse(&doc, data, len, 16, path, NULL);
    if (rc)
        goto done;
    const cellar_json *root = cellar_json_root(doc);
    const cellar_json *helpers = cellar_json_getz(root, "credHelpers");
    const cellar_json *helper = cellar_json_getz(helpers, host);
    if (!cellar_json_is(helper, CELLAR_JSON_STRING)) {
        /* An explicit "auths" entry wins over the default store. */
        const cellar_json *a = cellar_json_getz(cellar_json_getz(root, "auths"), host);
        if (!a) {
            char *h2 = cellar_sprintf("https://%s", host);
            a = h2 ? cellar_json_getz(cellar_json_getz(root, "auths"), h2) : NULL;
            free(h2);
        }
        const cellar_json *enc = cellar_json_getz(a, "auth");
        if (cellar_json_is(enc, CELLAR_JSON_STRING) && enc->len) {
            char *dec = NULL;
            size_t dlen;
            if (!cellar_unbase64(&dec, &dlen, enc->u.str, enc->len) || !strchr(dec, ':') ||
                strlen(dec) != dlen)
                rc = cellar_fail(CELLAR_EFORMAT, "%s: auths.%s.auth is not base64 of "
                                 "user:password", path, host);
            else
                *userpass = dec, dec = NULL;
            wipe_free(dec);
            goto done;
        }
        helper = cellar_json_getz(root, "credsStore");
        if (!cellar_json_is(helper, CELLAR_JSON_STRING) || !helper->len)
            goto done;
    }
    cellar_buf out;
    rc = run_helper(&out, helper->u.str, host);
    if (!rc) {
        cellar_json_doc *ans = NULL;
        rc = cellar_json_parse(&ans, out.data, out.len, 8, "credential helper answer", NULL);
        if (!rc) {
            const cellar_json *u = cellar_json_getz(cellar_json_root(ans), "Username");
            const cellar_json *sec = cellar_json_getz(cellar_json_root(ans), "Secret");
            if (cellar_json_is(u, CELLAR_JSON_STRING) && cellar_json_is(sec, CELLAR_JSON_STRING))
                *userpass = cellar_sprintf("%s:%s", u->u.str, sec->u.str);
            else
                rc = cellar_fail(CELLAR_EFORMAT, "credential helper %s: no Username/Secret",
                                 helper->u.str);
        }
        cellar_json_free(ans);
    } else if (rc == CELLAR_ENOTFOUND) {
        rc = 0; /* helper not installed: anonymous */
        cellar_error_clear();
    }
    if (out.data)
        memset(out.data, 0, out.len);
    cellar_buf_free(&out);
done:
    if (data)
        memset(data, 0, len);
    free(data);
    cellar_json_free(doc);
    free(path);
    return rc;
}
