/* A minimal test harness: CHECK() records a failure and goes on; the test's
 * main returns test_summary(), printing "N passed, N failed". A part that
 * cannot run here calls test_skip(): with no failure the test then exits
 * TEST_SKIPPED, which CTest reports as a skip (SKIP_RETURN_CODE), not a
 * pass. */
#ifndef CELLAR_TESTUTIL_H
#define CELLAR_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed, test_failed, test_skipped;

/* CTest's SKIP_RETURN_CODE for every test (CMakeLists.txt). */
#define TEST_SKIPPED 77

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            test_passed++;                                                                         \
        } else {                                                                                   \
            test_failed++;                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);              \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (cond) {                                                                                \
            test_passed++;                                                                         \
        } else {                                                                                   \
            test_failed++;                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    CHECK_MSG(strcmp((a), (b)) == 0, "\"%s\" != \"%s\"", (a), (b))

/* An error code and a message that contains needle. */
#define CHECK_ERR(rc, code, needle)                                                                \
    CHECK_MSG((rc) == (code) && strstr(cellar_error_last(), (needle)) != NULL,                     \
              "rc=%d (want %d), message \"%s\" (want \"%s\")", (rc), (code),                      \
              cellar_error_last(), (needle))

/* Records that a part of the test did not run, and why. */
#define test_skip(...)                                                                             \
    do {                                                                                           \
        test_skipped++;                                                                            \
        printf("SKIPPED: ");                                                                       \
        printf(__VA_ARGS__);                                                                       \
        putchar('\n');                                                                             \
    } while (0)

static inline int test_summary(void)
{
    printf("%d passed, %d failed, %d skipped\n", test_passed, test_failed, test_skipped);
    return test_failed ? 1 : test_skipped ? TEST_SKIPPED : 0;
}

/* A fresh directory for this test's files under $CELLAR_TEST_TMP (or /tmp). */
static inline const char *test_tmpdir(const char *name)
{
    static char path[4096];
    const char *base = getenv("CELLAR_TEST_TMP");
    char cmd[8300];
    snprintf(path, sizeof path, "%s/%s", base && *base ? base : "/tmp/cellar-test", name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", path, path);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", path);
        exit(1);
    }
    return path;
}

#endif
