/* The library's environment reads happen only in the cellar_*_from_env()
 * helpers, each in huggingface_hub's (or cellar's documented) order, and
 * nowhere else: pull options keep what the caller set. */
#include "testutil.h"

#include "cellar.h"

#include <stdio.h>
#include <stdlib.h>

static void clear_env(void)
{
    static const char *const vars[] = {"CELLAR_HOME", "XDG_CACHE_HOME", "HF_HUB_CACHE",
                                       "HUGGINGFACE_HUB_CACHE", "HF_HOME", "HF_ENDPOINT",
                                       "HF_TOKEN", "HF_HUB_OFFLINE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    setenv("HOME", "/h", 1);
}

static void check_path(int (*fn)(char **), const char *want)
{
    char *got = NULL;
    CHECK(fn(&got) == 0);
    CHECK_STR(got ? got : "(null)", want);
    cellar_free(got);
}

static void test_store_home(void)
{
    clear_env();
    check_path(cellar_store_home_from_env, "/h/.cache/cellar");
    setenv("XDG_CACHE_HOME", "/x", 1);
    check_path(cellar_store_home_from_env, "/x/cellar");
    setenv("CELLAR_HOME", "/c", 1);
    check_path(cellar_store_home_from_env, "/c");
    setenv("CELLAR_HOME", "", 1); /* empty: unset */
    check_path(cellar_store_home_from_env, "/x/cellar");
}

static void test_hf_cache(void)
{
    clear_env();
    check_path(cellar_hf_cache_from_env, "/h/.cache/huggingface/hub");
    setenv("XDG_CACHE_HOME", "/x", 1);
    check_path(cellar_hf_cache_from_env, "/x/huggingface/hub");
    setenv("HF_HOME", "/hf", 1);
    check_path(cellar_hf_cache_from_env, "/hf/hub");
    setenv("HUGGINGFACE_HUB_CACHE", "/old", 1);
    check_path(cellar_hf_cache_from_env, "/old");
    setenv("HF_HUB_CACHE", "/new", 1);
    check_path(cellar_hf_cache_from_env, "/new");
}

static void test_pull(void)
{
    clear_env();
    cellar_pull_opts o = CELLAR_PULL_OPTS_INIT;
    CHECK(cellar_pull_opts_from_env(&o) == 0);
    CHECK(!o.endpoint && !o.token && !o.offline);
    setenv("HF_ENDPOINT", "http://127.0.0.1:1", 1);
    setenv("HF_TOKEN", "hf_env", 1);
    static const struct {
        const char *v;
        int offline;
    } offline[] = {{"1", 1}, {"true", 1}, {"ON", 1}, {"Yes", 1}, {"0", 0}, {"no", 0}, {"", 0}};
    for (size_t i = 0; i < sizeof offline / sizeof offline[0]; i++) {
        setenv("HF_HUB_OFFLINE", offline[i].v, 1);
        o = (cellar_pull_opts)CELLAR_PULL_OPTS_INIT;
        o.token = "hf_caller"; /* what the caller set stays */
        CHECK(cellar_pull_opts_from_env(&o) == 0);
        CHECK_STR(o.endpoint, "http://127.0.0.1:1");
        CHECK_STR(o.token, "hf_caller");
        CHECK_MSG(o.offline == offline[i].offline, "HF_HUB_OFFLINE=%s", offline[i].v);
    }
    /* A pull itself reads nothing: offline stays as the caller set it even
     * with HF_HUB_OFFLINE=1 (checked in cli_pull through the CLI). */
    o.version = 0;
    CHECK_ERR(cellar_pull_opts_from_env(&o), CELLAR_EINVAL, "CELLAR_PULL_OPTS_INIT");
}

static void test_version(void)
{
    CHECK(cellar_version_number() == CELLAR_VERSION_NUMBER);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", CELLAR_VERSION_MAJOR, CELLAR_VERSION_MINOR,
             CELLAR_VERSION_PATCH);
    CHECK_STR(cellar_version(), want);
    /* sizeof stays put as algorithms are added */
    CHECK(CELLAR_ALGO__COUNT <= CELLAR_DIGEST_SLOTS);
    CHECK(sizeof(cellar_digests) == 16 + CELLAR_DIGEST_SLOTS * CELLAR_DIGEST_MAX);
    cellar_digests d = {0};
    d.have = CELLAR_ALGO_BIT(CELLAR_ALGO_MD5);
    CHECK(cellar_digest_get(&d, CELLAR_ALGO_MD5) != NULL);
    CHECK(cellar_digest_get(&d, CELLAR_ALGO_SHA256) == NULL);
    CHECK(cellar_digest_get(&d, (cellar_algo)99) == NULL);
    /* dtype values are ABI: pinned */
    CHECK(CELLAR_DTYPE_BOOL == 0 && CELLAR_DTYPE_BF16 == 14 && CELLAR_DTYPE_U64 == 21);
}

int main(void)
{
    test_version();
    test_store_home();
    test_hf_cache();
    test_pull();
    return test_summary();
}
