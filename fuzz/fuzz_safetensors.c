/* libFuzzer target: the safetensors reader on arbitrary bytes. Whatever it
 * accepts must describe tensors that lie inside the input, and hashing and
 * re-serialising them must work. */
#include "safetensors.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cellar_st *st;
    if (cellar_st_open_buffer(&st, data, size, "fuzz") != 0)
        return 0;
    uint64_t sum = 0, prev_end = 0;
    cellar_st_writer *w = NULL;
    cellar_st_writer_new(&w);
    for (size_t i = 0; i < cellar_st_count(st); i++) {
        const cellar_st_tensor *t = cellar_st_tensor_at(st, i);
        REQUIRE(t->begin == prev_end && t->end >= t->begin);
        REQUIRE(t->offset + (t->end - t->begin) <= size);
        prev_end = t->end;
        const void *p;
        REQUIRE(cellar_st_data(&p, st, i) == 0);
        if (t->end > t->begin)
            sum += ((const uint8_t *)p)[0] + ((const uint8_t *)p)[t->end - t->begin - 1];
        size_t found;
        REQUIRE(cellar_st_find(&found, st, t->name, t->name_len) == 0);
        REQUIRE(cellar_st_tensor_at(st, found)->begin == t->begin);
        if (w)
            REQUIRE(cellar_st_writer_add_from(w, st, i) == 0);
    }
    REQUIRE(cellar_st_data_start(st) + prev_end == size);
    for (size_t i = 0; i < cellar_st_metadata_count(st); i++) {
        const char *k, *v;
        size_t kl, vl;
        REQUIRE(cellar_st_metadata_at(&k, &kl, &v, &vl, st, i) == 0);
    }
    char hash[33];
    cellar_structural_hash_st(hash, &st, 1);
    if (w) {
        /* The canonical header of the same tensors parses back. */
        cellar_buf hdr;
        if (cellar_st_writer_header(&hdr, w) == 0 && hdr.len >= 8) {
            uint64_t n = 0;
            for (int i = 7; i >= 0; i--)
                n = n << 8 | (uint8_t)hdr.data[i];
            uint64_t total = hdr.len + prev_end;
            uint8_t *copy = total <= (64u << 20) ? calloc(1, (size_t)total) : NULL;
            if (copy) {
                memcpy(copy, hdr.data, hdr.len);
                cellar_st *back;
                int rc = cellar_st_open_buffer(&back, copy, (size_t)total, "rewritten");
                REQUIRE(rc == 0 && n % 8 == 0);
                REQUIRE(cellar_st_count(back) == cellar_st_count(st));
                cellar_st_free(back);
                free(copy);
            }
        }
        cellar_buf_free(&hdr);
    }
    cellar_st_writer_free(w);
    cellar_st_free(st);
    return (int)(sum & 0);
}
