/*
 * gossip_agent.c - the gossip thread: poll the ROUTER until the core's next deadline, feed
 * what arrives to swim_receive, run swim_tick, publish a new view after changes.
 */
#include "gossip_agent.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "shoal_err.h"
#include "swim_ev.h"
#include "swim_proto.h"
#include "swim_zmq.h"

#define AGENT_POLL_MAX_MS 50   /* longest poll: bounds how late a stop or leave request is seen */
#define AGENT_REFRESH_MS  1000 /* republish at least this often, so last_heard_ms stays fresh */

struct gossip_agent {
    gossip_agent_opts_t opts; /* settings (seeds copied below) */
    char **seeds;             /* owned copies of the seeds */
    void *zctx;               /* own ZeroMQ context */
    swim_zmq_t *zmq;          /* transport (agent thread only after start) */
    swim_t *swim;             /* core (agent thread only after start) */
    swim_clock_t clock;       /* monotonic clock */
    view_holder_t *views;     /* current snapshot, shared */
    pthread_t thread;         /* the gossip thread */
    bool started;             /* thread running */
    atomic_bool stop;         /* ask the thread to exit */
    atomic_bool leave;        /* ask the thread to leave */
    atomic_bool left;         /* the thread has left */
    bool dirty;               /* membership changed since the last publish (thread) */
    uint64_t published_ms;    /* when the last snapshot was published (thread) */
    uint8_t *buf;             /* receive buffer, SWIM_MSG_MAX bytes (thread) */
    pthread_mutex_t lock;     /* guards status and message */
    int status;               /* sticky error */
    char message[256];        /* its detail */
};

/* Core events, on the agent thread: open connections early, close forgotten ones. */
static void s_on_event(void *ctx, const swim_event_t *ev)
{
    gossip_agent_t *a = ctx;
    if (ev->kind == SWIM_EVENT_ERROR) {
        pthread_mutex_lock(&a->lock);
        a->status = ev->error;
        snprintf(a->message, sizeof a->message, "%s", ev->message ? ev->message : "");
        pthread_mutex_unlock(&a->lock);
        fprintf(stderr, "gossip: refused by the cluster: %s\n", a->message);
        return;
    }
    a->dirty = true;
    if (ev->member.is_self)
        return;
    if (ev->removed)
        swim_zmq_forget(a->zmq, ev->member.gossip_ep);
    else if (ev->added || ev->member.state == SWIM_ALIVE)
        swim_zmq_connect(a->zmq, ev->member.gossip_ep);
}

gossip_agent_t *gossip_agent_new(const gossip_agent_opts_t *opts)
{
    gossip_agent_t *a = calloc(1, sizeof *a);
    if (a == NULL) {
        shoal_fail(SHOAL_ENOMEM, "gossip: out of memory");
        return NULL;
    }
    a->opts = *opts;
    pthread_mutex_init(&a->lock, NULL);
    a->clock = swim_clock_monotonic();
    a->buf = malloc(SWIM_MSG_MAX);
    a->views = view_holder_new();
    a->zctx = zmq_ctx_new();
    a->seeds = calloc(opts->n_seeds + 1, sizeof *a->seeds);
    if (a->buf == NULL || a->views == NULL || a->zctx == NULL || a->seeds == NULL) {
        shoal_fail(SHOAL_ENOMEM, "gossip: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < opts->n_seeds; i++)
        if ((a->seeds[i] = strdup(opts->seeds[i])) == NULL)
            goto fail;
    swim_zmq_opts_t zo = {opts->bind_ep, 0, opts->curve_secret_key, opts->curve_public_key};
    if ((a->zmq = swim_zmq_new(a->zctx, &zo)) == NULL)
        goto fail;
    swim_opts_t so = opts->swim;
    if (so.gossip_ep == NULL)
        so.gossip_ep = swim_zmq_endpoint(a->zmq);
    so.transport = swim_zmq_transport(a->zmq);
    so.on_event = s_on_event;
    so.event_ctx = a;
    if ((a->swim = swim_new(&so, swim_clock_now(&a->clock))) == NULL)
        goto fail;
    view_t *v = view_from_swim(a->swim);
    view_holder_publish(a->views, &v);
    return a;
fail:
    gossip_agent_destroy(&a);
    return NULL;
}

/* Publishes a snapshot if anything changed, and tells the owner. */
static void s_publish(gossip_agent_t *a)
{
    uint64_t now = swim_clock_now(&a->clock);
    if (!a->dirty && now - a->published_ms < AGENT_REFRESH_MS)
        return;
    a->dirty = false;
    a->published_ms = now;
    view_t *v = view_from_swim(a->swim);
    if (v == NULL) {
        a->dirty = true; /* try again next round */
        return;
    }
    if (a->opts.on_view)
        a->opts.on_view(a->opts.ctx, v);
    view_holder_publish(a->views, &v);
}

static void *s_thread(void *arg)
{
    gossip_agent_t *a = arg;
    /* Connect first and give the connections a moment: with ZMQ_IMMEDIATE a JOIN sent on a
     * socket still connecting is dropped, which would cost a whole join_retry_ms. */
    for (size_t i = 0; i < a->opts.n_seeds; i++)
        swim_zmq_connect(a->zmq, a->seeds[i]);
    if (a->opts.n_seeds > 0) {
        struct timespec settle = {0, 20 * 1000 * 1000};
        nanosleep(&settle, NULL);
    }
    swim_join(a->swim, (const char *const *)a->seeds, a->opts.n_seeds, swim_clock_now(&a->clock));
    while (!atomic_load(&a->stop)) {
        uint64_t now = swim_clock_now(&a->clock);
        if (atomic_load(&a->leave) && !atomic_load(&a->left)) {
            swim_leave(a->swim, now);
            atomic_store(&a->left, true);
        }
        uint64_t deadline = swim_next_deadline(a->swim);
        uint64_t wait = deadline <= now ? 0 : deadline - now;
        long timeout = wait > AGENT_POLL_MAX_MS ? AGENT_POLL_MAX_MS : (long)wait;
        zmq_pollitem_t item = {swim_zmq_socket(a->zmq), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, timeout) > 0) {
            /* Drain what is waiting, bounded so timers still run under a flood. */
            for (int i = 0; i < 1000; i++) {
                int n = swim_zmq_recv(a->zmq, a->buf, SWIM_MSG_MAX);
                if (n == 0)
                    break;
                if (n > 0)
                    swim_receive(a->swim, swim_clock_now(&a->clock), NULL, a->buf, (size_t)n);
            }
        }
        swim_tick(a->swim, swim_clock_now(&a->clock));
        s_publish(a);
    }
    return NULL;
}

int gossip_agent_start(gossip_agent_t *agent)
{
    if (agent->started)
        return SHOAL_EINVAL;
    if (pthread_create(&agent->thread, NULL, s_thread, agent) != 0)
        return shoal_fail(SHOAL_ENOMEM, "gossip: cannot start the gossip thread");
    agent->started = true;
    return 0;
}

int gossip_agent_leave(gossip_agent_t *agent, uint32_t linger_ms)
{
    if (!agent->started)
        return SHOAL_EINVAL;
    atomic_store(&agent->leave, true);
    /* Wait for the thread to announce the leave, then linger while it keeps answering. */
    struct timespec step = {0, 5 * 1000 * 1000};
    uint64_t start = swim_clock_now(&agent->clock);
    while (!atomic_load(&agent->left) && swim_clock_now(&agent->clock) - start < 5000)
        nanosleep(&step, NULL);
    uint64_t left_at = swim_clock_now(&agent->clock);
    while (swim_clock_now(&agent->clock) - left_at < linger_ms)
        nanosleep(&step, NULL);
    return 0;
}

void gossip_agent_destroy(gossip_agent_t **agent_p)
{
    gossip_agent_t *a = *agent_p;
    if (a == NULL)
        return;
    if (a->started) {
        atomic_store(&a->stop, true);
        pthread_join(a->thread, NULL);
    }
    swim_destroy(&a->swim);
    swim_zmq_destroy(&a->zmq);
    if (a->zctx)
        zmq_ctx_term(a->zctx);
    view_holder_destroy(&a->views);
    for (size_t i = 0; a->seeds && i < a->opts.n_seeds; i++)
        free(a->seeds[i]);
    free(a->seeds);
    free(a->buf);
    pthread_mutex_destroy(&a->lock);
    free(a);
    *agent_p = NULL;
}

const char *gossip_agent_endpoint(const gossip_agent_t *agent)
{
    return swim_zmq_endpoint(agent->zmq);
}

view_t *gossip_agent_view(gossip_agent_t *agent)
{
    return view_holder_get(agent->views);
}

int gossip_agent_status(gossip_agent_t *agent, char *message, size_t cap)
{
    pthread_mutex_lock(&agent->lock);
    int status = agent->status;
    if (message != NULL && cap > 0)
        snprintf(message, cap, "%s", agent->message);
    pthread_mutex_unlock(&agent->lock);
    return status;
}
