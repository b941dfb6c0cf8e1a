/* cellar's database on SQLite: connection, schema migrations, statement
 * helpers and the hash cache. The only file that includes sqlite3.h. */
#include "db.h"

#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#define BUSY_TIMEOUT_MS 30000

/* The schema, as an ordered list of migrations: entry i takes user_version
 * from i to i+1, inside one transaction. Append new entries at the end;
 * never edit or reorder one that has shipped. */
static const char *const migrations[] = {
    /* 1: the hash cache. (dev, ino, algo) is the key so that a changed file
     * replaces its stale row instead of adding one; size and times must
     * still match for a hit. */
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
    /* 2: the store's index (src/store/store_index.c). blobs: one row per object,
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

struct cellar_db {
    sqlite3 *sq;
    char *path;
    pthread_mutex_t mu;
    cellar_db_stmt *hash_get, *hash_put;
};

struct cellar_db_stmt {
    sqlite3_stmt *st;
    cellar_db *db;
};

static int db_fail(cellar_db *db, int sqrc, const char *what)
{
    int code = (sqrc & 0xff) == SQLITE_BUSY || (sqrc & 0xff) == SQLITE_LOCKED ? CELLAR_EBUSY
                                                                              : CELLAR_EDB;
    return cellar_fail(code, "%s: %s: %s", db && db->path ? db->path : "database", what,
                       db && db->sq ? sqlite3_errmsg(db->sq) : sqlite3_errstr(sqrc));
}

void cellar_db_lock(cellar_db *db)
{
    pthread_mutex_lock(&db->mu);
}

void cellar_db_unlock(cellar_db *db)
{
    pthread_mutex_unlock(&db->mu);
}

int cellar_db_exec(cellar_db *db, const char *sql)
{
    int rc = sqlite3_exec(db->sq, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_fail(db, rc, sql);
}

int cellar_db_begin(cellar_db *db)
{
    return cellar_db_exec(db, "BEGIN IMMEDIATE");
}

int cellar_db_commit(cellar_db *db)
{
    return cellar_db_exec(db, "COMMIT");
}

void cellar_db_rollback(cellar_db *db)
{
    if (!sqlite3_get_autocommit(db->sq))
        sqlite3_exec(db->sq, "ROLLBACK", NULL, NULL, NULL);
}

int cellar_db_prepare(cellar_db_stmt **out, cellar_db *db, const char *sql)
{
    *out = NULL;
    cellar_db_stmt *s = cellar_calloc(1, sizeof *s);
    if (!s)
        return CELLAR_ENOMEM;
    int rc = sqlite3_prepare_v3(db->sq, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st, NULL);
    if (rc != SQLITE_OK) {
        free(s);
        return db_fail(db, rc, sql);
    }
    s->db = db;
    *out = s;
    return 0;
}

static int bind_rc(cellar_db_stmt *s, int rc)
{
    return rc == SQLITE_OK ? 0 : db_fail(s->db, rc, "bind");
}

int cellar_db_bind_int64(cellar_db_stmt *s, int i, int64_t v)
{
    return bind_rc(s, sqlite3_bind_int64(s->st, i, v));
}

int cellar_db_bind_text(cellar_db_stmt *s, int i, const char *v)
{
    return bind_rc(s, sqlite3_bind_text(s->st, i, v, -1, SQLITE_TRANSIENT));
}

int cellar_db_bind_blob(cellar_db_stmt *s, int i, const void *v, size_t n)
{
    /* A zero-length blob must not become NULL: give SQLite a valid pointer. */
    return bind_rc(s, sqlite3_bind_blob64(s->st, i, n ? v : "", n, SQLITE_TRANSIENT));
}

int cellar_db_bind_null(cellar_db_stmt *s, int i)
{
    return bind_rc(s, sqlite3_bind_null(s->st, i));
}

int cellar_db_step(cellar_db_stmt *s)
{
    int rc = sqlite3_step(s->st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return db_fail(s->db, rc, sqlite3_sql(s->st));
}

int64_t cellar_db_column_int64(cellar_db_stmt *s, int i)
{
    return sqlite3_column_int64(s->st, i);
}

const char *cellar_db_column_text(cellar_db_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s->st, i);
}

const void *cellar_db_column_blob(cellar_db_stmt *s, int i, size_t *n)
{
    const void *p = sqlite3_column_blob(s->st, i);
    *n = (size_t)sqlite3_column_bytes(s->st, i);
    return p;
}

bool cellar_db_column_is_null(cellar_db_stmt *s, int i)
{
    return sqlite3_column_type(s->st, i) == SQLITE_NULL;
}

void cellar_db_reset(cellar_db_stmt *s)
{
    sqlite3_reset(s->st);
    sqlite3_clear_bindings(s->st);
}

void cellar_db_finalize(cellar_db_stmt *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->st);
    free(s);
}

int64_t cellar_db_last_insert_rowid(cellar_db *db)
{
    return sqlite3_last_insert_rowid(db->sq);
}

int cellar_db_changes(cellar_db *db)
{
    return sqlite3_changes(db->sq);
}

static int user_version(cellar_db *db, int64_t *out)
{
    cellar_db_stmt *s;
    int rc = cellar_db_prepare(&s, db, "PRAGMA user_version");
    if (rc)
        return rc;
    rc = cellar_db_step(s);
    if (rc == 1) {
        *out = cellar_db_column_int64(s, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = cellar_fail(CELLAR_EDB, "%s: PRAGMA user_version returned nothing", db->path);
    }
    cellar_db_finalize(s);
    return rc;
}

static int migrate(cellar_db *db)
{
    const int64_t latest = (int64_t)(sizeof migrations / sizeof migrations[0]);
    int64_t v;
    /* Fast path, no write lock: already up to date. */
    int rc = user_version(db, &v);
    if (rc)
        return rc;
    if (v == latest)
        return 0;
    if ((rc = cellar_db_begin(db)))
        return rc;
    /* Another process may have migrated while we waited for the lock. */
    if ((rc = user_version(db, &v)))
        goto fail;
    if (v > latest) {
        rc = cellar_fail(CELLAR_EDB, "%s: schema version %lld is newer than this cellar's (%lld)",
                         db->path, (long long)v, (long long)latest);
        goto fail;
    }
    for (; v < latest; v++) {
        if ((rc = cellar_db_exec(db, migrations[v]))) {
            cellar_fail_prefix("migration %lld", (long long)v + 1);
            goto fail;
        }
    }
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)latest);
    if ((rc = cellar_db_exec(db, sql)) || (rc = cellar_db_commit(db)))
        goto fail;
    return 0;
fail:
    cellar_db_rollback(db);
    return rc;
}

int cellar_db_open(cellar_db **out, const char *path)
{
    *out = NULL;
    cellar_db *db = cellar_calloc(1, sizeof *db);
    if (!db)
        return CELLAR_ENOMEM;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&db->mu, &ma);
    pthread_mutexattr_destroy(&ma);

    int rc = 0;
    if (path) {
        db->path = cellar_strdup(path);
    } else {
        char *home = cellar_home_dir();
        db->path = home ? cellar_path_join(home, "cellar.db") : NULL;
        free(home);
    }
    if (!db->path) {
        cellar_db_close(db);
        return CELLAR_ENOMEM;
    }
    char *slash = strrchr(db->path, '/');
    if (slash && slash != db->path) {
        *slash = '\0';
        rc = cellar_mkdirs(db->path, 0755);
        *slash = '/';
        if (rc) {
            cellar_db_close(db);
            return rc;
        }
    }
    int sqrc = sqlite3_open_v2(db->path, &db->sq,
                               SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                               NULL);
    if (sqrc != SQLITE_OK) {
        rc = db_fail(db, sqrc, "open");
        cellar_db_close(db);
        return rc;
    }
    sqlite3_extended_result_codes(db->sq, 1);
    sqlite3_busy_timeout(db->sq, BUSY_TIMEOUT_MS);
    /* WAL: readers never block the writer; NORMAL sync is durable across a
     * process crash and keeps a commit from costing an fsync. Switching a
     * new database to WAL needs an exclusive lock the busy handler does not
     * wait for (two processes creating the store at once), so that one
     * statement is retried for the busy timeout. */
    for (int waited = 0;; waited += 10) {
        sqrc = sqlite3_exec(db->sq, "PRAGMA journal_mode = WAL;", NULL, NULL, NULL);
        if ((sqrc & 0xff) != SQLITE_BUSY || waited >= BUSY_TIMEOUT_MS)
            break;
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if ((sqrc & 0xff) == SQLITE_IOERR || (sqrc & 0xff) == SQLITE_FULL) {
        /* A full disk: the -shm file WAL readers share cannot be made. With
         * exclusive locking SQLite keeps that index in memory instead, so
         * the store still opens (gc must, to free space); other processes
         * wait for this one meanwhile. */
        sqlite3_close_v2(db->sq);
        db->sq = NULL;
        sqrc = sqlite3_open_v2(db->path, &db->sq, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                               NULL);
        if (sqrc == SQLITE_OK) {
            sqlite3_extended_result_codes(db->sq, 1);
            sqlite3_busy_timeout(db->sq, BUSY_TIMEOUT_MS);
            sqrc = sqlite3_exec(db->sq, "PRAGMA locking_mode = EXCLUSIVE;", NULL, NULL, NULL);
        }
        if (sqrc == SQLITE_OK)
            sqrc = sqlite3_exec(db->sq, "PRAGMA journal_mode = WAL;", NULL, NULL, NULL);
    }
    if (sqrc != SQLITE_OK) {
        rc = db_fail(db, sqrc, "PRAGMA journal_mode = WAL");
        cellar_db_close(db);
        return rc;
    }
    if ((rc = cellar_db_exec(db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")) ||
        (rc = migrate(db))) {
        cellar_db_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

void cellar_db_close(cellar_db *db)
{
    if (!db)
        return;
    cellar_db_finalize(db->hash_get);
    cellar_db_finalize(db->hash_put);
    if (db->sq)
        sqlite3_close_v2(db->sq);
    pthread_mutex_destroy(&db->mu);
    free(db->path);
    free(db);
}

static pthread_once_t shared_once = PTHREAD_ONCE_INIT;
static cellar_db *shared_db;
static int shared_rc;
static char shared_msg[1024];

static void shared_open(void)
{
    shared_rc = cellar_db_open(&shared_db, NULL);
    if (shared_rc) {
        snprintf(shared_msg, sizeof shared_msg, "%s", cellar_error_last());
        cellar_error_clear();
    }
}

int cellar_db_shared_open(cellar_db **out)
{
    pthread_once(&shared_once, shared_open);
    *out = shared_db;
    if (shared_rc)
        return cellar_fail(shared_rc, "%s", shared_msg);
    return 0;
}

cellar_db *cellar_db_shared(void)
{
    pthread_once(&shared_once, shared_open);
    return shared_db;
}

/* ---- the hash cache ------------------------------------------------------ */

static int bind_key(cellar_db_stmt *s, const cellar_db_file_key *k, const char *algo)
{
    int rc;
    if ((rc = cellar_db_bind_int64(s, 1, (int64_t)k->dev)) ||
        (rc = cellar_db_bind_int64(s, 2, (int64_t)k->ino)) ||
        (rc = cellar_db_bind_text(s, 3, algo)) ||
        (rc = cellar_db_bind_int64(s, 4, (int64_t)k->size)) ||
        (rc = cellar_db_bind_int64(s, 5, k->mtime_ns)) ||
        (rc = cellar_db_bind_int64(s, 6, k->ctime_ns)))
        return rc;
    return 0;
}

int cellar_db_hash_get(cellar_db *db, const cellar_db_file_key *k, const char *algo,
                       uint8_t *out, size_t cap)
{
    int found = -1;
    cellar_db_lock(db);
    if (!db->hash_get &&
        cellar_db_prepare(&db->hash_get, db,
                          "SELECT digest FROM hash_cache WHERE dev = ?1 AND ino = ?2 AND "
                          "algo = ?3 AND size = ?4 AND mtime_ns = ?5 AND ctime_ns = ?6"))
        goto done;
    if (bind_key(db->hash_get, k, algo) == 0 && cellar_db_step(db->hash_get) == 1) {
        size_t n;
        const void *p = cellar_db_column_blob(db->hash_get, 0, &n);
        if (n <= cap && (p || n == 0)) {
            if (n)
                memcpy(out, p, n);
            found = (int)n;
        }
    }
    cellar_db_reset(db->hash_get);
done:
    cellar_db_unlock(db);
    return found;
}

void cellar_db_hash_put(cellar_db *db, const cellar_db_file_key *k, const char *algo,
                        const uint8_t *d, size_t len)
{
    cellar_db_lock(db);
    if (!db->hash_put &&
        cellar_db_prepare(&db->hash_put, db,
                          "INSERT OR REPLACE INTO hash_cache (dev, ino, algo, size, mtime_ns, "
                          "ctime_ns, digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"))
        goto done;
    if (bind_key(db->hash_put, k, algo) == 0 && cellar_db_bind_blob(db->hash_put, 7, d, len) == 0)
        cellar_db_step(db->hash_put);
    cellar_db_reset(db->hash_put);
done:
    cellar_db_unlock(db);
}
