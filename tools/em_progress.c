/* em_progress.c -- progress reporting of ember-submit (see em_progress.h). */
#include "em_progress.h"

#include <ember/ember.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PERIOD_MS 250

struct em_progress {
    em_rpc *rpc;
    em_rpc_chan ch;
    int tty;
    pthread_t thread;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;
    uint64_t token; /* job being followed, 0 when none */
    int stop;
    int line_shown; /* a live line is on the terminal */
    uint32_t stages_reported;
    int64_t last_records, last_us;
};

static void clear_line(em_progress *p)
{
    if (p->line_shown) fprintf(stderr, "\r\033[K");
    p->line_shown = 0;
}

/* show prints what the driver said; called with the lock held. */
static void show(em_progress *p, const Ember__JobProgressReply *r)
{
    if (p->tty) {
        double dt = (r->elapsed_us - p->last_us) / 1e6;
        double rate = dt > 0 ? (r->records_in - p->last_records) / dt : 0;
        fprintf(
            stderr,
            "\r\033[Kjob %llu: stage %u/%u, tasks %u/%u, %lld records in, %.0f records/s, %.1f s",
            (unsigned long long)r->job_id, r->stages_done + (r->stages_done < r->stages), r->stages,
            r->tasks_done, r->tasks, (long long)r->records_in, rate, r->elapsed_us / 1e6);
        p->line_shown = 1;
    } else {
        for (; p->stages_reported < r->stages_done; p->stages_reported++)
            fprintf(
                stderr,
                "ember-submit: job %llu stage %u/%u done, %u/%u tasks, %lld records in, %.1f s\n",
                (unsigned long long)r->job_id, p->stages_reported + 1, r->stages, r->tasks_done,
                r->tasks, (long long)r->records_in, r->elapsed_us / 1e6);
    }
    fflush(stderr);
    p->last_records = r->records_in;
    p->last_us = r->elapsed_us;
}

static void *run(void *arg)
{
    em_progress *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += PERIOD_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        uint64_t token = p->token;
        if (pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT || !p->token ||
            p->token != token)
            continue; /* woken: a job began or ended; wait a full period */
        pthread_mutex_unlock(&p->lock);
        Ember__JobProgress q = EMBER__JOB_PROGRESS__INIT;
        q.client_token = token;
        em_rpc_reply reply = {0};
        char err[256];
        int rc = em_rpc_call(p->rpc, &p->ch, EM_MSG_JOB_PROGRESS, &q.base, NULL, 0, 2000, &reply,
                             err, sizeof err);
        Ember__JobProgressReply *r =
            rc == EMBER_OK ? em_frame_unpack(&reply.frame, EM_MSG_JOB_PROGRESS_REPLY) : NULL;
        pthread_mutex_lock(&p->lock);
        if (r && r->found && p->token == token) show(p, r);
        em_pb_free(r);
        em_rpc_reply_free(&reply);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

em_progress *em_progress_start(em_rpc *rpc, int tty)
{
    em_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->rpc = rpc;
    p->tty = tty;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (em_rpc_chan_open(rpc, &p->ch) != EMBER_OK ||
        pthread_create(&p->thread, NULL, run, p) != 0) {
        em_rpc_chan_close(&p->ch);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    return p;
}

void em_progress_begin(em_progress *p, uint64_t client_token)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->token = client_token;
    p->stages_reported = 0;
    p->last_records = p->last_us = 0;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void em_progress_end(em_progress *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->token = 0;
    clear_line(p);
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void em_progress_stop(em_progress *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    em_rpc_chan_close(&p->ch);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
