/*
 * cluster.c - the gossip agent inside shoald (see cluster.h): option mapping from the node's
 * config, the on_view bridge into membership.h, the join wait and refusal check, leave and
 * the incarnation kept across restarts.
 */
#include "cluster.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "gossip_agent.h"
#include "identity.h"
#include "log.h"
#include "vec.h"

#define CLUSTER_JOIN_WAIT_MS    3000 /* cluster_start waits this long for a seed's answer */
#define CLUSTER_LEAVE_LINGER_MS 500  /* keep answering gossip this long after leaving */

struct cluster {
    cluster_deps_t deps;                      /* the node's settings and objects (copied) */
    gossip_agent_t *agent;                    /* the gossip member */
    char **seeds;                             /* "tcp://host:port" seed endpoints, owned */
    size_t seed_count;                        /* entries in seeds */
    char gossip_ep[CONFIG_ENDPOINT_MAX + 64]; /* advertised gossip endpoint */
    VEC(membership_member_t) scratch;         /* on_view conversion buffer (gossip thread only) */
    bool started;                             /* thread running */
    bool left;                                /* cluster_leave ran */
};

static int64_t s_ms_to_monotonic_ns(uint64_t ms)
{
    return ms ? (int64_t)ms * 1000000ll : 0;
}

/* Logs the state changes between the node's current list and the new snapshot. */
static void s_log_changes(cluster_t *self, const membership_member_t *members, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        membership_member_t old;
        bool known = membership_find(self->deps.members, members[i].id, &old) == 0;
        if (known && old.state == members[i].state && old.incarnation == members[i].incarnation &&
            strcmp(old.data_endpoint, members[i].data_endpoint) == 0)
            continue;
        if (memcmp(members[i].id, self->deps.id, MSG_NODE_ID_SIZE) == 0)
            continue;
        log_info("member %s (%s) is %s, incarnation %llu%s", members[i].name,
                 members[i].data_endpoint, swim_state_name((int)members[i].state),
                 (unsigned long long)members[i].incarnation, known ? "" : " (new)");
    }
}

/* On the gossip thread, after every batch of changes and at least once a second: copies the
 * snapshot into the node's membership. */
static void s_on_view(void *ctx, view_t *view)
{
    cluster_t *self = ctx;
    size_t count = view_count(view);
    if (count > MSG_MEMBERS_MAX)
        count = MSG_MEMBERS_MAX;
    vec_clear(&self->scratch);
    if (vec_reserve(&self->scratch, count) < 0)
        return; /* out of memory: keep the old list; the next refresh tries again */
    for (size_t i = 0; i < count; i++) {
        const view_member_t *from = view_member(view, i);
        membership_member_t *to = &self->scratch.items[i];
        memset(to, 0, sizeof *to);
        memcpy(to->id, from->id, MSG_NODE_ID_SIZE);
        snprintf(to->name, sizeof to->name, "%s", from->name);
        snprintf(to->data_endpoint, sizeof to->data_endpoint, "%s", from->data_ep);
        snprintf(to->gossip_endpoint, sizeof to->gossip_endpoint, "%s", from->gossip_ep);
        snprintf(to->host_id, sizeof to->host_id, "%s", from->host_id);
        snprintf(to->local_socket, sizeof to->local_socket, "%s", from->local_socket);
        to->state = (uint32_t)from->state; /* swim_state_t and msg_member_state_t agree */
        to->incarnation = from->incarnation;
        to->weight = from->weight;
        to->last_heard_ns = from->is_self ? 0 : s_ms_to_monotonic_ns(from->last_heard_ms);
    }
    s_log_changes(self, self->scratch.items, count);
    membership_set_members(self->deps.members, self->scratch.items, count);
}

/* "tcp://0.0.0.0:P" or a "*" host -> "tcp://HOSTNAME:P"; anything else as is. */
static void s_advertise(const char *bound, char *out, size_t cap)
{
    const char *host = strncmp(bound, "tcp://", 6) == 0 ? bound + 6 : bound;
    const char *colon = strrchr(bound, ':');
    if (colon && (strncmp(host, "*:", 2) == 0 || strncmp(host, "0.0.0.0:", 8) == 0)) {
        char name[256] = "localhost";
        gethostname(name, sizeof name - 1);
        name[sizeof name - 1] = '\0';
        snprintf(out, cap, "tcp://%s%s", name, colon);
    } else {
        snprintf(out, cap, "%s", bound);
    }
}

/* Splits --seeds ("host:port,tcp://host:port,...") into endpoints. Returns 0 or -1 (logged). */
static int s_parse_seeds(cluster_t *self, const char *text)
{
    char *copy = strdup(text ? text : "");
    if (copy == NULL)
        return -1;
    size_t cap = 1;
    for (const char *p = copy; *p; p++)
        cap += *p == ',';
    self->seeds = calloc(cap, sizeof *self->seeds);
    if (self->seeds == NULL) {
        free(copy);
        return -1;
    }
    int rc = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ", ", &save); item; item = strtok_r(NULL, ", ", &save)) {
        char endpoint[CONFIG_ENDPOINT_MAX];
        if (config_parse_endpoint(item, endpoint, NULL) < 0) {
            log_error("bad seed '%s' in --seeds (use host:port)", item);
            rc = -1;
            break;
        }
        if ((self->seeds[self->seed_count] = strdup(endpoint)) == NULL) {
            rc = -1;
            break;
        }
        self->seed_count++;
    }
    free(copy);
    return rc;
}

/* The agent's options from the node's config. `bind_ep` and `gossip_ep` are borrowed. */
static void s_opts(cluster_t *self, const char *data_endpoint, const char *bind_ep,
                   gossip_agent_opts_t *opts)
{
    const cluster_deps_t *deps = &self->deps;
    const node_config_t *config = deps->config;
    memset(opts, 0, sizeof *opts);
    swim_opts_default(&opts->swim);
    memcpy(opts->swim.id, deps->id, SWIM_ID_LEN);
    opts->swim.name = config->name;
    opts->swim.gossip_ep = NULL; /* set by the caller once bound */
    opts->swim.data_ep = data_endpoint;
    opts->swim.host_id = config->host_id;
    opts->swim.local_socket = deps->local_socket;
    opts->swim.weight = config->capacity_bytes;
    opts->swim.incarnation = deps->incarnation;
    opts->swim.page_size = (uint32_t)deps->page_size;
    opts->swim.range_pages = deps->range_pages;
    opts->swim.probe_interval_ms = config->probe_interval_ms;
    opts->swim.probe_timeout_ms = config->probe_timeout_ms;
    opts->swim.indirect_checks = config->indirect_checks;
    opts->swim.suspicion_mult = config->suspicion_mult;
    opts->swim.retransmit_mult = config->retransmit_mult;
    opts->swim.push_pull_interval_ms = config->push_pull_interval_ms;
    opts->swim.dead_forget_ms = config->dead_forget_ms;
    /* a seed's first answer to a new member is usually lost while its connection back to us
     * is made (ZMQ_IMMEDIATE), so the JOIN is retried: no slower than probing */
    if (opts->swim.join_retry_ms > config->probe_interval_ms)
        opts->swim.join_retry_ms = config->probe_interval_ms;
    opts->bind_ep = bind_ep;
    opts->seeds = (const char *const *)self->seeds;
    opts->n_seeds = self->seed_count;
    opts->on_view = s_on_view;
    opts->ctx = self;
}

/* Makes the agent, which binds at once. A taken default port is retried as an ephemeral one
 * (unit tests start many nodes on free data ports whose neighbours may be busy). */
cluster_t *cluster_new(const cluster_deps_t *deps, const char *data_endpoint)
{
    cluster_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        log_error("out of memory");
        return NULL;
    }
    self->deps = *deps;
    if (s_parse_seeds(self, deps->config->seeds) < 0) {
        cluster_destroy(&self);
        return NULL;
    }
    const char *bind_ep = deps->config->gossip;
    char ephemeral[CONFIG_ENDPOINT_MAX + 8];
    for (int attempt = 0; attempt < 2; attempt++) {
        gossip_agent_opts_t opts;
        s_opts(self, data_endpoint, bind_ep, &opts);
        /* The advertised endpoint: the bind endpoint with a wildcard host made concrete. For
         * an ephemeral port the agent advertises what it bound (gossip_ep NULL). */
        s_advertise(bind_ep, self->gossip_ep, sizeof self->gossip_ep);
        opts.swim.gossip_ep = attempt == 0 ? self->gossip_ep : NULL;
        self->agent = gossip_agent_new(&opts);
        if (self->agent != NULL)
            break;
        if (attempt == 0 && deps->config->gossip_defaulted) {
            const char *colon = strrchr(deps->config->gossip, ':');
            int host_len = (int)(colon - deps->config->gossip);
            snprintf(ephemeral, sizeof ephemeral, "%.*s:*", host_len, deps->config->gossip);
            log_warn("%s; the default gossip port is taken, so gossip uses an ephemeral port "
                     "(give --gossip to choose one)",
                     shoal_last_error());
            bind_ep = ephemeral;
            continue;
        }
        log_error("%s", shoal_last_error());
        cluster_destroy(&self);
        return NULL;
    }
    s_advertise(gossip_agent_endpoint(self->agent), self->gossip_ep, sizeof self->gossip_ep);
    return self;
}

static void s_sleep_ms(long ms)
{
    struct timespec step = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&step, &step) != 0 && errno == EINTR) {
    }
}

int cluster_start(cluster_t *self)
{
    int rc = gossip_agent_start(self->agent);
    if (rc < 0) {
        log_error("cannot start gossip: %s", shoal_last_error());
        return rc;
    }
    self->started = true;
    log_info("gossip on %s (advertised %s), %zu seed(s), probe %u ms",
             gossip_agent_endpoint(self->agent), self->gossip_ep, self->seed_count,
             self->deps.config->probe_interval_ms);
    if (self->seed_count == 0)
        return 0;
    int64_t deadline = clock_mono_ms() + CLUSTER_JOIN_WAIT_MS;
    while (clock_mono_ms() < deadline) {
        char message[256];
        rc = cluster_status(self, message, sizeof message);
        if (rc < 0) {
            log_error("the cluster refused this node: %s", message);
            return rc;
        }
        view_t *view = gossip_agent_view(self->agent);
        size_t count = view ? view_count(view) : 0;
        view_unref(&view);
        if (count > 1) {
            log_info("joined the cluster: %zu members known", count);
            return 0;
        }
        s_sleep_ms(20);
    }
    log_warn("no seed answered within %d ms; running alone and still trying to join",
             CLUSTER_JOIN_WAIT_MS);
    return 0;
}

int cluster_status(cluster_t *self, char *message, size_t cap)
{
    if (self == NULL || self->agent == NULL)
        return 0;
    return gossip_agent_status(self->agent, message, cap);
}

void cluster_leave(cluster_t *self)
{
    if (self == NULL || !self->started || self->left)
        return;
    self->left = true;
    if (cluster_status(self, NULL, 0) < 0)
        return; /* refused: we never were a member */
    view_t *view = gossip_agent_view(self->agent);
    size_t live = view ? view_live_count(view) : 0;
    view_unref(&view);
    gossip_agent_leave(self->agent, live > 1 ? CLUSTER_LEAVE_LINGER_MS : 0);
    log_info("left the cluster");
}

void cluster_destroy(cluster_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    cluster_t *self = *self_p;
    if (self->agent != NULL) {
        view_t *view = gossip_agent_view(self->agent);
        const view_member_t *me = view ? view_find(view, self->deps.id) : NULL;
        if (me != NULL && self->deps.store != NULL &&
            identity_save_incarnation(self->deps.store, me->incarnation) < 0)
            log_warn("cannot store the incarnation: %s", shoal_last_error());
        view_unref(&view);
        gossip_agent_destroy(&self->agent);
    }
    for (size_t i = 0; i < self->seed_count; i++)
        free(self->seeds[i]);
    free(self->seeds);
    vec_fini(&self->scratch);
    free(self);
    *self_p = NULL;
}
