/* em_time.c -- monotonic and wall clocks (see em_time.h). */
#include "em_time.h"

#include <errno.h>
#include <time.h>

static int64_t clock_us(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t em_now_us(void) { return clock_us(CLOCK_MONOTONIC); }

int64_t em_now_ms(void) { return clock_us(CLOCK_MONOTONIC) / 1000; }

int64_t em_unix_ms(void) { return clock_us(CLOCK_REALTIME) / 1000; }

struct timespec em_monotonic_after_us(int64_t us)
{
    int64_t at = clock_us(CLOCK_MONOTONIC) + (us > 0 ? us : 0);
    return (struct timespec){(time_t)(at / 1000000), (long)(at % 1000000) * 1000L};
}

void em_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static _Thread_local int64_t input_wait_us;

void em_input_wait_reset(void) { input_wait_us = 0; }
void em_input_wait_add(int64_t us) { input_wait_us += us > 0 ? us : 0; }
int64_t em_input_wait_us(void) { return input_wait_us; }
