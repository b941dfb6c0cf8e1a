/* cellar hash: digests of files in sha256sum/b3sum's format, checking their
 * lists, and the ecosystem's identifiers (CivitAI, InvokeAI). */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a run computes. Plain digests come from -a; the other kinds print
 * values of their own and are chosen by -a NAME or by --NAME (preset).
 * A new kind of hash is a new enum value, a row in methods[] (and a long
 * option if it is a preset) and a case in hash_targets(). */
enum kind { K_DIGEST, K_CIVITAI, K_INVOKEAI, K_STRUCTURAL };

static const struct method {
    const char *name; /* -a NAME, or --NAME for a preset */
    bool preset;
    enum kind kind;
    cellar_algo algo; /* K_DIGEST */
    const char *help;
} methods[] = {
    {"blake3", false, K_DIGEST, CELLAR_ALGO_BLAKE3, "BLAKE3-256, as b3sum (the default)"},
    {"sha256", false, K_DIGEST, CELLAR_ALGO_SHA256, "SHA-256, as sha256sum; the Hub's LFS oid"},
    {"sha1", false, K_DIGEST, CELLAR_ALGO_SHA1, "SHA-1, as sha1sum"},
    {"md5", false, K_DIGEST, CELLAR_ALGO_MD5, "MD5, as md5sum"},
    {"crc32", false, K_DIGEST, CELLAR_ALGO_CRC32, "IEEE CRC-32, big-endian as zlib prints it"},
    {"git-sha1", false, K_DIGEST, CELLAR_ALGO_GITSHA1, "git blob id; the Hub's oid of non-LFS files"},
    {"structural", false, K_STRUCTURAL, 0,
     "DiffSynth-Studio's md5 of tensor names and shapes (file, shards, folder)"},
    {"civitai", true, K_CIVITAI, 0,
     "CivitAI's six hashes, and A1111's, kohya's, ModelSpec's"},
    {"invokeai", true, K_INVOKEAI, 0,
     "InvokeAI's hash of files and model folders (-a: per file)"},
};
#define NMETHODS (sizeof methods / sizeof methods[0])

struct run {
    enum kind kind;
    uint32_t algos;
    size_t nalgos;
    bool tag, json, recursive, quiet, strict, entries;
    cellar_hash_opts opts;
    int status;
    char **names; /* the targets being reported */
    cli_progress prog;
    cellar_progress pr;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: cellar hash [-a ALGO[,ALGO...]] [--tag] [--json] [--civitai] [--invokeai]\n"
               "                   [-r] [--entries] [--[no-]mmap] [--no-cache] [-j N] [PATH...]\n"
               "       cellar hash -c [--quiet] [--strict] LIST...\n\n"
               "Prints '<hex>  <path>' lines as sha256sum and b3sum do (names holding a\n"
               "backslash or newline are escaped as they escape them). '-' or no PATH\n"
               "reads standard input.\n\n"
               "  -a, --algo LIST  what to compute, comma-separated:\n");
    for (size_t i = 0; i < NMETHODS; i++)
        if (!methods[i].preset)
            fprintf(f, "                     %-9s %s\n", methods[i].name, methods[i].help);
    for (size_t i = 0; i < NMETHODS; i++)
        if (methods[i].preset)
            fprintf(f, "  --%-14s %s\n", methods[i].name, methods[i].help);
    fprintf(f, "  --tag            print 'algo:hex  path' (implied by several -a digests)\n"
               "  --json           one JSON object per file, per line\n"
               "  -r, --recursive  hash the files under folders\n"
               "  --entries        hash each entry of DDUF files in place, named FILE/ENTRY\n"
               "  -c, --check      verify the lists (of sha256sum, b3sum, md5sum, cellar),\n"
               "                   reading every file (no cache); plain hex lines are\n"
               "                   checked as -a, else by their length\n"
               "  --quiet          with -c: do not print OK lines\n"
               "  --strict         with -c: fail on improperly formatted lines\n"
               "  --mmap           hash from memory maps of the files\n"
               "  --no-mmap        read the files into small buffers (the default: faster\n"
               "                   on page-cached files; the option is b3sum's)\n"
               "  --no-cache       neither use nor fill the store's hash cache ($CELLAR_HOME)\n"
               "  -j, --jobs N     threads to use (default: all cores)\n"
               "  -h, --help       this help\n");
}

/* -a's names: a digest row adds an algorithm; any other row selects its
 * kind, alone. The library's aliases ("b3", "git") are digests too. */
static int parse_algos(struct run *r, const char *list)
{
    char *copy = strdup(list);
    if (!copy)
        return cli_error("out of memory");
    int rc = CLI_OK;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && rc == CLI_OK;
         tok = strtok_r(NULL, ",", &save)) {
        const struct method *m = NULL;
        for (size_t i = 0; i < NMETHODS && !m; i++)
            if (!methods[i].preset && !strcmp(methods[i].name, tok))
                m = &methods[i];
        cellar_algo a;
        if (m && m->kind != K_DIGEST) {
            if (r->kind != K_DIGEST && r->kind != m->kind)
                rc = cli_usage("hash", "-a %s does not go with --%s or another -a kind", tok,
                               m->name);
            r->kind = m->kind;
            continue;
        }
        if (m)
            a = m->algo;
        else if (cellar_algo_parse(&a, tok) != 0)
            rc = cli_usage("hash", "%s", cellar_error_last());
        if (rc == CLI_OK && !(r->algos & CELLAR_ALGO_BIT(a))) {
            r->nalgos++;
            r->algos |= CELLAR_ALGO_BIT(a);
        }
    }
    free(copy);
    return rc;
}

/* ---- names as sha256sum and b3sum print them ---------------------------- */

/* Both tools start a line with '\' and escape '\' and newline when a name
 * holds either; coreutils also escapes carriage return, b3sum does not. */
static bool escapes_cr(cellar_algo a)
{
    return a != CELLAR_ALGO_BLAKE3;
}

/* Other control bytes (an escape sequence in a DDUF entry or file name)
 * are escaped too, as \xNN, so a name cannot drive the terminal; -c reads
 * them back. A carriage return stays as each tool prints it. */
static bool has_control(const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if ((*p < 0x20 && *p != '\r') || *p == 0x7f)
            return true;
    return false;
}

static bool needs_escape(const char *name, bool cr)
{
    return strpbrk(name, cr ? "\\\n\r" : "\\\n") != NULL || has_control(name);
}

static void put_name(FILE *f, const char *name, bool cr)
{
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\\')
            fputs("\\\\", f);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r' && cr)
            fputs("\\r", f);
        else if ((c < 0x20 && c != '\r') || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
}

static void print_digest(const struct run *r, const cellar_digests *d, cellar_algo a,
                         const char *name)
{
    char hex[2 * CELLAR_DIGEST_MAX + 1];
    cellar_digest_hex(hex, d, a);
    bool cr = escapes_cr(a);
    bool esc = needs_escape(name, cr);
    if (esc)
        putchar('\\');
    if (r->tag || r->nalgos > 1)
        printf("%s:", cellar_algo_name(a));
    printf("%s  ", hex);
    if (esc)
        put_name(stdout, name, cr);
    else
        fputs(name, stdout);
    putchar('\n');
}

static void json_field(const char *key, const char *value, bool *first)
{
    printf("%s\"%s\":", *first ? "{" : ",", key);
    cli_json_string(stdout, value, strlen(value));
    *first = false;
}

static void report_error(struct run *r, const char *name, const char *message)
{
    r->status = CLI_FAIL;
    cli_progress_clear(&r->prog);
    cli_error("%s", message);
    if (r->json) {
        bool first = true;
        json_field("path", name, &first);
        json_field("error", message, &first);
        puts("}");
    }
}

/* ---- plain digests ------------------------------------------------------ */

static void print_digests(struct run *r, const char *name, const cellar_digests *d)
{
    if (!r->json) {
        for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++)
            if (r->algos & CELLAR_ALGO_BIT(a))
                print_digest(r, d, (cellar_algo)a, name);
        return;
    }
    bool first = true;
    json_field("path", name, &first);
    printf(",\"size\":%llu", (unsigned long long)d->size);
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++) {
        if (!(r->algos & CELLAR_ALGO_BIT(a)))
            continue;
        char hex[2 * CELLAR_DIGEST_MAX + 1];
        cellar_digest_hex(hex, d, (cellar_algo)a);
        json_field(cellar_algo_name((cellar_algo)a), hex, &first);
    }
    printf(",\"cached\":%s}\n", (d->cached & r->algos) == r->algos ? "true" : "false");
}

static int digest_done(size_t i, int rc, const cellar_digests *d, const char *message, void *ctx)
{
    struct run *r = ctx;
    if (rc)
        report_error(r, r->names[i], message);
    else
        print_digests(r, r->names[i], d);
    r->pr.files_done++;
    r->pr.bytes_done += rc ? 0 : d->size;
    r->pr.path = r->names[i];
    return cli_progress_show(&r->prog, &r->pr);
}

/* Ctrl-C stops the file being hashed too, not only the run between files. */
static int hash_interrupted(const cellar_progress *p, void *ctx)
{
    (void)p;
    (void)ctx;
    return cli_interrupted();
}

static void hash_stdin(struct run *r)
{
    cellar_digests d;
    if (cellar_hash_fd(&d, STDIN_FILENO, "-", &r->opts) != 0)
        report_error(r, "-", cellar_error_last());
    else
        print_digests(r, "-", &d);
}

/* --entries: every entry of a DDUF archive hashed where it lies in the
 * archive (no extraction) and named ARCHIVE/ENTRY, so packed weights are
 * recognised as the same blobs as the loose files. */
static void hash_dduf_entries(struct run *r, const char *path)
{
    cellar_dduf *d;
    if (cellar_dduf_open(&d, path, 0) != 0) {
        report_error(r, path, cellar_error_last());
        return;
    }
    for (size_t i = 0; i < cellar_dduf_entry_count(d); i++) {
        const cellar_dduf_entry *e = cellar_dduf_entry_at(d, i);
        char *name = malloc(strlen(path) + e->name_len + 2);
        cellar_hasher *h = NULL;
        cellar_digests dg;
        if (!name) {
            report_error(r, path, "out of memory");
            break;
        }
        sprintf(name, "%s/%s", path, e->name);
        if (cellar_hasher_new(&h, r->algos, e->size) != 0) {
            report_error(r, name, cellar_error_last());
        } else {
            cellar_hasher_update(h, e->data, (size_t)e->size);
            if (cellar_hasher_final(&dg, h) != 0)
                report_error(r, name, cellar_error_last());
            else
                print_digests(r, name, &dg);
        }
        cellar_hasher_free(h);
        free(name);
    }
    cellar_dduf_free(d);
}

/* ---- presets ------------------------------------------------------------- */

static void print_civitai(struct run *r, const char *name, const cellar_ident *id)
{
    if (r->json) {
        bool first = true;
        json_field("path", name, &first);
        printf(",\"size\":%llu", (unsigned long long)id->size);
        const struct {
            const char *key, *value;
        } fields[] = {
            {"SHA256", id->sha256},
            {"AutoV1", id->autov1},
            {"AutoV2", id->autov2},
            {"AutoV3", id->autov3},
            {"BLAKE3", id->blake3},
            {"CRC32", id->crc32},
            {"crc32_zlib", id->crc32_zlib},
            {"a1111_model_hash", id->a1111_model_hash},
            {"a1111_shorthash", id->a1111_shorthash},
            {"sshs_model_hash", id->sshs_model_hash},
            {"lora_shorthash", id->lora_shorthash},
            {"modelspec_hash", id->modelspec_hash},
        };
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            if (fields[i].value[0])
                json_field(fields[i].key, fields[i].value, &first);
            else
                printf(",\"%s\":null", fields[i].key);
        }
        puts("}");
        return;
    }
    const char *no_v3 = "(none: not a safetensors file)";
    printf("%s\n", name);
    printf("  SHA256            %s\n", id->sha256);
    printf("  AutoV1            %s\n", id->autov1[0] ? id->autov1 : "(none: under 2 MiB)");
    printf("  AutoV2            %s\n", id->autov2);
    printf("  AutoV3            %s\n", id->autov3[0] ? id->autov3 : no_v3);
    printf("  BLAKE3            %s\n", id->blake3);
    printf("  CRC32             %s  (zlib %%08X: %s)\n", id->crc32, id->crc32_zlib);
    printf("  a1111 model_hash  %s\n", id->a1111_model_hash);
    printf("  a1111 shorthash   %s\n", id->a1111_shorthash);
    printf("  sshs_model_hash   %s\n", id->sshs_model_hash[0] ? id->sshs_model_hash : no_v3);
    printf("  LoRA shorthash    %s\n", id->lora_shorthash[0] ? id->lora_shorthash : no_v3);
    printf("  modelspec hash    %s\n", id->modelspec_hash[0] ? id->modelspec_hash : no_v3);
}

static void hash_civitai(struct run *r, const char *name)
{
    cellar_ident id;
    if (cellar_ident_file(&id, name, &r->opts) != 0)
        report_error(r, name, cellar_error_last());
    else
        print_civitai(r, name, &id);
}

static void hash_invokeai(struct run *r, const char *name)
{
    cellar_algo algo = CELLAR_ALGO_BLAKE3;
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++)
        if (r->algos & CELLAR_ALGO_BIT(a))
            algo = (cellar_algo)a;
    char *h;
    if (cellar_invokeai_hash(&h, name, algo, &r->opts) != 0) {
        report_error(r, name, cellar_error_last());
        return;
    }
    if (r->json) {
        bool first = true;
        json_field("path", name, &first);
        json_field("invokeai", h, &first);
        puts("}");
    } else {
        printf("%s  %s\n", h, name);
    }
    cellar_free(h);
}

/* The structural hash of a PyTorch checkpoint, from its pickle. Where
 * DiffSynth itself would fail on the file, the hash of the state dict's
 * tensors is printed and a warning says why. */
static void hash_structural_pt(struct run *r, const char *name)
{
    cellar_pt *pt;
    cellar_pt_hash h;
    if (cellar_pt_open(&pt, name, 0) != 0) {
        report_error(r, name, cellar_error_last());
        return;
    }
    if (cellar_pt_structural_hash(&h, pt) != 0) {
        report_error(r, name, cellar_error_last());
        cellar_pt_free(pt);
        return;
    }
    if (r->json) {
        bool first = true;
        json_field("path", name, &first);
        if (h.diffsynth[0])
            json_field("structural", h.diffsynth, &first);
        else
            printf(",\"structural\":null");
        json_field("state_dict", h.state_dict, &first);
        if (h.problem[0])
            json_field("diffsynth_problem", h.problem, &first);
        puts("}");
    } else {
        if (!h.diffsynth[0])
            cli_warn("%s: %s; the hash of its state dict follows", name, h.problem);
        printf("%s  %s\n", h.diffsynth[0] ? h.diffsynth : h.state_dict, name);
    }
    cellar_pt_free(pt);
}

/* The structural hash of a weight file or shard set, or of each component
 * of a model folder (printed as FOLDER/COMPONENT). */
static void hash_structural(struct run *r, const char *name)
{
    struct stat pst;
    if (stat(name, &pst) == 0 && S_ISREG(pst.st_mode) && cellar_pt_sniff(name)) {
        hash_structural_pt(r, name);
        return;
    }
    cellar_component *c;
    size_t n;
    if (cellar_components(&c, &n, name) != 0) {
        report_error(r, name, cellar_error_last());
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char h[33];
        if (cellar_structural_hash(h, c[i].path) != 0) {
            report_error(r, c[i].path, cellar_error_last());
            continue;
        }
        if (r->json) {
            bool first = true;
            json_field("path", c[i].path, &first);
            json_field("structural", h, &first);
            puts("}");
        } else {
            printf("%s  %s\n", h, c[i].path);
        }
    }
    cellar_components_free(c, n);
}

/* ---- targets ------------------------------------------------------------- */

struct targets {
    char **v;
    size_t n, cap;
};

static int targets_add(struct targets *t, const char *p)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        char **v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    if (!(t->v[t->n] = strdup(p)))
        return -1;
    t->n++;
    return 0;
}

/* -r: the files under dir as the library lists them (sorted by name in
 * each folder; symlinked folders not entered, as find(1); symlinks to
 * files hashed). A listing cut short (out of memory) is an error, never a
 * shorter list that exits 0. */
struct listing {
    struct run *r;
    struct targets *t;
    bool oom;
};

static int listed(const char *path, int rc, const char *message, void *ctx)
{
    struct listing *l = ctx;
    if (rc == CELLAR_EUNSUPPORTED) {
        cli_warn("%s, skipped", message); /* a FIFO, socket or device */
        return 0;
    }
    if (rc) {
        report_error(l->r, path, message);
        return 0;
    }
    if (targets_add(l->t, path)) {
        l->oom = true;
        return 1;
    }
    return 0;
}

static void expand_dir(struct run *r, struct targets *t, const char *dir)
{
    cellar_walk_opts wo = CELLAR_WALK_OPTS_INIT;
    wo.flags = CELLAR_WALK_FILE_SYMLINKS | CELLAR_WALK_REGULAR_ONLY;
    struct listing l = {r, t, false};
    if (cellar_walk_files(dir, &wo, listed, &l) != 0) {
        char message[4200];
        snprintf(message, sizeof message, "%s: %s", dir,
                 l.oom ? "out of memory: files left out" : cellar_error_last());
        report_error(r, dir, message);
    }
}

static void hash_targets(struct run *r, struct targets *t)
{
    if (r->entries) {
        for (size_t i = 0; i < t->n && !cli_interrupted(); i++)
            hash_dduf_entries(r, t->v[i]);
        return;
    }
    switch (r->kind) {
    case K_DIGEST:
        break;
    case K_CIVITAI:
        for (size_t i = 0; i < t->n && !cli_interrupted(); i++)
            hash_civitai(r, t->v[i]);
        return;
    case K_INVOKEAI:
        for (size_t i = 0; i < t->n && !cli_interrupted(); i++)
            hash_invokeai(r, t->v[i]);
        return;
    case K_STRUCTURAL:
        for (size_t i = 0; i < t->n && !cli_interrupted(); i++)
            hash_structural(r, t->v[i]);
        return;
    }
    /* Runs of files go to the library together (hashed in parallel);
     * standard input between them is read where it stands. */
    r->pr.files_total = t->n;
    for (size_t i = 0; i < t->n && !cli_interrupted();) {
        if (!strcmp(t->v[i], "-")) {
            hash_stdin(r);
            i++;
            continue;
        }
        size_t j = i;
        while (j < t->n && strcmp(t->v[j], "-"))
            j++;
        r->names = t->v + i;
        if (cellar_hash_paths((const char *const *)(t->v + i), j - i, &r->opts, digest_done, r))
            report_error(r, t->v[i], cellar_error_last());
        i = j;
    }
}

/* ---- --check ------------------------------------------------------------- */

struct check_counts {
    size_t mismatched, unreadable, ok;
};

static void print_check(const char *name, const char *verdict)
{
    /* sha256sum -c escapes a name in its report only for a newline */
    if (strchr(name, '\n') || has_control(name)) {
        putchar('\\');
        put_name(stdout, name, false);
    } else {
        fputs(name, stdout);
    }
    printf(": %s\n", verdict);
}

static void plural(size_t n, const char *one, const char *many)
{
    if (n)
        fprintf(stderr, "cellar: WARNING: %zu %s\n", n, n == 1 ? one : many);
}

/* The whole of f (lists are small), or NULL with errno set. */
static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *bigger = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            errno = ENOMEM;
            return NULL;
        }
        buf = bigger;
        cap *= 2;
    }
    if (buf && ferror(f)) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    *len = n;
    return buf;
}

/* Parsing and verifying are the library's (cellar_checklist_*); this
 * prints sha256sum -c's verdicts and warnings and picks the exit code. */
static int check_list(struct run *r, const char *list)
{
    FILE *f = strcmp(list, "-") ? fopen(list, "r") : stdin;
    if (!f)
        return cli_error("%s: %s", list, strerror(errno));
    size_t len = 0;
    char *text = read_all(f, &len);
    int err = errno;
    if (f != stdin)
        fclose(f);
    if (!text)
        return cli_error("%s: %s", list, strerror(err));
    cellar_checklist *cl;
    int rc = cellar_checklist_parse(&cl, text, len, r->algos, list);
    free(text);
    if (rc)
        return cli_error_last();
    struct check_counts c = {0, 0, 0};
    for (size_t i = 0; i < cellar_checklist_count(cl); i++) {
        const char *name = cellar_checklist_at(cl, i)->name;
        int match;
        int fd = strcmp(name, "-") ? -1 : STDIN_FILENO;
        if (cellar_checklist_verify(&match, cl, i, fd, &r->opts) != 0) {
            cli_error("%s", cellar_error_last());
            print_check(name, "FAILED open or read");
            c.unreadable++;
        } else if (!match) {
            print_check(name, "FAILED");
            c.mismatched++;
        } else {
            if (!r->quiet)
                print_check(name, "OK");
            c.ok++;
        }
    }
    size_t malformed = cellar_checklist_malformed(cl);
    cellar_checklist_free(cl);
    if (c.ok + c.mismatched + c.unreadable == 0) {
        cli_error("%s: no properly formatted checksum lines found", list);
        return CLI_FAIL;
    }
    plural(malformed, "line is improperly formatted", "lines are improperly formatted");
    plural(c.unreadable, "listed file could not be read", "listed files could not be read");
    plural(c.mismatched, "computed checksum did NOT match", "computed checksums did NOT match");
    if (c.mismatched || c.unreadable || (r->strict && malformed))
        return CLI_FAIL;
    return CLI_OK;
}

/* ---- the verb ----------------------------------------------------------- */

int cmd_hash(int argc, char **argv)
{
    enum {
        O_TAG = 256,
        O_JSON,
        O_MMAP,
        O_NO_MMAP,
        O_NO_CACHE,
        O_QUIET,
        O_STRICT,
        O_ENTRIES,
        O_PRESET
    };
    static const struct option longopts[] = {
        {"algo", required_argument, NULL, 'a'},
        {"tag", no_argument, NULL, O_TAG},
        {"json", no_argument, NULL, O_JSON},
        {"civitai", no_argument, NULL, O_PRESET + K_CIVITAI},
        {"invokeai", no_argument, NULL, O_PRESET + K_INVOKEAI},
        {"recursive", no_argument, NULL, 'r'},
        {"check", no_argument, NULL, 'c'},
        {"quiet", no_argument, NULL, O_QUIET},
        {"strict", no_argument, NULL, O_STRICT},
        {"mmap", no_argument, NULL, O_MMAP},
        {"no-mmap", no_argument, NULL, O_NO_MMAP},
        {"no-cache", no_argument, NULL, O_NO_CACHE},
        {"entries", no_argument, NULL, O_ENTRIES},
        {"jobs", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct run r = {.kind = K_DIGEST, .opts = CELLAR_HASH_OPTS_INIT};
    bool check = false;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "a:rcj:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a':
            if (parse_algos(&r, optarg) != CLI_OK)
                return CLI_USAGE;
            break;
        case O_TAG:
            r.tag = true;
            break;
        case O_JSON:
            r.json = true;
            break;
        case O_PRESET + K_CIVITAI:
        case O_PRESET + K_INVOKEAI:
            if (r.kind != K_DIGEST)
                return cli_usage("hash", "--civitai and --invokeai do not go together");
            r.kind = (enum kind)(opt - O_PRESET);
            break;
        case 'r':
            r.recursive = true;
            break;
        case 'c':
            check = true;
            break;
        case O_QUIET:
            r.quiet = true;
            break;
        case O_STRICT:
            r.strict = true;
            break;
        case O_MMAP:
            r.opts.flags |= CELLAR_HASH_MMAP;
            break;
        case O_NO_MMAP:
            r.opts.flags &= ~(uint32_t)CELLAR_HASH_MMAP;
            break;
        case O_NO_CACHE:
            r.opts.flags |= CELLAR_HASH_NO_CACHE;
            break;
        case O_ENTRIES:
            r.entries = true;
            break;
        case 'j': {
            char *end;
            long j = strtol(optarg, &end, 10);
            if (*end || j < 1 || j > 1024)
                return cli_usage("hash", "-j: '%s' is not a thread count from 1 to 1024", optarg);
            r.opts.nthreads = (unsigned)j;
            break;
        }
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            return cli_usage("hash", "unknown option");
        }
    }
    if (r.kind == K_CIVITAI && r.algos)
        return cli_usage("hash", "--civitai computes its own digests; drop -a");
    if (r.kind == K_STRUCTURAL && r.algos)
        return cli_usage("hash", "-a structural does not combine with digests");
    if (r.kind == K_INVOKEAI && r.nalgos > 1)
        return cli_usage("hash", "--invokeai takes one per-file algorithm");
    if (r.entries && (r.kind != K_DIGEST || check || r.recursive))
        return cli_usage("hash", "--entries takes DDUF files and plain digests (-a)");
    if (check && r.kind != K_DIGEST)
        return cli_usage("hash", "-c checks digest lists, not --civitai/--invokeai output");

    if (check) {
        /* Verifying is about the bytes on disk now (bit rot leaves mtime
         * alone): always read them. */
        r.opts.flags |= CELLAR_HASH_NO_CACHE;
        int status = CLI_OK;
        if (optind == argc)
            return check_list(&r, "-");
        for (int i = optind; i < argc; i++)
            if (check_list(&r, argv[i]) != CLI_OK)
                status = CLI_FAIL;
        return status;
    }

    if (r.kind == K_DIGEST && !r.algos) {
        r.algos = CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3);
        r.nalgos = 1;
    }
    r.opts.algos = r.algos;
    /* The cache lives in the store; without a usable store, no cache. */
    cellar_store *store = NULL;
    if (!(r.opts.flags & CELLAR_HASH_NO_CACHE)) {
        if (cli_store_open(&store) == 0)
            r.opts.cache = cellar_store_hash_cache(store);
        else
            cellar_error_clear();
    }
    struct targets t = {0};
    bool oom = optind == argc && targets_add(&t, "-");
    for (int i = optind; i < argc && !oom; i++) {
        struct stat st;
        if (r.recursive && r.kind != K_INVOKEAI && r.kind != K_STRUCTURAL &&
            strcmp(argv[i], "-") &&
            stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            expand_dir(&r, &t, argv[i]);
        else
            oom = targets_add(&t, argv[i]);
    }
    if (oom) {
        cellar_store_free(store);
        return cli_error("out of memory");
    }
    cli_progress_init(&r.prog, "hash", false);
    cli_catch_interrupt();
    r.opts.progress = hash_interrupted;
    hash_targets(&r, &t);
    cli_progress_clear(&r.prog);
    if (cli_interrupted())
        r.status = CLI_FAIL;
    for (size_t i = 0; i < t.n; i++)
        free(t.v[i]);
    free(t.v);
    cellar_store_free(store);
    if (fflush(stdout) != 0)
        return cli_error("standard output: %s", strerror(errno));
    return r.status;
}
