/* ember_secret.c -- ember-secret: makes the cluster secret that every connection proves.
 *
 *   ember-secret [PATH]
 * Writes 32 random bytes as 64 hex digits to PATH (mode 0600; its directory made 0700 when
 * missing) unless the file exists, then prints the path. Without PATH it uses the place every
 * ember program looks: $EMBER_SECRET_FILE, else ~/.ember/cluster.secret. Copy the same file
 * to every node of the cluster (docs/security.md). Exit 0 when the file is there and valid.
 */
#include <ember/ember.h>
#include <stdio.h>
#include <string.h>

#include "em_secret.h"

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))) {
        fprintf(argc > 2 ? stderr : stdout,
                "usage: ember-secret [PATH]   make the cluster secret (default: "
                "$EMBER_SECRET_FILE, else ~/.ember/cluster.secret)\n");
        return argc > 2 ? 2 : 0;
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
