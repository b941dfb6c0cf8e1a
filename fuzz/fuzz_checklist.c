/* Checksum lists (cellar hash -c): any bytes parse without a crash; every
 * line kept has a name, a digest of its algorithms' length and a line
 * number inside the input. No file is read. */
#include "cellar.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cellar_checklist *l;
    uint32_t only = size ? (uint32_t)data[0] & CELLAR_ALGO_ALL : 0;
    int rc = cellar_checklist_parse(&l, data, size, only & 1 ? only : 0, "fuzz");
    REQUIRE(rc == 0 || rc == CELLAR_ENOMEM);
    if (rc)
        return 0;
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    REQUIRE(cellar_checklist_count(l) + cellar_checklist_malformed(l) <= lines);
    size_t last = 0;
    for (size_t i = 0; i < cellar_checklist_count(l); i++) {
        const cellar_checklist_line *e = cellar_checklist_at(l, i);
        REQUIRE(e && e->name && e->algos && !(e->algos & ~(uint32_t)CELLAR_ALGO_ALL));
        REQUIRE(e->lineno > last && e->lineno <= lines);
        last = e->lineno;
        for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++)
            if (e->algos & CELLAR_ALGO_BIT(a))
                REQUIRE(cellar_algo_len((cellar_algo)a) == e->digest_len);
    }
    REQUIRE(cellar_checklist_at(l, cellar_checklist_count(l)) == NULL);
    cellar_checklist_free(l);
    return 0;
}
