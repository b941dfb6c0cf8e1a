/* The Hub module's checks on what a server sends and on repo names, and
 * the retry policy, without a network. */
#include "hub.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void test_paths(void)
{
    static const char *const good[] = {"a", "model.safetensors", "unet/config.json", "a/b/c.d",
                                       ".gitattributes", "x/.hidden", "..a", "a..", "a/...b"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK_MSG(cellar_hub_path_safe(good[i], strlen(good[i])), "%s", good[i]);
    static const char *const bad[] = {"", "/etc/passwd", "../x", "a/../../x", "a/..", "..",
                                      ".", "./a", "a/./b", "a//b", "a/", "dir\\win.txt",
                                      "tab\there", "del\x7f", ".git/config", "a/.ssh/id",
                                      "..a/b", ".x/y"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(!cellar_hub_path_safe(bad[i], strlen(bad[i])), "%s", bad[i]);
    /* A NUL inside a JSON string: the length says there is more. */
    CHECK(!cellar_hub_path_safe("nul\0byte", 8));
    CHECK(cellar_hub_path_safe("nul\0byte", 3));
}

static void test_repos(void)
{
    CHECK(cellar_hub_check_repo("stabilityai/stable-diffusion-2-1") == 0);
    CHECK(cellar_hub_check_repo("org/name.v2_x") == 0);
    CHECK_ERR(cellar_hub_check_repo("justname"), CELLAR_EINVAL, "ORG/NAME");
    CHECK_ERR(cellar_hub_check_repo("a/b/c"), CELLAR_EINVAL, "ORG/NAME");
    CHECK_ERR(cellar_hub_check_repo("../etc"), CELLAR_EINVAL, "ORG/NAME");
    CHECK_ERR(cellar_hub_check_repo("org/.git"), CELLAR_EINVAL, "ORG/NAME");
    CHECK_ERR(cellar_hub_check_repo("org/"), CELLAR_EINVAL, "ORG/NAME");
    CHECK_ERR(cellar_hub_check_repo("o rg/n"), CELLAR_EINVAL, "ORG/NAME");
}

static void test_retry_policy(void)
{
    cellar_http_resp r = {0};
    r.retry_after = -1;
    r.status = 429;
    CHECK(cellar_hub_retryable(0, &r));
    r.status = 503;
    CHECK(cellar_hub_retryable(0, &r));
    CHECK(cellar_hub_retryable(CELLAR_ENET, &r));
    r.status = 404;
    CHECK(!cellar_hub_retryable(0, &r));
    r.status = 403;
    CHECK(!cellar_hub_retryable(0, &r));
    CHECK(!cellar_hub_retryable(CELLAR_EMISMATCH, &r));
    CHECK(cellar_hub_backoff_ms(1, &r) == 250);
    CHECK(cellar_hub_backoff_ms(2, NULL) == 500);
    CHECK(cellar_hub_backoff_ms(20, NULL) == 8000);
    r.retry_after = 3;
    CHECK(cellar_hub_backoff_ms(1, &r) == 3000);
    r.retry_after = 100000;
    CHECK(cellar_hub_backoff_ms(1, &r) == 60000);
}

static void test_errors(void)
{
    cellar_hub *hub = NULL;
    CHECK(cellar_hub_open(&hub, "http://127.0.0.1:9/", "") == 0);
    if (!hub)
        return;
    CHECK_STR(hub->endpoint, "http://127.0.0.1:9");
    cellar_http_resp r = {0};
    r.status = 401;
    CHECK_ERR(cellar_hub_status_error(hub, &r, "o/n", "main", NULL), CELLAR_EAUTH,
              "o/n: 401 Unauthorized: the repo is gated or private; pass a token");
    r.status = 404;
    snprintf(r.error_code, sizeof r.error_code, "RevisionNotFound");
    CHECK_ERR(cellar_hub_status_error(hub, &r, "o/n", "v9", NULL), CELLAR_ENOTFOUND,
              "o/n: revision 'v9' not found");
    snprintf(r.error_code, sizeof r.error_code, "EntryNotFound");
    CHECK_ERR(cellar_hub_status_error(hub, &r, "o/n", "main", "a.bin"), CELLAR_ENOTFOUND,
              "o/n: file 'a.bin' not found at revision 'main'");
    snprintf(r.error_code, sizeof r.error_code, "RepoNotFound");
    CHECK_ERR(cellar_hub_status_error(hub, &r, "o/n", "main", "a.bin"), CELLAR_ENOTFOUND,
              "o/n: repository not found");
    char *url = cellar_hub_file_url(hub, "o/n", "0123", "dir/a b#.bin");
    CHECK(url && !strcmp(url, "http://127.0.0.1:9/o/n/resolve/0123/dir/a%20b%23.bin"));
    free(url);
    cellar_hub_free(hub);

    /* The token goes into a header: a line break would forge others. */
    CHECK_ERR(cellar_hub_open(&hub, "http://127.0.0.1:9", "abc\r\nX-Evil: 1"), CELLAR_EINVAL,
              "line break");
}

static int parse(cellar_hub_listing *l, const char *json)
{
    return cellar_hub_parse_tree(l, json, strlen(json), "o/n");
}

#define SHA "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\""
#define OID "\"0123456789abcdef0123456789abcdef01234567\""

static void test_listing(void)
{
    cellar_hub_listing *l = calloc(1, sizeof *l);
    CHECK(parse(l, "[{\"type\":\"directory\",\"path\":\"unet\",\"oid\":" OID ",\"size\":0},"
                   "{\"type\":\"file\",\"path\":\"unet/w.safetensors\",\"oid\":" OID
                   ",\"size\":135,\"lfs\":{\"oid\":" SHA ",\"size\":7,\"pointerSize\":135}},"
                   "{\"type\":\"file\",\"path\":\"a\",\"oid\":" OID ",\"size\":3}]") == 0);
    CHECK(l->n == 2);
    if (l->n == 2) {
        /* An LFS file's size is the content's, not the pointer's. */
        CHECK(l->files[0].lfs && l->files[0].size == 7 && l->files[0].sha256[0] == 0x01);
        CHECK(!l->files[1].lfs && l->files[1].size == 3 && l->files[1].gitsha1[19] == 0x67);
    }
    CHECK(cellar_hub_listing_check(l, "o/n") == 0);
    /* "a-b" sorts between "a" and "a/b" bytewise: the check must still
     * see that "a" is a file and a folder. */
    CHECK(parse(l, "[{\"type\":\"file\",\"path\":\"a-b\",\"oid\":" OID ",\"size\":1},"
                   "{\"type\":\"file\",\"path\":\"a/b\",\"oid\":" OID ",\"size\":1}]") == 0);
    CHECK_ERR(cellar_hub_listing_check(l, "o/n"), CELLAR_EFORMAT,
              "o/n: the server listed 'a' both as a file and as the folder of 'a/b'");
    cellar_hub_listing_free(l);

    l = calloc(1, sizeof *l);
    CHECK(parse(l, "[{\"type\":\"file\",\"path\":\"x.json\",\"oid\":" OID ",\"size\":1},"
                   "{\"type\":\"file\",\"path\":\"x.json\",\"oid\":" OID ",\"size\":2}]") == 0);
    CHECK_ERR(cellar_hub_listing_check(l, "o/n"), CELLAR_EFORMAT,
              "o/n: the server listed 'x.json' twice");
    CHECK_ERR(parse(l, "[{\"type\":\"file\",\"path\":\"../x\",\"oid\":" OID ",\"size\":1}]"),
              CELLAR_EFORMAT, "unsafe path \"../x\"");
    CHECK_ERR(parse(l, "[{\"type\":\"file\",\"path\":\"w\",\"size\":1,\"lfs\":{\"size\":1}}]"),
              CELLAR_EFORMAT, "o/n: w: LFS entry without a sha256 oid");
    CHECK_ERR(parse(l, "[{\"type\":\"file\",\"path\":\"w\",\"oid\":" OID ",\"size\":-1}]"),
              CELLAR_EFORMAT, "o/n: w: entry without a valid size");
    CHECK_ERR(parse(l, "{\"path\":\"w\"}"), CELLAR_EFORMAT, "not a JSON array");
    CHECK(l->n == 2);
    cellar_hub_listing_free(l);
}

/* A one-answer HTTP server on 127.0.0.1: reads a request, sends answer. */
struct one_shot {
    int fd;
    char answer[512];
};

static void *serve_one(void *arg)
{
    struct one_shot *o = arg;
    int c = accept(o->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char req[4096];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof req - 1 && (n = read(c, req + got, sizeof req - 1 - got)) > 0) {
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    if (write(c, o->answer, strlen(o->answer)) < 0)
        perror("write");
    close(c);
    return NULL;
}

/* Fetches one URL from a server that gives answer; *r and *hub are the
 * caller's to release. */
static void fetch_answer(cellar_hub **hub, cellar_http_resp *r, const char *answer)
{
    struct one_shot o;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    memset(r, 0, sizeof *r);
    *hub = NULL;
    o.fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(o.fd >= 0 && bind(o.fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(o.fd, 1) == 0 &&
          getsockname(o.fd, (struct sockaddr *)&a, &alen) == 0);
    snprintf(o.answer, sizeof o.answer, "%s", answer);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, serve_one, &o) == 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", (unsigned)ntohs(a.sin_port));
    CHECK(cellar_hub_open(hub, url, "") == 0);
    cellar_buf body;
    CHECK(*hub && cellar_http_fetch((*hub)->http, r, &body, url, 1024) == 0);
    cellar_buf_free(&body);
    pthread_join(t, NULL);
    close(o.fd);
}

/* Retry-After as an HTTP-date (RFC 9110 allows it) is the seconds left. */
static void test_retry_after_date(void)
{
    time_t when = time(NULL) + 30;
    struct tm tm;
    gmtime_r(&when, &tm);
    char date[64], answer[512];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(answer, sizeof answer,
             "HTTP/1.1 429 Too Many Requests\r\nRetry-After: %s\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n",
             date);
    cellar_hub *hub;
    cellar_http_resp r;
    fetch_answer(&hub, &r, answer);
    CHECK(r.status == 429);
    /* 30 s from when the answer was made; a slow run only shortens it. */
    CHECK_MSG(r.retry_after >= 15 && r.retry_after <= 30, "retry_after %ld", r.retry_after);
    CHECK(cellar_hub_backoff_ms(1, &r) == (unsigned)r.retry_after * 1000u);
    cellar_http_resp_release(&r);
    cellar_hub_free(hub);
}

/* A server's error text reaches the user's terminal: no escape sequences. */
static void test_error_text_sanitized(void)
{
    cellar_hub *hub;
    cellar_http_resp r;
    fetch_answer(&hub, &r,
                 "HTTP/1.1 500 Oops\r\nX-Error-Message: bad \x1b]0;owned\x07 \x1b[2Jthing\r\n"
                 "Content-Length: 0\r\nConnection: close\r\n\r\n");
    CHECK(r.status == 500);
    if (hub)
        CHECK_ERR(cellar_hub_status_error(hub, &r, "o/n", "main", NULL), CELLAR_ENET,
                  "o/n: the server answered 500: bad ?]0;owned? ?[2Jthing");
    cellar_http_resp_release(&r);
    cellar_hub_free(hub);
}

int main(void)
{
    test_retry_after_date();
    test_error_text_sanitized();
    test_listing();
    test_paths();
    test_repos();
    test_retry_policy();
    test_errors();
    return test_summary();
}
