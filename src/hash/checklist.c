/* Checksum lists as sha256sum, b3sum, md5sum and cellar write them, parsed
 * and verified (cellar hash -c). */
#include "cellar.h"
#include "util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cellar_checklist {
    char *label;
    size_t n, cap;
    cellar_checklist_line *lines;
    size_t malformed;
    cellar_algo last_match; /* tried first: a whole list costs one digest a file */
};

/* In place: "\\" "\n" "\r" as sha256sum and b3sum escape a name, and
 * "\xNN" as cellar escapes other control bytes. */
static bool unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p != '\\') {
            *o++ = *p;
            continue;
        }
        p++;
        if (*p == '\\')
            *o++ = '\\';
        else if (*p == 'n')
            *o++ = '\n';
        else if (*p == 'r')
            *o++ = '\r';
        else if (*p == 'x' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            /* cellar's escape of other control bytes (hash prints \xNN) */
            char hx[3] = {p[1], p[2], 0};
            *o++ = (char)strtoul(hx, NULL, 16);
            p += 2;
        } else
            return false;
    }
    *o = '\0';
    return true;
}

/* One line, NUL-terminated and modified in place, into e (but its name,
 * which *name points at). "HEX  NAME", "HEX *NAME", "algo:HEX  NAME" or
 * "ALGO (NAME) = HEX", with a leading '\' for an escaped name. A bare HEX
 * may be any algorithm of its length within only (0: any). */
static bool parse_line(char *line, uint32_t only, cellar_checklist_line *e, char **name)
{
    bool escaped = line[0] == '\\';
    if (escaped)
        line++;
    char *sp = strstr(line, " (");
    char *eq = NULL; /* the last ") = ": the name may hold one */
    for (char *p = strstr(line, ") = "); p; p = strstr(p + 1, ") = "))
        eq = p;
    const char *hex;
    uint32_t may = only ? only : CELLAR_ALGO_ALL;
    if (sp && eq && eq > sp && sp == strchr(line, ' ')) {
        /* BSD style, as sha256sum --tag writes: SHA256 (name) = hex */
        *sp = '\0';
        *eq = '\0';
        for (char *p = line; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        cellar_algo a;
        if (cellar_algo_parse(&a, line) != 0)
            return false;
        may = CELLAR_ALGO_BIT(a);
        *name = sp + 2;
        hex = eq + 4;
    } else {
        /* "HEX" or "algo:HEX", two blanks or " *", the name */
        char *blank = strchr(line, ' ');
        if (!blank || (blank[1] != ' ' && blank[1] != '*') || !blank[2])
            return false;
        *blank = '\0';
        hex = line;
        *name = blank + 2;
    }
    if (cellar_digest_parse(&e->algos, e->digest, &e->digest_len, hex, may) != 0)
        return false;
    return !escaped || unescape(*name);
}

void cellar_checklist_free(cellar_checklist *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free((char *)l->lines[i].name);
    free(l->lines);
    free(l->label);
    free(l);
}

/* Adds one line (len bytes at p, no newline). 0, or CELLAR_ENOMEM. */
static int add_line(cellar_checklist *l, const char *p, size_t len, size_t lineno, uint32_t only)
{
    if (len > 0 && p[len - 1] == '\r')
        len--;
    if (len == 0 || p[0] == '#' || memchr(p, '\0', len)) {
        l->malformed++;
        return 0;
    }
    char *line = cellar_strndup(p, len);
    if (!line)
        return CELLAR_ENOMEM;
    cellar_checklist_line e;
    memset(&e, 0, sizeof e);
    char *name;
    if (!parse_line(line, only, &e, &name)) {
        free(line);
        l->malformed++;
        return 0;
    }
    int rc = cellar_grow(&l->lines, &l->cap, l->n, sizeof *l->lines, 16);
    char *kept = rc ? NULL : cellar_strdup(name);
    free(line);
    if (!kept)
        return rc ? rc : CELLAR_ENOMEM;
    e.lineno = lineno;
    e.name = kept;
    l->lines[l->n++] = e;
    return 0;
}

int cellar_checklist_parse(cellar_checklist **out, const void *data, size_t len, uint32_t algos,
                           const char *label)
{
    *out = NULL;
    RETURN_ERROR_IF(!data && len, CELLAR_EINVAL, "cellar_checklist_parse: no data");
    RETURN_ERROR_IF(algos & ~(uint32_t)CELLAR_ALGO_ALL, CELLAR_EINVAL,
                    "cellar_checklist_parse: unknown algorithm bits 0x%x", algos);
    cellar_checklist *l = cellar_calloc(1, sizeof *l);
    if (!l)
        return CELLAR_ENOMEM;
    l->last_match = CELLAR_ALGO_BLAKE3;
    if (!(l->label = cellar_strdup(label ? label : "<list>"))) {
        free(l);
        return CELLAR_ENOMEM;
    }
    const char *p = data, *end = p + len;
    size_t lineno = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        int rc = add_line(l, p, (size_t)(stop - p), ++lineno, algos);
        if (rc) {
            cellar_checklist_free(l);
            return rc;
        }
        p = nl ? nl + 1 : end;
    }
    *out = l;
    return 0;
}

size_t cellar_checklist_count(const cellar_checklist *l)
{
    return l ? l->n : 0;
}

const cellar_checklist_line *cellar_checklist_at(const cellar_checklist *l, size_t i)
{
    return l && i < l->n ? &l->lines[i] : NULL;
}

size_t cellar_checklist_malformed(const cellar_checklist *l)
{
    return l ? l->malformed : 0;
}

/* ---- verification ------------------------------------------------------- */

/* Cheapest first; the one that matched last goes first next time. */
static const cellar_algo try_order[] = {CELLAR_ALGO_BLAKE3, CELLAR_ALGO_CRC32, CELLAR_ALGO_SHA1,
                                        CELLAR_ALGO_GITSHA1, CELLAR_ALGO_SHA256, CELLAR_ALGO_MD5};

static int check_with(bool *match, const cellar_checklist_line *e, uint32_t algos, int fd,
                      const cellar_hash_opts *base)
{
    /* the caller's flags and threads, else the defaults */
    cellar_hash_opts o = CELLAR_HASH_OPTS_INIT;
    if (base)
        o = *base;
    o.algos = algos;
    o.flags |= CELLAR_HASH_NO_CACHE;
    cellar_digests d;
    int rc = fd >= 0 ? cellar_hash_fd(&d, fd, e->name, &o) : cellar_hash_path(&d, e->name, &o);
    *match = false;
    for (unsigned a = 0; rc == 0 && a < CELLAR_ALGO__COUNT && !*match; a++)
        if ((algos & CELLAR_ALGO_BIT(a)) && cellar_algo_len((cellar_algo)a) == e->digest_len &&
            !memcmp(d.d[a], e->digest, e->digest_len))
            *match = true;
    return rc;
}

int cellar_checklist_verify(int *match, cellar_checklist *l, size_t i, int fd,
                            const cellar_hash_opts *opts)
{
    *match = 0;
    RETURN_ERROR_IF(!l || i >= l->n, CELLAR_EINVAL, "cellar_checklist_verify: no line %zu", i);
    const cellar_checklist_line *e = &l->lines[i];
    uint32_t algos = e->algos;
    bool ok = false;
    int rc = 0;
    if (fd >= 0) {
        /* a stream is read once: every candidate in that pass, but not
         * git-sha1 when there is another (a stream has no size) */
        if (algos & ~CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1))
            algos &= ~CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1);
        rc = check_with(&ok, e, algos, fd, opts);
    } else {
        if (algos & CELLAR_ALGO_BIT(l->last_match))
            rc = check_with(&ok, e, CELLAR_ALGO_BIT(l->last_match), -1, opts);
        for (size_t k = 0; k < sizeof try_order / sizeof try_order[0] && !ok && !rc; k++) {
            cellar_algo a = try_order[k];
            if (a == l->last_match || !(algos & CELLAR_ALGO_BIT(a)))
                continue;
            rc = check_with(&ok, e, CELLAR_ALGO_BIT(a), -1, opts);
            if (ok)
                l->last_match = a;
        }
    }
    *match = ok;
    return rc;
}
