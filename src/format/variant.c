/* diffusers' weight variants: one rule for folders and DDUF archives. */
#include "variant.h"

#include <string.h>

static bool has_suffix(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n > k && !memcmp(s + n - k, suffix, k);
}

size_t cellar_weights_stem(const char *name, size_t n, bool *index)
{
    static const char idx[] = ".safetensors.index.json", st[] = ".safetensors";
    *index = has_suffix(name, n, idx);
    if (*index)
        return n - (sizeof idx - 1);
    return has_suffix(name, n, st) ? n - (sizeof st - 1) : 0;
}

bool cellar_weights_variant(const char *stem, size_t n, const char **variant, size_t *len)
{
    static const char shard[] = "-00000-of-00000";
    size_t k = sizeof shard - 1;
    if (n > k && stem[n - k] == '-' && !memcmp(stem + n - k + 6, "-of-", 4)) {
        bool digits = true;
        for (size_t i = 1; i < k; i++)
            if (i < 6 || i >= 10)
                digits &= stem[n - k + i] >= '0' && stem[n - k + i] <= '9';
        if (digits)
            n -= k;
    }
    const char *dot = NULL;
    for (size_t i = 0; i < n; i++)
        if (stem[i] == '.')
            dot = stem + i;
    *variant = dot ? dot + 1 : stem + n;
    *len = dot ? n - (size_t)(dot + 1 - stem) : 0;
    return dot != NULL;
}
