/* A hash set of (device, inode) pairs. */
#include "inoset.h"

#include "util.h"

#include <stdlib.h>

void inoset_init(inoset *s)
{
    s->keys = NULL;
    s->cap = s->n = 0;
}

static size_t slot_of(uint64_t dev, uint64_t ino, size_t cap)
{
    uint64_t h = (ino ^ (dev * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static int grow(inoset *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024, bytes;
    if (ck_mul(cap, 2 * sizeof(uint64_t), &bytes))
        return cellar_fail(CELLAR_ERANGE, "inode set: too many files");
    uint64_t *keys = cellar_calloc(cap, 2 * sizeof(uint64_t));
    if (!keys)
        return CELLAR_ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        uint64_t dev = s->keys[2 * i], ino = s->keys[2 * i + 1];
        if (!ino)
            continue;
        size_t j = slot_of(dev, ino, cap);
        while (keys[2 * j + 1])
            j = (j + 1) & (cap - 1);
        keys[2 * j] = dev;
        keys[2 * j + 1] = ino;
    }
    free(s->keys);
    s->keys = keys;
    s->cap = cap;
    return 0;
}

/* Inode 0 marks empty slots; a file reporting inode 0 is kept as
 * UINT64_MAX instead. */
int inoset_add(inoset *s, uint64_t dev, uint64_t ino)
{
    if (!ino)
        ino = UINT64_MAX;
    if ((s->n + 1) * 2 > s->cap) {
        int rc = grow(s);
        if (rc)
            return rc;
    }
    size_t i = slot_of(dev, ino, s->cap);
    while (s->keys[2 * i + 1]) {
        if (s->keys[2 * i + 1] == ino && s->keys[2 * i] == dev)
            return 0;
        i = (i + 1) & (s->cap - 1);
    }
    s->keys[2 * i] = dev;
    s->keys[2 * i + 1] = ino;
    s->n++;
    return 1;
}

bool inoset_has(const inoset *s, uint64_t dev, uint64_t ino)
{
    if (!s->cap)
        return false;
    if (!ino)
        ino = UINT64_MAX;
    size_t i = slot_of(dev, ino, s->cap);
    while (s->keys[2 * i + 1]) {
        if (s->keys[2 * i + 1] == ino && s->keys[2 * i] == dev)
            return true;
        i = (i + 1) & (s->cap - 1);
    }
    return false;
}

void inoset_free(inoset *s)
{
    free(s->keys);
    inoset_init(s);
}
