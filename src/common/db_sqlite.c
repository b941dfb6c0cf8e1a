/* cellar's database on SQLite: connection (reopened in a forked child),
 * per-module schema migrations and statement helpers. The only file that
 * includes sqlite3.h; the tables belong to the modules that use them. */
#include "db.h"

#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 30000

/* Databases written by cellar 0.1 numbered one global list of migrations in
 * PRAGMA user_version: 1 created the hash cache, 2 the store's index. Now
 * each module numbers its own (table cellar_schema) and user_version is
 * SCHEMA_MODULES, so a 0.1 cellar refuses the database instead of
 * misreading it. */
#define SCHEMA_MODULES 3
static const struct {
    int64_t user_version;
    const char *module;
} legacy[] = {{1, "hash_cache"}, {2, "store_index"}};

struct cellar_db {
    sqlite3 *sq;
    char *path;
    pthread_mutex_t mu;
    pid_t pid; /* the process sq belongs to */
};

/* Serialises the reopen after fork() of every connection of the process. */
static pthread_mutex_t fork_mu = PTHREAD_MUTEX_INITIALIZER;

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

static int db_connect(cellar_db *db);

/* A connection must not be used in a child of the process that opened it
 * (SQLite's rule: its locks and file state belong to the parent). The first
 * use in a child opens a new connection to the same file; the parent's is
 * left alone, never closed (closing it from the child could drop locks the
 * parent's SQLite believes it holds). */
static int db_check_fork(cellar_db *db)
{
    if (db->pid == getpid())
        return 0;
    pthread_mutex_lock(&fork_mu);
    int rc = 0;
    if (db->pid != getpid()) {
        /* The parent's mutex may have been held by a thread that does not
         * exist here. */
        pthread_mutexattr_t ma;
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&db->mu, &ma);
        pthread_mutexattr_destroy(&ma);
        db->sq = NULL;
        rc = db_connect(db);
    }
    pthread_mutex_unlock(&fork_mu);
    return rc;
}

void cellar_db_lock(cellar_db *db)
{
    db_check_fork(db);
    pthread_mutex_lock(&db->mu);
}

void cellar_db_unlock(cellar_db *db)
{
    pthread_mutex_unlock(&db->mu);
}

int cellar_db_exec(cellar_db *db, const char *sql)
{
    int rc = db_check_fork(db);
    if (rc)
        return rc;
    rc = sqlite3_exec(db->sq, sql, NULL, NULL, NULL);
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
    if (db->sq && !sqlite3_get_autocommit(db->sq))
        sqlite3_exec(db->sq, "ROLLBACK", NULL, NULL, NULL);
}

int cellar_db_prepare(cellar_db_stmt **out, cellar_db *db, const char *sql)
{
    *out = NULL;
    int frc = db_check_fork(db);
    if (frc)
        return frc;
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

bool cellar_db_in_txn(cellar_db *db)
{
    return db->pid == getpid() && db->sq && !sqlite3_get_autocommit(db->sq);
}

const char *cellar_db_path(const cellar_db *db)
{
    return db->path;
}

int64_t cellar_db_last_insert_rowid(cellar_db *db)
{
    return sqlite3_last_insert_rowid(db->sq);
}

int cellar_db_changes(cellar_db *db)
{
    return sqlite3_changes(db->sq);
}

static int query_int(cellar_db *db, const char *sql, const char *text, int64_t *out)
{
    cellar_db_stmt *st;
    int rc = cellar_db_prepare(&st, db, sql);
    if (rc)
        return rc;
    if (text)
        rc = cellar_db_bind_text(st, 1, text);
    if (rc == 0)
        rc = cellar_db_step(st);
    if (rc == 1) {
        *out = cellar_db_column_int64(st, 0);
        rc = 0;
    } else if (rc == 0) {
        *out = 0; /* no row: nothing applied */
    }
    cellar_db_finalize(st);
    return rc;
}

/* Inside the write transaction: makes sure cellar_schema exists, carrying
 * over what a 0.1 database's user_version says. */
static int schema_table(cellar_db *db)
{
    int64_t uv;
    int rc = query_int(db, "PRAGMA user_version", NULL, &uv);
    if (rc)
        return rc;
    if (uv == SCHEMA_MODULES)
        return 0;
    RETURN_ERROR_IF(uv > SCHEMA_MODULES, CELLAR_EDB,
                    "%s: schema version %lld is newer than this cellar's (%d)", db->path,
                    (long long)uv, SCHEMA_MODULES);
    if ((rc = cellar_db_exec(db, "CREATE TABLE IF NOT EXISTS cellar_schema ("
                                 "  module TEXT PRIMARY KEY,"
                                 "  version INTEGER NOT NULL"
                                 ") WITHOUT ROWID;")))
        return rc;
    for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++) {
        if (uv < legacy[i].user_version)
            continue;
        char sql[160];
        snprintf(sql, sizeof sql,
                 "INSERT OR IGNORE INTO cellar_schema (module, version) VALUES ('%s', 1)",
                 legacy[i].module);
        if ((rc = cellar_db_exec(db, sql)))
            return rc;
    }
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_MODULES);
    return cellar_db_exec(db, sql);
}

static int module_version(cellar_db *db, const char *module, int64_t *out)
{
    return query_int(db, "SELECT version FROM cellar_schema WHERE module = ?1", module, out);
}

int cellar_db_migrate(cellar_db *db, const char *module, const char *const *steps, size_t n)
{
    const int64_t latest = (int64_t)n;
    int64_t v = -1;
    /* Fast path, no write lock: already up to date (fails quietly on a
     * database without cellar_schema yet). */
    cellar_db_lock(db);
    int64_t uv = 0;
    if (query_int(db, "PRAGMA user_version", NULL, &uv) == 0 && uv == SCHEMA_MODULES &&
        module_version(db, module, &v) == 0 && v == latest) {
        cellar_db_unlock(db);
        cellar_error_clear();
        return 0;
    }
    cellar_error_clear();
    int rc;
    if ((rc = cellar_db_begin(db)))
        goto out;
    /* Another process may have migrated while we waited for the lock. */
    if ((rc = schema_table(db)) || (rc = module_version(db, module, &v)))
        goto fail;
    if (v > latest) {
        rc = cellar_fail(CELLAR_EDB, "%s: %s schema version %lld is newer than this cellar's (%lld)",
                         db->path, module, (long long)v, (long long)latest);
        goto fail;
    }
    for (int64_t i = v; i < latest; i++) {
        if ((rc = cellar_db_exec(db, steps[i]))) {
            cellar_fail_prefix("%s migration %lld", module, (long long)i + 1);
            goto fail;
        }
    }
    if (v < latest) {
        cellar_db_stmt *st;
        if ((rc = cellar_db_prepare(&st, db,
                                    "INSERT OR REPLACE INTO cellar_schema (module, version) "
                                    "VALUES (?1, ?2)")))
            goto fail;
        if (!(rc = cellar_db_bind_text(st, 1, module)) &&
            !(rc = cellar_db_bind_int64(st, 2, latest)))
            rc = cellar_db_step(st);
        cellar_db_finalize(st);
        if (rc < 0)
            goto fail;
    }
    if ((rc = cellar_db_commit(db)))
        goto fail;
    goto out;
fail:
    cellar_db_rollback(db);
out:
    cellar_db_unlock(db);
    return rc;
}

/* Opens db->sq on db->path for this process. */
static int db_connect(cellar_db *db)
{
    db->pid = getpid();
    int sqrc = sqlite3_open_v2(db->path, &db->sq,
                               SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                               NULL);
    if (sqrc != SQLITE_OK)
        return db_fail(db, sqrc, "open");
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
    if (sqrc != SQLITE_OK)
        return db_fail(db, sqrc, "PRAGMA journal_mode = WAL");
    return cellar_db_exec(db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
}

int cellar_db_open(cellar_db **out, const char *path)
{
    *out = NULL;
    RETURN_ERROR_IF(!path || !*path, CELLAR_EINVAL, "database: no path given");
    cellar_db *db = cellar_calloc(1, sizeof *db);
    if (!db)
        return CELLAR_ENOMEM;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&db->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    db->pid = getpid();

    int rc = 0;
    if (!(db->path = cellar_strdup(path))) {
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
    if ((rc = db_connect(db))) {
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
    /* In a child that never used it, the connection is the parent's. */
    if (db->sq && db->pid == getpid())
        sqlite3_close_v2(db->sq);
    pthread_mutex_destroy(&db->mu);
    free(db->path);
    free(db);
}
