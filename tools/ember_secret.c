/* ember_secret.c -- ember-secret: makes the cluster secret that every connection proves.
 *
 *   ember-secret [PATH]
 * Writes 32 random bytes as 64 hex digits to PATH (mode 0600; its directory made 0700 when
 * missing) unless the file exists, then prints the path. Without PATH it uses the place every
 * ember program looks: $EMBER_SECRET_FILE, else ~/.ember/cluster.secret. Copy the same file
 * to every node of the cluster (docs/security.md). Exit 0 when the file is there and valid.
 *
 *   ember-secret --stop-token [PATH]
 * Prints the token that the driver's status endpoint asks of a request stopping a streaming
 * query (POST /api/v1/streaming/queries/NAME/stop, header "Authorization: Bearer TOKEN"):
 * HMAC-SHA256 of the secret and what the token is for, so it grants that and nothing else.
 */
#include <ember/ember.h>
#include <stdio.h>
#include <string.h>

#include "em_secret.h"

/* stop_token prints the stop token of the secret at path */
static int stop_token(const char *option)
{
    char path[1024], err[1200], token[65];
    em_secret secret;
    em_secret_path(option, path, sizeof path);
    if (em_secret_load(path, &secret, err, sizeof err) != EMBER_OK) {
        fprintf(stderr, "ember-secret: %s\n", err);
        return 1;
    }
    if (!secret.set) {
        fprintf(stderr, "ember-secret: no cluster secret at %s (make one with ember-secret)\n",
                path);
        return 1;
    }
    em_secret_token(&secret, EM_STOP_TOKEN_PURPOSE, token);
    memset(&secret, 0, sizeof secret);
    printf("%s\n", token);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--stop-token") == 0 && argc <= 3)
        return stop_token(argc == 3 ? argv[2] : NULL);
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        int help = strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0;
        fprintf(help ? stdout : stderr,
                "usage: ember-secret [PATH]               make the cluster secret (default: "
                "$EMBER_SECRET_FILE, else ~/.ember/cluster.secret)\n"
                "       ember-secret --stop-token [PATH]  print the token that stops streaming "
                "queries through the status endpoint\n");
        return help ? 0 : 2;
    }
    char path[1024], err[1200];
    em_secret_path(argc == 2 ? argv[1] : NULL, path, sizeof path);
    int created;
    em_secret check;
    if (em_secret_create(path, &created, err, sizeof err) != EMBER_OK ||
        em_secret_load(path, &check, err, sizeof err) != EMBER_OK) {
        fprintf(stderr, "ember-secret: %s\n", err);
        return 1;
    }
    if (!check.set) {
        fprintf(stderr, "ember-secret: %s vanished while it was made\n", path);
        return 1;
    }
    memset(&check, 0, sizeof check);
    printf("%s\n", path);
    fprintf(stderr, "ember-secret: %s %s\n", created ? "created" : "kept the existing", path);
    return 0;
}
