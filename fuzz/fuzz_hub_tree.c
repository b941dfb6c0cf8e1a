/* libFuzzer target: a Hub tree listing page, the untrusted JSON that names
 * the files a pull writes. Whatever is accepted must be safe to write:
 * every path passes the path check, LFS entries carry a sha256, and a
 * listing naming a path twice is refused. */
#include "hub.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cellar_hub_listing *l = calloc(1, sizeof *l);
    if (!l)
        return 0;
    int rc = cellar_hub_parse_tree(l, data, size, "fuzz/repo");
    REQUIRE(rc == 0 || rc == CELLAR_EFORMAT || rc == CELLAR_ENOMEM || rc == CELLAR_ERANGE);
    for (size_t i = 0; i < l->n; i++) {
        const cellar_hub_file *f = &l->files[i];
        REQUIRE(f->path && cellar_hub_path_safe(f->path, strlen(f->path)));
    }
    /* A second page appends; the same files twice are then refused. */
    size_t before = l->n;
    if (rc == 0 && cellar_hub_parse_tree(l, data, size, "fuzz/repo") == 0) {
        REQUIRE(l->n == 2 * before);
        rc = cellar_hub_listing_check(l, "fuzz/repo");
        REQUIRE(before ? rc == CELLAR_EFORMAT || rc == CELLAR_ENOMEM : rc == 0);
    }
    cellar_hub_listing_free(l);
    return 0;
}
