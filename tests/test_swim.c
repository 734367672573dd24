/*
 * test_swim.c - the SWIM core on the fake network and virtual clock: exact suspicion and
 * death timing, refutation, partitions, graceful leave, slow members and local health, join
 * convergence of 1000 nodes, cluster settings refusal, restart and address change.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "shoal_err.h"
#include "hrw.h"
#include "swim.h"
#include "swim_fake.h"
#include "view.h"

/* ---- helpers ---- */

#define MAX_EVENTS 4096

typedef struct ev_log {
    size_t n; /* events recorded */
    struct {
        size_t node;        /* observer */
        uint8_t about;      /* id[0] of the subject */
        swim_state_t state; /* new state */
        bool removed;       /* forgotten */
        uint64_t at;        /* virtual time */
    } ev[MAX_EVENTS];
    swim_fake_net_t *net; /* for the time */
    char error[256];      /* last SWIM_EVENT_ERROR message */
    int error_code;       /* its code */
} ev_log_t;

static ev_log_t g_log;

static void s_hook(void *ctx, size_t node, const swim_event_t *ev)
{
    ev_log_t *log = ctx;
    if (ev->kind == SWIM_EVENT_ERROR) {
        snprintf(log->error, sizeof log->error, "%s", ev->message);
        log->error_code = ev->error;
        return;
    }
    if (log->n == MAX_EVENTS || ev->member.is_self)
        return;
    log->ev[log->n].node = node;
    log->ev[log->n].about = ev->member.id[0];
    log->ev[log->n].state = ev->member.state;
    log->ev[log->n].removed = ev->removed;
    log->ev[log->n].at = swim_fake_now(log->net);
    log->n++;
}

static swim_opts_t s_opts(uint8_t id)
{
    swim_opts_t o;
    swim_opts_default(&o);
    o.id[0] = id;
    o.id[15] = 0xee;
    o.weight = 1000;
    o.name = "node";
    o.data_ep = "tcp://127.0.0.1:9000";
    return o;
}

static swim_fake_net_t *s_net(void)
{
    memset(&g_log, 0, sizeof g_log);
    swim_fake_net_t *net = swim_fake_net_new(1, 1000);
    cr_assert_not_null(net);
    g_log.net = net;
    swim_fake_set_hook(net, s_hook, &g_log);
    return net;
}

/* State of subject (by id[0]) as seen by observer; -1 if unknown. */
static int s_state(swim_fake_net_t *net, size_t observer, uint8_t subject, swim_member_info_t *out)
{
    swim_t *swim = swim_fake_swim(net, observer);
    for (size_t i = 0; i < swim_member_count(swim); i++) {
        swim_member_info_t info;
        swim_member_at(swim, i, &info);
        if (info.id[0] == subject) {
            if (out)
                *out = info;
            return (int)info.state;
        }
    }
    return -1;
}

/* Does every listed up node see every listed node alive? */
static bool s_all_alive(swim_fake_net_t *net, const size_t *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (s_state(net, nodes[i], (uint8_t)nodes[j], NULL) != SWIM_ALIVE)
                return false;
    return true;
}

/* Builds an n-node cluster (ids 0..n-1 = node indexes) joined through node 0 and waits until
 * everyone sees everyone alive. */
static swim_fake_net_t *s_cluster(size_t n, const swim_opts_t *base)
{
    swim_fake_net_t *net = s_net();
    size_t nodes[256];
    for (size_t i = 0; i < n; i++) {
        swim_opts_t o = base ? *base : s_opts(0);
        o.id[0] = (uint8_t)i;
        o.id[15] = 0xee;
        cr_assert_eq(swim_fake_add(net, &o), (int)i);
        nodes[i] = i;
        if (i > 0) {
            const char *seeds[] = {"sim:0"};
            cr_assert_eq(swim_join(swim_fake_swim(net, i), seeds, 1, swim_fake_now(net)), 0);
        }
    }
    for (int t = 0; t < 600 && !s_all_alive(net, nodes, n); t++)
        swim_fake_run(net, 100);
    cr_assert(s_all_alive(net, nodes, n), "cluster of %zu did not converge", n);
    g_log.n = 0;
    return net;
}

static int s_first_event(size_t node, uint8_t about, swim_state_t state, uint64_t *at)
{
    for (size_t i = 0; i < g_log.n; i++)
        if (g_log.ev[i].node == node && g_log.ev[i].about == about && g_log.ev[i].state == state &&
            !g_log.ev[i].removed) {
            *at = g_log.ev[i].at;
            return 1;
        }
    return 0;
}

static size_t s_count_events(uint8_t about, swim_state_t state)
{
    size_t n = 0;
    for (size_t i = 0; i < g_log.n; i++)
        n += g_log.ev[i].about == about && g_log.ev[i].state == state && !g_log.ev[i].removed;
    return n;
}

/* ---- failure detection timing ---- */

/*
 * Two nodes, 1 ms links. A probes B once per probe interval at a fixed phase. After B crashes,
 * the first probe that starts gets no ACK: B must become suspect exactly one probe interval
 * after that probe started (not at the ack timeout, not earlier), and dead exactly the
 * suspicion timeout later (2 members: no confirmations possible, so the minimum,
 * suspicion_mult x probe_interval).
 */
Test(swim, suspect_after_missed_ack_and_dead_after_timeout_exactly)
{
    swim_opts_t base = s_opts(0);
    swim_fake_net_t *net = s_cluster(2, &base);
    swim_t *a = swim_fake_swim(net, 0);
    /* Find A's probe phase: the instant its probe counter moves. */
    swim_stats_t st;
    swim_get_stats(a, &st);
    uint64_t probes = st.probes, phase = 0;
    for (int i = 0; i < 3000 && phase == 0; i++) {
        swim_fake_run(net, 1);
        swim_get_stats(a, &st);
        if (st.probes != probes)
            phase = swim_fake_now(net);
    }
    cr_assert_neq(phase, 0);
    /* Crash B in the middle of a probe interval, after that probe was acked. */
    swim_fake_run(net, 300);
    uint64_t crash = swim_fake_now(net);
    swim_fake_crash(net, 1);
    uint64_t next_probe = phase + base.probe_interval_ms;
    while (next_probe <= crash)
        next_probe += base.probe_interval_ms;
    uint64_t expect_suspect = next_probe + base.probe_interval_ms;
    swim_fake_run_until(net, expect_suspect - 1);
    cr_assert_eq(s_state(net, 0, 1, NULL), SWIM_ALIVE, "suspected before the probe ended");
    swim_fake_run(net, 1);
    uint64_t at = 0;
    cr_assert(s_first_event(0, 1, SWIM_SUSPECT, &at));
    cr_assert_eq(at, expect_suspect, "suspected at %llu, expected %llu", (unsigned long long)at,
                 (unsigned long long)expect_suspect);
    uint64_t min_ms = (uint64_t)(base.suspicion_mult * base.probe_interval_ms);
    if (min_ms < base.suspicion_min_ms)
        min_ms = base.suspicion_min_ms;
    uint64_t expect_dead = expect_suspect + min_ms;
    swim_fake_run_until(net, expect_dead - 1);
    cr_assert_eq(s_state(net, 0, 1, NULL), SWIM_SUSPECT);
    swim_fake_run(net, 1);
    cr_assert(s_first_event(0, 1, SWIM_DEAD, &at));
    cr_assert_eq(at, expect_dead);
    /* A failed probe with nobody to NACK raised A's local health multiplier. */
    cr_assert_gt(swim_lhm(a), 0);
    swim_fake_net_destroy(&net);
}

/* Lifeguard: with many members, independent confirmations shrink the timeout toward the
 * minimum, so a real crash is declared dead well before the maximum. */
Test(swim, confirmations_shorten_suspicion)
{
    swim_fake_net_t *net = s_cluster(20, NULL);
    uint64_t crash = swim_fake_now(net);
    swim_fake_crash(net, 7);
    swim_fake_run(net, 30000);
    swim_opts_t o = s_opts(0);
    double min_ms = o.suspicion_mult * 1.30103 * o.probe_interval_ms; /* log10(20) */
    if (min_ms < o.suspicion_min_ms)
        min_ms = o.suspicion_min_ms;
    double max_ms = min_ms * o.suspicion_max_mult;
    uint64_t first_suspect = UINT64_MAX, last_dead = 0;
    for (size_t i = 0; i < 20; i++) {
        if (i == 7)
            continue;
        uint64_t s_at, d_at;
        cr_assert(s_first_event(i, 7, SWIM_DEAD, &d_at), "node %zu never saw 7 dead", i);
        if (s_first_event(i, 7, SWIM_SUSPECT, &s_at) && s_at < first_suspect)
            first_suspect = s_at;
        if (d_at > last_dead)
            last_dead = d_at;
    }
    cr_assert_lt(first_suspect, last_dead);
    cr_assert_geq((double)(last_dead - first_suspect), min_ms * 0.9);
    cr_assert_lt((double)(last_dead - first_suspect), max_ms * 0.9, "took %llu ms",
                 (unsigned long long)(last_dead - first_suspect));
    (void)crash;
    swim_fake_net_destroy(&net);
}

/* ---- refutation ---- */

Test(swim, refutation_raises_incarnation_and_clears_suspicion)
{
    swim_opts_t base = s_opts(0);
    base.suspicion_mult = 6; /* 6 s to refute: this test is about refuting, not timing */
    swim_fake_net_t *net = s_cluster(3, &base);
    /* B (1) can hear but not speak until A suspects it; then the suspicion reaches B (by
     * gossip, or in A's next probe of it: the buddy system) and B refutes. */
    swim_fake_set_link_loss(net, 1, 0, 1.0);
    swim_fake_set_link_loss(net, 1, 2, 1.0);
    int t;
    for (t = 0; t < 10000 && s_state(net, 0, 1, NULL) != SWIM_SUSPECT; t++)
        swim_fake_run(net, 1);
    cr_assert_eq(s_state(net, 0, 1, NULL), SWIM_SUSPECT);
    swim_fake_clear_link_loss(net);
    swim_t *b = swim_fake_swim(net, 1);
    swim_fake_run(net, 3000);
    cr_assert_geq(swim_incarnation(b), 1, "B did not refute");
    swim_member_info_t info;
    cr_assert_eq(s_state(net, 0, 1, &info), SWIM_ALIVE);
    cr_assert_eq(info.incarnation, swim_incarnation(b));
    cr_assert_eq(s_state(net, 2, 1, &info), SWIM_ALIVE);
    cr_assert_eq(s_count_events(1, SWIM_DEAD), 0);
    swim_stats_t st;
    swim_get_stats(b, &st);
    cr_assert_geq(st.refutations, 1);
    swim_fake_net_destroy(&net);
}

/* ---- partitions ---- */

Test(swim, partition_heals)
{
    swim_fake_net_t *net = s_cluster(10, NULL);
    for (size_t i = 0; i < 5; i++)
        swim_fake_set_group(net, i, 1);
    swim_fake_run(net, 20000);
    /* Each side declared the other dead. */
    cr_assert_eq(s_state(net, 0, 9, NULL), SWIM_DEAD);
    cr_assert_eq(s_state(net, 9, 0, NULL), SWIM_DEAD);
    cr_assert_eq(s_state(net, 0, 4, NULL), SWIM_ALIVE);
    for (size_t i = 0; i < 5; i++)
        swim_fake_set_group(net, i, 0);
    size_t nodes[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    int t;
    for (t = 0; t < 60000 && !s_all_alive(net, nodes, 10); t += 100)
        swim_fake_run(net, 100);
    cr_assert(s_all_alive(net, nodes, 10), "partition did not heal in 60 s");
    swim_fake_net_destroy(&net);
}

/* ---- graceful leave ---- */

Test(swim, leave_is_not_a_failure)
{
    swim_fake_net_t *net = s_cluster(5, NULL);
    cr_assert_eq(swim_leave(swim_fake_swim(net, 4), swim_fake_now(net)), 0);
    swim_fake_run(net, 500);
    swim_fake_crash(net, 4); /* the process exits */
    swim_fake_run(net, 10000);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(s_state(net, i, 4, NULL), SWIM_LEFT, "node %zu", i);
    cr_assert_eq(s_count_events(4, SWIM_SUSPECT), 0);
    cr_assert_eq(s_count_events(4, SWIM_DEAD), 0);
    /* Forgotten after dead_forget_ms. */
    swim_fake_run(net, 30000);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(s_state(net, i, 4, NULL), -1);
    swim_fake_net_destroy(&net);
}

/* ---- slow members and local health ---- */

Test(swim, slow_member_is_not_declared_dead)
{
    swim_fake_net_t *net = s_cluster(6, NULL);
    /* 2: answers within the probe timeout (2 x 200 ms); 3: misses the probe timeout but
     * answers within the probe interval (2 x 250 ms; 2 x 450 ms between 2 and 3), so
     * indirect probes start but the direct ack still counts. */
    swim_fake_set_slow(net, 2, 200);
    swim_fake_set_slow(net, 3, 250);
    swim_fake_run(net, 120000);
    cr_assert_eq(s_count_events(2, SWIM_DEAD), 0);
    cr_assert_eq(s_count_events(3, SWIM_DEAD), 0);
    cr_assert_eq(s_count_events(2, SWIM_SUSPECT), 0);
    cr_assert_eq(s_count_events(3, SWIM_SUSPECT), 0);
    for (size_t i = 0; i < 6; i++) {
        cr_assert_eq(s_state(net, i, 2, NULL), SWIM_ALIVE);
        cr_assert_eq(s_state(net, i, 3, NULL), SWIM_ALIVE);
    }
    swim_fake_net_destroy(&net);
}

Test(swim, local_health_rises_when_deaf_and_recovers)
{
    swim_fake_net_t *net = s_cluster(6, NULL);
    swim_t *x = swim_fake_swim(net, 5);
    cr_assert_eq(swim_lhm(x), 0);
    /* X hears nothing: its probes fail and the NACKs it expects never come. */
    for (size_t i = 0; i < 5; i++)
        swim_fake_set_link_loss(net, i, 5, 1.0);
    swim_fake_run(net, 5000);
    cr_assert_gt(swim_lhm(x), 2, "lhm %u", swim_lhm(x));
    swim_fake_clear_link_loss(net);
    swim_fake_run(net, 60000);
    cr_assert_eq(swim_lhm(x), 0, "lhm %u", swim_lhm(x));
    swim_fake_net_destroy(&net);
}

/* ---- scale ---- */

Test(swim, thousand_nodes_converge_after_join, .timeout = 600)
{
    swim_fake_net_t *net = s_net();
    const size_t n = 1000;
    for (size_t i = 0; i < n; i++) {
        swim_opts_t o = s_opts(0);
        o.id[0] = (uint8_t)i;
        o.id[1] = (uint8_t)(i >> 8);
        cr_assert_eq(swim_fake_add(net, &o), (int)i);
        if (i > 0) {
            const char *seeds[] = {"sim:0"};
            swim_join(swim_fake_swim(net, i), seeds, 1, swim_fake_now(net));
        }
        if (i % 10 == 9)
            swim_fake_run(net, 100);
    }
    uint64_t start = swim_fake_now(net);
    bool done = false;
    while (!done && swim_fake_now(net) - start < 180000) {
        swim_fake_run(net, 1000);
        done = true;
        for (size_t i = 0; i < n && done; i++) {
            swim_t *swim = swim_fake_swim(net, i);
            size_t alive = 0;
            for (size_t j = 0; j < swim_member_count(swim); j++) {
                swim_member_info_t info;
                swim_member_at(swim, j, &info);
                alive += info.state == SWIM_ALIVE;
            }
            done = alive == n;
        }
    }
    cr_assert(done, "1000 nodes did not converge within 180 virtual seconds");
    cr_log_info("1000 nodes converged %llu ms after the last join",
                (unsigned long long)(swim_fake_now(net) - start));
    swim_fake_net_destroy(&net);
}

/* ---- cluster settings ---- */

Test(swim, page_size_mismatch_is_refused)
{
    swim_fake_net_t *net = s_net();
    swim_opts_t a = s_opts(0), b = s_opts(1);
    b.page_size = 65536;
    cr_assert_eq(swim_fake_add(net, &a), 0);
    cr_assert_eq(swim_fake_add(net, &b), 1);
    const char *seeds[] = {"sim:0"};
    swim_join(swim_fake_swim(net, 1), seeds, 1, swim_fake_now(net));
    swim_fake_run(net, 5000);
    cr_assert_eq(swim_status(swim_fake_swim(net, 1)), SHOAL_ECONFIG);
    cr_assert_eq(g_log.error_code, SHOAL_ECONFIG);
    cr_assert_str_eq(g_log.error, "page size 65536 here, 1048576 at sim:0");
    cr_assert_eq(swim_tick(swim_fake_swim(net, 1), swim_fake_now(net)), SHOAL_ECONFIG);
    cr_assert_eq(swim_member_count(swim_fake_swim(net, 0)), 1, "the refused node was added");
    cr_assert_eq(swim_member_count(swim_fake_swim(net, 1)), 1);
    /* range_pages is checked too. */
    swim_opts_t c = s_opts(2);
    c.range_pages = 8;
    cr_assert_eq(swim_fake_add(net, &c), 2);
    swim_join(swim_fake_swim(net, 2), seeds, 1, swim_fake_now(net));
    swim_fake_run(net, 2000);
    cr_assert_eq(swim_status(swim_fake_swim(net, 2)), SHOAL_ECONFIG);
    cr_assert_str_eq(g_log.error, "range pages 8 here, 4 at sim:0");
    cr_assert_eq(swim_member_count(swim_fake_swim(net, 0)), 1);
    swim_fake_net_destroy(&net);
}

/* The placement version is a cluster setting too, checked before the page size. A node of
 * placement 1 speaks the exact wire form of builds before placement versions (no field), so
 * this is also what such a node meets; and a joiner meeting a seed of version 1 is refused with
 * both versions named (the exit with status 2 at join of shoald). */
Test(swim, placement_version_mismatch_is_refused_both_ways)
{
    swim_fake_net_t *net = s_net();
    swim_opts_t a = s_opts(0), b = s_opts(1);
    cr_assert_eq(a.placement, HRW_PLACEMENT_VERSION);
    b.placement = HRW_PLACEMENT_LEGACY;
    b.page_size = 65536; /* the placement is named first */
    cr_assert_eq(swim_fake_add(net, &a), 0);
    cr_assert_eq(swim_fake_add(net, &b), 1);
    const char *seeds[] = {"sim:0"};
    swim_join(swim_fake_swim(net, 1), seeds, 1, swim_fake_now(net));
    swim_fake_run(net, 5000);
    cr_assert_eq(swim_status(swim_fake_swim(net, 1)), SHOAL_ECONFIG);
    cr_assert_eq(g_log.error_code, SHOAL_ECONFIG);
    cr_assert(strstr(g_log.error, "placement version 1 here, 2 at sim:0"), "%s", g_log.error);
    cr_assert_eq(swim_member_count(swim_fake_swim(net, 0)), 1, "the refused node was added");
    cr_assert_eq(swim_member_count(swim_fake_swim(net, 1)), 1);

    /* a current joiner and a seed of version 1 (same page and range sizes) */
    swim_opts_t c = s_opts(2), d = s_opts(3);
    c.placement = HRW_PLACEMENT_LEGACY;
    cr_assert_eq(swim_fake_add(net, &c), 2);
    cr_assert_eq(swim_fake_add(net, &d), 3);
    const char *old_seed[] = {"sim:2"};
    swim_join(swim_fake_swim(net, 3), old_seed, 1, swim_fake_now(net));
    swim_fake_run(net, 5000);
    cr_assert_eq(swim_status(swim_fake_swim(net, 3)), SHOAL_ECONFIG);
    cr_assert(strstr(g_log.error, "placement version 2 here, 1 at sim:2"), "%s", g_log.error);
    cr_assert_eq(swim_member_count(swim_fake_swim(net, 2)), 1);
    cr_assert_eq(swim_status(swim_fake_swim(net, 0)), 0);
    cr_assert_eq(swim_status(swim_fake_swim(net, 2)), 0);
    swim_fake_net_destroy(&net);
}

/* ---- restart and address change ---- */

static size_t s_count_id(swim_t *swim, uint8_t id0)
{
    size_t n = 0;
    for (size_t i = 0; i < swim_member_count(swim); i++) {
        swim_member_info_t info;
        swim_member_at(swim, i, &info);
        n += info.id[0] == id0;
    }
    return n;
}

Test(swim, restart_with_higher_incarnation_at_new_address)
{
    swim_fake_net_t *net = s_cluster(3, NULL);
    swim_t *old = swim_fake_swim(net, 2);
    uint64_t inc = swim_incarnation(old);
    swim_fake_remove(net, 2); /* killed */
    swim_fake_run(net, 15000);
    cr_assert_eq(s_state(net, 0, 2, NULL), SWIM_DEAD);
    /* Same id, persisted incarnation + 1, new address (node index 3 = "sim:3"). */
    swim_opts_t o = s_opts(2);
    o.incarnation = inc + 1;
    o.weight = 2000;
    cr_assert_eq(swim_fake_add(net, &o), 3);
    const char *seeds[] = {"sim:0"};
    swim_join(swim_fake_swim(net, 3), seeds, 1, swim_fake_now(net));
    swim_fake_run(net, 3000);
    for (size_t i = 0; i < 2; i++) {
        swim_member_info_t info;
        cr_assert_eq(s_state(net, i, 2, &info), SWIM_ALIVE);
        cr_assert_geq(info.incarnation, inc + 1);
        cr_assert_str_eq(info.gossip_ep, "sim:3");
        cr_assert_eq(info.weight, 2000);
        cr_assert_eq(s_count_id(swim_fake_swim(net, i), 2), 1, "member doubled");
        cr_assert_eq(swim_member_count(swim_fake_swim(net, i)), 3);
    }
    swim_fake_net_destroy(&net);
}

/* Without a persisted incarnation the restarted node learns its old one from the cluster's
 * state and refutes above it. */
Test(swim, restart_without_persisted_incarnation_still_rejoins)
{
    swim_fake_net_t *net = s_cluster(3, NULL);
    swim_fake_remove(net, 2);
    swim_fake_run(net, 15000);
    cr_assert_eq(s_state(net, 0, 2, NULL), SWIM_DEAD);
    swim_opts_t o = s_opts(2);
    cr_assert_eq(swim_fake_add(net, &o), 3);
    const char *seeds[] = {"sim:1"};
    swim_join(swim_fake_swim(net, 3), seeds, 1, swim_fake_now(net));
    swim_fake_run(net, 5000);
    for (size_t i = 0; i < 2; i++) {
        swim_member_info_t info;
        cr_assert_eq(s_state(net, i, 2, &info), SWIM_ALIVE, "node %zu", i);
        cr_assert_str_eq(info.gossip_ep, "sim:3");
        cr_assert_eq(s_count_id(swim_fake_swim(net, i), 2), 1);
    }
    cr_assert_geq(swim_incarnation(swim_fake_swim(net, 3)), 1);
    swim_fake_net_destroy(&net);
}

/* A live member moving to a new address (same id, higher incarnation) is updated in place. */
Test(swim, address_change_updates_not_doubles)
{
    swim_fake_net_t *net = s_cluster(4, NULL);
    uint64_t version = swim_version(swim_fake_swim(net, 0));
    swim_t *old = swim_fake_swim(net, 3);
    swim_opts_t o = s_opts(3);
    o.incarnation = swim_incarnation(old) + 1;
    swim_fake_remove(net, 3);
    cr_assert_eq(swim_fake_add(net, &o), 4); /* at once: never suspected */
    const char *seeds[] = {"sim:0"};
    swim_join(swim_fake_swim(net, 4), seeds, 1, swim_fake_now(net));
    swim_fake_run(net, 3000);
    for (size_t i = 0; i < 3; i++) {
        swim_member_info_t info;
        cr_assert_eq(s_state(net, i, 3, &info), SWIM_ALIVE);
        cr_assert_str_eq(info.gossip_ep, "sim:4");
        cr_assert_eq(swim_member_count(swim_fake_swim(net, i)), 4);
    }
    cr_assert_gt(swim_version(swim_fake_swim(net, 0)), version);
    swim_fake_net_destroy(&net);
}

/* host_id and local_socket (issue 11) come from the options, travel in every record and land
 * in the view; a restart (higher incarnation) with another socket path replaces it in place. */
Test(swim, host_id_and_local_socket_travel)
{
    swim_opts_t base = s_opts(0);
    base.host_id = "host-a";
    base.local_socket = "/run/shoal/a.sock";
    swim_fake_net_t *net = s_cluster(3, &base);
    for (size_t i = 0; i < 3; i++)
        for (uint8_t j = 0; j < 3; j++) {
            swim_member_info_t info;
            cr_assert_eq(s_state(net, i, j, &info), SWIM_ALIVE);
            cr_assert_str_eq(info.host_id, "host-a");
            cr_assert_str_eq(info.local_socket, "/run/shoal/a.sock");
        }
    view_t *view = view_from_swim(swim_fake_swim(net, 1));
    cr_assert_not_null(view);
    cr_assert_eq(view_count(view), 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_str_eq(view_member(view, i)->host_id, "host-a");
        cr_assert_str_eq(view_member(view, i)->local_socket, "/run/shoal/a.sock");
    }
    view_unref(&view);

    swim_t *old = swim_fake_swim(net, 2);
    swim_opts_t o = base;
    o.id[0] = 2;
    o.incarnation = swim_incarnation(old) + 1;
    o.host_id = "host-b";
    o.local_socket = "";
    swim_fake_remove(net, 2);
    cr_assert_eq(swim_fake_add(net, &o), 3);
    const char *seeds[] = {"sim:0"};
    swim_join(swim_fake_swim(net, 3), seeds, 1, swim_fake_now(net));
    swim_fake_run(net, 3000);
    for (size_t i = 0; i < 2; i++) {
        swim_member_info_t info;
        cr_assert_eq(s_state(net, i, 2, &info), SWIM_ALIVE);
        cr_assert_str_eq(info.host_id, "host-b");
        cr_assert_str_eq(info.local_socket, "");
        cr_assert_eq(s_count_id(swim_fake_swim(net, i), 2), 1);
    }
    swim_fake_net_destroy(&net);

    /* overlong values are refused by swim_new */
    char long_text[200];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    net = s_net();
    o = s_opts(5);
    long_text[SWIM_HOST_ID_MAX + 1] = '\0';
    o.host_id = long_text;
    cr_assert_lt(swim_fake_add(net, &o), 0);
    o.host_id = "h";
    long_text[SWIM_SOCKET_MAX + 1] = '\0';
    o.local_socket = long_text;
    cr_assert_lt(swim_fake_add(net, &o), 0);
    long_text[SWIM_SOCKET_MAX] = '\0';
    cr_assert_geq(swim_fake_add(net, &o), 0);
    swim_fake_net_destroy(&net);
}

/* Weight changes are announced and bump the version. */
Test(swim, weight_change_propagates)
{
    swim_fake_net_t *net = s_cluster(3, NULL);
    uint64_t v = swim_version(swim_fake_swim(net, 0));
    swim_set_weight(swim_fake_swim(net, 2), 777, swim_fake_now(net));
    swim_fake_run(net, 2000);
    swim_member_info_t info;
    cr_assert_eq(s_state(net, 0, 2, &info), SWIM_ALIVE);
    cr_assert_eq(info.weight, 777);
    cr_assert_gt(swim_version(swim_fake_swim(net, 0)), v);
    swim_fake_net_destroy(&net);
}

/* Bad input to the core is refused, counted and survived. */
Test(swim, garbage_is_dropped)
{
    swim_fake_net_t *net = s_cluster(2, NULL);
    swim_t *a = swim_fake_swim(net, 0);
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    cr_assert_eq(swim_receive(a, swim_fake_now(net), "x", junk, sizeof junk), SHOAL_EPROTO);
    cr_assert_eq(swim_receive(a, swim_fake_now(net), NULL, junk, 0), SHOAL_EPROTO);
    swim_stats_t st;
    swim_get_stats(a, &st);
    cr_assert_eq(st.bad_messages, 2);
    swim_fake_run(net, 2000);
    cr_assert_eq(s_state(net, 0, 1, NULL), SWIM_ALIVE);
    swim_fake_net_destroy(&net);
}
