/* The one parser of digests written by people and tools: "algo:hex" or
 * bare hex (which, verify, hash -c). */
#include "cellar.h"
#include "util.h"

#include <string.h>

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i]) || !s[i])
            return false;
    return true;
}

int cellar_digest_parse(uint32_t *algos, uint8_t out[CELLAR_DIGEST_MAX], size_t *len,
                        const char *s, uint32_t bare)
{
    *algos = 0;
    *len = 0;
    RETURN_ERROR_IF(!s, CELLAR_EINVAL, "no digest");
    const char *hex = s;
    uint32_t may = bare & CELLAR_ALGO_ALL;
    const char *colon = strchr(s, ':');
    if (colon) {
        char name[32];
        size_t nl = (size_t)(colon - s);
        RETURN_ERROR_IF(nl == 0 || nl >= sizeof name, CELLAR_EINVAL,
                        "'%s': not a digest (algo:hex or hex)", s);
        memcpy(name, s, nl);
        name[nl] = '\0';
        cellar_algo a;
        if (cellar_algo_parse(&a, name) != 0)
            return cellar_fail_prefix("'%s'", s);
        may = CELLAR_ALGO_BIT(a);
        hex = colon + 1;
    }
    size_t hl = strlen(hex);
    RETURN_ERROR_IF(hl == 0 || hl % 2 || !all_hex(hex, hl), CELLAR_EINVAL,
                    "'%s': not a digest (hex digits expected)", s);
    uint32_t fit = 0;
    for (unsigned a = 0; a < CELLAR_ALGO__COUNT; a++)
        if ((may & CELLAR_ALGO_BIT(a)) && 2 * cellar_algo_len((cellar_algo)a) == hl)
            fit |= CELLAR_ALGO_BIT(a);
    if (!fit) {
        if (colon)
            return cellar_fail(CELLAR_EINVAL, "'%s': a %s digest has %zu hex digits, not %zu", s,
                               cellar_algo_name((cellar_algo)__builtin_ctz(may)),
                               2 * cellar_algo_len((cellar_algo)__builtin_ctz(may)), hl);
        return cellar_fail(CELLAR_EINVAL, "'%s': %zu hex digits is no digest length expected here",
                           s, hl);
    }
    (void)cellar_unhex(out, hex, hl / 2);
    *algos = fit;
    *len = hl / 2;
    return 0;
}
