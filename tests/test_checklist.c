/* Checksum lists: every form sha256sum, b3sum and cellar write, escaped
 * names, CRLF, malformed lines counted not kept, -a limiting bare digests,
 * and verification of files against the lists the real tools print. Also
 * the digest parser they share with which and verify, and format
 * detection. */
#include "cellar.h"
#include "testutil.h"
#include "util.h"

#include <fcntl.h>
#include <unistd.h>

static cellar_checklist *parse(const char *text, uint32_t algos)
{
    cellar_checklist *l = NULL;
    int rc = cellar_checklist_parse(&l, text, strlen(text), algos, "list");
    CHECK_MSG(rc == 0, "%s", cellar_error_last());
    return l;
}

#define SHA_HELLO "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
#define B3_HELLO "d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24"
#define MD5_HELLO "5eb63bbbe01eeed093cb22bb8f5acdc3"

static void test_forms(void)
{
    cellar_checklist *l = parse(SHA_HELLO "  a.txt\n"
                                          MD5_HELLO " *bin.dat\r\n"
                                          "sha256:" SHA_HELLO "  tagged\n"
                                          "SHA256 (bsd (x) = y) = " SHA_HELLO "\n"
                                          "\\" SHA_HELLO "  new\\nline\\\\back\n"
                                          "# comment\n"
                                          "\n"
                                          "nothex  x\n"
                                          SHA_HELLO " onespace\n"
                                          "sha256:" MD5_HELLO "  wronglength\n"
                                          "sha3:" SHA_HELLO "  unknown\n"
                                          "\\" SHA_HELLO "  bad\\escape\n"
                                          SHA_HELLO "  last-no-newline",
                                0);
    if (!l)
        return;
    CHECK(cellar_checklist_count(l) == 6);
    CHECK(cellar_checklist_malformed(l) == 7);
    const cellar_checklist_line *e = cellar_checklist_at(l, 0);
    CHECK_STR(e->name, "a.txt");
    CHECK(e->lineno == 1 && e->digest_len == 32);
    CHECK(e->algos == (CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256) | CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3)));
    CHECK(e->digest[0] == 0xb9 && e->digest[31] == 0xe9);
    e = cellar_checklist_at(l, 1);
    CHECK_STR(e->name, "bin.dat");
    CHECK(e->algos == CELLAR_ALGO_BIT(CELLAR_ALGO_MD5) && e->digest_len == 16);
    e = cellar_checklist_at(l, 2);
    CHECK_STR(e->name, "tagged");
    CHECK(e->algos == CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256));
    e = cellar_checklist_at(l, 3);
    CHECK_STR(e->name, "bsd (x) = y");
    CHECK(e->algos == CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256));
    CHECK_STR(cellar_checklist_at(l, 4)->name, "new\nline\\back");
    e = cellar_checklist_at(l, 5);
    CHECK_STR(e->name, "last-no-newline");
    CHECK(e->lineno == 13);
    CHECK(cellar_checklist_at(l, 6) == NULL);
    cellar_checklist_free(l);

    /* -a limits what a bare digest may be */
    l = parse(SHA_HELLO "  a\n" MD5_HELLO "  b\n", CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3));
    CHECK(cellar_checklist_count(l) == 1 && cellar_checklist_malformed(l) == 1);
    CHECK(cellar_checklist_at(l, 0)->algos == CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3));
    cellar_checklist_free(l);

    /* a NUL inside a line is malformed, not a shorter name */
    static const char nul[] = SHA_HELLO "  a\0b\n";
    CHECK(cellar_checklist_parse(&l, nul, sizeof nul - 1, 0, "nul") == 0);
    CHECK(cellar_checklist_count(l) == 0 && cellar_checklist_malformed(l) == 1);
    cellar_checklist_free(l);
    CHECK(cellar_checklist_parse(&l, "", 0, 0, NULL) == 0 && cellar_checklist_count(l) == 0);
    cellar_checklist_free(l);
    CHECK(cellar_checklist_parse(&l, "x", 1, 1u << 31, "bad") == CELLAR_EINVAL && l == NULL);
    cellar_checklist_free(NULL);
}

/* The one digest parser: "algo:hex" or bare hex, either case. */
static void test_digest_parse(void)
{
    uint32_t algos;
    size_t len;
    uint8_t d[CELLAR_DIGEST_MAX];
    const uint32_t sha = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256), b3 = CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3),
                   git = CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1);
    CHECK(cellar_digest_parse(&algos, d, &len, SHA_HELLO, sha | git) == 0);
    CHECK(algos == sha && len == 32 && d[0] == 0xb9);
    CHECK(cellar_digest_parse(&algos, d, &len, SHA_HELLO, CELLAR_ALGO_ALL) == 0);
    CHECK(algos == (sha | b3));
    CHECK(cellar_digest_parse(&algos, d, &len, "sha256:B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9", git) == 0);
    CHECK(algos == sha && d[31] == 0xe9);
    CHECK(cellar_digest_parse(&algos, d, &len, "git:0123456789abcdef0123456789abcdef01234567", 0) == 0);
    CHECK(algos == git && len == 20);
    CHECK(cellar_digest_parse(&algos, d, &len, "b3:" B3_HELLO, 0) == 0 && algos == b3);
    CHECK(cellar_digest_parse(&algos, d, &len, "crc32:0d4a1185", 0) == 0 && len == 4);
    CHECK_ERR(cellar_digest_parse(&algos, d, &len, "sha256:" MD5_HELLO, 0), CELLAR_EINVAL,
              "has 64 hex digits, not 32");
    CHECK_ERR(cellar_digest_parse(&algos, d, &len, MD5_HELLO, sha | git), CELLAR_EINVAL,
              "32 hex digits");
    CHECK_ERR(cellar_digest_parse(&algos, d, &len, "sha3:00", 0), CELLAR_EINVAL, "unknown algorithm");
    CHECK_ERR(cellar_digest_parse(&algos, d, &len, "xyz", sha), CELLAR_EINVAL, "hex digits expected");
    CHECK_ERR(cellar_digest_parse(&algos, d, &len, "abc", sha), CELLAR_EINVAL, "hex digits expected");
    CHECK_ERR(cellar_digest_parse(&algos, d, &len, "", sha), CELLAR_EINVAL, "hex digits expected");
    CHECK_ERR(cellar_digest_parse(&algos, d, &len, ":00", sha), CELLAR_EINVAL, "not a digest");
    CHECK(algos == 0 && len == 0);
}

/* What a path holds, from its type and first bytes. */
static void test_detect(const char *dir)
{
    static const struct {
        const char *name, *bytes;
        size_t len;
        cellar_format want;
    } cases[] = {
        {"m.gguf", "GGUF\3\0\0\0", 8, CELLAR_FORMAT_GGUF},
        {"zip.bin", "PK\3\4rest", 8, CELLAR_FORMAT_DDUF},
        {"empty.dduf", "", 0, CELLAR_FORMAT_DDUF},
        {"m.safetensors", "\2\0\0\0\0\0\0\0{}", 10, CELLAR_FORMAT_SAFETENSORS},
        {"short", "GG", 2, CELLAR_FORMAT_SAFETENSORS},
        {"model.safetensors.index.json", "{}", 2, CELLAR_FORMAT_SAFETENSORS},
    };
    char path[4300];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
        CHECK(cellar_write_file_atomic(path, cases[i].bytes, cases[i].len, 0644) == 0);
        cellar_format f = CELLAR_FORMAT_UNKNOWN;
        CHECK_MSG(cellar_detect_format(&f, path) == 0 && f == cases[i].want, "%s: %s",
                  cases[i].name, cellar_format_name(f));
    }
    cellar_format f;
    CHECK(cellar_detect_format(&f, dir) == 0 && f == CELLAR_FORMAT_FOLDER);
    CHECK(cellar_detect_format(&f, "/dev/null") == 0 && f == CELLAR_FORMAT_UNKNOWN);
    snprintf(path, sizeof path, "%s/missing", dir);
    CHECK_ERR(cellar_detect_format(&f, path), CELLAR_ENOTFOUND, "missing");
    CHECK_STR(cellar_format_name(CELLAR_FORMAT_GGUF), "gguf");
    CHECK_STR(cellar_format_name((cellar_format)99), "unknown");
}

/* A list the real tool printed, checked against the files. */
static void verify_with(const char *dir, const char *tool, size_t nfiles, const char *bad)
{
    char cmd[8400], list[4300];
    snprintf(list, sizeof list, "%s/%s.list", dir, tool);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s hello.txt random.bin empty > '%s'", dir, tool, list);
    if (system(cmd) != 0) {
        test_skip("verifying %s's list: %s did not run", tool, tool);
        return;
    }
    char *text;
    size_t len;
    CHECK(cellar_read_file(&text, &len, list, 1 << 20) == 0);
    cellar_checklist *l = NULL;
    CHECK(cellar_checklist_parse(&l, text, len, 0, list) == 0);
    free(text);
    CHECK(cellar_checklist_count(l) == nfiles);
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(dir) == 0);
    for (size_t i = 0; i < cellar_checklist_count(l); i++) {
        int match = -1;
        CHECK_MSG(cellar_checklist_verify(&match, l, i, -1, NULL) == 0, "%s", cellar_error_last());
        CHECK_MSG(match == 1, "%s: %s did not match", tool, cellar_checklist_at(l, i)->name);
    }
    /* the same bytes through a descriptor (standard input for the CLI) */
    int fd = open("hello.txt", O_RDONLY);
    int match = -1;
    CHECK(cellar_checklist_verify(&match, l, 0, fd, NULL) == 0 && match == 1);
    close(fd);
    /* a changed file does not match; a missing one is an error */
    CHECK(cellar_write_file_atomic("random.bin", bad, strlen(bad), 0644) == 0);
    CHECK(cellar_checklist_verify(&match, l, 1, -1, NULL) == 0 && match == 0);
    CHECK(unlink("random.bin") == 0);
    CHECK_ERR(cellar_checklist_verify(&match, l, 1, -1, NULL), CELLAR_ENOTFOUND, "random.bin");
    CHECK(match == 0);
    CHECK(cellar_checklist_verify(&match, l, 99, -1, NULL) == CELLAR_EINVAL);
    CHECK(chdir(cwd) == 0);
    cellar_checklist_free(l);
}

static void write_files(const char *dir)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/hello.txt", dir);
    CHECK(cellar_write_file_atomic(path, "hello world", 11, 0644) == 0);
    snprintf(path, sizeof path, "%s/empty", dir);
    CHECK(cellar_write_file_atomic(path, "", 0, 0644) == 0);
    static uint8_t rnd[300000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof rnd; i++) {
        x = x * 1664525u + 1013904223u;
        rnd[i] = (uint8_t)(x >> 24);
    }
    snprintf(path, sizeof path, "%s/random.bin", dir);
    CHECK(cellar_write_file_atomic(path, rnd, sizeof rnd, 0644) == 0);
}

int main(void)
{
    test_forms();
    test_digest_parse();
    const char *dir = test_tmpdir("test_checklist");
    test_detect(dir);
    static const char *const tools[] = {"sha256sum", "b3sum", "md5sum", "sha1sum",
                                        "sha256sum --tag"};
    for (size_t t = 0; t < sizeof tools / sizeof tools[0]; t++) {
        write_files(dir);
        verify_with(dir, tools[t], 3, "changed");
    }
    return test_summary();
}
