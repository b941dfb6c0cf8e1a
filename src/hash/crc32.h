/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum of ZIP
 * entries: zlib's crc32() values, computed by carry-less multiplication
 * (PCLMULQDQ folding, about ten times zlib's table code) where the CPU has
 * it, else by slicing-by-8 tables. */
#ifndef CELLAR_CRC32_H
#define CELLAR_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (0 to start) over len bytes, as zlib's crc32(crc, p, len). */
uint32_t cellar_crc32(uint32_t crc, const void *data, size_t len);

/* The portable path alone (tests compare the two). */
uint32_t cellar_crc32_portable(uint32_t crc, const void *data, size_t len);

#endif
