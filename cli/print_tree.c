/* The two printers of a cellar_tree (what cellar_inspect() builds): JSON,
 * and text that follows the tree's display hints. Neither knows a format:
 * every format's reader in the library fills the same kind of tree. */
#include "cli.h"

#include <inttypes.h>
#include <string.h>

/* Values start in this column, after "label:" and spaces. */
#define LABEL_WIDTH 17

int cli_write_file(const void *data, size_t len, void *ctx)
{
    return fwrite(data, 1, len, ctx) == len ? 0 : 1;
}

int cli_tree_json(FILE *f, const cellar_node *n)
{
    int rc = cellar_tree_write_json(n, cli_write_file, f);
    fputc('\n', f);
    return rc;
}

static void indent(FILE *f, int n)
{
    fprintf(f, "%*s", n, "");
}

static bool shown(const cellar_node *n)
{
    return !(n->hints & CELLAR_NODE_HIDDEN) && (n->type != CELLAR_NODE_NULL || n->text);
}

/* A value on one line: its text view, else the value itself (containers
 * inline). Untrusted bytes are escaped. */
static void put_value(FILE *f, const cellar_node *n)
{
    if (n->text) {
        cli_put_escaped(f, n->text);
        return;
    }
    switch (n->type) {
    case CELLAR_NODE_BOOL: fputs(n->v.b ? "true" : "false", f); break;
    case CELLAR_NODE_U64: fprintf(f, "%" PRIu64, n->v.u); break;
    case CELLAR_NODE_I64: fprintf(f, "%" PRId64, n->v.i); break;
    case CELLAR_NODE_F64: fprintf(f, "%.17g", n->v.f); break;
    case CELLAR_NODE_STRING: cli_put_escaped_n(f, n->v.str.s, n->v.str.len); break;
    case CELLAR_NODE_ARRAY:
    case CELLAR_NODE_OBJECT: {
        bool obj = n->type == CELLAR_NODE_OBJECT;
        fputc(obj ? '{' : '[', f);
        for (const cellar_node *c = n->v.list.first; c; c = c->next) {
            fputs(c == n->v.list.first ? "" : ", ", f);
            if (obj) {
                cli_put_escaped_n(f, c->key, c->key_len);
                fputs(": ", f);
            }
            put_value(f, c);
        }
        fputc(obj ? '}' : ']', f);
        break;
    }
    default: fputs("none", f);
    }
}

/* A row of a table: its text view, else its shown values two spaces apart. */
static void put_row(FILE *f, const cellar_node *r, int ind)
{
    indent(f, ind);
    if (r->text || r->type != CELLAR_NODE_OBJECT) {
        put_value(f, r);
    } else {
        bool first = true;
        for (const cellar_node *c = r->v.list.first; c; c = c->next)
            if (shown(c)) {
                fputs(first ? "" : "  ", f);
                first = false;
                put_value(f, c);
            }
    }
    fputc('\n', f);
}

static void put_object(FILE *f, const cellar_node *o, int ind);

/* "label:" padded to the value column. */
static void put_label(FILE *f, const cellar_node *m, int ind)
{
    indent(f, ind);
    cli_put_escaped_n(f, m->key, m->key_len);
    fputc(':', f);
    int w = (int)m->key_len + 1;
    indent(f, w < LABEL_WIDTH ? LABEL_WIDTH - w : 1);
}

/* An array of objects without rows: one block each, under its heading. */
static void put_blocks(FILE *f, const cellar_node *a, int ind)
{
    for (const cellar_node *e = a->v.list.first; e; e = e->next) {
        if (e->text) {
            fputc('\n', f);
            indent(f, ind);
            cli_put_escaped(f, e->text);
            fputc('\n', f);
        }
        put_object(f, e, e->text ? ind + 2 : ind);
    }
}

/* Members as "label: value" lines; an object without a text view as
 * "label: key = value" lines; rows under a "label: count" line. */
static void put_object(FILE *f, const cellar_node *o, int ind)
{
    bool after_blocks = false;
    for (const cellar_node *m = o->v.list.first; m; m = m->next) {
        if (!shown(m))
            continue;
        if (m->type == CELLAR_NODE_ARRAY && !m->text && !(m->hints & CELLAR_NODE_ROWS)) {
            put_blocks(f, m, ind);
            after_blocks = m->v.list.count > 0;
            continue;
        }
        if (after_blocks)
            fputc('\n', f);
        after_blocks = false;
        put_label(f, m, ind);
        if (m->type == CELLAR_NODE_ARRAY && (m->hints & CELLAR_NODE_ROWS)) {
            fprintf(f, "%zu\n", m->v.list.count);
            for (const cellar_node *e = m->v.list.first; e; e = e->next)
                put_row(f, e, ind + 2);
        } else if (m->type == CELLAR_NODE_OBJECT && !m->text && m->v.list.count) {
            for (const cellar_node *e = m->v.list.first; e; e = e->next) {
                if (e != m->v.list.first)
                    indent(f, ind + LABEL_WIDTH);
                cli_put_escaped_n(f, e->key, e->key_len);
                fputs(" = ", f);
                put_value(f, e);
                fputc('\n', f);
            }
        } else {
            put_value(f, m);
            fputc('\n', f);
        }
    }
}

void cli_tree_text(FILE *f, const cellar_node *root)
{
    if (root->type == CELLAR_NODE_OBJECT)
        put_object(f, root, 0);
    else
        put_row(f, root, 0);
}
