/* em_sha256.h -- SHA-256 (mbedtls) for content-addressing job libraries. */
#ifndef EM_SHA256_H
#define EM_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define EM_SHA256_LEN 32

void em_sha256(const void *p, size_t n, uint8_t out[EM_SHA256_LEN]);
/* em_sha256_hex writes 64 hex digits and a NUL into hex (65 bytes). */
void em_sha256_hex(const uint8_t sha[EM_SHA256_LEN], char hex[2 * EM_SHA256_LEN + 1]);

#endif
