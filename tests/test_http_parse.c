/* The curl-free HTTP header parsers (src/net/http_parse.c): Link, Retry-After,
 * sizes, Content-Range, Location, and URLs as messages show them. */
#include "http_parse.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static void check_link(const char *value, const char *want)
{
    char *got = http_parse_link_next(value, strlen(value));
    if (want)
        CHECK_MSG(got && !strcmp(got, want), "Link: %s -> %s, want %s", value,
                  got ? got : "(none)", want);
    else
        CHECK_MSG(!got, "Link: %s -> %s, want none", value, got);
    free(got);
}

static void test_link(void)
{
    check_link("<https://h/p?cursor=2>; rel=\"next\"", "https://h/p?cursor=2");
    /* The audit's bug: an unquoted rel=next at the very end never matched. */
    check_link("<https://h/p?cursor=2>; rel=next", "https://h/p?cursor=2");
    check_link("<https://h/p?cursor=2>;rel=next", "https://h/p?cursor=2");
    check_link("<https://h/a>; rel=\"prev\", <https://h/b>; rel=next", "https://h/b");
    check_link("<https://h/a>; rel=prev, <https://h/b>; rel=\"next\"", "https://h/b");
    check_link("<https://h/a>; rel=\"prev next\"", "https://h/a");
    check_link("<https://h/a>; REL=NEXT", "https://h/a");
    check_link("<https://h/a>; title=\"rel=next, x\"; rel=prev", NULL);
    check_link("<https://h/a>; rel=nextpage", NULL);
    check_link("<https://h/a>; rel=\"prev\"", NULL);
    check_link("<https://h/a>; rel=", NULL);
    check_link("<https://h/a", NULL);
    check_link("", NULL);
    check_link("<https://h/a\x1b[2J>; rel=next", "https://h/a?[2J");
}

static void test_numbers(void)
{
    CHECK(http_parse_i64("123", 3) == 123);
    CHECK(http_parse_i64(" 123\r\n", 6) == -1); /* values come trimmed at the front */
    CHECK(http_parse_i64("123\r\n", 5) == 123);
    CHECK(http_parse_i64("12a", 3) == -1);
    CHECK(http_parse_i64("-1", 2) == -1);
    CHECK(http_parse_i64("9223372036854775807", 19) == INT64_MAX);
    CHECK(http_parse_i64("9223372036854775808", 19) == -1);
    CHECK(http_parse_i64("", 0) == -1);
    time_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    CHECK(http_parse_retry_after("5", 1, now) == 5);
    const char *d = "Sun, 06 Nov 1994 08:49:47 GMT";
    CHECK(http_parse_retry_after(d, strlen(d), now) == 10);
    d = "Sunday, 06-Nov-94 08:49:57 GMT";
    CHECK(http_parse_retry_after(d, strlen(d), now) == 20);
    d = "Sun Nov  6 08:50:37 1994";
    CHECK(http_parse_retry_after(d, strlen(d), now) == 60);
    d = "Sun, 06 Nov 1994 08:49:00 GMT";
    CHECK(http_parse_retry_after(d, strlen(d), now) == 0);
    CHECK(http_parse_retry_after("soon", 4, now) == -1);
}

static void field(cellar_http_resp *r, char **loc, const char *line)
{
    CHECK(http_parse_field(r, loc, line, strlen(line), 0) == 0);
}

static void test_fields(void)
{
    cellar_http_resp r;
    memset(&r, 0, sizeof r);
    r.linked_size = r.content_length = r.range_start = r.retry_after = -1;
    char *loc = NULL;
    field(&r, &loc, "X-Repo-Commit: abc\r\n");
    field(&r, &loc, "x-repo-commit: second\r\n"); /* the first one stays */
    CHECK_STR(r.repo_commit, "abc");
    field(&r, &loc, "ETag: W/\"e1\"\r\n");
    CHECK_STR(r.etag, "e1");
    field(&r, &loc, "X-Linked-Size: 1234\r\n");
    CHECK(r.linked_size == 1234);
    field(&r, &loc, "Content-Range: bytes 100-199/200\r\n");
    CHECK(r.range_start == 100);
    field(&r, &loc, "Content-Range: bytes */200\r\n");
    CHECK(r.range_start == -1);
    field(&r, &loc, "Location: https://cdn/x?sig=1\r\n");
    CHECK(loc && !strcmp(loc, "https://cdn/x?sig=1"));
    field(&r, &loc, "Location: /y\x1b\r\n");
    CHECK(loc && !strcmp(loc, "/y?"));
    field(&r, &loc, "X-Error-Message: bad\x07thing\r\n");
    CHECK_STR(r.error_message, "bad?thing");
    field(&r, &loc, "Link: <https://h/n>; rel=next\r\n");
    CHECK(r.link_next && !strcmp(r.link_next, "https://h/n"));
    field(&r, &loc, "no colon here\r\n");
    free(loc);
    cellar_http_resp_release(&r);
}

static void check_url(const char *url, const char *want)
{
    char *got = http_url_for_message(url);
    CHECK_MSG(got && !strcmp(got, want), "%s -> %s, want %s", url, got ? got : "(null)", want);
    free(got);
}

static void test_urls(void)
{
    check_url("https://cdn-lfs.hf.co/repos/ab/cd/x?X-Amz-Signature=secret&Expires=1",
              "https://cdn-lfs.hf.co/repos/ab/cd/x");
    check_url("https://user:pw@host:8443/p#frag", "https://host:8443/p");
    check_url("http://host?q=1", "http://host");
    check_url("http://host", "http://host");
    check_url("/relative?x=1", "/relative");
    check_url("http://h/a\x1b[2J?x", "http://h/a?[2J");
    /* A "://" after a query is no scheme: the query is still cut (the
     * fuzzer's find). */
    check_url("x?secret=1&u=https://h/p", "x");
    check_url("1http://h/p?q", "1http://h/p");
}

int main(void)
{
    test_link();
    test_numbers();
    test_fields();
    test_urls();
    return test_summary();
}
