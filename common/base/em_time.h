/* em_time.h -- the clocks of every ember process, in one place.
 *
 * Durations and deadlines use the monotonic clock (em_now_us, em_now_ms); only what people
 * read (log timestamps, a job's submission time) uses the wall clock (em_unix_ms).
 */
#ifndef EM_TIME_H
#define EM_TIME_H

#include <stdint.h>
#include <time.h>

/* em_now_us: microseconds on the monotonic clock (not related to the date). */
int64_t em_now_us(void);
/* em_now_ms: milliseconds on the monotonic clock. */
int64_t em_now_ms(void);
/* em_unix_ms: milliseconds since 1970 on the wall clock. */
int64_t em_unix_ms(void);

/* The calling thread's time spent waiting for input (a Kafka fetch, a shuffle bucket from a
 * peer): the places that wait add to it, a task resets it when it starts and reports it. */
void em_input_wait_reset(void);
void em_input_wait_add(int64_t us);
int64_t em_input_wait_us(void);
/* em_monotonic_after_us: the monotonic time `us` from now, for waits on a condition variable
 * whose clock is CLOCK_MONOTONIC (pthread_condattr_setclock). */
struct timespec em_monotonic_after_us(int64_t us);
/* em_sleep_ms sleeps at least ms milliseconds (interrupted sleeps resume). */
void em_sleep_ms(int64_t ms);

#endif
