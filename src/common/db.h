/* cellar's database ($CELLAR_HOME/cellar.db, SQLite in WAL mode), behind
 * this small API so that only db_sqlite.c includes sqlite3.h.
 *
 * The schema is an ordered list of migrations in db_sqlite.c; PRAGMA
 * user_version records how many have been applied. Each module appends its
 * own migrations at the end of that list (never edits an applied one).
 *
 * Concurrency: several cellar processes may use the database at once (WAL,
 * a busy timeout). Within a process one connection is shared by all threads;
 * a sequence of statements that must not interleave with another thread's
 * runs between cellar_db_lock() and cellar_db_unlock(). */
#ifndef CELLAR_DB_H
#define CELLAR_DB_H

#include "cellar.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cellar_db cellar_db;
typedef struct cellar_db_stmt cellar_db_stmt;

/* Opens (creating it and its directories, and migrating its schema) the
 * database at path; NULL means $CELLAR_HOME/cellar.db. Errors: CELLAR_EIO
 * (directory), CELLAR_EDB (SQLite, or a schema newer than this cellar). */
int cellar_db_open(cellar_db **out, const char *path);
void cellar_db_close(cellar_db *db);

/* The process's shared connection to $CELLAR_HOME/cellar.db, opened on first
 * use. cellar_db_shared_open returns the opening error (for callers that
 * need the database); cellar_db_shared returns NULL instead and leaves no
 * error set (for the hash cache, which degrades to no cache). */
int cellar_db_shared_open(cellar_db **out);
cellar_db *cellar_db_shared(void);

/* Holds the connection for a multi-statement sequence (recursive). */
void cellar_db_lock(cellar_db *db);
void cellar_db_unlock(cellar_db *db);

/* Runs one or more SQL statements without results. CELLAR_EDB on error
 * (CELLAR_EBUSY if another process held the lock past the timeout). */
int cellar_db_exec(cellar_db *db, const char *sql);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
int cellar_db_begin(cellar_db *db);
int cellar_db_commit(cellar_db *db);
void cellar_db_rollback(cellar_db *db);

/* Prepared statements. Parameters are numbered from 1, columns from 0.
 * step returns 1 for a row, 0 when done, or a negative code. */
int cellar_db_prepare(cellar_db_stmt **out, cellar_db *db, const char *sql);
int cellar_db_bind_int64(cellar_db_stmt *s, int i, int64_t v);
int cellar_db_bind_text(cellar_db_stmt *s, int i, const char *v);
int cellar_db_bind_blob(cellar_db_stmt *s, int i, const void *v, size_t n);
int cellar_db_bind_null(cellar_db_stmt *s, int i);
int cellar_db_step(cellar_db_stmt *s);
int64_t cellar_db_column_int64(cellar_db_stmt *s, int i);
/* Valid until the next step, reset or finalize; NULL for SQL NULL. */
const char *cellar_db_column_text(cellar_db_stmt *s, int i);
const void *cellar_db_column_blob(cellar_db_stmt *s, int i, size_t *n);
bool cellar_db_column_is_null(cellar_db_stmt *s, int i);
/* Clears bindings too, ready for the next use. */
void cellar_db_reset(cellar_db_stmt *s);
void cellar_db_finalize(cellar_db_stmt *s);
int64_t cellar_db_last_insert_rowid(cellar_db *db);
int cellar_db_changes(cellar_db *db);

/* ---- the hash cache (migration 1) ---- */

/* What identifies an unchanged file. */
typedef struct cellar_db_file_key {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
} cellar_db_file_key;

/* The cached digest of the file under algo (a label: "sha256", "autov3"...)
 * into out; returns its length (0 is a valid "not defined" entry), or -1 if
 * there is none for exactly this key or on any error (no error is set). */
int cellar_db_hash_get(cellar_db *db, const cellar_db_file_key *k, const char *algo,
                       uint8_t *out, size_t cap);
/* Records a digest, replacing what that file (device, inode) had under algo.
 * Failures are ignored: the cache is an optimisation. */
void cellar_db_hash_put(cellar_db *db, const cellar_db_file_key *k, const char *algo,
                        const uint8_t *d, size_t len);

#endif
