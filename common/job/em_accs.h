/* em_accs.h -- accumulators: named int64 or double counters that user functions add to.
 *
 * Each part of ember keeps a set of them (em_accs): a task's additions (thread-local while it
 * runs on its slot thread, sent in its TaskResult only when it succeeds), each successful
 * task's last additions and its job's totals on the driver (a task whose output is lost and
 * computed again replaces its additions: em_accs_merge with sign -1, then +1), and the job
 * run's totals in the submitter (every action's JobResult added up).
 */
#ifndef EM_ACCS_H
#define EM_ACCS_H

#include <stddef.h>
#include <stdint.h>

#include "ember.pb-c.h"

#define EM_ACC_NAME_MAX 64  /* bytes of a name, its terminating zero included */
#define EM_ACCS_MAX     256 /* names a set holds */

typedef struct em_acc {
    char name[EM_ACC_NAME_MAX];
    int is_f64;
    int64_t i64;
    double f64;
} em_acc;

typedef struct em_accs {
    em_acc *v; /* owned */
    size_t n, cap;
} em_accs;

/* em_accs_add adds sign x the value (i or d by is_f64) to name; EMBER_ERR_INVALID for a name
 * too long or empty, or used with the other type; EMBER_ERR_TOO_LARGE past EM_ACCS_MAX */
int em_accs_add(em_accs *a, const char *name, int is_f64, int64_t i, double d, int sign);
/* em_accs_merge adds sign x every counter of from (protobuf) into a */
int em_accs_merge(em_accs *a, Ember__Accumulator *const *from, size_t n, int sign);
/* em_accs_merge_set adds sign x every counter of from into a */
int em_accs_merge_set(em_accs *a, const em_accs *from, int sign);
/* em_accs_find: the counter of name, or NULL */
const em_acc *em_accs_find(const em_accs *a, const char *name);
void em_accs_free(em_accs *a);

/* em_accs_to_pb fills pb[i] (n of them, each pointing at items[i]) from a; the strings point
 * into a, valid while it is */
void em_accs_to_pb(const em_accs *a, Ember__Accumulator *items, Ember__Accumulator **pb);

/* the running task's additions, on its slot thread: em_task_accs_begin empties them, and
 * em_task_accs gives them (ember_acc_add fills them) */
void em_task_accs_begin(void);
const em_accs *em_task_accs(void);
/* em_task_accs_end frees the thread's table (a slot thread, as it ends) */
void em_task_accs_end(void);

#endif
