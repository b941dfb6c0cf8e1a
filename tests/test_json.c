/* The strict JSON parser and writer: grammar edges, strings, integers,
 * duplicates, depth, error offsets, writer escaping and indentation. */
#include "json.h"
#include "testutil.h"

#include <time.h>

static cellar_json_doc *parse(const char *s, unsigned depth, cellar_json_error *err)
{
    cellar_json_doc *doc = NULL;
    cellar_json_parse(&doc, s, strlen(s), depth, "t.json", err);
    return doc;
}

static void check_rejects(const char *s, cellar_json_rule rule, size_t offset)
{
    cellar_json_error err;
    cellar_json_doc *doc = parse(s, 0, &err);
    CHECK_MSG(doc == NULL, "accepted %s", s);
    CHECK_MSG(err.rule == rule, "%s: rule %d, want %d", s, err.rule, rule);
    CHECK_MSG(err.offset == offset, "%s: offset %zu, want %zu", s, err.offset, offset);
    CHECK(cellar_error_code() == CELLAR_EFORMAT);
    CHECK(strstr(cellar_error_last(), "t.json: invalid JSON at byte") != NULL);
    cellar_json_free(doc);
}

static void check_accepts(const char *s)
{
    cellar_json_doc *doc = parse(s, 0, NULL);
    CHECK_MSG(doc != NULL, "rejected %s: %s", s, cellar_error_last());
    cellar_json_free(doc);
}

static void test_grammar(void)
{
    check_accepts("{}");
    check_accepts(" \t\r\n[1, -2, 3.5e+7, 0, -0.0, 1E-2, true, false, null, \"x\"] \n");
    check_accepts("\"just a string\"");
    check_accepts("0");
    check_rejects("", CELLAR_JSON_ESYNTAX, 0);
    check_rejects("   ", CELLAR_JSON_ESYNTAX, 3);
    check_rejects("{} x", CELLAR_JSON_ETRAILING, 3);
    check_rejects("{}{}", CELLAR_JSON_ETRAILING, 2);
    /* Only space, tab, CR, LF are whitespace: not NUL, VT, FF, NBSP, BOM. */
    {
        cellar_json_error err;
        cellar_json_doc *doc = NULL;
        CHECK(cellar_json_parse(&doc, "{}\0", 3, 0, "t.json", &err) == CELLAR_EFORMAT);
        CHECK(err.rule == CELLAR_JSON_ETRAILING && err.offset == 2);
    }
    check_rejects("{}\v", CELLAR_JSON_ETRAILING, 2);
    check_rejects("{}\f", CELLAR_JSON_ETRAILING, 2);
    check_rejects("\xEF\xBB\xBF{}", CELLAR_JSON_ESYNTAX, 0);
    check_rejects("[1,]", CELLAR_JSON_ESYNTAX, 3);
    check_rejects("{\"a\":1,}", CELLAR_JSON_ESYNTAX, 7);
    check_rejects("{\"a\" 1}", CELLAR_JSON_ESYNTAX, 5);
    check_rejects("{a:1}", CELLAR_JSON_ESYNTAX, 1);
    check_rejects("[1 2]", CELLAR_JSON_ESYNTAX, 3);
    check_rejects("/* c */ {}", CELLAR_JSON_ESYNTAX, 0);
    check_rejects("[tru]", CELLAR_JSON_ESYNTAX, 1);
    check_rejects("[NaN]", CELLAR_JSON_ESYNTAX, 1);
    check_rejects("[01]", CELLAR_JSON_ENUMBER, 1);
    check_rejects("[-01]", CELLAR_JSON_ENUMBER, 1);
    check_rejects("[1.]", CELLAR_JSON_ENUMBER, 1);
    check_rejects("[.5]", CELLAR_JSON_ESYNTAX, 1);
    check_rejects("[1e]", CELLAR_JSON_ENUMBER, 1);
    check_rejects("[-]", CELLAR_JSON_ENUMBER, 1);
    check_rejects("[+1]", CELLAR_JSON_ESYNTAX, 1);
    check_rejects("[1", CELLAR_JSON_ESYNTAX, 2);
    check_rejects("{\"a\":1", CELLAR_JSON_ESYNTAX, 6);
}

static void test_strings(void)
{
    cellar_json_doc *doc = parse("[\"a\\u0000b\", \"\\u00e9\\uD83D\\uDE00\\/\\\"\\\\\\b\\f\\n\\r\\t\", "
                                 "\"\xC3\xA9\xF0\x9F\x98\x80\"]",
                                 0, NULL);
    CHECK(doc != NULL);
    if (doc) {
        const cellar_json *r = cellar_json_root(doc);
        const cellar_json *a = cellar_json_at(r, 0), *b = cellar_json_at(r, 1);
        CHECK(a->len == 3 && memcmp(a->u.str, "a\0b", 3) == 0);
        CHECK(b->len == 14 && memcmp(b->u.str, "\xC3\xA9\xF0\x9F\x98\x80/\"\\\b\f\n\r\t", 14) == 0);
        CHECK(cellar_json_at(r, 2)->len == 6);
        CHECK(cellar_json_at(r, 3) == NULL);
    }
    cellar_json_free(doc);
    check_rejects("[\"a\tb\"]", CELLAR_JSON_ESTRING, 3);
    check_rejects("[\"\\x\"]", CELLAR_JSON_ESTRING, 2);
    check_rejects("[\"\\u12G4\"]", CELLAR_JSON_ESTRING, 2);
    check_rejects("[\"\\uD800\"]", CELLAR_JSON_ESTRING, 2);
    check_rejects("[\"\\uD800\\u0041\"]", CELLAR_JSON_ESTRING, 2);
    check_rejects("[\"\\uDC00\"]", CELLAR_JSON_ESTRING, 2);
    check_rejects("[\"\xFF\"]", CELLAR_JSON_EUTF8, 2);
    check_rejects("[\"\xC0\x80\"]", CELLAR_JSON_EUTF8, 2);           /* overlong NUL */
    check_rejects("[\"\xED\xA0\x80\"]", CELLAR_JSON_EUTF8, 2);       /* encoded surrogate */
    check_rejects("[\"\xF4\x90\x80\x80\"]", CELLAR_JSON_EUTF8, 2);   /* > U+10FFFF */
    check_rejects("[\"\xE2\x82\"]", CELLAR_JSON_EUTF8, 2);           /* truncated */
    check_rejects("[\"abc", CELLAR_JSON_ESYNTAX, 5);
}

static void test_integers(void)
{
    static const struct {
        const char *text;
        bool ok;
        uint64_t want;
    } cases[] = {
        {"0", true, 0},
        {"16", true, 16},
        {"18446744073709551615", true, UINT64_MAX},
        {"18446744073709551616", false, 0},
        {"99999999999999999999", false, 0},
        {"16.0", false, 0},
        {"2e0", false, 0},
        {"1E2", false, 0},
        {"-0", false, 0},
        {"-1", false, 0},
        {"0.0", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cellar_json_doc *doc = parse(cases[i].text, 0, NULL);
        uint64_t v = 12345;
        CHECK(doc != NULL);
        bool ok = cellar_json_u64(cellar_json_root(doc), &v);
        CHECK_MSG(ok == cases[i].ok, "%s", cases[i].text);
        if (ok)
            CHECK(v == cases[i].want);
        cellar_json_free(doc);
    }
    cellar_json_doc *doc = parse("[\"2\", true, null]", 0, NULL);
    uint64_t v;
    for (size_t i = 0; i < 3; i++)
        CHECK(!cellar_json_u64(cellar_json_at(cellar_json_root(doc), i), &v));
    cellar_json_free(doc);
}

static void test_objects(void)
{
    cellar_json_doc *doc = parse("{\"a\":1,\"b\":{},\"a\":2,\"\\u0061\":3,\"\":[]}", 0, NULL);
    const cellar_json *r = cellar_json_root(doc);
    CHECK(r->count == 5);
    CHECK(cellar_json_count_key(r, "a", 1) == 3);
    uint64_t v = 0;
    CHECK(cellar_json_u64(cellar_json_getz(r, "a"), &v) && v == 3); /* last wins */
    CHECK(strcmp(r->u.members[0].key, "a") == 0 && r->u.members[1].key_len == 1);
    CHECK(cellar_json_is(cellar_json_get(r, "", 0), CELLAR_JSON_ARRAY));
    CHECK(cellar_json_is(cellar_json_getz(r, "b"), CELLAR_JSON_OBJECT));
    CHECK(cellar_json_getz(r, "c") == NULL);
    CHECK(cellar_json_getz(cellar_json_getz(r, "b"), "x") == NULL);
    CHECK(cellar_json_getz(NULL, "x") == NULL);
    CHECK(r->u.members[3].value.offset == 29);
    cellar_json_free(doc);
}

static void test_depth(void)
{
    char deep[600];
    for (int n = 1; n <= 260; n++) {
        memset(deep, '[', (size_t)n);
        memset(deep + n, ']', (size_t)n);
        deep[2 * n] = '\0';
        cellar_json_error err;
        cellar_json_doc *doc = parse(deep, 128, &err);
        bool want = n <= 128;
        CHECK_MSG((doc != NULL) == want, "depth %d", n);
        if (!want)
            CHECK(err.rule == CELLAR_JSON_EDEPTH && err.offset == 128);
        cellar_json_free(doc);
    }
    CHECK(parse("[[[1]]]", 2, NULL) == NULL);
    cellar_json_doc *doc = parse("[[[1]]]", 3, NULL);
    CHECK(doc != NULL);
    cellar_json_free(doc);
}

static void test_writer(void)
{
    cellar_buf b;
    cellar_jw w;
    cellar_buf_init(&b, 0);
    cellar_jw_init(&w, &b, 2, true);
    cellar_jw_object(&w);
    cellar_jw_keyz(&w, "metadata");
    cellar_jw_object(&w);
    cellar_jw_keyz(&w, "total_size");
    cellar_jw_u64(&w, 42);
    cellar_jw_object_end(&w);
    cellar_jw_keyz(&w, "empty");
    cellar_jw_object(&w);
    cellar_jw_object_end(&w);
    cellar_jw_keyz(&w, "list");
    cellar_jw_array(&w);
    cellar_jw_i64(&w, -1);
    cellar_jw_stringz(&w, "\xC3\xA9\xF0\x9F\x98\x80\x7F\"\\\n\x01");
    cellar_jw_array_end(&w);
    cellar_jw_object_end(&w);
    CHECK(cellar_jw_finish(&w) == 0);
    /* What Python's json.dumps(..., indent=2) prints for the same value. */
    CHECK_STR(b.data, "{\n  \"metadata\": {\n    \"total_size\": 42\n  },\n  \"empty\": {},\n"
                      "  \"list\": [\n    -1,\n    \"\\u00e9\\ud83d\\ude00\\u007f\\\"\\\\\\n\\u0001\"\n"
                      "  ]\n}");
    cellar_buf_free(&b);

    cellar_buf_init(&b, 0);
    cellar_jw_init(&w, &b, 0, false);
    cellar_jw_object(&w);
    cellar_jw_key(&w, "a\0b", 3);
    cellar_jw_array(&w);
    cellar_jw_u64(&w, UINT64_MAX);
    cellar_jw_bool(&w, true);
    cellar_jw_null(&w);
    cellar_jw_stringz(&w, "\xC3\xA9");
    cellar_jw_array_end(&w);
    cellar_jw_object_end(&w);
    CHECK(cellar_jw_finish(&w) == 0);
    CHECK_STR(b.data, "{\"a\\u0000b\":[18446744073709551615,true,null,\"\xC3\xA9\"]}");

    /* Re-emitting a parsed document gives the same compact text. */
    const char *src = "{\"x\":[1,2.5e3,{\"y\":null}],\"z\":\"q\\u0000\"}";
    cellar_json_doc *doc = parse(src, 0, NULL);
    b.len = 0;
    cellar_jw_init(&w, &b, 0, false);
    cellar_jw_value(&w, cellar_json_root(doc));
    CHECK(cellar_jw_finish(&w) == 0);
    CHECK_STR(b.data, src);
    cellar_json_free(doc);

    cellar_jw_init(&w, &b, 0, false);
    cellar_jw_object(&w);
    CHECK(cellar_jw_finish(&w) == CELLAR_EINVAL);
    cellar_buf_free(&b);
}

/* A 10,000-tensor safetensors-like header must parse in a few ms. */
static void test_speed(void)
{
    cellar_buf b;
    cellar_buf_init(&b, 0);
    cellar_buf_append(&b, "{\"__metadata__\":{\"format\":\"pt\"}", 31);
    for (int i = 0; i < 10000; i++)
        cellar_buf_printf(&b, ",\"model.layers.%d.self_attn.q_proj.weight\":{\"dtype\":\"BF16\","
                              "\"shape\":[4096,4096],\"data_offsets\":[%d,%d]}",
                          i, i * 32, i * 32 + 32);
    cellar_buf_append(&b, "}", 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cellar_json_doc *doc = NULL;
    int rc = cellar_json_parse(&doc, b.data, b.len, 128, "big", NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK(rc == 0 && cellar_json_root(doc)->count == 10001);
    /* Printed, not asserted: speed is bench/formats.sh's job, this machine is shared. */
    printf("10,000-member header (%zu bytes) parsed in %.2f ms\n", b.len, ms);
    cellar_json_free(doc);
    cellar_buf_free(&b);
}

int main(void)
{
    test_grammar();
    test_strings();
    test_integers();
    test_objects();
    test_depth();
    test_writer();
    test_speed();
    return test_summary();
}
