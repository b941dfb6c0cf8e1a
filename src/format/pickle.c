/* PyTorch checkpoints read without running them.
 *
 * The file is mapped. A container reader finds the pickles (zip: data.pkl
 * through the central directory; legacy: five pickles in a row) and a
 * bounded interpreter runs each over PICKLE.md's opcode subset. It never
 * imports or calls: GLOBAL pushes an inert tag, REDUCE/NEWOBJ/BUILD act
 * only for the rebuild functions and containers of a fixed table, and
 * anything else becomes an opaque object that remembers its callable,
 * arguments and state (so a walk can tell whether tensors sit inside it).
 * Objects live in one array of small nodes; container slots in another
 * (linked lists of indices): a hostile file costs at most the limits in
 * pickle.h. Strings are never copied: a node points at its bytes in the
 * map. Errors name the file, the rule and the absolute byte offset. */
#include "pickle.h"

#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- objects ---- */

enum kind {
    K_NONE,
    K_BOOL,
    K_INT,
    K_FLOAT,
    K_STR,
    K_BYTES,
    K_TUPLE,
    K_LIST,
    K_DICT,
    K_SET,
    K_GLOBAL,  /* v.a: global index */
    K_STORAGE, /* v.a: storage index; v.b: element offset of a legacy view; len: view size */
    K_TENSOR,  /* v.a: tensor record index */
    K_OPAQUE,  /* v.a: callable, v.b: args (NIL if none), state; items: SETITEMS/APPENDS */
};

#define NIL UINT32_MAX

typedef struct node {
    uint8_t kind;
    uint8_t flag;      /* BOOL value */
    uint8_t has_tensor; /* walk cache: 0 unknown, 1 no, 2 yes, 3 in progress */
    uint8_t pad;
    uint32_t count;    /* items of a container */
    uint32_t head, tail; /* item list */
    uint32_t state;    /* OPAQUE: BUILD state */
    union {
        int64_t i;
        double f;
        uint64_t off; /* STR/BYTES: file offset (length in len) */
        struct {
            uint32_t a, b;
        } p;
    } v;
    uint64_t len; /* STR/BYTES length; STORAGE view size */
} node;

typedef struct item {
    uint32_t val, next;
} item;

/* A storage or dtype type: torch names and safetensors dtype. */
typedef struct ptype {
    const char *storage; /* "FloatStorage", or NULL for dtype-only entries */
    const char *torch;   /* "float32" */
    int st;              /* cellar_dtype, or -1 */
    unsigned es;
    bool quantized;
} ptype;

static const ptype types[] = {
    {"DoubleStorage", "float64", CELLAR_DTYPE_F64, 8, false},
    {"FloatStorage", "float32", CELLAR_DTYPE_F32, 4, false},
    {"HalfStorage", "float16", CELLAR_DTYPE_F16, 2, false},
    {"BFloat16Storage", "bfloat16", CELLAR_DTYPE_BF16, 2, false},
    {"LongStorage", "int64", CELLAR_DTYPE_I64, 8, false},
    {"IntStorage", "int32", CELLAR_DTYPE_I32, 4, false},
    {"ShortStorage", "int16", CELLAR_DTYPE_I16, 2, false},
    {"CharStorage", "int8", CELLAR_DTYPE_I8, 1, false},
    {"ByteStorage", "uint8", CELLAR_DTYPE_U8, 1, false},
    {"BoolStorage", "bool", CELLAR_DTYPE_BOOL, 1, false},
    {"ComplexFloatStorage", "complex64", CELLAR_DTYPE_C64, 8, false},
    {"ComplexDoubleStorage", "complex128", -1, 16, false},
    {"ComplexHalfStorage", "complex32", -1, 4, false},
    {"QInt8Storage", "qint8", -1, 1, true},
    {"QUInt8Storage", "quint8", -1, 1, true},
    {"QInt32Storage", "qint32", -1, 4, true},
    {"QUInt4x2Storage", "quint4x2", -1, 1, true},
    {"QUInt2x4Storage", "quint2x4", -1, 1, true},
    {"UntypedStorage", "uint8", CELLAR_DTYPE_U8, 1, false},
    {NULL, "float8_e5m2", CELLAR_DTYPE_F8_E5M2, 1, false},
    {NULL, "float8_e4m3fn", CELLAR_DTYPE_F8_E4M3, 1, false},
    {NULL, "float8_e5m2fnuz", CELLAR_DTYPE_F8_E5M2FNUZ, 1, false},
    {NULL, "float8_e4m3fnuz", CELLAR_DTYPE_F8_E4M3FNUZ, 1, false},
    {NULL, "uint16", CELLAR_DTYPE_U16, 2, false},
    {NULL, "uint32", CELLAR_DTYPE_U32, 4, false},
    {NULL, "uint64", CELLAR_DTYPE_U64, 8, false},
};
#define NTYPES (sizeof types / sizeof types[0])
#define TYPE_UNTYPED 18

/* What a known global does when called. */
enum gkind {
    G_OTHER,           /* unknown: calls make opaque objects */
    G_SAFE,            /* allowlisted but not rebuilt (device, set...): opaque, safe */
    G_REBUILD_V2,
    G_REBUILD_V3,
    G_REBUILD,
    G_REBUILD_PARAM,
    G_REBUILD_PARAM_STATE,
    G_REBUILD_FROM_TYPE,
    G_REBUILD_REFUSED, /* other torch._utils._rebuild_*: qtensor, sparse... */
    G_ORDERED_DICT,
    G_SIZE,
    G_PARAMETER,
    G_TENSOR_CLS,
    G_ENCODE,
    G_STORAGE_TYPE,    /* tdx: the type */
    G_DTYPE,           /* tdx: the type */
};

typedef struct gdef {
    char *module, *name;
    uint8_t kind;
    int8_t tdx;
    bool wo113; /* in torch 1.13's weights_only allowlist */
} gdef;

typedef struct storage_rec {
    cellar_pt_storage pub;
    uint32_t key_node; /* its key string */
    int tdx;
    uint64_t avail; /* bytes present in the file for it */
    bool located;
} storage_rec;

typedef struct tensor_rec {
    uint32_t storage;
    int tdx;
    uint64_t offset; /* elements, legacy view offset included */
    uint64_t view_end; /* legacy view: element bound; UINT64_MAX otherwise */
    uint32_t rank;
    size_t dims; /* index into pt->dims: shape, then stride */
    uint64_t at; /* file offset of the REDUCE */
} tensor_rec;

typedef struct view_rec {
    uint32_t key;     /* string node */
    uint32_t storage; /* the root */
    uint32_t offset;  /* elements */
    uint64_t size;
} view_rec;

typedef struct blocked_rec {
    size_t path; /* offset in names */
    uint32_t global;
} blocked_rec;

typedef struct zentry {
    const char *name;
    size_t name_len;
    uint64_t off, size;
} zentry;

struct cellar_pt {
    char *label;
    void *map;
    size_t map_len;
    const uint8_t *d;
    size_t len;
    int fd;
    const char *format;
    unsigned protocol;
    unsigned cur_proto; /* of the pickle being run */
    size_t scan_from, scan_lim; /* the opcode being run, the pickle's end */
    bool in_pickle;     /* an error now comes from the interpreter */
    char *problem;

    node *nodes;
    size_t nnodes, ncap;
    item *items;
    size_t nitems, icap;
    uint32_t *stack;
    size_t nstack, scap;
    size_t *marks;
    size_t nmarks, mcap;
    uint32_t *memo;
    size_t nmemo, memocap;

    gdef *g;
    cellar_pt_global *gpub;
    size_t ng, gcap;
    uint32_t *ghash;
    size_t ghcap;

    storage_rec *st;
    size_t nst, stcap;
    uint32_t *sth; /* storage index by key */
    size_t sthcap;
    view_rec *views; /* legacy storage views by key */
    size_t nviews, vcap;
    tensor_rec *tr;
    size_t ntr, trcap;
    uint64_t *dims;
    size_t ndims, dcap;

    zentry *z;
    size_t nz;
    const char *root;
    size_t root_len;

    cellar_pt_tensor *t;
    size_t nt;
    uint64_t *tdims;
    char *names;
    size_t names_len;
    blocked_rec *bl;
    size_t nbl, blcap;
    size_t ndup; /* names given twice (the last value kept) */
    const char **bl_paths;

    char wo_problem[200]; /* first thing torch 1.13's weights_only refuses */
    cellar_pt_hash hash;
    uint32_t top;
    uint64_t walk_budget;
};

/* ---- errors ---- */

static int fail_at(const cellar_pt *pt, int code, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(const cellar_pt *pt, int code, uint64_t off, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cellar_fail(code, "%s: %s at offset %llu", pt->label, msg, (unsigned long long)off);
}

static void wo_refuse(cellar_pt *pt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wo_refuse(cellar_pt *pt, const char *fmt, ...)
{
    if (pt->wo_problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pt->wo_problem, sizeof pt->wo_problem, fmt, ap);
    va_end(ap);
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* ---- nodes ---- */

static int new_node(cellar_pt *pt, uint32_t *out, enum kind k, uint64_t at)
{
    if (pt->nnodes >= PT_MAX_NODES)
        return fail_at(pt, CELLAR_EFORMAT, at, "more than %u objects", PT_MAX_NODES);
    int rc = cellar_grow(&pt->nodes, &pt->ncap, pt->nnodes, sizeof *pt->nodes, 4096);
    if (rc)
        return rc;
    node *n = &pt->nodes[pt->nnodes];
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)k;
    n->head = n->tail = n->state = NIL;
    n->v.p.a = n->v.p.b = NIL;
    *out = (uint32_t)pt->nnodes++;
    return 0;
}

static int add_item(cellar_pt *pt, uint32_t container, uint32_t val, uint64_t at)
{
    if (pt->nitems >= PT_MAX_ITEMS)
        return fail_at(pt, CELLAR_EFORMAT, at, "more than %u container slots", PT_MAX_ITEMS);
    int rc = cellar_grow(&pt->items, &pt->icap, pt->nitems, sizeof *pt->items, 1024);
    if (rc)
        return rc;
    uint32_t i = (uint32_t)pt->nitems++;
    pt->items[i] = (item){val, NIL};
    node *c = &pt->nodes[container];
    if (c->tail == NIL)
        c->head = i;
    else
        pt->items[c->tail].next = i;
    c->tail = i;
    c->count++;
    return 0;
}

/* The i-th item of a container (linear; used on short tuples only). */
static uint32_t nth(const cellar_pt *pt, uint32_t c, uint32_t i)
{
    uint32_t it = pt->nodes[c].head;
    while (i-- && it != NIL)
        it = pt->items[it].next;
    return it == NIL ? NIL : pt->items[it].val;
}

static const char *kind_name(uint8_t k)
{
    static const char *const names[] = {"None",  "bool", "int",    "float",   "str",
                                        "bytes", "tuple", "list",  "dict",    "set",
                                        "global", "storage", "tensor", "object"};
    return k < sizeof names / sizeof *names ? names[k] : "?";
}

static bool str_is(const cellar_pt *pt, uint32_t n, const char *s)
{
    const node *x = &pt->nodes[n];
    size_t l = strlen(s);
    return (x->kind == K_STR || x->kind == K_BYTES) && x->len == l &&
           memcmp(pt->d + x->v.off, s, l) == 0;
}

/* ---- globals ---- */

static const char *const dangerous_modules[] = {
    "os",  "posix", "nt",  "sys", "subprocess", "shutil",  "socket", "runpy",
    "pty", "pdb",   "pickle", "pip", "webbrowser", "ctypes", NULL};
static const char *const dangerous_builtins[] = {"eval",    "exec",  "compile",    "open",
                                                 "getattr", "apply", "breakpoint", "__import__",
                                                 "execfile", NULL};

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return true;
    return false;
}

static int type_by_storage(const char *name)
{
    for (size_t i = 0; i < NTYPES; i++)
        if (types[i].storage && !strcmp(types[i].storage, name))
            return (int)i;
    return -1;
}

static int type_by_torch(const char *name)
{
    for (size_t i = 0; i < NTYPES; i++)
        if (i != TYPE_UNTYPED && !strcmp(types[i].torch, name))
            return (int)i;
    return -1;
}

/* Kind, type and torch 1.13 allowlisting of a (module, name). */
static enum gkind known_global(const char *m, const char *n, int *tdx, bool *wo113)
{
    *tdx = -1;
    *wo113 = false;
    if (!strcmp(m, "torch._utils")) {
        static const char *const wo[] = {"_rebuild_parameter", "_rebuild_tensor",
                                         "_rebuild_tensor_v2", "_rebuild_sparse_tensor",
                                         "_rebuild_meta_tensor_no_storage",
                                         "_rebuild_sparse_csr_tensor", NULL};
        *wo113 = in_list(n, wo);
        if (!strcmp(n, "_rebuild_tensor_v2"))
            return G_REBUILD_V2;
        if (!strcmp(n, "_rebuild_tensor_v3"))
            return G_REBUILD_V3;
        if (!strcmp(n, "_rebuild_tensor"))
            return G_REBUILD;
        if (!strcmp(n, "_rebuild_parameter"))
            return G_REBUILD_PARAM;
        if (!strcmp(n, "_rebuild_parameter_with_state"))
            return G_REBUILD_PARAM_STATE;
        if (!strncmp(n, "_rebuild_", 9))
            return G_REBUILD_REFUSED;
        return G_OTHER;
    }
    if (!strcmp(m, "torch._tensor") && !strcmp(n, "_rebuild_from_type_v2"))
        return G_REBUILD_FROM_TYPE;
    if (!strcmp(m, "collections") && !strcmp(n, "OrderedDict")) {
        *wo113 = true;
        return G_ORDERED_DICT;
    }
    if (!strcmp(m, "collections") && !strcmp(n, "Counter"))
        return G_SAFE;
    if (!strcmp(m, "torch.nn.parameter") && !strcmp(n, "Parameter")) {
        *wo113 = true;
        return G_PARAMETER;
    }
    if (!strcmp(m, "_codecs") && !strcmp(n, "encode"))
        return G_ENCODE;
    if (!strcmp(m, "builtins") &&
        (!strcmp(n, "bytearray") || !strcmp(n, "set") || !strcmp(n, "complex")))
        return G_SAFE;
    if (!strcmp(m, "torch.serialization") && !strcmp(n, "_get_layout")) {
        *wo113 = true;
        return G_SAFE;
    }
    if (!strcmp(m, "torch") || !strcmp(m, "torch.cuda")) {
        if (!strcmp(m, "torch") && !strcmp(n, "Size")) {
            *wo113 = true;
            return G_SIZE;
        }
        if (!strcmp(m, "torch") && !strcmp(n, "Tensor")) {
            *wo113 = true;
            return G_TENSOR_CLS;
        }
        if (!strcmp(m, "torch") && !strcmp(n, "device"))
            return G_SAFE;
        int t = type_by_storage(n);
        if (t >= 0) {
            *tdx = t;
            *wo113 = true;
            return G_STORAGE_TYPE;
        }
        size_t nl = strlen(n);
        if (nl > 6 && !strcmp(n + nl - 6, "Tensor")) { /* torch.FloatTensor... */
            *wo113 = true;
            return G_SAFE;
        }
        if (!strcmp(m, "torch") && (t = type_by_torch(n)) >= 0) {
            static const char *const wo[] = {"complex32", "complex64", "complex128", "float16",
                                             "float32",   "float64",   "int8",       "int16",
                                             "int32",     "int64",     NULL};
            *tdx = t;
            *wo113 = in_list(n, wo);
            return G_DTYPE;
        }
        if (!strcmp(m, "torch") && (!strcmp(n, "bfloat16") || !strcmp(n, "bool") ||
                                    !strcmp(n, "uint8")))
            return G_DTYPE;
    }
    return G_OTHER;
}

cellar_pt_class cellar_pt_classify(const char *m, const char *n)
{
    for (const char *const *d = dangerous_modules; *d; d++) {
        size_t l = strlen(*d);
        if (!strncmp(m, *d, l) && (m[l] == 0 || m[l] == '.'))
            return CELLAR_PT_DANGEROUS;
    }
    if ((!strcmp(m, "builtins") || !strcmp(m, "__builtin__")) && in_list(n, dangerous_builtins))
        return CELLAR_PT_DANGEROUS;
    if ((!strcmp(m, "operator") && (!strcmp(n, "attrgetter") || !strcmp(n, "methodcaller"))) ||
        (!strcmp(m, "functools") && !strcmp(n, "partial")) ||
        (!strcmp(m, "types") && !strcmp(n, "CodeType")) ||
        (!strcmp(m, "torch.serialization") && !strcmp(n, "load")))
        return CELLAR_PT_DANGEROUS;
    int tdx;
    bool wo;
    enum gkind k = known_global(m, n, &tdx, &wo);
    if (k == G_DTYPE && tdx < 0)
        return CELLAR_PT_SAFE;
    return k == G_OTHER ? CELLAR_PT_UNKNOWN : CELLAR_PT_SAFE;
}

const char *cellar_pt_class_name(cellar_pt_class c)
{
    switch (c) {
    case CELLAR_PT_SAFE: return "safe";
    case CELLAR_PT_UNKNOWN: return "unknown";
    case CELLAR_PT_DANGEROUS: return "dangerous";
    }
    return "?";
}

static uint64_t fnv(const char *a, size_t al, const char *b, size_t bl)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < al; i++)
        h = (h ^ (uint8_t)a[i]) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (size_t i = 0; i < bl; i++)
        h = (h ^ (uint8_t)b[i]) * 1099511628211ull;
    /* FNV's low bits are poor for short keys differing in one digit: mix
     * (murmur3's finaliser) before masking. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* Python 3's unpickler maps Python 2 names in pickles of protocol < 3
 * (fix_imports, CPython's Lib/_compat_pickle.py): the report must name what
 * torch.load would import, or `commands.call` would hide subprocess.call. */
static const char *const import_mapping[][2] = {
    {"__builtin__", "builtins"}, {"copy_reg", "copyreg"}, {"Queue", "queue"},
    {"SocketServer", "socketserver"}, {"ConfigParser", "configparser"}, {"repr", "reprlib"},
    {"tkFileDialog", "tkinter.filedialog"}, {"tkSimpleDialog", "tkinter.simpledialog"},
    {"tkColorChooser", "tkinter.colorchooser"}, {"tkCommonDialog", "tkinter.commondialog"},
    {"Dialog", "tkinter.dialog"}, {"Tkdnd", "tkinter.dnd"}, {"tkFont", "tkinter.font"},
    {"tkMessageBox", "tkinter.messagebox"}, {"ScrolledText", "tkinter.scrolledtext"},
    {"Tkconstants", "tkinter.constants"}, {"Tix", "tkinter.tix"}, {"ttk", "tkinter.ttk"},
    {"Tkinter", "tkinter"}, {"markupbase", "_markupbase"}, {"_winreg", "winreg"},
    {"thread", "_thread"}, {"dummy_thread", "_dummy_thread"}, {"dbhash", "dbm.bsd"},
    {"dumbdbm", "dbm.dumb"}, {"dbm", "dbm.ndbm"}, {"gdbm", "dbm.gnu"},
    {"xmlrpclib", "xmlrpc.client"}, {"SimpleXMLRPCServer", "xmlrpc.server"},
    {"httplib", "http.client"}, {"htmlentitydefs", "html.entities"},
    {"HTMLParser", "html.parser"}, {"Cookie", "http.cookies"}, {"cookielib", "http.cookiejar"},
    {"BaseHTTPServer", "http.server"}, {"test.test_support", "test.support"},
    {"commands", "subprocess"}, {"urlparse", "urllib.parse"},
    {"robotparser", "urllib.robotparser"}, {"urllib2", "urllib.request"}, {"anydbm", "dbm"},
    {"_abcoll", "collections.abc"}, {"cPickle", "pickle"},
    {"_elementtree", "xml.etree.ElementTree"}, {"FileDialog", "tkinter.filedialog"},
    {"SimpleDialog", "tkinter.simpledialog"}, {"DocXMLRPCServer", "xmlrpc.server"},
    {"SimpleHTTPServer", "http.server"}, {"CGIHTTPServer", "http.server"},
    {"UserDict", "collections"}, {"UserList", "collections"}, {"UserString", "collections"},
    {"whichdb", "dbm"}, {"StringIO", "io"}, {"cStringIO", "io"},
};

/* NAME_MAPPING entries that change more than the module (the rest of
 * 'exceptions' maps to builtins by name). */
static const char *const name_mapping[][4] = {
    {"__builtin__", "xrange", "builtins", "range"},
    {"__builtin__", "reduce", "functools", "reduce"},
    {"__builtin__", "intern", "sys", "intern"},
    {"__builtin__", "unichr", "builtins", "chr"},
    {"__builtin__", "unicode", "builtins", "str"},
    {"__builtin__", "long", "builtins", "int"},
    {"__builtin__", "basestring", "builtins", "str"},
    {"itertools", "izip", "builtins", "zip"},
    {"itertools", "imap", "builtins", "map"},
    {"itertools", "ifilter", "builtins", "filter"},
    {"itertools", "ifilterfalse", "itertools", "filterfalse"},
    {"itertools", "izip_longest", "itertools", "zip_longest"},
    {"UserDict", "IterableUserDict", "collections", "UserDict"},
    {"whichdb", "whichdb", "dbm", "whichdb"},
    {"_socket", "fromfd", "socket", "fromfd"},
    {"_multiprocessing", "Connection", "multiprocessing.connection", "Connection"},
    {"multiprocessing.process", "Process", "multiprocessing.context", "Process"},
    {"multiprocessing.forking", "Popen", "multiprocessing.popen_fork", "Popen"},
    {"urllib", "ContentTooShortError", "urllib.error", "ContentTooShortError"},
    {"urllib", "getproxies", "urllib.request", "getproxies"},
    {"urllib", "pathname2url", "urllib.request", "pathname2url"},
    {"urllib", "quote_plus", "urllib.parse", "quote_plus"},
    {"urllib", "quote", "urllib.parse", "quote"},
    {"urllib", "unquote_plus", "urllib.parse", "unquote_plus"},
    {"urllib", "unquote", "urllib.parse", "unquote"},
    {"urllib", "url2pathname", "urllib.request", "url2pathname"},
    {"urllib", "urlcleanup", "urllib.request", "urlcleanup"},
    {"urllib", "urlencode", "urllib.parse", "urlencode"},
    {"urllib", "urlopen", "urllib.request", "urlopen"},
    {"urllib", "urlretrieve", "urllib.request", "urlretrieve"},
    {"urllib2", "HTTPError", "urllib.error", "HTTPError"},
    {"urllib2", "URLError", "urllib.error", "URLError"},
    {"multiprocessing", "AuthenticationError", "multiprocessing.context", "AuthenticationError"},
    {"multiprocessing", "BufferTooShort", "multiprocessing.context", "BufferTooShort"},
    {"multiprocessing", "ProcessError", "multiprocessing.context", "ProcessError"},
    {"multiprocessing", "TimeoutError", "multiprocessing.context", "TimeoutError"},
    {"exceptions", "StandardError", "builtins", "Exception"},
    {"socket", "_socketobject", "socket", "SocketType"},
};

static bool eq(const char *s, size_t l, const char *z)
{
    return strlen(z) == l && !memcmp(s, z, l);
}

static void py2_names(const char **m, size_t *ml, const char **n, size_t *nl)
{
    for (size_t i = 0; i < sizeof name_mapping / sizeof *name_mapping; i++)
        if (eq(*m, *ml, name_mapping[i][0]) && eq(*n, *nl, name_mapping[i][1])) {
            *m = name_mapping[i][2];
            *ml = strlen(*m);
            *n = name_mapping[i][3];
            *nl = strlen(*n);
            return;
        }
    if (eq(*m, *ml, "exceptions")) {
        *m = "builtins";
        *ml = 8;
        return;
    }
    for (size_t i = 0; i < sizeof import_mapping / sizeof *import_mapping; i++)
        if (eq(*m, *ml, import_mapping[i][0])) {
            *m = import_mapping[i][1];
            *ml = strlen(*m);
            return;
        }
}

/* The global node for (module, name), py2 names mapped; dedupes the report. */
/* Records one naming of (module, name) in the report; *gi gets its index. */
static int record_global(cellar_pt *pt, uint32_t *gi_out, const char *m, size_t ml,
                         const char *n, size_t nl, uint64_t at)
{
    if (pt->cur_proto < 3)
        py2_names(&m, &ml, &n, &nl);
    if (memchr(m, 0, ml) || memchr(n, 0, nl))
        return fail_at(pt, CELLAR_EFORMAT, at, "global name holds a NUL byte");
    if (pt->ghcap == 0 || pt->ng * 2 >= pt->ghcap) {
        size_t cap = pt->ghcap ? pt->ghcap * 2 : 256;
        uint32_t *h = cellar_malloc(cap * sizeof *h);
        if (!h)
            return CELLAR_ENOMEM;
        memset(h, 0xff, cap * sizeof *h);
        for (size_t i = 0; i < pt->ng; i++) {
            uint64_t x = fnv(pt->g[i].module, strlen(pt->g[i].module), pt->g[i].name,
                             strlen(pt->g[i].name));
            size_t s = (size_t)(x & (cap - 1));
            while (h[s] != NIL)
                s = (s + 1) & (cap - 1);
            h[s] = (uint32_t)i;
        }
        free(pt->ghash);
        pt->ghash = h;
        pt->ghcap = cap;
    }
    size_t s = (size_t)(fnv(m, ml, n, nl) & (pt->ghcap - 1));
    uint32_t gi = NIL;
    for (; pt->ghash[s] != NIL; s = (s + 1) & (pt->ghcap - 1)) {
        const gdef *g = &pt->g[pt->ghash[s]];
        if (strlen(g->module) == ml && !memcmp(g->module, m, ml) && strlen(g->name) == nl &&
            !memcmp(g->name, n, nl)) {
            gi = pt->ghash[s];
            break;
        }
    }
    if (gi == NIL) {
        if (pt->ng >= PT_MAX_GLOBALS)
            return fail_at(pt, CELLAR_EFORMAT, at, "more than %u distinct globals",
                           PT_MAX_GLOBALS);
        size_t gcap = pt->gcap;
        int rc = cellar_grow(&pt->g, &pt->gcap, pt->ng, sizeof *pt->g, 16);
        if (rc == 0 && pt->gcap != gcap) {
            cellar_pt_global *gp = cellar_realloc(pt->gpub, pt->gcap * sizeof *gp);
            if (!gp)
                rc = CELLAR_ENOMEM;
            else
                pt->gpub = gp;
        }
        if (rc)
            return rc;
        gdef *g = &pt->g[pt->ng];
        memset(g, 0, sizeof *g);
        g->module = cellar_strndup(m, ml);
        g->name = cellar_strndup(n, nl);
        if (!g->module || !g->name) {
            free(g->module);
            free(g->name);
            return CELLAR_ENOMEM;
        }
        int tdx;
        bool wo;
        g->kind = (uint8_t)known_global(g->module, g->name, &tdx, &wo);
        g->tdx = (int8_t)tdx;
        g->wo113 = wo;
        gi = (uint32_t)pt->ng++;
        pt->ghash[s] = gi;
        pt->gpub[gi] = (cellar_pt_global){g->module, g->name,
                                          cellar_pt_classify(g->module, g->name), 0, at};
    }
    pt->gpub[gi].count++;
    if (!pt->g[gi].wo113)
        wo_refuse(pt, "torch 1.13's weights_only refuses global %s.%s", pt->g[gi].module,
                  pt->g[gi].name);
    *gi_out = gi;
    return 0;
}

/* The global node for (module, name), recorded in the report. */
static int make_global(cellar_pt *pt, uint32_t *out, const char *m, size_t ml, const char *n,
                       size_t nl, uint64_t at)
{
    uint32_t gi;
    int rc = record_global(pt, &gi, m, ml, n, nl, at);
    if (rc == 0 && (rc = new_node(pt, out, K_GLOBAL, at)) == 0)
        pt->nodes[*out].v.p.a = gi;
    return rc;
}

/* ---- after an error: the names the rest of the pickle would import ----
 *
 * When the interpreter stops (an opcode outside the subset, a limit), a
 * scan must still list every global the file names, as picklescan does with
 * pickletools.genops: the opcodes are decoded by their argument formats
 * only, GLOBAL and INST name their global, and STACK_GLOBAL the last two
 * strings pushed (directly or through the memo). Several pickles in a row
 * are followed. */

/* Argument format of an opcode: 0 none, 1/2/4/8 fixed bytes, -1/-4/-8 a
 * length of that many bytes then data, 'L' one text line, 'G' two lines;
 * 'x' unknown. */
static int op_arg(uint8_t op)
{
    switch (op) {
    case 0x80: case 0x4b: case 0x68: case 0x71: case 0x82: return 1;
    case 0x4d: case 0x83: return 2;
    case 0x4a: case 0x6a: case 0x72: case 0x84: return 4;
    case 0x47: case 0x95: return 8;
    case 0x55: case 0x8c: case 0x43: case 0x8a: return -1;
    case 0x54: case 0x58: case 0x42: case 0x8b: return -4;
    case 0x8d: case 0x8e: case 0x96: return -8;
    case 0x49: case 0x4c: case 0x46: case 0x53: case 0x56: case 0x67: case 0x70: case 0x50:
        return 'L';
    case 0x63: case 0x69: return 'G';
    case 0x28: case 0x2e: case 0x30: case 0x31: case 0x32: case 0x4e: case 0x88: case 0x89:
    case 0x61: case 0x65: case 0x62: case 0x64: case 0x7d: case 0x5d: case 0x29: case 0x6c:
    case 0x6f: case 0x52: case 0x73: case 0x75: case 0x74: case 0x85: case 0x86: case 0x87:
    case 0x51: case 0x81: case 0x92: case 0x93: case 0x94: case 0x8f: case 0x90: case 0x91:
    case 0x97: case 0x98:
        return 0;
    default:
        return 'x';
    }
}

static void scan_globals(cellar_pt *pt, size_t p, size_t lim)
{
    const uint8_t *d = pt->d;
    /* The last two strings pushed, and strings put in the memo (by index,
     * a small window: enough for STACK_GLOBAL's usual BINGETs). */
    size_t s_off[2] = {0, 0}, s_len[2] = {0, 0};
    enum { MEMO = 256 };
    size_t m_off[MEMO], m_len[MEMO];
    bool m_has[MEMO] = {false};
    size_t nmemo = 0;
    bool last_str = false;
    while (p < lim) {
        uint8_t op = d[p];
        size_t at = p++;
        int arg = op_arg(op);
        size_t a_off = p, a_len = 0;
        bool is_str = false;
        if (arg == 'x')
            return;
        if (arg == 'L' || arg == 'G') {
            const uint8_t *nl = memchr(d + p, '\n', lim - p);
            if (!nl)
                return;
            const uint8_t *nl2 = nl;
            if (arg == 'G') {
                nl2 = memchr(nl + 1, '\n', lim - (size_t)(nl + 1 - d));
                if (!nl2)
                    return;
                uint32_t gi;
                if (record_global(pt, &gi, (const char *)d + p, (size_t)(nl - (d + p)),
                                  (const char *)nl + 1, (size_t)(nl2 - nl - 1), at))
                    cellar_error_clear();
            }
            is_str = op == 0x53 || op == 0x56;
            a_len = (size_t)(nl - (d + p));
            p = (size_t)(nl2 - d) + 1;
        } else if (arg > 0) {
            if (lim - p < (size_t)arg)
                return;
            p += (size_t)arg;
        } else if (arg < 0) {
            size_t w = (size_t)-arg;
            if (lim - p < w)
                return;
            uint64_t len = w == 1 ? d[p] : w == 4 ? rd32(d + p) : rd64(d + p);
            if (len > lim - p - w)
                return;
            a_off = p + w;
            a_len = (size_t)len;
            is_str = op == 0x55 || op == 0x8c || op == 0x54 || op == 0x58 || op == 0x8d;
            p += w + (size_t)len;
        }
        if (op == 0x68 || op == 0x6a) { /* a memoized string pushed again */
            size_t i = op == 0x68 ? d[at + 1] : rd32(d + at + 1);
            if (i < MEMO && m_has[i]) {
                is_str = true;
                a_off = m_off[i];
                a_len = m_len[i];
            }
        }
        if ((op == 0x71 || op == 0x72 || op == 0x94) && last_str) {
            size_t i = op == 0x71 ? d[at + 1] : op == 0x72 ? rd32(d + at + 1) : nmemo;
            if (i < MEMO) {
                m_has[i] = true;
                m_off[i] = s_off[1];
                m_len[i] = s_len[1];
            }
        }
        if (op == 0x94)
            nmemo++;
        if (op == 0x80)
            pt->cur_proto = d[at + 1];
        if (is_str) {
            s_off[0] = s_off[1];
            s_len[0] = s_len[1];
            s_off[1] = a_off;
            s_len[1] = a_len;
        }
        if (op == 0x93 && s_len[0] + s_len[1]) {
            uint32_t gi;
            if (record_global(pt, &gi, (const char *)d + s_off[0], s_len[0],
                              (const char *)d + s_off[1], s_len[1], at))
                cellar_error_clear();
        }
        /* A memo put keeps the string status of what it stores. */
        if (op != 0x71 && op != 0x72 && op != 0x94 && op != 0x95)
            last_str = is_str;
        if (op == 0x2e && !(p < lim && d[p] == 0x80))
            return;
    }
}

/* ---- the interpreter ---- */

static int push(cellar_pt *pt, uint32_t n, uint64_t at)
{
    if (pt->nstack >= PT_MAX_STACK)
        return fail_at(pt, CELLAR_EFORMAT, at, "stack deeper than %u", PT_MAX_STACK);
    int rc = cellar_grow(&pt->stack, &pt->scap, pt->nstack, sizeof *pt->stack, 256);
    if (rc)
        return rc;
    pt->stack[pt->nstack++] = n;
    return 0;
}

/* Entries above the innermost mark (or the bottom). */
static size_t stack_floor(const cellar_pt *pt)
{
    return pt->nmarks ? pt->marks[pt->nmarks - 1] : 0;
}

static int pop(cellar_pt *pt, uint32_t *out, uint64_t at)
{
    if (pt->nstack <= stack_floor(pt))
        return fail_at(pt, CELLAR_EFORMAT, at, "pickle stack underflow");
    *out = pt->stack[--pt->nstack];
    return 0;
}

static int top(cellar_pt *pt, uint32_t **out, uint64_t at)
{
    if (pt->nstack <= stack_floor(pt))
        return fail_at(pt, CELLAR_EFORMAT, at, "pickle stack underflow");
    *out = &pt->stack[pt->nstack - 1];
    return 0;
}

/* Pops the mark: *base is where the items above it start. */
static int pop_mark(cellar_pt *pt, size_t *base, uint64_t at)
{
    if (!pt->nmarks)
        return fail_at(pt, CELLAR_EFORMAT, at, "no MARK to pop");
    *base = pt->marks[--pt->nmarks];
    return 0;
}

static int int_of(const cellar_pt *pt, uint32_t n, int64_t *out)
{
    const node *x = &pt->nodes[n];
    if (x->kind == K_INT || x->kind == K_BOOL) {
        *out = x->kind == K_INT ? x->v.i : x->flag;
        return 0;
    }
    return -1;
}

/* A tuple of n non-negative ints into dims (rank checked). */
static int int_tuple(cellar_pt *pt, uint32_t tup, uint64_t *dims, uint32_t *rank, uint64_t at,
                     const char *what)
{
    const node *x = &pt->nodes[tup];
    if (x->kind != K_TUPLE && x->kind != K_LIST)
        return fail_at(pt, CELLAR_EFORMAT, at, "tensor %s is a %s, not a tuple of ints", what,
                       kind_name(x->kind));
    if (x->count > PT_MAX_RANK)
        return fail_at(pt, CELLAR_EFORMAT, at, "tensor rank %u over %u", x->count, PT_MAX_RANK);
    uint32_t k = 0;
    for (uint32_t it = x->head; it != NIL; it = pt->items[it].next) {
        int64_t v;
        if (int_of(pt, pt->items[it].val, &v) || v < 0)
            return fail_at(pt, CELLAR_EFORMAT, at, "tensor %s holds a negative or non-int value",
                           what);
        dims[k++] = (uint64_t)v;
    }
    *rank = k;
    return 0;
}

static bool empty_mapping(const cellar_pt *pt, uint32_t n)
{
    const node *x = &pt->nodes[n];
    return x->kind == K_NONE || ((x->kind == K_DICT || x->kind == K_TUPLE) && x->count == 0);
}

/* _rebuild_tensor[_v2|_v3](storage, offset, size, stride[, rg, hooks[, dtype]][, metadata]) */
static int rebuild_tensor(cellar_pt *pt, uint32_t *out, enum gkind k, uint32_t args, uint64_t at)
{
    const node *a = &pt->nodes[args];
    uint32_t need = k == G_REBUILD ? 4 : k == G_REBUILD_V2 ? 6 : 7;
    if (a->kind != K_TUPLE || a->count < need || a->count > need + 1)
        return fail_at(pt, CELLAR_EFORMAT, at, "tensor rebuild takes %u or %u arguments, got %s of %u",
                       need, need + 1, kind_name(a->kind), a->count);
    uint32_t sn = nth(pt, args, 0);
    if (pt->nodes[sn].kind != K_STORAGE)
        return fail_at(pt, CELLAR_EFORMAT, at, "tensor rebuild's first argument is a %s, not a storage",
                       kind_name(pt->nodes[sn].kind));
    int64_t off;
    if (int_of(pt, nth(pt, args, 1), &off) || off < 0)
        return fail_at(pt, CELLAR_EFORMAT, at, "tensor storage offset is negative or not an int");
    uint64_t shape[PT_MAX_RANK], stride[PT_MAX_RANK];
    uint32_t r1, r2;
    int rc = int_tuple(pt, nth(pt, args, 2), shape, &r1, at, "size");
    if (rc == 0)
        rc = int_tuple(pt, nth(pt, args, 3), stride, &r2, at, "stride");
    if (rc)
        return rc;
    if (r1 != r2)
        return fail_at(pt, CELLAR_EFORMAT, at, "tensor size has %u dimensions, stride %u", r1, r2);
    if (a->count == need + 1 && !empty_mapping(pt, nth(pt, args, need)))
        return fail_at(pt, CELLAR_EUNSUPPORTED, at,
                       "tensor metadata (conjugate or negative bit) is not supported");
    const node *s = &pt->nodes[sn];
    const storage_rec *sr = &pt->st[s->v.p.a];
    int tdx = sr->tdx;
    if (k == G_REBUILD_V3) {
        uint32_t dn = nth(pt, args, 6);
        const node *dt = &pt->nodes[dn];
        if (dt->kind != K_GLOBAL || pt->g[dt->v.p.a].kind != G_DTYPE || pt->g[dt->v.p.a].tdx < 0)
            return fail_at(pt, CELLAR_EUNSUPPORTED, at, "tensor dtype is not one cellar knows");
        tdx = pt->g[dt->v.p.a].tdx;
        if (sr->tdx != TYPE_UNTYPED && sr->tdx != tdx)
            return fail_at(pt, CELLAR_EFORMAT, at, "tensor dtype %s differs from its storage's %s",
                           types[tdx].torch, types[sr->tdx].torch);
    }
    if (types[tdx].quantized)
        return fail_at(pt, CELLAR_EUNSUPPORTED, at, "quantized storage %s is not supported",
                       types[tdx].storage);
    uint64_t elem_off = (uint64_t)off, view_end = UINT64_MAX;
    if (s->v.p.b != NIL) { /* a legacy view: offsets count from the view */
        if (ck_add(elem_off, (uint64_t)s->v.p.b, &elem_off))
            return fail_at(pt, CELLAR_EFORMAT, at, "tensor offset overflows");
        view_end = (uint64_t)s->v.p.b + s->len;
    }
    if ((rc = cellar_grow(&pt->tr, &pt->trcap, pt->ntr, sizeof *pt->tr, 64)) ||
        (rc = cellar_grow(&pt->dims, &pt->dcap, pt->ndims + 2 * r1 + 1, sizeof *pt->dims, 256)))
        return rc;
    tensor_rec *t = &pt->tr[pt->ntr];
    *t = (tensor_rec){s->v.p.a, tdx, elem_off, view_end, r1, pt->ndims, at};
    memcpy(pt->dims + pt->ndims, shape, r1 * sizeof *shape);
    memcpy(pt->dims + pt->ndims + r1, stride, r1 * sizeof *stride);
    pt->ndims += 2 * (size_t)r1;
    if ((rc = new_node(pt, out, K_TENSOR, at)))
        return rc;
    pt->nodes[*out].v.p.a = (uint32_t)pt->ntr++;
    return 0;
}

static int make_opaque(cellar_pt *pt, uint32_t *out, uint32_t callable, uint32_t args, uint64_t at)
{
    int rc = new_node(pt, out, K_OPAQUE, at);
    if (rc == 0) {
        pt->nodes[*out].v.p.a = callable;
        pt->nodes[*out].v.p.b = args;
    }
    return rc;
}

static int reduce(cellar_pt *pt, uint32_t *out, uint32_t f, uint32_t args, uint64_t at, int depth)
{
    const node *fn = &pt->nodes[f];
    const node *a = &pt->nodes[args];
    if (fn->kind != K_GLOBAL || a->kind != K_TUPLE)
        return make_opaque(pt, out, f, args, at);
    const gdef *g = &pt->g[fn->v.p.a];
    switch (g->kind) {
    case G_REBUILD_V2:
    case G_REBUILD_V3:
    case G_REBUILD:
        return rebuild_tensor(pt, out, g->kind, args, at);
    case G_REBUILD_PARAM:
    case G_REBUILD_PARAM_STATE: {
        uint32_t t = a->count ? nth(pt, args, 0) : NIL;
        if (t == NIL || pt->nodes[t].kind != K_TENSOR)
            return fail_at(pt, CELLAR_EFORMAT, at, "%s without a tensor", g->name);
        *out = t;
        return 0;
    }
    case G_REBUILD_FROM_TYPE: {
        /* (func, type, args, state): func(*args) when type is Tensor or
         * Parameter; the state is an attribute dict, ignored. */
        if (a->count != 4 || depth > 4)
            return make_opaque(pt, out, f, args, at);
        uint32_t ty = nth(pt, args, 1);
        const node *tn = &pt->nodes[ty];
        if (tn->kind != K_GLOBAL || (pt->g[tn->v.p.a].kind != G_TENSOR_CLS &&
                                     pt->g[tn->v.p.a].kind != G_PARAMETER))
            return make_opaque(pt, out, f, args, at);
        return reduce(pt, out, nth(pt, args, 0), nth(pt, args, 2), at, depth + 1);
    }
    case G_REBUILD_REFUSED:
        return fail_at(pt, CELLAR_EUNSUPPORTED, at, "unsupported tensor rebuild %s.%s", g->module,
                       g->name);
    case G_ORDERED_DICT:
        if (a->count == 0)
            return new_node(pt, out, K_DICT, at);
        return make_opaque(pt, out, f, args, at);
    case G_SIZE: {
        uint32_t t = a->count == 1 ? nth(pt, args, 0) : NIL;
        if (t != NIL && (pt->nodes[t].kind == K_TUPLE || pt->nodes[t].kind == K_LIST)) {
            *out = t;
            return 0;
        }
        return make_opaque(pt, out, f, args, at);
    }
    case G_ENCODE: {
        uint32_t s = a->count >= 1 ? nth(pt, args, 0) : NIL;
        if (s != NIL && pt->nodes[s].kind == K_STR) {
            int rc = new_node(pt, out, K_BYTES, at);
            if (rc == 0) {
                pt->nodes[*out].v.off = pt->nodes[s].v.off;
                pt->nodes[*out].len = pt->nodes[s].len;
            }
            return rc;
        }
        return make_opaque(pt, out, f, args, at);
    }
    default:
        return make_opaque(pt, out, f, args, at);
    }
}

/* Storages by key: an open-addressing table of indexes into pt->st, so a
 * file with many storages costs linear time. */
static uint64_t key_hash(const cellar_pt *pt, uint32_t key)
{
    const node *k = &pt->nodes[key];
    return fnv((const char *)pt->d + k->v.off, (size_t)k->len, "", 0);
}

/* The storage named by the string node key, or NIL; *slot gets where it
 * would go in the table. */
static uint32_t storage_find(const cellar_pt *pt, uint32_t key, size_t *slot)
{
    *slot = 0;
    if (!pt->sthcap)
        return NIL;
    const node *k = &pt->nodes[key];
    size_t s = (size_t)(key_hash(pt, key) & (pt->sthcap - 1));
    for (; pt->sth[s] != NIL; s = (s + 1) & (pt->sthcap - 1)) {
        const node *o = &pt->nodes[pt->st[pt->sth[s]].key_node];
        if (o->len == k->len && !memcmp(pt->d + o->v.off, pt->d + k->v.off, (size_t)k->len))
            return pt->sth[s];
    }
    *slot = s;
    return NIL;
}

/* Records storage si (just added) at slot, growing the table first when
 * half full (then the slot is found again). */
static int storage_index(cellar_pt *pt, uint32_t si, size_t slot)
{
    if (pt->sthcap == 0 || pt->nst * 2 > pt->sthcap) {
        size_t cap = pt->sthcap ? pt->sthcap * 2 : 64;
        uint32_t *h = cellar_malloc(cap * sizeof *h);
        if (!h)
            return CELLAR_ENOMEM;
        memset(h, 0xff, cap * sizeof *h);
        free(pt->sth);
    free(pt->views);
        pt->sth = h;
        pt->sthcap = cap;
        for (size_t i = 0; i < pt->nst; i++) {
            size_t s = (size_t)(key_hash(pt, pt->st[i].key_node) & (cap - 1));
            while (h[s] != NIL)
                s = (s + 1) & (cap - 1);
            h[s] = (uint32_t)i;
        }
        return 0;
    }
    pt->sth[slot] = si;
    return 0;
}

/* BINPERSID: ('storage', type, key, location, numel[, view]). */
static int persistent(cellar_pt *pt, uint32_t *out, uint32_t pid, uint64_t at, bool legacy,
                      int (*locate)(cellar_pt *, storage_rec *, uint64_t))
{
    const node *p = &pt->nodes[pid];
    if (p->kind != K_TUPLE || p->count == 0)
        return fail_at(pt, CELLAR_EFORMAT, at, "persistent id is a %s, not a tuple",
                       kind_name(p->kind));
    uint32_t tag = nth(pt, pid, 0);
    if (str_is(pt, tag, "module"))
        return fail_at(pt, CELLAR_EUNSUPPORTED, at,
                       "a pickled nn.Module (persistent id 'module') is not supported");
    if (!str_is(pt, tag, "storage"))
        return fail_at(pt, CELLAR_EFORMAT, at, "persistent id is not a storage");
    if (!locate)
        return fail_at(pt, CELLAR_EFORMAT, at, "persistent id in a pickle without storages");
    uint32_t want = legacy ? 6 : 5;
    if (p->count != want)
        return fail_at(pt, CELLAR_EFORMAT, at, "storage id has %u fields, not %u", p->count, want);
    uint32_t ty = nth(pt, pid, 1), key = nth(pt, pid, 2), loc = nth(pt, pid, 3);
    int64_t numel;
    const node *tn = &pt->nodes[ty];
    if (tn->kind != K_GLOBAL || pt->g[tn->v.p.a].kind != G_STORAGE_TYPE)
        return fail_at(pt, CELLAR_EUNSUPPORTED, at, "storage type is not a torch storage class");
    if (pt->nodes[key].kind != K_STR || pt->nodes[loc].kind != K_STR)
        return fail_at(pt, CELLAR_EFORMAT, at, "storage key or location is not a string");
    if (int_of(pt, nth(pt, pid, 4), &numel) || numel < 0)
        return fail_at(pt, CELLAR_EFORMAT, at, "storage size is negative or not an int");
    int tdx = pt->g[tn->v.p.a].tdx;
    const node *kn = &pt->nodes[key];
    size_t slot;
    uint32_t si = storage_find(pt, key, &slot);
    int rc;
    if (si == NIL) {
        if (pt->nst >= PT_MAX_NODES)
            return fail_at(pt, CELLAR_EFORMAT, at, "too many storages");
        if ((rc = cellar_grow(&pt->st, &pt->stcap, pt->nst, sizeof *pt->st, 16)))
            return rc;
        storage_rec *s = &pt->st[pt->nst];
        memset(s, 0, sizeof *s);
        s->key_node = key;
        s->tdx = tdx;
        s->pub.numel = (uint64_t)numel;
        if (ck_mul((uint64_t)numel, (uint64_t)types[tdx].es, &s->pub.nbytes))
            return fail_at(pt, CELLAR_EFORMAT, at, "storage size overflows");
        s->pub.torch_dtype = types[tdx].torch;
        s->pub.key = cellar_strndup((const char *)pt->d + kn->v.off, kn->len);
        s->pub.location = cellar_strndup((const char *)pt->d + pt->nodes[loc].v.off,
                                         pt->nodes[loc].len);
        si = (uint32_t)pt->nst++;
        if (!s->pub.key || !s->pub.location)
            return CELLAR_ENOMEM;
        if ((rc = storage_index(pt, si, slot)))
            return rc;
        if ((rc = locate(pt, s, at)))
            return rc;
    } else if (pt->st[si].tdx != tdx || pt->st[si].pub.numel != (uint64_t)numel) {
        return fail_at(pt, CELLAR_EFORMAT, at, "storage '%s' named again with another type or size",
                       pt->st[si].pub.key);
    }
    if ((rc = new_node(pt, out, K_STORAGE, at)))
        return rc;
    node *sn = &pt->nodes[*out];
    sn->v.p.a = si;
    if (legacy) {
        uint32_t view = nth(pt, pid, 5);
        const node *vn = &pt->nodes[view];
        if (vn->kind != K_NONE) {
            int64_t voff, vsize;
            if (vn->kind != K_TUPLE || vn->count != 3 || int_of(pt, nth(pt, view, 1), &voff) ||
                int_of(pt, nth(pt, view, 2), &vsize) || voff < 0 || vsize < 0 ||
                (uint64_t)voff > (uint64_t)numel || (uint64_t)vsize > (uint64_t)numel - (uint64_t)voff ||
                voff > (int64_t)UINT32_MAX - 1)
                return fail_at(pt, CELLAR_EFORMAT, at,
                               "storage view is not (key, offset, size) inside its storage");
            /* torch keeps views and roots in one dict by key: a view key
             * equal to its root's key is the root itself; a view key seen
             * before is that first view, whatever offset is given again. */
            uint32_t vk = nth(pt, view, 0);
            if (pt->nodes[vk].kind != K_STR)
                return fail_at(pt, CELLAR_EFORMAT, at, "storage view key is not a string");
            const node *vkn = &pt->nodes[vk];
            if (vkn->len == kn->len && !memcmp(pt->d + vkn->v.off, pt->d + kn->v.off, kn->len))
                return 0;
            size_t vslot;
            if (storage_find(pt, vk, &vslot) != NIL)
                return fail_at(pt, CELLAR_EFORMAT, at,
                               "storage view key names another storage");
            size_t v = 0;
            for (; v < pt->nviews; v++) {
                const node *o = &pt->nodes[pt->views[v].key];
                if (o->len == vkn->len && !memcmp(pt->d + o->v.off, pt->d + vkn->v.off, o->len))
                    break;
            }
            if (v == pt->nviews) {
                if (pt->nviews >= PT_MAX_VIEWS)
                    return fail_at(pt, CELLAR_EFORMAT, at, "more than %u storage views",
                                   PT_MAX_VIEWS);
                if ((rc = cellar_grow(&pt->views, &pt->vcap, pt->nviews, sizeof *pt->views, 8)))
                    return rc;
                pt->views[pt->nviews++] = (view_rec){vk, si, (uint32_t)voff, (uint64_t)vsize};
            } else if (pt->views[v].storage != si) {
                return fail_at(pt, CELLAR_EFORMAT, at,
                               "storage view key names a view of another storage");
            }
            sn->v.p.b = pt->views[v].offset;
            sn->len = pt->views[v].size;
        }
    }
    return 0;
}

static int need(const cellar_pt *pt, size_t p, size_t lim, uint64_t n, uint64_t at)
{
    if (p > lim || lim - p < n)
        return fail_at(pt, CELLAR_EFORMAT, at, "truncated pickle: opcode needs %llu bytes",
                       (unsigned long long)n);
    return 0;
}

static int new_str(cellar_pt *pt, enum kind k, size_t p, size_t lim, uint64_t n, uint64_t at,
                   uint32_t *out)
{
    if (n > PT_MAX_STR)
        return fail_at(pt, CELLAR_EFORMAT, at, "string of %llu bytes over the %u-byte limit",
                       (unsigned long long)n, PT_MAX_STR);
    int rc = need(pt, p, lim, n, at);
    if (rc == 0 && (rc = new_node(pt, out, k, at)) == 0) {
        pt->nodes[*out].v.off = p;
        pt->nodes[*out].len = n;
    }
    return rc;
}

static int memo_put(cellar_pt *pt, uint64_t idx, uint64_t at)
{
    if (idx > pt->nmemo)
        return fail_at(pt, CELLAR_EFORMAT, at, "memo index %llu past the %zu entries stored",
                       (unsigned long long)idx, pt->nmemo);
    uint32_t *t = NULL;
    int rc = top(pt, &t, at);
    if (rc)
        return rc;
    if (idx == pt->nmemo) {
        if ((rc = cellar_grow(&pt->memo, &pt->memocap, pt->nmemo, sizeof *pt->memo, 256)))
            return rc;
        pt->nmemo++;
    }
    pt->memo[idx] = *t;
    return 0;
}

/* Whether torch 1.13's weights_only unpickler reads this opcode. */
static bool wo113_op(uint8_t op)
{
    static const char ops[] = "\x80\x2e\x28\x63\x52\x62\x81\x51\x71\x72\x68\x6a\x29\x85\x86\x87"
                              "\x74\x7d\x5d\x8f\x73\x75\x61\x65\x4b\x4d\x4a\x8a\x58\x55\x88\x89\x4e";
    return memchr(ops, op, sizeof ops - 1) != NULL;
}

typedef int (*locate_fn)(cellar_pt *, storage_rec *, uint64_t);

/* The interpreter: runs one pickle from start; *end gets the offset after STOP. */
static int run_ops(cellar_pt *pt, size_t start, size_t *end, uint32_t *result, bool legacy,
                      locate_fn locate)
{
    const uint8_t *d = pt->d;
    size_t lim = pt->len - start > PT_MAX_PICKLE ? start + PT_MAX_PICKLE : pt->len;
    size_t p = start;
    pt->scan_from = start;
    pt->scan_lim = lim;
    pt->nstack = pt->nmarks = pt->nmemo = 0;
    pt->cur_proto = 0;
    int rc = 0;
    uint32_t n, a, b, *tp;
    for (;;) {
        if (p >= lim) {
            if (lim < pt->len)
                return fail_at(pt, CELLAR_EFORMAT, p, "pickle over %u bytes", PT_MAX_PICKLE);
            return fail_at(pt, CELLAR_EFORMAT, p, "truncated pickle: no STOP opcode");
        }
        size_t at = p;
        uint8_t op = d[p++];
        pt->scan_from = at;
        if (!wo113_op(op))
            wo_refuse(pt, "torch 1.13's weights_only does not read opcode 0x%02x (offset %zu)", op,
                      at);
        switch (op) {
        case 0x80: /* PROTO */
            if ((rc = need(pt, p, lim, 1, at)))
                return rc;
            if (d[p] < 2 || d[p] > 5)
                return fail_at(pt, CELLAR_EUNSUPPORTED, at, "unsupported pickle protocol %u", d[p]);
            if (d[p] > pt->protocol)
                pt->protocol = d[p];
            pt->cur_proto = d[p];
            p++;
            break;
        case 0x95: /* FRAME */
            if ((rc = need(pt, p, lim, 8, at)))
                return rc;
            p += 8;
            break;
        case 0x2e: /* STOP */
            if ((rc = pop(pt, result, at)))
                return rc;
            *end = p;
            return 0;
        case 0x28: /* MARK */
            if (pt->nmarks >= PT_MAX_MARKS)
                return fail_at(pt, CELLAR_EFORMAT, at, "more than %u open MARKs", PT_MAX_MARKS);
            if ((rc = cellar_grow(&pt->marks, &pt->mcap, pt->nmarks, sizeof *pt->marks, 16)))
                return rc;
            pt->marks[pt->nmarks++] = pt->nstack;
            break;
        case 0x63: { /* GLOBAL */
            const char *m = (const char *)d + p, *nl = NULL, *nm, *nl2 = NULL;
            size_t room = lim - p;
            nl = memchr(m, '\n', room < PT_MAX_LINE ? room : PT_MAX_LINE);
            if (nl) {
                nm = nl + 1;
                room = lim - (size_t)((const uint8_t *)nm - d);
                nl2 = memchr(nm, '\n', room < PT_MAX_LINE ? room : PT_MAX_LINE);
            }
            if (!nl || !nl2)
                return fail_at(pt, CELLAR_EFORMAT, at,
                               "GLOBAL without two newline-ended lines of at most %u bytes",
                               PT_MAX_LINE);
            if ((rc = make_global(pt, &n, m, (size_t)(nl - m), nm, (size_t)(nl2 - nm), at)) ||
                (rc = push(pt, n, at)))
                return rc;
            p = (size_t)((const uint8_t *)nl2 - d) + 1;
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            if ((rc = pop(pt, &b, at)) || (rc = pop(pt, &a, at)))
                return rc;
            if (pt->nodes[a].kind != K_STR || pt->nodes[b].kind != K_STR)
                return fail_at(pt, CELLAR_EFORMAT, at, "STACK_GLOBAL on a non-string");
            if ((rc = make_global(pt, &n, (const char *)d + pt->nodes[a].v.off,
                                  (size_t)pt->nodes[a].len, (const char *)d + pt->nodes[b].v.off,
                                  (size_t)pt->nodes[b].len, at)) ||
                (rc = push(pt, n, at)))
                return rc;
            break;
        case 0x52: /* REDUCE */
            if ((rc = pop(pt, &a, at)) || (rc = top(pt, &tp, at)) ||
                (rc = reduce(pt, &n, *tp, a, at, 0)))
                return rc;
            pt->stack[pt->nstack - 1] = n;
            break;
        case 0x81: /* NEWOBJ */
            if ((rc = pop(pt, &a, at)) || (rc = pop(pt, &b, at)))
                return rc;
            if (pt->nodes[b].kind == K_GLOBAL && pt->g[pt->nodes[b].v.p.a].kind == G_PARAMETER &&
                pt->nodes[a].kind == K_TUPLE && pt->nodes[a].count >= 1 &&
                pt->nodes[nth(pt, a, 0)].kind == K_TENSOR)
                n = nth(pt, a, 0);
            else if ((rc = make_opaque(pt, &n, b, a, at)))
                return rc;
            if ((rc = push(pt, n, at)))
                return rc;
            break;
        case 0x62: { /* BUILD */
            if ((rc = pop(pt, &a, at)) || (rc = top(pt, &tp, at)))
                return rc;
            node *o = &pt->nodes[*tp];
            if (o->kind == K_OPAQUE)
                o->state = a;
            else if (o->kind != K_DICT && o->kind != K_TENSOR)
                return fail_at(pt, CELLAR_EFORMAT, at, "BUILD on a %s", kind_name(o->kind));
            break;
        }
        case 0x51: /* BINPERSID */
            if ((rc = pop(pt, &a, at)) || (rc = persistent(pt, &n, a, at, legacy, locate)) ||
                (rc = push(pt, n, at)))
                return rc;
            break;
        case 0x71: /* BINPUT */
            if ((rc = need(pt, p, lim, 1, at)) || (rc = memo_put(pt, d[p], at)))
                return rc;
            p += 1;
            break;
        case 0x72: /* LONG_BINPUT */
            if ((rc = need(pt, p, lim, 4, at)) || (rc = memo_put(pt, rd32(d + p), at)))
                return rc;
            p += 4;
            break;
        case 0x94: /* MEMOIZE */
            if ((rc = memo_put(pt, pt->nmemo, at)))
                return rc;
            break;
        case 0x68: /* BINGET */
        case 0x6a: { /* LONG_BINGET */
            size_t w = op == 0x68 ? 1 : 4;
            if ((rc = need(pt, p, lim, w, at)))
                return rc;
            uint64_t i = w == 1 ? d[p] : rd32(d + p);
            p += w;
            if (i >= pt->nmemo)
                return fail_at(pt, CELLAR_EFORMAT, at, "memo index %llu was never stored",
                               (unsigned long long)i);
            if ((rc = push(pt, pt->memo[i], at)))
                return rc;
            break;
        }
        case 0x29: /* EMPTY_TUPLE */
        case 0x7d: /* EMPTY_DICT */
        case 0x5d: /* EMPTY_LIST */
        case 0x8f: /* EMPTY_SET */
        case 0x4e: /* NONE */
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */ {
            enum kind k = op == 0x29 ? K_TUPLE : op == 0x7d ? K_DICT : op == 0x5d ? K_LIST
                        : op == 0x8f ? K_SET : op == 0x4e ? K_NONE : K_BOOL;
            if ((rc = new_node(pt, &n, k, at)))
                return rc;
            pt->nodes[n].flag = op == 0x88;
            if ((rc = push(pt, n, at)))
                return rc;
            break;
        }
        case 0x85: /* TUPLE1 */
        case 0x86: /* TUPLE2 */
        case 0x87: /* TUPLE3 */
        case 0x74: /* TUPLE */
        case 0x91: { /* FROZENSET */
            size_t base = 0;
            if (op == 0x74 || op == 0x91) {
                if ((rc = pop_mark(pt, &base, at)))
                    return rc;
            } else {
                size_t k = (size_t)(op - 0x84);
                if (pt->nstack < stack_floor(pt) + k)
                    return fail_at(pt, CELLAR_EFORMAT, at, "pickle stack underflow");
                base = pt->nstack - k;
            }
            if ((rc = new_node(pt, &n, op == 0x91 ? K_SET : K_TUPLE, at)))
                return rc;
            for (size_t i = base; i < pt->nstack; i++)
                if ((rc = add_item(pt, n, pt->stack[i], at)))
                    return rc;
            pt->nstack = base;
            if ((rc = push(pt, n, at)))
                return rc;
            break;
        }
        case 0x73: /* SETITEM */
        case 0x61: /* APPEND */
        case 0x75: /* SETITEMS */
        case 0x65: /* APPENDS */
        case 0x90: { /* ADDITEMS */
            size_t base = 0;
            if (op == 0x73 || op == 0x61) {
                size_t k = op == 0x73 ? 2 : 1;
                if (pt->nstack < stack_floor(pt) + k + 1)
                    return fail_at(pt, CELLAR_EFORMAT, at, "pickle stack underflow");
                base = pt->nstack - k;
            } else if ((rc = pop_mark(pt, &base, at))) {
                return rc;
            }
            if (base <= stack_floor(pt))
                return fail_at(pt, CELLAR_EFORMAT, at, "pickle stack underflow");
            uint32_t c = pt->stack[base - 1];
            uint8_t ck = pt->nodes[c].kind;
            bool pairs = op == 0x73 || op == 0x75;
            uint8_t want = pairs ? K_DICT : op == 0x90 ? K_SET : K_LIST;
            if (ck != want && ck != K_OPAQUE)
                return fail_at(pt, CELLAR_EFORMAT, at, "%s on a %s",
                               pairs ? "SETITEMS" : op == 0x90 ? "ADDITEMS" : "APPENDS",
                               kind_name(ck));
            if (pairs && (pt->nstack - base) % 2)
                return fail_at(pt, CELLAR_EFORMAT, at, "SETITEMS with an odd number of items");
            for (size_t i = base; i < pt->nstack; i++)
                if ((rc = add_item(pt, c, pt->stack[i], at)))
                    return rc;
            pt->nstack = base;
            break;
        }
        case 0x4b: /* BININT1 */
        case 0x4d: /* BININT2 */
        case 0x4a: /* BININT */
        case 0x8a: { /* LONG1 */
            int64_t v;
            if (op == 0x8a) {
                if ((rc = need(pt, p, lim, 1, at)))
                    return rc;
                size_t k = d[p++];
                if (k > PT_MAX_LONG)
                    return fail_at(pt, CELLAR_EFORMAT, at, "LONG1 of %zu bytes over %u", k,
                                   PT_MAX_LONG);
                if ((rc = need(pt, p, lim, k, at)))
                    return rc;
                uint64_t u = 0;
                for (size_t i = 0; i < k; i++)
                    u |= (uint64_t)d[p + i] << (8 * i);
                if (k && k < 8 && (d[p + k - 1] & 0x80))
                    u |= ~0ull << (8 * k);
                memcpy(&v, &u, sizeof v);
                p += k;
            } else {
                size_t w = op == 0x4b ? 1 : op == 0x4d ? 2 : 4;
                if ((rc = need(pt, p, lim, w, at)))
                    return rc;
                if (w == 1)
                    v = d[p];
                else if (w == 2)
                    v = rd16(d + p);
                else
                    v = (int32_t)rd32(d + p);
                p += w;
            }
            if ((rc = new_node(pt, &n, K_INT, at)))
                return rc;
            pt->nodes[n].v.i = v;
            if ((rc = push(pt, n, at)))
                return rc;
            break;
        }
        case 0x47: { /* BINFLOAT, big-endian */
            if ((rc = need(pt, p, lim, 8, at)))
                return rc;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++)
                u = u << 8 | d[p + (size_t)i];
            p += 8;
            if ((rc = new_node(pt, &n, K_FLOAT, at)))
                return rc;
            memcpy(&pt->nodes[n].v.f, &u, sizeof u);
            if ((rc = push(pt, n, at)))
                return rc;
            break;
        }
        case 0x58: /* BINUNICODE */
        case 0x8c: /* SHORT_BINUNICODE */
        case 0x8d: /* BINUNICODE8 */
        case 0x55: /* SHORT_BINSTRING */
        case 0x42: /* BINBYTES */
        case 0x43: /* SHORT_BINBYTES */
        case 0x8e: { /* BINBYTES8 */
            size_t w = (op == 0x58 || op == 0x42) ? 4 : (op == 0x8d || op == 0x8e) ? 8 : 1;
            if ((rc = need(pt, p, lim, w, at)))
                return rc;
            uint64_t len = w == 1 ? d[p] : w == 4 ? rd32(d + p) : rd64(d + p);
            p += w;
            enum kind k = (op == 0x42 || op == 0x43 || op == 0x8e) ? K_BYTES : K_STR;
            if ((rc = new_str(pt, k, p, lim, len, at, &n)) || (rc = push(pt, n, at)))
                return rc;
            p += (size_t)len;
            break;
        }
        default:
            return fail_at(pt, CELLAR_EFORMAT, at, "unsupported pickle opcode 0x%02x", op);
        }
    }
}

/* Runs one pickle from start; *end gets the offset after STOP. On an error
 * pt->in_pickle stays set, so a scan can list the globals past it. */
static int run_pickle(cellar_pt *pt, size_t start, size_t *end, uint32_t *result, bool legacy,
                      locate_fn locate)
{
    pt->in_pickle = true;
    int rc = run_ops(pt, start, end, result, legacy, locate);
    if (rc == 0)
        pt->in_pickle = false;
    return rc;
}

/* ---- zip container ---- */

static int zcmp(const void *a, const void *b)
{
    const zentry *x = a, *y = b;
    return cellar_st_name_cmp(x->name, x->name_len, y->name, y->name_len);
}

static const zentry *zfind(const cellar_pt *pt, const char *rel, size_t rl)
{
    char buf[600];
    if (pt->root_len + 1 + rl >= sizeof buf)
        return NULL;
    memcpy(buf, pt->root, pt->root_len);
    buf[pt->root_len] = '/';
    memcpy(buf + pt->root_len + 1, rel, rl);
    zentry key = {buf, pt->root_len + 1 + rl, 0, 0};
    return pt->nz ? bsearch(&key, pt->z, pt->nz, sizeof *pt->z, zcmp) : NULL;
}

static int zip_read(cellar_pt *pt)
{
    const uint8_t *d = pt->d;
    size_t len = pt->len;
    if (len < 22)
        return fail_at(pt, CELLAR_EFORMAT, 0, "truncated zip: no end record");
    size_t lo = len - 22 > 0xffff ? len - 22 - 0xffff : 0, eocd = SIZE_MAX;
    for (size_t p = len - 22 + 1; p-- > lo;)
        if (rd32(d + p) == 0x06054b50u) {
            eocd = p;
            break;
        }
    if (eocd == SIZE_MAX)
        return fail_at(pt, CELLAR_EFORMAT, len, "truncated zip: no end of central directory");
    uint64_t count = rd16(d + eocd + 10), cd_size = rd32(d + eocd + 12),
             cd_off = rd32(d + eocd + 16);
    if (eocd >= 20 && rd32(d + eocd - 20) == 0x07064b50u) {
        uint64_t rec = rd64(d + eocd - 12);
        if (rec > eocd - 20 || eocd - 20 - rec < 56 || rd32(d + rec) != 0x06064b50u)
            return fail_at(pt, CELLAR_EFORMAT, eocd - 20, "bad ZIP64 end record locator");
        uint64_t zc = rd64(d + rec + 32), zs = rd64(d + rec + 40), zo = rd64(d + rec + 48);
        if ((count != 0xffff && count != zc) || (cd_size != 0xffffffffu && cd_size != zs) ||
            (cd_off != 0xffffffffu && cd_off != zo))
            return fail_at(pt, CELLAR_EFORMAT, eocd,
                           "end record disagrees with the ZIP64 end record");
        count = zc;
        cd_size = zs;
        cd_off = zo;
    }
    if (cd_off > len || cd_size > len - cd_off || count > cd_size / 46)
        return fail_at(pt, CELLAR_EFORMAT, eocd,
                       "central directory [%llu, +%llu) with %llu entries is outside the file",
                       (unsigned long long)cd_off, (unsigned long long)cd_size,
                       (unsigned long long)count);
    pt->z = cellar_calloc(count ? (size_t)count : 1, sizeof *pt->z);
    if (!pt->z)
        return CELLAR_ENOMEM;
    size_t p = (size_t)cd_off, end = (size_t)(cd_off + cd_size);
    for (uint64_t i = 0; i < count; i++) {
        if (end - p < 46 || rd32(d + p) != 0x02014b50u)
            return fail_at(pt, CELLAR_EFORMAT, p, "bad central directory entry %llu",
                           (unsigned long long)i);
        uint16_t method = rd16(d + p + 10), nl = rd16(d + p + 28), xl = rd16(d + p + 30),
                 cl = rd16(d + p + 32);
        if (end - p - 46 < (size_t)nl + xl + cl)
            return fail_at(pt, CELLAR_EFORMAT, p, "central directory entry %llu runs past its end",
                           (unsigned long long)i);
        uint64_t csize = rd32(d + p + 20), size = rd32(d + p + 24), loff = rd32(d + p + 42);
        /* ZIP64 extra: the u64s replace the 0xffffffff fields in order. */
        const uint8_t *x = d + p + 46 + nl;
        for (size_t q = 0; q + 4 <= xl;) {
            uint16_t id = rd16(x + q), xs = rd16(x + q + 2);
            if (xs > xl - q - 4)
                return fail_at(pt, CELLAR_EFORMAT, p, "corrupt extra field in entry %llu",
                               (unsigned long long)i);
            if (id == 1) {
                size_t v = q + 4, ve = q + 4 + xs;
                uint64_t *fields[3] = {&size, &csize, &loff};
                for (int f = 0; f < 3; f++)
                    if (*fields[f] == 0xffffffffu) {
                        if (ve - v < 8)
                            return fail_at(pt, CELLAR_EFORMAT, p, "short ZIP64 extra field");
                        *fields[f] = rd64(x + v);
                        v += 8;
                    }
            }
            q += 4 + (size_t)xs;
        }
        zentry *z = &pt->z[pt->nz++];
        z->name = (const char *)d + p + 46;
        z->name_len = nl;
        if (method != 0)
            return fail_at(pt, CELLAR_EUNSUPPORTED, p, "entry '%.*s' is compressed (method %u)",
                           (int)nl, z->name, method);
        if (csize != size)
            return fail_at(pt, CELLAR_EFORMAT, p, "entry '%.*s' sizes differ", (int)nl, z->name);
        /* Data offset from the LOCAL header's name and extra lengths. */
        if (loff > cd_off || cd_off - loff < 30 || rd32(d + loff) != 0x04034b50u)
            return fail_at(pt, CELLAR_EFORMAT, p, "entry '%.*s': no local header at offset %llu",
                           (int)nl, z->name, (unsigned long long)loff);
        uint64_t data = loff + 30 + rd16(d + loff + 26) + rd16(d + loff + 28);
        if (data > cd_off || size > cd_off - data)
            return fail_at(pt, CELLAR_EFORMAT, loff,
                           "entry '%.*s': data [%llu, +%llu) runs past the entries area",
                           (int)nl, z->name, (unsigned long long)data, (unsigned long long)size);
        z->off = data;
        z->size = size;
        p += 46 + (size_t)nl + xl + cl;
    }
    if (!pt->nz)
        return fail_at(pt, CELLAR_EFORMAT, cd_off, "empty zip archive");
    const char *slash = memchr(pt->z[0].name, '/', pt->z[0].name_len);
    if (!slash)
        return fail_at(pt, CELLAR_EFORMAT, cd_off, "first entry '%.*s' is not in a folder",
                       (int)pt->z[0].name_len, pt->z[0].name);
    pt->root = pt->z[0].name;
    pt->root_len = (size_t)(slash - pt->z[0].name);
    for (size_t i = 0; i < pt->nz; i++)
        if (pt->z[i].name_len <= pt->root_len ||
            memcmp(pt->z[i].name, pt->root, pt->root_len) || pt->z[i].name[pt->root_len] != '/')
            return fail_at(pt, CELLAR_EFORMAT, cd_off, "entry '%.*s' is outside the root folder '%.*s'",
                           (int)pt->z[i].name_len, pt->z[i].name, (int)pt->root_len, pt->root);
    qsort(pt->z, pt->nz, sizeof *pt->z, zcmp);
    for (size_t i = 1; i < pt->nz; i++)
        if (!zcmp(&pt->z[i - 1], &pt->z[i]))
            return fail_at(pt, CELLAR_EFORMAT, cd_off, "entry '%.*s' appears twice",
                           (int)pt->z[i].name_len, pt->z[i].name);
    return 0;
}

static int zip_locate(cellar_pt *pt, storage_rec *s, uint64_t at)
{
    char rel[300];
    size_t kl = strlen(s->pub.key);
    if (kl > 256)
        return fail_at(pt, CELLAR_EFORMAT, at, "storage key of %zu bytes", kl);
    memcpy(rel, "data/", 5);
    memcpy(rel + 5, s->pub.key, kl);
    const zentry *z = zfind(pt, rel, 5 + kl);
    if (!z)
        return fail_at(pt, CELLAR_EFORMAT, at, "storage '%s': no record data/%s in the archive",
                       s->pub.key, s->pub.key);
    if (z->size < s->pub.nbytes)
        return fail_at(pt, CELLAR_EFORMAT, at,
                       "storage '%s' is shorter than its type needs: data/%s holds %llu bytes, "
                       "%llu %s elements need %llu",
                       s->pub.key, s->pub.key, (unsigned long long)z->size,
                       (unsigned long long)s->pub.numel, types[s->tdx].torch,
                       (unsigned long long)s->pub.nbytes);
    s->pub.offset = z->off;
    s->avail = z->size;
    s->located = true;
    return 0;
}

static int open_zip(cellar_pt *pt)
{
    int rc = zip_read(pt);
    if (rc)
        return rc;
    pt->format = "zip";
    if (zfind(pt, "constants.pkl", 13))
        return fail_at(pt, CELLAR_EUNSUPPORTED, 0,
                       "a TorchScript archive (constants.pkl): code, not a checkpoint");
    const zentry *bo = zfind(pt, "byteorder", 9);
    if (bo && !(bo->size == 6 && !memcmp(pt->d + bo->off, "little", 6)))
        return fail_at(pt, CELLAR_EUNSUPPORTED, bo->off, "byte order is not 'little'");
    const zentry *pk = zfind(pt, "data.pkl", 8);
    if (!pk)
        return fail_at(pt, CELLAR_EFORMAT, 0, "no %.*s/data.pkl record", (int)pt->root_len,
                       pt->root);
    if (pk->size > PT_MAX_PICKLE)
        return fail_at(pt, CELLAR_EFORMAT, pk->off, "data.pkl of %llu bytes over %u",
                       (unsigned long long)pk->size, PT_MAX_PICKLE);
    /* The interpreter must not read past data.pkl: narrow the view. */
    size_t full = pt->len, end;
    pt->len = (size_t)(pk->off + pk->size);
    rc = run_pickle(pt, (size_t)pk->off, &end, &pt->top, false, zip_locate);
    pt->len = full;
    return rc;
}

/* ---- legacy container ---- */

static int legacy_locate(cellar_pt *pt, storage_rec *s, uint64_t at)
{
    (void)pt;
    (void)s;
    (void)at;
    return 0; /* placed after the keys list */
}

static const uint8_t legacy_magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                       0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

/* The length of the legacy magic-number pickle at the start (PROTO, an
 * optional FRAME, LONG1 of the 10 magic bytes, STOP), or 0. Its 10-byte
 * LONG1 is over the interpreter's limit, so it is matched here. */
static size_t legacy_magic_len(const uint8_t *d, size_t len)
{
    size_t p = 2;
    if (len < 2 || d[0] != 0x80 || d[1] < 2 || d[1] > 5)
        return 0;
    if (len > p && d[p] == 0x95)
        p += 9;
    if (len < p + 13 || memcmp(d + p, legacy_magic + 2, 13))
        return 0;
    return p + 13;
}

static int legacy_rest(cellar_pt *pt)
{
    size_t p = legacy_magic_len(pt->d, pt->len), end;
    uint32_t v;
    int64_t iv;
    int rc;
    pt->format = "legacy";
    if ((rc = run_pickle(pt, p, &end, &v, true, NULL)))
        return rc;
    if (int_of(pt, v, &iv) || iv != 1001)
        return fail_at(pt, CELLAR_EFORMAT, p, "legacy protocol version is not 1001");
    p = end;
    if ((rc = run_pickle(pt, p, &end, &v, true, NULL)))
        return rc;
    const node *si = &pt->nodes[v];
    if (si->kind != K_DICT)
        return fail_at(pt, CELLAR_EFORMAT, p, "legacy sys_info is a %s, not a dict",
                       kind_name(si->kind));
    for (uint32_t it = si->head; it != NIL && pt->items[it].next != NIL;
         it = pt->items[pt->items[it].next].next) {
        uint32_t k = pt->items[it].val, val = pt->items[pt->items[it].next].val;
        if (str_is(pt, k, "little_endian") && pt->nodes[val].kind == K_BOOL && !pt->nodes[val].flag)
            return fail_at(pt, CELLAR_EUNSUPPORTED, p, "a big-endian legacy checkpoint");
    }
    p = end;
    if ((rc = run_pickle(pt, p, &end, &pt->top, true, legacy_locate)))
        return rc;
    uint32_t top_saved = pt->top;
    p = end;
    if ((rc = run_pickle(pt, p, &end, &v, true, NULL)))
        return rc;
    pt->top = top_saved;
    const node *keys = &pt->nodes[v];
    if (keys->kind != K_LIST)
        return fail_at(pt, CELLAR_EFORMAT, p, "legacy storage keys are a %s, not a list",
                       kind_name(keys->kind));
    uint64_t off = end;
    for (uint32_t it = keys->head; it != NIL; it = pt->items[it].next) {
        const node *k = &pt->nodes[pt->items[it].val];
        if (k->kind != K_STR)
            return fail_at(pt, CELLAR_EFORMAT, p, "legacy storage key is a %s", kind_name(k->kind));
        size_t slot;
        uint32_t found = storage_find(pt, pt->items[it].val, &slot);
        storage_rec *s = found == NIL ? NULL : &pt->st[found];
        if (!s)
            return fail_at(pt, CELLAR_EFORMAT, p, "legacy storage key '%.*s' names no storage",
                           (int)(k->len > 64 ? 64 : k->len), (const char *)pt->d + k->v.off);
        if (s->located)
            return fail_at(pt, CELLAR_EFORMAT, p, "legacy storage key '%s' listed twice",
                           s->pub.key);
        if (off > pt->len || pt->len - off < 8)
            return fail_at(pt, CELLAR_EFORMAT, off, "truncated legacy file: storage '%s' missing",
                           s->pub.key);
        uint64_t cnt = rd64(pt->d + off), nb;
        if (ck_mul(cnt, (uint64_t)types[s->tdx].es, &nb) || nb > pt->len - off - 8)
            return fail_at(pt, CELLAR_EFORMAT, off,
                           "truncated legacy file: storage '%s' of %llu elements runs past the end",
                           s->pub.key, (unsigned long long)cnt);
        if (cnt < s->pub.numel)
            return fail_at(pt, CELLAR_EFORMAT, off,
                           "storage '%s' is shorter than its id says: %llu elements, not %llu",
                           s->pub.key, (unsigned long long)cnt, (unsigned long long)s->pub.numel);
        s->pub.offset = off + 8;
        s->avail = nb;
        s->located = true;
        off += 8 + nb;
    }
    for (size_t i = 0; i < pt->nst; i++)
        if (!pt->st[i].located)
            return fail_at(pt, CELLAR_EFORMAT, end, "storage '%s' is not in the keys list",
                           pt->st[i].pub.key);
    return 0;
}

/* ---- the state dict ---- */

typedef struct flat {
    size_t name, name_len; /* in the names buffer */
    uint32_t tensor;       /* tensor record */
    size_t seq;            /* walk order */
    size_t rank;           /* name order */
} flat;

typedef struct walk {
    cellar_pt *pt;
    cellar_buf names;  /* every name, back to back */
    cellar_buf path;   /* the current path */
    flat *f;
    size_t nf, fcap;
} walk;

static int walk_step(cellar_pt *pt, uint64_t at)
{
    if (pt->walk_budget == 0)
        return fail_at(pt, CELLAR_EFORMAT, at, "object graph too large to walk (shared containers)");
    pt->walk_budget--;
    return 0;
}

/* Whether an object holds a tensor anywhere (cached per node; cycles
 * count as no). */
static bool holds_tensor(cellar_pt *pt, uint32_t n, unsigned depth)
{
    node *x = &pt->nodes[n];
    if (x->kind == K_TENSOR)
        return true;
    if (x->has_tensor)
        return x->has_tensor == 2;
    if (depth > PT_MAX_DEPTH || pt->walk_budget == 0)
        return false;
    pt->walk_budget--;
    x->has_tensor = 3;
    bool found = false;
    if (x->kind == K_OPAQUE) {
        found = (x->v.p.b != NIL && holds_tensor(pt, x->v.p.b, depth + 1)) ||
                (x->state != NIL && holds_tensor(pt, x->state, depth + 1));
    }
    for (uint32_t it = x->head; it != NIL && !found; it = pt->items[it].next)
        found = holds_tensor(pt, pt->items[it].val, depth + 1);
    pt->nodes[n].has_tensor = found ? 2 : 1;
    return found;
}

/* The global an opaque object was made by, or NIL. */
static uint32_t opaque_global(const cellar_pt *pt, uint32_t n)
{
    for (int i = 0; i < 8 && pt->nodes[n].kind == K_OPAQUE; i++)
        n = pt->nodes[n].v.p.a;
    return pt->nodes[n].kind == K_GLOBAL ? pt->nodes[n].v.p.a : NIL;
}

static int flatten(walk *w, uint32_t n, unsigned depth)
{
    cellar_pt *pt = w->pt;
    node *x = &pt->nodes[n];
    int rc;
    if (depth > PT_MAX_DEPTH)
        return fail_at(pt, CELLAR_EFORMAT, 0, "state dict nested deeper than %u", PT_MAX_DEPTH);
    if ((rc = walk_step(pt, 0)))
        return rc;
    if (x->kind == K_TENSOR) {
        if ((rc = cellar_grow(&w->f, &w->fcap, w->nf, sizeof *w->f, 256)))
            return rc;
        size_t at = w->names.len;
        if ((rc = cellar_buf_append(&w->names, w->path.data ? w->path.data : "", w->path.len)) ||
            (rc = cellar_buf_append(&w->names, "", 1)))
            return rc;
        w->f[w->nf] = (flat){at, w->path.len, x->v.p.a, w->nf, 0};
        w->nf++;
        return 0;
    }
    if (x->kind == K_OPAQUE) {
        /* Tensors inside an object cellar does not rebuild (an unknown
         * class, or an allowlisted callable with arguments it does not
         * model) cannot be named: the object is reported instead. */
        uint32_t g = opaque_global(pt, n);
        if (holds_tensor(pt, n, 0)) {
            if ((rc = cellar_grow(&pt->bl, &pt->blcap, pt->nbl, sizeof *pt->bl, 4)))
                return rc;
            size_t at = w->names.len;
            if ((rc = cellar_buf_append(&w->names, w->path.data ? w->path.data : "", w->path.len)) ||
                (rc = cellar_buf_append(&w->names, "", 1)))
                return rc;
            pt->bl[pt->nbl++] = (blocked_rec){at, g};
        }
        return 0;
    }
    if (x->kind != K_DICT && x->kind != K_LIST && x->kind != K_TUPLE)
        return 0;
    if (x->has_tensor == 3)
        return 0; /* a cycle */
    uint8_t saved = x->has_tensor;
    x->has_tensor = 3;
    size_t plen = w->path.len;
    uint64_t idx = 0;
    for (uint32_t it = x->head; it != NIL && rc == 0; it = pt->items[it].next) {
        uint32_t val = pt->items[it].val;
        char num[32];
        const char *comp = NULL;
        size_t cl = 0;
        if (x->kind == K_DICT) {
            uint32_t nx = pt->items[it].next;
            if (nx == NIL)
                break;
            const node *k = &pt->nodes[val];
            val = pt->items[nx].val;
            it = nx;
            if (k->kind == K_STR) {
                comp = (const char *)pt->d + k->v.off;
                cl = (size_t)k->len;
            } else if (k->kind == K_INT) {
                cl = (size_t)snprintf(num, sizeof num, "%lld", (long long)k->v.i);
                comp = num;
            } else {
                continue; /* a class-keyed entry (Lightning callbacks): no name */
            }
        } else {
            cl = (size_t)snprintf(num, sizeof num, "%llu", (unsigned long long)idx++);
            comp = num;
        }
        w->path.len = plen;
        if ((plen && (rc = cellar_buf_append(&w->path, ".", 1))) ||
            (rc = cellar_buf_append(&w->path, comp, cl)))
            break;
        rc = flatten(w, val, depth + 1);
    }
    w->path.len = plen;
    pt->nodes[n].has_tensor = saved;
    return rc;
}

/* The value of a str key in a dict (the last one), or NIL. */
static uint32_t dict_get(const cellar_pt *pt, uint32_t dict, const char *key)
{
    uint32_t found = NIL;
    const node *x = &pt->nodes[dict];
    for (uint32_t it = x->head; it != NIL && pt->items[it].next != NIL;
         it = pt->items[pt->items[it].next].next)
        if (str_is(pt, pt->items[it].val, key) && pt->nodes[pt->items[it].val].kind == K_STR)
            found = pt->items[pt->items[it].next].val;
    return found;
}

/* The state dict: a top dict's 'state_dict' when it holds a dict (the HF
 * converter's rule), else the top object. */
static uint32_t state_dict_root(const cellar_pt *pt)
{
    if (pt->nodes[pt->top].kind == K_DICT) {
        uint32_t sd = dict_get(pt, pt->top, "state_dict");
        if (sd != NIL && pt->nodes[sd].kind == K_DICT)
            return sd;
    }
    return pt->top;
}

/* qsort has no context argument in C11: the walk's buffers, for the
 * comparators below (a handle is built on one thread). */
static __thread const char *g_names;
static __thread const cellar_pt *g_pt;
static __thread const flat *g_flat;

static int cmp_flat(const void *a, const void *b)
{
    const flat *x = a, *y = b;
    int c = cellar_st_name_cmp(g_names + x->name, x->name_len, g_names + y->name, y->name_len);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static int cmp_seq(const void *a, const void *b)
{
    const flat *x = a, *y = b;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static bool same_view(const cellar_pt *pt, const tensor_rec *a, const tensor_rec *b)
{
    return a->storage == b->storage && a->tdx == b->tdx && a->offset == b->offset &&
           a->rank == b->rank &&
           !memcmp(pt->dims + a->dims, pt->dims + b->dims, 2 * a->rank * sizeof *pt->dims);
}

/* Checks a view against its storage and fills the public record. */
static int finish_tensor(cellar_pt *pt, cellar_pt_tensor *t, const tensor_rec *r)
{
    const storage_rec *s = &pt->st[r->storage];
    const ptype *ty = &types[r->tdx];
    const uint64_t *shape = pt->dims + r->dims, *stride = shape + r->rank;
    uint64_t nelem = 1, last = r->offset;
    bool overflow = false;
    for (uint32_t k = 0; k < r->rank; k++) {
        overflow |= ck_mul(nelem, shape[k], &nelem);
        if (shape[k]) {
            uint64_t span;
            overflow |= ck_mul(shape[k] - 1, stride[k], &span);
            overflow |= ck_add(last, span, &last);
        }
    }
    uint64_t nbytes = 0, endb = 0;
    overflow |= ck_mul(nelem, (uint64_t)ty->es, &nbytes);
    if (nelem) {
        overflow |= ck_add(last, 1, &endb);
        overflow |= ck_mul(endb, (uint64_t)ty->es, &endb);
    }
    if (overflow)
        return fail_at(pt, CELLAR_EFORMAT, r->at, "tensor '%.*s': size overflows",
                       (int)t->name_len, t->name);
    uint64_t limit = s->pub.numel;
    if (r->view_end != UINT64_MAX && r->view_end < limit)
        limit = r->view_end;
    if (nelem && (endb > s->avail || last >= limit))
        return fail_at(pt, CELLAR_EFORMAT, r->at,
                       "tensor '%.*s' needs %llu bytes of storage '%s', which holds %llu "
                       "(storage shorter than the view)",
                       (int)t->name_len, t->name, (unsigned long long)endb, s->pub.key,
                       (unsigned long long)(s->avail < s->pub.nbytes ? s->avail : s->pub.nbytes));
    t->dtype = ty->st >= 0 ? (cellar_dtype)ty->st : CELLAR_DTYPE__COUNT;
    t->dtype_name = ty->st >= 0 ? cellar_dtype_name((cellar_dtype)ty->st) : ty->torch;
    t->torch_dtype = ty->torch;
    t->rank = r->rank;
    t->shape = shape;
    t->stride = stride;
    t->nelem = nelem;
    t->nbytes = nbytes;
    t->storage_offset = r->offset;
    t->storage = r->storage;
    /* Row-major: each stride is the product of the sizes after it (a
     * dimension of size 1 may have any stride). */
    bool contig = true;
    uint64_t want = 1;
    for (uint32_t k = r->rank; k-- > 0;) {
        if (shape[k] != 1 && stride[k] != want)
            contig = false;
        want *= shape[k];
    }
    t->contiguous = contig || nelem == 0;
    t->offset = s->pub.offset + r->offset * ty->es;
    return 0;
}

/* By view (storage, offset, dtype, shape, strides), then name order. */
static int cmp_view(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const tensor_rec *x = &g_pt->tr[g_flat[i].tensor], *y = &g_pt->tr[g_flat[j].tensor];
    int c = (x->storage > y->storage) - (x->storage < y->storage);
    if (!c)
        c = (x->offset > y->offset) - (x->offset < y->offset);
    if (!c)
        c = (x->tdx > y->tdx) - (x->tdx < y->tdx);
    if (!c)
        c = (x->rank > y->rank) - (x->rank < y->rank);
    if (!c)
        c = memcmp(g_pt->dims + x->dims, g_pt->dims + y->dims, 2 * x->rank * sizeof *g_pt->dims);
    return c ? c : (i > j) - (i < j);
}

static int build_tensors(cellar_pt *pt)
{
    walk w = {.pt = pt};
    cellar_buf_init(&w.names, 0);
    cellar_buf_init(&w.path, 0);
    pt->walk_budget = 4 * (uint64_t)pt->nnodes + 4 * (uint64_t)pt->nitems + (1u << 20);
    int rc = flatten(&w, state_dict_root(pt), 0);
    if (rc)
        goto done;
    /* A duplicate name keeps the last value, in the first one's place... as
     * a Python dict does: the value of the last, the position of the first. */
    g_names = w.names.data;
    if (w.nf) {
        qsort(w.f, w.nf, sizeof *w.f, cmp_flat);
        size_t k = 0;
        for (size_t i = 0; i < w.nf; i++) {
            if (k && w.f[k - 1].name_len == w.f[i].name_len &&
                !memcmp(w.names.data + w.f[k - 1].name, w.names.data + w.f[i].name,
                        w.f[i].name_len)) {
                w.f[k - 1].tensor = w.f[i].tensor;
                pt->ndup++;
                continue;
            }
            w.f[k++] = w.f[i];
        }
        w.nf = k;
    }
    /* Aliases: sort the name-ordered indexes by view; in each run of
     * equal views the smallest index (first name) is canonical. */
    size_t *canon = cellar_calloc(w.nf ? w.nf : 1, sizeof *canon);
    size_t *byview = cellar_calloc(w.nf ? w.nf : 1, sizeof *byview);
    pt->t = cellar_calloc(w.nf ? w.nf : 1, sizeof *pt->t);
    if (!canon || !byview || !pt->t) {
        free(canon);
        free(byview);
        rc = CELLAR_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < w.nf; i++)
        byview[i] = i;
    g_pt = pt;
    g_flat = w.f;
    if (w.nf)
        qsort(byview, w.nf, sizeof *byview, cmp_view);
    for (size_t i = 0; i < w.nf; i++) {
        size_t j = byview[i];
        if (i && same_view(pt, &pt->tr[w.f[byview[i - 1]].tensor], &pt->tr[w.f[j].tensor]))
            canon[j] = canon[byview[i - 1]];
        else
            canon[j] = j;
    }
    free(byview);
    /* Back to walk order; pos maps a name-order index to its final one. */
    size_t *pos = cellar_calloc(w.nf ? w.nf : 1, sizeof *pos);
    if (!pos) {
        free(canon);
        rc = CELLAR_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < w.nf; i++)
        w.f[i].rank = i;
    if (w.nf)
        qsort(w.f, w.nf, sizeof *w.f, cmp_seq);
    for (size_t i = 0; i < w.nf; i++)
        pos[w.f[i].rank] = i;
    pt->names = w.names.data;
    pt->names_len = w.names.len;
    w.names.data = NULL;
    for (size_t i = 0; i < w.nf && rc == 0; i++) {
        cellar_pt_tensor *t = &pt->t[i];
        t->name = pt->names + w.f[i].name;
        t->name_len = w.f[i].name_len;
        rc = finish_tensor(pt, t, &pt->tr[w.f[i].tensor]);
    }
    for (size_t j = 0; j < w.nf; j++)
        pt->t[pos[j]].alias = pos[canon[j]];
    pt->nt = w.nf;
    free(canon);
    free(pos);
    pt->bl_paths = cellar_calloc(pt->nbl ? pt->nbl : 1, sizeof *pt->bl_paths);
    if (!pt->bl_paths && rc == 0)
        rc = CELLAR_ENOMEM;
    for (size_t i = 0; pt->bl_paths && i < pt->nbl; i++)
        pt->bl_paths[i] = pt->names + pt->bl[i].path;
done:
    cellar_buf_free(&w.names);
    cellar_buf_free(&w.path);
    free(w.f);
    return rc;
}

/* ---- opening ---- */

static int compute_hash(cellar_pt *pt);

static int pt_parse(cellar_pt *pt, unsigned flags)
{
    int rc;
    const uint8_t *d = pt->d;
    if (pt->len >= 4 && !memcmp(d, "PK\x03\x04", 4)) {
        rc = open_zip(pt);
    } else if (pt->len >= 8 && !memcmp(d, "PYTORCH1", 8)) {
        return fail_at(pt, CELLAR_EUNSUPPORTED, 0, "a TorchScript file (PYTORCH1)");
    } else if (pt->len >= 262 && !memcmp(d + 257, "ustar", 5)) {
        return fail_at(pt, CELLAR_EUNSUPPORTED, 257, "a torch 0.1 tar checkpoint");
    } else if (legacy_magic_len(d, pt->len)) {
        pt->protocol = d[1];
        rc = legacy_rest(pt);
    } else if (pt->len >= 2 && d[0] == 0x80) {
        size_t end;
        pt->format = "pickle";
        rc = run_pickle(pt, 0, &end, &pt->top, false, NULL);
    } else {
        return fail_at(pt, CELLAR_EFORMAT, 0,
                       "not a PyTorch checkpoint (no zip, legacy or pickle header)");
    }
    if (rc == 0)
        rc = build_tensors(pt);
    if (rc == 0)
        rc = compute_hash(pt);
    if (rc && (flags & CELLAR_PT_KEEP_GOING) && rc != CELLAR_ENOMEM) {
        pt->problem = cellar_strdup(cellar_error_last());
        if (!pt->problem)
            return CELLAR_ENOMEM;
        cellar_error_clear();
        if (pt->in_pickle)
            scan_globals(pt, pt->scan_from, pt->scan_lim);
        free(pt->t);
        pt->t = NULL;
        pt->nt = 0;
        pt->nbl = 0;
        return 0;
    }
    return rc;
}

static int pt_new(cellar_pt **out, const char *label)
{
    cellar_pt *pt = cellar_calloc(1, sizeof *pt);
    if (!pt)
        return CELLAR_ENOMEM;
    pt->fd = -1;
    pt->top = NIL;
    pt->format = "pickle";
    if (!(pt->label = cellar_strdup(label ? label : "<buffer>"))) {
        free(pt);
        return CELLAR_ENOMEM;
    }
    *out = pt;
    return 0;
}

static int pt_finish(cellar_pt **out, cellar_pt *pt, unsigned flags)
{
    int rc = pt_parse(pt, flags);
    /* The interpreter's scratch is not needed any more. */
    free(pt->stack);
    free(pt->marks);
    free(pt->memo);
    pt->stack = NULL;
    pt->marks = NULL;
    pt->memo = NULL;
    if (rc) {
        cellar_pt_free(pt);
        return rc;
    }
    *out = pt;
    return 0;
}

int cellar_pt_open_buffer(cellar_pt **out, const void *data, size_t len, const char *label,
                          unsigned flags)
{
    RETURN_ERROR_IF(!out || (!data && len), CELLAR_EINVAL, "cellar_pt_open_buffer: bad argument");
    *out = NULL;
    cellar_pt *pt;
    int rc = pt_new(&pt, label);
    if (rc)
        return rc;
    pt->d = data ? data : (const uint8_t *)"";
    pt->len = len;
    return pt_finish(out, pt, flags);
}

int cellar_pt_open(cellar_pt **out, const char *path, unsigned flags)
{
    RETURN_ERROR_IF(!out || !path, CELLAR_EINVAL, "cellar_pt_open: bad argument");
    *out = NULL;
    cellar_pt *pt;
    int rc = pt_new(&pt, path);
    if (rc)
        return rc;
    pt->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (pt->fd < 0) {
        rc = cellar_fail_errno(errno, "%s: cannot open", path);
        cellar_pt_free(pt);
        return rc;
    }
    struct stat st;
    if (fstat(pt->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = cellar_fail(CELLAR_EINVAL, "%s: not a regular file", path);
        cellar_pt_free(pt);
        return rc;
    }
    if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, pt->fd, 0);
        if (m == MAP_FAILED) {
            rc = cellar_fail_errno(errno, "%s: cannot map", path);
            cellar_pt_free(pt);
            return rc;
        }
        pt->map = m;
        pt->map_len = (size_t)st.st_size;
    }
    pt->d = pt->map ? pt->map : (const uint8_t *)"";
    pt->len = pt->map_len;
    return pt_finish(out, pt, flags);
}

void cellar_pt_free(cellar_pt *pt)
{
    if (!pt)
        return;
    if (pt->map)
        munmap(pt->map, pt->map_len);
    if (pt->fd >= 0)
        close(pt->fd);
    for (size_t i = 0; i < pt->ng; i++) {
        free(pt->g[i].module);
        free(pt->g[i].name);
    }
    for (size_t i = 0; i < pt->nst; i++) {
        free((char *)pt->st[i].pub.key);
        free((char *)pt->st[i].pub.location);
    }
    free(pt->g);
    free(pt->gpub);
    free(pt->ghash);
    free(pt->st);
    free(pt->sth);
    free(pt->views);
    free(pt->tr);
    free(pt->dims);
    free(pt->z);
    free(pt->t);
    free(pt->names);
    free(pt->bl);
    free(pt->bl_paths);
    free(pt->nodes);
    free(pt->items);
    free(pt->stack);
    free(pt->marks);
    free(pt->memo);
    free(pt->problem);
    free(pt->label);
    free(pt);
}

/* Whether a zip entry name is a torch record: <root>/<record>. */
static bool torch_record(const char *name, size_t len)
{
    static const char *const recs[] = {"data.pkl",  "constants.pkl", "version",
                                       ".data/version", ".format_version", "byteorder",
                                       ".storage_alignment", NULL};
    const char *slash = memchr(name, '/', len);
    if (!slash)
        return false;
    const char *r = slash + 1;
    size_t rl = len - (size_t)(r - name);
    for (const char *const *x = recs; *x; x++)
        if (eq(r, rl, *x))
            return true;
    return rl > 5 && !memcmp(r, "data/", 5);
}

int cellar_pt_sniff(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    uint8_t head[30 + 64] = {0};
    ssize_t n = cellar_full_read(fd, head, sizeof head);
    close(fd);
    /* A safetensors header of 640..1535 bytes also starts 80 02..05: its
     * u64 length is small and its JSON opens at byte 8. */
    if (n >= 9 && head[8] == '{' && rd64(head) <= CELLAR_ST_MAX_HEADER)
        return 0;
    if (n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5)
        return 1;
    if (n < 30 || memcmp(head, "PK\x03\x04", 4))
        return 0;
    /* torch writes a record first (data.pkl, or .format_version in 2.x):
     * enough even for a damaged archive, so that its error is the torch
     * reader's. Otherwise, any record named in the central directory. */
    size_t nl = rd16(head + 26);
    if (30 + nl <= (size_t)n && torch_record((const char *)head + 30, nl))
        return 1;
    int err = cellar_error_code();
    cellar_pt *pt;
    int yes = 0;
    if (pt_new(&pt, path) == 0) {
        if (cellar_map_file(&pt->map, &pt->map_len, path) == 0) {
            pt->d = pt->map ? pt->map : (const uint8_t *)"";
            pt->len = pt->map_len;
            if (zip_read(pt) == 0)
                for (size_t i = 0; i < pt->nz && !yes; i++)
                    yes = torch_record(pt->z[i].name, pt->z[i].name_len);
        }
        cellar_pt_free(pt);
    }
    if (!err)
        cellar_error_clear();
    return yes;
}

const char *cellar_pt_format(const cellar_pt *pt) { return pt ? pt->format : NULL; }
unsigned cellar_pt_protocol(const cellar_pt *pt) { return pt ? pt->protocol : 0; }
const char *cellar_pt_problem(const cellar_pt *pt) { return pt ? pt->problem : NULL; }
const char *cellar_pt_label(const cellar_pt *pt) { return pt ? pt->label : NULL; }
int cellar_pt_fd(const cellar_pt *pt) { return pt ? pt->fd : -1; }
size_t cellar_pt_count(const cellar_pt *pt) { return pt ? pt->nt : 0; }

const cellar_pt_tensor *cellar_pt_tensor_at(const cellar_pt *pt, size_t i)
{
    return pt && i < pt->nt ? &pt->t[i] : NULL;
}

size_t cellar_pt_storage_count(const cellar_pt *pt) { return pt ? pt->nst : 0; }

const cellar_pt_storage *cellar_pt_storage_at(const cellar_pt *pt, size_t i)
{
    return pt && i < pt->nst ? &pt->st[i].pub : NULL;
}

size_t cellar_pt_global_count(const cellar_pt *pt) { return pt ? pt->ng : 0; }

const cellar_pt_global *cellar_pt_global_at(const cellar_pt *pt, size_t i)
{
    return pt && i < pt->ng ? &pt->gpub[i] : NULL;
}

size_t cellar_pt_dangerous_count(const cellar_pt *pt)
{
    size_t n = 0;
    for (size_t i = 0; pt && i < pt->ng; i++)
        n += pt->gpub[i].cls == CELLAR_PT_DANGEROUS;
    return n;
}

size_t cellar_pt_blocked_count(const cellar_pt *pt) { return pt ? pt->nbl : 0; }
size_t cellar_pt_duplicate_count(const cellar_pt *pt) { return pt ? pt->ndup : 0; }

int cellar_pt_blocked_at(const cellar_pt *pt, size_t i, const char **path,
                         const cellar_pt_global **global)
{
    RETURN_ERROR_IF(!pt || i >= pt->nbl, CELLAR_EINVAL, "cellar_pt_blocked_at: bad index");
    *path = pt->bl_paths[i];
    *global = pt->bl[i].global == NIL ? NULL : &pt->gpub[pt->bl[i].global];
    return 0;
}

/* ---- tensor data ---- */

/* Copies the elements of dims [k, rank) starting at element e. */
static void gather(uint8_t **out, const uint8_t *base, const cellar_pt_tensor *t, size_t k,
                   uint64_t e, size_t es, size_t run_dim, uint64_t run)
{
    if (k == run_dim) {
        memcpy(*out, base + e * es, (size_t)(run * es));
        *out += run * es;
        return;
    }
    for (uint64_t i = 0; i < t->shape[k]; i++)
        gather(out, base, t, k + 1, e + i * t->stride[k], es, run_dim, run);
}

int cellar_pt_read(void *out, size_t out_len, const cellar_pt *pt, size_t i)
{
    RETURN_ERROR_IF(!pt || i >= pt->nt, CELLAR_EINVAL, "cellar_pt_read: no tensor %zu", i);
    const cellar_pt_tensor *t = &pt->t[i];
    RETURN_ERROR_IF(out_len < t->nbytes, CELLAR_EINVAL,
                    "cellar_pt_read: %zu bytes of room for %llu", out_len,
                    (unsigned long long)t->nbytes);
    if (!t->nelem)
        return 0;
    const cellar_pt_storage *s = &pt->st[t->storage].pub;
    size_t es = (size_t)(t->nbytes / t->nelem);
    if (t->contiguous) {
        memcpy(out, pt->d + t->offset, (size_t)t->nbytes);
        return 0;
    }
    /* The innermost dimensions that are row-major among themselves are
     * copied as one run. */
    size_t run_dim = t->rank;
    uint64_t run = 1;
    while (run_dim > 0 && (t->shape[run_dim - 1] == 1 || t->stride[run_dim - 1] == run)) {
        run *= t->shape[run_dim - 1];
        run_dim--;
    }
    uint8_t *o = out;
    gather(&o, pt->d + s->offset, t, 0, t->storage_offset, es, run_dim, run);
    return 0;
}

/* ---- structural hash ---- */

typedef struct sent {
    const char *s;
    size_t len;
} sent;

static int cmp_sent(const void *a, const void *b)
{
    const sent *x = a, *y = b;
    return cellar_st_name_cmp(x->s, x->len, y->s, y->len);
}

static int md5_hex(char out[33], const char *s, size_t len)
{
    cellar_hasher *h;
    int rc = cellar_hasher_new(&h, CELLAR_ALGO_BIT(CELLAR_ALGO_MD5), UINT64_MAX);
    if (rc)
        return rc;
    cellar_hasher_update(h, s, len);
    cellar_digests dg;
    if ((rc = cellar_hasher_final(&dg, h)) == 0) cellar_digest_hex(out, &dg, CELLAR_ALGO_MD5);
    cellar_hasher_free(h);
    return rc;
}

static int shape_text(cellar_buf *b, const cellar_pt *pt, const tensor_rec *r)
{
    int rc = 0;
    for (uint32_t k = 0; k < r->rank && rc == 0; k++)
        rc = cellar_buf_printf(b, k ? "_%llu" : "%llu", (unsigned long long)pt->dims[r->dims + k]);
    return rc;
}

struct kvent {
    sent k;
    uint32_t v;
    size_t pos;
};

static int cmp_kvent(const void *a, const void *b)
{
    const struct kvent *x = a, *y = b;
    int c = cmp_sent(&x->k, &y->k);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* DiffSynth's convert_keys_dict_to_single_str of a dict into out; *bad
 * gets a reason when DiffSynth would crash on it. */
static int ds_string(cellar_pt *pt, uint32_t dict, cellar_buf *out, char *bad, size_t badlen,
                     unsigned depth)
{
    const node *x = &pt->nodes[dict];
    if (depth > PT_MAX_DEPTH)
        return fail_at(pt, CELLAR_EFORMAT, 0, "state dict nested deeper than %u", PT_MAX_DEPTH);
    if (x->has_tensor == 3) {
        snprintf(bad, badlen, "the state dict contains itself");
        return 0;
    }
    /* Last value wins per key: collect (key, value) with str keys, sort by
     * key then position, keep the last of each key. */
    size_t n = x->count / 2;
    struct kvent *kv = cellar_calloc(n ? n : 1, sizeof *kv);
    cellar_buf text;
    cellar_buf_init(&text, 0);
    size_t *starts = cellar_calloc(2 * n + 1, sizeof *starts);
    sent *ents = cellar_calloc(2 * n + 1, sizeof *ents);
    int rc = kv && starts && ents ? 0 : CELLAR_ENOMEM;
    size_t m = 0;
    for (uint32_t it = x->head; rc == 0 && it != NIL && pt->items[it].next != NIL;
         it = pt->items[pt->items[it].next].next) {
        const node *k = &pt->nodes[pt->items[it].val];
        uint32_t v = pt->items[pt->items[it].next].val;
        uint8_t vk = pt->nodes[v].kind;
        if (vk != K_TENSOR && vk != K_DICT && !bad[0])
            snprintf(bad, badlen, "a value is a %s, neither tensor nor dict", kind_name(vk));
        if ((rc = walk_step(pt, 0)))
            break;
        if (k->kind != K_STR) {
            /* Skipped in the string, but DiffSynth still recurses into it. */
            if (vk == K_DICT) {
                cellar_buf sub;
                cellar_buf_init(&sub, 0);
                pt->nodes[dict].has_tensor = 3;
                rc = ds_string(pt, v, &sub, bad, badlen, depth + 1);
                pt->nodes[dict].has_tensor = 0;
                cellar_buf_free(&sub);
            }
            continue;
        }
        kv[m] = (struct kvent){{(const char *)pt->d + k->v.off, (size_t)k->len}, v, m};
        m++;
    }
    if (rc == 0 && m) {
        /* By key, then position (unique): the last of equal keys wins. */
        size_t *ord = starts;
        qsort(kv, m, sizeof *kv, cmp_kvent);
        for (size_t i = 0; i < m; i++)
            ord[i] = i;
        size_t ne = 0;
        size_t *beg = cellar_calloc(2 * m + 1, sizeof *beg);
        if (!beg)
            rc = CELLAR_ENOMEM;
        for (size_t oi = 0; rc == 0 && oi < m; oi++) {
            const struct kvent *e = &kv[ord[oi]];
            if (oi + 1 < m && !cmp_sent(&e->k, &kv[ord[oi + 1]].k))
                continue; /* a later value of this key wins */
            uint8_t vk = pt->nodes[e->v].kind;
            if (vk == K_TENSOR) {
                beg[ne++] = text.len;
                if ((rc = cellar_buf_append(&text, e->k.s, e->k.len)) ||
                    (rc = cellar_buf_append(&text, ":", 1)) ||
                    (rc = shape_text(&text, pt, &pt->tr[pt->nodes[e->v].v.p.a])))
                    break;
                beg[ne++] = text.len;
                rc = cellar_buf_append(&text, e->k.s, e->k.len);
            } else if (vk == K_DICT) {
                beg[ne++] = text.len;
                if ((rc = cellar_buf_append(&text, e->k.s, e->k.len)) ||
                    (rc = cellar_buf_append(&text, "|", 1)))
                    break;
                pt->nodes[dict].has_tensor = 3;
                rc = ds_string(pt, e->v, &text, bad, badlen, depth + 1);
                pt->nodes[dict].has_tensor = 0;
            }
        }
        for (size_t i = 0; rc == 0 && i < ne; i++) {
            size_t end = i + 1 < ne ? beg[i + 1] : text.len;
            ents[i] = (sent){(const char *)(uintptr_t)beg[i], end - beg[i]};
        }
        for (size_t i = 0; rc == 0 && i < ne; i++)
            ents[i].s = text.data + (size_t)(uintptr_t)ents[i].s;
        if (rc == 0 && ne)
            qsort(ents, ne, sizeof *ents, cmp_sent);
        for (size_t i = 0; rc == 0 && i < ne; i++)
            if ((i && (rc = cellar_buf_append(out, ",", 1))) ||
                (rc = cellar_buf_append(out, ents[i].s, ents[i].len)))
                break;
        free(beg);
    }
    free(kv);
    free(starts);
    free(ents);
    cellar_buf_free(&text);
    return rc;
}

/* Both hashes, computed once at open (the walk marks nodes, and a handle
 * must be read-only afterwards). A DiffSynth walk that breaks a bound is a
 * reason DiffSynth fails, not an error of the file. */
static int compute_hash(cellar_pt *pt)
{
    cellar_pt_hash *out = &pt->hash;
    memset(out, 0, sizeof *out);
    /* The state dict's tensors, as for a safetensors file. */
    sent *e = cellar_calloc(2 * pt->nt + 1, sizeof *e);
    cellar_buf text, joined;
    cellar_buf_init(&text, 0);
    cellar_buf_init(&joined, 0);
    int rc = e ? 0 : CELLAR_ENOMEM;
    size_t *beg = cellar_calloc(pt->nt + 1, sizeof *beg);
    if (!beg)
        rc = CELLAR_ENOMEM;
    for (size_t i = 0; rc == 0 && i < pt->nt; i++) {
        const cellar_pt_tensor *t = &pt->t[i];
        beg[i] = text.len;
        if ((rc = cellar_buf_append(&text, t->name, t->name_len)) ||
            (rc = cellar_buf_append(&text, ":", 1)))
            break;
        for (size_t k = 0; k < t->rank && rc == 0; k++)
            rc = cellar_buf_printf(&text, k ? "_%llu" : "%llu", (unsigned long long)t->shape[k]);
    }
    for (size_t i = 0; rc == 0 && i < pt->nt; i++) {
        size_t end = i + 1 < pt->nt ? beg[i + 1] : text.len;
        e[2 * i] = (sent){text.data + beg[i], end - beg[i]};
        e[2 * i + 1] = (sent){pt->t[i].name, pt->t[i].name_len};
    }
    if (rc == 0 && pt->nt)
        qsort(e, 2 * pt->nt, sizeof *e, cmp_sent);
    for (size_t i = 0; rc == 0 && i < 2 * pt->nt; i++)
        if ((i && (rc = cellar_buf_append(&joined, ",", 1))) ||
            (rc = cellar_buf_append(&joined, e[i].s, e[i].len)))
            break;
    if (rc == 0)
        rc = md5_hex(out->state_dict, joined.data ? joined.data : "", joined.len);
    free(e);
    free(beg);
    cellar_buf_free(&text);

    /* DiffSynth 2.x: torch.load(weights_only=True), one-key unwrap, then
     * "key|..." nesting. */
    joined.len = 0;
    char bad[200] = "";
    if (rc == 0) {
        uint32_t root = pt->top;
        if (pt->wo_problem[0]) {
            snprintf(bad, sizeof bad, "%s", pt->wo_problem);
        } else if (pt->nodes[root].kind != K_DICT) {
            snprintf(bad, sizeof bad, "the top object is a %s, not a dict",
                     kind_name(pt->nodes[root].kind));
        } else {
            const node *x = &pt->nodes[root];
            if (x->count == 2) {
                static const char *const wrap[] = {"state_dict", "module", "model_state"};
                for (int w = 0; w < 3; w++) {
                    uint32_t v = dict_get(pt, root, wrap[w]);
                    if (v != NIL) {
                        root = v;
                        break;
                    }
                }
            }
            if (pt->nodes[root].kind != K_DICT)
                snprintf(bad, sizeof bad, "the state dict is a %s, not a dict",
                         kind_name(pt->nodes[root].kind));
            else {
                pt->walk_budget = 4 * (uint64_t)pt->nnodes + 4 * (uint64_t)pt->nitems + (1u << 20);
                rc = ds_string(pt, root, &joined, bad, sizeof bad, 0);
            }
        }
    }
    if (rc == CELLAR_EFORMAT) {
        snprintf(bad, sizeof bad, "%s", cellar_error_last());
        cellar_error_clear();
        rc = 0;
    }
    if (rc == 0 && bad[0])
        snprintf(out->problem, sizeof out->problem, "DiffSynth would fail: %s", bad);
    else if (rc == 0)
        rc = md5_hex(out->diffsynth, joined.data ? joined.data : "", joined.len);
    cellar_buf_free(&joined);
    return rc;
}

int cellar_pt_structural_hash(cellar_pt_hash *out, const cellar_pt *pt)
{
    RETURN_ERROR_IF(!out || !pt, CELLAR_EINVAL, "cellar_pt_structural_hash: bad argument");
    memset(out, 0, sizeof *out);
    RETURN_ERROR_IF(pt->problem, CELLAR_EFORMAT, "%s", pt->problem);
    *out = pt->hash;
    return 0;
}
