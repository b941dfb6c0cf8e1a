/* An OCI Distribution (v2) registry client over http.h (OCI.md s.1, s.2):
 * ping, blobs (HEAD, fetch, monolithic and chunked upload, cross-repository
 * mount), manifests (PUT/GET by tag or digest, digest checked), tag lists
 * with Link pagination, and auth: anonymous, Basic, and the Bearer token
 * flow (token re-fetched on a 401). Credentials are never put into a
 * message and never sent to a host other than the registry's and its token
 * realm's. A cellar_reg is used by one thread at a time. */
#ifndef CELLAR_OCI_REGISTRY_H
#define CELLAR_OCI_REGISTRY_H

#include "http.h"

#include <stdbool.h>
#include <stdint.h>

#define CELLAR_OCI_MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
#define CELLAR_OCI_INDEX_TYPE "application/vnd.oci.image.index.v1+json"
/* Manifests and configs read at most this many bytes. */
#define CELLAR_OCI_MANIFEST_MAX (4u << 20)

/* "oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]" (the "oci://" is optional). */
typedef struct cellar_oci_ref {
    char *host;   /* "host[:port]" */
    char *repo;   /* lower-case path components [a-z0-9._-] */
    char *tag;    /* NULL if none (or a digest was given) */
    char *digest; /* "sha256:<hex>" or NULL */
} cellar_oci_ref;

/* CELLAR_EINVAL naming the rule broken. */
int cellar_oci_ref_parse(cellar_oci_ref *out, const char *s);
void cellar_oci_ref_clear(cellar_oci_ref *r);
/* A tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
bool cellar_oci_tag_valid(const char *tag);

typedef struct cellar_reg {
    cellar_http *http;
    char *base;     /* "http(s)://host[:port]" */
    char *host;     /* "host[:port]" */
    char *user;     /* NULL: anonymous */
    char *basic;    /* "Authorization: Basic ..." for user, or NULL */
    char *auth_line; /* the Authorization in use (Basic or Bearer), or NULL */
    char *realm, *service; /* the Bearer challenge, once seen */
    char *scope;    /* the scopes the current token was asked for */
    bool bearer;    /* the registry asked for a Bearer token */
    unsigned requests; /* requests sent (tests and benchmarks) */
    /* Told the bytes of a blob sent so far while an upload runs (see
     * cellar_http_req_opts.sent: non-zero stops it); NULL: nobody. */
    int (*sent)(uint64_t upto, void *ctx);
    void *sent_ctx;
} cellar_reg;

/* userpass: "user:password" or NULL (anonymous). Copied. */
int cellar_reg_open(cellar_reg **out, const char *host, bool plain_http, const char *userpass);
void cellar_reg_free(cellar_reg *r);

/* Credentials for host from a Docker config folder (config.json: "auths",
 * "credHelpers", "credsStore" through docker-credential-<name> get).
 * *userpass: "user:password" (allocated, wipe and free) or NULL if none
 * given for host. CELLAR_EFORMAT for a malformed file or helper answer. */
int cellar_reg_docker_creds(char **userpass, const char *config_dir, const char *host);

/* GET /v2/, authenticating if asked. CELLAR_ENET (not a registry),
 * CELLAR_EAUTH. */
int cellar_reg_ping(cellar_reg *r);

/* Makes sure the Authorization in use covers scope (space-separated
 * "repository:NAME:ACTIONS"); fetches a token when the registry wants
 * Bearer. Nothing to do for Basic or anonymous. */
int cellar_reg_authorize(cellar_reg *r, const char *scope);

/* A new Bearer token for the scope of the last one (it expired).
 * CELLAR_EAUTH when the registry does not use tokens. */
int cellar_reg_reauthorize(cellar_reg *r);

/* HEAD of a blob: 1 present (*size set, may be NULL), 0 absent, < 0. */
int cellar_reg_blob_exists(cellar_reg *r, const char *repo, const char *digest, uint64_t *size);

/* How cellar_reg_blob_push got the blob there (r->sent hears the upload's
 * progress and may stop it: the push then fails with its code). */
enum { CELLAR_REG_HAD = 0, CELLAR_REG_MOUNTED = 1, CELLAR_REG_UPLOADED = 2 };

/* Puts size bytes of fd (from offset 0) as blob digest into repo: nothing
 * if the registry has it, a mount from mount_from (may be NULL) if that
 * repository has it, else one upload (POST, then PUT ?digest= with the
 * whole body; chunk > 0: PATCHes of chunk bytes then the PUT). *how (may
 * be NULL) says which. CELLAR_EMISMATCH if the registry computed another
 * digest. */
int cellar_reg_blob_push(cellar_reg *r, const char *repo, const char *digest, int fd,
                         uint64_t size, const char *mount_from, uint64_t chunk, int *how);

/* A small blob (a config) into *out (at most limit bytes), its sha256
 * checked against digest: CELLAR_EMISMATCH if not. */
int cellar_reg_blob_fetch(cellar_reg *r, const char *repo, const char *digest, cellar_buf *out,
                          size_t limit);

/* PUT of a manifest (bytes stored verbatim) under ref (a tag or its
 * digest). digest_out (may be NULL, 72 bytes) gets "sha256:<hex>" of the
 * bytes, checked against what the registry answers. */
int cellar_reg_manifest_put(cellar_reg *r, const char *repo, const char *ref,
                            const char *media_type, const void *data, size_t len,
                            char digest_out[72]);
/* GET of a manifest by tag or digest (Accept: the OCI types); by digest its
 * bytes must hash to it, by tag to the Docker-Content-Digest given.
 * digest_out (72 bytes) gets the digest. */
int cellar_reg_manifest_get(cellar_reg *r, const char *repo, const char *ref, cellar_buf *out,
                            char digest_out[72]);
/* Every tag of repo, following Link pages; *tags is an array of *n strings
 * (free each and the array). */
int cellar_reg_tags(cellar_reg *r, const char *repo, char ***tags, size_t *n);

/* The URL of a blob; allocated. */
char *cellar_reg_blob_url(const cellar_reg *r, const char *repo, const char *digest);
/* A new HTTP client for another thread, carrying the Authorization in use
 * (call cellar_reg_authorize first). */
int cellar_reg_http_clone(cellar_http **out, const cellar_reg *r);
/* The error for a non-2xx answer, from the registry's JSON errors when the
 * body holds them. what names the object (may be NULL). */
int cellar_reg_status_error(const cellar_reg *r, const cellar_http_resp *resp,
                            const cellar_buf *body, const char *repo, const char *what);

/* base64 (RFC 4648, with padding); allocated. */
char *cellar_base64(const void *data, size_t len);
/* Decodes; *out allocated and NUL-terminated. false if not base64. */
bool cellar_unbase64(char **out, size_t *len, const char *s, size_t n);

#endif
