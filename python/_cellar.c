/* cellar._cellar: the CPython binding of libcellar's public API (no ctypes,
 * no Cython). The pure-Python package python/cellar/ builds the user-facing
 * names on it. Only include/cellar.h is used. Environment variables are
 * read by the Python layer and passed in explicitly.
 *
 * Model: an open cellar_model. Buffer: one file's private copy-on-write
 * mapping exported through the buffer protocol (writable), holding the
 * Model alive for as long as any consumer (torch.frombuffer, numpy) keeps
 * the export. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "cellar.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

static PyObject *CellarError, *CellarNotFound;

/* Raises the library's last error (code and message). */
static PyObject *raise_cellar(int rc)
{
    const char *msg = cellar_error_last();
    if (!msg || !*msg)
        msg = cellar_error_name(rc);
    PyObject *type = rc == CELLAR_ENOTFOUND ? CellarNotFound : CellarError;
    if (rc == CELLAR_ENOMEM)
        return PyErr_NoMemory();
    PyObject *exc = PyObject_CallFunction(type, "s", msg);
    if (!exc)
        return NULL;
    PyObject *code = PyLong_FromLong(rc);
    if (code) {
        PyObject_SetAttrString(exc, "code", code);
        Py_DECREF(code);
    }
    PyObject *name = PyUnicode_FromString(cellar_error_name(rc));
    if (name) {
        PyObject_SetAttrString(exc, "error", name);
        Py_DECREF(name);
    }
    PyErr_SetObject(type, exc);
    Py_DECREF(exc);
    return NULL;
}

/* ---- callbacks: exceptions and Ctrl-C ------------------------------------- */

/* The state of one library call's callbacks. The library calls back with
 * the GIL released, on the calling thread or on its workers. A callback
 * takes the GIL when it has something to do: run the user's callable, or,
 * on the main thread (the only one Python runs signal handlers on), check
 * for a pending signal now and then. The first exception either raises is
 * kept and every callback from then on answers non-zero, so the operation
 * stops cleanly with CELLAR_EUSER; call_end() then raises that exception,
 * not a CellarError. */
typedef struct call_ctx {
    PyObject *fn;         /* borrowed; NULL: signal checks only */
    PyObject *exc;        /* the first exception raised (GIL) */
    int stop;             /* atomic: exc is set */
    struct timespec last; /* the main thread's last signal check */
} call_ctx;

static unsigned long main_thread_ident;

#define SIGNAL_CHECK_NS 50000000L /* Ctrl-C answered within about 50 ms */

/* Holds the GIL. */
static void exc_keep(call_ctx *c)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *e = PyErr_GetRaisedException();
#else
    PyObject *t, *e, *tb;
    PyErr_Fetch(&t, &e, &tb);
    PyErr_NormalizeException(&t, &e, &tb);
    if (e && tb)
        PyException_SetTraceback(e, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
#endif
    if (!c->exc)
        c->exc = e;
    else
        Py_XDECREF(e);
    __atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
}

static int signal_check_due(call_ctx *c)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ns = (now.tv_sec - c->last.tv_sec) * 1000000000L + (now.tv_nsec - c->last.tv_nsec);
    if (c->last.tv_sec && ns < SIGNAL_CHECK_NS)
        return 0;
    c->last = now;
    return 1;
}

/* One callback from the library. call (may be NULL) passes the event to
 * c->fn with the GIL held and returns 0, or -1 with an exception set.
 * Returns non-zero to stop the operation. */
static int cb_run(call_ctx *c, int (*call)(PyObject *fn, const void *ev), const void *ev)
{
    if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
        return 1;
    int on_main = PyThread_get_thread_ident() == main_thread_ident;
    if (!(c->fn && call) && !(on_main && signal_check_due(c)))
        return 0;
    PyGILState_STATE g = PyGILState_Ensure();
    /* Another thread may have kept an exception while this one waited for
     * the GIL: the user's callable is not called again after it. */
    if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        PyGILState_Release(g);
        return 1;
    }
    int failed = on_main && PyErr_CheckSignals() != 0;
    if (!failed && c->fn && call)
        failed = call(c->fn, ev) != 0;
    if (failed)
        exc_keep(c);
    PyGILState_Release(g);
    return failed;
}

static int on_ready(size_t item, void *ctx)
{
    (void)item;
    return cb_run(ctx, NULL, NULL);
}

static int on_progress(const cellar_progress *p, void *ctx)
{
    (void)p;
    return cb_run(ctx, NULL, NULL);
}

/* After the library call returned rc, with the GIL: raises the callback's
 * exception if one stopped it (or came at the very end), else the library's
 * error. Returns 0, or -1 with an exception set. */
static int call_end(call_ctx *c, int rc)
{
    if (c->exc) {
        cellar_error_clear();
#if PY_VERSION_HEX >= 0x030C0000
        PyErr_SetRaisedException(c->exc);
#else
        PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(c->exc)), c->exc,
                      PyException_GetTraceback(c->exc));
#endif
        c->exc = NULL;
        return -1;
    }
    if (rc) {
        raise_cellar(rc);
        return -1;
    }
    return 0;
}

static int parse_dtype(cellar_dtype *out, PyObject *o)
{
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(o, &len);
    if (!s)
        return -1;
    if (cellar_dtype_parse(out, s, (size_t)len) != 0) {
        PyErr_Format(PyExc_ValueError, "unknown dtype '%s'", s);
        return -1;
    }
    return 0;
}

/* Fills slot (one element of the array seq_array() makes) from item;
 * objects the slot points into go to keep (a list, NULL when the caller
 * asked for none). Returns 0, or -1 with an exception set. */
typedef int (*item_fn)(PyObject *item, void *slot, PyObject *keep, const void *ctx);

/* The items of any sequence as a PyMem array of *n elements of elsize (and
 * one zeroed past the end), each filled by conv(item, slot, list, ctx).
 * With keep, *keep gets the list holding what the slots point into, to be
 * dropped after the array. NULL with an exception set on failure. */
static void *seq_array(PyObject *seq, const char *what, size_t elsize, item_fn conv,
                       const void *ctx, PyObject **keep, size_t *n)
{
    PyObject *fast = PySequence_Fast(seq, what);
    if (!fast)
        return NULL;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(fast);
    char *v = PyMem_Calloc((size_t)len + 1, elsize);
    PyObject *list = keep ? PyList_New(0) : NULL;
    int ok = v && (list || !keep);
    if (!ok)
        PyErr_NoMemory();
    for (Py_ssize_t i = 0; ok && i < len; i++)
        ok = conv(PySequence_Fast_GET_ITEM(fast, i), v + (size_t)i * elsize, list, ctx) == 0;
    Py_DECREF(fast);
    if (!ok) {
        PyMem_Free(v);
        Py_XDECREF(list);
        return NULL;
    }
    if (keep)
        *keep = list;
    *n = (size_t)len;
    return v;
}

/* "O&" converter: a str, bytes or os.PathLike, or None (NULL), to bytes in
 * the file-system encoding; cleans up after a later argument fails. */
static int fs_path_or_none(PyObject *o, void *out)
{
    if (o == Py_None) {
        *(PyObject **)out = NULL;
        return 1;
    }
    return PyUnicode_FSConverter(o, out);
}

/* A path of the file system into *slot, its bytes kept alive in keep. */
static int keep_path(PyObject *o, const char **slot, PyObject *keep)
{
    PyObject *b = NULL;
    if (!PyUnicode_FSConverter(o, &b) || PyList_Append(keep, b) != 0) {
        Py_XDECREF(b);
        return -1;
    }
    *slot = PyBytes_AS_STRING(b);
    Py_DECREF(b);
    return 0;
}

static int path_item(PyObject *item, void *slot, PyObject *keep, const void *ctx)
{
    (void)ctx;
    return keep_path(item, slot, keep);
}

/* const char *[] from any sequence of str / os.PathLike; the strings live
 * in *keep. */
static const char **path_array(PyObject *seq, PyObject **keep, size_t *n)
{
    return seq_array(seq, "expected a sequence of paths", sizeof(const char *), path_item, NULL,
                     keep, n);
}

/* A list of n str in the file-system encoding, the i-th at(arr, i). */
static PyObject *fs_list(size_t n, const char *(*at)(const void *arr, size_t i), const void *arr)
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *str = PyUnicode_DecodeFSDefault(at(arr, i));
        if (!str) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, str);
    }
    return list;
}

static PyObject *str_from(const char *s, size_t len)
{
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "surrogateescape");
}

/* ---- Model ---------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    cellar_model *m;
} ModelObject;

typedef struct {
    PyObject_HEAD
    ModelObject *model; /* strong */
    void *base;
    size_t len;
    Py_ssize_t exports;
} BufferObject;

static PyTypeObject ModelType, BufferType;

static void Model_dealloc(ModelObject *self)
{
    cellar_model_free(self->m);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Model(paths, *, dduf=None, component=None, last_wins=False) */
static int Model_init(ModelObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"paths", "dduf", "component", "last_wins", "allow_unknown", NULL};
    PyObject *paths = Py_None, *dduf = NULL;
    const char *component = NULL;
    int last_wins = 0, allow_unknown = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O$O&zpp", kwlist, &paths, fs_path_or_none,
                                     &dduf, &component, &last_wins, &allow_unknown))
        return -1;
    cellar_ref *ref = NULL;
    int rc = 0;
    PyObject *keep = NULL;
    const char **v = NULL;
    size_t n;
    if (self->m)
        PyErr_SetString(PyExc_RuntimeError, "Model already open");
    else if (dduf)
        rc = cellar_ref_dduf(&ref, PyBytes_AS_STRING(dduf), component ? component : "");
    else if ((v = path_array(paths, &keep, &n)) != NULL)
        rc = cellar_ref_files(&ref, v, n);
    PyMem_Free(v);
    Py_XDECREF(dduf);
    if (rc)
        raise_cellar(rc);
    if (!ref) {
        Py_XDECREF(keep);
        return -1;
    }
    cellar_model_opts o = CELLAR_MODEL_OPTS_INIT;
    o.flags = (last_wins ? CELLAR_MODEL_LAST_WINS : 0) |
              (allow_unknown ? CELLAR_MODEL_ALLOW_UNKNOWN : 0);
    cellar_model *m = NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = cellar_model_open(&m, ref, &o);
    Py_END_ALLOW_THREADS
    cellar_ref_free(ref);
    Py_XDECREF(keep);
    if (rc) {
        raise_cellar(rc);
        return -1;
    }
    self->m = m;
    return 0;
}

static int model_ready(ModelObject *self)
{
    if (!self->m) {
        PyErr_SetString(PyExc_ValueError, "Model not open");
        return 0;
    }
    return 1;
}

static PyObject *tensor_tuple(const cellar_model_tensor *t)
{
    PyObject *shape = PyTuple_New((Py_ssize_t)t->rank);
    if (!shape)
        return NULL;
    for (size_t k = 0; k < t->rank; k++) {
        PyObject *d = PyLong_FromUnsignedLongLong(t->shape[k]);
        if (!d) {
            Py_DECREF(shape);
            return NULL;
        }
        PyTuple_SET_ITEM(shape, (Py_ssize_t)k, d);
    }
    PyObject *name = str_from(t->name, t->name_len);
    if (!name) {
        Py_DECREF(shape);
        return NULL;
    }
    return Py_BuildValue("(NsNKnK)", name, cellar_dtype_name(t->dtype), shape,
                         (unsigned long long)t->nbytes, (Py_ssize_t)t->file,
                         (unsigned long long)t->offset);
}

/* infos() -> [(name, dtype, shape, nbytes, file, offset)], sorted by name */
static PyObject *Model_infos(ModelObject *self, PyObject *unused)
{
    (void)unused;
    if (!model_ready(self))
        return NULL;
    size_t n = cellar_model_count(self->m);
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (!list)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *t = tensor_tuple(cellar_model_tensor_at(self->m, i));
        if (!t) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return list;
}

/* find(name) -> index or -1 */
static PyObject *Model_find(ModelObject *self, PyObject *arg)
{
    if (!model_ready(self))
        return NULL;
    Py_ssize_t len;
    PyObject *b = PyUnicode_AsEncodedString(arg, "utf-8", "surrogateescape");
    if (!b)
        return NULL;
    const char *s = PyBytes_AS_STRING(b);
    len = PyBytes_GET_SIZE(b);
    size_t idx;
    int rc = cellar_model_find(&idx, self->m, s, (size_t)len);
    Py_DECREF(b);
    if (rc) {
        cellar_error_clear();
        return PyLong_FromLong(-1);
    }
    return PyLong_FromSize_t(idx);
}

static const char *model_file_at(const void *m, size_t i)
{
    return cellar_model_file_path(m, i);
}

static PyObject *Model_files(ModelObject *self, PyObject *unused)
{
    (void)unused;
    if (!model_ready(self))
        return NULL;
    return fs_list(cellar_model_nfiles(self->m), model_file_at, self->m);
}

/* An open model's file index from a Python int into *out. */
static int file_index(ModelObject *self, PyObject *o, size_t *out)
{
    if (!model_ready(self))
        return -1;
    Py_ssize_t i = PyLong_AsSsize_t(o);
    if (i == -1 && PyErr_Occurred())
        return -1;
    if (i < 0 || (size_t)i >= cellar_model_nfiles(self->m)) {
        PyErr_SetString(PyExc_IndexError, "file index out of range");
        return -1;
    }
    *out = (size_t)i;
    return 0;
}

/* metadata(file) -> dict, or None when the file has no __metadata__ */
static PyObject *Model_metadata(ModelObject *self, PyObject *arg)
{
    size_t i;
    if (file_index(self, arg, &i) != 0)
        return NULL;
    cellar_st *st = cellar_model_file_st(self->m, i);
    if (!st) /* a PyTorch checkpoint */
        Py_RETURN_NONE;
    size_t n = cellar_st_metadata_count(st);
    if (!n)
        Py_RETURN_NONE;
    PyObject *d = PyDict_New();
    for (size_t k = 0; d && k < n; k++) {
        const char *key, *val;
        size_t kl, vl;
        cellar_st_metadata_at(&key, &kl, &val, &vl, st, k);
        PyObject *ko = str_from(key, kl), *vo = str_from(val, vl);
        if (!ko || !vo || PyDict_SetItem(d, ko, vo) != 0) {
            Py_XDECREF(ko);
            Py_XDECREF(vo);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(ko);
        Py_DECREF(vo);
    }
    return d;
}

/* buffer(file) -> Buffer over the file's whole private mapping */
static PyObject *Model_buffer(ModelObject *self, PyObject *arg)
{
    size_t i;
    void *base;
    size_t len;
    if (file_index(self, arg, &i) != 0)
        return NULL;
    int rc = cellar_model_file_map(&base, &len, self->m, i);
    if (rc)
        return raise_cellar(rc);
    BufferObject *b = PyObject_New(BufferObject, &BufferType);
    if (!b)
        return NULL;
    Py_INCREF(self);
    b->model = self;
    b->base = base;
    b->len = len;
    b->exports = 0;
    return (PyObject *)b;
}

/* A tensor index of the model ctx from a Python int into *out. */
static int tensor_index(const cellar_model *m, PyObject *o, size_t *out)
{
    Py_ssize_t x = PyLong_AsSsize_t(o);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (x < 0 || (size_t)x >= cellar_model_count(m)) {
        PyErr_SetString(PyExc_IndexError, "tensor index out of range");
        return -1;
    }
    *out = (size_t)x;
    return 0;
}

static int index_item(PyObject *item, void *slot, PyObject *keep, const void *ctx)
{
    (void)keep;
    return tensor_index(ctx, item, slot);
}

/* (index, address, dtype) */
static int read_item(PyObject *item, void *slot, PyObject *keep, const void *ctx)
{
    (void)keep;
    cellar_read_item *r = slot;
    PyObject *index, *dt;
    unsigned long long addr;
    if (!PyArg_ParseTuple(item, "OKO", &index, &addr, &dt) || parse_dtype(&r->dtype, dt) != 0 ||
        tensor_index(ctx, index, &r->tensor) != 0)
        return -1;
    r->dst = (void *)(uintptr_t)addr;
    return 0;
}

/* populate and read_into: the list as an array, then the load across
 * threads with the GIL released and Ctrl-C heard. */
static PyObject *model_load(ModelObject *self, PyObject *args, PyObject *kw, int read)
{
    static char *kw_populate[] = {"indices", "nthreads", NULL};
    static char *kw_read[] = {"items", "nthreads", NULL};
    PyObject *items = Py_None;
    unsigned nthreads = 0;
    if (!model_ready(self) ||
        !PyArg_ParseTupleAndKeywords(args, kw, read ? "O|I" : "|OI",
                                     read ? kw_read : kw_populate, &items, &nthreads))
        return NULL;
    void *v = NULL;
    size_t n = 0;
    if (read)
        v = seq_array(items, "expected a sequence of (index, address, dtype)",
                      sizeof(cellar_read_item), read_item, self->m, NULL, &n);
    else if (items != Py_None)
        v = seq_array(items, "expected a sequence of tensor indices", sizeof(size_t),
                      index_item, self->m, NULL, &n);
    if (!v && PyErr_Occurred())
        return NULL;
    cellar_load_opts o = CELLAR_LOAD_OPTS_INIT;
    o.nthreads = nthreads;
    /* read_into fills buffers the loader has just made (torch.empty):
     * 2 MiB pages cut their first-write faults 512 times. */
    o.flags = read ? CELLAR_LOAD_HUGE_PAGES : 0;
    call_ctx cc = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = read ? cellar_model_read(self->m, v, n, &o, on_ready, &cc)
              : cellar_model_populate(self->m, v, n, &o, on_ready, &cc);
    Py_END_ALLOW_THREADS
    PyMem_Free(v);
    if (call_end(&cc, rc))
        return NULL;
    Py_RETURN_NONE;
}

/* populate(indices=None, nthreads=0): pages of those tensors brought into
 * the mapping across threads. */
static PyObject *Model_populate(ModelObject *self, PyObject *args, PyObject *kw)
{
    return model_load(self, args, kw, 0);
}

/* read_into([(index, address, dtype), ...], nthreads=0): preads (and
 * converts) tensors into caller memory at the given addresses (the Python
 * layer passes torch/numpy data pointers of buffers it allocated with the
 * right size). */
static PyObject *Model_read_into(ModelObject *self, PyObject *args, PyObject *kw)
{
    return model_load(self, args, kw, 1);
}

/* identify(registry=None) -> (hash, None | (family, component, description)) */
static PyObject *Model_identify(ModelObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"registry", "lookup", NULL};
    const char *regpath = NULL;
    int lookup = 1;
    if (!model_ready(self) ||
        !PyArg_ParseTupleAndKeywords(args, kw, "|zp", kwlist, &regpath, &lookup))
        return NULL;
    cellar_registry *reg = NULL;
    if (lookup) {
        int rc = cellar_registry_open(&reg, regpath);
        if (rc && rc != CELLAR_ENOTFOUND)
            return raise_cellar(rc);
    }
    char hash[33];
    const cellar_model_info *info = NULL;
    int rc = cellar_model_identify(hash, &info, self->m, reg);
    PyObject *res = NULL;
    if (rc)
        raise_cellar(rc);
    else if (info)
        res = Py_BuildValue("(s(ssss))", hash, info->hash, info->family, info->component,
                            info->description);
    else
        res = Py_BuildValue("(sO)", hash, Py_None);
    cellar_registry_free(reg);
    return res;
}

static PyObject *Model_len(ModelObject *self, PyObject *unused)
{
    (void)unused;
    if (!model_ready(self))
        return NULL;
    return PyLong_FromSize_t(cellar_model_count(self->m));
}

static PyMethodDef Model_methods[] = {
    {"infos", (PyCFunction)Model_infos, METH_NOARGS, "[(name, dtype, shape, nbytes, file, offset)]"},
    {"find", (PyCFunction)Model_find, METH_O, "index of a name, or -1"},
    {"files", (PyCFunction)Model_files, METH_NOARGS, "the files merged, in order"},
    {"metadata", (PyCFunction)Model_metadata, METH_O, "a file's __metadata__, or None"},
    {"buffer", (PyCFunction)Model_buffer, METH_O, "a file's private mapping (writable buffer)"},
    {"populate", (PyCFunction)(void (*)(void))Model_populate, METH_VARARGS | METH_KEYWORDS,
     "bring tensors' pages into memory across threads"},
    {"read_into", (PyCFunction)(void (*)(void))Model_read_into, METH_VARARGS | METH_KEYWORDS,
     "pread (and convert) tensors into caller memory across threads"},
    {"identify", (PyCFunction)(void (*)(void))Model_identify, METH_VARARGS | METH_KEYWORDS,
     "structural hash and registry entry"},
    {"count", (PyCFunction)Model_len, METH_NOARGS, "number of tensors"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cellar._cellar.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An open model: the merged tensor map of a list of files or a DDUF component",
    .tp_methods = Model_methods,
    .tp_init = (initproc)Model_init,
    .tp_new = PyType_GenericNew,
};

/* ---- Buffer ---------------------------------------------------------------- */

static void Buffer_dealloc(BufferObject *self)
{
    Py_XDECREF(self->model);
    PyObject_Free(self);
}

static int Buffer_getbuffer(BufferObject *self, Py_buffer *view, int flags)
{
    static char empty[1];
    void *p = self->base ? self->base : empty;
    if (PyBuffer_FillInfo(view, (PyObject *)self, p, (Py_ssize_t)self->len, 0, flags) != 0)
        return -1;
    self->exports++;
    return 0;
}

static void Buffer_releasebuffer(BufferObject *self, Py_buffer *view)
{
    (void)view;
    self->exports--;
}

static PyBufferProcs Buffer_as_buffer = {
    .bf_getbuffer = (getbufferproc)Buffer_getbuffer,
    .bf_releasebuffer = (releasebufferproc)Buffer_releasebuffer,
};

static Py_ssize_t Buffer_length(BufferObject *self)
{
    return (Py_ssize_t)self->len;
}

static PySequenceMethods Buffer_as_sequence = {.sq_length = (lenfunc)Buffer_length};

static PyTypeObject BufferType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cellar._cellar.Buffer",
    .tp_basicsize = sizeof(BufferObject),
    .tp_dealloc = (destructor)Buffer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One file's private copy-on-write mapping, writable; keeps its Model open",
    .tp_as_buffer = &Buffer_as_buffer,
    .tp_as_sequence = &Buffer_as_sequence,
};

/* ---- module functions ------------------------------------------------------ */

/* resolve_path(path) -> [files] (a file, folder or index, in shard order) */
/* The resolved files as a list of str (file-system encoding); takes
 * ownership of files (an array cellar_free() releases in one call). */
static const char *strv_at(const void *v, size_t i)
{
    return ((char *const *)v)[i];
}

static PyObject *path_list(char **files, size_t n)
{
    PyObject *list = fs_list(n, strv_at, files);
    cellar_free(files);
    return list;
}

static PyObject *mod_resolve_path(PyObject *mod, PyObject *arg)
{
    (void)mod;
    PyObject *b = NULL;
    if (!PyUnicode_FSConverter(arg, &b))
        return NULL;
    cellar_ref *ref;
    int rc = cellar_ref_path(&ref, PyBytes_AS_STRING(b));
    Py_DECREF(b);
    if (rc)
        return raise_cellar(rc);
    char **files = NULL;
    size_t n = 0;
    Py_BEGIN_ALLOW_THREADS
    rc = cellar_ref_resolve(&files, &n, ref, NULL, NULL);
    Py_END_ALLOW_THREADS
    cellar_ref_free(ref);
    if (rc)
        return raise_cellar(rc);
    return path_list(files, n);
}

/* Pull progress to a Python callable: (kind, path, total_done, total_size,
 * total_files); an exception it raises stops the pull and is raised. TICKs
 * are the binding's own (signal checks), never passed on. */
static int call_pull_event(PyObject *fn, const void *arg)
{
    const cellar_pull_event *ev = arg;
    PyObject *r = PyObject_CallFunction(fn, "izKKn", (int)ev->kind, ev->path,
                                        (unsigned long long)ev->total_done,
                                        (unsigned long long)ev->total_size,
                                        (Py_ssize_t)ev->total_files);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int on_pull_progress(const cellar_pull_event *ev, void *ctx)
{
    return cb_run(ctx, ev->kind == CELLAR_PULL_TICK ? NULL : call_pull_event, ev);
}

/* home NULL: the environment's store (the library picks none itself). */
static int open_store(cellar_store **s, const char *home)
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    char *env_home = NULL;
    rc = home ? 0 : cellar_store_home_from_env(&env_home);
    if (rc == 0)
        rc = cellar_store_open(s, home ? home : env_home);
    cellar_free(env_home);
    Py_END_ALLOW_THREADS
    if (rc)
        raise_cellar(rc);
    return rc;
}

/* A folder the environment names, through libcellar's own helper, so
 * Python and the CLI agree on every variable (HUGGINGFACE_HUB_CACHE,
 * XDG_CACHE_HOME...). */
static PyObject *env_dir(int (*from_env)(char **))
{
    char *dir = NULL;
    int rc = from_env(&dir);
    if (rc)
        return raise_cellar(rc);
    PyObject *r = PyUnicode_DecodeFSDefault(dir);
    cellar_free(dir);
    return r;
}

/* store_home_from_env() -> the store the CLI would open */
static PyObject *mod_store_home_from_env(PyObject *mod, PyObject *unused)
{
    (void)mod, (void)unused;
    return env_dir(cellar_store_home_from_env);
}

/* hf_cache_from_env() -> the Hugging Face cache huggingface_hub would use */
static PyObject *mod_hf_cache_from_env(PyObject *mod, PyObject *unused)
{
    (void)mod, (void)unused;
    return env_dir(cellar_hf_cache_from_env);
}

/* HF_HUB_OFFLINE as huggingface_hub reads it (libcellar reads no
 * environment: the binding asks for it explicitly). */
static int env_offline(void)
{
    cellar_pull_opts env = CELLAR_PULL_OPTS_INIT;
    cellar_pull_opts_from_env(&env);
    return env.offline;
}

/* resolve_repo(repo, revision, pattern, base_dir, skip_download, store,
 *              endpoint, token, progress=None) -> sorted [files] */
static PyObject *mod_resolve_repo(PyObject *mod, PyObject *args, PyObject *kw)
{
    (void)mod;
    static char *kwlist[] = {"repo",     "revision", "pattern", "base_dir", "skip_download",
                             "store",    "endpoint", "token",   "progress", NULL};
    const char *repo, *revision = NULL, *pattern = NULL, *base = NULL, *home = NULL;
    const char *endpoint = NULL, *token = NULL;
    int skip = 0;
    PyObject *progress = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zzzpzzzO", kwlist, &repo, &revision, &pattern,
                                     &base, &skip, &home, &endpoint, &token, &progress))
        return NULL;
    cellar_ref *ref;
    int rc = cellar_ref_repo(&ref, repo, revision, pattern);
    if (rc)
        return raise_cellar(rc);
    cellar_store *s = NULL;
    if (!skip && open_store(&s, home) != 0) {
        cellar_ref_free(ref);
        return NULL;
    }
    call_ctx cc = {.fn = progress != Py_None ? progress : NULL};
    cellar_resolve_opts o = CELLAR_RESOLVE_OPTS_INIT;
    o.base_dir = base;
    o.skip_download = skip;
    o.endpoint = endpoint;
    o.token = token;
    o.offline = env_offline(); /* as for pull(): the store's records, no network */
    o.progress = on_pull_progress;
    o.progress_ctx = &cc;
    char **files = NULL;
    size_t n = 0;
    Py_BEGIN_ALLOW_THREADS
    rc = cellar_ref_resolve(&files, &n, ref, s, &o);
    cellar_store_free(s);
    Py_END_ALLOW_THREADS
    cellar_ref_free(ref);
    if (call_end(&cc, rc)) {
        cellar_free(files); /* an exception kept although the call succeeded */
        return NULL;
    }
    return path_list(files, n);
}

static const char *pull_file_at(const void *files, size_t i)
{
    return ((const cellar_pull_file *)files)[i].path;
}

/* pull(repo, revision, include, exclude, to_dir, hf_cache, store, endpoint,
 *      token, progress=None) -> (commit, [paths in the repo]) */
static PyObject *mod_pull(PyObject *mod, PyObject *args, PyObject *kw)
{
    (void)mod;
    static char *kwlist[] = {"repo",  "revision", "include",  "exclude", "to_dir", "hf_cache",
                             "store", "endpoint", "token",    "progress", NULL};
    const char *repo, *revision = NULL, *to_dir = NULL, *hf_cache = NULL, *home = NULL;
    const char *endpoint = NULL, *token = NULL;
    PyObject *inc = Py_None, *exc = Py_None, *progress = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zOOzzzzzO", kwlist, &repo, &revision, &inc,
                                     &exc, &to_dir, &hf_cache, &home, &endpoint, &token,
                                     &progress))
        return NULL;
    PyObject *keep_i = NULL, *keep_e = NULL;
    const char **vi = NULL, **ve = NULL;
    size_t ni = 0, ne = 0;
    if (inc != Py_None && !(vi = path_array(inc, &keep_i, &ni)))
        return NULL;
    if (exc != Py_None && !(ve = path_array(exc, &keep_e, &ne))) {
        PyMem_Free(vi);
        Py_XDECREF(keep_i);
        return NULL;
    }
    PyObject *res = NULL;
    cellar_store *s = NULL;
    if (open_store(&s, home) == 0) {
        call_ctx cc = {.fn = progress != Py_None ? progress : NULL};
        cellar_pull_opts o = CELLAR_PULL_OPTS_INIT;
        o.offline = env_offline();
        o.endpoint = endpoint;
        o.token = token;
        o.revision = revision;
        o.include = vi;
        o.n_include = ni;
        o.exclude = ve;
        o.n_exclude = ne;
        o.to_dir = to_dir;
        o.hf_cache = hf_cache;
        o.progress = on_pull_progress;
        o.progress_ctx = &cc;
        cellar_pull_result r;
        int rc;
        Py_BEGIN_ALLOW_THREADS rc = cellar_pull(&r, s, repo, &o);
        Py_END_ALLOW_THREADS
        PyObject *list = call_end(&cc, rc) == 0 ? fs_list(r.n, pull_file_at, r.files) : NULL;
        if (list)
            res = Py_BuildValue("(sN)", r.commit, list);
        cellar_pull_result_free(&r);
        cellar_store_free(s);
    }
    PyMem_Free(vi);
    PyMem_Free(ve);
    Py_XDECREF(keep_i);
    Py_XDECREF(keep_e);
    return res;
}

/* save_file(path, [(name, dtype, shape, address, nbytes)], metadata: dict|None)
 * The addresses are read during the call, with the GIL released: the
 * caller keeps the tensors alive (and unchanged) until it returns. */
static PyObject *mod_save_file(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *path, *items, *meta;
    if (!PyArg_ParseTuple(args, "O&OO", PyUnicode_FSConverter, &path, &items, &meta))
        return NULL;
    PyObject *res = NULL, *fast = NULL;
    cellar_st_writer *w = NULL;
    int rc = cellar_st_writer_new(&w);
    if (rc) {
        raise_cellar(rc);
        goto done;
    }
    fast = PySequence_Fast(items, "expected a sequence of tensors");
    if (!fast)
        goto done;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); i++) {
        PyObject *name, *dt, *shape;
        unsigned long long addr, nbytes;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "UOOKK", &name, &dt, &shape,
                              &addr, &nbytes))
            goto done;
        cellar_dtype d;
        if (parse_dtype(&d, dt) != 0)
            goto done;
        PyObject *sf = PySequence_Fast(shape, "shape must be a sequence");
        if (!sf)
            goto done;
        Py_ssize_t rank = PySequence_Fast_GET_SIZE(sf);
        uint64_t dims[64];
        if (rank > 64) {
            Py_DECREF(sf);
            PyErr_SetString(PyExc_ValueError, "rank over 64");
            goto done;
        }
        for (Py_ssize_t k = 0; k < rank; k++) {
            dims[k] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(sf, k));
            if (PyErr_Occurred()) {
                Py_DECREF(sf);
                goto done;
            }
        }
        Py_DECREF(sf);
        Py_ssize_t nl;
        const char *ns = PyUnicode_AsUTF8AndSize(name, &nl);
        if (!ns)
            goto done;
        rc = cellar_st_writer_add(w, ns, (size_t)nl, d, (size_t)rank, dims,
                                  (const void *)(uintptr_t)addr, nbytes);
        if (rc) {
            raise_cellar(rc);
            goto done;
        }
    }
    if (meta != Py_None) {
        PyObject *k, *v;
        Py_ssize_t pos = 0;
        if (!PyDict_Check(meta)) {
            PyErr_SetString(PyExc_TypeError, "metadata must be a dict of str to str");
            goto done;
        }
        while (PyDict_Next(meta, &pos, &k, &v)) {
            if (!PyUnicode_Check(k) || !PyUnicode_Check(v)) {
                PyErr_SetString(PyExc_TypeError, "metadata must be a dict of str to str");
                goto done;
            }
            rc = cellar_st_writer_set_metadata(w, PyUnicode_AsUTF8(k), PyUnicode_AsUTF8(v));
            if (rc) {
                raise_cellar(rc);
                goto done;
            }
        }
    }
    call_ctx cc = {0};
    cellar_st_writer_set_progress(w, on_progress, &cc);
    Py_BEGIN_ALLOW_THREADS
    rc = cellar_st_writer_write(w, PyBytes_AS_STRING(path));
    Py_END_ALLOW_THREADS
    if (call_end(&cc, rc) == 0)
        res = Py_NewRef(Py_None);
done:
    Py_XDECREF(fast);
    cellar_st_writer_free(w);
    Py_DECREF(path);
    return res;
}

/* structural_hash(path) -> 32 hex digits */
static PyObject *mod_structural_hash(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path))
        return NULL;
    char out[33];
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cellar_structural_hash(out, PyBytes_AS_STRING(path));
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (rc)
        return raise_cellar(rc);
    return PyUnicode_FromString(out);
}

/* ---- inspect: cellar_inspect()'s tree as Python values ------------------ */

/* Strings as str (bytes that are not UTF-8 replaced by U+FFFD, as the JSON
 * output has them). */
static PyObject *node_str(const char *s, size_t len)
{
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "replace");
}

/* A node as a dict, list, str, int, float, bool or None. */
static PyObject *node_value(const cellar_node *n)
{
    switch (n->type) {
    case CELLAR_NODE_BOOL: return PyBool_FromLong(n->v.b);
    case CELLAR_NODE_U64: return PyLong_FromUnsignedLongLong(n->v.u);
    case CELLAR_NODE_I64: return PyLong_FromLongLong(n->v.i);
    case CELLAR_NODE_F64: return PyFloat_FromDouble(n->v.f);
    case CELLAR_NODE_STRING: return node_str(n->v.str.s, n->v.str.len);
    case CELLAR_NODE_ARRAY:
    case CELLAR_NODE_OBJECT: break;
    default: Py_RETURN_NONE;
    }
    if (Py_EnterRecursiveCall(" converting a cellar tree"))
        return NULL;
    int obj = n->type == CELLAR_NODE_OBJECT;
    PyObject *r = obj ? PyDict_New() : PyList_New(0);
    for (const cellar_node *c = n->v.list.first; r && c; c = c->next) {
        PyObject *v = node_value(c), *k = v && obj ? node_str(c->key, c->key_len) : NULL;
        int bad = !v || (obj ? !k || PyDict_SetItem(r, k, v) : PyList_Append(r, v));
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (bad)
            Py_CLEAR(r);
    }
    Py_LeaveRecursiveCall();
    return r;
}

/* inspect(path, tensors, registry=None) -> dict (cellar_inspect) */
static PyObject *mod_inspect(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *path;
    int tensors;
    const char *regpath = NULL;
    if (!PyArg_ParseTuple(args, "O&p|z", PyUnicode_FSConverter, &path, &tensors, &regpath))
        return NULL;
    cellar_registry *reg = NULL;
    cellar_tree *t = NULL;
    cellar_inspect_opts o = CELLAR_INSPECT_OPTS_INIT;
    o.flags = tensors ? CELLAR_INSPECT_TENSORS : 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cellar_registry_open(&reg, regpath);
    o.registry = reg;
    if (rc == 0)
        rc = cellar_inspect(&t, PyBytes_AS_STRING(path), &o);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    PyObject *res = rc ? raise_cellar(rc) : node_value(cellar_tree_root(t));
    cellar_tree_free(t);
    cellar_registry_free(reg);
    return res;
}

/* ---- identification (issue 10): cellar_identify_path() as a dict, the
 * tree inspect shows under "model" ---- */

/* identify_path(path, registry=None) -> dict (cellar_identify_path) */
static PyObject *mod_identify_path(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *path;
    const char *regpath = NULL;
    if (!PyArg_ParseTuple(args, "O&|z", PyUnicode_FSConverter, &path, &regpath))
        return NULL;
    cellar_registry *reg = NULL;
    cellar_identity *id = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cellar_registry_open(&reg, regpath);
    if (rc == 0)
        rc = cellar_identify_path(&id, PyBytes_AS_STRING(path), reg);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    cellar_tree *t = NULL;
    if (rc == 0)
        rc = cellar_identity_tree(&t, id);
    PyObject *res = rc ? raise_cellar(rc) : node_value(cellar_tree_root(t));
    cellar_tree_free(t);
    cellar_identity_free(id);
    cellar_registry_free(reg);
    return res;
}

/* invokeai_hash(path, algorithm) -> "algo:hex" */
static PyObject *mod_invokeai_hash(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *path;
    const char *algo_name;
    if (!PyArg_ParseTuple(args, "O&s", PyUnicode_FSConverter, &path, &algo_name))
        return NULL;
    cellar_algo algo;
    int rc = cellar_algo_parse(&algo, algo_name);
    char *out = NULL;
    call_ctx cc = {0};
    cellar_hash_opts o = CELLAR_HASH_OPTS_INIT;
    o.progress = on_progress;
    o.progress_ctx = &cc;
    if (!rc) {
        Py_BEGIN_ALLOW_THREADS
        rc = cellar_invokeai_hash(&out, PyBytes_AS_STRING(path), algo, &o);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(path);
    if (call_end(&cc, rc)) {
        cellar_free(out);
        return NULL;
    }
    PyObject *r = PyUnicode_FromString(out);
    cellar_free(out);
    return r;
}

/* dduf_entries(path) -> [(name, offset, size)] after checking every rule */
static PyObject *mod_dduf_entries(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path))
        return NULL;
    cellar_dduf *d = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cellar_dduf_open(&d, PyBytes_AS_STRING(path), 0);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (rc)
        return raise_cellar(rc);
    size_t n = cellar_dduf_entry_count(d);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        const cellar_dduf_entry *e = cellar_dduf_entry_at(d, i);
        PyObject *t = Py_BuildValue("(NKK)", str_from(e->name, e->name_len),
                                    (unsigned long long)e->offset, (unsigned long long)e->size);
        if (!t) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    cellar_dduf_free(d);
    return list;
}

/* dduf_pack(dduf_path, folder) */
static PyObject *mod_dduf_pack(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *path, *dir;
    if (!PyArg_ParseTuple(args, "O&O&", PyUnicode_FSConverter, &path, PyUnicode_FSConverter,
                          &dir))
        return NULL;
    call_ctx cc = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cellar_dduf_pack(PyBytes_AS_STRING(path), PyBytes_AS_STRING(dir), CELLAR_DDUF_REPLACE,
                          NULL, on_progress, &cc);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    Py_DECREF(dir);
    if (call_end(&cc, rc))
        return NULL;
    Py_RETURN_NONE;
}

/* (name, file path) */
static int dduf_item(PyObject *item, void *slot, PyObject *keep, const void *ctx)
{
    (void)ctx;
    cellar_dduf_source *e = slot;
    PyObject *name, *p;
    if (!PyArg_ParseTuple(item, "UO", &name, &p) || keep_path(p, &e->path, keep) != 0 ||
        PyList_Append(keep, name) != 0) /* its UTF-8 is cached in it */
        return -1;
    e->name = PyUnicode_AsUTF8(name);
    return e->name ? 0 : -1;
}

/* dduf_write(dduf_path, [(name, file path)]) */
static PyObject *mod_dduf_write(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *path, *items;
    if (!PyArg_ParseTuple(args, "O&O", PyUnicode_FSConverter, &path, &items))
        return NULL;
    PyObject *keep = NULL, *res = NULL;
    size_t n;
    cellar_dduf_source *src = seq_array(items, "expected a sequence of (name, path)", sizeof *src,
                                        dduf_item, NULL, &keep, &n);
    if (src) {
        call_ctx cc = {0};
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = cellar_dduf_write(PyBytes_AS_STRING(path), src, n, CELLAR_DDUF_REPLACE, on_progress,
                               &cc);
        Py_END_ALLOW_THREADS
        if (call_end(&cc, rc) == 0)
            res = Py_NewRef(Py_None);
    }
    PyMem_Free(src);
    Py_XDECREF(keep);
    Py_DECREF(path);
    return res;
}

/* convert(dst_address, dst_dtype, src_address, src_dtype, n) */
static PyObject *mod_convert(PyObject *mod, PyObject *args)
{
    (void)mod;
    unsigned long long dst, src;
    PyObject *ddt, *sdt;
    Py_ssize_t n;
    cellar_dtype dd, sd;
    if (!PyArg_ParseTuple(args, "KOKOn", &dst, &ddt, &src, &sdt, &n) || parse_dtype(&dd, ddt) ||
        parse_dtype(&sd, sdt))
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "negative count");
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cellar_convert((void *)(uintptr_t)dst, dd, (const void *)(uintptr_t)src, sd, (size_t)n);
    Py_END_ALLOW_THREADS
    if (rc)
        return raise_cellar(rc);
    Py_RETURN_NONE;
}

static PyObject *mod_parse_size(PyObject *mod, PyObject *arg)
{
    (void)mod;
    const char *s = PyUnicode_AsUTF8(arg);
    if (!s)
        return NULL;
    uint64_t v;
    int rc = cellar_shard_size_parse(&v, s);
    if (rc)
        return raise_cellar(rc);
    return PyLong_FromUnsignedLongLong(v);
}

static PyMethodDef mod_methods[] = {
    {"resolve_path", mod_resolve_path, METH_O, "files of a local file, folder or index"},
    {"store_home_from_env", mod_store_home_from_env, METH_NOARGS,
     "The store folder the environment names ($CELLAR_HOME, else $XDG_CACHE_HOME/cellar, else ~/.cache/cellar)."},
    {"hf_cache_from_env", mod_hf_cache_from_env, METH_NOARGS,
     "The Hugging Face cache the environment names, as huggingface_hub finds it."},
    {"resolve_repo", (PyCFunction)(void (*)(void))mod_resolve_repo, METH_VARARGS | METH_KEYWORDS,
     "pull a Hub repo's matching files through the store and lay them out"},
    {"pull", (PyCFunction)(void (*)(void))mod_pull, METH_VARARGS | METH_KEYWORDS,
     "cellar_pull"},
    {"save_file", mod_save_file, METH_VARARGS, "write a safetensors file"},
    {"structural_hash", mod_structural_hash, METH_VARARGS, "DiffSynth's hash_model_file"},
    {"invokeai_hash", mod_invokeai_hash, METH_VARARGS, "InvokeAI's model hash"},
    {"identify_path", mod_identify_path, METH_VARARGS, "what a file is (cellar_identify_path)"},
    {"inspect", mod_inspect, METH_VARARGS, "what a path holds, as a dict (cellar_inspect)"},
    {"dduf_entries", mod_dduf_entries, METH_VARARGS, "a checked DDUF's entries"},
    {"dduf_pack", mod_dduf_pack, METH_VARARGS, "pack a diffusers folder as DDUF"},
    {"dduf_write", mod_dduf_write, METH_VARARGS, "write a DDUF from (name, path) pairs"},
    {"convert", mod_convert, METH_VARARGS, "dtype conversion between raw addresses"},
    {"parse_size", mod_parse_size, METH_O, "huggingface_hub's parse_size_to_int"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "cellar._cellar", "libcellar's binding (see the cellar package)", -1,
    mod_methods, NULL, NULL, NULL, NULL,
};

/* The import may run on any thread: ask threading which one is main. */
static int find_main_thread(void)
{
    PyObject *t = PyImport_ImportModule("threading");
    PyObject *m = t ? PyObject_CallMethod(t, "main_thread", NULL) : NULL;
    PyObject *id = m ? PyObject_GetAttrString(m, "ident") : NULL;
    if (id)
        main_thread_ident = PyLong_AsUnsignedLong(id);
    Py_XDECREF(id);
    Py_XDECREF(m);
    Py_XDECREF(t);
    return id && !PyErr_Occurred() ? 0 : -1;
}

PyMODINIT_FUNC PyInit__cellar(void);
PyMODINIT_FUNC PyInit__cellar(void)
{
    if (PyType_Ready(&ModelType) < 0 || PyType_Ready(&BufferType) < 0 ||
        find_main_thread() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m)
        return NULL;
    CellarError = PyErr_NewExceptionWithDoc(
        "cellar.CellarError", "libcellar failed: the message names the file and the rule; .code is the CELLAR_E* code", PyExc_RuntimeError,
        NULL);
    CellarNotFound = CellarError ? PyErr_NewExceptionWithDoc(
                                       "cellar.CellarNotFound",
                                       "a file, tensor, repo or entry is missing", CellarError,
                                       NULL)
                                 : NULL;
    if (!CellarNotFound || PyModule_AddObjectRef(m, "CellarError", CellarError) < 0 ||
        PyModule_AddObjectRef(m, "CellarNotFound", CellarNotFound) < 0 ||
        PyModule_AddObjectRef(m, "Model", (PyObject *)&ModelType) < 0 ||
        PyModule_AddObjectRef(m, "Buffer", (PyObject *)&BufferType) < 0 ||
        PyModule_AddStringConstant(m, "version", cellar_version()) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
