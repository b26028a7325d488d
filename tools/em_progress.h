/* em_progress.h -- ember-submit's view of a running job: a live progress line on a terminal,
 * a plain line per finished stage otherwise.
 *
 * A thread of its own asks the driver (JobProgress, on its own rpc channel) every 250 ms
 * while an action's job runs; jobs shorter than that print nothing.
 */
#ifndef EM_PROGRESS_H
#define EM_PROGRESS_H

#include <stdint.h>

#include "em_rpc.h"

typedef struct em_progress em_progress;

/* em_progress_start starts the reporter; `tty` chooses the live line. NULL if it cannot. */
em_progress *em_progress_start(em_rpc *rpc, int tty);
/* em_progress_begin: a job with this client token was just submitted. */
void em_progress_begin(em_progress *p, uint64_t client_token);
/* em_progress_end: that job is over; the live line is cleared before this returns. */
void em_progress_end(em_progress *p);
void em_progress_stop(em_progress *p);

#endif
