/* The hash cache belongs to a store: two stores never see each other's
 * rows, nothing is written outside the store a caller opened (not under
 * $HOME, whatever the environment says), a failed open does not stick,
 * and a forked child uses the cache through a connection of its own. */
#include "testutil.h"
#include "util.h"

#include "cellar.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void write_text(const char *path, const char *text)
{
    CHECK(cellar_write_file_atomic(path, text, strlen(text), 0644) == 0);
}

/* The cache ignores files changed within the last clock tick or so. */
static void past_racy_window(void)
{
    struct timespec t = {0, 120000000};
    nanosleep(&t, NULL);
}

static cellar_file_id id_of(const char *path)
{
    struct stat st;
    CHECK(stat(path, &st) == 0);
    return (cellar_file_id){(uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_size,
                            st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                            st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec};
}

/* Length of the sha256 store s caches for path, -1 if none. */
static int cached_in(cellar_store *s, const char *path)
{
    const cellar_hash_cache *c = cellar_store_hash_cache(s);
    cellar_hash_cache_entry e = {.file = id_of(path), .label = "sha256"};
    CHECK(c->lookup(&e, 1, c->ctx) == 0);
    return e.len;
}

static int sha256_of(cellar_digests *d, cellar_store *s, const char *path)
{
    cellar_hash_opts o = CELLAR_HASH_OPTS_INIT;
    o.algos = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256);
    o.cache = s ? cellar_store_hash_cache(s) : NULL;
    return cellar_hash_path(d, path, &o);
}

static size_t entries_in(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

int main(void)
{
    const char *dir = test_tmpdir("hash_cache");
    char *fake_home = cellar_path_join(dir, "home");
    CHECK(cellar_mkdirs(fake_home, 0755) == 0);
    unsetenv("CELLAR_HOME");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", fake_home, 1);

    char *home_a = cellar_path_join(dir, "a"), *home_b = cellar_path_join(dir, "b");
    char *f1 = cellar_path_join(dir, "one.txt"), *f2 = cellar_path_join(dir, "two.txt");
    char *f3 = cellar_path_join(dir, "three.txt");
    write_text(f1, "one");
    write_text(f2, "two");
    write_text(f3, "three");
    past_racy_window();

    cellar_store *a = NULL, *b = NULL;
    CHECK(cellar_store_open(&a, home_a) == 0);
    CHECK(cellar_store_open(&b, home_b) == 0);
    if (!a || !b)
        return test_summary();

    /* Each store caches what was hashed through it, and only that. */
    cellar_digests d;
    CHECK(sha256_of(&d, a, f1) == 0 && d.cached == 0);
    CHECK(sha256_of(&d, b, f2) == 0 && d.cached == 0);
    CHECK(cached_in(a, f1) == 32 && cached_in(a, f2) == -1);
    CHECK(cached_in(b, f2) == 32 && cached_in(b, f1) == -1);
    CHECK(sha256_of(&d, a, f1) == 0 && d.cached == d.have);
    CHECK(sha256_of(&d, b, f1) == 0 && d.cached == 0);
    /* No cache asked for: none used, none written. */
    CHECK(sha256_of(&d, NULL, f3) == 0 && d.cached == 0);
    CHECK(cached_in(a, f3) == -1 && cached_in(b, f3) == -1);

    /* A forked child (Python's multiprocessing) hashes through the
     * parent's handle: its first use opens a connection of its own, and
     * what it records is the store's. */
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        cellar_digests cd;
        _exit(sha256_of(&cd, a, f3) == 0 && cd.cached == 0 ? 0 : 1);
    }
    int status = -1;
    CHECK(child > 0 && waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(cached_in(a, f3) == 32 && cached_in(b, f3) == -1);
    CHECK(sha256_of(&d, a, f3) == 0 && d.cached == d.have);

    /* dedup fills its own store's cache, not another's */
    char *tree = cellar_path_join(dir, "tree");
    char *t1 = cellar_path_join(tree, "x.bin"), *t2 = cellar_path_join(tree, "y.bin");
    CHECK(cellar_mkdirs(tree, 0755) == 0);
    write_text(t1, "same bytes");
    write_text(t2, "same bytes");
    past_racy_window();
    cellar_dedup_opts o = {.version = CELLAR_DEDUP_OPTS_VERSION, .dry_run = 1, .min_size = 1};
    cellar_dedup_stats st;
    const char *paths[] = {tree};
    CHECK(cellar_store_dedup(&st, b, 1, paths, &o) == 0 && st.files == 2);
    /* the file read (the other is only compared with it) is cached in b */
    CHECK(cached_in(b, t1) == 32 || cached_in(b, t2) == 32);
    CHECK(cached_in(a, t1) == -1 && cached_in(a, t2) == -1);

    /* A store that cannot be opened fails; the next open of a good one
     * works (nothing process-wide remembers the failure). */
    cellar_store *bad = NULL;
    char *blocked = cellar_path_join(f1, "store"); /* f1 is a file */
    CHECK(cellar_store_open(&bad, blocked) != 0 && bad == NULL);
    cellar_store *again = NULL;
    CHECK(cellar_store_open(&again, home_a) == 0);
    CHECK(again && cached_in(again, f1) == 32);
    cellar_store_free(again);

    cellar_store_free(a);
    cellar_store_free(b);
    /* Nothing went to $HOME (~/.cache/cellar was the old hidden default). */
    CHECK(entries_in(fake_home) == 0);

    free(blocked);
    free(t1);
    free(t2);
    free(tree);
    free(f1);
    free(f2);
    free(f3);
    free(home_a);
    free(home_b);
    free(fake_home);
    return test_summary();
}
