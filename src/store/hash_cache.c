/* The store's hash cache: table hash_cache in the store's cellar.db, served
 * to the hashing engine through the two-function cellar_hash_cache
 * interface, so hashing never sees the database. This module owns the
 * table's migrations. */
#include "store.h"

#include <string.h>

/* Applied in order, never edited once shipped (docs/store.md). */
static const char *const cache_migrations[] = {
    /* 1: (dev, ino, algo) is the key so that a changed file replaces its
     * stale row instead of adding one; size and times must still match
     * for a hit. */
    "CREATE TABLE hash_cache ("
    "  dev INTEGER NOT NULL,"
    "  ino INTEGER NOT NULL,"
    "  algo TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  mtime_ns INTEGER NOT NULL,"
    "  ctime_ns INTEGER NOT NULL,"
    "  digest BLOB NOT NULL,"
    "  PRIMARY KEY (dev, ino, algo)"
    ") WITHOUT ROWID;",
};

static int bind_entry(cellar_db_stmt *st, const cellar_hash_cache_entry *e)
{
    int rc;
    if ((rc = cellar_db_bind_int64(st, 1, (int64_t)e->file.dev)) ||
        (rc = cellar_db_bind_int64(st, 2, (int64_t)e->file.ino)) ||
        (rc = cellar_db_bind_text(st, 3, e->label)) ||
        (rc = cellar_db_bind_int64(st, 4, (int64_t)e->file.size)) ||
        (rc = cellar_db_bind_int64(st, 5, e->file.mtime_ns)) ||
        (rc = cellar_db_bind_int64(st, 6, e->file.ctime_ns)))
        return rc;
    return 0;
}

static int cache_lookup(cellar_hash_cache_entry *e, size_t n, void *ctx)
{
    cellar_db *db = ((cellar_store *)ctx)->db;
    cellar_db_stmt *st = NULL;
    cellar_db_lock(db);
    /* One read transaction for the batch, unless the caller's is open. */
    bool txn = !cellar_db_in_txn(db) && cellar_db_exec(db, "BEGIN") == 0;
    int rc = cellar_db_prepare(&st, db,
                               "SELECT digest FROM hash_cache WHERE dev = ?1 AND ino = ?2 AND "
                               "algo = ?3 AND size = ?4 AND mtime_ns = ?5 AND ctime_ns = ?6");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        e[i].len = -1;
        if ((rc = bind_entry(st, &e[i])))
            break;
        int row = cellar_db_step(st);
        if (row == 1) {
            size_t len;
            const void *p = cellar_db_column_blob(st, 0, &len);
            if (len <= CELLAR_DIGEST_MAX && (p || len == 0)) {
                if (len)
                    memcpy(e[i].digest, p, len);
                e[i].len = (int)len;
            }
        } else if (row < 0) {
            rc = row;
        }
        cellar_db_reset(st);
    }
    cellar_db_finalize(st);
    if (txn)
        cellar_db_exec(db, "COMMIT");
    cellar_db_unlock(db);
    return rc;
}

static int cache_record(const cellar_hash_cache_entry *e, size_t n, void *ctx)
{
    cellar_db *db = ((cellar_store *)ctx)->db;
    cellar_db_stmt *st = NULL;
    cellar_db_lock(db);
    bool txn = false;
    int rc = 0;
    if (!cellar_db_in_txn(db)) {
        if ((rc = cellar_db_begin(db)))
            goto done;
        txn = true;
    }
    rc = cellar_db_prepare(&st, db,
                           "INSERT OR REPLACE INTO hash_cache (dev, ino, algo, size, mtime_ns, "
                           "ctime_ns, digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (e[i].len < 0 || e[i].len > CELLAR_DIGEST_MAX)
            continue;
        if (!(rc = bind_entry(st, &e[i])) &&
            !(rc = cellar_db_bind_blob(st, 7, e[i].digest, (size_t)e[i].len)) &&
            (rc = cellar_db_step(st)) > 0)
            rc = 0;
        cellar_db_reset(st);
    }
    cellar_db_finalize(st);
    if (txn) {
        if (rc == 0)
            rc = cellar_db_commit(db);
        if (rc)
            cellar_db_rollback(db);
    }
done:
    cellar_db_unlock(db);
    return rc;
}

int store_cache_init(cellar_store *s)
{
    int rc = cellar_db_migrate(s->db, "hash_cache", cache_migrations,
                               sizeof cache_migrations / sizeof cache_migrations[0]);
    if (rc)
        return rc;
    s->cache = (cellar_hash_cache){
        .version = CELLAR_HASH_CACHE_VERSION,
        .lookup = cache_lookup,
        .record = cache_record,
        .ctx = s,
    };
    return 0;
}

const cellar_hash_cache *cellar_store_hash_cache(cellar_store *s)
{
    return s ? &s->cache : NULL;
}
