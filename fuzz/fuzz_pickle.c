/* libFuzzer target: the PyTorch checkpoint reader (zip, legacy, bare
 * pickle) on arbitrary bytes. Whatever it accepts must describe tensors
 * whose bytes lie inside the input: every tensor is read (gathered) and the
 * structural hashes computed; the globals report must hold up either way. */
#include "cellar.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so reading one byte too far is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    for (unsigned flags = 0; flags <= CELLAR_PT_KEEP_GOING; flags += CELLAR_PT_KEEP_GOING) {
        cellar_pt *pt = NULL;
        if (cellar_pt_open_buffer(&pt, copy, size, "fuzz.pt", flags) != 0)
            continue;
        volatile uint64_t sink = 0;
        for (size_t i = 0; i < cellar_pt_global_count(pt); i++) {
            const cellar_pt_global *g = cellar_pt_global_at(pt, i);
            sink += strlen(g->module) + strlen(g->name) + (unsigned)g->cls;
        }
        for (size_t i = 0; i < cellar_pt_count(pt); i++) {
            const cellar_pt_tensor *t = cellar_pt_tensor_at(pt, i);
            REQUIRE(t->alias < cellar_pt_count(pt));
            REQUIRE(t->storage < cellar_pt_storage_count(pt));
            if (t->nbytes > (1u << 20))
                continue;
            uint8_t *buf = malloc(t->nbytes ? (size_t)t->nbytes : 1);
            if (!buf)
                continue;
            REQUIRE(cellar_pt_read(buf, (size_t)t->nbytes, pt, i) == 0);
            if (t->nbytes)
                sink += buf[0] + buf[t->nbytes - 1];
            free(buf);
        }
        for (size_t i = 0; i < cellar_pt_blocked_count(pt); i++) {
            const char *p;
            const cellar_pt_global *g;
            REQUIRE(cellar_pt_blocked_at(pt, i, &p, &g) == 0);
            sink += strlen(p);
        }
        cellar_pt_hash h;
        if (!cellar_pt_problem(pt) && cellar_pt_structural_hash(&h, pt) == 0)
            sink += (uint8_t)h.state_dict[0];
        (void)sink;
        cellar_pt_free(pt);
    }
    free(copy);
    return 0;
}
