/* libFuzzer target: the DDUF archive reader (ZIP records, DDUF rules,
 * embedded safetensors read in place, CRC-32) on arbitrary bytes. */
#include "cellar.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so reading one byte too far is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    cellar_dduf *d = NULL;
    if (cellar_dduf_open_buffer(&d, copy, size, "fuzz.dduf", CELLAR_DDUF_CRC) == 0) {
        volatile uint64_t sink = 0;
        for (size_t i = 0; i < cellar_dduf_entry_count(d); i++) {
            const cellar_dduf_entry *e = cellar_dduf_entry_at(d, i);
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
