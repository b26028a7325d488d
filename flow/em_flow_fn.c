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

/* aligned: a function's accumulator as the function sees it (the engine's bytes need not be
 * aligned: they are copied in and out) */
typedef struct aligned {
    _Alignas(16) uint8_t bytes[EMBER_FLOW_ACC_MAX];
} aligned;

void em_fn_set_resolver(em_fn_resolver r) { resolver = r; }

const void *em_fn_lookup(void *handle, const char *name, size_t size)
{
    const void *a = handle ? dlsym(handle, name) : NULL;
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    /* an object of the right size: a function or another variable of that name is no
     * descriptor */
    if (!a || !dladdr1(a, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym ||
        ELF64_ST_TYPE(sym->st_info) != STT_OBJECT || sym->st_size != size)
        return NULL;
    return a;
}

/* find_aggregate, find_function: a descriptor of this ABI with its functions, or NULL */
static const ember_flow_aggregate *find_aggregate(const char *name)
{
    const ember_flow_aggregate *a = resolver ? resolver(name, sizeof *a) : NULL;
    if (!a || a->abi != EMBER_FLOW_ABI || a->acc_size == 0 || a->acc_size > EMBER_FLOW_ACC_MAX ||
        !a->args || !a->returns || !a->add || !a->merge || !a->result)
        return NULL;
    return a;
}

static const ember_flow_function *find_function(const char *name)
{
    const ember_flow_function *f = resolver ? resolver(name, sizeof *f) : NULL;
    if (!f || f->abi != EMBER_FLOW_ABI || !f->args || !f->returns || !f->call) return NULL;
    return f;
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

/* resolve finds the function (an aggregate's or a function node's) and checks it against what
 * the flow says of it */
static int resolve(em_node *n, char *err, size_t errlen)
{
    if (!resolver) return 0;
    const char *takes, *gives;
    if (n->kind == EM_N_AGGREGATE && (n->fn.agg = find_aggregate(n->fn.name)))
        takes = n->fn.agg->args, gives = n->fn.agg->returns;
    else if (n->kind != EM_N_AGGREGATE && (n->fn.call = find_function(n->fn.name)))
        takes = n->fn.call->args, gives = n->fn.call->returns;
    else {
        snprintf(err, errlen,
                 "function '%s' is not in the job library (an exported const %s of this "
                 "ember: ember-flow run --library FILE.so)",
                 n->fn.name,
                 n->kind == EM_N_AGGREGATE ? "ember_flow_aggregate" : "ember_flow_function");
        return -1;
    }
    em_type args[EM_SCHEMA_MAX];
    char flow[512];
    for (int k = 0; k < n->fn.n_args; k++) args[k] = n->in.types[n->fn.args[k]];
    if (!same_types(takes, args, n->fn.n_args, flow, sizeof flow)) {
        snprintf(err, errlen, "function '%s' takes (%s), the flow gives it (%s)", n->fn.name, takes,
                 flow);
        return -1;
    }
    if (!same_types(gives, n->fn.returns, n->fn.n_returns, flow, sizeof flow)) {
        snprintf(err, errlen, "function '%s' returns (%s), the flow says (%s)", n->fn.name, gives,
                 flow);
        return -1;
    }
    return 0;
}

/* signature reads {"name", "args", "returns"} (the object `function`), appends the returns to
 * out and resolves the function */
static int signature(em_node *n, json_t *function, em_schema *out, char *err, size_t errlen)
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
        n->fn.returns[k] = t;
    }
    n->fn.n_returns = (int)json_array_size(returns);
    return resolve(n, err, errlen);
}

int em_fn_compile(em_node *n, json_t *function, em_schema *out, char *err, size_t errlen)
{
    return signature(n, function, out, err, errlen);
}

int em_fn_call_compile(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen)
{
    *out = n->in;
    return signature(n, params, out, err, errlen);
}

int em_fn_call(const em_node *n, em_value *cols, em_scratch *s, char *err, size_t errlen)
{
    ember_flow_value args[EM_SCHEMA_MAX], out[EM_SCHEMA_MAX];
    for (int k = 0; k < n->fn.n_args; k++) memcpy(&args[k], &cols[n->fn.args[k]], sizeof args[k]);
    memset(out, 0, sizeof out);
    char *buf = s->buf + s->used;
    size_t cap = sizeof s->buf - s->used;
    int rc = n->fn.call->call(args, out, buf, cap);
    if (rc != 0) {
        snprintf(err, errlen, "function '%s' returned %d", n->fn.name, rc);
        return -1;
    }
    em_value *v = &cols[n->in.n];
    for (int k = 0; k < n->fn.n_returns; k++) {
        memcpy(&v[k], &out[k], sizeof v[k]);
        if (n->fn.returns[k] != EM_T_STRING || v[k].s < buf || v[k].s > buf + cap) continue;
        /* a string in buf: the scratch space keeps it until the next record */
        size_t end = (size_t)(v[k].s - buf) + v[k].len;
        if (end > cap) {
            snprintf(err, errlen, "function '%s': a string past its buffer", n->fn.name);
            return -1;
        }
        if (s->used < (size_t)(buf - s->buf) + end) s->used = (size_t)(buf - s->buf) + end;
    }
    return 1;
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
    aligned mine = {{0}};
    int rc = n->fn.agg->add(mine.bytes, args);
    memcpy((uint8_t *)acc + EM_FN_HEADER, mine.bytes, n->fn.agg->acc_size);
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
        if ((a = find_aggregate(name))) {
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
    aligned mine, later;
    memcpy(mine.bytes, (uint8_t *)acc + EM_FN_HEADER, a->acc_size);
    memcpy(later.bytes, (const uint8_t *)other + EM_FN_HEADER, a->acc_size);
    int rc = a->merge(mine.bytes, later.bytes);
    memcpy((uint8_t *)acc + EM_FN_HEADER, mine.bytes, a->acc_size);
    if (rc != 0) snprintf(err, errlen, "function '%.*s': merge returned %d", (int)h[1], h + 2, rc);
    return rc != 0 ? -1 : 0;
}

int em_fn_result(const em_node *n, const void *acc, size_t len, em_value *cols, int first)
{
    ember_flow_value out[EM_SCHEMA_MAX];
    if (!n->fn.agg || len != em_fn_acc_len(n)) return -1;
    memset(out, 0, sizeof out);
    /* kept until the next record: a returned string may point into it */
    static _Thread_local aligned mine;
    memcpy(mine.bytes, (const uint8_t *)acc + EM_FN_HEADER, n->fn.agg->acc_size);
    if (n->fn.agg->result(mine.bytes, out) != 0) return -1;
    for (int k = 0; k < n->fn.n_returns; k++) memcpy(&cols[first + k], &out[k], sizeof out[k]);
    return 0;
}

void em_fn_free(em_node *n)
{
    free(n->fn.name);
    n->fn.name = NULL;
}
