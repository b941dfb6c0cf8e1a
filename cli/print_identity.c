/* What a file is (cellar_identify_*), printed for inspect and ls. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

cellar_registry *cli_registry_open(void)
{
    const char *extra = getenv("CELLAR_REGISTRY");
    cellar_registry *r = NULL;
    if (cellar_registry_open(&r, extra && *extra ? extra : NULL) != 0) {
        cli_warn("%s (using the built-in registry alone)", cellar_error_last());
        cellar_error_clear();
        if (cellar_registry_open(&r, NULL) != 0)
            r = NULL; /* out of memory: lookups take NULL as the table */
    }
    return r;
}

void cli_identity_json(FILE *f, const cellar_identity *id)
{
    /* The library builds the object inspect shows under "model". */
    cellar_tree *t;
    if (cellar_identity_tree(&t, id) != 0) {
        cellar_error_clear();
        fputs("null", f);
        return;
    }
    cellar_tree_write_json(cellar_tree_root(t), cli_write_file, f);
    cellar_tree_free(t);
}
