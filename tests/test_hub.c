/* The Hub module's checks on what a server sends and on repo names, and
 * the retry policy, without a network. */
#include "hub.h"
#include "testutil.h"

static void test_paths(void)
{
    static const char *const good[] = {"a", "model.safetensors", "unet/config.json", "a/b/c.d",
                                       ".gitattributes", "x/.hidden", "..a", "a..", "a/...b"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK_MSG(cellar_hub_path_safe(good[i], strlen(good[i])), "%s", good[i]);
    static const char *const bad[] = {"", "/etc/passwd", "../x", "a/../../x", "a/..", "..",
                                      ".", "./a", "a/./b", "a//b", "a/", "dir\\win.txt",
                                      "tab\there", "del\x7f"};
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

int main(void)
{
    test_paths();
    test_repos();
    test_retry_policy();
    test_errors();
    return test_summary();
}
