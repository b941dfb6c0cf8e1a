/* Hugging Face cache layout (hfcache.c), private to the library: the store
 * side of pull's --hf-cache. The public import-hf is in cellar.h. */
#ifndef CELLAR_HFCACHE_H
#define CELLAR_HFCACHE_H

#include "store.h"

/* Lays the n files of repo at commit out under the HF cache root, as
 * huggingface_hub does (HUB.md): file i is paths[i] in the repo, its blob
 * shas[i] in s and its Hub name etags[i] (the LFS sha256 or the git blob
 * sha1, hex). root/models--ORG--NAME/blobs/<etag> as
 * links to s's objects (CELLAR_LINK_AUTO), snapshots/<commit>/<path> as
 * relative symlinks to them, and refs/<revision> holding commit unless
 * revision is the commit itself. hf_name, when not NULL, is the "ORG--NAME"
 * part to use instead of the one derived from repo ("org/name"). Every
 * file's sha256 must be in s. Negative CELLAR_E* with a message naming the
 * path on failure; what was written before stays. */
int hfcache_layout(cellar_store *s, const char *root, const char *repo, const char *hf_name,
                   const char *revision, const char *commit, size_t n,
                   const char *const *paths, const uint8_t (*shas)[32],
                   const char *const *etags);

#endif
