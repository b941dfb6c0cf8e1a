/* The store: adding, adopting, freshening, the streaming writer (commit,
 * mismatch, resume, truncate), link modes, lookups by other digests,
 * snapshots, verify, gc, and a disk-full add. */
#include "store.h"
#include "testutil.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *path_in(const char *dir, const char *name)
{
    return cellar_path_join(dir, name);
}

/* A file of len pseudo-random bytes from seed. */
static void make_file(const char *path, size_t len, unsigned seed)
{
    uint8_t *buf = malloc(len ? len : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
    CHECK(cellar_write_file_atomic(path, buf, len, 0644) == 0);
    free(buf);
}

static void digest_of(const void *data, size_t len, cellar_digests *d)
{
    cellar_hasher *h;
    uint32_t algos = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256) | CELLAR_ALGO_BIT(CELLAR_ALGO_BLAKE3) |
                     CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1);
    CHECK(cellar_hasher_new(&h, algos, len) == 0);
    cellar_hasher_update(h, data, len);
    CHECK(cellar_hasher_final(d, h) == 0);
    cellar_hasher_free(h);
}

struct progress_seen {
    size_t calls, stop_at;
    uint64_t bytes_done, bytes_total, files_done, files_total;
};

static int on_progress(const cellar_progress *p, void *ctx)
{
    struct progress_seen *ps = ctx;
    ps->calls++;
    ps->bytes_done = p->bytes_done;
    ps->bytes_total = p->bytes_total;
    ps->files_done = p->files_done;
    ps->files_total = p->files_total;
    return ps->stop_at && ps->calls >= ps->stop_at;
}

static int stop_dedup(cellar_dedup_event_kind kind, const char *path, uint64_t size,
                      const char *message, void *ctx)
{
    (void)kind;
    (void)path;
    (void)size;
    (void)message;
    (*(int *)ctx)++;
    return 1;
}

static int stop_gc(const uint8_t sha256[32], uint64_t size, void *ctx)
{
    (void)sha256;
    (void)size;
    (*(int *)ctx)++;
    return 1;
}

static int stop_object(const cellar_object_info *info, void *ctx)
{
    (void)info;
    (*(int *)ctx)++;
    return 1;
}

static cellar_store *open_store(const char *dir)
{
    char *home = path_in(dir, "home");
    cellar_store *s = NULL;
    CHECK(cellar_store_open(&s, home) == 0);
    free(home);
    return s;
}

static void test_add(void)
{
    const char *dir = test_tmpdir("store_add");
    cellar_store *s = open_store(dir);
    char *a = path_in(dir, "a.bin"), *b = path_in(dir, "b.bin");
    make_file(a, 100000, 1);
    make_file(b, 100000, 1);

    /* Same filesystem: the file itself is adopted, read-only. */
    cellar_digests d;
    CHECK(cellar_store_add_file(&d, s, a, 0) == 0);
    CHECK(d.size == 100000);
    CHECK(d.have & CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1));
    char *obj;
    CHECK(cellar_store_object_path(&obj, s, d.d[CELLAR_ALGO_SHA256]) == 0);
    struct stat so, sa, sb;
    CHECK(stat(obj, &so) == 0 && stat(a, &sa) == 0);
    CHECK(so.st_ino == sa.st_ino);
    CHECK((so.st_mode & 07777) == 0444);

    /* The same content again: nothing written, b untouched and separate. */
    struct timespec mtime = so.st_mtim;
    cellar_digests d2;
    CHECK(cellar_store_add_file(&d2, s, b, 0) == 0);
    CHECK(memcmp(d.d[CELLAR_ALGO_SHA256], d2.d[CELLAR_ALGO_SHA256], 32) == 0);
    CHECK(stat(obj, &so) == 0 && stat(b, &sb) == 0);
    CHECK(sb.st_ino != so.st_ino && (sb.st_mode & 0777) == 0644);
    CHECK(so.st_mtim.tv_sec == mtime.tv_sec && so.st_mtim.tv_nsec == mtime.tv_nsec);

    /* A copy: the source stays independent and writable. */
    char *c = path_in(dir, "c.bin");
    make_file(c, 5000, 2);
    CHECK(cellar_store_add_file(&d2, s, c, CELLAR_ADD_COPY) == 0);
    char *obj2;
    CHECK(cellar_store_object_path(&obj2, s, d2.d[CELLAR_ALGO_SHA256]) == 0);
    struct stat sc, so2;
    CHECK(stat(c, &sc) == 0 && stat(obj2, &so2) == 0);
    CHECK(sc.st_ino != so2.st_ino && so2.st_size == 5000 && (so2.st_mode & 0777) == 0444);

    /* Lookups by sha256, blake3, git blob sha1. */
    uint8_t sha[32];
    CHECK(cellar_store_find(sha, s, CELLAR_ALGO_SHA256, d2.d[CELLAR_ALGO_SHA256]) == 0);
    CHECK(cellar_store_find(sha, s, CELLAR_ALGO_BLAKE3, d2.d[CELLAR_ALGO_BLAKE3]) == 0 &&
          !memcmp(sha, d2.d[CELLAR_ALGO_SHA256], 32));
    CHECK(cellar_store_find(sha, s, CELLAR_ALGO_GITSHA1, d2.d[CELLAR_ALGO_GITSHA1]) == 0 &&
          !memcmp(sha, d2.d[CELLAR_ALGO_SHA256], 32));
    uint8_t zero[32] = {0};
    CHECK(cellar_store_find(sha, s, CELLAR_ALGO_SHA256, zero) == CELLAR_ENOTFOUND);
    CHECK(cellar_store_find(sha, s, CELLAR_ALGO_GITSHA1, zero) == CELLAR_ENOTFOUND);
    CHECK_ERR(cellar_store_find(sha, s, CELLAR_ALGO_MD5, zero), CELLAR_EINVAL, "md5");
    char *none;
    CHECK_ERR(cellar_store_object_path(&none, s, zero), CELLAR_ENOTFOUND, "not in the store");
    CHECK(none == NULL);

    char *missing = path_in(dir, "missing.bin");
    CHECK_ERR(cellar_store_add_file(NULL, s, missing, 0), CELLAR_ENOTFOUND, "missing.bin");
    CHECK(cellar_store_add_file(NULL, s, dir, 0) < 0);

    free(missing);
    free(obj2);
    free(c);
    free(obj);
    free(a);
    free(b);
    cellar_store_free(s);
}

static void test_writer(void)
{
    const char *dir = test_tmpdir("store_writer");
    cellar_store *s = open_store(dir);
    const size_t len = 300000;
    uint8_t *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 9));
    cellar_digests want;
    digest_of(data, len, &want);
    const uint8_t *sha = want.d[CELLAR_ALGO_SHA256];

    /* Mismatch: a flipped byte is refused, the store stays untouched. */
    cellar_store_writer *w;
    CHECK(cellar_store_writer_open(&w, s, sha, len, NULL) == 0);
    CHECK(cellar_store_writer_write(w, data, 1000) == 0);
    uint8_t bad = data[1000] ^ 1;
    CHECK(cellar_store_writer_write(w, &bad, 1) == 0);
    CHECK(cellar_store_writer_write(w, data + 1001, len - 1001) == 0);
    CHECK_ERR(cellar_store_writer_commit(NULL, w, NULL), CELLAR_EMISMATCH, "expected");
    cellar_store_writer_free(w);
    CHECK(cellar_store_find(NULL, s, CELLAR_ALGO_SHA256, sha) == CELLAR_ENOTFOUND);
    CHECK(cellar_store_writer_open(&w, s, sha, len, NULL) == 0);
    CHECK(cellar_store_writer_write(w, data, len) == 0);
    CHECK_ERR(cellar_store_writer_write(w, data, 1), CELLAR_EMISMATCH, "more than");
    cellar_store_writer_free(w);

    /* Resume across "runs": write part, free, reopen with the same key. */
    CHECK(cellar_store_writer_open(&w, s, sha, len, "sha256:test") == 0);
    CHECK(cellar_store_writer_offset(w) == 0);
    CHECK(cellar_store_writer_write(w, data, 123457) == 0);
    /* A second writer of the same key is refused while the first holds it. */
    cellar_store_writer *w2;
    CHECK_ERR(cellar_store_writer_open(&w2, s, sha, len, "sha256:test"), CELLAR_EBUSY, "another");
    cellar_store_writer_free(w);
    CHECK(cellar_store_writer_open(&w, s, sha, len, "sha256:test") == 0);
    CHECK(cellar_store_writer_offset(w) == 123457);
    /* A server that ignores the range: restart from 0. */
    CHECK(cellar_store_writer_truncate(w, 0) == 0);
    CHECK(cellar_store_writer_offset(w) == 0);
    CHECK_ERR(cellar_store_writer_truncate(w, 10), CELLAR_EINVAL, "only 0 bytes");
    CHECK(cellar_store_writer_write(w, data, 50000) == 0);
    CHECK(cellar_store_writer_truncate(w, 40000) == 0);
    CHECK(cellar_store_writer_write(w, data + 40000, len - 40000) == 0);
    /* A wrong extra digest (git sha1) is refused too. */
    cellar_digests extra;
    memset(&extra, 0, sizeof extra);
    extra.have = CELLAR_ALGO_BIT(CELLAR_ALGO_GITSHA1);
    memcpy(extra.d[CELLAR_ALGO_GITSHA1], want.d[CELLAR_ALGO_GITSHA1], 20);
    cellar_digests got;
    CHECK(cellar_store_writer_commit(&got, w, &extra) == 0);
    cellar_store_writer_free(w);
    CHECK(!memcmp(got.d[CELLAR_ALGO_SHA256], sha, 32) && got.size == len);
    CHECK(cellar_store_find(NULL, s, CELLAR_ALGO_GITSHA1, want.d[CELLAR_ALGO_GITSHA1]) == 0);
    char *obj;
    CHECK(cellar_store_object_path(&obj, s, sha) == 0);
    char *back;
    size_t blen;
    CHECK(cellar_read_file(&back, &blen, obj, 0) == 0 && blen == len && !memcmp(back, data, len));
    free(back);
    free(obj);
    /* The partial is gone once committed. */
    char *partial = cellar_sprintf("%s/home/tmp/partial-sha256:test", dir);
    CHECK(access(partial, F_OK) != 0);
    free(partial);

    /* Writing a blob the store has: accepted, nothing changes. */
    CHECK(cellar_store_writer_open(&w, s, NULL, UINT64_MAX, NULL) == 0);
    CHECK(cellar_store_writer_write(w, data, len) == 0);
    extra.d[CELLAR_ALGO_GITSHA1][0] ^= 1;
    CHECK_ERR(cellar_store_writer_commit(NULL, w, &extra), CELLAR_EMISMATCH, "git-sha1");
    cellar_store_writer_free(w);
    CHECK(cellar_store_writer_open(&w, s, NULL, UINT64_MAX, NULL) == 0);
    CHECK(cellar_store_writer_write(w, data, len) == 0);
    CHECK(cellar_store_writer_commit(&got, w, NULL) == 0 &&
          !memcmp(got.d[CELLAR_ALGO_SHA256], sha, 32));
    cellar_store_writer_free(w);
    CHECK_ERR(cellar_store_writer_open(&w, s, NULL, 1, "../evil"), CELLAR_EINVAL, "resume key");
    free(data);
    cellar_store_free(s);
}

static void sha_of_file(const char *path, uint8_t sha[32])
{
    char *data;
    size_t len;
    CHECK(cellar_read_file(&data, &len, path, 0) == 0);
    cellar_digests d;
    digest_of(data, len, &d);
    memcpy(sha, d.d[CELLAR_ALGO_SHA256], 32);
    free(data);
}

static int count_place(const char *path, cellar_link_mode mode, void *ctx)
{
    (void)path;
    (void)mode;
    (*(int *)ctx)++;
    return 0;
}

static void test_link(void)
{
    const char *dir = test_tmpdir("store_link");
    cellar_store *s = open_store(dir);
    char *src = path_in(dir, "src.bin");
    make_file(src, 70000, 3);
    cellar_digests d;
    CHECK(cellar_store_add_file(&d, s, src, CELLAR_ADD_COPY) == 0);
    const uint8_t *sha = d.d[CELLAR_ALGO_SHA256];
    char *obj;
    CHECK(cellar_store_object_path(&obj, s, sha) == 0);
    struct stat so, st;
    CHECK(stat(obj, &so) == 0);

    cellar_link_mode used;
    char *hard = path_in(dir, "places/deep/hard.bin");
    CHECK(cellar_store_link(&used, s, sha, hard, CELLAR_LINK_AUTO) == 0);
    CHECK(used == CELLAR_LINK_HARD);
    CHECK(stat(hard, &st) == 0 && st.st_ino == so.st_ino);
    /* Linking again over itself changes nothing and leaves no temp name. */
    CHECK(cellar_store_link(&used, s, sha, hard, CELLAR_LINK_HARD) == 0);
    char *ls = cellar_sprintf("ls -A '%s/places/deep' | grep -q cellar-link", dir);
    CHECK(system(ls) != 0);
    free(ls);

    char *sym = path_in(dir, "places/sym.bin");
    CHECK(cellar_store_link(&used, s, sha, sym, CELLAR_LINK_SYMLINK) == 0);
    char target[4096];
    ssize_t n = readlink(sym, target, sizeof target - 1);
    CHECK(n > 0);
    target[n > 0 ? n : 0] = '\0';
    CHECK_STR(target, obj);

    /* A copy replaces an existing file atomically and is independent. */
    char *copy = path_in(dir, "places/copy.bin");
    CHECK(cellar_write_file_atomic(copy, "old", 3, 0644) == 0);
    CHECK(cellar_store_link(&used, s, sha, copy, CELLAR_LINK_COPY) == 0 &&
          used == CELLAR_LINK_COPY);
    uint8_t got[32];
    sha_of_file(copy, got);
    CHECK(!memcmp(got, sha, 32));
    CHECK(stat(copy, &st) == 0 && st.st_ino != so.st_ino);

    /* A reflink works or says the filesystem cannot. */
    char *ref = path_in(dir, "places/ref.bin");
    int rc = cellar_store_link(&used, s, sha, ref, CELLAR_LINK_REFLINK);
    CHECK(rc == 0 || rc == CELLAR_EUNSUPPORTED);
    if (rc == 0) {
        sha_of_file(ref, got);
        CHECK(!memcmp(got, sha, 32));
    }

    int places = 0;
    CHECK(cellar_store_foreach_place(s, sha, count_place, &places) == 0);
    CHECK(places == (rc == 0 ? 4 : 3));

    uint8_t zero[32] = {0};
    CHECK_ERR(cellar_store_link(NULL, s, zero, hard, CELLAR_LINK_AUTO), CELLAR_ENOTFOUND,
              "not in the store");
    cellar_link_mode m;
    CHECK(cellar_link_mode_parse(&m, "reflink") == 0 && m == CELLAR_LINK_REFLINK);
    CHECK_ERR(cellar_link_mode_parse(&m, "soft"), CELLAR_EINVAL, "soft");
    CHECK_STR(cellar_link_mode_name(CELLAR_LINK_SYMLINK), "symlink");

    /* Under a root: folders made as needed, never followed when a link. */
    char *root = path_in(dir, "under");
    CHECK(cellar_store_link_under(&used, s, sha, root, "a/b/w.bin", CELLAR_LINK_AUTO) == 0);
    char *w = path_in(dir, "under/a/b/w.bin");
    CHECK(stat(w, &st) == 0 && st.st_ino == so.st_ino);
    char *outside = path_in(dir, "outside");
    char *swapped = path_in(dir, "under/a/c");
    CHECK(mkdir(outside, 0755) == 0 && symlink(outside, swapped) == 0);
    CHECK_ERR(cellar_store_link_under(NULL, s, sha, root, "a/c/w.bin", CELLAR_LINK_AUTO),
              CELLAR_EINVAL, "'a/c' is a symlink, not a folder");
    char *leak = path_in(dir, "outside/w.bin");
    CHECK(access(leak, F_OK) != 0);
    CHECK_ERR(cellar_store_link_under(NULL, s, sha, root, "a/../w.bin", CELLAR_LINK_AUTO),
              CELLAR_EINVAL, "not a plain relative path");
    CHECK_ERR(cellar_store_link_under(NULL, s, sha, root, "a/b/w.bin/x", CELLAR_LINK_AUTO),
              CELLAR_EINVAL, "'a/b/w.bin' is a file, not a folder");
    /* The last component, a symlink itself, is replaced, not followed. */
    char *lastlink = path_in(dir, "under/a/last.bin");
    char *victim = path_in(dir, "outside/victim");
    CHECK(cellar_write_file_atomic(victim, "mine", 4, 0644) == 0 && symlink(victim, lastlink) == 0);
    CHECK(cellar_store_link_under(NULL, s, sha, root, "a/last.bin", CELLAR_LINK_COPY) == 0);
    CHECK(lstat(lastlink, &st) == 0 && S_ISREG(st.st_mode));
    CHECK(stat(victim, &st) == 0 && st.st_size == 4);
    free(victim);
    free(lastlink);
    free(leak);
    free(swapped);
    free(outside);
    free(w);
    free(root);

    free(ref);
    free(copy);
    free(sym);
    free(hard);
    free(obj);
    free(src);
    cellar_store_free(s);
}

static void test_snapshot(void)
{
    const char *dir = test_tmpdir("store_snapshot");
    cellar_store *s = open_store(dir);
    char *a = path_in(dir, "a"), *b = path_in(dir, "b");
    make_file(a, 1000, 4);
    make_file(b, 2000, 5);
    cellar_digests da, db;
    CHECK(cellar_store_add_file(&da, s, a, CELLAR_ADD_COPY) == 0);
    CHECK(cellar_store_add_file(&db, s, b, CELLAR_ADD_COPY) == 0);
    const char *paths[] = {"unet/model.safetensors", "config.json"};
    uint8_t shas[2][32];
    memcpy(shas[0], da.d[CELLAR_ALGO_SHA256], 32);
    memcpy(shas[1], db.d[CELLAR_ALGO_SHA256], 32);
    const char *commit = "0123456789abcdef0123456789abcdef01234567";
    CHECK(cellar_store_record_snapshot(s, "org/model", "main", commit, 2, paths,
                                       (const uint8_t(*)[32])shas) == 0);
    cellar_snapshot *snap;
    CHECK(cellar_store_find_snapshot(&snap, s, "org/model", "main") == 0);
    if (snap) {
        CHECK_STR(snap->commit, commit);
        CHECK(snap->n == 2);
        /* Sorted by path. */
        CHECK_STR(snap->files[0].path, "config.json");
        CHECK(!memcmp(snap->files[0].sha256, shas[1], 32) && snap->files[0].size == 2000);
        CHECK(snap->files[1].size == 1000);
    }
    cellar_snapshot_free(snap);
    CHECK(cellar_store_find_snapshot(&snap, s, "org/model", commit) == 0 && snap && snap->n == 2);
    cellar_snapshot_free(snap);
    CHECK_ERR(cellar_store_find_snapshot(&snap, s, "org/model", "dev"), CELLAR_ENOTFOUND, "dev");
    CHECK_ERR(cellar_store_find_snapshot(&snap, s, "org/other", "main"), CELLAR_ENOTFOUND,
              "org/other");

    /* A snapshot naming a blob the store lacks is refused whole. */
    shas[1][0] ^= 1;
    CHECK_ERR(cellar_store_record_snapshot(s, "org/model", "main", "ffff", 2, paths,
                                           (const uint8_t(*)[32])shas),
              CELLAR_ENOTFOUND, "config.json");
    CHECK(cellar_store_find_snapshot(&snap, s, "org/model", "main") == 0 && snap &&
          !strcmp(snap->commit, commit));
    cellar_snapshot_free(snap);
    free(a);
    free(b);
    cellar_store_free(s);
}

struct verify_count {
    int ok, bad;
    uint8_t bad_sha[32];
};

static int on_verify(const uint8_t sha256[32], int status, const char *message, void *ctx)
{
    struct verify_count *v = ctx;
    (void)message;
    if (status == 0) {
        v->ok++;
    } else {
        v->bad++;
        memcpy(v->bad_sha, sha256, 32);
    }
    return 0;
}

static void test_verify(void)
{
    const char *dir = test_tmpdir("store_verify");
    cellar_store *s = open_store(dir);
    char *a = path_in(dir, "a"), *b = path_in(dir, "b");
    make_file(a, 50000, 6);
    make_file(b, 60000, 7);
    cellar_digests da, db;
    CHECK(cellar_store_add_file(&da, s, a, CELLAR_ADD_COPY) == 0);
    CHECK(cellar_store_add_file(&db, s, b, CELLAR_ADD_COPY) == 0);
    struct verify_count v = {0, 0, {0}};
    CHECK(cellar_store_verify(s, 0, NULL, on_verify, &v) == 0);
    CHECK(v.ok == 2 && v.bad == 0);
    int seen = 0;
    CHECK_ERR(cellar_store_foreach(s, stop_object, &seen), CELLAR_EUSER, "stopped");
    CHECK(seen == 1);

    /* Flip one byte of b's object. */
    char *obj;
    CHECK(cellar_store_object_path(&obj, s, db.d[CELLAR_ALGO_SHA256]) == 0);
    CHECK(chmod(obj, 0644) == 0);
    int fd = open(obj, O_RDWR);
    uint8_t byte;
    CHECK(pread(fd, &byte, 1, 31337) == 1);
    byte ^= 0x20;
    CHECK(pwrite(fd, &byte, 1, 31337) == 1);
    close(fd);
    CHECK(chmod(obj, 0444) == 0);
    memset(&v, 0, sizeof v);
    CHECK(cellar_store_verify(s, 0, NULL, on_verify, &v) == 0);
    CHECK(v.ok == 1 && v.bad == 1 && !memcmp(v.bad_sha, db.d[CELLAR_ALGO_SHA256], 32));
    /* Nothing was deleted. */
    CHECK(access(obj, F_OK) == 0);
    uint8_t missing[1][32] = {{1}};
    memset(&v, 0, sizeof v);
    CHECK(cellar_store_verify(s, 1, (const uint8_t(*)[32])missing, on_verify, &v) == 0 && v.bad == 1);
    free(obj);
    free(a);
    free(b);
    cellar_store_free(s);
}

static void test_gc(void)
{
    const char *dir = test_tmpdir("store_gc");
    cellar_store *s = open_store(dir);
    char *files[4];
    cellar_digests d[4];
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        files[i] = path_in(dir, name);
        make_file(files[i], 20000 + (size_t)i, 10 + (unsigned)i);
        CHECK(cellar_store_add_file(&d[i], s, files[i], CELLAR_ADD_COPY) == 0);
    }
    /* 0: hard-linked somewhere; 1: symlinked; 2: nothing; 3: nothing, locked. */
    char *hard = path_in(dir, "use/hard"), *sym = path_in(dir, "use/sym");
    CHECK(cellar_store_link(NULL, s, d[0].d[CELLAR_ALGO_SHA256], hard, CELLAR_LINK_HARD) == 0);
    CHECK(cellar_store_link(NULL, s, d[1].d[CELLAR_ALGO_SHA256], sym, CELLAR_LINK_SYMLINK) == 0);

    /* Everything is young: the default grace keeps all. */
    cellar_gc_opts o = CELLAR_GC_OPTS_INIT;
    cellar_gc_stats st;
    CHECK(cellar_store_gc(&st, s, &o, NULL, NULL) == 0);
    CHECK(st.objects_removed == 0 && st.objects_kept == 4);

    /* What s admitted stays pinned while s lives, whatever the grace: gc
     * (here through s itself) keeps all, until s drops its pins. */
    cellar_gc_opts o0 = CELLAR_GC_OPTS_INIT;
    o0.dry_run = 1;
    o0.grace_seconds = 0;
    CHECK(cellar_store_gc(&st, s, &o0, NULL, NULL) == 0);
    CHECK(st.objects_removed == 0 && st.objects_kept == 4);
    CHECK(cellar_store_unpin_all(s) == 0);
    /* cellar_store_pin: 0 for a stored blob (pinned again), ENOTFOUND else. */
    uint8_t none[32] = {1};
    CHECK_ERR(cellar_store_pin(s, none), CELLAR_ENOTFOUND, "not in the store");
    CHECK(cellar_store_pin(s, d[2].d[CELLAR_ALGO_SHA256]) == 0);
    CHECK(cellar_store_gc(&st, s, &o0, NULL, NULL) == 0);
    CHECK(st.objects_removed == 1 && st.objects_kept == 3); /* 3 only: 2 is pinned */
    CHECK(cellar_store_unpin_all(s) == 0);

    char lock[65];
    int lfd;
    store_lock_name(lock, d[3].d[CELLAR_ALGO_SHA256]);
    CHECK(store_lock(s, lock, false, &lfd) == 0);
    o.grace_seconds = 0;
    o.dry_run = 1;
    CHECK(cellar_store_gc(&st, s, &o, NULL, NULL) == 0);
    CHECK(st.objects_removed == 1 && st.bytes_removed == 20002);
    CHECK(cellar_store_find(NULL, s, CELLAR_ALGO_SHA256, d[2].d[CELLAR_ALGO_SHA256]) == 0);
    o.dry_run = 0;
    CHECK(cellar_store_gc(&st, s, &o, NULL, NULL) == 0);
    CHECK(st.objects_removed == 1 && st.objects_kept == 3);
    CHECK(cellar_store_find(NULL, s, CELLAR_ALGO_SHA256, d[0].d[CELLAR_ALGO_SHA256]) == 0);
    CHECK(cellar_store_find(NULL, s, CELLAR_ALGO_SHA256, d[1].d[CELLAR_ALGO_SHA256]) == 0);
    CHECK(cellar_store_find(NULL, s, CELLAR_ALGO_SHA256, d[2].d[CELLAR_ALGO_SHA256]) == CELLAR_ENOTFOUND);
    CHECK(cellar_store_find(NULL, s, CELLAR_ALGO_SHA256, d[3].d[CELLAR_ALGO_SHA256]) == 0);
    CHECK(cellar_store_find(NULL, s, CELLAR_ALGO_GITSHA1, d[2].d[CELLAR_ALGO_GITSHA1]) == CELLAR_ENOTFOUND);
    store_unlock(lfd);

    /* The same store reached through another spelling of its home: the
     * symlink place still holds its object, and links made through either
     * handle resolve from anywhere. */
    char *other = path_in(dir, "./home/");
    cellar_store *s2 = NULL;
    CHECK(cellar_store_open(&s2, other) == 0);
    CHECK(cellar_store_gc(&st, s2, &o, NULL, NULL) == 0);
    CHECK(st.objects_removed == 1); /* 3, unlocked now */
    CHECK(cellar_store_find(NULL, s, CELLAR_ALGO_SHA256, d[1].d[CELLAR_ALGO_SHA256]) == 0);
    char *sym2 = path_in(dir, "use/sym2");
    CHECK(cellar_store_link(NULL, s2, d[1].d[CELLAR_ALGO_SHA256], sym2, CELLAR_LINK_SYMLINK) == 0);
    char target[4096];
    ssize_t tn = readlink(sym2, target, sizeof target - 1);
    CHECK(tn > 0 && target[0] == '/' && !strstr(target, "/./"));
    CHECK(unlink(sym2) == 0);
    cellar_store_free(s2);
    free(sym2);
    free(other);

    /* Once the places are gone, so are the objects. */
    CHECK(unlink(hard) == 0 && unlink(sym) == 0);
    /* A callback that answers non-zero stops gc after that object. */
    int told = 0;
    CHECK_ERR(cellar_store_gc(&st, s, &o, stop_gc, &told), CELLAR_EUSER, "gc: stopped");
    CHECK(told == 1 && st.objects_removed == 1);
    struct progress_seen ps = {0};
    o.progress = on_progress;
    o.progress_ctx = &ps;
    CHECK(cellar_store_gc(&st, s, &o, NULL, NULL) == 0);
    CHECK(st.objects_removed == 1 && st.objects_kept == 0);
    CHECK(ps.calls >= 1 && ps.files_done == 1 && ps.files_total == 1);
    for (int i = 0; i < 4; i++)
        free(files[i]);
    free(hard);
    free(sym);
    cellar_store_free(s);
}

/* A full disk in the middle of an add (a file size limit stands in for
 * ENOSPC: the same failed write): no partial object, no temp file left,
 * and an error that says what happened. */
static void test_add_disk_full(void)
{
    const char *dir = test_tmpdir("store_full");
    cellar_store *s = open_store(dir);
    char *big = path_in(dir, "big.bin");
    make_file(big, 3u << 20, 20);
    uint8_t sha[32];
    sha_of_file(big, sha);
    cellar_store_free(s);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1u << 20, 1u << 20};
        setrlimit(RLIMIT_FSIZE, &rl);
        cellar_store *cs = open_store(dir);
        int rc = cellar_store_add_file(NULL, cs, big, CELLAR_ADD_COPY);
        int ok = rc == CELLAR_EIO && strstr(cellar_error_last(), "copying into the store") &&
                 strstr(cellar_error_last(), "big.bin");
        if (!ok)
            fprintf(stderr, "disk-full add: rc=%d %s\n", rc, cellar_error_last());
        cellar_store_free(cs);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    s = open_store(dir);
    CHECK(cellar_store_find(NULL, s, CELLAR_ALGO_SHA256, sha) == CELLAR_ENOTFOUND);
    char *cmd = cellar_sprintf("test -z \"$(ls -A '%s/home/tmp')\"", dir);
    CHECK(system(cmd) == 0);
    free(cmd);
    /* Without the limit the same add succeeds. */
    CHECK(cellar_store_add_file(NULL, s, big, CELLAR_ADD_COPY) == 0);
    CHECK(cellar_store_find(NULL, s, CELLAR_ALGO_SHA256, sha) == 0);
    free(big);
    cellar_store_free(s);
}

static int on_dedup(cellar_dedup_event_kind kind, const char *path, uint64_t size,
                    const char *message, void *ctx)
{
    (void)path;
    (void)size;
    (void)message;
    if (kind == CELLAR_DEDUP_LINKED)
        (*(int *)ctx)++;
    return 0;
}


static void test_dedup(void)
{
    const char *dir = test_tmpdir("store_dedup");
    cellar_store *s = open_store(dir);
    char *t = path_in(dir, "tree");
    char *f[5];
    const char *names[] = {"tree/a/x.bin", "tree/b/x.bin", "tree/c/y.bin", "tree/c/unique.bin",
                           "tree/c/samesize.bin"};
    char *cmd = cellar_sprintf("mkdir -p '%s/a' '%s/b' '%s/c'", t, t, t);
    CHECK(system(cmd) == 0);
    free(cmd);
    for (int i = 0; i < 5; i++)
        f[i] = path_in(dir, names[i]);
    make_file(f[0], 200000, 30);
    make_file(f[1], 200000, 30);
    make_file(f[2], 200000, 30);
    make_file(f[3], 123456, 31);
    make_file(f[4], 200000, 32); /* same size, other bytes */
    uint8_t before4[32];
    sha_of_file(f[4], before4);

    int linked = 0;
    cellar_dedup_opts o = {.version = CELLAR_DEDUP_OPTS_VERSION, .dry_run = 1, .min_size = 1, .cb = on_dedup, .ctx = &linked};
    cellar_dedup_stats st;
    const char *paths[] = {t};
    CHECK(cellar_store_dedup(&st, s, 1, paths, &o) == 0);
    struct stat s0, s1, s2, s3, s4;
    CHECK(stat(f[0], &s0) == 0 && stat(f[1], &s1) == 0 && s0.st_ino != s1.st_ino);
    CHECK(st.files == 5 && st.bytes_after < st.bytes_before && linked == 2);
    /* An event callback answering non-zero stops at its first event. */
    int events = 0;
    cellar_dedup_opts stop = o;
    stop.cb = stop_dedup;
    stop.ctx = &events;
    CHECK_ERR(cellar_store_dedup(&st, s, 1, paths, &stop), CELLAR_EUSER, "stopped by the caller");
    CHECK(events == 1);

    o.dry_run = 0;
    linked = 0;
    CHECK(cellar_store_dedup(&st, s, 1, paths, &o) == 0);
    CHECK(st.errors == 0 && linked == 2 && st.linked == 3);
    CHECK(stat(f[0], &s0) == 0 && stat(f[1], &s1) == 0 && stat(f[2], &s2) == 0);
    CHECK(stat(f[3], &s3) == 0 && stat(f[4], &s4) == 0);
    CHECK(s0.st_ino == s1.st_ino && s1.st_ino == s2.st_ino && s0.st_nlink == 4);
    CHECK(s3.st_nlink == 1 && s4.st_nlink == 1 && s4.st_ino != s0.st_ino);
    CHECK(st.bytes_before - st.bytes_after == 2 * (uint64_t)s0.st_blocks * 512);
    uint8_t after4[32];
    sha_of_file(f[4], after4);
    CHECK(!memcmp(before4, after4, 32));

    /* A second run changes nothing. */
    CHECK(cellar_store_dedup(&st, s, 1, paths, &o) == 0);
    CHECK(st.bytes_before == st.bytes_after && st.linked == 3);
    for (int i = 0; i < 5; i++)
        free(f[i]);
    free(t);
    cellar_store_free(s);
}

/* Many same-size files: more copies than one reading round compares, and
 * files that differ from them only in their last byte (they drop out of a
 * round late). Every copy ends up on one inode, the others untouched. */
static void test_dedup_rounds(void)
{
    const char *dir = test_tmpdir("store_dedup_rounds");
    cellar_store *s = open_store(dir);
    char *t = path_in(dir, "tree");
    CHECK(cellar_mkdirs(t, 0755) == 0);
    enum { N = 15, LEN = 300000 };
    uint8_t *buf = malloc(LEN);
    uint32_t x = 7;
    for (size_t i = 0; i < LEN; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    char *f[N];
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "tree/f%02d.bin", i);
        f[i] = path_in(dir, name);
        bool other = i % 5 == 1; /* f01, f06, f11: one last byte each */
        buf[LEN - 1] = other ? (uint8_t)i : 0;
        CHECK(cellar_write_file_atomic(f[i], buf, LEN, 0644) == 0);
    }
    cellar_dedup_opts o = CELLAR_DEDUP_OPTS_INIT;
    o.min_size = 1;
    cellar_dedup_stats st;
    const char *paths[] = {t};
    /* Stopped by the progress callback at its first call: CELLAR_EUSER,
     * and no file was replaced. */
    struct progress_seen ps = {.stop_at = 1};
    o.progress = on_progress;
    o.progress_ctx = &ps;
    CHECK_ERR(cellar_store_dedup(&st, s, 1, paths, &o), CELLAR_EUSER,
              "dedup: stopped by the caller");
    CHECK(ps.calls == 1);
    for (int i = 1; i < N; i++) {
        struct stat a, b;
        CHECK(stat(f[0], &a) == 0 && stat(f[i], &b) == 0 && a.st_ino != b.st_ino);
    }
    ps = (struct progress_seen){0};
    CHECK(cellar_store_dedup(&st, s, 1, paths, &o) == 0);
    CHECK(st.errors == 0 && st.files == N);
    /* Progress reached the end of both phases. */
    CHECK(ps.calls >= 2 && ps.files_done == ps.files_total && ps.files_total > 0);
    CHECK(ps.bytes_total == 0 || ps.bytes_done <= ps.bytes_total);
    struct stat first;
    CHECK(stat(f[0], &first) == 0);
    for (int i = 0; i < N; i++) {
        struct stat now;
        CHECK(stat(f[i], &now) == 0);
        if (i % 5 == 1) {
            CHECK(now.st_ino != first.st_ino && now.st_nlink == 1);
            char *got = NULL;
            size_t n = 0;
            CHECK(cellar_read_file(&got, &n, f[i], 1 << 20) == 0);
            CHECK(got && n == LEN && (uint8_t)got[LEN - 1] == (uint8_t)i &&
                  !memcmp(got, buf, LEN - 1));
            free(got);
        } else {
            CHECK(now.st_ino == first.st_ino);
        }
        free(f[i]);
    }
    CHECK(first.st_nlink == N - 3 + 1); /* the copies and the object */
    free(buf);
    free(t);
    cellar_store_free(s);
}

static void test_import_hf(void)
{
    const char *dir = test_tmpdir("store_hf");
    cellar_store *s = open_store(dir);
    char *src = path_in(dir, "w.bin");
    make_file(src, 150000, 40);
    char *data;
    size_t len;
    CHECK(cellar_read_file(&data, &len, src, 0) == 0);
    cellar_digests d;
    digest_of(data, len, &d);
    char hex[65];
    cellar_hex(hex, d.d[CELLAR_ALGO_SHA256], 32);
    const char *commit = "1111111111111111111111111111111111111111";
    for (int r = 0; r < 2; r++) {
        const char *repo = r ? "models--org--b" : "models--org--a";
        char *blob = cellar_sprintf("%s/hub/%s/blobs/%s", dir, repo, hex);
        char *snapdir = cellar_sprintf("%s/hub/%s/snapshots/%s/unet", dir, repo, commit);
        char *link = cellar_sprintf("%s/model.safetensors", snapdir);
        char *target = cellar_sprintf("../../../blobs/%s", hex);
        char *ref = cellar_sprintf("%s/hub/%s/refs/main", dir, repo);
        char *refdir = cellar_sprintf("%s/hub/%s/refs", dir, repo);
        char *blobdir = cellar_sprintf("%s/hub/%s/blobs", dir, repo);
        CHECK(cellar_mkdirs(snapdir, 0755) == 0 && cellar_mkdirs(refdir, 0755) == 0 &&
              cellar_mkdirs(blobdir, 0755) == 0);
        CHECK(cellar_write_file_atomic(blob, data, len, 0644) == 0);
        CHECK(symlink(target, link) == 0);
        CHECK(cellar_write_file_atomic(ref, commit, 40, 0644) == 0);
        free(blob);
        free(snapdir);
        free(link);
        free(target);
        free(ref);
        free(refdir);
        free(blobdir);
    }
    char *hub = path_in(dir, "hub");
    cellar_import_stats st;
    CHECK(cellar_store_import_hf(&st, s, hub, NULL) == 0);
    CHECK(st.repos == 2 && st.blobs == 2 && st.linked == 2 && st.errors == 0);
    CHECK(st.bytes_after < st.bytes_before);
    char *a = cellar_sprintf("%s/models--org--a/blobs/%s", hub, hex);
    char *b = cellar_sprintf("%s/models--org--b/snapshots/%s/unet/model.safetensors", hub, commit);
    struct stat sa, sb;
    CHECK(stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino == sb.st_ino);
    cellar_snapshot *snap;
    CHECK(cellar_store_find_snapshot(&snap, s, "org/b", "main") == 0);
    if (snap) {
        CHECK_STR(snap->commit, commit);
        CHECK(snap->n == 1 && !strcmp(snap->files[0].path, "unet/model.safetensors") &&
              !memcmp(snap->files[0].sha256, d.d[CELLAR_ALGO_SHA256], 32));
    }
    cellar_snapshot_free(snap);
    /* A second import changes nothing. */
    CHECK(cellar_store_import_hf(&st, s, hub, NULL) == 0);
    CHECK(st.bytes_after == st.bytes_before && st.errors == 0);
    /* Stopped by progress at its first report: CELLAR_EUSER. */
    struct progress_seen ps = {.stop_at = 1};
    cellar_import_opts io = CELLAR_IMPORT_OPTS_INIT;
    io.progress = on_progress;
    io.progress_ctx = &ps;
    CHECK_ERR(cellar_store_import_hf(&st, s, hub, &io), CELLAR_EUSER, "import-hf: stopped");
    ps = (struct progress_seen){0};
    CHECK(cellar_store_import_hf(&st, s, hub, &io) == 0);
    CHECK(ps.calls >= 1 && ps.files_done == ps.files_total && ps.files_total == st.blobs &&
          ps.bytes_done == ps.bytes_total);
    char *none = path_in(dir, "nohub");
    CHECK_ERR(cellar_store_import_hf(&st, s, none, NULL), CELLAR_ENOTFOUND, "nohub");
    /* no default picked from the environment */
    CHECK_ERR(cellar_store_import_hf(&st, s, NULL, NULL), CELLAR_EINVAL,
              "cellar_hf_cache_from_env");
    free(none);
    free(a);
    free(b);
    free(hub);
    free(data);
    free(src);
    cellar_store_free(s);
}

int main(void)
{
    /* Every store is opened at a path given; the library reads no
     * environment (a stray $CELLAR_HOME must not matter). */
    setenv("CELLAR_HOME", "/dev/null/not-a-store", 1);
    cellar_store *none = NULL;
    CHECK_ERR(cellar_store_open(&none, NULL), CELLAR_EINVAL, "cellar_store_home_from_env");
    test_add();
    test_writer();
    test_link();
    test_snapshot();
    test_verify();
    test_gc();
    test_add_disk_full();
    test_dedup();
    test_dedup_rounds();
    test_import_hf();
    return test_summary();
}
