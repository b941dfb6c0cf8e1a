/* BLAKE3: the official vectors in every mode and at every output length,
 * on every kernel tier this CPU and build support; streaming in odd pieces;
 * the threaded hashers (of a buffer and of a file) against the streaming
 * one around chunk and subtree boundaries; and random inputs against the
 * b3sum command. */
#include "blake3_impl.h"
#include "testutil.h"
#include "util.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <unistd.h>

#define XOF_LEN 131

struct vector {
    size_t input_len;
    uint8_t hash[XOF_LEN], keyed_hash[XOF_LEN], derive_key[XOF_LEN];
};

static char vec_key[64];
static char vec_context[128];
static struct vector vectors[64];
static size_t num_vectors;

/* The string value of "name": "..." at or after p; NULL if absent. */
static const char *json_string(const char *p, const char *name, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": \"", name);
    const char *s = strstr(p, pat);
    if (!s) return NULL;
    s += strlen(pat);
    const char *e = strchr(s, '"');
    if (!e || (size_t)(e - s) >= cap) return NULL;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    return e + 1;
}

/* The vector file is the official one, in its fixed layout: a key, a
 * context string, then cases of input_len and three hex outputs. */
static int load_vectors(void)
{
    /* CTest sets CELLAR_SHARED; run by hand, the shared folder is beside
     * the checkout this file is in. */
    const char *shared = getenv("CELLAR_SHARED");
    char path[4096];
    if (shared && *shared)
        snprintf(path, sizeof path, "%s/vectors/blake3.json", shared);
    else {
        char here[] = __FILE__;
        snprintf(path, sizeof path, "%s/../../shared/vectors/blake3.json", dirname(here));
    }
    char *json;
    size_t len;
    int rc = cellar_read_file(&json, &len, path, 1 << 20);
    if (rc == CELLAR_ENOTFOUND) {
        /* A checkout without ../shared beside it: the official vectors
         * cannot be checked here, which is a skip, not a pass. */
        test_skip("the official BLAKE3 vectors: %s not found", path);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "%s\n", cellar_error_last());
        return -1;
    }
    const char *p = json_string(json, "key", vec_key, sizeof vec_key);
    p = p ? json_string(p, "context_string", vec_context, sizeof vec_context) : NULL;
    while (p && (p = strstr(p, "\"input_len\": ")) != NULL) {
        if (num_vectors == sizeof vectors / sizeof vectors[0]) break;
        struct vector *v = &vectors[num_vectors];
        v->input_len = strtoul(p + strlen("\"input_len\": "), NULL, 10);
        char hex[2 * XOF_LEN + 1];
        p = json_string(p, "hash", hex, sizeof hex);
        if (!p || !cellar_unhex(v->hash, hex, XOF_LEN)) break;
        p = json_string(p, "keyed_hash", hex, sizeof hex);
        if (!p || !cellar_unhex(v->keyed_hash, hex, XOF_LEN)) break;
        p = json_string(p, "derive_key", hex, sizeof hex);
        if (!p || !cellar_unhex(v->derive_key, hex, XOF_LEN)) break;
        num_vectors++;
    }
    free(json);
    return 0;
}

/* The vectors' input: byte i is i % 251. */
static uint8_t *pattern(size_t len)
{
    uint8_t *buf = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i % 251);
    return buf;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint8_t *random_bytes(size_t len)
{
    uint8_t *buf = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        buf[i] = (uint8_t)(rng_state >> 32);
    }
    return buf;
}

enum mode { HASH, KEYED, DERIVE };

static void init_mode(cellar_blake3 *h, enum mode m)
{
    if (m == HASH)
        cellar_blake3_init(h);
    else if (m == KEYED)
        cellar_blake3_init_keyed(h, (const uint8_t *)vec_key);
    else
        cellar_blake3_init_derive_key(h, vec_context);
}

static void check_output(const cellar_blake3 *h, const uint8_t want[XOF_LEN], const char *tier,
                         const char *what, size_t input_len)
{
    uint8_t got[XOF_LEN];
    cellar_blake3_finalize(h, got, XOF_LEN);
    CHECK_MSG(!memcmp(got, want, XOF_LEN), "%s %s len %zu: 131-byte output", tier, what, input_len);
    cellar_blake3_finalize(h, got, CELLAR_BLAKE3_OUT_LEN);
    CHECK_MSG(!memcmp(got, want, CELLAR_BLAKE3_OUT_LEN), "%s %s len %zu: digest", tier, what,
              input_len);
    /* Seeking anywhere in the output stream gives the same bytes, across
     * block boundaries too. */
    static const uint64_t seeks[] = {1, 31, 63, 64, 65, 100, 130};
    for (size_t i = 0; i < sizeof seeks / sizeof seeks[0]; i++) {
        uint8_t part[XOF_LEN];
        size_t n = XOF_LEN - (size_t)seeks[i];
        cellar_blake3_finalize_seek(h, seeks[i], part, n);
        CHECK_MSG(!memcmp(part, want + seeks[i], n), "%s %s len %zu: seek %llu", tier, what,
                  input_len, (unsigned long long)seeks[i]);
    }
}

static void test_vectors(const char *tier)
{
    for (size_t i = 0; i < num_vectors; i++) {
        const struct vector *v = &vectors[i];
        uint8_t *in = pattern(v->input_len);
        const uint8_t *want[] = {v->hash, v->keyed_hash, v->derive_key};
        const char *what[] = {"hash", "keyed_hash", "derive_key"};
        for (enum mode m = HASH; m <= DERIVE; m++) {
            cellar_blake3 h;
            init_mode(&h, m);
            cellar_blake3_update(&h, in, v->input_len);
            check_output(&h, want[m], tier, what[m], v->input_len);

            /* Odd-sized pieces cross block and chunk edges at every offset
             * the stream can be at. */
            static const size_t pieces[] = {1, 7, 63, 64, 65, 1023, 1024, 1025, 3, 2049};
            init_mode(&h, m);
            size_t off = 0;
            for (size_t p = 0; off < v->input_len; p++) {
                size_t n = pieces[p % (sizeof pieces / sizeof pieces[0])];
                if (n > v->input_len - off) n = v->input_len - off;
                cellar_blake3_update(&h, in + off, n);
                off += n;
            }
            check_output(&h, want[m], tier, "pieces", v->input_len);

            /* Subtrees on threads, keyed modes too, with units from one
             * chunk up. */
            for (size_t unit = BLAKE3_CHUNK_LEN; unit <= 8 * BLAKE3_CHUNK_LEN; unit *= 2) {
                init_mode(&h, m);
                blake3_update_subtrees(&h, in, v->input_len, 3, unit);
                check_output(&h, want[m], tier, "subtrees", v->input_len);
            }
        }
        free(in);
    }
}

static void streaming_digest(const uint8_t *in, size_t len, uint8_t out[CELLAR_BLAKE3_OUT_LEN])
{
    /* Fed in 1000-byte pieces, so never through whole-subtree updates:
     * an independent path to compare the wide ones with. */
    cellar_blake3 h;
    cellar_blake3_init(&h);
    for (size_t off = 0; off < len; off += 1000)
        cellar_blake3_update(&h, in + off, len - off < 1000 ? len - off : 1000);
    cellar_blake3_finalize(&h, out, CELLAR_BLAKE3_OUT_LEN);
}

static const size_t boundary_sizes[] = {
    0,
    1,
    1023,
    1024,
    1025,
    2047,
    2048,
    2049,
    16 * 1024 - 1,
    16 * 1024,
    16 * 1024 + 1,
    31744,
    65535,
    65536,
    65537,
    (1 << 20) + 1,
    5 * (1 << 20) + 12345,
};
#define NUM_SIZES (sizeof boundary_sizes / sizeof boundary_sizes[0])

static void test_parallel(const char *tier)
{
    size_t max = boundary_sizes[NUM_SIZES - 1];
    uint8_t *in = random_bytes(max);
    static const unsigned threads[] = {1, 2, 3, 8};
    for (size_t s = 0; s < NUM_SIZES; s++) {
        size_t len = boundary_sizes[s];
        uint8_t want[CELLAR_BLAKE3_OUT_LEN], got[CELLAR_BLAKE3_OUT_LEN];
        streaming_digest(in, len, want);
        cellar_blake3 h;
        cellar_blake3_init(&h);
        cellar_blake3_update(&h, in, len);
        cellar_blake3_finalize(&h, got, sizeof got);
        CHECK_MSG(!memcmp(got, want, sizeof got), "%s: one update of %zu bytes", tier, len);
        for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
            cellar_blake3_hash_parallel(in, len, threads[t], got);
            CHECK_MSG(!memcmp(got, want, sizeof got), "%s: hash_parallel %zu bytes, %u threads",
                      tier, len, threads[t]);
            /* Small units put unit edges at chunk and subtree boundaries
             * even in the small sizes. */
            cellar_blake3_init(&h);
            blake3_update_subtrees(&h, in, len, threads[t], 2 * BLAKE3_CHUNK_LEN);
            cellar_blake3_finalize(&h, got, sizeof got);
            CHECK_MSG(!memcmp(got, want, sizeof got), "%s: subtrees %zu bytes, %u threads", tier,
                      len, threads[t]);
        }
    }
    free(in);
}

/* Every tier must give the same digests as the portable code on random
 * data at every boundary size. */
static void digests_of_sizes(uint8_t out[NUM_SIZES][CELLAR_BLAKE3_OUT_LEN], const uint8_t *in)
{
    for (size_t s = 0; s < NUM_SIZES; s++) {
        cellar_blake3 h;
        cellar_blake3_init(&h);
        cellar_blake3_update(&h, in, boundary_sizes[s]);
        cellar_blake3_finalize(&h, out[s], CELLAR_BLAKE3_OUT_LEN);
    }
}

static void write_files(const char *dir, const uint8_t *in)
{
    for (size_t s = 0; s < NUM_SIZES; s++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/f%zu", dir, boundary_sizes[s]);
        CHECK(cellar_write_file_atomic(path, in, boundary_sizes[s], 0644) == 0);
    }
}

static void test_b3sum(const char *dir, const uint8_t *in)
{
    if (system("command -v b3sum >/dev/null 2>&1") != 0) {
        test_skip("the comparison with b3sum: not installed (scripts/install-deps.sh)");
        return;
    }
    uint8_t digests[NUM_SIZES][CELLAR_BLAKE3_OUT_LEN];
    digests_of_sizes(digests, in);
    for (size_t s = 0; s < NUM_SIZES; s++) {
        char cmd[4300], hex[2 * CELLAR_BLAKE3_OUT_LEN + 1];
        snprintf(cmd, sizeof cmd, "b3sum --no-names '%s/f%zu'", dir, boundary_sizes[s]);
        FILE *p = popen(cmd, "r");
        char line[128] = "";
        CHECK(p && fgets(line, sizeof line, p) != NULL);
        if (p) pclose(p);
        line[strcspn(line, "\n")] = '\0';
        cellar_hex(hex, digests[s], CELLAR_BLAKE3_OUT_LEN);
        CHECK_MSG(!strcmp(line, hex), "b3sum of %zu bytes: %s, cellar: %s", boundary_sizes[s], line,
                  hex);
    }
}

/* Files read on threads, each into its own buffer, give the streaming
 * digest; a file shorter than announced and a bad descriptor are errors. */
static void test_fd(const char *dir, const uint8_t *in)
{
    uint8_t want[NUM_SIZES][CELLAR_BLAKE3_OUT_LEN];
    digests_of_sizes(want, in);
    for (size_t s = 0; s < NUM_SIZES; s++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/f%zu", dir, boundary_sizes[s]);
        int fd = open(path, O_RDONLY);
        CHECK(fd >= 0);
        for (unsigned t = 1; t <= 3; t++) {
            cellar_blake3 h;
            cellar_blake3_init(&h);
            CHECK(blake3_update_fd(&h, fd, boundary_sizes[s], t, path, NULL, NULL) == 0);
            uint8_t got[CELLAR_BLAKE3_OUT_LEN];
            cellar_blake3_finalize(&h, got, sizeof got);
            CHECK_MSG(!memcmp(got, want[s], sizeof got), "fd: %zu bytes, %u threads",
                      boundary_sizes[s], t);
        }
        close(fd);
    }

    /* Keyed, and a hasher that has bytes already, through the same path. */
    size_t len = boundary_sizes[NUM_SIZES - 1];
    char path[4200];
    snprintf(path, sizeof path, "%s/f%zu", dir, len);
    int fd = open(path, O_RDONLY);
    cellar_blake3 a, b;
    uint8_t da[XOF_LEN], db[XOF_LEN];
    init_mode(&a, KEYED);
    CHECK(blake3_update_fd(&a, fd, len, 2, path, NULL, NULL) == 0);
    init_mode(&b, KEYED);
    cellar_blake3_update(&b, in, len);
    cellar_blake3_finalize(&a, da, XOF_LEN);
    cellar_blake3_finalize(&b, db, XOF_LEN);
    CHECK(!memcmp(da, db, XOF_LEN));
    cellar_blake3_init(&a);
    cellar_blake3_update(&a, "x", 1);
    CHECK(blake3_update_fd(&a, fd, len, 2, path, NULL, NULL) == 0);
    cellar_blake3_init(&b);
    cellar_blake3_update(&b, "x", 1);
    cellar_blake3_update(&b, in, len);
    cellar_blake3_finalize(&a, da, XOF_LEN);
    cellar_blake3_finalize(&b, db, XOF_LEN);
    CHECK(!memcmp(da, db, XOF_LEN));

    cellar_blake3_init(&a);
    CHECK_ERR(blake3_update_fd(&a, fd, len + 1, 2, path, NULL, NULL), CELLAR_ECHANGED, path);
    cellar_blake3_init(&a);
    CHECK_ERR(blake3_update_fd(&a, fd, 4 * len, 2, path, NULL, NULL), CELLAR_ECHANGED, "file ended");
    close(fd);
    cellar_blake3_init(&a);
    CHECK_ERR(blake3_update_fd(&a, -1, len, 2, "closed.bin", NULL, NULL), CELLAR_EIO,
              "closed.bin: Bad file descriptor");
}

static bool use_tier(const char *tier)
{
    CHECK(cellar_blake3_set_isa(tier) == 0);
    return !strcmp(cellar_blake3_isa(), tier);
}

/* With a tier name (CTest runs one test per tier), only that tier's
 * kernels, against the portable ones; a tier this CPU or build lacks is a
 * skip. Without, everything else on the portable tier. */
int main(int argc, char **argv)
{
    if (argc > 2) {
        fprintf(stderr, "usage: test_blake3 [portable|sse41|avx2|avx512]\n");
        return 2;
    }
    const char *only = argc == 2 ? argv[1] : NULL;
    if (only && strcmp(only, "portable") && strcmp(only, "sse41") && strcmp(only, "avx2") &&
        strcmp(only, "avx512")) {
        fprintf(stderr, "test_blake3: unknown tier '%s'\n", only);
        return 2;
    }
    int vrc = load_vectors();
    CHECK(vrc >= 0);
    if (vrc == 0) {
        CHECK_MSG(num_vectors == 35, "%zu vectors read", num_vectors);
        CHECK_STR(vec_key, "whats the Elvish word for friend");
    }

    /* The switch: portable is always there and always obeyed. */
    CHECK(use_tier("portable"));
    CHECK_STR(cellar_blake3_isa(), "portable");
    /* An unknown name is refused and changes nothing; NULL lifts the cap. */
    CHECK_ERR(cellar_blake3_set_isa("mmx"), CELLAR_EINVAL, "'mmx' unknown");
    CHECK_STR(cellar_blake3_isa(), "portable");
    CHECK(cellar_blake3_set_isa(NULL) == 0);
    const char *best = cellar_blake3_isa();
    /* The environment is read only when asked, and only by the helper. */
    setenv("CELLAR_BLAKE3_ISA", "portable", 1);
    CHECK_STR(cellar_blake3_isa(), best);
    CHECK(cellar_blake3_isa_from_env() == 0);
    CHECK_STR(cellar_blake3_isa(), "portable");
    setenv("CELLAR_BLAKE3_ISA", "mmx", 1);
    CHECK(cellar_blake3_isa_from_env() == CELLAR_EINVAL);
    CHECK_STR(cellar_blake3_isa(), best);
    unsetenv("CELLAR_BLAKE3_ISA");

    /* No bytes may come as a NULL pointer. */
    cellar_blake3 h;
    uint8_t empty[CELLAR_BLAKE3_OUT_LEN];
    cellar_blake3_init(&h);
    cellar_blake3_update(&h, NULL, 0);
    cellar_blake3_finalize(&h, empty, sizeof empty);
    CHECK(num_vectors == 0 || !memcmp(empty, vectors[0].hash, sizeof empty));
    /* BLAKE3("") is also af1349b9..., as b3sum prints for an empty file. */
    CHECK(empty[0] == 0xaf && empty[1] == 0x13 && empty[2] == 0x49 && empty[3] == 0xb9);

    size_t max = boundary_sizes[NUM_SIZES - 1];
    uint8_t *in = random_bytes(max);
    uint8_t portable[NUM_SIZES][CELLAR_BLAKE3_OUT_LEN];
    use_tier("portable");
    digests_of_sizes(portable, in);

    static const char *const tiers[] = {"portable", "sse41", "avx2", "avx512"};
    for (size_t t = 0; t < sizeof tiers / sizeof tiers[0]; t++) {
        if (strcmp(tiers[t], only ? only : "portable"))
            continue;
        if (!use_tier(tiers[t])) {
            test_skip("tier %s: not supported here (capped to %s)", tiers[t],
                      cellar_blake3_isa());
            continue;
        }
        printf("tier %s\n", tiers[t]);
        test_vectors(tiers[t]);
        test_parallel(tiers[t]);
        uint8_t got[NUM_SIZES][CELLAR_BLAKE3_OUT_LEN];
        digests_of_sizes(got, in);
        for (size_t s = 0; s < NUM_SIZES; s++)
            CHECK_MSG(!memcmp(got[s], portable[s], CELLAR_BLAKE3_OUT_LEN),
                      "%s differs from portable at %zu bytes", tiers[t], boundary_sizes[s]);
    }

    if (only) {
        free(in);
        return test_summary();
    }
    CHECK(cellar_blake3_set_isa(NULL) == 0);
    const char *dir = test_tmpdir("test_blake3");
    write_files(dir, in);
    test_b3sum(dir, in);
    test_fd(dir, in);
    free(in);
    return test_summary();
}
