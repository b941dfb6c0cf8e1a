/* Building a cellar_tree (the public, read-only tree of typed values that
 * cellar_inspect() returns): nodes and strings come from an arena owned by
 * the tree, so a node costs no malloc and a tree is freed in one go.
 *
 * Errors are sticky: a builder call that runs out of memory records
 * CELLAR_ENOMEM in the tree and returns NULL, and every call given a NULL
 * parent or node does nothing and returns NULL, so a builder can chain
 * calls and check tree_status() once at the end. Keys passed to the
 * builders are borrowed for the tree's life (string literals); tree_key()
 * sets a copied one. */
#ifndef CELLAR_TREE_H
#define CELLAR_TREE_H

#include "json.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A new tree whose root is an empty object. */
int tree_new(cellar_tree **out);
/* The member of object n named key, or NULL (cellar_node_find without the
 * error message, for the library's own builders). */
const cellar_node *tree_member(const cellar_node *n, const char *key);
/* The root, to build on. */
cellar_node *tree_root(cellar_tree *t);
/* 0, or the first error a builder met (CELLAR_ENOMEM). */
int tree_status(const cellar_tree *t);
/* Makes rc the tree's error (the first one stays). */
void tree_fail(cellar_tree *t, int rc);

/* Each appends a member named key to the object parent, or an element to
 * the array parent (key NULL), and returns it. */
cellar_node *tree_object(cellar_tree *t, cellar_node *parent, const char *key);
cellar_node *tree_array(cellar_tree *t, cellar_node *parent, const char *key);
cellar_node *tree_null(cellar_tree *t, cellar_node *parent, const char *key);
cellar_node *tree_bool(cellar_tree *t, cellar_node *parent, const char *key, bool v);
cellar_node *tree_u64(cellar_tree *t, cellar_node *parent, const char *key, uint64_t v);
cellar_node *tree_i64(cellar_tree *t, cellar_node *parent, const char *key, int64_t v);
/* A NaN or infinity becomes a null node. */
cellar_node *tree_f64(cellar_tree *t, cellar_node *parent, const char *key, double v);
/* Copies len bytes of s. */
cellar_node *tree_str(cellar_tree *t, cellar_node *parent, const char *key, const char *s,
                      size_t len);
/* s NULL gives a null node. */
cellar_node *tree_strz(cellar_tree *t, cellar_node *parent, const char *key, const char *s);
/* A copy of a parsed JSON value (objects keep their members in order). */
cellar_node *tree_json(cellar_tree *t, cellar_node *parent, const char *key,
                       const cellar_json *v);

/* Sets n's key to a copy of len bytes. Returns n. */
cellar_node *tree_key(cellar_tree *t, cellar_node *n, const char *key, size_t len);
/* Sets n's text view (printf-style, copied). Returns n. */
cellar_node *tree_text(cellar_tree *t, cellar_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds display hints to n (CELLAR_NODE_HIDDEN, CELLAR_NODE_ROWS). Returns n. */
cellar_node *tree_hint(cellar_node *n, unsigned hints);

#endif
