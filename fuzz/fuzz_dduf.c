/* libFuzzer target: the DDUF archive reader (ZIP records, DDUF rules,
 * embedded safetensors read in place, CRC-32) on arbitrary bytes. */
#include "cellar.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so reading one byte too far is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    cellar_dduf *d = NULL;
    /* CRC-32 on half the inputs only: a mutated archive rarely keeps its
     * CRCs right, and what is read after a successful open needs covering. */
    unsigned flags = size % 2 ? CELLAR_DDUF_CRC : 0;
    if (cellar_dduf_open_buffer(&d, copy, size, "fuzz.dduf", flags) == 0) {
        volatile uint64_t sink = 0;
        const cellar_dduf_entry *index;
        REQUIRE(cellar_dduf_find(&index, d, "model_index.json") == 0 && index);
        for (size_t i = 0; i < cellar_dduf_entry_count(d); i++) {
            const cellar_dduf_entry *e = cellar_dduf_entry_at(d, i);
            /* What an accepted archive promises: its entries' bytes lie in
             * the buffer, their names are NUL-free and one level deep. */
            REQUIRE(e->offset <= size && e->size <= size - e->offset &&
                    (const uint8_t *)e->data == copy + e->offset);
            const char *slash = strchr(e->name, '/');
            REQUIRE(strlen(e->name) == e->name_len && e->name[0] != '/' &&
                    strncmp(e->name, "../", 3) != 0 && (!slash || !strchr(slash + 1, '/')));
            if (e->size)
                sink += ((const uint8_t *)e->data)[e->size - 1];
            cellar_st *st = NULL;
            if (cellar_dduf_open_safetensors(&st, d, i) == 0)
                sink += cellar_st_count(st);
            cellar_st_free(st);
        }
        (void)sink;
    }
    cellar_dduf_free(d);
    free(copy);
    return 0;
}
