/* A set of (device, inode) pairs: counting each file once however many
 * names it has (du, dedup), and not walking a directory twice when
 * symlinks are followed. Open addressing; grows as needed. */
#ifndef CELLAR_INOSET_H
#define CELLAR_INOSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct inoset {
    uint64_t *keys; /* dev, ino pairs; ino 0 marks an empty slot */
    size_t cap, n;  /* slots (a power of two), entries */
} inoset;

void inoset_init(inoset *s);
/* Adds (dev, ino): 1 if it was new, 0 if already there, CELLAR_ENOMEM. */
int inoset_add(inoset *s, uint64_t dev, uint64_t ino);
bool inoset_has(const inoset *s, uint64_t dev, uint64_t ino);
void inoset_free(inoset *s);

#endif
