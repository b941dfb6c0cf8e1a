/* Tensor statistics: totals and the per-type histogram of a safetensors
 * file (written here) and of a GGUF (the fuzz seed), merged. */
#include "cellar.h"
#include "testutil.h"

#include <libgen.h>

static void test_safetensors_and_gguf(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/s.safetensors", dir);
    static const float f32[6] = {0};
    static const uint16_t bf16[4] = {0};
    static const uint64_t s23[2] = {2, 3}, s4[1] = {4};
    cellar_st_writer *w;
    CHECK(cellar_st_writer_new(&w) == 0);
    CHECK(cellar_st_writer_add(w, "a", 1, CELLAR_DTYPE_F32, 2, s23, f32, sizeof f32) == 0);
    CHECK(cellar_st_writer_add(w, "b", 1, CELLAR_DTYPE_BF16, 1, s4, bf16, sizeof bf16) == 0);
    CHECK(cellar_st_writer_add(w, "c", 1, CELLAR_DTYPE_BF16, 1, s4, bf16, sizeof bf16) == 0);
    CHECK(cellar_st_writer_write(w, path) == 0);
    cellar_st_writer_free(w);

    cellar_st *st;
    CHECK(cellar_st_open(&st, path) == 0);
    cellar_tensor_stats *a, *b;
    CHECK(cellar_tensor_stats_new(&a) == 0 && cellar_tensor_stats_new(&b) == 0);
    CHECK(cellar_tensor_stats_add_st(a, st) == 0);
    cellar_tensor_totals t;
    cellar_tensor_stats_totals(&t, a);
    CHECK(t.tensors == 3 && t.params == 14 && t.bytes == 24 + 16 && !t.params_overflow);
    CHECK(cellar_tensor_stats_type_count(a) == 2);
    const char *name;
    uint64_t n, bytes;
    /* dtype order: BF16 before F32 in cellar_dtype */
    CHECK(cellar_tensor_stats_type_at(&name, &n, &bytes, a, 0) == 0);
    CHECK(!strcmp(name, "BF16") && n == 2 && bytes == 16);
    CHECK(cellar_tensor_stats_type_at(&name, &n, &bytes, a, 1) == 0);
    CHECK(!strcmp(name, "F32") && n == 1 && bytes == 24);
    CHECK_ERR(cellar_tensor_stats_type_at(&name, &n, &bytes, a, 2), CELLAR_EINVAL, "no type row 2");
    cellar_st_free(st);

    char here[] = __FILE__, gpath[4200];
    snprintf(gpath, sizeof gpath, "%s/../fuzz/corpus/fuzz_gguf/v3.gguf", dirname(here));
    cellar_gguf *g;
    CHECK_MSG(cellar_gguf_open(&g, gpath) == 0, "%s", cellar_error_last());
    if (g) {
        CHECK(cellar_tensor_stats_add_gguf(b, g) == 0);
        uint64_t want_params = 0, want_bytes = 0;
        for (size_t i = 0; i < cellar_gguf_tensor_count(g); i++) {
            want_params += cellar_gguf_tensor_at(g, i)->elements;
            want_bytes += cellar_gguf_tensor_at(g, i)->size;
        }
        cellar_tensor_stats_totals(&t, b);
        CHECK(t.tensors == cellar_gguf_tensor_count(g) && t.tensors > 0);
        CHECK(t.params == want_params && t.bytes == want_bytes);
        uint64_t sum = 0;
        for (size_t i = 0; i < cellar_tensor_stats_type_count(b); i++) {
            CHECK(cellar_tensor_stats_type_at(&name, &n, &bytes, b, i) == 0);
            sum += n;
        }
        CHECK(sum == t.tensors);
        cellar_gguf_free(g);
        /* merged: both files' rows and totals */
        CHECK(cellar_tensor_stats_merge(a, b) == 0);
        cellar_tensor_totals m;
        cellar_tensor_stats_totals(&m, a);
        CHECK(m.tensors == 3 + t.tensors && m.params == 14 + t.params);
        CHECK(cellar_tensor_stats_type_count(a) >= 2 + 1);
    }
    cellar_tensor_stats_free(a);
    cellar_tensor_stats_free(b);
    cellar_tensor_stats_free(NULL);
    cellar_tensor_stats_totals(&t, NULL);
    CHECK(t.tensors == 0);
    CHECK(cellar_tensor_stats_type_count(NULL) == 0);
}

int main(void)
{
    test_safetensors_and_gguf(test_tmpdir("test_stats"));
    return test_summary();
}
