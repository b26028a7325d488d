/* em_secret.c -- finding, reading and making the cluster secret (see em_secret.h). */
#include "em_secret.h"

#include <ember/ember.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/md.h>

#include "em_sha256.h"

const char *em_secret_path(const char *option, char *buf, size_t len)
{
    const char *env = getenv("EMBER_SECRET_FILE"), *home = getenv("HOME");
    if (option && option[0])
        snprintf(buf, len, "%s", option);
    else if (env && env[0])
        snprintf(buf, len, "%s", env);
    else
        snprintf(buf, len, "%s/.ember/cluster.secret", home && home[0] ? home : "/root");
    return buf;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int em_secret_parse(const char *text, size_t len, em_secret *out)
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (len != 2 * EM_SECRET_LEN) return EMBER_ERR_MALFORMED;
    for (size_t i = 0; i < EM_SECRET_LEN; i++) {
        int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return EMBER_ERR_MALFORMED;
        out->key[i] = (uint8_t)(hi << 4 | lo);
    }
    out->set = 1;
    return EMBER_OK;
}

int em_secret_load(const char *path, em_secret *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return EMBER_OK;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read the cluster secret %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return EMBER_ERR_IO;
    }
    char text[2 * EM_SECRET_LEN + 8];
    ssize_t n = (st.st_mode & 077) ? -1 : read(fd, text, sizeof text);
    close(fd);
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "the cluster secret %s can be read by others (mode %03o): chmod 600 %s", path,
                 (unsigned)(st.st_mode & 0777), path);
        return EMBER_ERR_INVALID;
    }
    if (n < 0 || em_secret_parse(text, (size_t)n, out) != EMBER_OK) {
        memset(out, 0, sizeof *out);
        snprintf(err, errlen,
                 "the cluster secret %s is not 64 hex digits: make a new one with ember-secret",
                 path);
        return EMBER_ERR_MALFORMED;
    }
    return EMBER_OK;
}

/* make_parent makes the directory holding path (one level, mode 0700) when missing */
static int make_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    return mkdir(dir, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int em_secret_create(const char *path, int *created, char *err, size_t errlen)
{
    *created = 0;
    uint8_t key[EM_SECRET_LEN];
    char text[2 * EM_SECRET_LEN + 2];
    if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key) {
        snprintf(err, errlen, "cannot make a random secret: %s", strerror(errno));
        return EMBER_ERR_IO;
    }
    for (size_t i = 0; i < EM_SECRET_LEN; i++) snprintf(text + 2 * i, 3, "%02x", key[i]);
    text[2 * EM_SECRET_LEN] = '\n';
    memset(key, 0, sizeof key);
    if (make_parent(path) != 0) {
        snprintf(err, errlen, "cannot make the directory of %s: %s", path, strerror(errno));
        return EMBER_ERR_IO;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) return EMBER_OK;
    int ok = fd >= 0 && write(fd, text, 2 * EM_SECRET_LEN + 1) == 2 * EM_SECRET_LEN + 1;
    if (fd >= 0 && (close(fd) != 0 || !ok)) ok = 0;
    memset(text, 0, sizeof text);
    if (!ok) {
        snprintf(err, errlen, "cannot write the cluster secret %s: %s", path, strerror(errno));
        if (fd >= 0) unlink(path);
        return EMBER_ERR_IO;
    }
    *created = 1;
    return EMBER_OK;
}

void em_secret_token(const em_secret *s, const char *purpose, char hex[65])
{
    uint8_t mac[EM_SHA256_LEN];
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), s->key, EM_SECRET_LEN,
                    (const uint8_t *)purpose, strlen(purpose), mac);
    em_sha256_hex(mac, hex);
    memset(mac, 0, sizeof mac);
}

int em_secret_token_matches(const em_secret *s, const char *purpose, const char *given)
{
    if (!s || !s->set || !given || strlen(given) != 64) return 0;
    char want[65];
    em_secret_token(s, purpose, want);
    unsigned diff = 0;
    for (size_t i = 0; i < 64; i++) diff |= (unsigned)(want[i] ^ given[i]);
    memset(want, 0, sizeof want);
    return diff == 0;
}
