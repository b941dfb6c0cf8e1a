/* DDUF internals shared by the reader (dduf.c) and the writer
 * (dduf_write.c): the entry-name and pipeline-structure rules, so both sides
 * enforce exactly the same ones. */
#ifndef CELLAR_DDUF_H
#define CELLAR_DDUF_H

#include "json.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ZIP record sizes and signatures (APPNOTE 4.3). */
#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_END_SIG 0x06054b50u
#define ZIP64_END_SIG 0x06064b50u
#define ZIP64_LOCATOR_SIG 0x07064b50u
#define ZIP_LOCAL_SIZE 30
#define ZIP_CENTRAL_SIZE 46
#define ZIP_END_SIZE 22
#define ZIP64_END_SIZE 56
#define ZIP64_LOCATOR_SIZE 20
#define ZIP64_EXTRA_ID 1
#define ZIP_FLAG_ENCRYPTED 0x0001u
#define ZIP_FLAG_DESCRIPTOR 0x0008u
#define ZIP_FLAG_STRONG_ENCRYPTION 0x0040u
#define ZIP_FLAG_UTF8 0x0800u

/* The DDUF entry-name rule: '/' separators, at most one folder level, no
 * empty, '.' or '..' component, no leading or trailing '/', no backslash or
 * NUL, extension .json, .safetensors, .model or .txt. */
bool cellar_dduf_name_valid(const char *name, size_t len);
/* Whether the text after the last '.' of name is one of those extensions
 * (case-sensitive). */
bool cellar_dduf_ext_allowed(const char *name, size_t len);

/* The pipeline rules over a set of (valid, unique) names and the parsed
 * model_index.json: the index is an object, every top-level folder is a key
 * of it and holds one of the config files. label names the archive.
 * components (may be NULL) gets the folders, allocated, in first-seen
 * order, and n_components their count. */
int cellar_dduf_check_structure(const char *label, const char *const *names,
                                const size_t *name_lens, size_t n, const cellar_json *index,
                                char ***components, size_t *n_components);

/* Parses model_index.json's bytes (strictly) and checks it is an object. */
int cellar_dduf_parse_index(cellar_json_doc **out, const char *label, const void *data,
                            size_t len);

#endif
