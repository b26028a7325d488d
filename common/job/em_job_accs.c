/* em_job_accs.c -- accumulators in the job API: what user functions add (the running task's
 * additions, kept per slot thread) and the totals a job reads (em_accs.h). */
#include <ember/ember.h>
#include <string.h>

#include "em_accs.h"
#include "em_job_ctx.h"

static _Thread_local em_accs task_accs; /* the task running on this thread */

void em_task_accs_begin(void) { task_accs.n = 0; /* keeps the array for the next task */ }

const em_accs *em_task_accs(void) { return &task_accs; }

void em_task_accs_end(void) { em_accs_free(&task_accs); }

/* add_for_task: a user function's addition; a misuse fails the task with its reason */
static int add_for_task(ember_task *task, const char *name, int is_f64, int64_t i, double d)
{
    int rc = em_accs_add(&task_accs, name, is_f64, i, d, 1);
    if (rc == EMBER_OK) return EMBER_OK;
    const char *shown = name ? name : "(null)";
    if (rc == EMBER_ERR_TOO_LARGE)
        return ember_task_fail(task, "accumulator %.64s: more than %d names in one task", shown,
                               EM_ACCS_MAX);
    if (rc == EMBER_ERR_NOMEM) return ember_task_fail(task, "accumulator: out of memory");
    return ember_task_fail(task,
                           "accumulator '%.64s': a name of 1 to %d bytes, always added to as %s",
                           shown, EM_ACC_NAME_MAX - 1, is_f64 ? "a double" : "an int64");
}

int ember_acc_add(ember_task *task, const char *name, int64_t v)
{
    return add_for_task(task, name, 0, v, 0);
}

int ember_acc_add_f64(ember_task *task, const char *name, double v)
{
    return add_for_task(task, name, 1, 0, v);
}

int64_t ember_accumulator(ember_ctx *ctx, const char *name)
{
    const em_acc *c = ctx ? em_accs_find(&ctx->accs, name) : NULL;
    return c && !c->is_f64 ? c->i64 : 0;
}

double ember_accumulator_f64(ember_ctx *ctx, const char *name)
{
    const em_acc *c = ctx ? em_accs_find(&ctx->accs, name) : NULL;
    return c && c->is_f64 ? c->f64 : 0;
}
