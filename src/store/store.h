/* The store's internals shared by its modules (store.c, link.c, dedup.c,
 * gc.c, hfcache.c): the handle, object naming, per-blob locks, hashing a
 * file, adopting an inode. The public side is the store section of cellar.h. */
#ifndef CELLAR_STORE_H
#define CELLAR_STORE_H

#include "db.h"
#include "util.h"

#include <stdbool.h>
#include <sys/stat.h>

struct cellar_store {
    char *home;    /* $CELLAR_HOME */
    char *objects; /* home/objects/sha256 */
    char *tmp;     /* home/tmp */
    char *locks;   /* home/locks */
    dev_t dev;     /* filesystem of objects/: hard links work only there */
    cellar_db *db;
    cellar_hash_cache cache; /* over db's hash_cache table (hash_cache.c) */
    /* Set while a batch (dedup, import-hf) runs: the directories whose
     * entries it changes are not fsynced. Its renames only swap one name
     * between two inodes holding the same bytes, and an object entry lost
     * to a power cut leaves its inode held by the user's file, so a lost
     * entry costs a rerun, never data; the fsyncs would cost more time
     * than the hashing. */
    bool batch;
    /* pin.c: the blobs this handle (and handles sharing its pins) admitted
     * or pinned, kept from gc until the handle is freed. */
    struct store_pins *pins;
};

/* pin.c. Pins sha256 for this handle's life (written before returning).
 * A caller pins before (or while holding) the blob's lock. */
int store_pin_add(cellar_store *s, const uint8_t sha256[32]);
/* dst's pins become src's (pull's worker handles pin for the pull). */
int store_pins_share(cellar_store *dst, cellar_store *src);
/* Drops the handle's pins (the last sharer removes the pin file). */
void store_pins_release(cellar_store *s);
/* gc, under the blob's lock: does a live process pin sha256? Removes the
 * pin files of dead processes unless dry. */
int store_pinned(cellar_store *s, const uint8_t sha256[32], bool dry, bool *pinned);

/* hash_cache.c: migrates the hash cache's table and sets s->cache. */
int store_cache_init(cellar_store *s);

/* fsyncs dir unless a batch is running. */
int store_sync_dir(cellar_store *s, const char *dir);

/* Files up to this size also get a git blob sha1: the Hub stores files
 * larger than this in LFS, named by sha256, and smaller ones in git, named
 * by their git blob sha1. */
#define STORE_GITSHA1_MAX (10u * 1024 * 1024)

/* The digests the store records for a blob of this size. */
uint32_t store_algos(uint64_t size, unsigned add_flags);

/* "objects/sha256/ab/cdef..." for sha256, allocated. */
char *store_object_path(const cellar_store *s, const uint8_t sha256[32]);
/* lstat of the object: 1 present (st filled), 0 absent, < 0 error. */
int store_object_stat(const cellar_store *s, const uint8_t sha256[32], struct stat *st);

/* Per-blob (or per-partial) locks: an exclusive flock on locks/<name>.lock.
 * wait false: CELLAR_EBUSY when another process holds it. The lock file may
 * be removed by its holder (gc); taking a lock re-checks that the file
 * locked is still the one at the path. */
int store_lock(const cellar_store *s, const char *name, bool wait, int *fd_out);
/* Removes the lock file (holder only: gc when the blob is gone) and unlocks. */
void store_lock_remove(const cellar_store *s, const char *name, int fd);
void store_unlock(int fd);
/* The lock name of a blob: its sha256 in hex (65 bytes). */
void store_lock_name(char out[65], const uint8_t sha256[32]);

/* Hashes an open file from its start with algos (see store_algos), checking
 * the size against st->st_size. CELLAR_ECHANGED if it grew or shrank. */
int store_hash_fd(int fd, const char *path, const struct stat *st, uint32_t algos,
                  cellar_digests *out);

/* Places the file at tmp (already 0444, fsynced as the caller needs) as the
 * object named d->sha256, unless the store has it (then tmp is dropped and
 * the object freshened). The caller holds the blob's lock. tmp is always
 * gone afterwards. Records the digests. *created (may be NULL) tells which. */
int store_admit(cellar_store *s, const char *tmp, const cellar_digests *d, bool *created);

/* Makes the existing object look recently used to gc (its change time) and
 * restores its read-only mode, without touching its modification time (a
 * user's hard link to it shares that, and hash caches key on it). */
int store_freshen(const cellar_store *s, const uint8_t sha256[32]);

/* 0 when nobody has the file behind fd (opened read-only, ours) open for
 * writing now: a read lease could be taken (and is released at once).
 * CELLAR_EBUSY when someone has; another error when leases are not
 * available (another filesystem type, leases disabled, not the owner). */
int store_no_writers(int fd, const char *path);

/* A file may share the store's read-only 0444 inode: its owner is us and
 * its mode loses nothing by becoming 0444 (not private, not executable, no
 * set-id bits). */
bool store_may_share(const struct stat *st);

/* Adopts the file at path (open as fd, stat st, already hashed into d) as
 * the object by hard-linking its inode into the store, after making it
 * read-only. The caller holds the blob's lock and has checked the store does
 * not have it. CELLAR_EUNSUPPORTED when the inode cannot be adopted (other
 * filesystem, !store_may_share, links refused): the caller copies instead.
 * CELLAR_ECHANGED if the file at path is no longer the hashed one. */
int store_adopt(cellar_store *s, const char *path, int fd, const struct stat *st,
                const cellar_digests *d);

/* Copies fd (positioned at 0) into a temp file in the store while hashing
 * it, then admits it under the blob's lock (have_lock: the caller already
 * holds it; flock would otherwise wait on the caller's own lock). ENOSPC and short writes leave nothing behind. */
int store_copy_in(cellar_store *s, const char *path, int fd, const struct stat *st,
                  uint32_t algos, bool have_lock, cellar_digests *out);

/* Calls cb for every object on disk, in sha256 order (the objects, not the
 * index, are the truth); a non-zero return stops and is returned. */
int store_foreach_object(cellar_store *s,
                         int (*cb)(const uint8_t sha256[32], const char *path,
                                   const struct stat *st, void *ctx),
                         void *ctx);

/* An absolute form of path (its directory resolved, the last component kept
 * as is, so a symlink place stays the link itself), allocated. */
char *store_abspath(const char *path);

/* link.c: puts the object at obj as a hard link at dest atomically (temp
 * name ".cellar-link.<sha256>.<random>" beside dest, then rename). When dest
 * already is that inode nothing changes. errno-style failures come back as
 * CELLAR_EUNSUPPORTED for EXDEV/EPERM/EMLINK (a caller may fall back). */
int link_hard_replace(cellar_store *s, const char *obj, const struct stat *obj_st, const uint8_t sha256[32],
                      const char *dest);
/* Removes a leftover ".cellar-link.<sha256>.*" temp name at path if it is a
 * hard link to that object, or another name of its inode remains, so a
 * crash leaves no litter that a rerun cannot clear. True if removed. */
bool link_clear_leftover(cellar_store *s, const char *path, const char *name);

/* dedup.c, for hfcache.c: makes the regular file at path (stat st) a hard
 * link to the stored copy of its content, adopting it if the store lacks
 * it. want (may be NULL) is a digest the content must have (etag check). */
typedef struct dedup_one {
    cellar_digests d;  /* the file's digests */
    bool linked;       /* path now is the object's inode */
    bool already;      /* it already was */
} dedup_one;
int dedup_file(cellar_store *s, const char *path, const struct stat *st, unsigned flags,
               cellar_algo want_algo, const uint8_t *want, dedup_one *res);

#endif
