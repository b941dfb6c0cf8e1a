/* libFuzzer target: the GGUF header reader on arbitrary bytes, walking every
 * key/value and tensor info it accepts. */
#include "cellar.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so reading one byte too far is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    cellar_gguf *g = NULL;
    if (cellar_gguf_open_buffer(&g, copy, size, "fuzz.gguf") == 0) {
        volatile uint64_t sink = 0;
        for (size_t i = 0; i < cellar_gguf_kv_count(g); i++) {
            const cellar_gguf_kv *kv = cellar_gguf_kv_at(g, i);
            cellar_gguf_value v;
            for (uint64_t j = 0; j < kv->count && j < 64; j++)
                if (cellar_gguf_kv_value(&v, g, i, j) == 0)
                    sink += v.u + v.str_len + (v.str_len ? (uint8_t)v.str[v.str_len - 1] : 0);
        }
        for (size_t i = 0; i < cellar_gguf_tensor_count(g); i++) {
            const cellar_gguf_tensor *t = cellar_gguf_tensor_at(g, i);
            sink += t->size + t->offset + (t->name_len ? (uint8_t)t->name[0] : 0);
        }
        (void)sink;
    }
    cellar_gguf_free(g);
    free(copy);
    return 0;
}
