/* em_flow_fn.c -- aggregates by a function of the job library (em_flow_fn.h): the `function`
 * parameter, the name resolved and its types checked, and the accumulator with its header. */

#include "em_flow_fn.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_flow_int.h"

_Static_assert(sizeof(em_value) == sizeof(ember_flow_value) &&
                   offsetof(em_value, len) == offsetof(ember_flow_value, len),
               "ember_flow_value is em_value as the library sees it");
_Static_assert(EM_FN_HEADER + EMBER_FLOW_ACC_MAX <= EMBER_ACC_MAX,
               "a function's accumulator fits an aggregate's");

static em_fn_resolver resolver;

void em_fn_set_resolver(em_fn_resolver r) { resolver = r; }

const ember_flow_aggregate *em_fn_lookup(void *handle, const char *name)
{
    const ember_flow_aggregate *a = handle ? dlsym(handle, name) : NULL;
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    /* an object of the right size: a function or another variable of that name is no
     * descriptor */
    if (!a || !dladdr1(a, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym ||
        ELF64_ST_TYPE(sym->st_info) != STT_OBJECT || sym->st_size != sizeof *a)
        return NULL;
    if (a->abi != EMBER_FLOW_ABI || a->acc_size == 0 || a->acc_size > EMBER_FLOW_ACC_MAX ||
        !a->args || !a->returns || !a->add || !a->merge || !a->result)
        return NULL;
    return a;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > EM_FN_NAME_MAX || (s[0] >= '0' && s[0] <= '9')) return 0;
    for (size_t k = 0; k < n; k++)
        if (!(s[k] == '_' || (s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
              (s[k] >= '0' && s[k] <= '9')))
            return 0;
    return 1;
}

/* same_types: whether the library's list ("timestamp, double") names the types `t` */
static int same_types(const char *declared, const em_type *t, int n, char *flow, size_t cap)
{
    size_t used = 0;
    flow[0] = '\0';
    for (int k = 0; k < n; k++)
        used += (size_t)snprintf(flow + used, used < cap ? cap - used : 0, "%s%s", k ? "," : "",
                                 em_type_name(t[k]));
    const char *f = flow;
    for (const char *d = declared; *d; d++) {
        if (*d == ' ') continue;
        if (*d != *f) return 0;
        f++;
    }
    return *f == '\0';
}

/* resolve finds the function and checks it against what the flow says of it */
static int resolve(em_node *n, const em_schema *out, int first_return, char *err, size_t errlen)
{
    if (!resolver) return 0;
    const ember_flow_aggregate *a = resolver(n->fn.name);
    if (!a) {
        snprintf(err, errlen,
                 "function '%s' is not in the job library (an exported const "
                 "ember_flow_aggregate of this ember: ember-flow run --library FILE.so)",
                 n->fn.name);
        return -1;
    }
    em_type args[EM_SCHEMA_MAX];
    char flow[512];
    for (int k = 0; k < n->fn.n_args; k++) args[k] = n->in.types[n->fn.args[k]];
    if (!same_types(a->args, args, n->fn.n_args, flow, sizeof flow)) {
        snprintf(err, errlen, "function '%s' takes (%s), the flow gives it (%s)", n->fn.name,
                 a->args, flow);
        return -1;
    }
    if (!same_types(a->returns, out->types + first_return, n->fn.n_returns, flow, sizeof flow)) {
        snprintf(err, errlen, "function '%s' returns (%s), the flow says (%s)", n->fn.name,
                 a->returns, flow);
        return -1;
    }
    n->fn.agg = a;
    return 0;
}

int em_fn_compile(em_node *n, json_t *function, em_schema *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"name", "args", "returns", NULL};
    const char *name;
    char why[512];
    json_t *returns = json_object_get(function, "returns"), *r;
    if (!json_is_object(function)) {
        snprintf(err, errlen,
                 "function: {\"name\", \"args\": [columns], \"returns\": "
                 "[{\"name\", \"type\"}]}");
        return -1;
    }
    if (param_check(function, keys, why, sizeof why) != 0 ||
        param_str(function, "name", 1, NULL, &name, why, sizeof why) != 0 ||
        param_columns(function, "args", &n->in, n->fn.args, &n->fn.n_args, why, sizeof why) != 0) {
        snprintf(err, errlen, "function: %s", why);
        return -1;
    }
    if (!valid_name(name)) {
        snprintf(err, errlen, "function: the name '%s' is not a C identifier of 1 to %d bytes",
                 name, EM_FN_NAME_MAX);
        return -1;
    }
    if (!(n->fn.name = strdup(name))) return snprintf(err, errlen, "out of memory"), -1;
    if (!json_is_array(returns) || json_array_size(returns) == 0) {
        snprintf(err, errlen, "function '%s': 'returns' must be an array of {\"name\", \"type\"}",
                 name);
        return -1;
    }
    int first_return = out->n;
    size_t k;
    json_array_foreach(returns, k, r)
    {
        static const char *const rkeys[] = {"name", "type", NULL};
        const char *col, *type;
        em_type t;
        if (!json_is_object(r) || param_check(r, rkeys, why, sizeof why) != 0 ||
            param_str(r, "name", 1, NULL, &col, why, sizeof why) != 0 ||
            param_str(r, "type", 1, NULL, &type, why, sizeof why) != 0 ||
            em_type_parse(type, &t) != 0 || em_schema_add(out, col, t, why, sizeof why) != 0) {
            snprintf(err, errlen, "function '%s': returns entry %zu: %s", name, k + 1,
                     json_is_object(r) && json_object_get(r, "type") && em_type_parse(type, &t)
                         ? "the type must be int, double, string, bool or timestamp"
                         : why);
            return -1;
        }
    }
    n->fn.n_returns = (int)json_array_size(returns);
    return resolve(n, out, first_return, err, errlen);
}

size_t em_fn_acc_len(const em_node *n)
{
    return n->fn.agg ? EM_FN_HEADER + n->fn.agg->acc_size : 0;
}

void em_fn_zero(const em_node *n, void *acc)
{
    uint8_t *h = acc;
    size_t len = strlen(n->fn.name);
    memset(acc, 0, em_fn_acc_len(n));
    h[0] = EM_FN_MARK;
    h[1] = (uint8_t)len;
    memcpy(h + 2, n->fn.name, len);
}

int em_fn_record(const em_node *n, const em_value *cols, void *acc, char *err, size_t errlen)
{
    ember_flow_value args[EM_SCHEMA_MAX];
    for (int k = 0; k < n->fn.n_args; k++) memcpy(&args[k], &cols[n->fn.args[k]], sizeof args[k]);
    em_fn_zero(n, acc);
    int rc = n->fn.agg->add((uint8_t *)acc + EM_FN_HEADER, args);
    if (rc != 0) snprintf(err, errlen, "function '%s': add returned %d", n->fn.name, rc);
    return rc != 0 ? -1 : 0;
}

/* ---- the function named in a header ------------------------------------------------------ */

#define CACHE_MAX 32

static struct {
    uint8_t header[EM_FN_HEADER];
    const ember_flow_aggregate *agg;
} cache[CACHE_MAX];
static int cached;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local int last = -1; /* this thread's last hit */

/* by_header: the function an accumulator's header names (resolved once per process) */
static const ember_flow_aggregate *by_header(const uint8_t *h)
{
    if (h[0] != EM_FN_MARK || h[1] == 0 || h[1] > EM_FN_NAME_MAX) return NULL;
    size_t n = 2 + (size_t)h[1];
    if (last >= 0 && memcmp(cache[last].header, h, n) == 0) return cache[last].agg;
    const ember_flow_aggregate *a = NULL;
    pthread_mutex_lock(&cache_lock);
    for (int k = 0; k < cached && !a; k++)
        if (memcmp(cache[k].header, h, n) == 0) a = cache[last = k].agg;
    if (!a && resolver && cached < CACHE_MAX) {
        char name[EM_FN_NAME_MAX + 1];
        memcpy(name, h + 2, h[1]);
        name[h[1]] = '\0';
        if ((a = resolver(name))) {
            memcpy(cache[cached].header, h, n);
            cache[cached].agg = a;
            last = cached++;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return a;
}

size_t em_fn_acc_bytes(const void *acc)
{
    const ember_flow_aggregate *a = by_header(acc);
    return a ? EM_FN_HEADER + a->acc_size : 0;
}

int em_fn_merge(void *acc, const void *other, size_t len, char *err, size_t errlen)
{
    const ember_flow_aggregate *a = by_header(acc);
    const uint8_t *h = acc;
    if (!a || len != EM_FN_HEADER + a->acc_size || memcmp(acc, other, EM_FN_HEADER) != 0) {
        snprintf(err, errlen, "a function's accumulator of %zu bytes does not match (%.*s)", len,
                 h[1] <= EM_FN_NAME_MAX ? (int)h[1] : 0, (const char *)h + 2);
        return -1;
    }
    int rc = a->merge((uint8_t *)acc + EM_FN_HEADER, (const uint8_t *)other + EM_FN_HEADER);
    if (rc != 0) snprintf(err, errlen, "function '%.*s': merge returned %d", (int)h[1], h + 2, rc);
    return rc != 0 ? -1 : 0;
}

int em_fn_result(const em_node *n, const void *acc, size_t len, em_value *cols, int first)
{
    ember_flow_value out[EM_SCHEMA_MAX];
    if (!n->fn.agg || len != em_fn_acc_len(n)) return -1;
    memset(out, 0, sizeof out);
    if (n->fn.agg->result((const uint8_t *)acc + EM_FN_HEADER, out) != 0) return -1;
    for (int k = 0; k < n->fn.n_returns; k++) memcpy(&cols[first + k], &out[k], sizeof out[k]);
    return 0;
}

void em_fn_free(em_node *n)
{
    free(n->fn.name);
    n->fn.name = NULL;
}
