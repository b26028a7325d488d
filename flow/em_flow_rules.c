/* em_flow_rules.c -- the rules node (em_flow_rules.h): rules compiled once against the columns
 * the node receives; per record, each rule's `when` evaluated in order. */
#include "em_flow_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_flow_int.h"

struct flow_rule {
    char *name;    /* owned */
    em_expr *when; /* owned; a bool */
    int n_emit;
    int emit[EM_SCHEMA_MAX]; /* the columns its alert names */
    int has_text;
    em_template text; /* the alert's text, when the rule gives one (else "col=value ...") */
};

static int compile_rule(em_node *n, json_t *o, size_t k, char *err, size_t errlen)
{
    static const char *const keys[] = {"name", "when", "emit", "alert", NULL};
    struct flow_rule *r = &n->rules[n->n_rules];
    const char *name, *when, *text;
    char why[512];
    if (!json_is_object(o)) {
        snprintf(err, errlen, "rule %zu: a rule is {\"name\", \"when\", \"emit\"}", k + 1);
        return -1;
    }
    if (param_check(o, keys, why, sizeof why) != 0 ||
        param_str(o, "name", 1, NULL, &name, why, sizeof why) != 0 ||
        param_str(o, "when", 1, NULL, &when, why, sizeof why) != 0 ||
        param_str(o, "alert", 0, NULL, &text, why, sizeof why) != 0 ||
        (json_object_get(o, "emit") &&
         param_columns(o, "emit", &n->in, r->emit, &r->n_emit, why, sizeof why) != 0)) {
        snprintf(err, errlen, "rule %zu: %s", k + 1, why);
        return -1;
    }
    for (int j = 0; j < n->n_rules; j++)
        if (strcmp(n->rules[j].name, name) == 0) {
            snprintf(err, errlen, "rule %zu: the name '%s' is used twice", k + 1, name);
            return -1;
        }
    if (!(r->name = strdup(name))) return snprintf(err, errlen, "out of memory"), -1;
    n->n_rules++; /* counted now: em_rules_free frees what was made */
    if (!(r->when = em_expr_compile(when, &n->in, why, sizeof why))) {
        snprintf(err, errlen, "rule '%s': when \"%s\": %s", name, when, why);
        return -1;
    }
    if (text && (r->has_text = 1,
                 template_compile(&r->text, text, &n->in, "alert", why, sizeof why) != 0)) {
        snprintf(err, errlen, "rule '%s': %s", name, why);
        return -1;
    }
    if (em_expr_type(r->when) != EM_T_BOOL) {
        snprintf(err, errlen, "rule '%s': when \"%s\" gives a %s, not a bool", name, when,
                 em_type_name(em_expr_type(r->when)));
        return -1;
    }
    return 0;
}

int em_rules_compile(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"rules", "file", NULL};
    const char *file;
    json_t *rules = json_object_get(params, "rules"), *loaded = NULL, *o;
    if (param_check(params, keys, err, errlen) != 0 ||
        param_str(params, "file", 0, NULL, &file, err, errlen) != 0)
        return -1;
    if ((rules != NULL) == (file != NULL)) {
        snprintf(err, errlen, "give 'rules' (an array) or 'file' (a JSON file holding one), not %s",
                 rules ? "both" : "neither");
        return -1;
    }
    if (file) {
        json_error_t jerr;
        if (file[0] != '/') {
            snprintf(err, errlen, "file: \"%s\" is not an absolute path (every task reads it)",
                     file);
            return -1;
        }
        if (!(rules = loaded = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr))) {
            snprintf(err, errlen, "file %s: %s (line %d)", file, jerr.text, jerr.line);
            return -1;
        }
    }
    int rc = 0;
    size_t k;
    if (!json_is_array(rules) || json_array_size(rules) == 0 ||
        json_array_size(rules) > EM_RULES_MAX) {
        snprintf(err, errlen,
                 "the rules must be an array of 1 to %d {\"name\", \"when\", \"emit\"}",
                 EM_RULES_MAX);
        rc = -1;
    } else if (!(n->rules = calloc(json_array_size(rules), sizeof *n->rules))) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    json_array_foreach(rules, k, o) if (rc == 0) rc = compile_rule(n, o, k, err, errlen);
    json_decref(loaded);
    if (rc != 0) return -1;
    return em_schema_add(out, "rule", EM_T_STRING, err, errlen) != 0 ||
                   em_schema_add(out, "alert", EM_T_STRING, err, errlen) != 0
               ? -1
               : 0;
}

void em_rules_free(em_node *n)
{
    for (int k = 0; k < n->n_rules; k++) {
        free(n->rules[k].name);
        em_expr_free(n->rules[k].when);
        if (n->rules[k].has_text) template_free(&n->rules[k].text);
    }
    free(n->rules);
    n->rules = NULL;
    n->n_rules = 0;
}

int em_rules_count(const em_node *n) { return n->n_rules; }

int em_rules_fire(const em_node *n, int r, em_value *cols, em_scratch *s, char *err, size_t errlen)
{
    const struct flow_rule *rule = &n->rules[r];
    em_value holds;
    if (em_expr_eval(rule->when, cols, &holds, err, errlen) != 0) return -1;
    if (!holds.i) return 0;
    char *start = s->buf + s->used;
    if (rule->has_text) {
        int len = template_render(&rule->text, &n->in, cols, start, sizeof s->buf - s->used);
        if (len < 0) goto full;
        s->used += (size_t)len;
    }
    for (int k = 0; k < rule->n_emit && !rule->has_text; k++) {
        int c = rule->emit[k];
        const char *name = n->in.names[c];
        if ((k && !em_scratch_put(s, " ", 1)) || !em_scratch_put(s, name, strlen(name)) ||
            !em_scratch_put(s, "=", 1))
            goto full;
        int len =
            em_value_text(n->in.types[c], &cols[c], s->buf + s->used, sizeof s->buf - s->used);
        if (len < 0) goto full;
        s->used += (size_t)len;
    }
    cols[n->in.n].s = rule->name;
    cols[n->in.n].len = (uint32_t)strlen(rule->name);
    cols[n->in.n + 1].s = start;
    cols[n->in.n + 1].len = (uint32_t)(s->buf + s->used - start);
    return 1;
full:
    snprintf(err, errlen, "the record's new strings exceed %d bytes", EM_SCRATCH_BYTES);
    return -1;
}
