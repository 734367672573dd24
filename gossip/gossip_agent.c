/*
 * gossip_agent.c - the gossip member as a czmq actor: its thread waits in a zpoller on the
 * command pipe and the ROUTER until the SWIM core's next deadline, feeds what arrives to
 * swim_receive, runs swim_tick, publishes a new view after changes and answers LEAVE.
 */
#include "gossip_agent.h"

#include <assert.h>
#include <czmq.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_err.h"
#include "swim_ev.h"
#include "swim_proto.h"
#include "swim_zmq.h"

#define AGENT_REFRESH_MS 1000 /* republish at least this often, so last_heard_ms stays fresh */
#define AGENT_DRAIN_MAX  1000 /* messages read per wake-up, so timers still run under a flood */

/* Invariant: leave_owed implies left (a LEAVE reply is owed only after swim_leave ran). */
struct gossip_agent {
    gossip_agent_opts_t opts; /* settings (seeds copied below) */
    char **seeds;             /* owned copies of the seeds */
    swim_zmq_t *zmq;          /* transport, in czmq's context (actor thread only after start) */
    swim_t *swim;             /* core (actor thread only after start) */
    swim_clock_t clock;       /* monotonic clock */
    view_holder_t *views;     /* current snapshot, shared */
    zactor_t *actor;          /* the running actor (owner's thread); NULL before start */
    bool dirty;               /* membership changed since the last publish (actor) */
    uint64_t published_ms;    /* when the last snapshot was published (actor) */
    uint8_t *buf;             /* receive buffer, SWIM_MSG_MAX bytes (actor) */
    bool left;                /* swim_leave ran (actor) */
    bool leave_owed;          /* a LEAVE waits for its reply (actor) */
    uint64_t leave_deadline;  /* reply to LEAVE by this time at the latest (actor) */
    uint64_t leave_received;  /* msgs_received when swim_leave ran (actor) */
    pthread_mutex_t lock;     /* guards status and message */
    int status;               /* sticky error */
    char message[256];        /* its detail */
};

/* The invariant above, and that the actor's thread alone holds what it needs (debug builds). */
static void s_agent_sanity(const gossip_agent_t *a)
{
    assert(a->swim != NULL && a->zmq != NULL && a->buf != NULL && a->views != NULL);
    assert(!a->leave_owed || a->left);
    (void)a;
}

/* Core events, on the actor thread: open connections early, close forgotten ones. */
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

void *gossip_agent_process_init(size_t io_threads)
{
    zsys_handler_set(NULL);
    if (io_threads > 0)
        zsys_set_io_threads(io_threads);
    return zsys_init();
}

void *gossip_agent_zmq_context(void)
{
    return zsys_init();
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
    a->seeds = calloc(opts->n_seeds + 1, sizeof *a->seeds);
    /* czmq's one context per process (idempotent; the daemon calls it first, with czmq's
     * signal handlers off), so that a zauth serving that context will cover gossip too. */
    void *zctx = zsys_init();
    if (a->buf == NULL || a->views == NULL || a->seeds == NULL || zctx == NULL) {
        shoal_fail(SHOAL_ENOMEM, "gossip: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < opts->n_seeds; i++)
        if ((a->seeds[i] = strdup(opts->seeds[i])) == NULL)
            goto fail;
    swim_zmq_opts_t zo = {opts->bind_ep, 0, opts->curve_secret_key, opts->curve_public_key};
    if ((a->zmq = swim_zmq_new(zctx, &zo)) == NULL)
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

/* Publishes a snapshot if anything changed (or the last one is a second old), and tells the
 * owner. */
static void s_publish(gossip_agent_t *a, uint64_t now)
{
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

/* Waits until every seed's DEALER has a completed connection, input arrives on the pipe, or
 * join_retry_ms passes, whichever is first. With ZMQ_IMMEDIATE a JOIN sent on a connection
 * still in progress is dropped and would cost a whole join_retry_ms; a dead seed costs at
 * most that wait, after which the core's JOIN retries take over. zpoller waits for input
 * only, so this one wait uses zmq_poll for ZMQ_POLLOUT. */
static void s_wait_seeds(gossip_agent_t *a, zsock_t *pipe)
{
    zmq_pollitem_t *items = calloc(a->opts.n_seeds + 1, sizeof *items);
    if (items == NULL)
        return; /* no wait: the JOIN retries cover it */
    int n = 0;
    items[n++] = (zmq_pollitem_t){zsock_resolve(pipe), 0, ZMQ_POLLIN, 0};
    for (size_t i = 0; i < a->opts.n_seeds; i++) {
        void *dealer = swim_zmq_peer_socket(a->zmq, a->seeds[i]);
        if (dealer != NULL) /* NULL: our own endpoint, or the connect failed */
            items[n++] = (zmq_pollitem_t){dealer, 0, ZMQ_POLLOUT, 0};
    }
    uint64_t deadline = swim_clock_now(&a->clock) + a->opts.swim.join_retry_ms;
    while (n > 1) {
        uint64_t now = swim_clock_now(&a->clock);
        if (now >= deadline)
            break;
        if (zmq_poll(items, n, (long)(deadline - now)) < 0 || (items[0].revents & ZMQ_POLLIN))
            break;
        int kept = 1; /* keep polling the seeds still connecting */
        for (int i = 1; i < n; i++)
            if (!(items[i].revents & ZMQ_POLLOUT))
                items[kept++] = items[i];
        n = kept;
    }
    free(items);
}

/* The poll timeout: until the core's next deadline, the next refresh of the view or the LEAVE
 * deadline, whichever is first. */
static int s_timeout(const gossip_agent_t *a, uint64_t now)
{
    uint64_t until = swim_next_deadline(a->swim);
    if (a->published_ms + AGENT_REFRESH_MS < until)
        until = a->published_ms + AGENT_REFRESH_MS;
    if (a->leave_owed && a->leave_deadline < until)
        until = a->leave_deadline;
    if (until <= now)
        return 0;
    return until - now > INT_MAX ? INT_MAX : (int)(until - now);
}

/* Answers a LEAVE once it is done: the dissemination queue is empty (our "left" record, and
 * anything else queued, went out the retransmit limit of times) and a peer has been heard
 * since swim_leave (so the connections carrying it are alive), or the deadline passed. */
static void s_leave_progress(gossip_agent_t *a, zsock_t *pipe, uint64_t now)
{
    if (!a->leave_owed)
        return;
    swim_stats_t stats;
    swim_get_stats(a->swim, &stats);
    bool done = swim_queue_length(a->swim) == 0 && stats.msgs_received > a->leave_received;
    if (!done && now < a->leave_deadline)
        return;
    a->leave_owed = false;
    zsock_signal(pipe, 0);
}

/* One command from the pipe: "LEAVE" <linger_ms> or "$TERM". Returns false to end the
 * actor. */
static bool s_command(gossip_agent_t *a, zsock_t *pipe)
{
    zmsg_t *msg = zmsg_recv(pipe);
    if (msg == NULL)
        return false; /* interrupted: the pipe is gone */
    char *command = zmsg_popstr(msg);
    bool running = true;
    if (command == NULL || strcmp(command, "$TERM") == 0) {
        running = false;
    } else if (strcmp(command, "LEAVE") == 0) {
        char *linger = zmsg_popstr(msg);
        uint64_t now = swim_clock_now(&a->clock);
        if (!a->left) {
            swim_leave(a->swim, now);
            swim_stats_t stats;
            swim_get_stats(a->swim, &stats);
            a->left = true;
            a->leave_received = stats.msgs_received;
        }
        a->leave_owed = true;
        a->leave_deadline = now + (linger ? strtoull(linger, NULL, 10) : 0);
        free(linger);
    } else {
        fprintf(stderr, "gossip: unknown agent command '%s'\n", command);
    }
    free(command);
    zmsg_destroy(&msg);
    return running;
}

/* Drains what waits on the ROUTER, bounded so timers still run under a flood. */
static void s_receive(gossip_agent_t *a)
{
    for (int i = 0; i < AGENT_DRAIN_MAX; i++) {
        int n = swim_zmq_recv(a->zmq, a->buf, SWIM_MSG_MAX);
        if (n == 0)
            break;
        if (n > 0)
            swim_receive(a->swim, swim_clock_now(&a->clock), NULL, a->buf, (size_t)n);
    }
}

/* The actor: connects to the seeds, tells zactor_new it runs, joins, then loops until $TERM.
 * Nothing here sleeps: every wait is the zpoller's, bounded by the next deadline. */
static void s_actor(zsock_t *pipe, void *arg)
{
    gossip_agent_t *a = arg;
    void *router = swim_zmq_socket(a->zmq);
    zpoller_t *poller = zpoller_new(pipe, router, NULL);
    for (size_t i = 0; i < a->opts.n_seeds; i++)
        swim_zmq_connect(a->zmq, a->seeds[i]);
    zsock_signal(pipe, 0);
    if (poller == NULL) {
        pthread_mutex_lock(&a->lock);
        a->status = SHOAL_ENOMEM;
        snprintf(a->message, sizeof a->message, "gossip: cannot poll: out of memory");
        pthread_mutex_unlock(&a->lock);
        while (s_command(a, pipe))
            s_leave_progress(a, pipe, UINT64_MAX); /* answer at once: nothing runs */
        return;
    }
    zpoller_set_nonstop(poller, true); /* only $TERM ends the actor, never a czmq signal flag */
    if (a->opts.n_seeds > 0)
        s_wait_seeds(a, pipe);
    swim_join(a->swim, (const char *const *)a->seeds, a->opts.n_seeds, swim_clock_now(&a->clock));
    bool running = true;
    while (running) {
        s_agent_sanity(a);
        void *which = zpoller_wait(poller, s_timeout(a, swim_clock_now(&a->clock)));
        if (which == pipe)
            running = s_command(a, pipe);
        else if (which == router)
            s_receive(a);
        else if (zpoller_terminated(poller))
            running = false; /* the context is gone (process exit): nothing can work */
        uint64_t now = swim_clock_now(&a->clock);
        swim_tick(a->swim, now);
        s_publish(a, now);
        s_leave_progress(a, pipe, now);
    }
    if (a->leave_owed)
        zsock_signal(pipe, 0); /* ended while a LEAVE waited: answer it rather than hang */
    zpoller_destroy(&poller);
}

int gossip_agent_start(gossip_agent_t *agent)
{
    if (agent->actor != NULL)
        return SHOAL_EINVAL;
    agent->actor = zactor_new(s_actor, agent);
    if (agent->actor == NULL)
        return shoal_fail(SHOAL_ENOMEM, "gossip: cannot start the gossip actor");
    return 0;
}

int gossip_agent_leave(gossip_agent_t *agent, uint32_t linger_ms)
{
    if (agent->actor == NULL)
        return SHOAL_EINVAL;
    char linger[16];
    snprintf(linger, sizeof linger, "%u", linger_ms);
    if (zstr_sendx(agent->actor, "LEAVE", linger, NULL) != 0 || zsock_wait(agent->actor) < 0)
        return shoal_fail(SHOAL_EIO, "gossip: the gossip actor did not answer LEAVE");
    return 0;
}

void gossip_agent_destroy(gossip_agent_t **agent_p)
{
    gossip_agent_t *a = *agent_p;
    if (a == NULL)
        return;
    zactor_destroy(&a->actor); /* sends $TERM and waits for the actor to end */
    swim_destroy(&a->swim);
    swim_zmq_destroy(&a->zmq);
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
