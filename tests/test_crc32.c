/* CRC-32: the folding and table paths against zlib's crc32() for every
 * length up to 1 KiB at every alignment, chained calls, and large buffers. */
#include "crc32.h"
#include "testutil.h"

#include <stdint.h>
#include <zlib.h>

int main(void)
{
    size_t n = (1 << 20) + 77;
    uint8_t *buf = malloc(n + 16);
    uint32_t x = 12345;
    for (size_t i = 0; i < n + 16; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    CHECK(cellar_crc32(0, "123456789", 9) == 0xcbf43926u); /* the check value */
    CHECK(cellar_crc32(0, NULL, 0) == 0);
    size_t bad = 0, bad_portable = 0;
    for (size_t align = 0; align < 16; align++)
        for (size_t len = 0; len <= 1024; len++) {
            uint32_t want = (uint32_t)crc32(0, buf + align, (uInt)len);
            bad += cellar_crc32(0, buf + align, len) != want;
            bad_portable += cellar_crc32_portable(0, buf + align, len) != want;
        }
    CHECK_MSG(bad == 0, "%zu lengths/alignments differ from zlib", bad);
    CHECK_MSG(bad_portable == 0, "%zu lengths/alignments differ from zlib (tables)",
              bad_portable);
    uint32_t want = (uint32_t)crc32(0, buf, (uInt)n);
    CHECK(cellar_crc32(0, buf, n) == want);
    /* Chained: any split gives the one-shot value. */
    uint32_t c = cellar_crc32(0, buf, 1000);
    c = cellar_crc32(c, buf + 1000, 63);
    c = cellar_crc32(c, buf + 1063, n - 1063);
    CHECK(c == want);
    CHECK(cellar_crc32(0xdeadbeef, buf, 5000) == (uint32_t)crc32(0xdeadbeef, buf, 5000));
    free(buf);
    return test_summary();
}
