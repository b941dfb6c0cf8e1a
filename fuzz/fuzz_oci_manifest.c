/* libFuzzer target: an OCI / ModelPack manifest from a registry, the
 * untrusted JSON naming the files an oci:// pull writes. Whatever is
 * accepted names safe paths for its .raw layers. */
#include "oci.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct parsed pm;
    int rc = cellar_oci_manifest_parse(&pm, data, size, "fuzz");
    REQUIRE(rc == 0 || rc == CELLAR_EFORMAT || rc == CELLAR_EUNSUPPORTED ||
            rc == CELLAR_ENOMEM || rc == CELLAR_ERANGE);
    for (size_t i = 0; rc == 0 && i < pm.n; i++) {
        REQUIRE(pm.l[i].path);
        if (pm.l[i].fmt == LAYER_RAW)
            REQUIRE(cellar_hub_path_safe(pm.l[i].path, strlen(pm.l[i].path)));
    }
    if (rc == 0)
        cellar_oci_manifest_clear(&pm);
    return 0;
}
