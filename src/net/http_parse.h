/* The pure parsers of HTTP answer headers and URLs for messages: no curl,
 * no I/O, so they are unit-tested (tests/test_http_parse.c) and fuzzed
 * (fuzz/fuzz_http_headers.c) alone. http_curl.c feeds them the lines. */
#ifndef CELLAR_HTTP_PARSE_H
#define CELLAR_HTTP_PARSE_H

#include "http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Copies a header value, trimmed, quotes and a weak-validator prefix
 * removed when unquote, into dst (cap > 0, always terminated). Control
 * bytes become '?': values end up in messages on the user's terminal. */
void http_copy_value(char *dst, size_t cap, const char *v, size_t n, bool unquote);
/* A decimal value of n bytes; -1 if not one (or over 2^63-1). */
int64_t http_parse_i64(const char *v, size_t n);
/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3, the three
 * date formats of 5.6.7); a date becomes the seconds left after now, 0 if
 * past. -1 if neither. */
long http_parse_retry_after(const char *v, size_t n, time_t now);
/* The URL of the first link with rel "next" (quoted or not, alone or among
 * other relation types) in a Link value; allocated, NULL if none. */
char *http_parse_link_next(const char *v, size_t n);
/* One header line of an answer (not a status line) into resp: the fields
 * of cellar_http_resp, and *location (replaced, allocated) for Location.
 * Returns 0, or CELLAR_ENOMEM. */
int http_parse_field(cellar_http_resp *resp, char **location, const char *line, size_t n,
                     time_t now);
/* url as it may appear in a message: scheme, host, port and path only (no
 * user info, query or fragment: a CDN's signed query grants access to a
 * gated file until it expires). Control bytes become '?'. Allocated; NULL
 * on ENOMEM. */
char *http_url_for_message(const char *url);

#endif
