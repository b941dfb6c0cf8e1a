/* Strict JSON parser and writer (see json.h).
 *
 * Speed comes from two choices: every unescaped string and number text goes
 * into one buffer sized from the input (an unescaped string plus its NUL is
 * never longer than its quoted source), and the children of a container are
 * collected on a shared scratch stack, then copied once into an arena when
 * the container closes, so each node is allocated exactly once. */
#include "json.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- arena ---- */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap, mapped; /* mapped: bytes to munmap, 0 if malloc'd */
    max_align_t data[];
} arena_block;

struct cellar_json_doc {
    cellar_json root;
    void *root_children; /* the scratch stack, kept as the root's storage */
    char *strings;
    size_t strings_mapped;
    arena_block *blocks;
    size_t next_cap;
};

/* Large blocks come from mmap(MAP_POPULATE): a big header's DOM is several
 * MB, and faulting its pages in one call costs a fraction of one trap per
 * page (the dominant cost of parsing a 10,000-tensor header otherwise). */
#define ARENA_MIN ((size_t)64 << 10)
#define ARENA_MAX ((size_t)8 << 20)

static void *big_alloc(size_t n, size_t *mapped)
{
    *mapped = 0;
    if (n >= ARENA_MIN) {
        void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                       -1, 0);
        if (p != MAP_FAILED) {
            *mapped = n;
            return p;
        }
    }
    return cellar_malloc(n);
}

static void big_free(void *p, size_t mapped)
{
    if (mapped)
        munmap(p, mapped);
    else
        free(p);
}

static void *arena_alloc(cellar_json_doc *doc, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    arena_block *b = doc->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = doc->next_cap ? doc->next_cap : ARENA_MIN;
        if (cap < ARENA_MAX)
            doc->next_cap = cap * 2;
        if (cap < n)
            cap = n;
        size_t mapped;
        b = big_alloc(sizeof *b + cap, &mapped);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->mapped = mapped;
        b->next = doc->blocks;
        doc->blocks = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

/* ---- parser ---- */

typedef struct parser {
    const unsigned char *p, *start, *end;
    char *out; /* next free byte in doc->strings */
    unsigned max_depth;
    cellar_json_doc *doc;
    cellar_json *vals; /* scratch stacks of pending children */
    size_t nvals, capvals;
    cellar_json_member *mems;
    size_t nmems, capmems;
    cellar_json_error err;
} parser;

static int fail_at(parser *ps, const unsigned char *at, cellar_json_rule rule, const char *what)
{
    ps->err.rule = rule;
    ps->err.offset = (size_t)(at - ps->start);
    ps->err.what = what;
    return CELLAR_EFORMAT;
}

static inline void skip_ws(parser *ps)
{
    const unsigned char *p = ps->p, *end = ps->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

static int push_val(parser *ps, const cellar_json *v)
{
    int rc = cellar_grow(&ps->vals, &ps->capvals, ps->nvals, sizeof *ps->vals, 64);
    if (rc)
        return rc;
    ps->vals[ps->nvals++] = *v;
    return 0;
}

static int push_mem(parser *ps, const cellar_json_member *m)
{
    if (ps->nmems == ps->capmems) {
        size_t cap = ps->capmems ? ps->capmems * 2 : 64;
        cellar_json_member *n = cellar_realloc(ps->mems, cap * sizeof *n);
        if (!n)
            return CELLAR_ENOMEM;
        ps->mems = n;
        ps->capmems = cap;
    }
    ps->mems[ps->nmems++] = *m;
    return 0;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Length of the valid UTF-8 sequence (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF) at p, or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t left = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF)
        return left >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0;
        if (c == 0xED && p[1] >= 0xA0)
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0;
        if (c == 0xF4 && p[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

size_t cellar_utf8_check(const void *data, size_t n)
{
    const unsigned char *p = data, *end = p + n;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_seq(p, end);
        if (!k)
            return (size_t)(p - (const unsigned char *)data);
        p += k;
    }
    return n;
}

/* Parses a string at ps->p (on the opening quote) into the string buffer. */
static int parse_string(parser *ps, const char **s, size_t *len)
{
    const unsigned char *p = ps->p + 1, *end = ps->end;
    char *o = ps->out, *begin = o;
    for (;;) {
        /* The common case: a run of plain ASCII copied as is. */
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80)
            *o++ = (char)*p++;
        if (p >= end)
            return fail_at(ps, p, CELLAR_JSON_ESYNTAX, "unterminated string");
        unsigned c = *p;
        if (c == '"') {
            p++;
            break;
        }
        if (c < 0x20)
            return fail_at(ps, p, CELLAR_JSON_ESTRING, "control character in string");
        if (c >= 0x80) {
            size_t n = utf8_seq(p, end);
            if (!n)
                return fail_at(ps, p, CELLAR_JSON_EUTF8, "invalid UTF-8 in string");
            memcpy(o, p, n);
            o += n;
            p += n;
            continue;
        }
        /* backslash */
        if (end - p < 2)
            return fail_at(ps, p, CELLAR_JSON_ESYNTAX, "unterminated string");
        const unsigned char *esc = p;
        p += 2;
        switch (esc[1]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (end - p < 4 || hex4(p, &cp))
                return fail_at(ps, esc, CELLAR_JSON_ESTRING, "bad \\u escape");
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail_at(ps, esc, CELLAR_JSON_ESTRING, "lone surrogate");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return fail_at(ps, esc, CELLAR_JSON_ESTRING, "lone surrogate");
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o = put_utf8(o, cp);
            break;
        }
        default:
            return fail_at(ps, esc, CELLAR_JSON_ESTRING, "bad escape");
        }
    }
    *o++ = '\0';
    *s = begin;
    *len = (size_t)(o - begin - 1);
    ps->out = o;
    ps->p = p;
    return 0;
}

static inline bool is_digit(unsigned c)
{
    return c - '0' < 10u;
}

static int parse_number(parser *ps, cellar_json *v)
{
    const unsigned char *p = ps->p, *end = ps->end, *start = p;
    if (*p == '-')
        p++;
    if (p >= end || !is_digit(*p))
        return fail_at(ps, start, CELLAR_JSON_ENUMBER, "number without digits");
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return fail_at(ps, start, CELLAR_JSON_ENUMBER, "number with a leading zero");
    } else {
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return fail_at(ps, start, CELLAR_JSON_ENUMBER, "number without fraction digits");
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return fail_at(ps, start, CELLAR_JSON_ENUMBER, "number without exponent digits");
        while (p < end && is_digit(*p))
            p++;
    }
    size_t n = (size_t)(p - start);
    memcpy(ps->out, start, n);
    ps->out[n] = '\0';
    v->type = CELLAR_JSON_NUMBER;
    v->u.str = ps->out;
    v->len = n;
    ps->out += n + 1;
    ps->p = p;
    return 0;
}

static int parse_value(parser *ps, cellar_json *v, unsigned depth);

static int parse_array(parser *ps, cellar_json *v, unsigned depth)
{
    size_t base = ps->nvals;
    int rc;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
    } else {
        for (;;) {
            cellar_json item;
            if ((rc = parse_value(ps, &item, depth)) || (rc = push_val(ps, &item)))
                return rc;
            skip_ws(ps);
            if (ps->p >= ps->end)
                return fail_at(ps, ps->p, CELLAR_JSON_ESYNTAX, "unterminated array");
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            if (*ps->p == ']') {
                ps->p++;
                break;
            }
            return fail_at(ps, ps->p, CELLAR_JSON_ESYNTAX, "expected ',' or ']'");
        }
    }
    size_t n = ps->nvals - base;
    if (n > UINT32_MAX)
        return fail_at(ps, ps->p, CELLAR_JSON_ELIMIT, "too many elements");
    v->type = CELLAR_JSON_ARRAY;
    v->count = (uint32_t)n;
    v->u.items = NULL;
    if (n && depth == 1) {
        /* The root's children are the whole stack: keep it, copy nothing. */
        ps->doc->root_children = ps->vals;
        v->u.items = ps->vals;
        ps->vals = NULL;
        ps->capvals = 0;
    } else if (n) {
        cellar_json *items = arena_alloc(ps->doc, n * sizeof *items);
        if (!items)
            return CELLAR_ENOMEM;
        memcpy(items, ps->vals + base, n * sizeof *items);
        v->u.items = items;
    }
    ps->nvals = base;
    return 0;
}

static int parse_object(parser *ps, cellar_json *v, unsigned depth)
{
    size_t base = ps->nmems;
    int rc;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
    } else {
        for (;;) {
            cellar_json_member m;
            if (ps->p >= ps->end || *ps->p != '"')
                return fail_at(ps, ps->p, CELLAR_JSON_ESYNTAX, "expected a string key");
            if ((rc = parse_string(ps, &m.key, &m.key_len)))
                return rc;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail_at(ps, ps->p, CELLAR_JSON_ESYNTAX, "expected ':'");
            ps->p++;
            if ((rc = parse_value(ps, &m.value, depth)) || (rc = push_mem(ps, &m)))
                return rc;
            skip_ws(ps);
            if (ps->p >= ps->end)
                return fail_at(ps, ps->p, CELLAR_JSON_ESYNTAX, "unterminated object");
            if (*ps->p == ',') {
                ps->p++;
                skip_ws(ps);
                continue;
            }
            if (*ps->p == '}') {
                ps->p++;
                break;
            }
            return fail_at(ps, ps->p, CELLAR_JSON_ESYNTAX, "expected ',' or '}'");
        }
    }
    size_t n = ps->nmems - base;
    if (n > UINT32_MAX)
        return fail_at(ps, ps->p, CELLAR_JSON_ELIMIT, "too many members");
    v->type = CELLAR_JSON_OBJECT;
    v->count = (uint32_t)n;
    v->u.members = NULL;
    if (n && depth == 1) {
        ps->doc->root_children = ps->mems;
        v->u.members = ps->mems;
        ps->mems = NULL;
        ps->capmems = 0;
    } else if (n) {
        cellar_json_member *mems = arena_alloc(ps->doc, n * sizeof *mems);
        if (!mems)
            return CELLAR_ENOMEM;
        memcpy(mems, ps->mems + base, n * sizeof *mems);
        v->u.members = mems;
    }
    ps->nmems = base;
    return 0;
}

static int literal(parser *ps, const char *word, size_t n, cellar_json_type t, cellar_json *v)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail_at(ps, ps->p, CELLAR_JSON_ESYNTAX, "expected a value");
    ps->p += n;
    v->type = t;
    return 0;
}

static int parse_value(parser *ps, cellar_json *v, unsigned depth)
{
    skip_ws(ps);
    memset(v, 0, sizeof *v);
    if (ps->p >= ps->end)
        return fail_at(ps, ps->p, CELLAR_JSON_ESYNTAX, "expected a value");
    v->offset = (size_t)(ps->p - ps->start);
    switch (*ps->p) {
    case '{':
    case '[':
        if (depth >= ps->max_depth)
            return fail_at(ps, ps->p, CELLAR_JSON_EDEPTH, "recursion limit exceeded");
        return *ps->p == '{' ? parse_object(ps, v, depth + 1) : parse_array(ps, v, depth + 1);
    case '"': {
        v->type = CELLAR_JSON_STRING;
        return parse_string(ps, &v->u.str, &v->len);
    }
    case 't':
        return literal(ps, "true", 4, CELLAR_JSON_TRUE, v);
    case 'f':
        return literal(ps, "false", 5, CELLAR_JSON_FALSE, v);
    case 'n':
        return literal(ps, "null", 4, CELLAR_JSON_NULL, v);
    default:
        if (*ps->p == '-' || is_digit(*ps->p))
            return parse_number(ps, v);
        return fail_at(ps, ps->p, CELLAR_JSON_ESYNTAX, "expected a value");
    }
}

int cellar_json_parse(cellar_json_doc **out, const void *data, size_t len, unsigned max_depth,
                      const char *label, cellar_json_error *err)
{
    *out = NULL;
    if (err)
        memset(err, 0, sizeof *err);
    if (len == SIZE_MAX)
        return cellar_fail(CELLAR_ERANGE, "%s: JSON input too large", label);
    cellar_json_doc *doc = cellar_calloc(1, sizeof *doc);
    if (!doc)
        return CELLAR_ENOMEM;
    doc->strings = big_alloc(len + 1, &doc->strings_mapped);
    if (!doc->strings) {
        free(doc);
        return CELLAR_ENOMEM;
    }
    parser ps = {
        .p = data,
        .start = data,
        .end = (const unsigned char *)data + len,
        .out = doc->strings,
        .max_depth = max_depth ? max_depth : CELLAR_JSON_DEFAULT_DEPTH,
        .doc = doc,
    };
    if (ps.max_depth > CELLAR_JSON_MAX_DEPTH)
        ps.max_depth = CELLAR_JSON_MAX_DEPTH;
    int rc = parse_value(&ps, &doc->root, 0);
    if (rc == 0) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            rc = fail_at(&ps, ps.p, CELLAR_JSON_ETRAILING, "trailing characters");
    }
    free(ps.vals);
    free(ps.mems);
    if (rc == CELLAR_EFORMAT) {
        if (err)
            *err = ps.err;
        rc = cellar_fail(CELLAR_EFORMAT, "%s: invalid JSON at byte %zu: %s", label, ps.err.offset,
                         ps.err.what);
    }
    if (rc) {
        cellar_json_free(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

const cellar_json *cellar_json_root(const cellar_json_doc *doc)
{
    return doc ? &doc->root : NULL;
}

void cellar_json_free(cellar_json_doc *doc)
{
    if (!doc)
        return;
    for (arena_block *b = doc->blocks, *next; b; b = next) {
        next = b->next;
        big_free(b, b->mapped);
    }
    big_free(doc->strings, doc->strings_mapped);
    free(doc->root_children);
    free(doc);
}

/* ---- lookups ---- */

const cellar_json *cellar_json_get(const cellar_json *v, const char *key, size_t key_len)
{
    if (!cellar_json_is(v, CELLAR_JSON_OBJECT))
        return NULL;
    for (size_t i = v->count; i-- > 0;) {
        const cellar_json_member *m = &v->u.members[i];
        if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0)
            return &m->value;
    }
    return NULL;
}

const cellar_json *cellar_json_getz(const cellar_json *v, const char *key)
{
    return cellar_json_get(v, key, strlen(key));
}

size_t cellar_json_count_key(const cellar_json *v, const char *key, size_t key_len)
{
    size_t n = 0;
    if (!cellar_json_is(v, CELLAR_JSON_OBJECT))
        return 0;
    for (size_t i = 0; i < v->count; i++) {
        const cellar_json_member *m = &v->u.members[i];
        n += m->key_len == key_len && memcmp(m->key, key, key_len) == 0;
    }
    return n;
}

const cellar_json *cellar_json_at(const cellar_json *v, size_t i)
{
    if (!cellar_json_is(v, CELLAR_JSON_ARRAY) || i >= v->count)
        return NULL;
    return &v->u.items[i];
}

bool cellar_json_str_eq(const cellar_json *v, const char *s)
{
    size_t n = strlen(s);
    return cellar_json_is(v, CELLAR_JSON_STRING) && v->len == n && memcmp(v->u.str, s, n) == 0;
}

bool cellar_json_u64(const cellar_json *v, uint64_t *out)
{
    if (!cellar_json_is(v, CELLAR_JSON_NUMBER) || v->len == 0)
        return false;
    const char *s = v->u.str;
    if (s[0] == '0' && v->len > 1)
        return false; /* "0.5", "0e1" (leading zeros never reach here) */
    uint64_t x = 0;
    for (size_t i = 0; i < v->len; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9 || ck_mul(x, (uint64_t)10, &x) || ck_add(x, (uint64_t)d, &x))
            return false;
    }
    *out = x;
    return true;
}

/* ---- writer ---- */

int cellar_json_escape(cellar_buf *buf, const char *s, size_t len, bool ascii)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    int rc = cellar_buf_append(buf, "\"", 1);
    while (rc == 0 && p < end) {
        const unsigned char *run = p;
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x7F)
            p++;
        if (p > run && (rc = cellar_buf_append(buf, run, (size_t)(p - run))))
            break;
        if (p >= end)
            break;
        unsigned c = *p;
        char e[12];
        size_t n = 2;
        e[0] = '\\';
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        default:
            if (c < 0x20 || (c == 0x7F && ascii)) {
                memcpy(e, "\\u00", 4);
                e[4] = hex[c >> 4];
                e[5] = hex[c & 15];
                n = 6;
            } else if (c == 0x7F || !ascii) {
                e[0] = (char)c;
                n = 1;
            } else {
                /* Non-ASCII under ascii: decode one UTF-8 sequence (bytes
                 * that are not valid UTF-8 are written as U+FFFD). */
                size_t sl = utf8_seq(p, end);
                unsigned cp = 0xFFFD;
                if (sl == 2)
                    cp = (c & 0x1Fu) << 6 | (p[1] & 0x3Fu);
                else if (sl == 3)
                    cp = (c & 0x0Fu) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu);
                else if (sl == 4)
                    cp = (c & 0x07u) << 18 | (p[1] & 0x3Fu) << 12 | (p[2] & 0x3Fu) << 6 |
                         (p[3] & 0x3Fu);
                p += sl ? sl : 1;
                unsigned units[2] = {cp, 0};
                int nu = 1;
                if (cp >= 0x10000) {
                    units[0] = 0xD800 + ((cp - 0x10000) >> 10);
                    units[1] = 0xDC00 + ((cp - 0x10000) & 0x3FF);
                    nu = 2;
                }
                for (int i = 0; i < nu && rc == 0; i++) {
                    char u[6] = {'\\', 'u', hex[units[i] >> 12], hex[units[i] >> 8 & 15],
                                 hex[units[i] >> 4 & 15], hex[units[i] & 15]};
                    rc = cellar_buf_append(buf, u, 6);
                }
                continue;
            }
        }
        rc = cellar_buf_append(buf, e, n);
        p++;
    }
    return rc ? rc : cellar_buf_append(buf, "\"", 1);
}

void cellar_jw_init(cellar_jw *w, cellar_buf *buf, unsigned indent, bool ascii)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->indent = indent;
    w->ascii = ascii;
}

static void jw_put(cellar_jw *w, const char *s, size_t n)
{
    if (w->rc == 0)
        w->rc = cellar_buf_append(w->buf, s, n);
}

static void jw_newline(cellar_jw *w)
{
    static const char spaces[] = "                                ";
    jw_put(w, "\n", 1);
    size_t n = (size_t)w->depth * w->indent;
    while (n > 0 && w->rc == 0) {
        size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
        jw_put(w, spaces, k);
        n -= k;
    }
}

/* Separator and indentation before a value or key. */
static void jw_before(cellar_jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth == 0)
        return;
    if (w->nonempty[w->depth])
        jw_put(w, ",", 1);
    w->nonempty[w->depth] = 1;
    if (w->indent)
        jw_newline(w);
}

static void jw_open(cellar_jw *w, const char *c)
{
    jw_before(w);
    jw_put(w, c, 1);
    if (w->depth + 1 >= sizeof w->nonempty) {
        if (w->rc == 0)
            w->rc = cellar_fail(CELLAR_EINVAL, "JSON writer: nesting too deep");
        return;
    }
    w->depth++;
    w->nonempty[w->depth] = 0;
}

static void jw_close(cellar_jw *w, const char *c)
{
    if (w->depth == 0) {
        if (w->rc == 0)
            w->rc = cellar_fail(CELLAR_EINVAL, "JSON writer: unbalanced close");
        return;
    }
    bool had = w->nonempty[w->depth];
    w->depth--;
    if (had && w->indent)
        jw_newline(w);
    jw_put(w, c, 1);
}

void cellar_jw_object(cellar_jw *w) { jw_open(w, "{"); }
void cellar_jw_object_end(cellar_jw *w) { jw_close(w, "}"); }
void cellar_jw_array(cellar_jw *w) { jw_open(w, "["); }
void cellar_jw_array_end(cellar_jw *w) { jw_close(w, "]"); }

void cellar_jw_key(cellar_jw *w, const char *key, size_t len)
{
    jw_before(w);
    if (w->rc == 0)
        w->rc = cellar_json_escape(w->buf, key, len, w->ascii);
    jw_put(w, w->indent ? ": " : ":", w->indent ? 2 : 1);
    w->after_key = true;
}

void cellar_jw_keyz(cellar_jw *w, const char *key)
{
    cellar_jw_key(w, key, strlen(key));
}

void cellar_jw_string(cellar_jw *w, const char *s, size_t len)
{
    jw_before(w);
    if (w->rc == 0)
        w->rc = cellar_json_escape(w->buf, s, len, w->ascii);
}

void cellar_jw_stringz(cellar_jw *w, const char *s)
{
    cellar_jw_string(w, s, strlen(s));
}

void cellar_jw_raw(cellar_jw *w, const char *text, size_t len)
{
    jw_before(w);
    jw_put(w, text, len);
}

void cellar_jw_u64(cellar_jw *w, uint64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    cellar_jw_raw(w, t, (size_t)n);
}

void cellar_jw_i64(cellar_jw *w, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%lld", (long long)v);
    cellar_jw_raw(w, t, (size_t)n);
}

void cellar_jw_bool(cellar_jw *w, bool v)
{
    cellar_jw_raw(w, v ? "true" : "false", v ? 4 : 5);
}

void cellar_jw_null(cellar_jw *w)
{
    cellar_jw_raw(w, "null", 4);
}

void cellar_jw_value(cellar_jw *w, const cellar_json *v)
{
    switch (v->type) {
    case CELLAR_JSON_NULL: cellar_jw_null(w); break;
    case CELLAR_JSON_FALSE: cellar_jw_bool(w, false); break;
    case CELLAR_JSON_TRUE: cellar_jw_bool(w, true); break;
    case CELLAR_JSON_NUMBER: cellar_jw_raw(w, v->u.str, v->len); break;
    case CELLAR_JSON_STRING: cellar_jw_string(w, v->u.str, v->len); break;
    case CELLAR_JSON_ARRAY:
        cellar_jw_array(w);
        for (size_t i = 0; i < v->count; i++)
            cellar_jw_value(w, &v->u.items[i]);
        cellar_jw_array_end(w);
        break;
    case CELLAR_JSON_OBJECT:
        cellar_jw_object(w);
        for (size_t i = 0; i < v->count; i++) {
            cellar_jw_key(w, v->u.members[i].key, v->u.members[i].key_len);
            cellar_jw_value(w, &v->u.members[i].value);
        }
        cellar_jw_object_end(w);
        break;
    }
}

int cellar_jw_finish(cellar_jw *w)
{
    if (w->rc == 0 && (w->depth != 0 || w->after_key))
        w->rc = cellar_fail(CELLAR_EINVAL, "JSON writer: unbalanced nesting");
    return w->rc;
}
