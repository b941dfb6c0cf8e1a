/* HTTP client for the Hub: many transfers at once on one event loop.
 *
 * src/net/http_curl.c implements it over libcurl's multi interface and is the
 * only file that includes curl.h. Redirects are followed here, by hand, so
 * the rule of HUB.md holds by construction: the Authorization header goes
 * only to the endpoint's own origin (scheme, host and port), never to a host
 * a redirect leads to (the CDN). The token is never put into a message. */
#ifndef CELLAR_HTTP_H
#define CELLAR_HTTP_H

#include "util.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct cellar_http cellar_http;
typedef struct cellar_http_req cellar_http_req;

/* What the server answered. Headers that matter to a Hub download are kept
 * from the FIRST answer that carries them (the Hub's 302 names the commit
 * and the LFS sha256; the CDN after it does not); status, lengths, ranges
 * and Retry-After describe the LAST answer. */
typedef struct cellar_http_resp {
    long status;              /* 0: no answer (transport failure) */
    char repo_commit[64];     /* X-Repo-Commit */
    char etag[96];            /* ETag, quotes and W/ removed */
    char linked_etag[96];     /* X-Linked-Etag, quotes removed */
    int64_t linked_size;      /* X-Linked-Size, -1 if absent */
    int64_t content_length;   /* -1 if absent */
    int64_t range_start;      /* first byte of a 206's Content-Range, -1 if none */
    long retry_after;         /* Retry-After in seconds, -1 if absent */
    char error_code[64];      /* X-Error-Code (RepoNotFound, EntryNotFound...) */
    char error_message[256];  /* X-Error-Message */
    char *link_next;          /* Link: <url>; rel="next" (owned), NULL if none */
    int redirects;            /* redirects followed */
    /* OCI registries (oci_registry.c), all of the LAST answer, "" if absent: */
    char location[2048];         /* Location of an answer not followed (201/202) */
    char content_digest[80];     /* Docker-Content-Digest */
    char www_authenticate[1024]; /* WWW-Authenticate */
    char range[64];              /* Range (upload progress: "0-N") */
    char content_type[128];      /* Content-Type */
} cellar_http_resp;

/* Body bytes of a 2xx answer (bodies of redirects and errors are not
 * passed). resp is complete (headers of this answer all seen). Return 0 to
 * go on, or a negative CELLAR_E* code (with the message set) to stop the
 * transfer; the done callback then receives that code. */
typedef int (*cellar_http_write_fn)(void *ud, const cellar_http_resp *resp, const void *data,
                                    size_t len);
/* A transfer ended. rc: 0 if an HTTP answer arrived (whatever its status:
 * look at resp->status), CELLAR_ENET for a transport failure (message set:
 * the URL and the reason), or the write callback's code. resp and the
 * request are freed after the call. The callback may start new requests. */
typedef void (*cellar_http_done_fn)(void *ud, const cellar_http_resp *resp, int rc);

/* endpoint: the base URL whose origin may receive the token; token may be
 * NULL. Both copied. */
int cellar_http_new(cellar_http **out, const char *endpoint, const char *token);
void cellar_http_free(cellar_http *h);

/* Starts GET url; with range_from > 0 or range_to > 0, asks for bytes
 * [range_from, range_to) (range_to 0: to the end). ud is handed to both
 * callbacks; write may be NULL (body discarded). */
int cellar_http_start(cellar_http *h, const char *url, uint64_t range_from, uint64_t range_to,
                      cellar_http_write_fn write, cellar_http_done_fn done, void *ud);
/* Runs every started transfer (and the ones callbacks start) to the end. */
int cellar_http_run(cellar_http *h);
/* One turn of the loop: moves data, calls the callbacks of transfers that
 * ended, then waits up to wait_ms for activity. For callers that also keep
 * timers (retries after a delay). */
int cellar_http_step(cellar_http *h, int wait_ms);

/* One GET with the body (2xx or not) gathered in *body, at most limit
 * bytes (CELLAR_ERANGE past it). rc as for the done callback; *resp is the
 * caller's to release with cellar_http_resp_release(). Runs the loop, so
 * call it while no other transfer is active. */
int cellar_http_fetch(cellar_http *h, cellar_http_resp *resp, cellar_buf *body, const char *url,
                      size_t limit);
void cellar_http_resp_release(cellar_http_resp *resp);

/* ---- requests other than GET (OCI registries, oci_registry.c) ---- */

/* How to send one request. A zeroed struct is a plain GET. */
typedef struct cellar_http_req_opts {
    const char *method;          /* NULL: GET; "HEAD", "PUT", "POST", "PATCH", "DELETE" */
    const char *const *headers;  /* extra "Name: value" lines, NULL-terminated, or NULL */
    /* A whole "Authorization: ..." line used instead of the client's (see
     * cellar_http_new), sent only while the URL has the origin of url (not
     * after a redirect to another host). NULL: the client's rule. */
    const char *auth;
    /* The body (PUT, POST and PATCH always send one, maybe empty): body_len
     * bytes from memory at body, or, with body_from_fd, read from body_fd
     * at body_off (pread: the offset of the descriptor is not moved). */
    const void *body;
    uint64_t body_len;
    bool body_from_fd;
    int body_fd;
    uint64_t body_off;
    uint64_t range_from, range_to; /* as for cellar_http_start */
    bool error_body;              /* pass the bodies of non-2xx answers to write too */
    /* Called after each piece of the body is read, with body_off plus the
     * bytes read so far. Non-zero stops the transfer, which then ends with
     * that code if negative, else CELLAR_EUSER (not an ENET: not retried). */
    int (*sent)(uint64_t upto, void *ctx);
    void *sent_ctx;
} cellar_http_req_opts;

/* cellar_http_start with a method, headers and a body. o may be NULL. */
int cellar_http_request(cellar_http *h, const char *url, const cellar_http_req_opts *o,
                        cellar_http_write_fn write, cellar_http_done_fn done, void *ud);
/* cellar_http_fetch for any request: the body of the answer (2xx or, with
 * o->error_body, not) gathered in *body, at most limit bytes. */
int cellar_http_fetch_req(cellar_http *h, cellar_http_resp *resp, cellar_buf *body,
                          const char *url, const cellar_http_req_opts *o, size_t limit);
/* Replaces the client's Authorization line (a whole "Authorization: ..."
 * header; NULL: none), still sent only to the endpoint's origin. Copied;
 * the old one is wiped. CELLAR_EINVAL for a line break inside. */
int cellar_http_set_auth(cellar_http *h, const char *auth_line);
/* location resolved against base (relative or absolute); allocated, NULL
 * (error set) if unusable. */
char *cellar_http_resolve(const char *base, const char *location);

/* Percent-encodes s for one URL path segment (slashes encoded too when
 * keep_slash is false); allocated. */
char *cellar_http_escape(const char *s, bool keep_slash);

#endif
