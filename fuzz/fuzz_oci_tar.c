/* libFuzzer target: a tar layer from a registry, unpacked file by file into
 * a scratch store. Whatever is accepted gives safe paths, and every file
 * it names is a stored blob of the size listed. */
#include "oci.h"

#include "fuzz.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cellar_store *s;
    static char path[4096];
    if (!s) {
        char dir[] = "/tmp/cellar-fuzz-tar-XXXXXX";
        if (!mkdtemp(dir) || cellar_store_open(&s, dir))
            abort();
        snprintf(path, sizeof path, "%s/input.tar", dir);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, data, size) == (ssize_t)size);
    close(fd);
    cellar_hub_listing l = {0};
    size_t cap = 0;
    int rc = cellar_oci_tar_unpack(s, path, "fuzz", &l, &cap);
    REQUIRE(rc == 0 || rc == CELLAR_EFORMAT || rc == CELLAR_EUNSUPPORTED ||
            rc == CELLAR_ENOMEM || rc == CELLAR_ERANGE || rc == CELLAR_EMISMATCH);
    for (size_t i = 0; i < l.n; i++) {
        REQUIRE(cellar_hub_path_safe(l.files[i].path, strlen(l.files[i].path)));
        REQUIRE(l.files[i].size <= size);
        REQUIRE(cellar_store_find(NULL, s, CELLAR_ALGO_SHA256, l.files[i].sha256) == 0);
        free(l.files[i].path);
    }
    free(l.files);
    return 0;
}
