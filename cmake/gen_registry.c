/* Build-time generator: data/registry.tsv -> a C table of cellar_model_info,
 * sorted by hash (file order kept among equal hashes), so the library
 * carries the registry and reads no data file at run time.
 *
 *   gen_registry IN.tsv OUT.c
 *
 * Rows: hash family component layout model_name model_class source
 * description, tab-separated; '#' lines and blank lines are skipped. A row
 * that breaks the format fails the build, naming the line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCOLS 8

struct row {
    char *f[NCOLS];
    size_t order;
};

static int cmp_row(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    int c = strcmp(x->f[0], y->f[0]);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static void put_c_string(FILE *o, const char *s)
{
    fputc('"', o);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(o, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(o, "\\%03o", c); /* octal: never swallows the next character */
        else
            fputc(c, o);
    }
    fputc('"', o);
}

static int is_hash(const char *s)
{
    if (strlen(s) != 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gen_registry IN.tsv OUT.c\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "r");
    if (!in) {
        perror(argv[1]);
        return 1;
    }
    struct row *rows = NULL;
    size_t n = 0, cap = 0, lineno = 0;
    char line[65536];
    while (fgets(line, sizeof line, in)) {
        lineno++;
        size_t len = strlen(line);
        if (len && line[len - 1] != '\n' && !feof(in)) {
            fprintf(stderr, "%s:%zu: line too long\n", argv[1], lineno);
            return 1;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            rows = realloc(rows, cap * sizeof *rows);
            if (!rows)
                return 1;
        }
        struct row *r = &rows[n];
        r->order = n;
        char *p = line;
        for (int i = 0; i < NCOLS; i++) {
            char *tab = strchr(p, '\t');
            if ((i < NCOLS - 1) != (tab != NULL)) {
                fprintf(stderr, "%s:%zu: expected %d tab-separated columns\n", argv[1], lineno,
                        NCOLS);
                return 1;
            }
            if (tab)
                *tab = '\0';
            r->f[i] = strdup(p);
            if (!r->f[i])
                return 1;
            p = tab ? tab + 1 : p;
        }
        if (!is_hash(r->f[0])) {
            fprintf(stderr, "%s:%zu: '%s' is not 32 lower-case hex digits\n", argv[1], lineno,
                    r->f[0]);
            return 1;
        }
        n++;
    }
    fclose(in);
    if (n)
        qsort(rows, n, sizeof *rows, cmp_row);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
    FILE *o = fopen(tmp, "w");
    if (!o) {
        perror(tmp);
        return 1;
    }
    fprintf(o, "/* Generated from data/registry.tsv by cmake/gen_registry.c: do not edit. */\n"
               "#include \"registry.h\"\n\n"
               "const cellar_model_info cellar_registry_table[] = {\n");
    /* The struct's order: hash, family, component, description, then the
     * appended layout, model_name, model_class, source. */
    static const int order[NCOLS] = {0, 1, 2, 7, 3, 4, 5, 6};
    for (size_t i = 0; i < n; i++) {
        fputs("    {", o);
        for (int k = 0; k < NCOLS; k++) {
            if (k)
                fputs(", ", o);
            put_c_string(o, rows[i].f[order[k]]);
        }
        fputs("},\n", o);
    }
    if (n == 0)
        fputs("    {\"\", \"\", \"\", \"\", \"\", \"\", \"\", \"\"},\n", o);
    fprintf(o, "};\nconst size_t cellar_registry_table_len = %zu;\n", n);
    if (fclose(o) != 0 || rename(tmp, argv[2]) != 0) {
        perror(argv[2]);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < NCOLS; k++)
            free(rows[i].f[k]);
    free(rows);
    return 0;
}
