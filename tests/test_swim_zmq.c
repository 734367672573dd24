/*
 * test_swim_zmq.c - three gossip agents over real ZeroMQ sockets on loopback (port 0: the
 * kernel picks free ports): they converge, a graceful leave is seen as "left", and a killed
 * agent is declared dead. Short intervals; every wait polls a condition with a deadline.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gossip_agent.h"
#include "shoal_err.h"
#include "swim_ev.h"

static gossip_agent_t *s_agent(uint8_t id, const char *seed)
{
    gossip_agent_opts_t o;
    memset(&o, 0, sizeof o);
    swim_opts_default(&o.swim);
    o.swim.id[0] = id;
    o.swim.id[15] = 0x77;
    o.swim.name = "agent";
    o.swim.data_ep = "tcp://127.0.0.1:1";
    o.swim.weight = 1;
    o.swim.probe_interval_ms = 100;
    o.swim.probe_timeout_ms = 50;
    o.swim.suspicion_min_ms = 300;
    o.swim.gossip_interval_ms = 50;
    o.swim.join_retry_ms = 100;
    o.swim.push_pull_interval_ms = 2000;
    o.bind_ep = "tcp://127.0.0.1:0";
    const char *seeds[] = {seed};
    o.seeds = seeds;
    o.n_seeds = seed ? 1 : 0;
    gossip_agent_t *a = gossip_agent_new(&o);
    cr_assert_not_null(a, "agent: %s", shoal_last_error());
    cr_assert_eq(gossip_agent_start(a), 0);
    return a;
}

/* State of member `id0` in agent's view, or -1. */
static int s_state(gossip_agent_t *a, uint8_t id0)
{
    view_t *v = gossip_agent_view(a);
    int state = -1;
    for (size_t i = 0; i < view_count(v); i++)
        if (view_member(v, i)->id[0] == id0)
            state = (int)view_member(v, i)->state;
    view_unref(&v);
    return state;
}

/* Polls until agent sees member id0 in `state`, or the deadline passes. */
static bool s_wait(gossip_agent_t *a, uint8_t id0, int state, uint64_t timeout_ms)
{
    swim_clock_t clock = swim_clock_monotonic();
    uint64_t end = swim_clock_now(&clock) + timeout_ms;
    struct timespec step = {0, 10 * 1000 * 1000};
    while (swim_clock_now(&clock) < end) {
        if (s_state(a, id0) == state)
            return true;
        nanosleep(&step, NULL);
    }
    return false;
}

Test(swim_zmq, three_agents_converge_leave_and_die, .timeout = 60)
{
    gossip_agent_t *a = s_agent(1, NULL);
    char seed[300];
    snprintf(seed, sizeof seed, "%s", gossip_agent_endpoint(a));
    cr_assert(strncmp(seed, "tcp://127.0.0.1:", 16) == 0 && strcmp(seed, "tcp://127.0.0.1:0"));
    gossip_agent_t *b = s_agent(2, seed);
    gossip_agent_t *c = s_agent(3, seed);
    gossip_agent_t *agents[] = {a, b, c};
    for (int i = 0; i < 3; i++)
        for (uint8_t id = 1; id <= 3; id++)
            cr_assert(s_wait(agents[i], id, SWIM_ALIVE, 10000), "agent %d never saw %u alive", i,
                      id);
    view_t *v = gossip_agent_view(b);
    cr_assert_eq(view_live_count(v), 3);
    view_unref(&v);

    /* c leaves gracefully: a and b record "left". */
    cr_assert_eq(gossip_agent_leave(c, 200), 0);
    gossip_agent_destroy(&c);
    cr_assert(s_wait(a, 3, SWIM_LEFT, 10000));
    cr_assert(s_wait(b, 3, SWIM_LEFT, 10000));

    /* b is killed (no leave): a declares it dead. */
    gossip_agent_destroy(&b);
    cr_assert(s_wait(a, 2, SWIM_DEAD, 15000), "killed agent not declared dead");
    cr_assert_eq(gossip_agent_status(a, NULL, 0), 0);
    gossip_agent_destroy(&a);
    cr_assert_null(a);
}

Test(swim_zmq, page_size_mismatch_refused_over_zmq, .timeout = 30)
{
    gossip_agent_t *a = s_agent(1, NULL);
    gossip_agent_opts_t o;
    memset(&o, 0, sizeof o);
    swim_opts_default(&o.swim);
    o.swim.id[0] = 9;
    o.swim.page_size = 65536;
    o.swim.join_retry_ms = 100;
    o.bind_ep = "tcp://127.0.0.1:0";
    const char *seeds[] = {gossip_agent_endpoint(a)};
    o.seeds = seeds;
    o.n_seeds = 1;
    gossip_agent_t *b = gossip_agent_new(&o);
    cr_assert_not_null(b);
    cr_assert_eq(gossip_agent_start(b), 0);
    swim_clock_t clock = swim_clock_monotonic();
    uint64_t end = swim_clock_now(&clock) + 10000;
    char message[256] = "";
    struct timespec step = {0, 10 * 1000 * 1000};
    while (gossip_agent_status(b, message, sizeof message) == 0 && swim_clock_now(&clock) < end)
        nanosleep(&step, NULL);
    cr_assert_eq(gossip_agent_status(b, message, sizeof message), SHOAL_ECONFIG);
    char expected[300];
    snprintf(expected, sizeof expected, "page size 65536 here, 1048576 at %s",
             gossip_agent_endpoint(a));
    cr_assert_str_eq(message, expected);
    cr_assert_eq(s_state(a, 9), -1, "the refused node was added");
    gossip_agent_destroy(&b);
    gossip_agent_destroy(&a);
}

Test(swim_zmq, curve_keys_not_yet_supported)
{
    gossip_agent_opts_t o;
    memset(&o, 0, sizeof o);
    swim_opts_default(&o.swim);
    o.bind_ep = "tcp://127.0.0.1:0";
    o.curve_secret_key = "x";
    cr_assert_null(gossip_agent_new(&o));
    cr_assert_eq(shoal_last_error()[0] != 0, 1);
}
