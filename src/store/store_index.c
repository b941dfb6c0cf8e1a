/* The store's index tables: blobs, places, refs and snapshots, and their
 * migrations. */
#include "store_index.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Applied in order, never edited once shipped. */
static const char *const index_migrations[] = {
    /* 1: blobs: one row per object,
     * with the digests other than sha256 it can be found by and the inode
     * its object had (a file sharing it needs no hashing); places: where
     * cellar linked each blob; refs and snapshot_files: what a revision of
     * a repo holds, so it resolves offline. */
    "CREATE TABLE blobs ("
    "  sha256 BLOB PRIMARY KEY,"
    "  size INTEGER NOT NULL,"
    "  blake3 BLOB,"
    "  gitsha1 BLOB,"
    "  xet TEXT,"
    "  dev INTEGER,"
    "  ino INTEGER,"
    "  added INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX blobs_blake3 ON blobs (blake3);"
    "CREATE INDEX blobs_gitsha1 ON blobs (gitsha1);"
    "CREATE INDEX blobs_inode ON blobs (ino, dev);"
    "CREATE INDEX blobs_size ON blobs (size);"
    "CREATE TABLE places ("
    "  path TEXT PRIMARY KEY,"
    "  sha256 BLOB NOT NULL,"
    "  mode INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX places_sha256 ON places (sha256);"
    "CREATE TABLE refs ("
    "  repo TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  commit_id TEXT NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  PRIMARY KEY (repo, name)"
    ") WITHOUT ROWID;"
    "CREATE TABLE snapshot_files ("
    "  repo TEXT NOT NULL,"
    "  commit_id TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  sha256 BLOB NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  PRIMARY KEY (repo, commit_id, path)"
    ") WITHOUT ROWID;",
};

int index_migrate(cellar_db *db)
{
    return cellar_db_migrate(db, "store_index", index_migrations,
                             sizeof index_migrations / sizeof index_migrations[0]);
}

/* Runs a prepared statement that returns no rows. */
static int step_done(cellar_db_stmt *st)
{
    int rc = cellar_db_step(st);
    return rc > 0 ? 0 : rc;
}

/* Binds a digest if d has it, else NULL (so COALESCE keeps the old value). */
static int bind_digest(cellar_db_stmt *st, int i, const cellar_digests *d, cellar_algo a,
                       size_t len)
{
    if (d->have & CELLAR_ALGO_BIT(a))
        return cellar_db_bind_blob(st, i, d->d[a], len);
    return cellar_db_bind_null(st, i);
}

int index_blob_put(cellar_db *db, const cellar_digests *d, uint64_t dev, uint64_t ino)
{
    if (!(d->have & CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256)))
        return cellar_fail(CELLAR_EINVAL, "index: a blob needs its sha256");
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(
        &st, db,
        "INSERT INTO blobs (sha256, size, blake3, gitsha1, dev, ino, added)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, strftime('%s','now'))"
        " ON CONFLICT (sha256) DO UPDATE SET"
        "  blake3 = COALESCE(excluded.blake3, blake3),"
        "  gitsha1 = COALESCE(excluded.gitsha1, gitsha1),"
        "  dev = COALESCE(excluded.dev, dev), ino = COALESCE(excluded.ino, ino)");
    if (rc)
        return rc;
    if (!(rc = cellar_db_bind_blob(st, 1, d->d[CELLAR_ALGO_SHA256], 32)) &&
        !(rc = cellar_db_bind_int64(st, 2, (int64_t)d->size)) &&
        !(rc = bind_digest(st, 3, d, CELLAR_ALGO_BLAKE3, 32)) &&
        !(rc = bind_digest(st, 4, d, CELLAR_ALGO_GITSHA1, 20))) {
        if (ino) {
            if (!(rc = cellar_db_bind_int64(st, 5, (int64_t)dev)))
                rc = cellar_db_bind_int64(st, 6, (int64_t)ino);
        } else if (!(rc = cellar_db_bind_null(st, 5))) {
            rc = cellar_db_bind_null(st, 6);
        }
    }
    if (!rc)
        rc = step_done(st);
    cellar_db_finalize(st);
    return rc;
}

int index_blob_set_xet(cellar_db *db, const uint8_t sha256[32], const char *xet_hex)
{
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(&st, db, "UPDATE blobs SET xet = ?2 WHERE sha256 = ?1");
    if (rc)
        return rc;
    if (!(rc = cellar_db_bind_blob(st, 1, sha256, 32)) &&
        !(rc = cellar_db_bind_text(st, 2, xet_hex)) && !(rc = step_done(st)) &&
        cellar_db_changes(db) == 0)
        rc = cellar_fail(CELLAR_ENOTFOUND, "index: no blob to attach xet hash %s to", xet_hex);
    cellar_db_finalize(st);
    return rc;
}

/* Runs a one-column (sha256) query: 1 found, 0 not. */
static int query_sha256(cellar_db_stmt *st, uint8_t sha256_out[32])
{
    int rc = cellar_db_step(st);
    if (rc == 1) {
        size_t n;
        const void *p = cellar_db_column_blob(st, 0, &n);
        if (n != 32)
            return cellar_fail(CELLAR_EDB, "index: a sha256 of %zu bytes", n);
        if (sha256_out)
            memcpy(sha256_out, p, 32);
    }
    return rc;
}

int index_blob_find(cellar_db *db, cellar_algo algo, const uint8_t *digest,
                    uint8_t sha256_out[32])
{
    const char *sql;
    size_t len;
    switch (algo) {
    case CELLAR_ALGO_SHA256:
        sql = "SELECT sha256 FROM blobs WHERE sha256 = ?1";
        len = 32;
        break;
    case CELLAR_ALGO_BLAKE3:
        sql = "SELECT sha256 FROM blobs WHERE blake3 = ?1";
        len = 32;
        break;
    case CELLAR_ALGO_GITSHA1:
        sql = "SELECT sha256 FROM blobs WHERE gitsha1 = ?1";
        len = 20;
        break;
    default:
        return cellar_fail(CELLAR_EINVAL, "the store is not indexed by %s",
                           cellar_algo_name(algo));
    }
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(&st, db, sql);
    if (rc)
        return rc;
    if (!(rc = cellar_db_bind_blob(st, 1, digest, len)))
        rc = query_sha256(st, sha256_out);
    cellar_db_finalize(st);
    return rc;
}

/* Copies a digest column into d if it has the right length. */
static void column_digest(cellar_db_stmt *st, int col, cellar_digests *d, cellar_algo a,
                          size_t len)
{
    size_t n;
    const void *p = cellar_db_column_blob(st, col, &n);
    if (p && n == len) {
        memcpy(d->d[a], p, len);
        d->have |= CELLAR_ALGO_BIT(a);
    }
}

int index_blob_get(cellar_db *db, const uint8_t sha256[32], cellar_digests *out)
{
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(&st, db,
                               "SELECT size, blake3, gitsha1 FROM blobs WHERE sha256 = ?1");
    if (rc)
        return rc;
    if (!(rc = cellar_db_bind_blob(st, 1, sha256, 32)) && (rc = cellar_db_step(st)) == 1) {
        memset(out, 0, sizeof *out);
        out->size = (uint64_t)cellar_db_column_int64(st, 0);
        memcpy(out->d[CELLAR_ALGO_SHA256], sha256, 32);
        out->have = CELLAR_ALGO_BIT(CELLAR_ALGO_SHA256);
        column_digest(st, 1, out, CELLAR_ALGO_BLAKE3, 32);
        column_digest(st, 2, out, CELLAR_ALGO_GITSHA1, 20);
    }
    cellar_db_finalize(st);
    return rc;
}

int index_blob_by_inode(cellar_db *db, uint64_t dev, uint64_t ino, uint8_t sha256_out[32])
{
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(&st, db, "SELECT sha256 FROM blobs WHERE ino = ?2 AND dev = ?1");
    if (rc)
        return rc;
    if (!(rc = cellar_db_bind_int64(st, 1, (int64_t)dev)) &&
        !(rc = cellar_db_bind_int64(st, 2, (int64_t)ino)))
        rc = query_sha256(st, sha256_out);
    cellar_db_finalize(st);
    return rc;
}

int index_blob_size_known(cellar_db *db, uint64_t size)
{
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(&st, db, "SELECT 1 FROM blobs WHERE size = ?1 LIMIT 1");
    if (rc)
        return rc;
    if (!(rc = cellar_db_bind_int64(st, 1, (int64_t)size)))
        rc = cellar_db_step(st);
    cellar_db_finalize(st);
    return rc;
}

/* Runs one statement with sha256 as its only parameter. */
static int exec_sha256(cellar_db *db, const char *sql, const uint8_t sha256[32])
{
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(&st, db, sql);
    if (rc)
        return rc;
    if (!(rc = cellar_db_bind_blob(st, 1, sha256, 32)))
        rc = step_done(st);
    cellar_db_finalize(st);
    return rc;
}

int index_blob_delete(cellar_db *db, const uint8_t sha256[32])
{
    cellar_db_lock(db);
    int rc = cellar_db_begin(db);
    if (!rc && !(rc = exec_sha256(db, "DELETE FROM places WHERE sha256 = ?1", sha256)) &&
        !(rc = exec_sha256(db, "DELETE FROM blobs WHERE sha256 = ?1", sha256)))
        rc = cellar_db_commit(db);
    if (rc)
        cellar_db_rollback(db);
    cellar_db_unlock(db);
    return rc;
}

int index_place_put(cellar_db *db, const char *path, const uint8_t sha256[32], int mode)
{
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(&st, db,
                               "INSERT OR REPLACE INTO places (path, sha256, mode)"
                               " VALUES (?1, ?2, ?3)");
    if (rc)
        return rc;
    if (!(rc = cellar_db_bind_text(st, 1, path)) && !(rc = cellar_db_bind_blob(st, 2, sha256, 32)) &&
        !(rc = cellar_db_bind_int64(st, 3, mode)))
        rc = step_done(st);
    cellar_db_finalize(st);
    return rc;
}

int index_place_delete(cellar_db *db, const char *path)
{
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(&st, db, "DELETE FROM places WHERE path = ?1");
    if (rc)
        return rc;
    if (!(rc = cellar_db_bind_text(st, 1, path)))
        rc = step_done(st);
    cellar_db_finalize(st);
    return rc;
}

int index_place_get(cellar_db *db, const char *path, uint8_t sha256_out[32], int *mode_out)
{
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(&st, db, "SELECT sha256, mode FROM places WHERE path = ?1");
    if (rc)
        return rc;
    if (!(rc = cellar_db_bind_text(st, 1, path)) && (rc = query_sha256(st, sha256_out)) == 1 &&
        mode_out)
        *mode_out = (int)cellar_db_column_int64(st, 1);
    cellar_db_finalize(st);
    return rc;
}

int index_place_foreach(cellar_db *db, const uint8_t sha256[32],
                        int (*cb)(const char *path, int mode, void *ctx), void *ctx)
{
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(&st, db,
                               "SELECT path, mode FROM places WHERE sha256 = ?1 ORDER BY path");
    if (rc)
        return rc;
    /* Collected first: cb may delete places as it goes. */
    cellar_buf paths;
    cellar_buf_init(&paths, 0);
    size_t count = 0;
    if (!(rc = cellar_db_bind_blob(st, 1, sha256, 32))) {
        while ((rc = cellar_db_step(st)) == 1) {
            const char *p = cellar_db_column_text(st, 0);
            int mode = (int)cellar_db_column_int64(st, 1);
            if (!p)
                continue;
            if ((rc = cellar_buf_append(&paths, &mode, sizeof mode)) ||
                (rc = cellar_buf_append(&paths, p, strlen(p) + 1)))
                break;
            count++;
        }
    }
    cellar_db_finalize(st);
    const char *p = paths.data;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        int mode;
        memcpy(&mode, p, sizeof mode);
        p += sizeof mode;
        rc = cb(p, mode, ctx);
        p += strlen(p) + 1;
    }
    cellar_buf_free(&paths);
    return rc;
}

static int snapshot_write(cellar_db *db, const char *repo, const char *revision,
                          const char *commit, size_t n, const char *const *paths,
                          const uint8_t (*sha256s)[32], const uint64_t *sizes)
{
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(&st, db, "DELETE FROM snapshot_files WHERE repo = ?1 AND commit_id = ?2");
    if (rc)
        return rc;
    if (!(rc = cellar_db_bind_text(st, 1, repo)) && !(rc = cellar_db_bind_text(st, 2, commit)))
        rc = step_done(st);
    cellar_db_finalize(st);
    if (rc)
        return rc;

    if ((rc = cellar_db_prepare(&st, db,
                                "INSERT OR REPLACE INTO snapshot_files"
                                " (repo, commit_id, path, sha256, size) VALUES (?1, ?2, ?3, ?4, ?5)")))
        return rc;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!(rc = cellar_db_bind_text(st, 1, repo)) && !(rc = cellar_db_bind_text(st, 2, commit)) &&
            !(rc = cellar_db_bind_text(st, 3, paths[i])) &&
            !(rc = cellar_db_bind_blob(st, 4, sha256s[i], 32)) &&
            !(rc = cellar_db_bind_int64(st, 5, (int64_t)sizes[i])))
            rc = step_done(st);
        cellar_db_reset(st);
    }
    cellar_db_finalize(st);
    if (rc)
        return rc;

    return index_ref_put(db, repo, revision, commit);
}

int index_ref_put(cellar_db *db, const char *repo, const char *revision, const char *commit)
{
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(&st, db,
                               "INSERT OR REPLACE INTO refs (repo, name, commit_id, updated)"
                               " VALUES (?1, ?2, ?3, strftime('%s','now'))");
    if (rc)
        return rc;
    if (!(rc = cellar_db_bind_text(st, 1, repo)) && !(rc = cellar_db_bind_text(st, 2, revision)) &&
        !(rc = cellar_db_bind_text(st, 3, commit)))
        rc = step_done(st);
    cellar_db_finalize(st);
    return rc;
}

int index_snapshot_put(cellar_db *db, const char *repo, const char *revision, const char *commit,
                       size_t n, const char *const *paths, const uint8_t (*sha256s)[32],
                       const uint64_t *sizes)
{
    cellar_db_lock(db);
    int rc = cellar_db_begin(db);
    if (!rc && !(rc = snapshot_write(db, repo, revision, commit, n, paths, sha256s, sizes)))
        rc = cellar_db_commit(db);
    if (rc)
        cellar_db_rollback(db);
    cellar_db_unlock(db);
    return rc;
}

/* The commit revision names in repo: a recorded ref, else revision itself
 * when some snapshot was recorded under it as a commit. */
static int resolve_commit(cellar_db *db, const char *repo, const char *revision, char **out)
{
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(
        &st, db,
        "SELECT commit_id FROM refs WHERE repo = ?1 AND name = ?2"
        " UNION ALL SELECT commit_id FROM snapshot_files WHERE repo = ?1 AND commit_id = ?2"
        " LIMIT 1");
    if (rc)
        return rc;
    *out = NULL;
    if (!(rc = cellar_db_bind_text(st, 1, repo)) && !(rc = cellar_db_bind_text(st, 2, revision))) {
        rc = cellar_db_step(st);
        if (rc == 1) {
            const char *c = cellar_db_column_text(st, 0);
            *out = cellar_strdup(c ? c : "");
            rc = *out ? 0 : CELLAR_ENOMEM;
        } else if (rc == 0) {
            rc = cellar_fail(CELLAR_ENOTFOUND, "%s@%s: no snapshot recorded", repo, revision);
        }
    }
    cellar_db_finalize(st);
    return rc;
}

int index_snapshot_get(cellar_db *db, const char *repo, const char *revision,
                       cellar_snapshot **out)
{
    *out = NULL;
    char *commit;
    int rc = resolve_commit(db, repo, revision, &commit);
    if (rc)
        return rc;
    cellar_snapshot *snap = cellar_calloc(1, sizeof *snap);
    if (!snap) {
        free(commit);
        return CELLAR_ENOMEM;
    }
    snap->commit = commit;
    snap->repo = cellar_strdup(repo);
    snap->revision = cellar_strdup(revision);
    if (!snap->repo || !snap->revision) {
        cellar_snapshot_free(snap);
        return CELLAR_ENOMEM;
    }
    cellar_db_stmt *st;
    if ((rc = cellar_db_prepare(&st, db,
                                "SELECT path, sha256, size FROM snapshot_files"
                                " WHERE repo = ?1 AND commit_id = ?2 ORDER BY path"))) {
        cellar_snapshot_free(snap);
        return rc;
    }
    size_t cap = 0;
    if (!(rc = cellar_db_bind_text(st, 1, repo)) && !(rc = cellar_db_bind_text(st, 2, commit))) {
        while ((rc = cellar_db_step(st)) == 1) {
            if ((rc = cellar_grow(&snap->files, &cap, snap->n, sizeof *snap->files, 16)))
                break;
            cellar_snapshot_file *f = &snap->files[snap->n];
            const char *p = cellar_db_column_text(st, 0);
            size_t len;
            const void *sha = cellar_db_column_blob(st, 1, &len);
            if (!p || len != 32) {
                rc = cellar_fail(CELLAR_EDB, "%s@%s: a malformed snapshot row", repo, revision);
                break;
            }
            if (!(f->path = cellar_strdup(p))) {
                rc = CELLAR_ENOMEM;
                break;
            }
            memcpy(f->sha256, sha, 32);
            f->size = (uint64_t)cellar_db_column_int64(st, 2);
            snap->n++;
        }
    }
    cellar_db_finalize(st);
    if (rc < 0) {
        cellar_snapshot_free(snap);
        return rc;
    }
    *out = snap;
    return 0;
}

void cellar_snapshot_free(cellar_snapshot *snap)
{
    if (!snap)
        return;
    for (size_t i = 0; i < snap->n; i++)
        free((char *)snap->files[i].path);
    free(snap->files);
    free((char *)snap->repo);
    free((char *)snap->revision);
    free((char *)snap->commit);
    free(snap);
}
