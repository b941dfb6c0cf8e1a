/* The pickle interpreter's rules and limits on hand-made pickles (each
 * refusal named, with its offset), the globals' verdicts, and the tensor
 * rebuild on a bare pickle, under the sanitizers. The containers are
 * checked against torch itself in tests/cli_pickle.sh. */
#include "pickle.h"

#include "testutil.h"

static cellar_pt *open_bytes(const void *p, size_t n, int *rc)
{
    cellar_pt *pt = NULL;
    *rc = cellar_pt_open_buffer(&pt, p, n, "t.pkl", 0);
    return pt;
}

#define EXPECT_FAIL(bytes, code, needle)                                                           \
    do {                                                                                           \
        int rc_;                                                                                   \
        cellar_pt *pt_ = open_bytes(bytes, sizeof(bytes) - 1, &rc_);                               \
        CHECK_ERR(rc_, code, needle);                                                              \
        cellar_pt_free(pt_);                                                                       \
    } while (0)

/* A pickle of n nested empty lists: PROTO 2, n x (MARK? no) EMPTY_LIST,
 * then APPEND n-1 times, STOP. */
static void deep_stack(void)
{
    size_t n = PT_MAX_STACK + 1;
    unsigned char *p = malloc(n + 4);
    p[0] = 0x80;
    p[1] = 2;
    memset(p + 2, 0x4e, n); /* NONE */
    p[2 + n] = '.';
    int rc;
    cellar_pt *pt = open_bytes(p, n + 3, &rc);
    CHECK_ERR(rc, CELLAR_EFORMAT, "stack deeper than");
    cellar_pt_free(pt);
    free(p);
}

static void many_marks(void)
{
    size_t n = PT_MAX_MARKS + 1;
    unsigned char *p = malloc(n + 4);
    p[0] = 0x80;
    p[1] = 2;
    memset(p + 2, '(', n);
    p[2 + n] = '.';
    int rc;
    cellar_pt *pt = open_bytes(p, n + 3, &rc);
    CHECK_ERR(rc, CELLAR_EFORMAT, "open MARKs");
    cellar_pt_free(pt);
    free(p);
}

int main(void)
{
    /* Limits and malformed opcodes, each named with its offset. */
    EXPECT_FAIL("\x80\x02\x69\x2e", CELLAR_EFORMAT, "unsupported pickle opcode 0x69 at offset 2");
    EXPECT_FAIL("\x80\x09N.", CELLAR_EUNSUPPORTED, "unsupported pickle protocol 9");
    EXPECT_FAIL("\x80\x02N", CELLAR_EFORMAT, "truncated pickle: no STOP");
    EXPECT_FAIL("\x80\x02h\x00.", CELLAR_EFORMAT, "memo index 0 was never stored at offset 2");
    EXPECT_FAIL("\x80\x02Nq\x05.", CELLAR_EFORMAT, "memo index 5 past the 0 entries");
    EXPECT_FAIL("\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09.", CELLAR_EFORMAT,
                "LONG1 of 9 bytes over 8");
    EXPECT_FAIL("\x80\x02X\xff\xff\xff\x00" "abc.", CELLAR_EFORMAT, "truncated pickle");
    EXPECT_FAIL("\x80\x02X\x00\x00\x00\x02.", CELLAR_EFORMAT, "over the 16777216-byte limit");
    EXPECT_FAIL("\x80\x02.", CELLAR_EFORMAT, "stack underflow at offset 2");
    EXPECT_FAIL("\x80\x02t.", CELLAR_EFORMAT, "no MARK to pop");
    EXPECT_FAIL("\x80\x02K\x01K\x02K\x03s.", CELLAR_EFORMAT, "SETITEMS on a int");
    EXPECT_FAIL("\x80\x02]K\x01" "b.", CELLAR_EFORMAT, "BUILD on a list");
    EXPECT_FAIL("\x80\x02" "cos\nsystem", CELLAR_EFORMAT, "GLOBAL without two newline-ended lines");
    EXPECT_FAIL("\x80\x02(X\x07\x00\x00\x00storageX\x01\x00\x00\x00" "0tQ.", CELLAR_EFORMAT,
                "persistent id in a pickle without storages");
    EXPECT_FAIL("\x80\x02(X\x06\x00\x00\x00moduletQ.", CELLAR_EUNSUPPORTED, "nn.Module");
    EXPECT_FAIL("\x80\x02(\x80\x02.", CELLAR_EFORMAT, "pickle stack underflow");
    EXPECT_FAIL("not a pickle", CELLAR_EFORMAT, "not a PyTorch checkpoint");
    EXPECT_FAIL("PYTORCH1xxxxxxxx", CELLAR_EUNSUPPORTED, "TorchScript");
    EXPECT_FAIL("PK\x03\x04", CELLAR_EFORMAT, "truncated zip");
    deep_stack();
    many_marks();

    /* A dangerous call is an inert tag: reading succeeds and reports it
     * (Python 2 names mapped: commands.getoutput is subprocess's). */
    static const char evil[] = "\x80\x02}(X\x01\x00\x00\x00x"
                               "ccommands\ngetoutput\nX\x04\x00\x00\x00trueq\x00\x85R"
                               "X\x01\x00\x00\x00y"
                               "c__builtin__\neval\nh\x00\x85R"
                               "X\x01\x00\x00\x00z"
                               "cthird.party\nThing\n)R}b"
                               "u.";
    int rc;
    cellar_pt *pt = open_bytes(evil, sizeof evil - 1, &rc);
    CHECK_MSG(rc == 0, "%s", cellar_error_last());
    if (pt) {
        CHECK(cellar_pt_global_count(pt) == 3);
        CHECK(cellar_pt_dangerous_count(pt) == 2);
        const cellar_pt_global *g = cellar_pt_global_at(pt, 0);
        CHECK_STR(g->module, "subprocess");
        CHECK(g->cls == CELLAR_PT_DANGEROUS);
        CHECK_STR(cellar_pt_global_at(pt, 1)->module, "builtins");
        CHECK(cellar_pt_global_at(pt, 2)->cls == CELLAR_PT_UNKNOWN);
        CHECK(cellar_pt_count(pt) == 0);
        cellar_pt_hash h;
        CHECK(cellar_pt_structural_hash(&h, pt) == 0 && h.diffsynth[0] == 0 &&
              strstr(h.problem, "weights_only") != NULL);
    }
    cellar_pt_free(pt);

    /* Classification by the sheet's lists. */
    CHECK(cellar_pt_classify("os", "system") == CELLAR_PT_DANGEROUS);
    CHECK(cellar_pt_classify("os.path", "join") == CELLAR_PT_DANGEROUS);
    CHECK(cellar_pt_classify("osx", "thing") == CELLAR_PT_UNKNOWN);
    CHECK(cellar_pt_classify("builtins", "getattr") == CELLAR_PT_DANGEROUS);
    CHECK(cellar_pt_classify("builtins", "set") == CELLAR_PT_SAFE);
    CHECK(cellar_pt_classify("torch.serialization", "load") == CELLAR_PT_DANGEROUS);
    CHECK(cellar_pt_classify("torch._utils", "_rebuild_tensor_v2") == CELLAR_PT_SAFE);
    CHECK(cellar_pt_classify("torch", "BFloat16Storage") == CELLAR_PT_SAFE);
    CHECK(cellar_pt_classify("torch", "float8_e4m3fn") == CELLAR_PT_SAFE);
    CHECK(cellar_pt_classify("collections", "OrderedDict") == CELLAR_PT_SAFE);
    CHECK(cellar_pt_classify("numpy.core.multiarray", "_reconstruct") == CELLAR_PT_UNKNOWN);
    CHECK(cellar_pt_classify("functools", "partial") == CELLAR_PT_DANGEROUS);
    CHECK_STR(cellar_pt_class_name(CELLAR_PT_UNKNOWN), "unknown");

    /* A tensor in a bare pickle needs a storage: refused by name. */
    static const char bare[] = "\x80\x02}X\x01\x00\x00\x00" "a"
                               "ctorch._utils\n_rebuild_tensor_v2\n"
                               "(K\x00K\x00)K\x00\x89}tRs.";
    pt = open_bytes(bare, sizeof bare - 1, &rc);
    CHECK_ERR(rc, CELLAR_EFORMAT, "not a storage");
    cellar_pt_free(pt);

    /* KEEP_GOING keeps the globals read before the error. */
    static const char broken[] = "\x80\x02" "cposix\nsystem\n\x69";
    pt = NULL;
    rc = cellar_pt_open_buffer(&pt, broken, sizeof broken - 1, "b.pkl", CELLAR_PT_KEEP_GOING);
    CHECK(rc == 0 && pt && cellar_pt_problem(pt) &&
          strstr(cellar_pt_problem(pt), "opcode 0x69") != NULL);
    CHECK(pt && cellar_pt_dangerous_count(pt) == 1);
    cellar_pt_free(pt);

    /* An opcode outside the subset (INST, itself a call) must not hide the
     * globals after it: they are listed from a scan of the rest, STACK_GLOBAL
     * through memoized strings included, and in the next pickle too. */
    static const char hidden[] = "\x80\x02(i" "evil\nX\n"
                                 "cos\nsystem\n"
                                 "\x8c\x0a" "subprocess\x94\x8c\x04" "call\x94h\x00h\x01\x93."
                                 "\x80\x04\x8c\x08" "builtins\x8c\x04" "exec\x93.";
    pt = NULL;
    rc = cellar_pt_open_buffer(&pt, hidden, sizeof hidden - 1, "h.pkl", CELLAR_PT_KEEP_GOING);
    CHECK(rc == 0 && pt);
    if (pt) {
        CHECK(cellar_pt_global_count(pt) == 4);
        CHECK(cellar_pt_dangerous_count(pt) == 3);
        for (size_t i = 0; i < cellar_pt_global_count(pt); i++) {
            const cellar_pt_global *g = cellar_pt_global_at(pt, i);
            CHECK_MSG(!strcmp(g->module, "evil") || !strcmp(g->module, "os") ||
                          !strcmp(g->module, "subprocess") || !strcmp(g->module, "builtins"),
                      "%s.%s", g->module, g->name);
        }
    }
    cellar_pt_free(pt);
    cellar_pt_free(NULL);
    return test_summary();
}
