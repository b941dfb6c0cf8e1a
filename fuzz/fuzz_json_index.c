/* libFuzzer target: the strict JSON parser and the shard index checks.
 * Whatever parses must re-emit (compact writer) to text that parses to the
 * same emission; every weight_map path gets its verdict. */
#include "json.h"
#include "shard.h"

#include "fuzz.h"

static void emit(cellar_buf *b, const cellar_json *v)
{
    cellar_jw w;
    cellar_buf_init(b, 0);
    cellar_jw_init(&w, b, 0, false);
    cellar_jw_value(&w, v);
    REQUIRE(cellar_jw_finish(&w) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cellar_json_doc *doc;
    cellar_json_error err;
    if (cellar_json_parse(&doc, data, size, 0, "fuzz", &err) != 0) {
        REQUIRE(err.rule == CELLAR_JSON_OK || err.offset <= size);
        return 0;
    }
    const cellar_json *root = cellar_json_root(doc);
    const cellar_json *map = cellar_json_getz(root, "weight_map");
    for (size_t i = 0; cellar_json_is(map, CELLAR_JSON_OBJECT) && i < map->count; i++) {
        const cellar_json *v = &map->u.members[i].value;
        if (v->type == CELLAR_JSON_STRING)
            (void)cellar_index_path_problem(v->u.str, v->len);
    }
    uint64_t total;
    (void)cellar_json_u64(cellar_json_getz(cellar_json_getz(root, "metadata"), "total_size"), &total);

    cellar_buf a, b;
    emit(&a, root);
    cellar_json_doc *again;
    int rc = cellar_json_parse(&again, a.data, a.len, 0, "re-emitted", NULL);
    REQUIRE(rc == 0);
    emit(&b, cellar_json_root(again));
    REQUIRE(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    cellar_buf_free(&a);
    cellar_buf_free(&b);
    cellar_json_free(again);
    cellar_json_free(doc);
    return 0;
}
