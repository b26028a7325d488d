/* ember_flow.c -- ember-flow: checks, explains and runs workflow documents (docs/flows.md).
 *
 *   ember-flow --validate FLOW.json        checks the document; the first error, or "ok"
 *   ember-flow --explain FLOW.json         prints the stages each sink runs and the columns
 *   ember-flow run FLOW.json [ember-submit options]
 *   ember-flow --stop NAME [ember-submit options]
 *
 * Checking needs no cluster. `run` checks first, then hands over to ember-submit (beside this
 * program) with the flow job library (EMBER_FLOW_LIB, else ../lib/ember_flow.so beside this
 * program) and the document: a flow is uploaded, scheduled, retried and shown as any job.
 * Exit status: 0, 1 (the flow failed), 2 (bad arguments or an invalid flow).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "em_flow.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: ember-flow --validate FLOW.json\n"
                 "       ember-flow --explain FLOW.json\n"
                 "       ember-flow run FLOW.json [ember-submit options: --driver URL, --kafka "
                 "BROKERS, --detach, ...]\n"
                 "       ember-flow --stop NAME [ember-submit options]\n"
                 "The document's format: docs/flows.md (JSON Schema: docs/flow-schema.json).\n");
}

/* load reads and checks a flow document; prints the first error */
static em_flow *load(const char *path, char **text, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "ember-flow: cannot open %s: %m\n", path);
        return NULL;
    }
    *text = malloc(EM_FLOW_TEXT_MAX + 1);
    *len = *text ? fread(*text, 1, EM_FLOW_TEXT_MAX + 1, fp) : 0;
    fclose(fp);
    char err[2048];
    em_flow *f = *text ? em_flow_load(*text, *len, err, sizeof err) : NULL;
    if (!f) fprintf(stderr, "ember-flow: %s: %s\n", path, *text ? err : "out of memory");
    return f;
}

/* beside gives the path of `name` relative to this program's directory */
static int beside(const char *name, char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash) return -1;
    *slash = '\0';
    return snprintf(out, cap, "%s/%s", self, name) < (int)cap ? 0 : -1;
}

/* submit execs ember-submit with `opts`, then `lib -- --flow FILE` when lib is given */
static int submit(char **opts, int n_opts, const char *lib, const char *flow_path)
{
    char exe[PATH_MAX], flow_abs[PATH_MAX];
    if (beside("ember-submit", exe, sizeof exe) != 0) {
        fprintf(stderr, "ember-flow: cannot find ember-submit beside ember-flow\n");
        return 1;
    }
    char **argv = calloc((size_t)n_opts + 6, sizeof *argv);
    if (!argv) return 1;
    int a = 0;
    argv[a++] = exe;
    for (int k = 0; k < n_opts; k++) argv[a++] = opts[k];
    if (lib) {
        if (!realpath(flow_path, flow_abs)) {
            fprintf(stderr, "ember-flow: %s: %m\n", flow_path);
            free(argv);
            return 2;
        }
        argv[a++] = (char *)lib;
        argv[a++] = "--";
        argv[a++] = "--flow";
        argv[a++] = flow_abs;
    }
    execv(exe, argv);
    fprintf(stderr, "ember-flow: cannot run %s: %m\n", exe);
    free(argv);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--stop") == 0) return submit(argv + 1, argc - 1, NULL, NULL);
    int validate = strcmp(cmd, "--validate") == 0, explain = strcmp(cmd, "--explain") == 0;
    if (!validate && !explain && strcmp(cmd, "run") != 0) {
        fprintf(stderr, "ember-flow: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    if (argc < 3 || ((validate || explain) && argc != 3)) {
        usage(stderr);
        return 2;
    }
    char *text = NULL;
    size_t len;
    em_flow *f = load(argv[2], &text, &len);
    free(text);
    if (!f) return 2;
    if (validate) printf("%s: ok: flow %s, %d nodes\n", argv[2], f->name, f->n);
    if (explain) em_flow_explain(f, stdout);
    em_flow_free(f);
    if (validate || explain) return 0;
    char lib[PATH_MAX];
    const char *env = getenv("EMBER_FLOW_LIB");
    if (env && *env)
        snprintf(lib, sizeof lib, "%s", env);
    else if (beside("../lib/ember_flow.so", lib, sizeof lib) != 0)
        return 1;
    if (access(lib, R_OK) != 0) {
        fprintf(stderr, "ember-flow: the flow job library %s is missing (EMBER_FLOW_LIB)\n", lib);
        return 1;
    }
    return submit(argv + 3, argc - 3, lib, argv[2]);
}
