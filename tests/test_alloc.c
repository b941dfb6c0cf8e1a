/* Allocation-failure injection: every allocation the library makes goes
 * through the wrappers below (this executable is linked with
 * -Wl,--wrap=malloc,... in CMakeLists.txt), which fail the Nth one. Each
 * operation is run with N = 1, 2, ... until it runs without reaching its
 * Nth allocation: every failure must come back as CELLAR_ENOMEM, cleanly
 * (ASan in make check sees leaks and bad frees), never as a success with
 * part of the result missing. Covers the parsers (safetensors, GGUF, DDUF,
 * JSON, the Hub's tree listing, checksum lists), the safetensors writer, the tree listing
 * behind hash -r and add, and hashing several files. */
#include "cellar.h"
#include "hub.h"
#include "json.h"
#include "testutil.h"
#include "util.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the hook ------------------------------------------------------------ */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
int __real_vasprintf(char **out, const char *fmt, va_list ap);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap);

static unsigned long alloc_count, fail_at; /* fail_at 0: never */

static bool fail_now(void)
{
    if (!fail_at)
        return false;
    if (++alloc_count != fail_at)
        return false;
    errno = ENOMEM;
    return true;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}
char *__wrap_strdup(const char *s)
{
    return fail_now() ? NULL : __real_strdup(s);
}
int __wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
    return fail_now() ? -1 : __real_vasprintf(out, fmt, ap);
}

/* Runs op with the 1st, 2nd... allocation failing until it needs fewer. op
 * runs the operation, checks a success's result and frees what it made. */
typedef int (*op_fn)(void *ctx);

static void fail_each_allocation(const char *what, op_fn op, void *ctx)
{
    unsigned long n;
    for (n = 1; n < 1000000; n++) {
        alloc_count = 0;
        fail_at = n;
        cellar_error_clear();
        int rc = op(ctx);
        bool reached = alloc_count >= n;
        fail_at = 0;
        if (!reached) {
            CHECK_MSG(rc == 0, "%s: %d (%s) with no allocation failing", what, rc,
                      cellar_error_last());
            break;
        }
        CHECK_MSG(rc == CELLAR_ENOMEM, "%s: allocation %lu failed: rc %d, \"%s\"", what, n, rc,
                  cellar_error_last());
    }
    printf("%s: %lu allocations, each one failed in turn\n", what, n - 1);
    CHECK_MSG(n > 1, "%s allocates nothing: the hook does not reach it", what);
}

/* ---- the operations ------------------------------------------------------ */

struct bytes {
    char *data;
    size_t len;
};

static int discard(const void *data, size_t len, void *ctx)
{
    (void)data, (void)len, (void)ctx;
    return 0;
}

static int op_inspect(void *ctx)
{
    cellar_inspect_opts io = CELLAR_INSPECT_OPTS_INIT;
    io.flags = CELLAR_INSPECT_TENSORS;
    cellar_tree *t = NULL;
    int rc = cellar_inspect(&t, ctx, &io);
    if (rc == 0) {
        CHECK(cellar_tree_root(t) != NULL);
        rc = cellar_tree_write_json(cellar_tree_root(t), discard, NULL);
    }
    cellar_tree_free(t); /* also on failure: what was read comes back */
    return rc;
}

static int op_safetensors(void *ctx)
{
    struct bytes *b = ctx;
    cellar_st *st;
    int rc = cellar_st_open_buffer(&st, b->data, b->len, "valid");
    if (rc == 0) {
        CHECK(cellar_st_count(st) > 0);
        cellar_st_free(st);
    }
    return rc;
}

static int op_gguf(void *ctx)
{
    struct bytes *b = ctx;
    cellar_gguf *g;
    int rc = cellar_gguf_open_buffer(&g, b->data, b->len, "v3.gguf");
    if (rc == 0) {
        CHECK(cellar_gguf_kv_count(g) > 0);
        cellar_gguf_free(g);
    }
    return rc;
}

static int op_dduf(void *ctx)
{
    struct bytes *b = ctx;
    cellar_dduf *d;
    int rc = cellar_dduf_open_buffer(&d, b->data, b->len, "pipeline.dduf", CELLAR_DDUF_CRC);
    if (rc == 0) {
        CHECK(cellar_dduf_entry_count(d) > 0);
        for (size_t i = 0; rc == 0 && i < cellar_dduf_entry_count(d); i++) {
            const cellar_dduf_entry *e = cellar_dduf_entry_at(d, i);
            size_t len = e->name_len;
            if (len > 12 && !strcmp(e->name + len - 12, ".safetensors")) {
                cellar_st *st = NULL;
                rc = cellar_dduf_open_safetensors(&st, d, i);
                cellar_st_free(st);
            }
        }
        for (size_t c = 0; rc == 0 && c < cellar_dduf_component_count(d); c++) {
            cellar_dduf_weights *w;
            size_t n;
            rc = cellar_dduf_weight_sets(&w, &n, d, cellar_dduf_component_at(d, c));
            if (rc == 0)
                CHECK(n >= 1);
            cellar_dduf_weight_sets_free(w, rc ? 0 : n);
        }
        cellar_dduf_free(d);
    }
    return rc;
}

static int op_json(void *ctx)
{
    struct bytes *b = ctx;
    cellar_json_doc *doc;
    int rc = cellar_json_parse(&doc, b->data, b->len, 0, "index", NULL);
    if (rc == 0) {
        CHECK(cellar_json_getz(cellar_json_root(doc), "weight_map") != NULL);
        cellar_json_free(doc);
    }
    return rc;
}

static int op_hub_tree(void *ctx)
{
    struct bytes *b = ctx;
    cellar_hub_listing l;
    memset(&l, 0, sizeof l);
    int rc = cellar_hub_parse_tree(&l, b->data, b->len, "org/repo");
    if (rc == 0)
        CHECK(l.n > 0);
    for (size_t i = 0; i < l.n; i++)
        free(l.files[i].path);
    free(l.files);
    return rc;
}

static int op_checklist(void *ctx)
{
    struct bytes *b = ctx;
    cellar_checklist *l;
    int rc = cellar_checklist_parse(&l, b->data, b->len, 0, "mixed.txt");
    if (rc == 0) {
        CHECK(cellar_checklist_count(l) == 2 && cellar_checklist_malformed(l) == 4);
        cellar_checklist_free(l);
    }
    return rc;
}

static int op_st_writer(void *ctx)
{
    const char *path = ctx;
    static const float w[6] = {1, 2, 3, 4, 5, 6};
    static const uint64_t shape[2] = {2, 3};
    cellar_st_writer *wr;
    int rc = cellar_st_writer_new(&wr);
    if (rc)
        return rc;
    rc = cellar_st_writer_add(wr, "a.weight", 8, CELLAR_DTYPE_F32, 2, shape, w, sizeof w);
    if (!rc)
        rc = cellar_st_writer_add(wr, "a.bias", 6, CELLAR_DTYPE_F32, 1, shape + 1, w, 12);
    if (!rc)
        rc = cellar_st_writer_set_metadata(wr, "note", "allocation test");
    if (!rc)
        rc = cellar_st_writer_write(wr, path);
    cellar_st_writer_free(wr);
    return rc;
}

struct walk_count {
    size_t files, errors;
};

static int count_file(const char *path, int rc, const char *message, void *ctx)
{
    (void)path;
    (void)message;
    struct walk_count *c = ctx;
    if (rc)
        c->errors++;
    else
        c->files++;
    return 0;
}

struct walk_case {
    const char *root;
    size_t want;
};

static int op_walk(void *ctx)
{
    struct walk_case *w = ctx;
    struct walk_count c = {0, 0};
    cellar_walk_opts o = CELLAR_WALK_OPTS_INIT;
    o.flags = CELLAR_WALK_FILE_SYMLINKS;
    int rc = cellar_walk_files(w->root, &o, count_file, &c);
    /* a listing that says it succeeded has every file: hash -r relies on it */
    if (rc == 0)
        CHECK_MSG(c.files == w->want && c.errors == 0, "listed %zu of %zu files, %zu errors",
                  c.files, w->want, c.errors);
    return rc;
}

struct paths_case {
    const char *const *paths;
    size_t n, seen;
    int file_rc; /* the first file's failure */
};

static int each_hashed(size_t index, int rc, const cellar_digests *d, const char *message,
                       void *ctx)
{
    (void)d;
    (void)message;
    struct paths_case *p = ctx;
    CHECK(index == p->seen);
    if (rc && !p->file_rc)
        p->file_rc = rc;
    p->seen++;
    return 0;
}

static int op_hash_paths(void *ctx)
{
    struct paths_case *p = ctx;
    p->seen = 0;
    p->file_rc = 0;
    cellar_hash_opts o = CELLAR_HASH_OPTS_INIT;
    o.algos = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256) | CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3);
    o.flags = CELLAR_HASH_NO_CACHE;
    o.nthreads = 1;
    /* a file that could not be hashed is reported through each() (the CLI
     * then exits non-zero): that is this operation's failure */
    int rc = cellar_hash_paths(p->paths, p->n, &o, each_hashed, p);
    if (rc == 0)
        CHECK(p->seen == p->n);
    return rc ? rc : p->file_rc;
}

/* ---- main ------------------------------------------------------------------ */

static struct bytes corpus(const char *target, const char *name)
{
    char here[] = __FILE__, path[4200];
    snprintf(path, sizeof path, "%s/../fuzz/corpus/%s/%s", dirname(here), target, name);
    struct bytes b = {NULL, 0};
    CHECK_MSG(cellar_read_file(&b.data, &b.len, path, 1 << 20) == 0, "%s", cellar_error_last());
    return b;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(cellar_write_file_atomic(path, text, strlen(text), 0644) == 0);
}

int main(void)
{
    /* the hook itself: reached, and off again */
    fail_at = 1;
    alloc_count = 0;
    char *p = cellar_strdup("hook");
    CHECK(p == NULL && alloc_count == 1 && cellar_error_code() == CELLAR_ENOMEM);
    fail_at = 0;
    p = cellar_strdup("hook");
    CHECK(p != NULL);
    free(p);

    struct bytes st = corpus("fuzz_safetensors", "valid");
    struct bytes gg = corpus("fuzz_gguf", "v3.gguf");
    struct bytes dd = corpus("fuzz_dduf", "pipeline_plain.dduf");
    struct bytes js = corpus("fuzz_json_index", "index");
    struct bytes ht = corpus("fuzz_hub_tree", "listing.json");
    struct bytes cl = corpus("fuzz_checklist", "mixed.txt");
    if (cl.data)
        fail_each_allocation("checksum list", op_checklist, &cl);
    free(cl.data);
    if (st.data)
        fail_each_allocation("safetensors reader", op_safetensors, &st);
    if (gg.data)
        fail_each_allocation("GGUF reader", op_gguf, &gg);
    if (dd.data)
        fail_each_allocation("DDUF reader", op_dduf, &dd);
    if (js.data)
        fail_each_allocation("JSON parser", op_json, &js);
    if (ht.data)
        fail_each_allocation("Hub tree listing", op_hub_tree, &ht);
    free(st.data);
    free(gg.data);
    free(dd.data);
    free(js.data);
    free(ht.data);

    const char *dir = test_tmpdir("test_alloc");
    char out[4200];
    snprintf(out, sizeof out, "%s/written.safetensors", dir);
    fail_each_allocation("safetensors writer", op_st_writer, out);
    fail_each_allocation("inspect (tree, JSON)", op_inspect, out);

    /* a tree as hash -r sees it: nested folders, a symlink to a file
     * (listed) and one to a folder (not entered) */
    char tree[4200], sub[4300], deeper[4400], link[4400];
    snprintf(tree, sizeof tree, "%s/tree", dir);
    snprintf(sub, sizeof sub, "%s/b", tree);
    snprintf(deeper, sizeof deeper, "%s/c", sub);
    CHECK(mkdir(tree, 0755) == 0 && mkdir(sub, 0755) == 0 && mkdir(deeper, 0755) == 0);
    size_t want = 0;
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%02d", i);
        write_file(i % 3 == 0 ? tree : i % 3 == 1 ? sub : deeper, name, name);
        want++;
    }
    snprintf(link, sizeof link, "%s/to_file", tree);
    CHECK(symlink("b/f01", link) == 0);
    want++;
    snprintf(link, sizeof link, "%s/to_dir", tree);
    CHECK(symlink("b", link) == 0);
    struct walk_case wc = {tree, want};
    fail_each_allocation("tree listing (hash -r, add)", op_walk, &wc);

    char a[4400], b[4400], c[4400];
    snprintf(a, sizeof a, "%s/f00", tree);
    snprintf(b, sizeof b, "%s/f01", sub);
    snprintf(c, sizeof c, "%s/f02", deeper);
    const char *const paths[] = {a, b, c};
    struct paths_case pc = {paths, 3, 0, 0};
    fail_each_allocation("hashing a list of files", op_hash_paths, &pc);
    return test_summary();
}
