/* Environment reads, each in a documented cellar_*_from_env() helper that a
 * program (the CLI) calls when it wants the user's environment to decide.
 * The other helpers of that kind live beside what they fill
 * (cellar_pull_opts_from_env in net/pull.c, cellar_oci_opts_from_env in
 * net/oci.c, cellar_blake3_isa_from_env in hash/blake3_dispatch.c); no
 * other libcellar code calls getenv(): a binding passes what it means. */
#include "util.h"

#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* $HOME, else the password database's home, else "/tmp". */
static const char *user_home(void)
{
    const char *h = env("HOME");
    if (h)
        return h;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/tmp";
}

/* $XDG_CACHE_HOME, else ~/.cache, allocated. */
static char *cache_root(void)
{
    const char *x = env("XDG_CACHE_HOME");
    return x ? cellar_strdup(x) : cellar_path_join(user_home(), ".cache");
}

int cellar_store_home_from_env(char **out)
{
    const char *v = env("CELLAR_HOME");
    if (v) {
        *out = cellar_strdup(v);
    } else {
        char *root = cache_root();
        *out = root ? cellar_path_join(root, "cellar") : NULL;
        free(root);
    }
    return *out ? 0 : CELLAR_ENOMEM;
}

int cellar_hf_cache_from_env(char **out)
{
    /* huggingface_hub's constants.py: HF_HUB_CACHE, its older name,
     * HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub. */
    const char *v = env("HF_HUB_CACHE");
    if (!v)
        v = env("HUGGINGFACE_HUB_CACHE");
    if (v) {
        *out = cellar_strdup(v);
    } else if ((v = env("HF_HOME"))) {
        *out = cellar_path_join(v, "hub");
    } else {
        char *root = cache_root();
        *out = root ? cellar_path_join(root, "huggingface/hub") : NULL;
        free(root);
    }
    return *out ? 0 : CELLAR_ENOMEM;
}
