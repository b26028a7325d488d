/* em_window.c -- event-time windows: panes on the map side, state and final windows on the
 * reduce side (see em_window.h). */
#include "em_window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_graph.h"
#include "em_hash.h"

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

/* ---- map side ------------------------------------------------------------------------------ */

void em_window_mapper_init(em_window_mapper *m, const Ember__Node *node)
{
    memset(m, 0, sizeof *m);
    m->node = node;
    m->one[0] = 1; /* int64 1, little-endian */
}

void em_window_mapper_free(em_window_mapper *m) { em_buf_free(&m->key); }

int em_window_map(em_window_mapper *m, const ember_record *in, ember_record *out)
{
    int64_t t = in->timestamp, slide = m->node->window_slide_ms;
    if (t < -EM_EVENT_TIME_MAX || t > EM_EVENT_TIME_MAX) {
        m->late++; /* no window holds it: counted with the late ones */
        return m->late_fn ? m->late_fn(m->late_arg, in) : 0;
    }
    if (!m->has_event_time || t > m->max_event_time) m->max_event_time = t;
    m->has_event_time = 1;
    int64_t pane = em_floor_div(t, slide);
    if (m->node->watermark_ms != EM_NO_WATERMARK && t < m->node->watermark_ms) {
        m->late++; /* behind the watermark: a window holding it may be final already */
        return m->late_fn ? m->late_fn(m->late_arg, in) : 0;
    }
    m->key.len = 0;
    if (em_buf_reserve(&m->key, 8 + in->key_len) != EMBER_OK) return EMBER_ERR_NOMEM;
    put_be64(m->key.data, (uint64_t)pane);
    if (in->key_len) memcpy(m->key.data + 8, in->key, in->key_len);
    m->key.len = 8 + in->key_len;
    *out = (ember_record){m->key.data, m->key.len, in->value, in->value_len, t};
    if (m->node->window_count) {
        out->value = m->one;
        out->value_len = sizeof m->one;
    }
    return 1;
}

uint64_t em_window_key_hash(const ember_record *composite)
{
    return em_hash64((const uint8_t *)composite->key + 8, composite->key_len - 8);
}

/* ---- the state: panes by [pane][key] ------------------------------------------------------- */

/* merge: how accumulators of one key and pane combine (the batch's reduce-side combine) */
typedef struct merge {
    Ember__Reducer reducer;
    const em_fold *fold; /* acc_len > 0: aggregate */
} merge;

static em_combiner *new_state(const merge *m)
{
    return m->fold && m->fold->acc_len ? em_combiner_new_fold(m->fold, 1024)
                                       : em_combiner_new(m->reducer, 1024);
}

static em_combiner *empty_state(void *arg) { return new_state(arg); }

/* cut drops the panes before `first_pane`: the state is rebuilt without them */
static int cut(em_combiner **state, int64_t first_pane, const merge *m)
{
    size_t n = em_combiner_size(*state), kept = 0;
    for (size_t i = 0; i < n; i++) {
        ember_record rec;
        em_combiner_get(*state, i, &rec, NULL);
        kept += (int64_t)get_be64(rec.key) >= first_pane;
    }
    if (kept == n) return EMBER_OK;
    em_combiner *next = new_state(m);
    if (!next) return EMBER_ERR_NOMEM;
    int rc = EMBER_OK;
    for (size_t i = 0; rc == EMBER_OK && i < n; i++) {
        ember_record rec;
        em_combiner_get(*state, i, &rec, NULL);
        if ((int64_t)get_be64(rec.key) >= first_pane) rc = em_combiner_add(next, &rec);
    }
    if (rc != EMBER_OK) {
        em_combiner_free(next);
        return rc;
    }
    em_combiner_free(*state);
    *state = next;
    return EMBER_OK;
}

/* after_file: a state file's mark is the first pane still needed */
static int after_file(em_combiner **state, int64_t first_pane, void *arg)
{
    return first_pane == EM_STATE_NO_MARK ? EMBER_OK : cut(state, first_pane, arg);
}

/* ---- final windows -------------------------------------------------------------------------- */

/* pane_ref: one state entry, by key then pane */
typedef struct pane_ref {
    ember_record rec; /* composite key, accumulator */
    int64_t pane;
} pane_ref;

static int by_key_then_pane(const void *x, const void *y)
{
    const pane_ref *a = x, *b = y;
    int c = em_key_compare((const uint8_t *)a->rec.key + 8, a->rec.key_len - 8,
                           (const uint8_t *)b->rec.key + 8, b->rec.key_len - 8);
    return c ? c : (a->pane > b->pane) - (a->pane < b->pane);
}

static int same_key(const pane_ref *a, const pane_ref *b)
{
    return em_key_compare((const uint8_t *)a->rec.key + 8, a->rec.key_len - 8,
                          (const uint8_t *)b->rec.key + 8, b->rec.key_len - 8) == 0;
}

typedef struct emitter {
    const Ember__Node *node;
    em_combiner *scratch; /* one window of one key, its panes combined */
    em_record_fn emit;
    void *emit_arg;
} emitter;

/* emit_window combines panes refs[lo, hi) of one key (ascending) into window `start` */
static int emit_window(emitter *e, const pane_ref *refs, size_t lo, size_t hi, int64_t start)
{
    em_combiner_reset(e->scratch);
    int rc = EMBER_OK;
    for (size_t k = lo; rc == EMBER_OK && k < hi; k++) {
        ember_record pane = refs[k].rec;
        pane.key = (const uint8_t *)pane.key + 8;
        pane.key_len -= 8;
        rc = em_combiner_add(e->scratch, &pane);
    }
    if (rc != EMBER_OK) return rc;
    ember_record out;
    em_combiner_get(e->scratch, 0, &out, NULL);
    out.timestamp = start;
    return e->emit(e->emit_arg, &out);
}

/* emit_key emits one key's windows with a start in [from, to] that hold any of its panes */
static int emit_key(emitter *e, const pane_ref *refs, size_t n, int64_t from, int64_t to)
{
    int64_t slide = e->node->window_slide_ms, length = e->node->window_length_ms;
    size_t lo = 0;
    int rc = EMBER_OK;
    for (int64_t s = from; rc == EMBER_OK && s <= to; s += slide) {
        while (lo < n && refs[lo].pane * slide < s) lo++;
        if (lo == n) break;
        int64_t first = refs[lo].pane * slide;
        if (first >= s + length) { /* a gap: on to the first window holding the next pane */
            s = first - length;    /* + slide by the loop */
            continue;
        }
        size_t hi = lo;
        while (hi < n && refs[hi].pane * slide < s + length) hi++;
        rc = emit_window(e, refs, lo, hi, s);
    }
    return rc;
}

/* sorted_refs: the entries of c by key then pane (malloc'd; *n their count) */
static pane_ref *sorted_refs(const em_combiner *c, size_t *n)
{
    *n = em_combiner_size(c);
    pane_ref *refs = malloc((*n ? *n : 1) * sizeof *refs);
    for (size_t i = 0; refs && i < *n; i++) {
        em_combiner_get(c, i, &refs[i].rec, NULL);
        refs[i].pane = (int64_t)get_be64(refs[i].rec.key);
    }
    if (refs && *n > 1) qsort(refs, *n, sizeof *refs, by_key_then_pane);
    return refs;
}

/* emit_updates emits, for a key's panes refs[0, n), the windows holding one of the panes the
 * batch touched (touched[0, t), the same key, ascending) that were not final before the batch
 * (start > done) */
static int emit_updates(emitter *e, const pane_ref *refs, size_t n, const pane_ref *touched,
                        size_t t, int64_t done)
{
    int64_t slide = e->node->window_slide_ms, length = e->node->window_length_ms;
    int rc = EMBER_OK;
    for (size_t i = 0; rc == EMBER_OK && i < t;) { /* runs of touched panes whose windows meet */
        int64_t from = touched[i].pane * slide - length + slide, to = touched[i].pane * slide;
        for (i++; i < t && touched[i].pane * slide - length + slide <= to + slide; i++)
            to = touched[i].pane * slide;
        if (done != INT64_MIN && from <= done) from = done + slide;
        if (from <= to) rc = emit_key(e, refs, n, from, to);
    }
    return rc;
}

/* emit_windows emits, per key in key order, the windows with an end in (prev_watermark,
 * watermark] (final), or with `touched` (the batch's panes: update mode) every window the
 * batch changed that was not final before it; returns through *cut_pane the first pane a
 * window still open needs */
static int emit_windows(const Ember__Node *node, const em_combiner *state,
                        const em_combiner *touched, const merge *m, em_record_fn emit,
                        void *emit_arg, int64_t *cut_pane)
{
    int64_t slide = node->window_slide_ms, length = node->window_length_ms;
    int64_t w = node->watermark_ms, wp = node->prev_watermark_ms;
    *cut_pane = EM_STATE_NO_MARK;
    int64_t last_start = w == EM_NO_WATERMARK ? INT64_MIN /* the last final window */
                                              : em_floor_div(w - length, slide) * slide;
    int64_t done = wp == EM_NO_WATERMARK ? INT64_MIN : em_floor_div(wp - length, slide) * slide;
    if (w != EM_NO_WATERMARK) *cut_pane = last_start / slide + 1;
    if (!touched && (w == EM_NO_WATERMARK || (done != INT64_MIN && last_start <= done)))
        return EMBER_OK; /* no window became final */
    size_t n, t = 0;
    pane_ref *refs = sorted_refs(state, &n), *news = touched ? sorted_refs(touched, &t) : NULL;
    emitter e = {node, new_state(m), emit, emit_arg};
    int rc = !refs || (touched && !news) || !e.scratch ? EMBER_ERR_NOMEM : EMBER_OK;
    for (size_t i = 0, j, k = 0; rc == EMBER_OK && i < n; i = j) {
        for (j = i + 1; j < n && same_key(&refs[i], &refs[j]); j++) {
        }
        if (touched) { /* the key's touched panes: news[k, k2) */
            while (k < t && by_key_then_pane(&news[k], &refs[i]) < 0 &&
                   !same_key(&news[k], &refs[i]))
                k++;
            size_t k2 = k;
            while (k2 < t && same_key(&news[k2], &refs[i])) k2++;
            rc = emit_updates(&e, refs + i, j - i, news + k, k2 - k, done);
            k = k2;
            continue;
        }
        int64_t from = refs[i].pane * slide - length + slide; /* the first window holding it */
        if (done != INT64_MIN && from <= done) from = done + slide;
        int64_t to = refs[j - 1].pane * slide < last_start ? refs[j - 1].pane * slide : last_start;
        rc = emit_key(&e, refs + i, j - i, from, to);
    }
    em_combiner_free(e.scratch);
    free(refs);
    free(news);
    return rc;
}

int em_window_reduce(em_state_cache *states, const Ember__Node *node, uint32_t partition,
                     Ember__Reducer reducer, const em_fold *fold, em_combiner *batch,
                     em_record_fn emit, void *emit_arg, char *err, size_t errlen)
{
    char dir[EM_STATE_DIR_MAX + 16];
    snprintf(dir, sizeof dir, "%s/%u", node->state_dir, partition);
    merge m = {reducer, fold};
    em_state_ops ops = {empty_state, after_file, &m};
    int64_t version = node->state_version;
    em_combiner *state;
    int rc = em_state_open(states, dir, version - 1, &ops, &state, err, errlen);
    if (rc == EMBER_OK && fold && fold->acc_len)
        em_combiner_set_fold(state, fold); /* this task's */
    for (size_t i = 0; rc == EMBER_OK && i < em_combiner_size(batch); i++) {
        ember_record rec;
        em_combiner_get(batch, i, &rec, NULL);
        rc = em_combiner_add(state, &rec);
    }
    int64_t cut_pane = EM_STATE_NO_MARK;
    if (rc == EMBER_OK)
        rc = emit_windows(node, state, node->window_updates ? batch : NULL, &m, emit, emit_arg,
                          &cut_pane);
    if (rc == EMBER_OK && cut_pane != EM_STATE_NO_MARK) rc = cut(&state, cut_pane, &m);
    if (rc == EMBER_OK)
        return em_state_commit(states, dir, version, cut_pane, batch, state, err, errlen);
    if (!err[0]) snprintf(err, errlen, "window state of %s: %s", dir, ember_strerror(rc));
    em_combiner_free(state);
    return rc;
}
