/* The registry client's pure parts, without a network: references, tags,
 * base64, and credentials from a Docker config (auths, a credential
 * helper). The protocol itself is tested against docker-registry in
 * tests/cli_oci.sh. */
#include "oci_registry.h"
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>

static void test_refs(void)
{
    cellar_oci_ref r;
    CHECK(cellar_oci_ref_parse(&r, "oci://127.0.0.1:5000/team/sd15:v1") == 0);
    CHECK_STR(r.host, "127.0.0.1:5000");
    CHECK_STR(r.repo, "team/sd15");
    CHECK_STR(r.tag, "v1");
    CHECK(r.digest == NULL);
    cellar_oci_ref_clear(&r);
    CHECK(cellar_oci_ref_parse(&r, "reg.example.com/a/b/c") == 0);
    CHECK(r.tag == NULL && r.digest == NULL);
    CHECK_STR(r.repo, "a/b/c");
    cellar_oci_ref_clear(&r);
    const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char buf[200];
    snprintf(buf, sizeof buf, "oci://h:1/x@%s", d);
    CHECK(cellar_oci_ref_parse(&r, buf) == 0);
    CHECK_STR(r.digest, d);
    CHECK(r.tag == NULL);
    cellar_oci_ref_clear(&r);
    static const char *const bad[] = {"oci://host", "oci:///repo", "oci://h/Upper", "oci://h/a//b",
                                      "oci://h/a:bad:tag!", "oci://h/a@sha256:12",
                                      "oci://h/-a", "oci://h/a/", "oci://h o/a"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(cellar_oci_ref_parse(&r, bad[i]) == CELLAR_EINVAL, "%s", bad[i]);
    CHECK(cellar_oci_tag_valid("v1.0_rc-2"));
    CHECK(cellar_oci_tag_valid("_x"));
    CHECK(!cellar_oci_tag_valid(".x"));
    CHECK(!cellar_oci_tag_valid(""));
    char longtag[140];
    memset(longtag, 'a', 129);
    longtag[129] = '\0';
    CHECK(!cellar_oci_tag_valid(longtag));
}

static void test_base64(void)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                      "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *e = cellar_base64(plain[i], strlen(plain[i]));
        CHECK_STR(e, enc[i]);
        free(e);
        char *dcd = NULL;
        size_t n = 0;
        CHECK(cellar_unbase64(&dcd, &n, enc[i], strlen(enc[i])));
        CHECK(n == strlen(plain[i]) && !memcmp(dcd, plain[i], n));
        free(dcd);
    }
    char *dcd = NULL;
    CHECK(!cellar_unbase64(&dcd, NULL, "Zm9v!", 5));
    CHECK(!cellar_unbase64(&dcd, NULL, "Zg==Zg", 6));
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    chmod(path, mode);
}

static void test_docker_config(void)
{
    const char *dir = test_tmpdir("test_registry");
    char cfg[4200], helper[4200], path[8400];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    /* alice:pw */
    write_file(cfg,
               "{\"auths\": {\"reg:5000\": {\"auth\": \"YWxpY2U6cHc=\"},"
               " \"https://other:1\": {\"auth\": \"Ym9iOng=\"},"
               " \"bad:1\": {\"auth\": \"!!!\"}},"
               " \"credHelpers\": {\"helped:2\": \"celtest\"}}",
               0600);
    char *up = NULL;
    CHECK(cellar_reg_docker_creds(&up, dir, "reg:5000") == 0);
    CHECK(up && !strcmp(up, "alice:pw"));
    free(up);
    CHECK(cellar_reg_docker_creds(&up, dir, "other:1") == 0);
    CHECK(up && !strcmp(up, "bob:x"));
    free(up);
    CHECK(cellar_reg_docker_creds(&up, dir, "nobody:1") == 0);
    CHECK(up == NULL);
    CHECK(cellar_reg_docker_creds(&up, dir, "bad:1") == CELLAR_EFORMAT);
    /* A credential helper on PATH answering for the host on its stdin. */
    snprintf(helper, sizeof helper, "%s/docker-credential-celtest", dir);
    write_file(helper,
               "#!/bin/sh\nread host\n[ \"$1\" = get ] || exit 3\n"
               "printf '{\"ServerURL\":\"%s\",\"Username\":\"carol\",\"Secret\":\"s3\"}' \"$host\"\n",
               0755);
    snprintf(path, sizeof path, "%s:%s", dir, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    CHECK(cellar_reg_docker_creds(&up, dir, "helped:2") == 0);
    CHECK(up && !strcmp(up, "carol:s3"));
    free(up);
    /* No config at all: anonymous, no error. */
    CHECK(cellar_reg_docker_creds(&up, "/nonexistent-dir", "reg:5000") == 0 && up == NULL);
}

int main(void)
{
    test_refs();
    test_base64();
    test_docker_config();
    return test_summary();
}
