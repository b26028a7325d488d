/* ember_flow.c -- ember-flow: checks, explains and runs workflow documents (docs/flows.md).
 *
 *   ember-flow --validate FLOW.json [--checkpoint DIR] [--library LIB.so]   checks the
 *                                            document: the first error, or "ok"
 *   ember-flow --explain FLOW.json [--checkpoint DIR] [--library LIB.so]    prints the stages
 *                                            each sink runs and the columns
 *   ember-flow run FLOW.json [--checkpoint DIR] [--library LIB.so] [ember-submit options]
 *   ember-flow --stop NAME [ember-submit options]
 *
 * Checking needs no cluster. `run` checks first, then hands over to ember-submit (beside this
 * program) with the flow job library and the document: a flow is uploaded, scheduled, retried
 * and shown as any job. The library is --library (a library of the flow's functions linked
 * with lib/libember_flow.a), else EMBER_FLOW_LIB, else ../lib/ember_flow.so beside this
 * program; with --library, --validate and --explain check the functions the flow calls against
 * it (it is loaded here). --checkpoint DIR sets a streaming flow's checkpoint (the document's
 * "checkpoint"); a relative DIR is made absolute here. Exit status: 0, 1 (the flow failed), 2
 * (bad arguments or an invalid flow).
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "em_flow.h"
#include "em_flow_fn.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ember-flow --validate FLOW.json [--checkpoint DIR] [--library LIB.so]\n"
            "       ember-flow --explain FLOW.json [--checkpoint DIR] [--library LIB.so]\n"
            "       ember-flow run FLOW.json [--checkpoint DIR] [--library LIB.so] [ember-submit "
            "options: --driver URL, --kafka BROKERS, --detach, ...]\n"
            "       ember-flow --stop NAME [ember-submit options]\n"
            "The document's format: docs/flows.md (JSON Schema: docs/flow-schema.json).\n");
}

/* load reads and checks a flow document (with its checkpoint set to `checkpoint`, if given);
 * prints the first error */
static em_flow *load(const char *path, const char *checkpoint, char **text, size_t *len)
{
    char err[2048];
    *text = em_flow_read(path, checkpoint, len, err, sizeof err);
    em_flow *f = *text ? em_flow_load(*text, *len, err, sizeof err) : NULL;
    if (!*text)
        fprintf(stderr, "ember-flow: %s\n", err); /* it names the file */
    else if (!f)
        fprintf(stderr, "ember-flow: %s: %s\n", path, err);
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

/* submit execs ember-submit with `opts`, then `lib -- --flow FILE [--checkpoint DIR]` when lib
 * is given */
static int submit(char **opts, int n_opts, const char *lib, const char *flow_path,
                  const char *checkpoint)
{
    char exe[PATH_MAX], flow_abs[PATH_MAX];
    if (beside("ember-submit", exe, sizeof exe) != 0) {
        fprintf(stderr, "ember-flow: cannot find ember-submit beside ember-flow\n");
        return 1;
    }
    char **argv = calloc((size_t)n_opts + 8, sizeof *argv);
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
        if (checkpoint) {
            argv[a++] = "--checkpoint";
            argv[a++] = (char *)checkpoint;
        }
    }
    execv(exe, argv);
    fprintf(stderr, "ember-flow: cannot run %s: %m\n", exe);
    free(argv);
    return 1;
}

/* the library the flow's functions are looked up in (--validate, --explain --library) */
static void *functions;
static const void *in_library(const char *name, size_t size)
{
    return em_fn_lookup(functions, name, size);
}

/* take_path removes "OPTION PATH" from argv[from..argc) and gives PATH made absolute in buf
 * (NULL when absent; "" after a missing PATH) */
static const char *take_path(int *argc, char **argv, int from, const char *option, char *buf,
                             size_t cap)
{
    for (int k = from; k < *argc; k++) {
        if (strcmp(argv[k], option) != 0) continue;
        const char *dir = k + 1 < *argc ? argv[k + 1] : "";
        char cwd[PATH_MAX];
        if (dir[0] == '/' || !dir[0] || !getcwd(cwd, sizeof cwd))
            snprintf(buf, cap, "%s", dir);
        else
            snprintf(buf, cap, "%s/%s", cwd, dir);
        int gone = k + 1 < *argc ? 2 : 1;
        memmove(&argv[k], &argv[k + gone], (size_t)(*argc - k - gone + 1) * sizeof *argv);
        *argc -= gone;
        return buf;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--stop") == 0) return submit(argv + 1, argc - 1, NULL, NULL, NULL);
    int validate = strcmp(cmd, "--validate") == 0, explain = strcmp(cmd, "--explain") == 0;
    if (!validate && !explain && strcmp(cmd, "run") != 0) {
        fprintf(stderr, "ember-flow: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    char ck_buf[PATH_MAX], lib_buf[PATH_MAX];
    const char *checkpoint = take_path(&argc, argv, 3, "--checkpoint", ck_buf, sizeof ck_buf);
    const char *library = take_path(&argc, argv, 3, "--library", lib_buf, sizeof lib_buf);
    if (argc < 3 || ((validate || explain) && argc != 3) || (checkpoint && !checkpoint[0]) ||
        (library && !library[0])) {
        usage(stderr);
        return 2;
    }
    if (library && (validate || explain)) { /* the functions are checked against it */
        if (!(functions = dlopen(library, RTLD_LAZY | RTLD_LOCAL))) {
            fprintf(stderr, "ember-flow: --library %s: %s\n", library, dlerror());
            return 2;
        }
        em_fn_set_resolver(in_library);
    }
    char *text = NULL;
    size_t len;
    em_flow *f = load(argv[2], checkpoint, &text, &len);
    free(text);
    if (!f) return 2;
    if (validate) printf("%s: ok: flow %s, %d nodes\n", argv[2], f->name, f->n);
    if (explain) em_flow_explain(f, stdout);
    em_flow_free(f);
    if (validate || explain) return 0;
    char lib[PATH_MAX];
    const char *env = getenv("EMBER_FLOW_LIB");
    if (library)
        snprintf(lib, sizeof lib, "%s", library);
    else if (env && *env)
        snprintf(lib, sizeof lib, "%s", env);
    else if (beside("../lib/ember_flow.so", lib, sizeof lib) != 0)
        return 1;
    if (access(lib, R_OK) != 0) {
        fprintf(stderr, "ember-flow: the flow job library %s is missing (EMBER_FLOW_LIB)\n", lib);
        return 1;
    }
    return submit(argv + 3, argc - 3, lib, argv[2], checkpoint);
}
