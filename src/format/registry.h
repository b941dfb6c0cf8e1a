/* The registry of known structural hashes: the table compiled from
 * data/registry.tsv (cmake/gen_registry.c writes it, sorted by hash) and
 * the lookups identify.c shares. The public API is in cellar.h. */
#ifndef CELLAR_REGISTRY_H
#define CELLAR_REGISTRY_H

#include "util.h"

extern const cellar_model_info cellar_registry_table[];
extern const size_t cellar_registry_table_len;

/* The registry of the compiled table alone: a static object, never freed
 * (cellar_registry_free() ignores it). */
const cellar_registry *cellar_registry_builtin(void);

#endif
