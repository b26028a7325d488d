/* em_accs.c -- accumulator sets (em_accs.h). */
#include "em_accs.h"

#include <ember/ember.h>
#include <stdlib.h>
#include <string.h>

int em_accs_add(em_accs *a, const char *name, int is_f64, int64_t i, double d, int sign)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len >= EM_ACC_NAME_MAX) return EMBER_ERR_INVALID;
    size_t k = 0;
    while (k < a->n && strcmp(a->v[k].name, name) != 0) k++;
    if (k == a->n) {
        if (a->n == EM_ACCS_MAX) return EMBER_ERR_TOO_LARGE;
        if (a->n == a->cap) {
            size_t cap = a->cap ? 2 * a->cap : 8;
            em_acc *v = realloc(a->v, cap * sizeof *v);
            if (!v) return EMBER_ERR_NOMEM;
            a->v = v;
            a->cap = cap;
        }
        a->v[a->n] = (em_acc){.is_f64 = is_f64};
        memcpy(a->v[a->n].name, name, len + 1);
        a->n++;
    }
    em_acc *c = &a->v[k];
    if (c->is_f64 != is_f64) return EMBER_ERR_INVALID;
    if (is_f64)
        c->f64 += sign * d;
    else
        c->i64 = (int64_t)((uint64_t)c->i64 + (uint64_t)(sign * i)); /* wraps, never traps */
    return EMBER_OK;
}

int em_accs_merge(em_accs *a, Ember__Accumulator *const *from, size_t n, int sign)
{
    int rc = EMBER_OK;
    for (size_t k = 0; rc == EMBER_OK && k < n; k++)
        rc = em_accs_add(a, from[k]->name, from[k]->is_double, from[k]->int_value,
                         from[k]->double_value, sign);
    return rc;
}

int em_accs_merge_set(em_accs *a, const em_accs *from, int sign)
{
    int rc = EMBER_OK;
    for (size_t k = 0; rc == EMBER_OK && k < from->n; k++)
        rc = em_accs_add(a, from->v[k].name, from->v[k].is_f64, from->v[k].i64, from->v[k].f64,
                         sign);
    return rc;
}

const em_acc *em_accs_find(const em_accs *a, const char *name)
{
    for (size_t k = 0; name && k < a->n; k++)
        if (strcmp(a->v[k].name, name) == 0) return &a->v[k];
    return NULL;
}

void em_accs_free(em_accs *a)
{
    free(a->v);
    *a = (em_accs){0};
}

void em_accs_to_pb(const em_accs *a, Ember__Accumulator *items, Ember__Accumulator **pb)
{
    for (size_t k = 0; k < a->n; k++) {
        ember__accumulator__init(&items[k]);
        items[k].name = (char *)a->v[k].name;
        items[k].is_double = a->v[k].is_f64;
        items[k].int_value = a->v[k].i64;
        items[k].double_value = a->v[k].f64;
        pb[k] = &items[k];
    }
}
