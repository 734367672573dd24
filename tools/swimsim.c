/*
 * swimsim.c - the SWIM simulator: N gossip cores on the fake network and virtual clock, with
 * loss, crashes, slow members and a partition. Reports how fast crashes are detected by every
 * live member, false suspicions and deaths of healthy members, and the per-member load.
 *
 *   swimsim -n 1000 -d 180 -c 20 -l 0 -r 1 --seed 1
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "swim.h"
#include "swim_fake.h"

typedef struct sim_opts {
    size_t nodes;         /* cluster size */
    double duration_s;    /* measured virtual time after convergence */
    double loss;          /* global loss 0..1 */
    size_t crashes;       /* nodes crashed at random times in the first 2/3 */
    size_t slow;          /* slow members */
    uint32_t slow_ms;     /* their extra delay per message */
    double partition_at;  /* seconds into the measured phase (< 0: none) */
    double partition_for; /* seconds */
    uint32_t delay_min;   /* network delay range */
    uint32_t delay_max;   /* network delay range */
    size_t runs;          /* independent runs (seed, seed+1, ...) */
    uint64_t seed;        /* first seed */
    int memberlist;       /* use memberlist's unmodified LAN defaults */
    swim_opts_t swim;     /* core options */
} sim_opts_t;

typedef struct sim_state {
    const sim_opts_t *opts;    /* settings */
    swim_fake_net_t *net;      /* the network */
    size_t n;                  /* nodes */
    uint8_t *crashed;          /* crashed[i]: node i was crashed */
    uint64_t *crash_at;        /* crash time of node i */
    uint64_t **dead_at;        /* dead_at[crash][node]: when node marked crash victim dead */
    size_t *crash_index;       /* node -> crash number + 1 (0: never crashed) */
    int measuring;             /* counting false positives */
    int partitioned;           /* a partition is in force (deaths across it are expected) */
    uint64_t false_suspicions; /* healthy member marked suspect */
    uint64_t false_deaths;     /* healthy member marked dead (outside partitions) */
    uint64_t partition_deaths; /* deaths of healthy members during/after a partition */
} sim_state_t;

static size_t s_node_of(const uint8_t id[16])
{
    return (size_t)id[0] | (size_t)id[1] << 8 | (size_t)id[2] << 16;
}

static void s_hook(void *ctx, size_t node, const swim_event_t *ev)
{
    sim_state_t *st = ctx;
    if (ev->kind != SWIM_EVENT_MEMBER || ev->removed || ev->member.is_self)
        return;
    size_t about = s_node_of(ev->member.id);
    if (about >= st->n)
        return;
    if (ev->member.state == ev->old_state && !ev->added)
        return;
    if (st->crashed[about]) {
        size_t c = st->crash_index[about];
        if (c > 0 && ev->member.state == SWIM_DEAD && st->dead_at[c - 1][node] == 0)
            st->dead_at[c - 1][node] = swim_fake_now(st->net);
        return;
    }
    if (!st->measuring)
        return;
    if (getenv("SWIMSIM_TRACE"))
        printf("trace %llu: node %zu sees %zu %s inc %llu\n",
               (unsigned long long)swim_fake_now(st->net), node, about,
               swim_state_name(ev->member.state), (unsigned long long)ev->member.incarnation);
    if (ev->member.state == SWIM_SUSPECT)
        st->false_suspicions++;
    if (ev->member.state == SWIM_DEAD) {
        if (st->partitioned)
            st->partition_deaths++;
        else
            st->false_deaths++;
    }
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Number of up nodes that see every other non-crashed node alive. */
static size_t s_converged(sim_state_t *st)
{
    size_t healthy = 0, good = 0;
    for (size_t i = 0; i < st->n; i++)
        healthy += !st->crashed[i];
    for (size_t i = 0; i < st->n; i++) {
        if (st->crashed[i])
            continue;
        swim_t *swim = swim_fake_swim(st->net, i);
        size_t alive = 0;
        for (size_t j = 0; j < swim_member_count(swim); j++) {
            swim_member_info_t info;
            swim_member_at(swim, j, &info);
            size_t who = s_node_of(info.id);
            if (who < st->n && !st->crashed[who] && info.state == SWIM_ALIVE)
                alive++;
        }
        good += alive == healthy;
    }
    return good;
}

typedef struct sim_result {
    uint64_t *detect_ms; /* per detected crash */
    size_t n_detect;     /* detected crashes */
    size_t n_missed;     /* crashes not detected by all before the end */
    double converge_s;   /* join convergence time */
    double heal_s;       /* partition heal time (-1: none or not healed) */
    uint64_t false_suspicions, false_deaths, partition_deaths;
    double msgs_per_member_s, bytes_per_member_s;
    double real_s; /* wall clock */
} sim_result_t;

static void s_run(const sim_opts_t *o, uint64_t seed, sim_result_t *res)
{
    int64_t t0 = clock_mono_ns();
    sim_state_t st;
    memset(&st, 0, sizeof st);
    st.opts = o;
    st.n = o->nodes;
    st.net = swim_fake_net_new(seed, 1000);
    st.crashed = calloc(st.n, 1);
    st.crash_at = calloc(st.n, sizeof *st.crash_at);
    st.crash_index = calloc(st.n, sizeof *st.crash_index);
    st.dead_at = calloc(o->crashes + 1, sizeof *st.dead_at);
    for (size_t c = 0; c < o->crashes; c++)
        st.dead_at[c] = calloc(st.n, sizeof **st.dead_at);
    swim_fake_set_hook(st.net, s_hook, &st);
    swim_fake_set_delay(st.net, o->delay_min, o->delay_max);

    /* Join: node 0 starts alone; the others join through it, 10 per 100 ms. */
    for (size_t i = 0; i < st.n; i++) {
        swim_opts_t so = o->swim;
        memset(so.id, 0, 16);
        so.id[0] = (uint8_t)i;
        so.id[1] = (uint8_t)(i >> 8);
        so.id[2] = (uint8_t)(i >> 16);
        so.id[15] = 0x5a;
        so.seed = seed * 1000003 + i + 1;
        so.weight = 1ull << 40;
        int idx = swim_fake_add(st.net, &so);
        if (idx < 0) {
            fprintf(stderr, "swimsim: cannot add node %zu\n", i);
            exit(1);
        }
        if (i > 0) {
            const char *seeds[] = {swim_fake_addr(st.net, 0)};
            swim_join(swim_fake_swim(st.net, i), seeds, 1, swim_fake_now(st.net));
        }
        if (i % 10 == 9)
            swim_fake_run(st.net, 100);
    }
    uint64_t join_start = 1000;
    res->converge_s = -1;
    for (int step = 0; step < 600; step++) { /* up to 10 virtual minutes, 1 s resolution */
        if (s_converged(&st) == st.n) {
            res->converge_s = (double)(swim_fake_now(st.net) - join_start) / 1000.0;
            break;
        }
        swim_fake_run(st.net, 1000);
    }
    /* Settle: let the join-time gossip drain (every queue empty) before measuring, so the
     * load figures are the steady state plus what the crashes cause. */
    for (int step = 0; step < 600; step++) {
        size_t queued = 0;
        for (size_t i = 0; i < st.n; i++)
            queued += swim_queue_length(swim_fake_swim(st.net, i));
        if (queued == 0)
            break;
        swim_fake_run(st.net, 1000);
    }
    swim_fake_run(st.net, 5000);

    /* Measured phase. */
    swim_fake_set_loss(st.net, o->loss);
    uint64_t rnd = seed * 0x9e3779b97f4a7c15ULL + 7;
    for (size_t s = 0; s < o->slow && s < st.n; s++)
        swim_fake_set_slow(st.net, (s * 7919 + 3) % st.n, o->slow_ms);
    swim_stats_t before_stats = {0};
    for (size_t i = 0; i < st.n; i++) {
        swim_stats_t s;
        swim_get_stats(swim_fake_swim(st.net, i), &s);
        before_stats.msgs_sent += s.msgs_sent;
        before_stats.bytes_sent += s.bytes_sent;
    }
    st.measuring = 1;
    uint64_t start = swim_fake_now(st.net);
    uint64_t end = start + (uint64_t)(o->duration_s * 1000);
    uint64_t span = (end - start) * 2 / 3;
    uint64_t part_start = o->partition_at >= 0 ? start + (uint64_t)(o->partition_at * 1000) : 0;
    uint64_t part_end = part_start + (uint64_t)(o->partition_for * 1000);
    int part_done = o->partition_at < 0;
    res->heal_s = -1;
    for (size_t c = 0; c < o->crashes; c++) {
        rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t victim;
        do {
            rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            victim = (size_t)((rnd >> 33) % st.n);
        } while (st.crashed[victim]);
        st.crashed[victim] = 1; /* marked now, crashed at crash_at */
        st.crash_index[victim] = c + 1;
        st.crash_at[victim] = start + (span * (c + 1)) / (o->crashes + 1);
    }
    /* Marked crashed ahead of time only for bookkeeping; they run until their time. */
    for (uint64_t t = start; t < end; t += 100) {
        for (size_t i = 0; i < st.n; i++)
            if (st.crash_index[i] && st.crash_at[i] > t - 100 && st.crash_at[i] <= t)
                swim_fake_crash(st.net, i);
        if (!part_done && t >= part_start && t < part_end && !st.partitioned) {
            st.partitioned = 1;
            for (size_t i = 0; i < st.n / 2; i++)
                swim_fake_set_group(st.net, i, 1);
        }
        if (!part_done && st.partitioned && t >= part_end) {
            for (size_t i = 0; i < st.n; i++)
                swim_fake_set_group(st.net, i, 0);
            part_done = 1;
        }
        if (part_done && st.partitioned && t % 1000 == 0 && s_converged(&st) == st.n - o->crashes) {
            res->heal_s = (double)(t - part_end) / 1000.0;
            st.partitioned = 0;
        }
        swim_fake_run_until(st.net, t + 100);
    }
    /* Detection: the time by which every healthy node marked the victim dead. */
    res->detect_ms = calloc(o->crashes + 1, sizeof *res->detect_ms);
    for (size_t i = 0; i < st.n; i++) {
        size_t c = st.crash_index[i];
        if (c == 0)
            continue;
        uint64_t last = 0;
        int all = 1;
        for (size_t j = 0; j < st.n; j++) {
            if (st.crashed[j])
                continue;
            if (st.dead_at[c - 1][j] == 0) {
                all = 0;
                break;
            }
            if (st.dead_at[c - 1][j] > last)
                last = st.dead_at[c - 1][j];
        }
        if (all && last >= st.crash_at[i])
            res->detect_ms[res->n_detect++] = last - st.crash_at[i];
        else
            res->n_missed++;
    }
    swim_stats_t after = {0};
    for (size_t i = 0; i < st.n; i++) {
        swim_stats_t s;
        swim_get_stats(swim_fake_swim(st.net, i), &s);
        after.msgs_sent += s.msgs_sent;
        after.bytes_sent += s.bytes_sent;
    }
    double member_s = (double)st.n * o->duration_s;
    res->msgs_per_member_s = (double)(after.msgs_sent - before_stats.msgs_sent) / member_s;
    res->bytes_per_member_s = (double)(after.bytes_sent - before_stats.bytes_sent) / member_s;
    res->false_suspicions = st.false_suspicions;
    res->false_deaths = st.false_deaths;
    res->partition_deaths = st.partition_deaths;
    for (size_t c = 0; c < o->crashes; c++)
        free(st.dead_at[c]);
    free(st.dead_at);
    free(st.crashed);
    free(st.crash_at);
    free(st.crash_index);
    swim_fake_net_destroy(&st.net);
    res->real_s = (double)(clock_mono_ns() - t0) / 1e9;
}

static void s_usage(void)
{
    printf("usage: swimsim [options]\n"
           "  -n, --nodes N           cluster size (default 100)\n"
           "  -d, --duration S        measured virtual seconds after join (default 180)\n"
           "  -l, --loss PCT          packet loss in percent (default 0)\n"
           "  -c, --crashes N         nodes crashed during the run (default 5)\n"
           "      --slow N            slow members (default 0)\n"
           "      --slow-ms MS        extra delay per message of a slow member (default 300)\n"
           "      --partition-at S    split the cluster in two halves at S seconds\n"
           "      --partition-for S   for S seconds (default 20)\n"
           "      --delay MIN:MAX     network delay range in ms (default 1:5)\n"
           "  -r, --runs N            independent runs (default 1)\n"
           "  -s, --seed N            first seed (default 1)\n"
           "      --memberlist        HashiCorp memberlist LAN defaults, untuned\n"
           "      --suspicion-mult N, --suspicion-max-mult N, --confirmations N,\n"
           "      --gossip-interval MS, --gossip-nodes N, --piggyback N, --retransmit-mult N,\n"
           "      --probe-interval MS, --probe-timeout MS, --suspicion-min MS   override core "
           "options\n");
}

int main(int argc, char **argv)
{
    sim_opts_t o;
    memset(&o, 0, sizeof o);
    o.nodes = 100;
    o.duration_s = 180;
    o.crashes = 5;
    o.slow_ms = 300;
    o.partition_at = -1;
    o.partition_for = 20;
    o.delay_min = 1;
    o.delay_max = 5;
    o.runs = 1;
    o.seed = 1;
    swim_opts_default(&o.swim);
    static const struct option longopts[] = {{"nodes", 1, 0, 'n'},
                                             {"duration", 1, 0, 'd'},
                                             {"loss", 1, 0, 'l'},
                                             {"crashes", 1, 0, 'c'},
                                             {"slow", 1, 0, 1},
                                             {"slow-ms", 1, 0, 2},
                                             {"partition-at", 1, 0, 3},
                                             {"partition-for", 1, 0, 4},
                                             {"delay", 1, 0, 5},
                                             {"runs", 1, 0, 'r'},
                                             {"seed", 1, 0, 's'},
                                             {"memberlist", 0, 0, 6},
                                             {"suspicion-mult", 1, 0, 7},
                                             {"suspicion-max-mult", 1, 0, 8},
                                             {"confirmations", 1, 0, 9},
                                             {"gossip-interval", 1, 0, 10},
                                             {"gossip-nodes", 1, 0, 11},
                                             {"piggyback", 1, 0, 12},
                                             {"retransmit-mult", 1, 0, 13},
                                             {"probe-interval", 1, 0, 14},
                                             {"probe-timeout", 1, 0, 15},
                                             {"suspicion-min", 1, 0, 16},
                                             {"help", 0, 0, 'h'},
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "n:d:l:c:r:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.nodes = strtoul(optarg, NULL, 10);
            break;
        case 'd':
            o.duration_s = atof(optarg);
            break;
        case 'l':
            o.loss = atof(optarg) / 100.0;
            break;
        case 'c':
            o.crashes = strtoul(optarg, NULL, 10);
            break;
        case 1:
            o.slow = strtoul(optarg, NULL, 10);
            break;
        case 2:
            o.slow_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 3:
            o.partition_at = atof(optarg);
            break;
        case 4:
            o.partition_for = atof(optarg);
            break;
        case 5:
            if (sscanf(optarg, "%u:%u", &o.delay_min, &o.delay_max) != 2) {
                s_usage();
                return 2;
            }
            break;
        case 'r':
            o.runs = strtoul(optarg, NULL, 10);
            break;
        case 's':
            o.seed = strtoull(optarg, NULL, 10);
            break;
        case 6:
            o.memberlist = 1;
            break;
        case 7:
            o.swim.suspicion_mult = atof(optarg);
            break;
        case 8:
            o.swim.suspicion_max_mult = (uint32_t)atoi(optarg);
            break;
        case 9:
            o.swim.suspicion_confirmations = (uint32_t)atoi(optarg);
            break;
        case 10:
            o.swim.gossip_interval_ms = (uint32_t)atoi(optarg);
            break;
        case 11:
            o.swim.gossip_nodes = (uint32_t)atoi(optarg);
            break;
        case 12:
            o.swim.max_piggyback = (uint32_t)atoi(optarg);
            break;
        case 13:
            o.swim.retransmit_mult = (uint32_t)atoi(optarg);
            break;
        case 14:
            o.swim.probe_interval_ms = (uint32_t)atoi(optarg);
            break;
        case 15:
            o.swim.probe_timeout_ms = (uint32_t)atoi(optarg);
            break;
        case 16:
            o.swim.suspicion_min_ms = (uint32_t)atoi(optarg);
            break;
        case 'h':
            s_usage();
            return 0;
        default:
            s_usage();
            return 2;
        }
    }
    if (o.memberlist)
        swim_opts_memberlist(&o.swim);
    if (o.nodes < 2 || o.nodes > (1u << 24) || o.crashes >= o.nodes) {
        fprintf(stderr, "swimsim: need 2 <= nodes and crashes < nodes\n");
        return 2;
    }
    size_t cap = o.runs * (o.crashes + 1);
    uint64_t *all = calloc(cap, sizeof *all);
    size_t n_all = 0, missed = 0;
    double msgs = 0, bytes = 0, converge = 0, real = 0, heal = -1;
    uint64_t fs = 0, fd = 0, pd = 0;
    for (size_t r = 0; r < o.runs; r++) {
        sim_result_t res;
        memset(&res, 0, sizeof res);
        s_run(&o, o.seed + r, &res);
        memcpy(all + n_all, res.detect_ms, res.n_detect * sizeof *all);
        n_all += res.n_detect;
        missed += res.n_missed;
        msgs += res.msgs_per_member_s / (double)o.runs;
        bytes += res.bytes_per_member_s / (double)o.runs;
        converge += res.converge_s / (double)o.runs;
        real += res.real_s;
        fs += res.false_suspicions;
        fd += res.false_deaths;
        pd += res.partition_deaths;
        if (res.heal_s > heal)
            heal = res.heal_s;
        free(res.detect_ms);
    }
    qsort(all, n_all, sizeof *all, s_cmp_u64);
    double median = n_all ? (double)all[n_all / 2] / 1000.0 : -1;
    double p99 =
        n_all ? (double)all[(n_all * 99) / 100 < n_all ? (n_all * 99) / 100 : n_all - 1] / 1000.0
              : -1;
    double worst = n_all ? (double)all[n_all - 1] / 1000.0 : -1;
    printf("nodes %zu loss %.1f%% crashes %zu x %zu runs: detected by all: median %.2f s, "
           "p99 %.2f s, max %.2f s, missed %zu\n",
           o.nodes, o.loss * 100, o.crashes, o.runs, median, p99, worst, missed);
    printf(
        "false suspect events %llu, false dead events %llu (partition deaths %llu), join converged "
        "in %.1f s, partition healed in %.1f s\n",
        (unsigned long long)fs, (unsigned long long)fd, (unsigned long long)pd, converge, heal);
    printf("per member: %.2f msgs/s, %.0f bytes/s sent; real time %.1f s\n", msgs, bytes, real);
    printf("| %zu | %.0f%% | %.2f | %.2f | %llu | %llu | %.2f | %.0f |\n", o.nodes, o.loss * 100,
           median, p99, (unsigned long long)fs, (unsigned long long)fd, msgs, bytes);
    free(all);
    return missed > 0 ? 1 : 0;
}
