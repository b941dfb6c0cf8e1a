/* The shared helpers: errors, checked buffers, atomic writes, hex. */
#include "testutil.h"
#include "util.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_errors(void)
{
    cellar_error_clear();
    CHECK(cellar_error_code() == 0);
    CHECK_STR(cellar_error_last(), "");
    int rc = cellar_fail(CELLAR_EFORMAT, "%s: tensor '%s' ends at %d", "m.safetensors", "a", 24);
    CHECK_ERR(rc, CELLAR_EFORMAT, "m.safetensors: tensor 'a' ends at 24");
    CHECK(cellar_error_code() == CELLAR_EFORMAT);
    cellar_fail_prefix("while adding %s", "x");
    CHECK_STR(cellar_error_last(), "while adding x: m.safetensors: tensor 'a' ends at 24");
    rc = cellar_fail_errno(ENOENT, "%s", "missing.bin");
    CHECK_ERR(rc, CELLAR_ENOTFOUND, "missing.bin: No such file or directory");
    CHECK_STR(cellar_error_name(CELLAR_EMISMATCH), "EMISMATCH");
    CHECK_STR(cellar_error_name(-999), "EUNKNOWN");
}

static void test_hex(void)
{
    uint8_t in[3] = {0x00, 0xab, 0xff}, out[3];
    char hex[7];
    cellar_hex(hex, in, 3);
    CHECK_STR(hex, "00abff");
    CHECK(cellar_unhex(out, "00ABff", 3) && memcmp(in, out, 3) == 0);
    CHECK(!cellar_unhex(out, "00abfg", 3));
}

static void test_buf(void)
{
    cellar_buf b;
    cellar_buf_init(&b, 8);
    CHECK(cellar_buf_append(&b, "abc", 3) == 0);
    CHECK(cellar_buf_printf(&b, "%d", 1234) == 0);
    CHECK_STR(b.data, "abc1234");
    CHECK_ERR(cellar_buf_append(&b, "xy", 2), CELLAR_ERANGE, "limit");
    CHECK_STR(b.data, "abc1234");
    cellar_buf_free(&b);
}

static void test_grow(void)
{
    uint32_t *v = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < 1000; i++) {
        CHECK(cellar_grow(&v, &cap, i, sizeof *v, 4) == 0);
        v[i] = (uint32_t)i;
    }
    CHECK(cap >= 1000 && cap < 2048 && v[999] == 999 && v[4] == 4);
    /* A capacity whose byte size overflows is refused, the array kept. */
    size_t huge = SIZE_MAX / 2 + 1;
    CHECK_ERR(cellar_grow(&v, &huge, huge, sizeof *v, 4), CELLAR_ERANGE, "too large");
    CHECK(v[999] == 999);
    free(v);
}

static void test_atomic(void)
{
    const char *dir = test_tmpdir("util");
    char *path = cellar_path_join(dir, "f.txt");
    CHECK(cellar_write_file_atomic(path, "one", 3, 0644) == 0);
    char *data;
    size_t len;
    CHECK(cellar_read_file(&data, &len, path, 0) == 0 && len == 3 && !memcmp(data, "one", 3));
    free(data);

    /* An aborted write leaves the old content and no temp file behind. */
    cellar_atomic a;
    CHECK(cellar_atomic_open(&a, path, 0644) == 0);
    CHECK(write(a.fd, "two", 3) == 3);
    char *tmp = cellar_strdup(a.tmp);
    cellar_atomic_abort(&a);
    CHECK(access(tmp, F_OK) != 0);
    free(tmp);
    CHECK(cellar_read_file(&data, &len, path, 0) == 0 && !memcmp(data, "one", 3));
    free(data);

    /* No-replace commit refuses an existing target. */
    CHECK(cellar_atomic_open(&a, path, 0644) == 0);
    CHECK_ERR(cellar_atomic_commit(&a, false), CELLAR_EEXISTS, "f.txt");

    CHECK_ERR(cellar_read_file(&data, &len, path, 2), CELLAR_ERANGE, "limit");
    char *missing = cellar_path_join(dir, "nope");
    CHECK_ERR(cellar_read_file(&data, &len, missing, 0), CELLAR_ENOTFOUND, "nope");
    free(missing);

    char *deep = cellar_path_join(dir, "a/b/c");
    CHECK(cellar_mkdirs(deep, 0755) == 0);
    struct stat st;
    CHECK(stat(deep, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK_ERR(cellar_mkdirs(path, 0755), CELLAR_EEXISTS, "not a directory");
    free(deep);
    free(path);
}

int main(void)
{
    test_errors();
    test_hex();
    test_buf();
    test_grow();
    test_atomic();
    return test_summary();
}
