/*
 * swim_probe.c - the failure detector: randomised round-robin probing, indirect probes
 * through k members (with Lifeguard's NACKs), suspicion with Lifeguard's dynamic timeout,
 * and the local health multiplier (LHM) that slows a node that is itself struggling.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "swim_int.h"

/* ---------------------------------------------------------------------------------------
 * Local health (Lifeguard section 4.3): a counter in [0, awareness_max_mult - 1], raised by
 * failed probes with missing NACKs and by having to refute our own suspicion, lowered by
 * successful direct probes. Probe interval and timeout are multiplied by LHM + 1, so a node
 * starved of CPU probes less and waits longer before accusing others.
 * ------------------------------------------------------------------------------------- */

void swim_lhm_apply(swim_t *swim, int delta)
{
    int max = (int)swim->opts.awareness_max_mult - 1;
    int v = (int)swim->lhm + delta;
    if (v > max)
        v = max;
    if (v < 0)
        v = 0;
    swim->lhm = (uint32_t)v;
}

/* ---------------------------------------------------------------------------------------
 * Suspicion (Lifeguard section 4.2). The timeout starts at max = suspicion_max_mult x min and
 * shrinks toward min as independent members confirm the suspicion:
 *     timeout = max(min, max - (max - min) * log(C + 1) / log(K + 1))
 * min = max(suspicion_min_ms, suspicion_mult x max(1, log10 N) x probe_interval): the time a
 * refutation needs to travel O(log N) gossip hops back. K = suspicion_confirmations, 0 when fewer
 * than K + 2 members could confirm.
 * ------------------------------------------------------------------------------------- */

uint64_t swim_suspicion_deadline(const swim_member_t *member)
{
    const swim_suspicion_t *s = member->suspicion;
    double timeout = (double)s->min_ms;
    if (s->k > 0) {
        double frac = log((double)s->n_confirmers + 1.0) / log((double)s->k + 1.0);
        timeout = (double)s->max_ms - (double)(s->max_ms - s->min_ms) * frac;
        if (timeout < (double)s->min_ms)
            timeout = (double)s->min_ms;
    }
    return s->start_ms + (uint64_t)timeout;
}

uint64_t swim_suspicion_reminder(const swim_member_t *member)
{
    const swim_suspicion_t *s = member->suspicion;
    uint64_t deadline = swim_suspicion_deadline(member);
    if (s->reminded || s->n_confirmers > 0)
        return deadline;
    return s->start_ms + (deadline - s->start_ms) / 2;
}

bool swim_suspect(swim_t *swim, swim_member_t *member, const uint8_t suspecter[16], uint64_t now_ms)
{
    swim_suspicion_t *s = member->suspicion;
    if (member->state == SWIM_SUSPECT && s != NULL) {
        if (memcmp(s->suspecter, suspecter, 16) == 0 || s->n_confirmers >= s->k)
            return false;
        for (uint32_t i = 0; i < s->n_confirmers; i++)
            if (memcmp(s->confirmers[i], suspecter, 16) == 0)
                return false;
        memcpy(s->confirmers[s->n_confirmers++], suspecter, 16);
        memcpy(s->suspecter, suspecter, 16); /* re-gossiped as this confirmer's */
        return true;
    }
    if (member->state != SWIM_ALIVE)
        return false;
    swim_set_state(swim, member, SWIM_SUSPECT, now_ms);
    s = member->suspicion;
    if (s == NULL)
        return true; /* out of memory: swim_set_state fell back to dead-on-next-tick */
    double n = (double)swim->n_live;
    double scale = n > 10 ? log10(n) : 1.0;
    s->start_ms = now_ms;
    s->min_ms =
        (uint64_t)(swim->opts.suspicion_mult * scale * (double)swim->opts.probe_interval_ms);
    if (s->min_ms < swim->opts.suspicion_min_ms)
        s->min_ms = swim->opts.suspicion_min_ms;
    s->max_ms = s->min_ms * swim->opts.suspicion_max_mult;
    s->k = swim->opts.suspicion_confirmations;
    if (s->k > SWIM_CONFIRM_MAX)
        s->k = SWIM_CONFIRM_MAX;
    if (swim->n_live < (size_t)s->k + 2)
        s->k = 0;
    memcpy(s->suspecter, suspecter, 16);
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Probe order: every member once per round, in a fresh random order each round; a new member
 * is put at a random place in the rest of the current round (as memberlist does).
 * ------------------------------------------------------------------------------------- */

void swim_probe_add_member(swim_t *swim, swim_member_t *member)
{
    if (vec_reserve(&swim->probe_order, 1) < 0)
        return; /* probed from the next round on, after the rebuild */
    size_t rest = swim->probe_order.len - swim->probe_pos + 1;
    size_t at = swim->probe_pos + (size_t)(rng_next(&swim->rng) % rest);
    swim->probe_order.items[swim->probe_order.len++] = swim->probe_order.items[at];
    swim->probe_order.items[at] = member;
}

void swim_probe_remove_member(swim_t *swim, swim_member_t *member)
{
    for (size_t i = 0; i < swim->probe_order.len; i++) {
        if (swim->probe_order.items[i] != member)
            continue;
        vec_remove(&swim->probe_order, i);
        if (i < swim->probe_pos)
            swim->probe_pos--;
        return;
    }
}

/* Refills probe_order with every member but self and shuffles it (Fisher-Yates). O(N) once
 * per N probes. */
static void s_probe_rebuild(swim_t *swim)
{
    vec_clear(&swim->probe_order);
    swim->probe_pos = 0;
    if (vec_reserve(&swim->probe_order, swim->table.members.len) < 0)
        return;
    for (size_t i = 0; i < swim->table.members.len; i++)
        if (swim->table.members.items[i] != swim->self)
            swim->probe_order.items[swim->probe_order.len++] = swim->table.members.items[i];
    for (size_t i = swim->probe_order.len; i > 1; i--) {
        size_t j = (size_t)(rng_next(&swim->rng) % i);
        swim_member_t *t = swim->probe_order.items[i - 1];
        swim->probe_order.items[i - 1] = swim->probe_order.items[j];
        swim->probe_order.items[j] = t;
    }
}

static swim_member_t *s_next_target(swim_t *swim)
{
    for (size_t tries = 0; tries <= swim->table.members.len * 2 + 1; tries++) {
        if (swim->probe_pos >= swim->probe_order.len) {
            s_probe_rebuild(swim);
            if (swim->probe_order.len == 0)
                return NULL;
        }
        swim_member_t *m = swim->probe_order.items[swim->probe_pos++];
        if (m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT)
            return m;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * The probe cycle: PING; no ACK within probe_timeout -> PING_REQ through k alive members;
 * no ACK (direct or relayed) by the end of the probe interval -> suspect the target.
 * ------------------------------------------------------------------------------------- */

static void s_send_indirect(swim_t *swim, swim_member_t *target)
{
    swim_member_t *chosen[16];
    uint32_t k = swim->opts.indirect_checks < 16 ? swim->opts.indirect_checks : 16;
    uint32_t n = 0;
    size_t count = swim->table.members.len;
    /* Random sampling with a bounded number of tries; small tables fall back to a scan. */
    for (size_t tries = 0; n < k && tries < (size_t)k * 8 + count; tries++) {
        swim_member_t *m =
            swim->table.members.items[tries < (size_t)k * 8 ? rng_next(&swim->rng) % count
                                                            : tries - (size_t)k * 8];
        if (m == swim->self || m == target || m->state != SWIM_ALIVE)
            continue;
        bool dup = false;
        for (uint32_t i = 0; i < n; i++)
            dup = dup || chosen[i] == m;
        if (!dup)
            chosen[n++] = m;
    }
    swim_msg_t msg;
    swim_msg_init(swim, &msg, MSG_PING_REQ);
    msg.seq = swim->probe.seq;
    memcpy(msg.target_id, target->id, 16);
    msg.target_addr = swim_str(target->gossip_ep);
    for (uint32_t i = 0; i < n; i++)
        swim_send(swim, chosen[i]->gossip_ep, &msg, NULL);
    swim->probe.expected_nacks = n;
}

static void s_probe_failed(swim_t *swim, uint64_t now_ms)
{
    swim_probe_t *p = &swim->probe;
    swim_member_t *m = swim_table_find(&swim->table, p->target);
    if (m == NULL || (m->state != SWIM_ALIVE && m->state != SWIM_SUSPECT))
        return;
    swim->stats.probe_failures++;
    /* Lifeguard: missing NACKs mean our own links are bad, not just the target's. */
    if (p->expected_nacks > 0)
        swim_lhm_apply(swim, (int)(p->expected_nacks - p->nacks));
    else
        swim_lhm_apply(swim, 1);
    if (swim_suspect(swim, m, swim->self->id, now_ms))
        swim_queue(swim, m);
}

void swim_probe_tick(swim_t *swim, uint64_t now_ms)
{
    swim_probe_t *p = &swim->probe;
    if (p->active) {
        swim_member_t *target = swim_table_find(&swim->table, p->target);
        if (target == NULL) {
            p->active = false;
        } else {
            if (!p->indirect_sent && now_ms >= p->timeout_at) {
                p->indirect_sent = true;
                s_send_indirect(swim, target);
            }
            if (now_ms < p->end_at)
                return;
            p->active = false;
            s_probe_failed(swim, now_ms);
        }
    }
    if (swim->leaving || now_ms < swim->next_probe_ms)
        return;
    uint64_t scale = swim->lhm + 1;
    swim->next_probe_ms = now_ms + swim->opts.probe_interval_ms * scale;
    swim_member_t *target = s_next_target(swim);
    if (target == NULL)
        return;
    memset(p, 0, sizeof *p);
    p->active = true;
    memcpy(p->target, target->id, 16);
    p->seq = ++swim->seq;
    p->timeout_at = now_ms + swim->opts.probe_timeout_ms * scale;
    p->end_at = now_ms + swim->opts.probe_interval_ms * scale;
    swim->stats.probes++;
    swim_msg_t msg;
    swim_msg_init(swim, &msg, MSG_PING);
    msg.seq = p->seq;
    memcpy(msg.target_id, target->id, 16);
    /* Buddy system (Lifeguard 4.4): a suspect hears of its suspicion in the probe itself. */
    swim_send(swim, target->gossip_ep, &msg, target->state == SWIM_SUSPECT ? target : NULL);
}

uint64_t swim_probe_deadline(const swim_t *swim)
{
    uint64_t t = UINT64_MAX;
    if (swim->probe.active)
        t = swim->probe.indirect_sent ? swim->probe.end_at : swim->probe.timeout_at;
    else if (!swim->leaving)
        t = swim->next_probe_ms;
    for (size_t i = 0; i < SWIM_RELAY_MAX; i++)
        if (swim->relays[i].used && swim->relays[i].deadline_ms < t)
            t = swim->relays[i].deadline_ms;
    return t;
}

/* An ACK ends our probe (seq matches) or completes a relay (we forward it). */
void swim_probe_on_ack(swim_t *swim, const swim_msg_t *msg, uint64_t now_ms)
{
    (void)now_ms;
    swim_probe_t *p = &swim->probe;
    if (p->active && msg->seq == p->seq) {
        p->active = false;
        if (memcmp(msg->from_id, p->target, 16) == 0)
            swim_lhm_apply(swim, -1);
        return;
    }
    for (size_t i = 0; i < SWIM_RELAY_MAX; i++) {
        swim_relay_t *r = &swim->relays[i];
        if (!r->used || r->my_seq != msg->seq)
            continue;
        swim_msg_t ack;
        swim_msg_init(swim, &ack, MSG_ACK);
        ack.seq = r->orig_seq;
        r->used = false;
        swim_send(swim, r->requester, &ack, NULL);
        return;
    }
}

void swim_probe_on_nack(swim_t *swim, const swim_msg_t *msg)
{
    if (swim->probe.active && msg->seq == swim->probe.seq)
        swim->probe.nacks++;
}

/* PING_REQ: ping the target for the requester; relays time out in swim_probe_relays. */
void swim_probe_on_ping_req(swim_t *swim, const swim_msg_t *msg, uint64_t now_ms)
{
    swim_relay_t *slot = NULL;
    for (size_t i = 0; i < SWIM_RELAY_MAX && slot == NULL; i++)
        if (!swim->relays[i].used)
            slot = &swim->relays[i];
    if (slot == NULL || msg->from_addr.len > SWIM_ADDR_MAX || msg->target_addr.len == 0)
        return; /* overloaded: the requester counts a missing NACK, as it should */
    char target[SWIM_ADDR_MAX + 1];
    memcpy(target, msg->target_addr.ptr, msg->target_addr.len);
    target[msg->target_addr.len] = 0;
    slot->used = true;
    slot->my_seq = ++swim->seq;
    slot->orig_seq = msg->seq;
    /* NACK a little before the requester's probe ends so that it arrives in time. */
    slot->deadline_ms = now_ms + swim->opts.probe_timeout_ms;
    memcpy(slot->requester, msg->from_addr.ptr, msg->from_addr.len);
    slot->requester[msg->from_addr.len] = 0;
    swim_msg_t ping;
    swim_msg_init(swim, &ping, MSG_PING);
    ping.seq = slot->my_seq;
    memcpy(ping.target_id, msg->target_id, 16);
    swim_send(swim, target, &ping, NULL);
}

/* Relays whose target stayed silent: NACK the requester so it knows we tried. */
void swim_probe_relays(swim_t *swim, uint64_t now_ms)
{
    for (size_t i = 0; i < SWIM_RELAY_MAX; i++) {
        swim_relay_t *r = &swim->relays[i];
        if (!r->used || now_ms < r->deadline_ms)
            continue;
        r->used = false;
        swim_msg_t nack;
        swim_msg_init(swim, &nack, MSG_NACK);
        nack.seq = r->orig_seq;
        swim_send(swim, r->requester, &nack, NULL);
    }
}
