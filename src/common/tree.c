/* cellar_tree: a read-only tree of typed values in an arena (tree.h builds
 * it), and its JSON serialiser. */
#include "tree.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Arena blocks: nodes and strings are carved from them, freed together. */
struct block {
    struct block *next;
    size_t used, size;
    max_align_t data[];
};

#define BLOCK_SIZE ((size_t)64 * 1024)

/* A container remembers its last child, so appending is O(1). */
struct box {
    cellar_node n;
    cellar_node *last;
};

struct cellar_tree {
    struct block *blocks;
    struct box root;
    int rc;
};

/* Nodes need no more than pointer alignment (no long double in them). */
#define ARENA_ALIGN _Alignof(cellar_node)

static void *arena_alloc(cellar_tree *t, size_t n)
{
    n = (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    struct block *b = t->blocks;
    if (!b || b->size - b->used < n) {
        size_t size = n > BLOCK_SIZE / 4 ? n : BLOCK_SIZE;
        size_t bytes;
        if (ck_add(size, sizeof *b, &bytes) || !(b = cellar_malloc(bytes))) {
            t->rc = CELLAR_ENOMEM;
            return NULL;
        }
        b->used = 0;
        b->size = size;
        /* A large piece gets a block of its own, behind the current one. */
        if (size != BLOCK_SIZE && t->blocks) {
            b->next = t->blocks->next;
            t->blocks->next = b;
        } else {
            b->next = t->blocks;
            t->blocks = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

static char *arena_strdup(cellar_tree *t, const char *s, size_t len)
{
    size_t n;
    char *p = ck_add(len, (size_t)1, &n) ? NULL : arena_alloc(t, n);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

int tree_new(cellar_tree **out)
{
    cellar_tree *t = cellar_calloc(1, sizeof *t);
    *out = t;
    if (!t)
        return CELLAR_ENOMEM;
    t->root.n.type = CELLAR_NODE_OBJECT;
    return 0;
}

cellar_node *tree_root(cellar_tree *t)
{
    return &t->root.n;
}

void tree_fail(cellar_tree *t, int rc)
{
    if (t && !t->rc)
        t->rc = rc;
}

int tree_status(const cellar_tree *t)
{
    return t->rc;
}

const cellar_node *cellar_tree_root(const cellar_tree *t)
{
    return t ? &t->root.n : NULL;
}

void cellar_tree_free(cellar_tree *t)
{
    if (!t)
        return;
    for (struct block *b = t->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(t);
}

const cellar_node *tree_member(const cellar_node *n, const char *key)
{
    if (!n || n->type != CELLAR_NODE_OBJECT || !key)
        return NULL;
    size_t len = strlen(key);
    for (const cellar_node *m = n->v.list.first; m; m = m->next)
        if (m->key_len == len && memcmp(m->key, key, len) == 0)
            return m;
    return NULL;
}

int cellar_node_find(const cellar_node **out, const cellar_node *n, const char *key)
{
    if ((*out = tree_member(n, key)) != NULL)
        return 0;
    return cellar_fail(CELLAR_ENOTFOUND, "tree: no member '%s'%s", key ? key : "",
                       n && n->type == CELLAR_NODE_OBJECT ? "" : " (not an object)");
}

/* Appends a node of type to parent (an object when key is set, an array
 * otherwise). Containers get a box. */
static cellar_node *add(cellar_tree *t, cellar_node *parent, const char *key, unsigned char type)
{
    if (!parent || t->rc)
        return NULL;
    bool container = type == CELLAR_NODE_ARRAY || type == CELLAR_NODE_OBJECT;
    cellar_node *n = arena_alloc(t, container ? sizeof(struct box) : sizeof(cellar_node));
    if (!n)
        return NULL;
    memset(n, 0, container ? sizeof(struct box) : sizeof(cellar_node));
    n->type = type;
    if (key) {
        n->key = key;
        n->key_len = (uint32_t)strlen(key);
    }
    struct box *p = (struct box *)parent;
    if (p->last)
        p->last->next = n;
    else
        parent->v.list.first = n;
    p->last = n;
    parent->v.list.count++;
    return n;
}

cellar_node *tree_object(cellar_tree *t, cellar_node *parent, const char *key)
{
    return add(t, parent, key, CELLAR_NODE_OBJECT);
}

cellar_node *tree_array(cellar_tree *t, cellar_node *parent, const char *key)
{
    return add(t, parent, key, CELLAR_NODE_ARRAY);
}

cellar_node *tree_null(cellar_tree *t, cellar_node *parent, const char *key)
{
    return add(t, parent, key, CELLAR_NODE_NULL);
}

cellar_node *tree_bool(cellar_tree *t, cellar_node *parent, const char *key, bool v)
{
    cellar_node *n = add(t, parent, key, CELLAR_NODE_BOOL);
    if (n)
        n->v.b = v;
    return n;
}

cellar_node *tree_u64(cellar_tree *t, cellar_node *parent, const char *key, uint64_t v)
{
    cellar_node *n = add(t, parent, key, CELLAR_NODE_U64);
    if (n)
        n->v.u = v;
    return n;
}

cellar_node *tree_i64(cellar_tree *t, cellar_node *parent, const char *key, int64_t v)
{
    cellar_node *n = add(t, parent, key, CELLAR_NODE_I64);
    if (n)
        n->v.i = v;
    return n;
}

cellar_node *tree_f64(cellar_tree *t, cellar_node *parent, const char *key, double v)
{
    if (!isfinite(v))
        return tree_null(t, parent, key);
    cellar_node *n = add(t, parent, key, CELLAR_NODE_F64);
    if (n)
        n->v.f = v;
    return n;
}

cellar_node *tree_str(cellar_tree *t, cellar_node *parent, const char *key, const char *s,
                      size_t len)
{
    cellar_node *n = add(t, parent, key, CELLAR_NODE_STRING);
    if (n && (n->v.str.s = arena_strdup(t, s, len)) == NULL)
        return NULL;
    if (n)
        n->v.str.len = len;
    return n;
}

cellar_node *tree_strz(cellar_tree *t, cellar_node *parent, const char *key, const char *s)
{
    return s ? tree_str(t, parent, key, s, strlen(s)) : tree_null(t, parent, key);
}

/* Member keys compared as bytes (they may hold NUL), shorter first. */
static int member_cmp(const cellar_json_member *a, const cellar_json_member *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    if (c)
        return c;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

static int cmp_order(const void *pa, const void *pb, void *members)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    const cellar_json_member *m = members;
    int c = member_cmp(&m[a], &m[b]);
    return c ? c : (a > b) - (a < b);
}

cellar_node *tree_json(cellar_tree *t, cellar_node *parent, const char *key, const cellar_json *v)
{
    uint64_t u;
    switch (v->type) {
    case CELLAR_JSON_NULL:
        return tree_null(t, parent, key);
    case CELLAR_JSON_FALSE:
    case CELLAR_JSON_TRUE:
        return tree_bool(t, parent, key, v->type == CELLAR_JSON_TRUE);
    case CELLAR_JSON_NUMBER:
        if (cellar_json_u64(v, &u))
            return tree_u64(t, parent, key, u);
        return tree_f64(t, parent, key, strtod(v->u.str, NULL));
    case CELLAR_JSON_STRING:
        return tree_str(t, parent, key, v->u.str, v->len);
    case CELLAR_JSON_ARRAY: {
        cellar_node *a = tree_array(t, parent, key);
        for (uint32_t i = 0; a && i < v->count; i++)
            tree_json(t, a, NULL, &v->u.items[i]);
        return a;
    }
    case CELLAR_JSON_OBJECT: {
        cellar_node *o = tree_object(t, parent, key);
        if (!o)
            return NULL;
        /* Keys stay unique: the last of duplicates wins, as Python's. One
         * sort of the members by key finds the losers (a hostile document
         * with 200k keys must not cost 200k lookups of 200k keys). */
        uint32_t *order = v->count ? cellar_calloc(v->count, sizeof *order) : NULL;
        if (v->count && !order) {
            t->rc = CELLAR_ENOMEM;
            return NULL;
        }
        for (uint32_t i = 0; i < v->count; i++)
            order[i] = i;
        if (v->count > 1)
            qsort_r(order, v->count, sizeof *order, cmp_order, (void *)v->u.members);
        /* order: by key, then position; a member followed by one with its
         * own key is overridden. */
        uint8_t *lost = v->count ? cellar_calloc(v->count, 1) : NULL;
        if (v->count && !lost) {
            free(order);
            t->rc = CELLAR_ENOMEM;
            return NULL;
        }
        for (uint32_t k = 0; k + 1 < v->count; k++)
            if (!member_cmp(&v->u.members[order[k]], &v->u.members[order[k + 1]]))
                lost[order[k]] = 1;
        for (uint32_t i = 0; i < v->count; i++) {
            const cellar_json_member *m = &v->u.members[i];
            if (!lost[i])
                tree_key(t, tree_json(t, o, NULL, &m->value), m->key, m->key_len);
        }
        free(lost);
        free(order);
        return o;
    }
    }
    return NULL;
}

cellar_node *tree_key(cellar_tree *t, cellar_node *n, const char *key, size_t len)
{
    if (!n)
        return NULL;
    if (len > UINT32_MAX) {
        t->rc = CELLAR_ERANGE;
        return NULL;
    }
    n->key = arena_strdup(t, key, len);
    n->key_len = (uint32_t)len;
    return n->key ? n : NULL;
}

cellar_node *tree_text(cellar_tree *t, cellar_node *n, const char *fmt, ...)
{
    if (!n)
        return NULL;
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = len < 0 ? NULL : arena_alloc(t, (size_t)len + 1);
    if (p)
        vsnprintf(p, (size_t)len + 1, fmt, ap2);
    va_end(ap2);
    n->text = p;
    return p ? n : NULL;
}

cellar_node *tree_hint(cellar_node *n, unsigned hints)
{
    if (n)
        n->hints = (unsigned char)(n->hints | hints);
    return n;
}

/* ---- JSON ---- */

struct jout {
    cellar_buf buf;
    cellar_write_fn write;
    void *ctx;
    int rc;
};

static void jflush(struct jout *o, size_t at_least)
{
    if (o->rc || o->buf.len < at_least)
        return;
    /* Pieces of at most BLOCK_SIZE, as promised, even after one long
     * string filled the buffer past it. */
    for (size_t at = 0; at < o->buf.len; at += BLOCK_SIZE) {
        size_t n = o->buf.len - at < BLOCK_SIZE ? o->buf.len - at : BLOCK_SIZE;
        if (o->write(o->buf.data + at, n, o->ctx) != 0) {
            o->rc = cellar_fail(CELLAR_EUSER, "JSON output stopped by the caller");
            break;
        }
    }
    o->buf.len = 0;
}

static void jput(struct jout *o, const char *s, size_t n)
{
    if (!o->rc)
        o->rc = cellar_buf_append(&o->buf, s, n);
}

static void jstring(struct jout *o, const char *s, size_t n)
{
    if (!o->rc)
        o->rc = cellar_json_escape(&o->buf, s, n, true);
}

static void jvalue(struct jout *o, const cellar_node *n)
{
    char num[32];
    int len = 0;
    switch (n->type) {
    case CELLAR_NODE_BOOL:
        jput(o, n->v.b ? "true" : "false", n->v.b ? 4 : 5);
        break;
    case CELLAR_NODE_U64:
        len = snprintf(num, sizeof num, "%llu", (unsigned long long)n->v.u);
        break;
    case CELLAR_NODE_I64:
        len = snprintf(num, sizeof num, "%lld", (long long)n->v.i);
        break;
    case CELLAR_NODE_F64:
        len = snprintf(num, sizeof num, "%.17g", n->v.f);
        break;
    case CELLAR_NODE_STRING:
        jstring(o, n->v.str.s, n->v.str.len);
        break;
    case CELLAR_NODE_ARRAY:
    case CELLAR_NODE_OBJECT: {
        bool obj = n->type == CELLAR_NODE_OBJECT;
        jput(o, obj ? "{" : "[", 1);
        for (const cellar_node *c = n->v.list.first; c && !o->rc; c = c->next) {
            if (c != n->v.list.first)
                jput(o, ",", 1);
            if (obj) {
                jstring(o, c->key, c->key_len);
                jput(o, ":", 1);
            }
            jvalue(o, c);
            jflush(o, BLOCK_SIZE);
        }
        jput(o, obj ? "}" : "]", 1);
        break;
    }
    default:
        jput(o, "null", 4);
    }
    if (len > 0)
        jput(o, num, (size_t)len);
}

int cellar_tree_write_json(const cellar_node *n, cellar_write_fn write, void *ctx)
{
    RETURN_ERROR_IF(!n || !write, CELLAR_EINVAL, "cellar_tree_write_json: no node or writer");
    struct jout o = {.write = write, .ctx = ctx};
    cellar_buf_init(&o.buf, 0);
    jvalue(&o, n);
    jflush(&o, 0);
    cellar_buf_free(&o.buf);
    return o.rc;
}
