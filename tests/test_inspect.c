/* cellar_tree (built through tree.h, written as JSON) and cellar_inspect()
 * over files written here: the tree's shape, the JSON escaping of any byte,
 * bounded output pieces, a stop from the writer, errors with what was read. */
#include "cellar.h"
#include "testutil.h"
#include "json.h"
#include "tree.h"

#include <libgen.h>
#include <math.h>

struct sink {
    char *data;
    size_t len, pieces, largest, stop_after;
};

/* cellar_node_find as an expression: the member, or NULL (its error
 * checked to name the key). */
static const cellar_node *get(const cellar_node *n, const char *key)
{
    const cellar_node *m = NULL;
    int rc = cellar_node_find(&m, n, key);
    CHECK(rc == 0 || (rc == CELLAR_ENOTFOUND && m == NULL && strstr(cellar_error_last(), key)));
    return m;
}

static int collect(const void *data, size_t len, void *ctx)
{
    struct sink *s = ctx;
    if (s->stop_after && s->pieces == s->stop_after)
        return 1;
    char *p = realloc(s->data, s->len + len + 1);
    if (!p)
        return 1;
    memcpy(p + s->len, data, len);
    s->data = p;
    s->len += len;
    s->data[s->len] = '\0';
    s->pieces++;
    if (len > s->largest)
        s->largest = len;
    return 0;
}

static char *json_of(const cellar_node *n)
{
    struct sink s = {0};
    int rc = cellar_tree_write_json(n, collect, &s);
    CHECK_MSG(rc == 0, "%s", cellar_error_last());
    return s.data;
}

/* A parsed object into the tree: duplicate keys, last wins at its place;
 * 100,000 keys (half of them repeats) in one pass, not one lookup each. */
static void test_tree_from_json(void)
{
    cellar_json_doc *doc;
    const char *txt = "{\"a\":1,\"b\":{\"x\":1,\"x\":[2]},\"a\":3,\"c\":null}";
    CHECK(cellar_json_parse(&doc, txt, strlen(txt), 16, "t", NULL) == 0);
    cellar_tree *t;
    CHECK(tree_new(&t) == 0);
    tree_json(t, tree_root(t), "v", cellar_json_root(doc));
    CHECK(tree_status(t) == 0);
    char *j = json_of(cellar_tree_root(t));
    CHECK_STR(j ? j : "", "{\"v\":{\"b\":{\"x\":[2]},\"a\":3,\"c\":null}}");
    free(j);
    cellar_tree_free(t);
    cellar_json_free(doc);

    cellar_buf b;
    cellar_buf_init(&b, 8 << 20);
    int rc = cellar_buf_append(&b, "{", 1);
    for (int i = 0; !rc && i < 100000; i++)
        rc = cellar_buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i % 50000, i);
    rc = rc ? rc : cellar_buf_append(&b, "}", 1);
    CHECK(rc == 0 && cellar_json_parse(&doc, b.data, b.len, 16, "big", NULL) == 0);
    CHECK(tree_new(&t) == 0);
    cellar_node *o = tree_json(t, tree_root(t), "v", cellar_json_root(doc));
    CHECK(tree_status(t) == 0 && o && o->v.list.count == 50000);
    const cellar_node *k7 = get(o, "k7");
    CHECK(k7 && k7->type == CELLAR_NODE_U64 && k7->v.u == 50007);
    cellar_tree_free(t);
    cellar_json_free(doc);
    cellar_buf_free(&b);
}

static void test_tree_json(void)
{
    cellar_tree *t;
    CHECK(tree_new(&t) == 0);
    cellar_node *r = tree_root(t);
    tree_strz(t, r, "s", "q\"b\\n\n\x1b\x7f");
    tree_str(t, r, "bytes", "\xff\xc3\xa9\xf0\x9f\x98\x80", 7); /* bad byte, é, an emoji */
    tree_key(t, tree_u64(t, r, NULL, UINT64_MAX), "k\0\"", 3);
    tree_i64(t, r, "i", INT64_MIN);
    tree_f64(t, r, "nan", NAN);
    tree_f64(t, r, "half", 0.5);
    tree_bool(t, r, "yes", true);
    tree_strz(t, r, "none", NULL);
    cellar_node *a = tree_hint(tree_array(t, r, "rows"), CELLAR_NODE_ROWS);
    tree_object(t, a, NULL);
    tree_array(t, a, NULL);
    CHECK(tree_status(t) == 0);
    char *j = json_of(cellar_tree_root(t));
    CHECK_STR(j ? j : "", "{\"s\":\"q\\\"b\\\\n\\n\\u001b\\u007f\",\"bytes\":\"\\ufffd\\u00e9"
                          "\\ud83d\\ude00\",\"k\\u0000\\\"\":18446744073709551615,"
                          "\"i\":-9223372036854775808,\"nan\":null,\"half\":0.5,"
                          "\"yes\":true,\"none\":null,\"rows\":[{},[]]}");
    free(j);
    const cellar_node *rows = get(cellar_tree_root(t), "rows");
    CHECK(rows && rows->type == CELLAR_NODE_ARRAY && rows->v.list.count == 2 &&
          (rows->hints & CELLAR_NODE_ROWS));
    CHECK(get(cellar_tree_root(t), "absent") == NULL);
    CHECK(get(rows, "s") == NULL);
    cellar_tree_free(t);

    /* A large tree goes out in bounded pieces; a writer's non-zero stops it. */
    CHECK(tree_new(&t) == 0);
    a = tree_array(t, tree_root(t), "many");
    for (int i = 0; i < 100000; i++)
        tree_strz(t, tree_object(t, a, NULL), "name", "model.layers.0.self_attn.q_proj.weight");
    CHECK(tree_status(t) == 0);
    struct sink s = {0};
    CHECK(cellar_tree_write_json(cellar_tree_root(t), collect, &s) == 0);
    CHECK(s.len == strlen("{\"many\":[]}") + 100000 * strlen(
                       "{\"name\":\"model.layers.0.self_attn.q_proj.weight\"},") - 1);
    CHECK_MSG(s.pieces > 10 && s.largest < 70000, "%zu pieces, largest %zu", s.pieces, s.largest);
    free(s.data);
    /* One 300 KB string: still pieces of at most 64 KiB. */
    cellar_tree *long_t;
    CHECK(tree_new(&long_t) == 0);
    char *big = malloc(300000);
    memset(big, 'x', 300000);
    tree_str(long_t, tree_root(long_t), "meta", big, 300000);
    struct sink ls = {0};
    CHECK(cellar_tree_write_json(cellar_tree_root(long_t), collect, &ls) == 0);
    CHECK_MSG(ls.len == 300000 + strlen("{\"meta\":\"\"}") && ls.largest <= 65536,
              "%zu bytes, largest piece %zu", ls.len, ls.largest);
    free(ls.data);
    free(big);
    cellar_tree_free(long_t);
    struct sink stop = {.stop_after = 2};
    CHECK_ERR(cellar_tree_write_json(cellar_tree_root(t), collect, &stop), CELLAR_EUSER, "stopped");
    free(stop.data);
    cellar_tree_free(t);
    cellar_tree_free(NULL);
    CHECK(cellar_tree_root(NULL) == NULL);

    /* An identification tree; none gives a null root. */
    CHECK(cellar_identity_tree(&t, NULL) == 0);
    CHECK(cellar_tree_root(t)->type == CELLAR_NODE_NULL);
    cellar_tree_free(t);
}

static const cellar_node *at(const cellar_node *n, size_t i)
{
    const cellar_node *c = n ? n->v.list.first : NULL;
    while (c && i--)
        c = c->next;
    return c;
}

static uint64_t u64_of(const cellar_node *o, const char *key)
{
    const cellar_node *n = get(o, key);
    return n && n->type == CELLAR_NODE_U64 ? n->v.u : UINT64_MAX;
}

static void test_inspect_files(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    static const float f32[6] = {0};
    static const uint64_t s23[2] = {2, 3}, s4[1] = {4};
    cellar_st_writer *w;
    CHECK(cellar_st_writer_new(&w) == 0);
    CHECK(cellar_st_writer_add(w, "a\x1b", 2, CELLAR_DTYPE_F32, 2, s23, f32, sizeof f32) == 0);
    CHECK(cellar_st_writer_add(w, "b", 1, CELLAR_DTYPE_BF16, 1, s4, f32, 8) == 0);
    CHECK(cellar_st_writer_set_metadata(w, "origin", "test") == 0);
    CHECK(cellar_st_writer_write(w, path) == 0);
    cellar_st_writer_free(w);

    cellar_tree *t;
    CHECK_MSG(cellar_inspect(&t, path, NULL) == 0, "%s", cellar_error_last());
    const cellar_node *r = cellar_tree_root(t);
    CHECK(r && r->type == CELLAR_NODE_OBJECT);
    const cellar_node *f = get(r, "format");
    CHECK(f && !strcmp(f->v.str.s, "safetensors") && f->text &&
          strstr(f->text, "safetensors, header"));
    CHECK(u64_of(r, "tensors") == 2 && u64_of(r, "parameters") == 10);
    const cellar_node *comps = get(r, "components");
    CHECK(comps && comps->v.list.count == 1);
    const cellar_node *c = at(comps, 0);
    CHECK(u64_of(c, "tensor_bytes") == 32);
    CHECK(get(c, "tensor_list") == NULL);
    const cellar_node *h = get(c, "structural_hash");
    CHECK(h && h->type == CELLAR_NODE_STRING && h->v.str.len == 32);
    const cellar_node *m = get(get(c, "metadata"), "origin");
    CHECK(m && !strcmp(m->v.str.s, "test"));
    CHECK(get(r, "error") == NULL && get(r, "warnings") == NULL);
    cellar_tree_free(t);

    cellar_inspect_opts o = CELLAR_INSPECT_OPTS_INIT;
    o.flags = CELLAR_INSPECT_TENSORS;
    CHECK(cellar_inspect(&t, path, &o) == 0);
    const cellar_node *list = get(at(get(cellar_tree_root(t),
                                                                 "components"), 0),
                                              "tensor_list");
    CHECK(list && list->v.list.count == 2 && (list->hints & CELLAR_NODE_ROWS));
    const cellar_node *row = at(list, 0); /* file order: F32 before BF16 */
    const cellar_node *name = get(row, "name");
    CHECK(name && name->v.str.len == 2 && !memcmp(name->v.str.s, "a\x1b", 2));
    const cellar_node *shape = get(row, "shape");
    CHECK(shape && shape->v.list.count == 2 && at(shape, 1)->v.u == 3);
    CHECK(u64_of(row, "bytes") == 24 && u64_of(row, "file") == 0);
    char *j = json_of(cellar_tree_root(t));
    CHECK(j && strstr(j, "\"name\":\"a\\u001b\",\"dtype\":\"F32\",\"shape\":[2,3],\"bytes\":24"));
    free(j);
    cellar_tree_free(t);

    /* Errors: a bad version; a broken file keeps what was read and why. */
    o.version = 99;
    CHECK_ERR(cellar_inspect(&t, path, &o), CELLAR_EINVAL, "version 99 unknown");
    CHECK(t == NULL);
    snprintf(path, sizeof path, "%s/short.safetensors", dir);
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fwrite("abc", 1, 3, fp) == 3);
    if (fp)
        fclose(fp);
    CHECK_ERR(cellar_inspect(&t, path, NULL), CELLAR_EFORMAT, "header too small");
    const cellar_node *e = get(cellar_tree_root(t), "error");
    CHECK(e && strstr(e->v.str.s, "header too small") && (e->hints & CELLAR_NODE_HIDDEN));
    cellar_tree_free(t);
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    CHECK_ERR(cellar_inspect(&t, path, NULL), CELLAR_ENOTFOUND, "missing.safetensors");
    CHECK(t == NULL);

    /* A GGUF: one component with the file's tensors; key/values at the root. */
    char here[] = __FILE__;
    snprintf(path, sizeof path, "%s/../fuzz/corpus/fuzz_gguf/v3.gguf", dirname(here));
    cellar_gguf *g;
    CHECK_MSG(cellar_gguf_open(&g, path) == 0, "%s", cellar_error_last());
    CHECK_MSG(cellar_inspect(&t, path, &(cellar_inspect_opts){CELLAR_INSPECT_OPTS_VERSION,
                                                              CELLAR_INSPECT_TENSORS, NULL}) == 0,
              "%s", cellar_error_last());
    if (g && t) {
        r = cellar_tree_root(t);
        c = at(get(r, "components"), 0);
        CHECK(!strcmp(get(r, "format")->v.str.s, "gguf"));
        CHECK(u64_of(c, "tensors") == cellar_gguf_tensor_count(g));
        CHECK(get(c, "tensor_list")->v.list.count == cellar_gguf_tensor_count(g));
        CHECK(get(r, "metadata")->v.list.count == cellar_gguf_kv_count(g));
    }
    cellar_tree_free(t);
    cellar_gguf_free(g);
}

int main(void)
{
    test_tree_json();
    test_tree_from_json();
    test_inspect_files(test_tmpdir("test_inspect"));
    return test_summary();
}
