/*
 * ctx.h - the call context, header only: what one public call holds while it runs (made by
 * client_ctx_begin in client.c), passed to the metadata engine and the API files. Pointers
 * only, every one borrowed for the call.
 */
#ifndef SHOAL_CLIENT_CTX_H
#define SHOAL_CLIENT_CTX_H

#include "counters.h"
#include "session.h"
#include "view.h"

#define CLIENT_STALE_RETRIES 2 /* re-stat and re-read (or re-load) this often on ESTALE */

struct ufs;
struct client_stat_cache;
struct client_local;

/* This process's state, a session of sockets and a referenced view (NULL when no node
 * answered VIEW: the call then falls back to the UFS). */
typedef struct client_ctx {
    client_counters_t *counters;     /* the client's counters */
    struct ufs *ufs;                 /* the client's UFS connectors; NULL without the fallback */
    struct client_stat_cache *stats; /* this process's stat cache */
    client_view_cache_t *views;      /* this process's current view */
    client_session_t *session;       /* sockets, taken from the pool */
    client_view_t *view;             /* referenced view, or NULL */
    struct client_local *local;      /* this process's local nodes (local.h); NULL when off */
} client_ctx_t;

#endif
