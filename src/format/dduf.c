/*
 * DDUF reader: a ZIP archive of a diffusers pipeline, every entry STORED.
 *
 * Layout read here (APPNOTE 6.3; only what DDUF allows):
 *
 *   [local header 30 + name + extra][data] ... one per entry
 *   [central directory: 46 + name + extra + comment per entry]
 *   [ZIP64 end record 56][ZIP64 locator 20]     (optional)
 *   [end of central directory 22 + comment]
 *
 * The whole file is mapped; entries are views into the mapping, so an
 * embedded .safetensors file is validated and its tensors served in place.
 * The reader accepts what huggingface_hub's read_dduf_file accepts, with its
 * error phrases, plus the stricter checks FORMATS.md lists: local header
 * signature, local name == central name, no encryption, unique names, no
 * '..', entries inside the file and not overlapping, size == compressed size,
 * CRC-32 on request, every embedded .safetensors passing the safetensors
 * rules. The end records must be exactly where the ZIP says (no prepended
 * bytes, no gaps before the central directory's end).
 */
#include "dduf.h"

#include "crc32.h"
#include "variant.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define U32_MAX_MARK 0xffffffffu
#define U16_MAX_MARK 0xffffu

static const char *const folder_configs[] = {
    "config.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "scheduler_config.json",
};

static const char *const allowed_ext[] = {".json", ".safetensors", ".model", ".txt"};

struct cellar_dduf {
    char *label;
    const uint8_t *data;
    size_t len;
    void *map;
    size_t map_len;
    cellar_dduf_entry *entries;
    size_t n_entries;
    char **components; /* top-level folders, in first-seen order */
    size_t n_components;
    cellar_json_doc *index;
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

bool cellar_dduf_name_valid(const char *name, size_t len)
{
    if (len == 0 || memchr(name, '\0', len) || memchr(name, '\\', len))
        return false;
    if (name[0] == '/' || name[len - 1] == '/')
        return false;
    const char *slash = memchr(name, '/', len);
    size_t first = slash ? (size_t)(slash - name) : len;
    if (slash && memchr(slash + 1, '/', len - first - 1))
        return false; /* more than one folder level */
    const char *base = slash ? slash + 1 : name;
    size_t base_len = len - (size_t)(base - name);
    if (slash && (first == 0 || (first == 1 && name[0] == '.') ||
                  (first == 2 && name[0] == '.' && name[1] == '.')))
        return false;
    return cellar_dduf_ext_allowed(base, base_len);
}

bool cellar_dduf_ext_allowed(const char *name, size_t len)
{
    /* The extension is the text after the last '.' of the whole name. */
    const char *dot = NULL;
    for (size_t i = 0; i < len; i++)
        if (name[i] == '.')
            dot = name + i;
    if (!dot)
        return false;
    size_t ext_len = len - (size_t)(dot - name);
    for (size_t i = 0; i < sizeof allowed_ext / sizeof allowed_ext[0]; i++)
        if (ext_len == strlen(allowed_ext[i]) && !memcmp(dot, allowed_ext[i], ext_len))
            return true;
    return false;
}

int cellar_dduf_parse_index(cellar_json_doc **out, const char *label, const void *data,
                            size_t len)
{
    char *what = cellar_sprintf("%s: model_index.json", label);
    if (!what)
        return CELLAR_ENOMEM;
    int rc = cellar_json_parse(out, data, len, 0, what, NULL);
    free(what);
    if (rc < 0)
        return rc;
    if (!cellar_json_is(cellar_json_root(*out), CELLAR_JSON_OBJECT)) {
        cellar_json_free(*out);
        *out = NULL;
        return cellar_fail(CELLAR_EFORMAT,
                           "%s: Invalid 'model_index.json' content: it must be a JSON object",
                           label);
    }
    return 0;
}

static bool is_folder_config(const char *base, size_t len)
{
    for (size_t k = 0; k < sizeof folder_configs / sizeof folder_configs[0]; k++)
        if (len == strlen(folder_configs[k]) && !memcmp(base, folder_configs[k], len))
            return true;
    return false;
}

struct folder_ref {
    const char *name;
    size_t len;
    size_t first; /* index of its first entry, for first-seen order */
    bool has_config;
};

static int cmp_folder(const void *a, const void *b)
{
    const struct folder_ref *x = a, *y = b;
    int c = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

/* By name alone (a key matches whatever entry index it was found at). */
static int cmp_name(const void *a, const void *b)
{
    const struct folder_ref *x = a, *y = b;
    int c = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int cmp_first(const void *a, const void *b)
{
    const struct folder_ref *x = a, *y = b;
    return (x->first > y->first) - (x->first < y->first);
}

/* Groups entries by folder by sorting (n log n however many folders a
 * crafted archive has), then checks each folder once, in first-seen order. */
int cellar_dduf_check_structure(const char *label, const char *const *names,
                                const size_t *name_lens, size_t n, const cellar_json *index,
                                char ***components, size_t *n_components)
{
    struct folder_ref *f = cellar_malloc((n ? n : 1) * sizeof *f);
    if (!f)
        return CELLAR_ENOMEM;
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) {
        const char *slash = memchr(names[i], '/', name_lens[i]);
        if (!slash)
            continue;
        size_t flen = (size_t)(slash - names[i]);
        f[nf++] = (struct folder_ref){names[i], flen, i,
                                      is_folder_config(slash + 1, name_lens[i] - flen - 1)};
    }
    qsort(f, nf, sizeof *f, cmp_folder);
    size_t groups = 0;
    for (size_t i = 0; i < nf; i++) {
        if (groups && f[groups - 1].len == f[i].len && !memcmp(f[groups - 1].name, f[i].name, f[i].len)) {
            f[groups - 1].has_config |= f[i].has_config;
            continue;
        }
        f[groups++] = f[i];
    }
    qsort(f, groups, sizeof *f, cmp_first);
    /* The index's keys, sorted, so each folder is one binary search. */
    size_t nkeys = index && index->type == CELLAR_JSON_OBJECT ? index->count : 0;
    struct folder_ref *keys = cellar_malloc((nkeys ? nkeys : 1) * sizeof *keys);
    if (!keys) {
        free(f);
        return CELLAR_ENOMEM;
    }
    for (size_t k = 0; k < nkeys; k++)
        keys[k] = (struct folder_ref){index->u.members[k].key, index->u.members[k].key_len, 0,
                                      false};
    qsort(keys, nkeys, sizeof *keys, cmp_folder);
    int rc = 0;
    for (size_t g = 0; g < groups && rc == 0; g++) {
        struct folder_ref probe = {f[g].name, f[g].len, 0, false};
        if (!bsearch(&probe, keys, nkeys, sizeof *keys, cmp_name))
            rc = cellar_fail(CELLAR_EFORMAT,
                             "%s: Missing required entry '%.*s' in 'model_index.json'.", label,
                             (int)f[g].len, f[g].name);
        else if (!f[g].has_config)
            rc = cellar_fail(CELLAR_EFORMAT,
                             "%s: Missing required file in folder '%.*s'. Must contain at least "
                             "one of config.json, tokenizer_config.json, "
                             "preprocessor_config.json, scheduler_config.json",
                             label, (int)f[g].len, f[g].name);
    }
    free(keys);
    if (rc == 0 && components) {
        *components = cellar_calloc(groups ? groups : 1, sizeof **components);
        if (!*components)
            rc = CELLAR_ENOMEM;
        for (size_t g = 0; g < groups && rc == 0; g++) {
            if (!((*components)[g] = cellar_strndup(f[g].name, f[g].len)))
                rc = CELLAR_ENOMEM;
            else
                *n_components = g + 1;
        }
    }
    free(f);
    return rc;
}

/* ---- end records ---- */

struct end_info {
    uint64_t count;
    uint64_t cd_offset;
    uint64_t cd_size;
    uint64_t cd_end; /* where the central directory must end */
};

static int find_end(const cellar_dduf *d, size_t *pos)
{
    RETURN_ERROR_IF(d->len < ZIP_END_SIZE, CELLAR_EFORMAT,
                    "%s: truncated archive: %zu bytes, too short for a ZIP end record", d->label,
                    d->len);
    size_t lo = d->len - ZIP_END_SIZE > 0xffff ? d->len - ZIP_END_SIZE - 0xffff : 0;
    for (size_t p = d->len - ZIP_END_SIZE + 1; p-- > lo;) {
        if (rd32(d->data + p) != ZIP_END_SIG)
            continue;
        uint16_t comment = rd16(d->data + p + 20);
        RETURN_ERROR_IF(p + ZIP_END_SIZE + comment != d->len, CELLAR_EFORMAT,
                        "%s: bad end record: its comment of %u bytes does not end the file "
                        "(truncated archive or trailing bytes)",
                        d->label, comment);
        *pos = p;
        return 0;
    }
    return cellar_fail(CELLAR_EFORMAT,
                       "%s: bad end record: no end of central directory found (truncated "
                       "archive or not a ZIP file)",
                       d->label);
}

static int read_end(const cellar_dduf *d, struct end_info *e)
{
    size_t pos = 0;
    int rc = find_end(d, &pos);
    if (rc < 0)
        return rc;
    const uint8_t *p = d->data + pos;
    uint16_t disk = rd16(p + 4), cd_disk = rd16(p + 6), n_disk = rd16(p + 8), n = rd16(p + 10);
    uint32_t cd_size = rd32(p + 12), cd_offset = rd32(p + 16);
    RETURN_ERROR_IF(disk != 0 || cd_disk != 0 || n_disk != n, CELLAR_EFORMAT,
                    "%s: bad end record: archives spanning several disks are not supported",
                    d->label);
    e->count = n;
    e->cd_size = cd_size;
    e->cd_offset = cd_offset;
    e->cd_end = pos;
    if (pos < ZIP64_LOCATOR_SIZE || rd32(p - ZIP64_LOCATOR_SIZE) != ZIP64_LOCATOR_SIG)
        return 0;

    /* ZIP64: the locator points at the ZIP64 end record, which must sit
     * right before it; its values replace the 16/32-bit ones, which must
     * either agree or be the 0xffff... placeholders. */
    const uint8_t *loc = p - ZIP64_LOCATOR_SIZE;
    uint64_t rec = rd64(loc + 8);
    RETURN_ERROR_IF(rd32(loc + 4) != 0 || rd32(loc + 16) != 1, CELLAR_EFORMAT,
                    "%s: bad ZIP64 locator: archives spanning several disks are not supported",
                    d->label);
    uint64_t loc_pos = pos - ZIP64_LOCATOR_SIZE;
    RETURN_ERROR_IF(rec > loc_pos || loc_pos - rec < ZIP64_END_SIZE, CELLAR_EFORMAT,
                    "%s: bad ZIP64 locator: end record offset %llu out of range", d->label,
                    (unsigned long long)rec);
    const uint8_t *z = d->data + rec;
    uint64_t zsize = rd64(z + 4);
    RETURN_ERROR_IF(rd32(z) != ZIP64_END_SIG, CELLAR_EFORMAT,
                    "%s: bad ZIP64 end record: no signature at offset %llu", d->label,
                    (unsigned long long)rec);
    RETURN_ERROR_IF(zsize < ZIP64_END_SIZE - 12 || zsize != loc_pos - rec - 12, CELLAR_EFORMAT,
                    "%s: bad ZIP64 end record: size %llu does not reach the locator", d->label,
                    (unsigned long long)zsize);
    uint64_t zn_disk = rd64(z + 24), zn = rd64(z + 32), zcd_size = rd64(z + 40),
             zcd_offset = rd64(z + 48);
    RETURN_ERROR_IF(rd32(z + 16) != 0 || rd32(z + 20) != 0 || zn_disk != zn, CELLAR_EFORMAT,
                    "%s: bad ZIP64 end record: archives spanning several disks are not supported",
                    d->label);
    RETURN_ERROR_IF((n != U16_MAX_MARK && n != zn) ||
                        (cd_size != U32_MAX_MARK && cd_size != zcd_size) ||
                        (cd_offset != U32_MAX_MARK && cd_offset != zcd_offset),
                    CELLAR_EFORMAT,
                    "%s: bad end record: its entry count, directory size or offset disagrees "
                    "with the ZIP64 end record",
                    d->label);
    e->count = zn;
    e->cd_size = zcd_size;
    e->cd_offset = zcd_offset;
    e->cd_end = rec;
    return 0;
}

/* ---- entries ---- */

/* Finds the ZIP64 extra field and reads the u64 values that replace the
 * 0xffffffff placeholders, in APPNOTE order (size, compressed size, header
 * offset). */
static int read_zip64_extra(const cellar_dduf *d, const char *name, const uint8_t *extra,
                            size_t len, uint64_t *vals[3], bool central)
{
    size_t want = 0;
    for (int i = 0; i < 3; i++)
        if (vals[i] && *vals[i] == U32_MAX_MARK)
            want++;
    const uint8_t *p = extra;
    size_t left = len;
    while (left >= 4) {
        uint16_t id = rd16(p), n = rd16(p + 2);
        RETURN_ERROR_IF(n > left - 4, CELLAR_EFORMAT,
                        "%s: entry '%s': corrupt %s extra field %04x (size %u)", d->label, name,
                        central ? "central" : "local", id, n);
        if (id == ZIP64_EXTRA_ID && want) {
            RETURN_ERROR_IF(n < 8 * want, CELLAR_EFORMAT,
                            "%s: entry '%s': ZIP64 extra field of %u bytes is too short for the "
                            "%zu values it replaces",
                            d->label, name, n, want);
            const uint8_t *v = p + 4;
            for (int i = 0; i < 3; i++)
                if (vals[i] && *vals[i] == U32_MAX_MARK) {
                    *vals[i] = rd64(v);
                    v += 8;
                }
            want = 0;
        }
        p += 4 + n;
        left -= 4 + (size_t)n;
    }
    RETURN_ERROR_IF(left != 0, CELLAR_EFORMAT, "%s: entry '%s': corrupt %s extra field",
                    d->label, name, central ? "central" : "local");
    RETURN_ERROR_IF(want, CELLAR_EFORMAT,
                    "%s: entry '%s': sizes are 0xffffffff but there is no ZIP64 extra field",
                    d->label, name);
    return 0;
}

/* The local header: signature, name, flags and sizes must agree with the
 * central directory; the data follows it, inside the file. */
static int read_local(const cellar_dduf *d, cellar_dduf_entry *e, uint16_t method,
                      uint64_t data_limit)
{
    uint64_t off = e->header_offset;
    RETURN_ERROR_IF(off > data_limit || data_limit - off < ZIP_LOCAL_SIZE, CELLAR_EFORMAT,
                    "%s: entry '%s': local header at offset %llu is outside the entries area "
                    "(%llu bytes)",
                    d->label, e->name, (unsigned long long)off,
                    (unsigned long long)data_limit);
    const uint8_t *h = d->data + off;
    RETURN_ERROR_IF(rd32(h) != ZIP_LOCAL_SIG, CELLAR_EFORMAT,
                    "%s: entry '%s': Invalid local header signature at offset %llu", d->label,
                    e->name, (unsigned long long)off);
    uint16_t flags = rd16(h + 6), lmethod = rd16(h + 8), name_len = rd16(h + 26),
             extra_len = rd16(h + 28);
    uint64_t lsize = rd32(h + 22), lcsize = rd32(h + 18);
    uint64_t hdr_end = off + ZIP_LOCAL_SIZE + name_len + extra_len;
    RETURN_ERROR_IF(hdr_end > data_limit, CELLAR_EFORMAT,
                    "%s: entry '%s': local header runs past the entries area", d->label,
                    e->name);
    RETURN_ERROR_IF(name_len != e->name_len || memcmp(h + 30, e->name, name_len) != 0,
                    CELLAR_EFORMAT,
                    "%s: entry '%s': local header name '%.*s' differs from the central "
                    "directory's",
                    d->label, e->name, (int)name_len, (const char *)h + 30);
    RETURN_ERROR_IF(flags & (ZIP_FLAG_ENCRYPTED | ZIP_FLAG_STRONG_ENCRYPTION), CELLAR_EFORMAT,
                    "%s: entry '%s' is encrypted (local header)", d->label, e->name);
    RETURN_ERROR_IF(lmethod != method, CELLAR_EFORMAT,
                    "%s: entry '%s': Data must not be compressed in DDUF file. (local header "
                    "method %u)",
                    d->label, e->name, lmethod);
    if (!(flags & ZIP_FLAG_DESCRIPTOR)) {
        uint64_t *vals[3] = {&lsize, &lcsize, NULL};
        int rc = read_zip64_extra(d, e->name, h + 30 + name_len, extra_len, vals, false);
        if (rc < 0)
            return rc;
        RETURN_ERROR_IF(lsize != e->size || lcsize != e->size ||
                            rd32(h + 14) != e->crc32,
                        CELLAR_EFORMAT,
                        "%s: entry '%s': local header sizes or CRC differ from the central "
                        "directory's",
                        d->label, e->name);
    }
    e->offset = hdr_end;
    RETURN_ERROR_IF(e->size > data_limit - hdr_end, CELLAR_EFORMAT,
                    "%s: entry '%s': data [%llu, +%llu) runs past the entries area (%llu bytes)",
                    d->label, e->name, (unsigned long long)hdr_end,
                    (unsigned long long)e->size, (unsigned long long)data_limit);
    e->data = d->data + hdr_end;
    return 0;
}

static int read_central(cellar_dduf *d, const struct end_info *end)
{
    const uint8_t *p = d->data + end->cd_offset;
    size_t left = (size_t)end->cd_size;
    for (uint64_t i = 0; i < end->count; i++) {
        cellar_dduf_entry *e = &d->entries[d->n_entries];
        RETURN_ERROR_IF(left < ZIP_CENTRAL_SIZE || rd32(p) != ZIP_CENTRAL_SIG, CELLAR_EFORMAT,
                        "%s: bad central directory: entry %llu is not a central header",
                        d->label, (unsigned long long)i);
        uint16_t flags = rd16(p + 8), method = rd16(p + 10), name_len = rd16(p + 28),
                 extra_len = rd16(p + 30), comment_len = rd16(p + 32), disk = rd16(p + 34);
        size_t rec = (size_t)ZIP_CENTRAL_SIZE + name_len + extra_len + comment_len;
        RETURN_ERROR_IF(rec > left, CELLAR_EFORMAT,
                        "%s: bad central directory: entry %llu runs past its end", d->label,
                        (unsigned long long)i);
        char *name = cellar_strndup((const char *)p + ZIP_CENTRAL_SIZE, name_len);
        if (!name)
            return CELLAR_ENOMEM;
        e->name = name;
        e->name_len = name_len;
        d->n_entries++;
        e->crc32 = rd32(p + 16);
        uint64_t csize = rd32(p + 20), size = rd32(p + 24), off = rd32(p + 42);
        uint64_t *vals[3] = {&size, &csize, &off};
        int rc = read_zip64_extra(d, name, p + ZIP_CENTRAL_SIZE + name_len, extra_len, vals,
                                  true);
        if (rc < 0)
            return rc;
        RETURN_ERROR_IF(disk != 0 && disk != U16_MAX_MARK, CELLAR_EFORMAT,
                        "%s: entry '%s' starts on disk %u (multi-disk archive)", d->label, name,
                        disk);
        RETURN_ERROR_IF(flags & (ZIP_FLAG_ENCRYPTED | ZIP_FLAG_STRONG_ENCRYPTION),
                        CELLAR_EFORMAT, "%s: entry '%s' is encrypted", d->label, name);
        RETURN_ERROR_IF(method != 0, CELLAR_EFORMAT,
                        "%s: entry '%s': Data must not be compressed in DDUF file.", d->label,
                        name);
        RETURN_ERROR_IF(csize != size, CELLAR_EFORMAT,
                        "%s: entry '%s': compressed size %llu differs from size %llu", d->label,
                        name, (unsigned long long)csize, (unsigned long long)size);
        RETURN_ERROR_IF(!cellar_dduf_name_valid(name, name_len), CELLAR_EFORMAT,
                        "%s: Invalid entry name in DDUF file: %.*s", d->label, (int)name_len,
                        name);
        e->size = size;
        e->header_offset = off;
        if ((rc = read_local(d, e, method, end->cd_offset)) < 0)
            return rc;
        p += rec;
        left -= rec;
    }
    RETURN_ERROR_IF(left != 0, CELLAR_EFORMAT,
                    "%s: bad central directory: %zu bytes left after %llu entries", d->label,
                    left, (unsigned long long)end->count);
    return 0;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const cellar_dduf_entry *x = *(const cellar_dduf_entry *const *)a;
    const cellar_dduf_entry *y = *(const cellar_dduf_entry *const *)b;
    return (x->header_offset > y->header_offset) - (x->header_offset < y->header_offset);
}

static int cmp_by_name(const void *a, const void *b)
{
    const cellar_dduf_entry *x = *(const cellar_dduf_entry *const *)a;
    const cellar_dduf_entry *y = *(const cellar_dduf_entry *const *)b;
    return strcmp(x->name, y->name); /* names hold no NUL */
}

/* No two entries may share a name or a byte: each [local header, data end)
 * starts at or after the previous one's end. */
static int check_layout(const cellar_dduf *d)
{
    if (d->n_entries < 2)
        return 0;
    const cellar_dduf_entry **v = cellar_malloc(d->n_entries * sizeof *v);
    if (!v)
        return CELLAR_ENOMEM;
    for (size_t i = 0; i < d->n_entries; i++)
        v[i] = &d->entries[i];
    int rc = 0;
    qsort(v, d->n_entries, sizeof *v, cmp_by_name);
    for (size_t i = 1; i < d->n_entries && !rc; i++)
        if (!strcmp(v[i - 1]->name, v[i]->name))
            rc = cellar_fail(CELLAR_EFORMAT, "%s: duplicate entry name '%s'", d->label,
                             v[i]->name);
    qsort(v, d->n_entries, sizeof *v, cmp_by_offset);
    for (size_t i = 1; i < d->n_entries && !rc; i++)
        if (v[i]->header_offset < v[i - 1]->offset + v[i - 1]->size)
            rc = cellar_fail(CELLAR_EFORMAT,
                             "%s: entries '%s' and '%s' overlap (offset %llu is inside [%llu, "
                             "%llu))",
                             d->label, v[i - 1]->name, v[i]->name,
                             (unsigned long long)v[i]->header_offset,
                             (unsigned long long)v[i - 1]->header_offset,
                             (unsigned long long)(v[i - 1]->offset + v[i - 1]->size));
    free(v);
    return rc;
}

static int check_pipeline(cellar_dduf *d)
{
    const cellar_dduf_entry *index;
    RETURN_ERROR_IF(cellar_dduf_find(&index, d, "model_index.json") != 0, CELLAR_EFORMAT,
                    "%s: Missing required 'model_index.json' entry in DDUF file.", d->label);
    int rc = cellar_dduf_parse_index(&d->index, d->label, index->data, (size_t)index->size);
    if (rc < 0)
        return rc;
    const char **names = cellar_malloc((d->n_entries + 1) * sizeof *names);
    size_t *lens = cellar_malloc((d->n_entries + 1) * sizeof *lens);
    if (!names || !lens) {
        free(names);
        free(lens);
        return CELLAR_ENOMEM;
    }
    for (size_t i = 0; i < d->n_entries; i++) {
        names[i] = d->entries[i].name;
        lens[i] = d->entries[i].name_len;
    }
    rc = cellar_dduf_check_structure(d->label, names, lens, d->n_entries,
                                     cellar_json_root(d->index), &d->components,
                                     &d->n_components);
    free(names);
    free(lens);
    return rc;
}

static bool is_safetensors(const cellar_dduf_entry *e)
{
    static const char ext[] = ".safetensors";
    return e->name_len >= sizeof ext - 1 &&
           !memcmp(e->name + e->name_len - (sizeof ext - 1), ext, sizeof ext - 1);
}

static int check_safetensors(const cellar_dduf *d)
{
    for (size_t i = 0; i < d->n_entries; i++) {
        const cellar_dduf_entry *e = &d->entries[i];
        if (!is_safetensors(e))
            continue;
        cellar_st *st = NULL;
        int rc = cellar_dduf_open_safetensors(&st, d, i);
        cellar_st_free(st);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int cellar_dduf_check_crc(const cellar_dduf *d)
{
    for (size_t i = 0; i < d->n_entries; i++) {
        const cellar_dduf_entry *e = &d->entries[i];
        uint32_t crc = cellar_crc32(0, e->data, (size_t)e->size);
        RETURN_ERROR_IF(crc != e->crc32, CELLAR_EMISMATCH,
                        "%s: entry '%s': CRC-32 is %08x, the central directory says %08x",
                        d->label, e->name, crc, e->crc32);
    }
    return 0;
}

static int parse(cellar_dduf *d, unsigned flags)
{
    struct end_info end = {0};
    int rc = read_end(d, &end);
    if (rc < 0)
        return rc;
    RETURN_ERROR_IF(end.cd_offset > end.cd_end || end.cd_end - end.cd_offset != end.cd_size,
                    CELLAR_EFORMAT,
                    "%s: bad end record: central directory [%llu, +%llu) does not end where the "
                    "end record starts (%llu)",
                    d->label, (unsigned long long)end.cd_offset,
                    (unsigned long long)end.cd_size, (unsigned long long)end.cd_end);
    RETURN_ERROR_IF(end.count > end.cd_size / ZIP_CENTRAL_SIZE, CELLAR_EFORMAT,
                    "%s: bad end record: %llu entries cannot fit in a %llu-byte central "
                    "directory",
                    d->label, (unsigned long long)end.count, (unsigned long long)end.cd_size);
    if (end.count && !(d->entries = cellar_calloc((size_t)end.count, sizeof *d->entries)))
        return CELLAR_ENOMEM;
    if ((rc = read_central(d, &end)) < 0 || (rc = check_layout(d)) < 0 ||
        (rc = check_pipeline(d)) < 0 || (rc = check_safetensors(d)) < 0)
        return rc;
    if (flags & CELLAR_DDUF_CRC)
        return cellar_dduf_check_crc(d);
    return 0;
}

static int dduf_new(cellar_dduf **out, const char *label)
{
    cellar_dduf *d = cellar_calloc(1, sizeof *d);
    if (!d)
        return CELLAR_ENOMEM;
    if (!(d->label = cellar_strdup(label ? label : "<buffer>"))) {
        free(d);
        return CELLAR_ENOMEM;
    }
    *out = d;
    return 0;
}

static int dduf_finish(cellar_dduf **out, cellar_dduf *d, unsigned flags)
{
    int rc = parse(d, flags);
    if (rc < 0) {
        cellar_dduf_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int cellar_dduf_open_buffer(cellar_dduf **out, const void *data, size_t len, const char *label,
                            unsigned flags)
{
    RETURN_ERROR_IF(!out || (!data && len), CELLAR_EINVAL, "cellar_dduf_open_buffer: bad argument");
    *out = NULL;
    cellar_dduf *d;
    int rc = dduf_new(&d, label);
    if (rc < 0)
        return rc;
    d->data = data;
    d->len = len;
    return dduf_finish(out, d, flags);
}

int cellar_dduf_open(cellar_dduf **out, const char *path, unsigned flags)
{
    RETURN_ERROR_IF(!out || !path, CELLAR_EINVAL, "cellar_dduf_open: bad argument");
    *out = NULL;
    cellar_dduf *d;
    int rc = dduf_new(&d, path);
    if (rc < 0)
        return rc;
    if ((rc = cellar_map_file(&d->map, &d->map_len, path)) < 0) {
        cellar_dduf_free(d);
        return rc;
    }
    d->data = d->map;
    d->len = d->map_len;
    return dduf_finish(out, d, flags);
}

void cellar_dduf_free(cellar_dduf *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_entries; i++)
        free((char *)d->entries[i].name);
    free(d->entries);
    for (size_t i = 0; i < d->n_components; i++)
        free(d->components[i]);
    free(d->components);
    cellar_json_free(d->index);
    if (d->map)
        munmap(d->map, d->map_len);
    free(d->label);
    free(d);
}

const char *cellar_dduf_label(const cellar_dduf *d)
{
    return d->label;
}

size_t cellar_dduf_entry_count(const cellar_dduf *d)
{
    return d->n_entries;
}

const cellar_dduf_entry *cellar_dduf_entry_at(const cellar_dduf *d, size_t i)
{
    return i < d->n_entries ? &d->entries[i] : NULL;
}

int cellar_dduf_find(const cellar_dduf_entry **out, const cellar_dduf *d, const char *name)
{
    for (size_t i = 0; i < d->n_entries; i++)
        if (!strcmp(d->entries[i].name, name)) {
            *out = &d->entries[i];
            return 0;
        }
    *out = NULL;
    return cellar_fail(CELLAR_ENOTFOUND, "%s: no entry '%s'", d->label, name);
}

size_t cellar_dduf_component_count(const cellar_dduf *d)
{
    return d->n_components;
}

const char *cellar_dduf_component_at(const cellar_dduf *d, size_t i)
{
    return i < d->n_components ? d->components[i] : NULL;
}

int cellar_dduf_open_safetensors(cellar_st **out, const cellar_dduf *d, size_t i)
{
    RETURN_ERROR_IF(!out || i >= d->n_entries, CELLAR_EINVAL,
                    "%s: entry index %zu out of range", d->label, i);
    const cellar_dduf_entry *e = &d->entries[i];
    char *label = cellar_sprintf("%s/%s", d->label, e->name);
    if (!label)
        return CELLAR_ENOMEM;
    int rc = cellar_st_open_buffer(out, e->data, (size_t)e->size, label);
    free(label);
    return rc;
}

/* ---- weight sets: one per variant, by the folders' rule (variant.c) ---- */

void cellar_dduf_weight_sets_free(cellar_dduf_weights *w, size_t count)
{
    if (!w)
        return;
    for (size_t i = 0; i < count; i++) {
        free((char *)w[i].variant);
        free((size_t *)w[i].entries);
    }
    free(w);
}

/* The variant of entry i if it is a .safetensors directly in comp. */
static bool component_weights(const cellar_dduf *d, size_t i, const char *comp, size_t cl,
                              const char **variant, size_t *len, bool *has)
{
    const cellar_dduf_entry *e = &d->entries[i];
    bool index;
    if (e->name_len <= cl + 1 || memcmp(e->name, comp, cl) || e->name[cl] != '/' ||
        memchr(e->name + cl + 1, '/', e->name_len - cl - 1))
        return false;
    size_t stem = cellar_weights_stem(e->name + cl + 1, e->name_len - cl - 1, &index);
    if (!stem || index)
        return false;
    *has = cellar_weights_variant(e->name + cl + 1, stem, variant, len);
    return true;
}

int cellar_dduf_weight_sets(cellar_dduf_weights **out, size_t *count, const cellar_dduf *d,
                            const char *comp)
{
    *out = NULL;
    *count = 0;
    RETURN_ERROR_IF(!d || !comp, CELLAR_EINVAL, "cellar_dduf_weight_sets: no archive or component");
    size_t cl = strlen(comp), n_default = 0, n_variant = 0;
    const char *v;
    size_t vl;
    bool has;
    for (size_t i = 0; i < d->n_entries; i++)
        if (component_weights(d, i, comp, cl, &v, &vl, &has))
            *(has ? &n_variant : &n_default) += 1;
    /* at most one set per entry, plus the default */
    cellar_dduf_weights *w = cellar_calloc(n_default + n_variant + 1, sizeof *w);
    if (!w)
        return CELLAR_ENOMEM;
    size_t n = 0;
    int rc = 0;
    /* the default set first: also when the component has no weights */
    if (n_default || !n_variant) {
        size_t *idx = cellar_calloc(n_default ? n_default : 1, sizeof *idx);
        char *name = cellar_strdup("");
        w[n].variant = name;
        w[n].entries = idx;
        n++;
        if (!idx || !name)
            rc = CELLAR_ENOMEM;
        for (size_t i = 0; rc == 0 && i < d->n_entries; i++)
            if (component_weights(d, i, comp, cl, &v, &vl, &has) && !has)
                idx[w[0].n++] = i;
    }
    /* then each variant, in the order of its first entry */
    for (size_t i = 0; rc == 0 && i < d->n_entries; i++) {
        if (!component_weights(d, i, comp, cl, &v, &vl, &has) || !has)
            continue;
        bool seen = false;
        for (size_t s = 0; s < n && !seen; s++)
            seen = (s > 0 || !(n_default || !n_variant)) && strlen(w[s].variant) == vl &&
                   !memcmp(w[s].variant, v, vl);
        if (seen)
            continue;
        size_t *idx = cellar_calloc(n_variant, sizeof *idx);
        char *name = cellar_strndup(v, vl);
        w[n].variant = name;
        w[n].entries = idx;
        cellar_dduf_weights *set = &w[n++];
        if (!idx || !name) {
            rc = CELLAR_ENOMEM;
            break;
        }
        for (size_t j = i; j < d->n_entries; j++) {
            const char *vj;
            size_t vjl;
            bool hj;
            if (component_weights(d, j, comp, cl, &vj, &vjl, &hj) && hj && vjl == vl &&
                !memcmp(vj, v, vl))
                idx[set->n++] = j;
        }
    }
    if (rc) {
        cellar_dduf_weight_sets_free(w, n);
        return rc;
    }
    *out = w;
    *count = n;
    return 0;
}
