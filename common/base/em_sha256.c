/* em_sha256.c -- SHA-256 through mbedtls (no home-made crypto). */
#include "em_sha256.h"

#include <mbedtls/sha256.h>

void em_sha256(const void *p, size_t n, uint8_t out[EM_SHA256_LEN])
{
    mbedtls_sha256_ret(p, n, out, 0);
}

void em_sha256_hex(const uint8_t sha[EM_SHA256_LEN], char hex[2 * EM_SHA256_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < EM_SHA256_LEN; i++) {
        hex[2 * i] = digits[sha[i] >> 4];
        hex[2 * i + 1] = digits[sha[i] & 15];
    }
    hex[2 * EM_SHA256_LEN] = '\0';
}
