/*
 * swim_members.c - the member table (dense array + open-addressing hash by id) and the
 * dissemination queue (buckets by transmission count). Both are O(1) per operation so the
 * simulator can run thousands of nodes that each know thousands of members.
 */
#include "swim_members.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_err.h"

swim_str_t swim_str(const char *cstr)
{
    swim_str_t s = {cstr ? cstr : "", cstr ? strlen(cstr) : 0};
    return s;
}

/* Ids are random, but a peer chooses its own: mix all 16 bytes so a chosen id cannot pile
 * up in one slot cheaply (it still costs only that peer's own lookups). */
static size_t s_hash(const uint8_t id[SWIM_ID_LEN])
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    uint64_t z = a ^ (b * 0x9e3779b97f4a7c15ULL); /* then the splitmix64 finaliser */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (size_t)(z ^ (z >> 31));
}

int swim_table_init(swim_table_t *table)
{
    memset(table, 0, sizeof *table);
    table->slot_cap = 16;
    table->slots = calloc(table->slot_cap, sizeof *table->slots);
    return table->slots ? 0 : SHOAL_ENOMEM;
}

static void s_member_free(swim_member_t *member)
{
    free(member->suspicion);
    free(member->strings);
    free(member);
}

void swim_table_fini(swim_table_t *table)
{
    for (size_t i = 0; i < table->members.len; i++)
        s_member_free(table->members.items[i]);
    vec_fini(&table->members);
    free(table->slots);
    memset(table, 0, sizeof *table);
}

swim_member_t *swim_table_find(const swim_table_t *table, const uint8_t id[SWIM_ID_LEN])
{
    size_t mask = table->slot_cap - 1;
    for (size_t i = s_hash(id) & mask;; i = (i + 1) & mask) {
        swim_member_t *m = table->slots[i];
        if (m == NULL)
            return NULL;
        if (memcmp(m->id, id, SWIM_ID_LEN) == 0)
            return m;
    }
}

static void s_slot_insert(swim_member_t **slots, size_t slot_cap, swim_member_t *member)
{
    size_t mask = slot_cap - 1;
    size_t i = s_hash(member->id) & mask;
    while (slots[i] != NULL)
        i = (i + 1) & mask;
    slots[i] = member;
}

/* Doubles the hash when it would pass half full. */
static int s_slots_grow(swim_table_t *table)
{
    if ((table->members.len + 1) * 2 <= table->slot_cap)
        return 0;
    size_t cap = table->slot_cap * 2;
    swim_member_t **slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return SHOAL_ENOMEM;
    for (size_t i = 0; i < table->members.len; i++)
        s_slot_insert(slots, cap, table->members.items[i]);
    free(table->slots);
    table->slots = slots;
    table->slot_cap = cap;
    return 0;
}

/* Appends `str` and its NUL at *p, points *slot at it and moves *p past it. */
static void s_put(char **p, char **slot, swim_str_t str)
{
    *slot = *p;
    if (str.len)
        memcpy(*p, str.ptr, str.len);
    (*p)[str.len] = 0;
    *p += str.len + 1;
}

int swim_member_set_strings(swim_member_t *member, const swim_update_t *u)
{
    char *strings = malloc(u->name.len + u->gossip_ep.len + u->data_ep.len + u->host_id.len +
                           u->local_socket.len + 5);
    if (strings == NULL)
        return SHOAL_ENOMEM;
    char *p = strings;
    s_put(&p, &member->name, u->name);
    s_put(&p, &member->gossip_ep, u->gossip_ep);
    s_put(&p, &member->data_ep, u->data_ep);
    s_put(&p, &member->host_id, u->host_id);
    s_put(&p, &member->local_socket, u->local_socket);
    free(member->strings);
    member->strings = strings;
    return 0;
}

static bool s_str_eq(const char *cstr, swim_str_t s)
{
    return strlen(cstr) == s.len && (s.len == 0 || memcmp(cstr, s.ptr, s.len) == 0);
}

bool swim_member_strings_equal(const swim_member_t *member, const swim_update_t *u)
{
    return s_str_eq(member->name, u->name) && s_str_eq(member->gossip_ep, u->gossip_ep) &&
           s_str_eq(member->data_ep, u->data_ep) && s_str_eq(member->host_id, u->host_id) &&
           s_str_eq(member->local_socket, u->local_socket);
}

swim_member_t *swim_table_add(swim_table_t *table, const swim_update_t *u)
{
    const uint8_t *id = u->id;
    assert(swim_table_find(table, id) == NULL);
    if (s_slots_grow(table) != 0)
        return NULL;
    if (vec_reserve(&table->members, 1) < 0)
        return NULL;
    swim_member_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    memcpy(m->id, id, SWIM_ID_LEN);
    if (swim_member_set_strings(m, u) != 0) {
        free(m);
        return NULL;
    }
    m->dq_bucket = -1;
    m->index = table->members.len;
    table->members.items[table->members.len++] = m;
    s_slot_insert(table->slots, table->slot_cap, m);
    return m;
}

/* Deletes a slot with backward-shift (no tombstones): later members of the same run move
 * up into the hole when their home slot allows it. */
static void s_slot_delete(swim_table_t *table, const swim_member_t *member)
{
    size_t mask = table->slot_cap - 1;
    size_t i = s_hash(member->id) & mask;
    while (table->slots[i] != member)
        i = (i + 1) & mask;
    size_t hole = i;
    for (size_t j = (hole + 1) & mask; table->slots[j] != NULL; j = (j + 1) & mask) {
        size_t home = s_hash(table->slots[j]->id) & mask;
        /* Move j into the hole if its home is not in (hole, j] cyclically. */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            table->slots[hole] = table->slots[j];
            hole = j;
        }
    }
    table->slots[hole] = NULL;
}

void swim_table_remove(swim_table_t *table, swim_member_t *member)
{
    assert(member->dq_bucket < 0 && !member->in_timers);
    s_slot_delete(table, member);
    size_t last = table->members.len - 1;
    table->members.items[member->index] = table->members.items[last];
    table->members.items[member->index]->index = member->index;
    table->members.len--;
    s_member_free(member);
}

/* ---------------------------------------------------------------------------------------
 * Dissemination queue
 * ------------------------------------------------------------------------------------- */

static void s_dq_link(swim_dissem_t *dq, swim_member_t *m, int32_t bucket)
{
    m->dq_bucket = bucket;
    m->dq_next = NULL;
    m->dq_prev = dq->tail[bucket];
    if (dq->tail[bucket])
        dq->tail[bucket]->dq_next = m;
    else
        dq->head[bucket] = m;
    dq->tail[bucket] = m;
    dq->count++;
}

void swim_dissem_remove(swim_dissem_t *dq, swim_member_t *m)
{
    if (m->dq_bucket < 0)
        return;
    int32_t b = m->dq_bucket;
    if (m->dq_prev)
        m->dq_prev->dq_next = m->dq_next;
    else
        dq->head[b] = m->dq_next;
    if (m->dq_next)
        m->dq_next->dq_prev = m->dq_prev;
    else
        dq->tail[b] = m->dq_prev;
    m->dq_prev = m->dq_next = NULL;
    m->dq_bucket = -1;
    dq->count--;
}

void swim_dissem_push(swim_dissem_t *dq, swim_member_t *m)
{
    swim_dissem_remove(dq, m);
    s_dq_link(dq, m, 0);
}

size_t swim_member_wire_size(const swim_member_t *m)
{
    /* As swim_update_size: array, id, 5 string headers, strings, 3 uints, suspecter. */
    return 1 + 18 + 10 + strlen(m->name) + strlen(m->gossip_ep) + strlen(m->data_ep) +
           strlen(m->host_id) + strlen(m->local_socket) + 27 + 18;
}

size_t swim_dissem_take(swim_dissem_t *dq, size_t max, size_t budget, uint32_t limit,
                        swim_member_t *first, swim_member_t **out)
{
    size_t n = 0, bytes = 0;
    if (limit > SWIM_DQ_BUCKETS)
        limit = SWIM_DQ_BUCKETS;
    if (first != NULL && max > 0) {
        out[n++] = first; /* sent even when no longer queued */
        bytes += swim_member_wire_size(first);
    }
    for (uint32_t b = 0; b < SWIM_DQ_BUCKETS && n < max && bytes < budget; b++)
        for (swim_member_t *m = dq->head[b]; m != NULL && n < max && bytes < budget; m = m->dq_next)
            if (m != first) {
                out[n++] = m;
                bytes += swim_member_wire_size(m);
            }
    for (size_t i = 0; i < n; i++) {
        if (out[i]->dq_bucket < 0)
            continue;
        int32_t next = out[i]->dq_bucket + 1;
        swim_dissem_remove(dq, out[i]);
        if ((uint32_t)next < limit)
            s_dq_link(dq, out[i], next);
    }
    return n;
}
