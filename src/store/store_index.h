/* The store's index: its tables in cellar.db (and their migrations)
 * and the statements over them, spoken through db.h so that only
 * db_sqlite.c sees SQLite.
 *
 *   blobs(sha256 PK, size, blake3, gitsha1, xet, dev, ino, added)
 *   places(path PK, sha256, mode)          where cellar put a blob
 *   refs(repo, name, commit)               revision -> commit
 *   snapshot_files(repo, commit, path, sha256, size)
 *
 * The objects on disk are the truth; the index is what lets a digest other
 * than sha256, an inode or a place be resolved without hashing. */
#ifndef CELLAR_STORE_INDEX_H
#define CELLAR_STORE_INDEX_H

#include "db.h"

#include <stdbool.h>
#include <stdint.h>

/* Creates or upgrades the index's tables. */
int index_migrate(cellar_db *db);

/* Inserts or completes the row of blob d (d->have must include sha256;
 * digests absent from d keep their recorded value). dev/ino: the object's
 * inode, so a file that already shares it is known without hashing. */
int index_blob_put(cellar_db *db, const cellar_digests *d, uint64_t dev, uint64_t ino);
/* Sets the xet hash (hex) of a recorded blob; CELLAR_ENOTFOUND if none. */
int index_blob_set_xet(cellar_db *db, const uint8_t sha256[32], const char *xet_hex);
/* The sha256 of the blob with that digest (sha256, blake3 or git-sha1):
 * 1 found, 0 not, < 0 error. */
int index_blob_find(cellar_db *db, cellar_algo algo, const uint8_t *digest,
                    uint8_t sha256_out[32]);
/* The recorded digests (and size) of a blob: 1 found, 0 not. */
int index_blob_get(cellar_db *db, const uint8_t sha256[32], cellar_digests *out);
/* The blob whose object had inode dev/ino when recorded: 1, 0 or < 0. */
int index_blob_by_inode(cellar_db *db, uint64_t dev, uint64_t ino, uint8_t sha256_out[32]);
/* 1 if some recorded blob has this size, 0 if none. */
int index_blob_size_known(cellar_db *db, uint64_t size);
/* Forgets a blob and its places; snapshots keep naming it (they describe a
 * repo, and a later pull re-fetches what is missing). */
int index_blob_delete(cellar_db *db, const uint8_t sha256[32]);

/* Records (or moves) the place path as holding sha256, put there by mode
 * (a cellar_link_mode). */
int index_place_put(cellar_db *db, const char *path, const uint8_t sha256[32], int mode);
int index_place_delete(cellar_db *db, const char *path);
/* The blob recorded at path: 1 found (sha256_out, mode_out may be NULL), 0 not. */
int index_place_get(cellar_db *db, const char *path, uint8_t sha256_out[32], int *mode_out);
/* Calls cb for every place of sha256 (read into a list first, so cb may
 * change the index); a non-zero return stops and is returned. */
int index_place_foreach(cellar_db *db, const uint8_t sha256[32],
                        int (*cb)(const char *path, int mode, void *ctx), void *ctx);

/* Replaces the file list of repo@commit and points revision at commit, in
 * one transaction. */
int index_snapshot_put(cellar_db *db, const char *repo, const char *revision, const char *commit,
                       size_t n, const char *const *paths, const uint8_t (*sha256s)[32],
                       const uint64_t *sizes);
/* Points revision of repo at commit (a ref read from elsewhere, e.g. a
 * Hugging Face cache's refs/main). */
int index_ref_put(cellar_db *db, const char *repo, const char *revision, const char *commit);
/* Resolves revision (a recorded ref, else a commit) of repo into a
 * snapshot allocated for cellar_snapshot_free. CELLAR_ENOTFOUND. */
int index_snapshot_get(cellar_db *db, const char *repo, const char *revision,
                       cellar_snapshot **out);

#endif
