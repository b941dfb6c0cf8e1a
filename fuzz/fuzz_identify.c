/* libFuzzer target: identification of whatever the safetensors reader
 * accepts. The result must be consistent (its structural hash is the
 * file's, its text non-empty, its kind in range), whatever the names. */
#include "safetensors.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cellar_st *st;
    if (cellar_st_open_buffer(&st, data, size, "fuzz") != 0)
        return 0;
    cellar_identity *id = NULL;
    if (cellar_identify_st(&id, &st, 1, NULL) == 0) {
        const cellar_identity_info *x = cellar_identity_get(id);
        char hash[33];
        REQUIRE(cellar_structural_hash_st(hash, &st, 1) == 0);
        REQUIRE(strcmp(hash, x->structural) == 0);
        REQUIRE(x->kind >= CELLAR_KIND_UNKNOWN && x->kind <= CELLAR_KIND_OTHER);
        REQUIRE(x->text && *x->text && strlen(cellar_identity_text(id)) > 0);
        REQUIRE(x->tensors == cellar_st_count(st));
        for (size_t i = 0; i < x->nmatches; i++)
            REQUIRE(strcmp(x->matches[i]->hash, x->structural) == 0);
        cellar_identity_free(id);
    }
    cellar_st_free(st);
    return 0;
}
