/* What kind of weights a path holds, from its type and first bytes (the
 * inspect command's dispatch, and a binding's). */
#include "cellar.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cellar_format_name(cellar_format f)
{
    switch (f) {
    case CELLAR_FORMAT_UNKNOWN: return "unknown";
    case CELLAR_FORMAT_SAFETENSORS: return "safetensors";
    case CELLAR_FORMAT_GGUF: return "gguf";
    case CELLAR_FORMAT_DDUF: return "dduf";
    case CELLAR_FORMAT_FOLDER: return "folder";
    case CELLAR_FORMAT_PYTORCH: return "pytorch";
    }
    return "unknown";
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

int cellar_detect_format(cellar_format *out, const char *path)
{
    *out = CELLAR_FORMAT_UNKNOWN;
    RETURN_ERROR_IF(!path, CELLAR_EINVAL, "cellar_detect_format: no path");
    struct stat st;
    if (stat(path, &st) != 0)
        return cellar_fail_errno(errno, "%s", path);
    if (S_ISDIR(st.st_mode)) {
        *out = CELLAR_FORMAT_FOLDER;
        return 0;
    }
    if (!S_ISREG(st.st_mode))
        return 0; /* a FIFO or device is not read: it could block */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cellar_fail_errno(errno, "%s", path);
    unsigned char head[4] = {0};
    ssize_t n = cellar_full_read(fd, head, sizeof head);
    int err = errno;
    close(fd);
    if (n < 0)
        return cellar_fail_errno(err, "%s: read", path);
    if (n == 4 && !memcmp(head, "GGUF", 4))
        *out = CELLAR_FORMAT_GGUF;
    else if (cellar_pt_sniff(path)) /* before DDUF: a torch zip is a ZIP too */
        *out = CELLAR_FORMAT_PYTORCH;
    else if ((n == 4 && !memcmp(head, "PK\x03\x04", 4)) || ends_with(path, ".dduf"))
        *out = CELLAR_FORMAT_DDUF;
    else
        *out = CELLAR_FORMAT_SAFETENSORS; /* it has no magic: what nothing else claims */
    return 0;
}
