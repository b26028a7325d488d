/* em_flow_fn.h -- functions of the job library in a flow (ember.h, "Functions for workflows"),
 * found by their names: a `function` node's exported ember_flow_function, called per record,
 * and an aggregate node's exported ember_flow_aggregate, its fold.
 *
 * Each is named with the columns it reads (`args`) and those it gives (`returns`, typed): the
 * function node's parameters, an aggregate's `function` parameter. Where the library is at
 * hand (a flow run: ember_main and every task; ember-flow --validate --library FILE) the name
 * is resolved when the flow is loaded and its declared types are checked against the flow's;
 * elsewhere (--validate, --explain without a library) only the flow's side is checked.
 *
 * An aggregate's accumulator travels like the built-in aggregates' (em_flow_agg.h): a header
 * that names the function (a marker byte, the name's length, the name), then the function's
 * own bytes, so the seq and comb of a shuffle find the function from the bytes alone.
 */
#ifndef EM_FLOW_FN_H
#define EM_FLOW_FN_H

#include <ember/ember.h>
#include <jansson.h>
#include <stddef.h>

#include "em_flow_node.h"
#include "em_value.h"

#define EM_FN_MARK     0xFE /* the first byte of a function's accumulator */
#define EM_FN_HEADER   32   /* bytes before the function's own */
#define EM_FN_NAME_MAX (EM_FN_HEADER - 2)

/* em_fn_resolver finds an exported object of `size` bytes (an ember_flow_aggregate or an
 * ember_flow_function) by name; NULL when there is none */
typedef const void *(*em_fn_resolver)(const char *name, size_t size);

/* em_fn_set_resolver sets how flows loaded from now on find their functions (NULL: they are
 * not looked up) */
void em_fn_set_resolver(em_fn_resolver r);

/* em_fn_lookup finds `name` in the library `handle` (a dlopen handle): an exported object of
 * `size` bytes; NULL otherwise */
const void *em_fn_lookup(void *handle, const char *name, size_t size);

/* em_fn_compile reads an aggregate node's `function` parameter, appends its returns to out,
 * and resolves it (when a resolver is set), checking the types; -1 with a message */
int em_fn_compile(em_node *n, json_t *function, em_schema *out, char *err, size_t errlen);

/* em_fn_call_compile reads a function node's parameters (out: its input's columns, then the
 * returns), and resolves it likewise */
int em_fn_call_compile(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen);

/* em_fn_call runs a function node over one record: 1, or -1 when the function fails it (the
 * message in err) */
int em_fn_call(const em_node *n, em_value *cols, em_scratch *s, char *err, size_t errlen);

/* em_fn_acc_len: the accumulator's bytes (header included); 0 when the function is not
 * resolved */
size_t em_fn_acc_len(const em_node *n);
void em_fn_zero(const em_node *n, void *acc);
/* em_fn_record writes the accumulator of one record; -1 with a message when the function
 * fails */
int em_fn_record(const em_node *n, const em_value *cols, void *acc, char *err, size_t errlen);
/* em_fn_merge folds `other` (len bytes) into acc, both a function's accumulators, the function
 * found from acc's header; -1 with a message */
int em_fn_merge(void *acc, const void *other, size_t len, char *err, size_t errlen);
/* em_fn_acc_bytes: the length the header of acc says (0: not a function's, or unknown) */
size_t em_fn_acc_bytes(const void *acc);
/* em_fn_result writes the returns from the accumulator into cols (from index `first`) */
int em_fn_result(const em_node *n, const void *acc, size_t len, em_value *cols, int first);

void em_fn_free(em_node *n);

#endif
