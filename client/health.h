/*
 * health.h - what the request engine learns about the cluster while it talks to it (health.c):
 * the nodes found dead recently (the down-list) and the stale flag of the view. A leaf: the
 * session writes it, the view cache reads and clears the flag, neither knows the other.
 * One per process (it lives in the process state, abandoned over fork() with it).
 */
#ifndef SHOAL_CLIENT_HEALTH_H
#define SHOAL_CLIENT_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#define CLIENT_DOWN_MS 2000 /* a node found dead is skipped this long */

/* Thread-safe: every function may be called by any thread at once (one internal mutex, held
 * only for bookkeeping; the per-request checks take no lock in the common case). */
typedef struct client_health client_health_t;

/* A new health record: nobody down, the view not stale, no view version known. Caller owns
 * it (client_health_destroy); NULL on out of memory. */
client_health_t *client_health_new(void);
/* Frees it and sets *health_p to NULL; safe on NULL. Only in the process that made it. */
void client_health_destroy(client_health_t **health_p);

/* Records that the node at `endpoint` (copied) stopped answering: skipped for CLIENT_DOWN_MS.
 * Out of memory: the node is just not skipped. */
void client_health_mark_down(client_health_t *health, const char *endpoint);
/* Whether the node at `endpoint` is currently skipped. */
bool client_health_is_down(client_health_t *health, const char *endpoint);

/* A reply carried `seen_version`: marks the view stale when that is newer than the installed
 * view's version (no lock when it is not). */
void client_health_seen_version(client_health_t *health, uint64_t seen_version);
/* A node stopped answering: the view is to be fetched again. */
void client_health_force_stale(client_health_t *health);
/* Whether the view was marked stale since the last client_health_view_installed. */
bool client_health_stale(client_health_t *health);
/* A fresh view of `version` was installed: remembers the version, clears the stale flag. */
void client_health_view_installed(client_health_t *health, uint64_t version);

#endif
