/* A strict JSON (RFC 8259) parser into a read-only DOM, and a small writer.
 *
 * Parsing (cellar_json_parse):
 *  - exactly one value, surrounded only by space, tab, CR or LF; no BOM,
 *    comments, trailing commas, raw control characters in strings;
 *  - strings are unescaped into length-delimited, valid UTF-8 (they may hold
 *    NUL; lone surrogates are rejected); each is also NUL-terminated for
 *    convenience;
 *  - numbers are checked against the grammar and kept as their raw text;
 *    cellar_json_u64() converts a JSON integer exactly;
 *  - objects keep every member in input order, duplicates included, so the
 *    caller decides between last-wins and rejection;
 *  - nesting deeper than max_depth is an error.
 * Errors carry the byte offset and a rule (cellar_json_rule) and set the
 * thread's message "<label>: invalid JSON at byte N: <rule text>".
 *
 * The document owns every node and string; nothing points into the input.
 */
#ifndef CELLAR_JSON_H
#define CELLAR_JSON_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cellar_json_type {
    CELLAR_JSON_NULL,
    CELLAR_JSON_FALSE,
    CELLAR_JSON_TRUE,
    CELLAR_JSON_NUMBER,
    CELLAR_JSON_STRING,
    CELLAR_JSON_ARRAY,
    CELLAR_JSON_OBJECT,
} cellar_json_type;

typedef struct cellar_json cellar_json;
typedef struct cellar_json_member cellar_json_member;

/* A value. str/len: a string's unescaped bytes or a number's raw text.
 * count: elements of an array (items) or members of an object (members).
 * offset: where the value starts in the input. */
struct cellar_json {
    cellar_json_type type;
    uint32_t count;
    size_t offset;
    size_t len;
    union {
        const char *str;
        const cellar_json *items;
        const cellar_json_member *members;
    } u;
};

struct cellar_json_member {
    const char *key; /* unescaped, NUL-terminated, may also contain NUL */
    size_t key_len;
    cellar_json value;
};

/* Why a parse failed, so callers can map rules to their own wording. */
typedef enum cellar_json_rule {
    CELLAR_JSON_OK = 0,
    CELLAR_JSON_ESYNTAX,   /* unexpected character or end of input */
    CELLAR_JSON_ETRAILING, /* something other than whitespace after the value */
    CELLAR_JSON_EDEPTH,    /* nesting deeper than max_depth */
    CELLAR_JSON_EUTF8,     /* invalid UTF-8 in a string */
    CELLAR_JSON_ESTRING,   /* raw control character, bad escape, lone surrogate */
    CELLAR_JSON_ENUMBER,   /* number breaking the grammar (leading zero, "1.", "-") */
    CELLAR_JSON_ELIMIT,    /* more members/elements than a uint32 counts */
} cellar_json_rule;

typedef struct cellar_json_error {
    cellar_json_rule rule;
    size_t offset;
    const char *what; /* static text describing the rule */
} cellar_json_error;

typedef struct cellar_json_doc cellar_json_doc;

#define CELLAR_JSON_DEFAULT_DEPTH 128
/* The parser recurses once per level; larger limits are clamped to this. */
#define CELLAR_JSON_MAX_DEPTH 4096

/* Parses len bytes. max_depth: how many containers may nest (0 means
 * CELLAR_JSON_DEFAULT_DEPTH): `[]` nests 1, `[[]]` 2; scalars add nothing. label names the input in messages.
 * err (may be NULL) receives the rule and offset on CELLAR_EFORMAT.
 * Errors: CELLAR_EFORMAT, CELLAR_ENOMEM. */
int cellar_json_parse(cellar_json_doc **out, const void *data, size_t len, unsigned max_depth,
                      const char *label, cellar_json_error *err);
const cellar_json *cellar_json_root(const cellar_json_doc *doc);
void cellar_json_free(cellar_json_doc *doc);

/* The last member named key (key_len bytes), or NULL. v may be NULL or not an
 * object (then NULL). */
const cellar_json *cellar_json_get(const cellar_json *v, const char *key, size_t key_len);
/* cellar_json_get with a NUL-terminated key. */
const cellar_json *cellar_json_getz(const cellar_json *v, const char *key);
/* How many members are named key. */
size_t cellar_json_count_key(const cellar_json *v, const char *key, size_t key_len);
/* Element i of an array, or NULL. */
const cellar_json *cellar_json_at(const cellar_json *v, size_t i);

static inline bool cellar_json_is(const cellar_json *v, cellar_json_type t)
{
    return v && v->type == t;
}

/* True if the string value equals the NUL-terminated s exactly. */
bool cellar_json_str_eq(const cellar_json *v, const char *s);

/* Parses a NUMBER that is a JSON integer in [0, 2^64) into *out. Rejects
 * fractions, exponents, "-0", negatives, leading zeros (the parser already
 * rejects those) and values that do not fit; false otherwise. */
bool cellar_json_u64(const cellar_json *v, uint64_t *out);

/* ---- writer ----
 * Emits JSON into a cellar_buf. indent 0: compact (`,` and `:`); indent n:
 * one member per line indented by n spaces per level with `: ` after keys,
 * empty containers as `{}`/`[]` (Python's json.dumps(indent=n)).
 * ascii: escape every non-ASCII character as \uXXXX (Python's default
 * ensure_ascii); otherwise UTF-8 is written as is. Errors are sticky: check
 * cellar_jw_finish(). */
typedef struct cellar_jw {
    cellar_buf *buf;
    unsigned indent;
    bool ascii;
    int rc;
    unsigned depth;
    bool after_key;
    /* per depth: has the container at this depth had an item yet */
    uint8_t nonempty[CELLAR_JSON_DEFAULT_DEPTH + 1];
} cellar_jw;

void cellar_jw_init(cellar_jw *w, cellar_buf *buf, unsigned indent, bool ascii);
void cellar_jw_object(cellar_jw *w);
void cellar_jw_object_end(cellar_jw *w);
void cellar_jw_array(cellar_jw *w);
void cellar_jw_array_end(cellar_jw *w);
void cellar_jw_key(cellar_jw *w, const char *key, size_t len);
void cellar_jw_keyz(cellar_jw *w, const char *key);
void cellar_jw_string(cellar_jw *w, const char *s, size_t len);
void cellar_jw_stringz(cellar_jw *w, const char *s);
void cellar_jw_u64(cellar_jw *w, uint64_t v);
void cellar_jw_i64(cellar_jw *w, int64_t v);
void cellar_jw_bool(cellar_jw *w, bool v);
void cellar_jw_null(cellar_jw *w);
/* Text already valid as a JSON value (e.g. a number's raw text). */
void cellar_jw_raw(cellar_jw *w, const char *text, size_t len);
/* Re-emits a parsed value. */
void cellar_jw_value(cellar_jw *w, const cellar_json *v);
/* 0, or the first error (CELLAR_ENOMEM, CELLAR_ERANGE, CELLAR_EINVAL for
 * unbalanced or too deep nesting). */
int cellar_jw_finish(cellar_jw *w);

/* Checks that n bytes are valid UTF-8 (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF). Returns n if so, else the offset of the
 * first invalid sequence. */
size_t cellar_utf8_check(const void *p, size_t n);

/* Appends s as a JSON string literal (with quotes) to buf. */
int cellar_json_escape(cellar_buf *buf, const char *s, size_t len, bool ascii);

#endif
