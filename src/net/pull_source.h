/* Where cellar_pull's download engine (pull.c) takes blobs from when it is
 * not the Hub: an OCI registry (oci.c). The engine keeps every rule of a Hub
 * pull (only missing blobs, hashed while streaming, resumed by range,
 * parallel, same layouts); the source only says which URL serves a file,
 * how a worker thread opens its HTTP client, and how an error answer is
 * worded. Also the team cache's two steps around a Hub pull. */
#ifndef CELLAR_PULL_SOURCE_H
#define CELLAR_PULL_SOURCE_H

#include "hub.h"

typedef struct cellar_pull_source {
    void *ctx;
    /* The URL of f's bytes (f->sha256 set); allocated. */
    char *(*blob_url)(void *ctx, const cellar_hub_file *f);
    /* A cellar_hub whose http carries the source's auth, for one worker
     * thread (endpoint may be a copy of the base URL). */
    int (*open_hub)(cellar_hub **out, void *ctx);
    /* The error for a final non-2xx answer for path. */
    int (*status_error)(void *ctx, const cellar_http_resp *resp, const char *path);
    /* A 401: new credentials into hub's client (0: try again). May be NULL.
     * Called from worker threads. */
    int (*refresh)(void *ctx, cellar_hub *hub);
} cellar_pull_source;

/* Runs the engine on a listing the caller made (every file with its
 * sha256 for a registry). hub: worker 0's client (src->open_hub's). record:
 * record the snapshot (repo, revision, l->commit) and lay it out;
 * hf_name: the HF layout's folder after "models--". res as cellar_pull's. */
int cellar_pull_listing(cellar_store *s, const cellar_pull_source *src, cellar_hub *hub,
                        const cellar_hub_listing *l, const char *repo, const char *revision,
                        const char *hf_name, bool record, const cellar_pull_opts *o,
                        cellar_pull_result *res);

/* The team cache (oci.c, docs/oci.md). */
typedef struct cellar_remote cellar_remote;
/* home: the store whose blobs are offered (its folder; an uploader thread
 * opens its own handle), NULL for no uploader. */
int cellar_remote_open(cellar_remote **out, const char *ref, const cellar_oci_opts *o,
                       const char *home);
/* Queues a blob just stored for upload while the pull goes on (from any
 * thread; best effort: a blob not sent here goes in cellar_remote_share). */
void cellar_remote_offer(cellar_remote *r, const uint8_t sha256[32], uint64_t size);
void cellar_remote_free(cellar_remote *r);
/* Takes every file of want (files of repo at want->commit) that the
 * registry holds into the store: LFS files by sha256, files kept in git by
 * the manifest shared for repo at that commit. Counts what it took. */
int cellar_remote_fetch(cellar_remote *r, cellar_store *s, const cellar_hub_listing *want,
                        const char *repo, const cellar_pull_opts *o, uint64_t *files,
                        uint64_t *bytes);
/* Waits for the uploader, then puts every file of a finished pull into the
 * registry (what it still lacks) and
 * a manifest tagged for repo + revision and repo + commit. */
int cellar_remote_share(cellar_remote *r, cellar_store *s, const char *repo, const char *revision,
                        const cellar_pull_result *res, uint64_t *files, uint64_t *bytes);

#endif
