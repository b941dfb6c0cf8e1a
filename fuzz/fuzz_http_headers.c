/* libFuzzer target: HTTP answer header lines from a hostile server (the
 * Hub, a CDN), through the parsers http_curl.c feeds them to. Every string
 * kept is terminated and free of control bytes (they reach messages);
 * URLs for messages never keep a query. */
#include "http_parse.h"

#include "fuzz.h"

static void no_control(const char *s)
{
    for (; *s; s++)
        REQUIRE((unsigned char)*s >= 0x20 && *s != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cellar_http_resp r;
    memset(&r, 0, sizeof r);
    r.linked_size = r.content_length = r.range_start = r.retry_after = -1;
    char *loc = NULL;
    /* Lines split at '\n', as libcurl hands them over (with the newline). */
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        size_t end = i < size ? i + 1 : i;
        if (end > start) {
            int rc = http_parse_field(&r, &loc, (const char *)data + start, end - start, 0);
            REQUIRE(rc == 0 || rc == CELLAR_ENOMEM);
        }
        start = end;
    }
    no_control(r.repo_commit);
    no_control(r.etag);
    no_control(r.linked_etag);
    no_control(r.error_code);
    no_control(r.error_message);
    if (loc)
        no_control(loc);
    if (r.link_next)
        no_control(r.link_next);
    REQUIRE(r.range_start >= -1 && r.content_length >= -1 && r.linked_size >= -1);
    /* The whole input as a URL for a message. */
    char *url = malloc(size + 1);
    if (url) {
        memcpy(url, data, size);
        url[size] = '\0';
        char *shown = http_url_for_message(url);
        if (shown) {
            no_control(shown);
            /* Nothing from the query or fragment on. */
            size_t keep = strcspn(url, "?#");
            REQUIRE(strlen(shown) <= keep);
            free(shown);
        }
        free(url);
    }
    free(loc);
    cellar_http_resp_release(&r);
    return 0;
}
