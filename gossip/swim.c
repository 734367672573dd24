/*
 * swim.c - the SWIM core: member records and the rules that merge them (incarnations,
 * refutation), message dispatch, dissemination (piggyback, gossip rounds, push-pull), join
 * and leave. The failure detector itself is in swim_probe.c; the wire format in swim_proto.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_err.h"
#include "swim_int.h"

const char *swim_state_name(int state)
{
    switch (state) {
    case SWIM_ALIVE:
        return "alive";
    case SWIM_SUSPECT:
        return "suspect";
    case SWIM_DEAD:
        return "dead";
    case SWIM_LEFT:
        return "left";
    default:
        return "?";
    }
}

void swim_opts_default(swim_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->name = "";
    opts->data_ep = "";
    opts->host_id = "";
    opts->local_socket = "";
    opts->page_size = 1u << 20;
    opts->range_pages = 4;
    opts->placement = HRW_PLACEMENT_VERSION;
    opts->probe_interval_ms = 1000;
    opts->probe_timeout_ms = 500;
    opts->indirect_checks = 3;
    opts->suspicion_mult = 0.5;    /* memberlist: 4 (see gossip/README.md, "Tuning") */
    opts->suspicion_min_ms = 1500; /* memberlist: none */
    opts->suspicion_max_mult = 6;
    opts->suspicion_confirmations = 2; /* memberlist: suspicion_mult - 2 */
    opts->retransmit_mult = 4;
    opts->gossip_interval_ms = 200;
    opts->gossip_nodes = 3;
    opts->max_piggyback = 64;
    opts->piggyback_bytes = 1400;
    opts->push_pull_interval_ms = 30000;
    opts->reconnect_interval_ms = 10000;
    opts->awareness_max_mult = 8;
    opts->dead_forget_ms = 30000;
    opts->join_retry_ms = 1000;
    opts->leave_fanout = 8;
}

void swim_opts_memberlist(swim_opts_t *opts)
{
    opts->probe_interval_ms = 1000;
    opts->probe_timeout_ms = 500;
    opts->indirect_checks = 3;
    opts->suspicion_mult = 4;
    opts->suspicion_min_ms = 0;
    opts->suspicion_max_mult = 6;
    opts->suspicion_confirmations = 2;
    opts->retransmit_mult = 4;
    opts->gossip_interval_ms = 200;
    opts->gossip_nodes = 3;
    opts->push_pull_interval_ms = 30000;
    opts->awareness_max_mult = 8;
    opts->dead_forget_ms = 30000;
}

static bool s_live(swim_state_t state)
{
    return state == SWIM_ALIVE || state == SWIM_SUSPECT;
}

/* ---------------------------------------------------------------------------------------
 * Member state
 * ------------------------------------------------------------------------------------- */

static void s_info(const swim_t *swim, const swim_member_t *m, swim_member_info_t *info)
{
    memcpy(info->id, m->id, SWIM_ID_LEN);
    info->name = m->name;
    info->gossip_ep = m->gossip_ep;
    info->data_ep = m->data_ep;
    info->host_id = m->host_id;
    info->local_socket = m->local_socket;
    info->incarnation = m->incarnation;
    info->state = m->state;
    info->weight = m->weight;
    info->last_heard_ms = m->last_heard_ms;
    info->state_since_ms = m->state_since_ms;
    info->is_self = m == swim->self;
}

/* Every visible change goes through here: bumps the version and tells the owner. */
void swim_emit(swim_t *swim, swim_member_t *member, swim_state_t old_state, bool added,
               bool removed)
{
    swim->version++;
    if (swim->opts.on_event == NULL)
        return;
    swim_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = SWIM_EVENT_MEMBER;
    s_info(swim, member, &ev.member);
    ev.old_state = old_state;
    ev.added = added;
    ev.removed = removed;
    ev.version = swim->version;
    swim->opts.on_event(swim->opts.event_ctx, &ev);
}

static void s_timers_link(swim_t *swim, swim_member_t *m)
{
    if (m->in_timers)
        return;
    m->in_timers = true;
    m->tm_prev = NULL;
    m->tm_next = swim->timers;
    if (swim->timers)
        swim->timers->tm_prev = m;
    swim->timers = m;
}

static void s_timers_unlink(swim_t *swim, swim_member_t *m)
{
    if (!m->in_timers)
        return;
    if (m->tm_prev)
        m->tm_prev->tm_next = m->tm_next;
    else
        swim->timers = m->tm_next;
    if (m->tm_next)
        m->tm_next->tm_prev = m->tm_prev;
    m->tm_prev = m->tm_next = NULL;
    m->in_timers = false;
}

/* Changes a member's state and keeps the invariants: timer list, suspicion record, n_live.
 * If no suspicion record can be allocated the member goes straight to dead: a failure
 * detector that cannot track a suspicion must not keep a failed member alive. */
void swim_set_state(swim_t *swim, swim_member_t *m, swim_state_t state, uint64_t now_ms)
{
    swim_state_t old = m->state;
    if (old == state)
        return;
    if (s_live(old) && !s_live(state))
        swim->n_live--;
    else if (!s_live(old) && s_live(state))
        swim->n_live++;
    m->state = state;
    m->state_since_ms = now_ms;
    free(m->suspicion);
    m->suspicion = NULL;
    if (state == SWIM_SUSPECT) {
        m->suspicion = calloc(1, sizeof *m->suspicion);
        if (m->suspicion == NULL) {
            m->state = SWIM_DEAD;
            swim->n_live--;
        }
    }
    if (m->state == SWIM_ALIVE || m == swim->self)
        s_timers_unlink(swim, m);
    else
        s_timers_link(swim, m);
    swim_emit(swim, m, old, false, false);
}

void swim_queue(swim_t *swim, swim_member_t *member)
{
    swim_dissem_push(&swim->dq, member);
}

/* Adds a member from a record. Returns it, or NULL when out of memory (the record is then
 * simply not learned; gossip or push-pull brings it again). */
static swim_member_t *s_add(swim_t *swim, const swim_update_t *u, uint64_t now_ms)
{
    swim_member_t *m = swim_table_add(&swim->table, u);
    if (m == NULL)
        return NULL;
    m->incarnation = u->incarnation;
    m->weight = u->weight;
    m->state = SWIM_ALIVE;
    m->state_since_ms = now_ms;
    swim->n_live++;
    swim_probe_add_member(swim, m);
    swim_emit(swim, m, SWIM_ALIVE, true, false);
    return m;
}

/* Forgets a dead or left member for good. */
static void s_forget(swim_t *swim, swim_member_t *m)
{
    swim_dissem_remove(&swim->dq, m);
    s_timers_unlink(swim, m);
    swim_probe_remove_member(swim, m);
    if (swim->probe.active && memcmp(swim->probe.target, m->id, 16) == 0)
        swim->probe.active = false;
    swim_emit(swim, m, m->state, false, true);
    swim_table_remove(&swim->table, m);
}

/* ---------------------------------------------------------------------------------------
 * Merge rules. A record about someone else wins if its incarnation is higher, or equal with
 * a stronger state (alive < suspect < dead; left beats all at an equal incarnation).
 * Records about ourselves are refuted with a higher incarnation. From a push-pull, "dead"
 * counts as "suspect" (memberlist mergeState): a stale full state from the other side of a
 * healed partition must not kill members that can still refute.
 * ------------------------------------------------------------------------------------- */

static void s_refute(swim_t *swim, uint64_t incarnation, bool accused)
{
    swim_member_t *self = swim->self;
    self->incarnation = (incarnation > self->incarnation ? incarnation : self->incarnation) + 1;
    swim->stats.refutations++;
    if (accused)
        swim_lhm_apply(swim, 1);
    swim_queue(swim, self);
}

static void s_about_self(swim_t *swim, const swim_update_t *u, swim_state_t state)
{
    swim_member_t *self = swim->self;
    if (swim->leaving) {
        /* Keep saying "left", above whatever incarnation the others hold. */
        if (state != SWIM_LEFT && u->incarnation >= self->incarnation)
            s_refute(swim, u->incarnation, false);
        return;
    }
    switch (state) {
    case SWIM_ALIVE:
        /* A previous life of ours (restart without the persisted incarnation), or a record
         * with our old address: take over with a higher incarnation. */
        if (u->incarnation > self->incarnation ||
            (u->incarnation == self->incarnation &&
             (!swim_member_strings_equal(self, u) || u->weight != self->weight)))
            s_refute(swim, u->incarnation, false);
        break;
    case SWIM_SUSPECT:
    case SWIM_DEAD:
        if (u->incarnation >= self->incarnation)
            s_refute(swim, u->incarnation, true);
        else if (self->dq_bucket < 0)
            swim_queue(swim, self); /* someone missed our refutation: say it again */
        break;
    case SWIM_LEFT:
        if (u->incarnation >= self->incarnation)
            s_refute(swim, u->incarnation, false);
        break;
    }
}

static void s_apply(swim_t *swim, const swim_update_t *u, const uint8_t sender[16], bool from_sync,
                    uint64_t now_ms)
{
    swim_state_t state = (swim_state_t)u->state;
    if (from_sync && state == SWIM_DEAD)
        state = SWIM_SUSPECT;
    if (memcmp(u->id, swim->self->id, SWIM_ID_LEN) == 0) {
        s_about_self(swim, u, state);
        return;
    }
    const uint8_t *suspecter = u->has_suspecter && !from_sync ? u->suspecter : sender;
    swim_member_t *m = swim_table_find(&swim->table, u->id);
    if (m == NULL) {
        if (!s_live(state))
            return; /* nothing to learn about a stranger that is gone */
        m = s_add(swim, u, now_ms);
        if (m == NULL)
            return;
        if (state == SWIM_SUSPECT)
            swim_suspect(swim, m, suspecter, now_ms);
        swim_queue(swim, m);
        return;
    }
    if (u->incarnation < m->incarnation) {
        /* The sender spreads news older than ours (it missed a refutation): correct it
         * directly, or it may let a stale suspicion expire into a false death. Random
         * gossip alone reaches one given member too slowly. */
        if (!from_sync && swim->n_stale < SWIM_STALE_MAX)
            swim->stale[swim->n_stale++] = m;
        return;
    }
    switch (state) {
    case SWIM_ALIVE: {
        if (u->incarnation <= m->incarnation)
            return;
        bool data_changed = !swim_member_strings_equal(m, u) || u->weight != m->weight;
        if (data_changed && swim_member_set_strings(m, u) != 0)
            return;
        m->incarnation = u->incarnation;
        m->weight = u->weight;
        if (m->state != SWIM_ALIVE)
            swim_set_state(swim, m, SWIM_ALIVE, now_ms);
        else if (data_changed)
            swim_emit(swim, m, SWIM_ALIVE, false, false);
        swim_queue(swim, m);
        return;
    }
    case SWIM_SUSPECT:
        if (u->incarnation < m->incarnation || !s_live(m->state))
            return;
        if (u->incarnation > m->incarnation && m->state == SWIM_SUSPECT)
            swim_set_state(swim, m, SWIM_ALIVE, now_ms); /* a new suspicion, fresh timer */
        m->incarnation = u->incarnation;
        if (swim_suspect(swim, m, suspecter, now_ms))
            swim_queue(swim, m);
        return;
    case SWIM_DEAD:
    case SWIM_LEFT:
        if (u->incarnation < m->incarnation || m->state == SWIM_LEFT ||
            (m->state == SWIM_DEAD && state == SWIM_DEAD))
            return;
        m->incarnation = u->incarnation;
        swim_set_state(swim, m, state, now_ms);
        swim_queue(swim, m);
        return;
    }
}

/* ---------------------------------------------------------------------------------------
 * Sending
 * ------------------------------------------------------------------------------------- */

static void s_fill_update(const swim_member_t *m, swim_update_t *u)
{
    memcpy(u->id, m->id, SWIM_ID_LEN);
    u->name = swim_str(m->name);
    u->gossip_ep = swim_str(m->gossip_ep);
    u->data_ep = swim_str(m->data_ep);
    u->host_id = swim_str(m->host_id);
    u->local_socket = swim_str(m->local_socket);
    u->incarnation = m->incarnation;
    u->state = (uint8_t)m->state;
    u->weight = m->weight;
    u->has_suspecter = m->suspicion != NULL;
    if (m->suspicion)
        memcpy(u->suspecter, m->suspicion->suspecter, 16);
}

void swim_msg_init(swim_t *swim, swim_msg_t *msg, uint32_t type)
{
    memset(msg, 0, sizeof *msg);
    msg->type = type;
    memcpy(msg->from_id, swim->self->id, SWIM_ID_LEN);
    msg->from_addr = swim_str(swim->self->gossip_ep);
    msg->page_size = swim->opts.page_size;
    msg->range_pages = swim->opts.range_pages;
    msg->placement = swim->opts.placement;
}

/* Retransmit limit: retransmit_mult x ceil(log10(N + 1)), as memberlist. */
static uint32_t s_retransmit_limit(const swim_t *swim)
{
    double n = (double)swim->table.members.len;
    return swim->opts.retransmit_mult * (uint32_t)ceil(log10(n + 1.0));
}

static int s_transmit(swim_t *swim, const char *to)
{
    if (swim->buf.len == 0)
        return swim->buf.err;
    swim->stats.msgs_sent++;
    swim->stats.bytes_sent += swim->buf.len;
    return swim->opts.transport.send(swim->opts.transport.ctx, to, swim->buf.data, swim->buf.len);
}

/* Sends a non-SYNC message carrying `extra` (the records of those members, always) and then
 * as many queued records as max_piggyback allows. */
int swim_send_records(swim_t *swim, const char *to, swim_msg_t *msg, swim_member_t *const *extra,
                      size_t n_extra)
{
    swim_update_t updates[SWIM_UPDATES_MAX];
    size_t max =
        swim->opts.max_piggyback < SWIM_UPDATES_MAX ? swim->opts.max_piggyback : SWIM_UPDATES_MAX;
    size_t n = 0;
    for (size_t i = 0; i < n_extra && n < SWIM_UPDATES_MAX; i++)
        s_fill_update(extra[i], &updates[n++]);
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += swim_update_size(&updates[i]);
    /* Least-sent records first until the count or the byte budget is reached (memberlist
     * fills a 1400-byte UDP packet the same way). */
    size_t budget = swim->opts.piggyback_bytes > bytes ? swim->opts.piggyback_bytes - bytes : 0;
    size_t taken = budget > 0 ? swim_dissem_take(&swim->dq, max > n ? max - n : 0, budget,
                                                 s_retransmit_limit(swim), NULL, swim->taken)
                              : 0;
    for (size_t i = 0; i < taken; i++) {
        bool dup = false;
        for (size_t j = 0; j < n_extra; j++)
            dup = dup || swim->taken[i] == extra[j];
        if (!dup)
            s_fill_update(swim->taken[i], &updates[n++]);
    }
    int rc = swim_msg_encode(&swim->buf, msg, updates, n);
    return rc != 0 ? rc : s_transmit(swim, to);
}

/* Sends a non-SYNC message with queued records; `first` (may be NULL) always goes too. */
int swim_send(swim_t *swim, const char *to, swim_msg_t *msg, swim_member_t *first)
{
    if (first != NULL && first->dq_bucket >= 0) {
        /* Count this transmission of a queued record like any other. */
        swim_member_t *taken[1];
        swim_dissem_take(&swim->dq, 1, SIZE_MAX, s_retransmit_limit(swim), first, taken);
    }
    return swim_send_records(swim, to, msg, &first, first != NULL);
}

/* Sends a SYNC or JOIN carrying `members` (all of them when NULL) to `to`. */
static int s_send_state(swim_t *swim, const char *to, uint32_t type, uint32_t kind, bool only_self)
{
    size_t n =
        only_self || kind == SWIM_SYNC_REFUSED ? (only_self ? 1 : 0) : swim->table.members.len;
    if (vec_reserve(&swim->scratch, n) < 0) /* len stays 0: room for n, reused */
        return SHOAL_ENOMEM;
    if (only_self)
        s_fill_update(swim->self, &swim->scratch.items[0]);
    else
        for (size_t i = 0; i < n; i++)
            s_fill_update(swim->table.members.items[i], &swim->scratch.items[i]);
    swim_msg_t msg;
    swim_msg_init(swim, &msg, type);
    msg.sync_kind = kind;
    int rc = swim_msg_encode(&swim->buf, &msg, swim->scratch.items, n);
    return rc != 0 ? rc : s_transmit(swim, to);
}

/* A random member other than self that `ok` accepts, or NULL; O(1) expected for large
 * tables, a bounded scan for small ones. */
static swim_member_t *s_random_member(swim_t *swim,
                                      bool (*ok)(const swim_t *, const swim_member_t *))
{
    size_t count = swim->table.members.len;
    for (int tries = 0; tries < 16; tries++) {
        swim_member_t *m = swim->table.members.items[rng_next(&swim->rng) % count];
        if (m != swim->self && ok(swim, m))
            return m;
    }
    size_t start = (size_t)(rng_next(&swim->rng) % count);
    for (size_t i = 0; i < count; i++) {
        swim_member_t *m = swim->table.members.items[(start + i) % count];
        if (m != swim->self && ok(swim, m))
            return m;
    }
    return NULL;
}

static bool s_ok_alive(const swim_t *swim, const swim_member_t *m)
{
    (void)swim;
    return m->state == SWIM_ALIVE;
}

/* Gossip targets: live members, and dead ones for a while so that a member wrongly declared
 * dead (partition) hears it and refutes. */
static bool s_ok_gossip(const swim_t *swim, const swim_member_t *m)
{
    if (s_live(m->state))
        return true;
    return m->state == SWIM_DEAD && swim->opts.dead_forget_ms > 0;
}

/* ---------------------------------------------------------------------------------------
 * Lifecycle and API
 * ------------------------------------------------------------------------------------- */

swim_t *swim_new(const swim_opts_t *opts, uint64_t now_ms)
{
    if (opts->gossip_ep == NULL || opts->gossip_ep[0] == 0 ||
        strlen(opts->gossip_ep) > SWIM_ADDR_MAX ||
        (opts->name && strlen(opts->name) > SWIM_NAME_MAX) ||
        (opts->data_ep && strlen(opts->data_ep) > SWIM_ADDR_MAX) ||
        (opts->host_id && strlen(opts->host_id) > SWIM_HOST_ID_MAX) ||
        (opts->local_socket && strlen(opts->local_socket) > SWIM_SOCKET_MAX) ||
        opts->transport.send == NULL || opts->probe_interval_ms == 0 ||
        opts->awareness_max_mult == 0) {
        shoal_fail(SHOAL_EINVAL, "swim: bad options (endpoint, name, host id, local socket, "
                                 "transport or intervals)");
        return NULL;
    }
    swim_t *swim = calloc(1, sizeof *swim);
    if (swim == NULL || swim_table_init(&swim->table) != 0)
        goto nomem;
    swim->opts = *opts;
    /* host_id and local_socket are set here once: nothing changes them later, so they need
     * no incarnation bump of their own (a restart raises it anyway) */
    swim_update_t self = {
        .name = swim_str(opts->name),
        .gossip_ep = swim_str(opts->gossip_ep),
        .data_ep = swim_str(opts->data_ep),
        .host_id = swim_str(opts->host_id),
        .local_socket = swim_str(opts->local_socket),
    };
    memcpy(self.id, opts->id, SWIM_ID_LEN);
    swim->self = swim_table_add(&swim->table, &self);
    if (swim->self == NULL)
        goto nomem;
    swim->opts.name = swim->self->name;
    swim->opts.gossip_ep = swim->self->gossip_ep;
    swim->opts.data_ep = swim->self->data_ep;
    swim->opts.host_id = swim->self->host_id;
    swim->opts.local_socket = swim->self->local_socket;
    swim->self->incarnation = opts->incarnation;
    swim->self->weight = opts->weight;
    swim->self->state = SWIM_ALIVE;
    swim->self->state_since_ms = now_ms;
    swim->n_live = 1;
    uint64_t seed = opts->seed;
    if (seed == 0)
        memcpy(&seed, opts->id, sizeof seed);
    rng_init(&swim->rng, seed);
    for (int i = 0; i < 4; i++)
        rng_next(&swim->rng);
    /* Spread the timers of nodes started together over one interval. */
    swim->next_probe_ms = now_ms + rng_next(&swim->rng) % opts->probe_interval_ms;
    swim->next_gossip_ms = now_ms;
    swim->next_push_pull_ms =
        now_ms + opts->push_pull_interval_ms / 2 +
        (opts->push_pull_interval_ms ? rng_next(&swim->rng) % opts->push_pull_interval_ms : 0);
    swim->next_reconnect_ms = now_ms + opts->reconnect_interval_ms;
    swim->joined = true; /* until swim_join says otherwise */
    swim_queue(swim, swim->self);
    return swim;
nomem:
    swim_destroy(&swim);
    shoal_fail(SHOAL_ENOMEM, "swim: out of memory");
    return NULL;
}

void swim_destroy(swim_t **swim_p)
{
    swim_t *swim = *swim_p;
    if (swim == NULL)
        return;
    swim_table_fini(&swim->table);
    for (size_t i = 0; i < swim->n_seeds; i++)
        free(swim->seeds[i]);
    free(swim->seeds);
    vec_fini(&swim->probe_order);
    vec_fini(&swim->scratch);
    msg_buf_fini(&swim->buf);
    free(swim);
    *swim_p = NULL;
}

int swim_join(swim_t *swim, const char *const *seeds, size_t n_seeds, uint64_t now_ms)
{
    char **copy = calloc(n_seeds + 1, sizeof *copy);
    if (copy == NULL)
        return SHOAL_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < n_seeds; i++) {
        if (seeds[i] == NULL || seeds[i][0] == 0 || strcmp(seeds[i], swim->self->gossip_ep) == 0)
            continue;
        if ((copy[n] = strdup(seeds[i])) == NULL) {
            while (n > 0)
                free(copy[--n]);
            free(copy);
            return SHOAL_ENOMEM;
        }
        n++;
    }
    for (size_t i = 0; i < swim->n_seeds; i++)
        free(swim->seeds[i]);
    free(swim->seeds);
    swim->seeds = copy;
    swim->n_seeds = n;
    swim->joined = n == 0;
    swim->next_join_ms = now_ms;
    return swim_tick(swim, now_ms);
}

int swim_leave(swim_t *swim, uint64_t now_ms)
{
    if (swim->leaving)
        return 0;
    swim->leaving = true;
    swim->probe.active = false;
    swim_member_t *self = swim->self;
    swim_state_t old = self->state;
    self->incarnation++;
    self->state = SWIM_LEFT;
    self->state_since_ms = now_ms;
    swim->n_live--;
    swim_emit(swim, self, old, false, false);
    swim_queue(swim, self);
    swim_msg_t msg;
    swim_msg_init(swim, &msg, MSG_LEAVE);
    for (uint32_t i = 0; i < swim->opts.leave_fanout && swim->table.members.len > 1; i++) {
        swim_member_t *m = s_random_member(swim, s_ok_alive);
        if (m == NULL)
            break;
        swim_send(swim, m->gossip_ep, &msg, self);
    }
    return 0;
}

void swim_set_weight(swim_t *swim, uint64_t weight, uint64_t now_ms)
{
    (void)now_ms;
    if (swim->self->weight == weight)
        return;
    swim->self->weight = weight;
    swim->self->incarnation++;
    swim_emit(swim, swim->self, swim->self->state, false, false);
    swim_queue(swim, swim->self);
}

/* Suspicions that expired become deaths; dead and left members are forgotten after
 * dead_forget_ms. O(members in the timer list): few, in a healthy cluster. */
static void s_timers_tick(swim_t *swim, uint64_t now_ms)
{
    swim_member_t *next;
    for (swim_member_t *m = swim->timers; m != NULL; m = next) {
        next = m->tm_next;
        if (m->state == SWIM_SUSPECT) {
            if (now_ms >= swim_suspicion_deadline(m)) {
                swim_set_state(swim, m, SWIM_DEAD, now_ms);
                swim_queue(swim, m);
            } else if (now_ms >= swim_suspicion_reminder(m)) {
                /* Halfway through an unconfirmed suspicion: gossip it once more. Epidemic
                 * gossip misses a given member with a small but real chance (~1e-3 at
                 * N=100); whoever already has the refutation answers the stale record
                 * directly (s_apply), so a missed refutation is caught before the timeout. */
                m->suspicion->reminded = true;
                if (m->dq_bucket < 0)
                    swim_queue(swim, m);
            }
        } else if (now_ms >= m->state_since_ms + swim->opts.dead_forget_ms) {
            s_forget(swim, m);
        }
    }
}

static uint64_t s_push_pull_interval(const swim_t *swim)
{
    /* memberlist pushPullScale: one more interval per doubling above 32 members, so the
     * O(N) state exchange costs each member the same whatever N. */
    uint64_t interval = swim->opts.push_pull_interval_ms;
    double n = (double)swim->table.members.len;
    if (n <= 32)
        return interval;
    return interval * (uint64_t)(ceil(log2(n) - log2(32.0)) + 1);
}

int swim_tick(swim_t *swim, uint64_t now_ms)
{
    if (swim->status != 0)
        return swim->status;
    if (!swim->joined && now_ms >= swim->next_join_ms) {
        swim->next_join_ms = now_ms + swim->opts.join_retry_ms;
        for (size_t i = 0; i < swim->n_seeds; i++)
            s_send_state(swim, swim->seeds[i], MSG_JOIN, 0, true);
    }
    swim_probe_relays(swim, now_ms);
    s_timers_tick(swim, now_ms);
    swim_probe_tick(swim, now_ms);
    if (now_ms >= swim->next_gossip_ms) {
        swim->next_gossip_ms = now_ms + swim->opts.gossip_interval_ms;
        swim_msg_t msg;
        swim_msg_init(swim, &msg, MSG_GOSSIP);
        for (uint32_t i = 0; i < swim->opts.gossip_nodes && swim->opts.gossip_interval_ms > 0 &&
                             swim->dq.count > 0 && swim->table.members.len > 1;
             i++) {
            swim_member_t *m = s_random_member(swim, s_ok_gossip);
            if (m == NULL)
                break;
            if (m->state == SWIM_DEAD && now_ms > m->state_since_ms + swim->opts.dead_forget_ms)
                continue;
            swim_send(swim, m->gossip_ep, &msg, NULL);
        }
    }
    if (swim->opts.push_pull_interval_ms > 0 && now_ms >= swim->next_push_pull_ms) {
        swim->next_push_pull_ms = now_ms + s_push_pull_interval(swim);
        swim_member_t *m = swim->table.members.len > 1 && !swim->leaving
                               ? s_random_member(swim, s_ok_alive)
                               : NULL;
        if (m != NULL)
            s_send_state(swim, m->gossip_ep, MSG_SYNC, SWIM_SYNC_PUSH, false);
    }
    if (swim->opts.reconnect_interval_ms > 0 && now_ms >= swim->next_reconnect_ms) {
        swim->next_reconnect_ms = now_ms + swim->opts.reconnect_interval_ms;
        size_t n_dead = 0;
        for (swim_member_t *m = swim->timers; m != NULL; m = m->tm_next)
            n_dead += m->state == SWIM_DEAD;
        if (n_dead > 0 && !swim->leaving) {
            size_t pick = (size_t)(rng_next(&swim->rng) % n_dead);
            for (swim_member_t *m = swim->timers; m != NULL; m = m->tm_next)
                if (m->state == SWIM_DEAD && pick-- == 0) {
                    s_send_state(swim, m->gossip_ep, MSG_SYNC, SWIM_SYNC_PUSH, false);
                    break;
                }
        }
    }
    return 0;
}

uint64_t swim_next_deadline(const swim_t *swim)
{
    if (swim->status != 0)
        return UINT64_MAX;
    uint64_t t = swim_probe_deadline(swim);
    if (!swim->joined && swim->next_join_ms < t)
        t = swim->next_join_ms;
    if (swim->dq.count > 0 && swim->opts.gossip_interval_ms > 0 && swim->next_gossip_ms < t)
        t = swim->next_gossip_ms;
    if (swim->opts.push_pull_interval_ms > 0 && swim->next_push_pull_ms < t)
        t = swim->next_push_pull_ms;
    if (swim->opts.reconnect_interval_ms > 0 && swim->next_reconnect_ms < t)
        t = swim->next_reconnect_ms;
    for (swim_member_t *m = swim->timers; m != NULL; m = m->tm_next) {
        uint64_t due = m->state == SWIM_SUSPECT ? swim_suspicion_reminder(m)
                                                : m->state_since_ms + swim->opts.dead_forget_ms;
        if (due < t)
            t = due;
    }
    return t;
}

/* ---------------------------------------------------------------------------------------
 * Receiving
 * ------------------------------------------------------------------------------------- */

static void s_apply_all(swim_t *swim, swim_msg_t *msg, bool from_sync, uint64_t now_ms,
                        const char *peer)
{
    swim_update_t u;
    swim->n_stale = 0;
    while (swim_msg_next_update(msg, &u) == 1)
        s_apply(swim, &u, msg->from_id, from_sync, now_ms);
    if (swim->n_stale > 0 && peer[0] != 0) {
        swim_msg_t fix;
        swim_msg_init(swim, &fix, MSG_GOSSIP);
        swim_send_records(swim, peer, &fix, swim->stale, swim->n_stale);
    }
    swim->n_stale = 0;
}

/* The SHOAL_ECONFIG error for a peer whose cluster settings differ from ours, naming the first
 * setting that differs and both values. The placement version comes first: a node of another
 * placement computes other owners for every range, whatever its page size. */
static int s_settings_error(swim_t *swim, const swim_msg_t *msg, const char *peer)
{
    if (msg->placement != swim->opts.placement)
        return shoal_fail(SHOAL_ECONFIG,
                          "placement version %u here, %u at %s (ranges would be placed by "
                          "different hashes: run one placement version in a cluster)",
                          swim->opts.placement, msg->placement, peer);
    if (msg->page_size != swim->opts.page_size)
        return shoal_fail(SHOAL_ECONFIG, "page size %u here, %u at %s", swim->opts.page_size,
                          msg->page_size, peer);
    return shoal_fail(SHOAL_ECONFIG, "range pages %u here, %u at %s", swim->opts.range_pages,
                      msg->range_pages, peer);
}

/* Cluster settings check of JOIN and SYNC. On a mismatch the sender gets a SYNC "refused"
 * carrying our settings, and is never added. */
static int s_check_settings(swim_t *swim, const swim_msg_t *msg, const char *peer)
{
    if (msg->page_size == swim->opts.page_size && msg->range_pages == swim->opts.range_pages &&
        msg->placement == swim->opts.placement)
        return 0;
    if (msg->type != MSG_SYNC || msg->sync_kind == SWIM_SYNC_PUSH)
        s_send_state(swim, peer, MSG_SYNC, SWIM_SYNC_REFUSED, false);
    return s_settings_error(swim, msg, peer);
}

/* The cluster refused us: stop for good and tell the owner why. */
static int s_refused(swim_t *swim, int rc)
{
    swim->status = rc;
    if (swim->opts.on_event != NULL) {
        swim_event_t ev;
        memset(&ev, 0, sizeof ev);
        ev.kind = SWIM_EVENT_ERROR;
        ev.error = rc;
        ev.message = shoal_last_error();
        ev.version = swim->version;
        swim->opts.on_event(swim->opts.event_ctx, &ev);
    }
    return rc;
}

int swim_receive(swim_t *swim, uint64_t now_ms, const char *from, const uint8_t *bytes, size_t len)
{
    swim_msg_t msg;
    if (swim->status != 0)
        return 0;
    swim->stats.msgs_received++;
    swim->stats.bytes_received += len;
    int rc = swim_msg_decode(&msg, bytes, len);
    if (rc != 0) {
        swim->stats.bad_messages++;
        return rc;
    }
    if (memcmp(msg.from_id, swim->self->id, SWIM_ID_LEN) == 0)
        return 0; /* our own message, e.g. a seed list naming us under another address */
    char peer[SWIM_ADDR_MAX + 1];
    memcpy(peer, msg.from_addr.ptr, msg.from_addr.len);
    peer[msg.from_addr.len] = 0;
    if (peer[0] == 0 && from != NULL)
        snprintf(peer, sizeof peer, "%s", from);
    swim_member_t *sender = swim_table_find(&swim->table, msg.from_id);
    if (sender != NULL)
        sender->last_heard_ms = now_ms;

    switch (msg.type) {
    case MSG_PING:
        s_apply_all(swim, &msg, false, now_ms, peer);
        if (memcmp(msg.target_id, swim->self->id, SWIM_ID_LEN) == 0) {
            swim_msg_t ack;
            swim_msg_init(swim, &ack, MSG_ACK);
            ack.seq = msg.seq;
            swim_send(swim, peer, &ack, NULL);
        }
        return 0;
    case MSG_ACK:
        s_apply_all(swim, &msg, false, now_ms, peer);
        swim_probe_on_ack(swim, &msg, now_ms);
        return 0;
    case MSG_NACK:
        s_apply_all(swim, &msg, false, now_ms, peer);
        swim_probe_on_nack(swim, &msg);
        return 0;
    case MSG_PING_REQ:
        s_apply_all(swim, &msg, false, now_ms, peer);
        swim_probe_on_ping_req(swim, &msg, now_ms);
        return 0;
    case MSG_LEAVE:
    case MSG_GOSSIP:
        s_apply_all(swim, &msg, false, now_ms, peer);
        return 0;
    case MSG_JOIN:
        if ((rc = s_check_settings(swim, &msg, peer)) != 0)
            return rc;
        s_apply_all(swim, &msg, false, now_ms, peer);
        return s_send_state(swim, peer, MSG_SYNC, SWIM_SYNC_REPLY, false);
    case MSG_SYNC:
        if (msg.sync_kind == SWIM_SYNC_REFUSED) {
            rc = s_settings_error(swim, &msg, peer);
            return swim->joined ? rc : s_refused(swim, rc);
        }
        if ((rc = s_check_settings(swim, &msg, peer)) != 0)
            return swim->joined ? rc : s_refused(swim, rc);
        s_apply_all(swim, &msg, true, now_ms, peer);
        if (msg.sync_kind == SWIM_SYNC_REPLY)
            swim->joined = true;
        else
            s_send_state(swim, peer, MSG_SYNC, SWIM_SYNC_REPLY, false);
        return 0;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------------------------------
 * Accessors
 * ------------------------------------------------------------------------------------- */

int swim_status(const swim_t *swim)
{
    return swim->status;
}

bool swim_is_joined(const swim_t *swim)
{
    return swim->joined;
}

uint64_t swim_version(const swim_t *swim)
{
    return swim->version;
}

size_t swim_member_count(const swim_t *swim)
{
    return swim->table.members.len;
}

void swim_member_at(const swim_t *swim, size_t i, swim_member_info_t *info)
{
    s_info(swim, swim->table.members.items[i], info);
}

int swim_member_find(const swim_t *swim, const uint8_t id[SWIM_ID_LEN], swim_member_info_t *info)
{
    swim_member_t *m = swim_table_find(&swim->table, id);
    if (m == NULL)
        return SHOAL_ENOENT;
    s_info(swim, m, info);
    return 0;
}

size_t swim_queue_length(const swim_t *swim)
{
    return swim->dq.count;
}

uint32_t swim_lhm(const swim_t *swim)
{
    return swim->lhm;
}

uint64_t swim_incarnation(const swim_t *swim)
{
    return swim->self->incarnation;
}

void swim_get_stats(const swim_t *swim, swim_stats_t *stats)
{
    *stats = swim->stats;
}
