/* Pure HTTP header and URL parsing (http_parse.h). */
#include "http_parse.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void http_copy_value(char *dst, size_t cap, const char *v, size_t n, bool unquote)
{
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (unquote) {
        if (n >= 2 && v[0] == 'W' && v[1] == '/') {
            v += 2;
            n -= 2;
        }
        if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
            v++;
            n -= 2;
        }
    }
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
    dst[n] = '\0';
}

int64_t http_parse_i64(const char *v, size_t n)
{
    char tmp[32];
    http_copy_value(tmp, sizeof tmp, v, n, false);
    if (!isdigit((unsigned char)tmp[0]))
        return -1;
    int64_t x = 0;
    for (const char *p = tmp; *p; p++) {
        if (!isdigit((unsigned char)*p) || __builtin_mul_overflow(x, 10, &x) ||
            __builtin_add_overflow(x, *p - '0', &x))
            return -1;
    }
    return x;
}

long http_parse_retry_after(const char *v, size_t n, time_t now)
{
    int64_t secs = http_parse_i64(v, n);
    if (secs >= 0)
        return secs > LONG_MAX ? LONG_MAX : (long)secs;
    char tmp[64];
    http_copy_value(tmp, sizeof tmp, v, n, false);
    /* IMF-fixdate, the obsolete RFC 850 form, and asctime's. */
    static const char *const forms[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                        "%a %b %e %H:%M:%S %Y"};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(tmp, forms[i], &tm);
        if (!end || *end)
            continue;
        time_t when = timegm(&tm);
        if (when == (time_t)-1)
            return -1;
        if (when <= now)
            return 0;
        int64_t d = (int64_t)when - (int64_t)now;
        return d > LONG_MAX ? LONG_MAX : (long)d;
    }
    return -1;
}

/* Does a link's parameters [p, end) say rel="next" (RFC 8288 3.3: rel is
 * one relation type or several separated by spaces, quoted or a token)? */
static bool rel_has_next(const char *p, const char *end)
{
    while (p < end) {
        while (p < end && (*p == ';' || *p == ' ' || *p == '\t'))
            p++;
        const char *name = p;
        while (p < end && *p != '=' && *p != ';')
            p++;
        size_t nlen = (size_t)(p - name);
        while (nlen && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
            nlen--;
        const char *val = NULL, *vend = NULL;
        if (p < end && *p == '=') {
            p++;
            while (p < end && (*p == ' ' || *p == '\t'))
                p++;
            if (p < end && *p == '"') {
                val = ++p;
                while (p < end && *p != '"')
                    p++;
                vend = p;
                if (p < end)
                    p++;
            } else {
                val = p;
                while (p < end && *p != ';' && *p != ' ' && *p != '\t')
                    p++;
                vend = p;
            }
        }
        while (p < end && *p != ';')
            p++;
        if (nlen == 3 && !strncasecmp(name, "rel", 3) && val) {
            /* Space-separated relation types. */
            const char *t = val;
            while (t < vend) {
                while (t < vend && (*t == ' ' || *t == '\t'))
                    t++;
                const char *te = t;
                while (te < vend && *te != ' ' && *te != '\t')
                    te++;
                if (te - t == 4 && !strncasecmp(t, "next", 4))
                    return true;
                t = te;
            }
            return false; /* the first rel counts (RFC 8288 3.3) */
        }
    }
    return false;
}

char *http_parse_link_next(const char *v, size_t n)
{
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    const char *end = v + n;
    while (v < end) {
        const char *lt = memchr(v, '<', (size_t)(end - v));
        if (!lt)
            return NULL;
        const char *gt = memchr(lt, '>', (size_t)(end - lt));
        if (!gt)
            return NULL;
        /* The link's parameters end at a comma outside quotes. */
        const char *stop = gt + 1;
        bool quoted = false;
        while (stop < end && (quoted || *stop != ',')) {
            if (*stop == '"')
                quoted = !quoted;
            stop++;
        }
        if (rel_has_next(gt + 1, stop)) {
            size_t len = (size_t)(gt - lt - 1);
            char *url = cellar_malloc(len + 1);
            if (url)
                http_copy_value(url, len + 1, lt + 1, len, false);
            return url;
        }
        v = stop < end ? stop + 1 : end;
    }
    return NULL;
}

int http_parse_field(cellar_http_resp *s, char **location, const char *line, size_t n, time_t now)
{
    const char *colon = memchr(line, ':', n);
    if (!colon)
        return 0;
    size_t klen = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vlen = n - klen - 1;
    while (vlen && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
#define IS(name) (klen == sizeof(name) - 1 && !strncasecmp(line, name, klen))
    if (IS("x-repo-commit") && !s->repo_commit[0])
        http_copy_value(s->repo_commit, sizeof s->repo_commit, v, vlen, true);
    else if (IS("etag") && !s->etag[0])
        http_copy_value(s->etag, sizeof s->etag, v, vlen, true);
    else if (IS("x-linked-etag") && !s->linked_etag[0])
        http_copy_value(s->linked_etag, sizeof s->linked_etag, v, vlen, true);
    else if (IS("x-linked-size") && s->linked_size < 0)
        s->linked_size = http_parse_i64(v, vlen);
    else if (IS("content-length"))
        s->content_length = http_parse_i64(v, vlen);
    else if (IS("retry-after"))
        s->retry_after = http_parse_retry_after(v, vlen, now);
    else if (IS("x-error-code"))
        http_copy_value(s->error_code, sizeof s->error_code, v, vlen, false);
    else if (IS("x-error-message"))
        http_copy_value(s->error_message, sizeof s->error_message, v, vlen, false);
    else if (IS("content-range")) {
        char tmp[96];
        http_copy_value(tmp, sizeof tmp, v, vlen, false);
        s->range_start = -1;
        if (!strncasecmp(tmp, "bytes ", 6) && isdigit((unsigned char)tmp[6])) {
            size_t d = strspn(tmp + 6, "0123456789");
            s->range_start = http_parse_i64(tmp + 6, d);
        }
    } else if (IS("location")) {
        char *loc = cellar_malloc(vlen + 1);
        if (!loc)
            return CELLAR_ENOMEM;
        http_copy_value(loc, vlen + 1, v, vlen, false);
        free(*location);
        *location = loc;
    } else if (IS("link") && !s->link_next) {
        s->link_next = http_parse_link_next(v, vlen);
    } else if (IS("docker-content-digest")) { /* OCI registries (oci_registry.c) */
        http_copy_value(s->content_digest, sizeof s->content_digest, v, vlen, false);
    } else if (IS("www-authenticate") && !s->www_authenticate[0]) {
        http_copy_value(s->www_authenticate, sizeof s->www_authenticate, v, vlen, false);
    } else if (IS("range")) {
        http_copy_value(s->range, sizeof s->range, v, vlen, false);
    } else if (IS("content-type")) {
        http_copy_value(s->content_type, sizeof s->content_type, v, vlen, false);
    }
#undef IS
    return 0;
}

char *http_url_for_message(const char *url)
{
    size_t n = strlen(url);
    char *out = cellar_malloc(n + 1);
    if (!out)
        return NULL;
    /* A scheme is letters, digits, '+', '-', '.' from the start (RFC 3986
     * 3.1): a "://" after anything else (a query, say) is not one. */
    size_t slen = 0;
    if (isalpha((unsigned char)url[0]))
        slen = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
    const char *p = url, *rest = slen && !strncmp(url + slen, "://", 3) ? url + slen : NULL;
    size_t o = 0;
    if (rest) {
        /* scheme:// then the authority without user info. */
        rest += 3;
        memcpy(out, url, (size_t)(rest - url));
        o = (size_t)(rest - url);
        size_t alen = strcspn(rest, "/?#");
        const char *at = memchr(rest, '@', alen);
        const char *host = at ? at + 1 : rest;
        memcpy(out + o, host, (size_t)(rest + alen - host));
        o += (size_t)(rest + alen - host);
        p = rest + alen;
    }
    size_t plen = strcspn(p, "?#");
    memcpy(out + o, p, plen);
    o += plen;
    out[o] = '\0';
    for (size_t i = 0; i < o; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            out[i] = '?';
    return out;
}
