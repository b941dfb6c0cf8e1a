/* The Hub's API as cellar speaks it (HUB.md): endpoint and token, repo
 * names, the revision -> commit call, the paginated tree listing, file URLs,
 * the checks on paths the server sends, and what its error answers mean.
 * Network through http.h only. */
#ifndef CELLAR_HUB_H
#define CELLAR_HUB_H

#include "http.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct cellar_hub {
    cellar_http *http;
    char *endpoint;  /* without a trailing slash */
    bool has_token;
} cellar_hub;

/* One file of a commit, as listed by the tree call. */
typedef struct cellar_hub_file {
    char *path;
    uint64_t size;
    bool lfs;            /* stored in LFS: sha256 known */
    uint8_t sha256[32];  /* LFS files only */
    uint8_t gitsha1[20]; /* the git blob id (git files only: LFS ones list the pointer's) */
} cellar_hub_file;

typedef struct cellar_hub_listing {
    char commit[41];
    size_t n, cap;
    cellar_hub_file *files;
} cellar_hub_listing;

/* endpoint: NULL for https://huggingface.co; token: NULL or "" for none.
 * No environment is read (cellar_pull_opts_from_env() does that). */
int cellar_hub_open(cellar_hub **out, const char *endpoint, const char *token);
void cellar_hub_free(cellar_hub *hub);

/* "org/name": two non-empty components of [A-Za-z0-9._-], none starting
 * with '.'; CELLAR_EINVAL otherwise. */
int cellar_hub_check_repo(const char *repo);
/* A path a server sent, safe to put under a directory: relative, no empty,
 * "." or ".." component, no backslash, no NUL or control character. */
bool cellar_hub_path_safe(const char *path, size_t len);

/* Resolves revision to its commit and lists every file of that commit
 * (following the listing's pages). Retries 429/5xx/transport failures with
 * backoff. Errors: CELLAR_EAUTH, CELLAR_ENOTFOUND (repo or revision),
 * CELLAR_EFORMAT (bad JSON or an unsafe path: nothing may be written),
 * CELLAR_ENET. */
int cellar_hub_list(cellar_hub_listing **out, cellar_hub *hub, const char *repo,
                    const char *revision);
void cellar_hub_listing_free(cellar_hub_listing *l);
/* Appends the files of one page of a tree listing (the JSON array the tree
 * call answers) to l (zeroed before the first page); directories are
 * skipped. Every path is checked, sizes and digests validated. Errors:
 * CELLAR_EFORMAT (naming repo), CELLAR_ENOMEM. */
int cellar_hub_parse_tree(cellar_hub_listing *l, const void *json, size_t len, const char *repo);

/* Refuses a listing that names one path twice, or a path both as a file
 * and as a folder of another ("a" and "a/b"): laid out on disk, one would
 * overwrite or hide the other. CELLAR_EFORMAT naming repo and the path,
 * CELLAR_ENOMEM. cellar_hub_list() runs it on the whole listing. */
int cellar_hub_listing_check(const cellar_hub_listing *l, const char *repo);

/* The resolve URL of path at commit; allocated. */
char *cellar_hub_file_url(const cellar_hub *hub, const char *repo, const char *commit,
                          const char *path);

/* The error for a non-2xx answer: 401/403 -> CELLAR_EAUTH (mentions the
 * token), 404 -> CELLAR_ENOTFOUND naming the repo, revision or file,
 * others -> CELLAR_ENET with the status. path may be NULL. */
int cellar_hub_status_error(const cellar_hub *hub, const cellar_http_resp *r, const char *repo,
                            const char *revision, const char *path);
/* Whether an answer is worth another try: transport failure, 429, 5xx. */
bool cellar_hub_retryable(int rc, const cellar_http_resp *r);
/* Milliseconds to wait before try number attempt (1, 2...): Retry-After
 * when the server gave one, else exponential from 250 ms, capped at 8 s. */
unsigned cellar_hub_backoff_ms(unsigned attempt, const cellar_http_resp *r);

/* How many times a request is tried before giving up. */
#define CELLAR_HUB_ATTEMPTS 6

#endif
