/* fuzz_http.c -- the status endpoint's routing (driver/em_status.c, em_status_answer): any
 * method and any request target, query and fragment included, against a published snapshot.
 * The bytes are "METHOD\nTARGET". (libmicrohttpd parses the HTTP itself.) */
#include <stdlib.h>
#include <string.h>

#include "em_sched.h"
#include "em_status.h"
#include "fuzz.h"

static em_status *status;

static void setup(void)
{
    em_sched s;
    em_sched_config cfg = {
        .heartbeat_ms = 1000, .max_executors = 4, .max_session_jobs = 1, .max_job_tasks = 1};
    em_sched_init(&s, &cfg);
    em_wire_counts wire = {0, 0};
    status = em_status_new();
    if (status) em_status_publish(status, &s, NULL, "tcp://127.0.0.1:7077", &wire, 0);
    em_sched_fini(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!status) setup();
    if (!status) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *target = strchr(text, '\n');
    if (target) *target++ = '\0';
    em_http_answer a;
    em_status_answer(status, text, target ? target : "/", NULL, &a);
    free(a.body);
    free(text);
    return 0;
}
