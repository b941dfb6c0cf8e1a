/* oci.c's readers of untrusted bytes, for the fuzz targets and tests:
 * a ModelPack (or plain OCI) manifest's layers, and a tar layer's files. */
#ifndef CELLAR_OCI_H
#define CELLAR_OCI_H

#include "hub.h"

enum layer_fmt { LAYER_RAW, LAYER_TAR };

struct layer {
    char *path; /* filepath annotation (raw: the file, checked safe; tar: informative) */
    uint8_t sha256[32];
    uint64_t size;
    enum layer_fmt fmt;
};

struct parsed {
    struct layer *l;
    size_t n;
};

/* The layers of a manifest: vnd.cncf.model.* and vnd.cnai.model.* .raw and
 * .tar layers, plain layers with a title annotation. CELLAR_EFORMAT (label
 * named), CELLAR_EUNSUPPORTED (an index, a compressed layer, a layer that
 * is no file), CELLAR_ENOMEM. Clear with cellar_oci_manifest_clear. */
int cellar_oci_manifest_parse(struct parsed *out, const void *data, size_t len,
                              const char *label);
void cellar_oci_manifest_clear(struct parsed *p);

/* Every regular file of the tar at path into store s, appended to l
 * (capacity *cap) with its sha256. Bounded: sizes checked against the
 * bytes left, extended headers at most 1 MiB; unsafe paths and links
 * refused (CELLAR_EFORMAT / CELLAR_EUNSUPPORTED). */
int cellar_oci_tar_unpack(cellar_store *s, const char *path, const char *label,
                          cellar_hub_listing *l, size_t *cap);

#endif
