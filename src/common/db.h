/* cellar's database (a store's cellar.db, SQLite in WAL mode), behind
 * this small API so that only db_sqlite.c includes sqlite3.h.
 *
 * Each module that keeps tables (the store's index, the store's hash
 * cache) owns an ordered list of migrations and applies it with
 * cellar_db_migrate(); table cellar_schema records how many of each
 * module's have been applied. A module appends to its own list, never
 * edits an applied entry.
 *
 * Concurrency: several cellar processes may use the database at once (WAL,
 * a busy timeout). Within a process one connection is shared by the
 * threads of its owner; a sequence of statements that must not interleave
 * with another thread's runs between cellar_db_lock() and
 * cellar_db_unlock(). After fork() the child's first use opens a
 * connection of its own (the parent's is never touched in the child). */
#ifndef CELLAR_DB_H
#define CELLAR_DB_H

#include "cellar.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cellar_db cellar_db;
typedef struct cellar_db_stmt cellar_db_stmt;

/* Opens (creating it and its directories) the database at path, in WAL
 * mode. No tables: each module migrates its own. Errors: CELLAR_EINVAL (no
 * path), CELLAR_EIO (directory), CELLAR_EDB (SQLite). */
int cellar_db_open(cellar_db **out, const char *path);
/* NULL-safe. */
void cellar_db_close(cellar_db *db);
/* The path it was opened with. */
const char *cellar_db_path(const cellar_db *db);

/* Brings module's tables to the last of its n migrations, each run in
 * order inside one write transaction. CELLAR_EDB if the database holds a
 * newer schema than this cellar knows (of the module, or of the database). */
int cellar_db_migrate(cellar_db *db, const char *module, const char *const *steps, size_t n);

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
/* True inside a transaction on this connection (statements then join it). */
bool cellar_db_in_txn(cellar_db *db);

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

#endif
