/* cellar ls --by-model PATH...: a models folder (ComfyUI, A1111, InvokeAI)
 * summarised by what each file is, with sizes and duplicates.
 *
 * Every weight file under the paths (a diffusers folder or a shard set
 * counts as one entry) is identified from its header. Duplicates: the same
 * inode (hard links: one copy on disk already) or the same sha256 (copies:
 * `cellar dedup` can reclaim them). Only files whose size another file
 * shares are hashed, through the hash cache. */
#include "cli.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct entry {
    char *path;
    uint64_t size;
    dev_t dev;
    ino_t ino;
    cellar_identity *id;
    char *error;      /* identification failed: why */
    char sha256[65];  /* "" if not hashed */
    size_t same_inode; /* index + 1 of the first entry sharing the inode */
    size_t same_hash;  /* index + 1 of the first entry with the same sha256 */
};

static struct {
    struct entry *e;
    size_t n, cap;
    int rc;
} list;

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* The file names taken as weights. Pickles (.ckpt .pt .pth .bin) are
 * listed and identified once cellar reads them. */
static bool is_weights(const char *name)
{
    static const char *const ext[] = {".safetensors", ".sft", ".gguf", ".dduf", ".ckpt",
                                      ".pt", ".pth", ".bin", ".safetensors.index.json"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (has_suffix(name, ext[i]))
            return true;
    return false;
}

/* A shard of a set with an index beside it
 * ("dir/x-00001-of-00003.safetensors" and "dir/x.safetensors.index.json"):
 * the index stands for the set. */
static bool is_indexed_shard(const char *path, size_t base)
{
    const char *name = path + base, *of = strstr(name, "-of-");
    if (!of || !has_suffix(name, ".safetensors"))
        return false;
    const char *dash = of;
    while (dash > name && dash[-1] != '-')
        dash--;
    if (dash <= name + 1)
        return false;
    char probe[4200];
    snprintf(probe, sizeof probe, "%.*s.safetensors.index.json", (int)(dash - 1 - path), path);
    struct stat st;
    return stat(probe, &st) == 0;
}

static int add_entry(const char *path, const struct stat *st)
{
    if (list.n == list.cap) {
        size_t cap = list.cap ? 2 * list.cap : 64;
        struct entry *ne = realloc(list.e, cap * sizeof *ne);
        if (!ne)
            return -1;
        list.e = ne;
        list.cap = cap;
    }
    struct entry *e = &list.e[list.n];
    memset(e, 0, sizeof *e);
    e->path = strdup(path);
    if (!e->path)
        return -1;
    e->size = (uint64_t)st->st_size;
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    list.n++;
    return 0;
}

/* A folder's size: the sum of its regular files (a diffusers folder). */
static uint64_t folder_bytes;
static int sum_file(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    (void)p, (void)ftw;
    if (type == FTW_F && S_ISREG(st->st_mode))
        folder_bytes += (uint64_t)st->st_size;
    return 0;
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    if (type == FTW_D) {
        /* A diffusers folder is one entry; its files are not listed again. */
        char mi[4200];
        snprintf(mi, sizeof mi, "%s/model_index.json", path);
        struct stat ms;
        if (stat(mi, &ms) == 0) {
            folder_bytes = 0;
            nftw(path, sum_file, 16, FTW_PHYS);
            struct stat fake = *st;
            fake.st_size = (off_t)folder_bytes;
            if (add_entry(path, &fake) != 0)
                return (list.rc = -1), FTW_STOP;
            return FTW_SKIP_SUBTREE;
        }
        return FTW_CONTINUE;
    }
    if (type != FTW_F || !S_ISREG(st->st_mode))
        return FTW_CONTINUE;
    const char *name = path + ftw->base;
    if (name[0] == '.' || !is_weights(name) || is_indexed_shard(path, (size_t)ftw->base))
        return FTW_CONTINUE;
    struct stat fst = *st;
    if (has_suffix(name, ".index.json")) {
        /* The set's size: its shards'. */
        cellar_shards *s;
        if (cellar_shards_open(&s, path) == 0) {
            fst.st_size = (off_t)cellar_shards_size(s);
            cellar_shards_free(s);
        } else {
            cellar_error_clear();
        }
    }
    if (add_entry(path, &fst) != 0) {
        list.rc = -1;
        return FTW_STOP;
    }
    return FTW_CONTINUE;
}

static const char *group_of(const struct entry *e)
{
    const cellar_identity_info *x = cellar_identity_get(e->id);
    return x ? x->kind_name : "unreadable";
}

static int cmp_entries(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    const cellar_identity_info *ix = cellar_identity_get(x->id), *iy = cellar_identity_get(y->id);
    int kx = ix ? (int)ix->kind : 1000, ky = iy ? (int)iy->kind : 1000;
    /* unknown files last among the identified */
    if (kx == CELLAR_KIND_UNKNOWN)
        kx = 999;
    if (ky == CELLAR_KIND_UNKNOWN)
        ky = 999;
    if (kx != ky)
        return kx < ky ? -1 : 1;
    const char *bx = ix && ix->base ? ix->base : "~", *by = iy && iy->base ? iy->base : "~";
    int c = strcmp(bx, by);
    return c ? c : strcmp(x->path, y->path);
}

/* Same inode, then (among same-size files on other inodes) same sha256. */
static void find_duplicates(void)
{
    for (size_t i = 0; i < list.n; i++)
        for (size_t j = 0; j < i && !list.e[i].same_inode; j++)
            if (list.e[j].dev == list.e[i].dev && list.e[j].ino == list.e[i].ino &&
                !list.e[j].same_inode)
                list.e[i].same_inode = j + 1;
    cellar_hash_opts ho = CELLAR_HASH_OPTS_INIT;
    ho.algos = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256);
    /* The store's hash cache when there is a store; else none. */
    cellar_store *store = NULL;
    if (cli_store_open(&store) == 0)
        ho.cache = cellar_store_hash_cache(store);
    else
        cellar_error_clear();
    for (size_t i = 0; i < list.n; i++) {
        struct entry *e = &list.e[i];
        struct stat st;
        if (e->same_inode || stat(e->path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        bool twin = false;
        for (size_t j = 0; j < list.n && !twin; j++)
            twin = j != i && !list.e[j].same_inode && list.e[j].size == e->size &&
                   (list.e[j].dev != e->dev || list.e[j].ino != e->ino);
        if (!twin)
            continue;
        cellar_digests d;
        if (cellar_hash_path(&d, e->path, &ho) == 0)
            cellar_digest_hex(e->sha256, &d, CELLAR_ALGO_SHA256);
        else
            cellar_error_clear();
    }
    cellar_store_free(store);
    for (size_t i = 0; i < list.n; i++)
        for (size_t j = 0; j < i && *list.e[i].sha256 && !list.e[i].same_hash; j++)
            if (!strcmp(list.e[j].sha256, list.e[i].sha256) && !list.e[j].same_hash)
                list.e[i].same_hash = j + 1;
}

static void print_text(void)
{
    const char *group = NULL;
    uint64_t total = 0, reclaim = 0, linked = 0;
    char a[32];
    for (size_t i = 0; i < list.n; i++) {
        const struct entry *e = &list.e[i];
        const char *g = group_of(e);
        if (!group || strcmp(g, group)) {
            size_t count = 0;
            uint64_t bytes = 0;
            for (size_t j = i; j < list.n && !strcmp(group_of(&list.e[j]), g); j++) {
                count++;
                bytes += list.e[j].same_inode ? 0 : list.e[j].size;
            }
            printf("%s%s: %zu file%s, %s\n", group ? "\n" : "", g, count, count == 1 ? "" : "s",
                   cli_human_size(a, bytes));
            group = g;
        }
        printf("  %10s  ", cli_human_size(a, e->size));
        cli_put_escaped(stdout, e->path);
        printf("\n              ");
        cli_put_escaped(stdout, e->id ? cellar_identity_text(e->id) : e->error ? e->error : "unreadable");
        printf("\n");
        if (e->same_inode) {
            printf("              = hard link of ");
            cli_put_escaped(stdout, list.e[e->same_inode - 1].path);
            printf(" (no extra space)\n");
            linked += e->size;
        } else if (e->same_hash) {
            printf("              = duplicate of ");
            cli_put_escaped(stdout, list.e[e->same_hash - 1].path);
            printf(" (same sha256: cellar dedup reclaims %s)\n", cli_human_size(a, e->size));
            reclaim += e->size;
        }
        if (!e->same_inode)
            total += e->size;
    }
    printf("\n%zu entr%s, %s on disk", list.n, list.n == 1 ? "y" : "ies", cli_human_size(a, total));
    if (linked)
        printf(", %s more shared through hard links", cli_human_size(a, linked));
    printf(", %s in duplicate copies\n", cli_human_size(a, reclaim));
}

static void print_json(void)
{
    printf("[");
    for (size_t i = 0; i < list.n; i++) {
        const struct entry *e = &list.e[i];
        printf("%s\n {\"path\":", i ? "," : "");
        cli_json_string(stdout, e->path, strlen(e->path));
        printf(",\"size\":%" PRIu64 ",\"inode\":%llu", e->size, (unsigned long long)e->ino);
        if (*e->sha256)
            printf(",\"sha256\":\"%s\"", e->sha256);
        printf(",\"hardlink_of\":");
        if (e->same_inode)
            cli_json_string(stdout, list.e[e->same_inode - 1].path,
                            strlen(list.e[e->same_inode - 1].path));
        else
            printf("null");
        printf(",\"duplicate_of\":");
        if (e->same_hash)
            cli_json_string(stdout, list.e[e->same_hash - 1].path,
                            strlen(list.e[e->same_hash - 1].path));
        else
            printf("null");
        printf(",\"model\":");
        cli_identity_json(stdout, e->id);
        if (e->error) {
            printf(",\"error\":");
            cli_json_string(stdout, e->error, strlen(e->error));
        }
        printf("}");
    }
    printf("\n]\n");
}

int cli_ls_by_model(int argc, char **argv, bool json)
{
    if (argc < 1)
        return cli_usage("ls", "--by-model needs at least one PATH");
    int rc = CLI_OK;
    for (int i = 0; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            rc = cli_error("%s: %s", argv[i], strerror(errno));
            break;
        }
        if (S_ISREG(st.st_mode)) {
            if (add_entry(argv[i], &st) != 0)
                list.rc = -1;
        } else if (nftw(argv[i], visit, 16, FTW_PHYS | FTW_ACTIONRETVAL) != 0 && list.rc == 0) {
            rc = cli_error("%s: %s", argv[i], strerror(errno));
            break;
        }
        if (list.rc) {
            rc = cli_error("out of memory");
            break;
        }
    }
    cellar_registry *reg = rc == CLI_OK ? cli_registry_open() : NULL;
    for (size_t i = 0; i < list.n && rc == CLI_OK; i++) {
        struct entry *e = &list.e[i];
        if (cellar_identify_path(&e->id, e->path, reg) != 0) {
            e->error = strdup(cellar_error_last());
            cellar_error_clear();
        }
    }
    if (rc == CLI_OK) {
        qsort(list.e, list.n, sizeof *list.e, cmp_entries);
        find_duplicates();
        if (json)
            print_json();
        else
            print_text();
    }
    for (size_t i = 0; i < list.n; i++) {
        free(list.e[i].path);
        free(list.e[i].error);
        cellar_identity_free(list.e[i].id);
    }
    free(list.e);
    memset(&list, 0, sizeof list);
    cellar_registry_free(reg);
    return rc;
}
