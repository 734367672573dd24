/*
 * health.c - the down-list (nodes that timed out or dropped their link, skipped for a while)
 * and the view's stale flag, shared by every session of a process behind one mutex.
 */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "health.h"
#include "vec.h"

/* A node this process recently found dead: skipped until `until_ms`. */
typedef struct client_down {
    char *endpoint;   /* data endpoint; owned */
    int64_t until_ms; /* monotonic ms; expired = free slot */
} client_down_t;

/* Invariant: view_version and down_until_max are only written with mutex held; down_until_max
 * is >= every down.items[i].until_ms. */
struct client_health {
    pthread_mutex_t mutex;   /* guards every field below (the atomics are also read without) */
    VEC(client_down_t) down; /* nodes found dead recently */
    bool view_stale;         /* a reply carried a newer view_version, or a node failed */
    /* Lock-free shortcuts for the per-request checks (read without the mutex): */
    _Atomic uint64_t view_version;  /* version of the installed view (0 = none) */
    _Atomic int64_t down_until_max; /* no node is marked down after this (monotonic ms) */
};

/* Debug-build check of the invariants above; the caller holds the mutex. */
static void s_health_sanity(client_health_t *health)
{
#ifndef NDEBUG
    int64_t until_max = atomic_load(&health->down_until_max);
    for (size_t i = 0; i < health->down.len; i++) {
        assert(health->down.items[i].endpoint != NULL);
        assert(health->down.items[i].until_ms <= until_max);
    }
#else
    (void)health;
#endif
}

client_health_t *client_health_new(void)
{
    client_health_t *health = calloc(1, sizeof *health);
    if (!health)
        return NULL;
    pthread_mutex_init(&health->mutex, NULL);
    atomic_init(&health->view_version, 0);
    atomic_init(&health->down_until_max, 0);
    return health;
}

void client_health_destroy(client_health_t **health_p)
{
    if (!health_p || !*health_p)
        return;
    client_health_t *health = *health_p;
    *health_p = NULL;
    for (size_t i = 0; i < health->down.len; i++)
        free(health->down.items[i].endpoint);
    vec_fini(&health->down);
    pthread_mutex_destroy(&health->mutex);
    free(health);
}

void client_health_mark_down(client_health_t *health, const char *endpoint)
{
    int64_t until = clock_mono_ms() + CLIENT_DOWN_MS;
    pthread_mutex_lock(&health->mutex);
    if (atomic_load(&health->down_until_max) < until)
        atomic_store(&health->down_until_max, until);
    size_t free_slot = SIZE_MAX;
    for (size_t i = 0; i < health->down.len; i++) {
        if (strcmp(health->down.items[i].endpoint, endpoint) == 0) {
            health->down.items[i].until_ms = until;
            s_health_sanity(health);
            pthread_mutex_unlock(&health->mutex);
            return;
        }
        if (health->down.items[i].until_ms < clock_mono_ms() && free_slot == SIZE_MAX)
            free_slot = i;
    }
    char *copy = strdup(endpoint);
    if (copy && free_slot != SIZE_MAX) {
        free(health->down.items[free_slot].endpoint);
        health->down.items[free_slot] = (client_down_t){.endpoint = copy, .until_ms = until};
    } else if (copy) {
        client_down_t entry = {.endpoint = copy, .until_ms = until};
        if (vec_push(&health->down, entry) < 0)
            free(copy); /* out of memory: the node is just not skipped */
    }
    s_health_sanity(health);
    pthread_mutex_unlock(&health->mutex);
}

bool client_health_is_down(client_health_t *health, const char *endpoint)
{
    int64_t now = clock_mono_ms();
    if (atomic_load(&health->down_until_max) <= now) /* nobody is down: no lock */
        return false;
    bool down = false;
    pthread_mutex_lock(&health->mutex);
    for (size_t i = 0; i < health->down.len && !down; i++)
        down = health->down.items[i].until_ms > now &&
               strcmp(health->down.items[i].endpoint, endpoint) == 0;
    pthread_mutex_unlock(&health->mutex);
    return down;
}

void client_health_seen_version(client_health_t *health, uint64_t seen_version)
{
    /* Every reply calls this: the common case (not newer) takes no lock. Without a view the
     * version is 0, so any version a node sends marks it stale, as before. */
    if (seen_version <= atomic_load(&health->view_version))
        return;
    pthread_mutex_lock(&health->mutex);
    if (seen_version > atomic_load(&health->view_version))
        health->view_stale = true;
    pthread_mutex_unlock(&health->mutex);
}

void client_health_force_stale(client_health_t *health)
{
    pthread_mutex_lock(&health->mutex);
    health->view_stale = true;
    pthread_mutex_unlock(&health->mutex);
}

bool client_health_stale(client_health_t *health)
{
    pthread_mutex_lock(&health->mutex);
    bool stale = health->view_stale;
    pthread_mutex_unlock(&health->mutex);
    return stale;
}

void client_health_view_installed(client_health_t *health, uint64_t version)
{
    pthread_mutex_lock(&health->mutex);
    atomic_store(&health->view_version, version);
    health->view_stale = false;
    pthread_mutex_unlock(&health->mutex);
}
