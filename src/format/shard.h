/* Sharded-checkpoint internals exposed for tests and fuzzing. */
#ifndef CELLAR_SHARD_H
#define CELLAR_SHARD_H

#include <stddef.h>

/* Why a weight_map path (n bytes) may not be used: "is absolute", "has a
 * drive", "climbs out with '..'", "is not a .safetensors file"...; NULL if
 * it stays inside the index's directory. */
const char *cellar_index_path_problem(const char *path, size_t n);

#endif
