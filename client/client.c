/*
 * client.c - the composition root: the client object (options and seeds), the per-process
 * state it builds from the modules below (ZeroMQ context, session pool, health record, view
 * cache, stat cache) with its fork detection, and the call context every public call holds.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "client.h"
#include "fallback.h"
#include "health.h"
#include "local.h"
#include "meta.h"
#include "session.h"
#include "vec.h"
#include "view.h"

#define CLIENT_TIMEOUT_MS_DEFAULT  10000 /* options.timeout_ms when 0 */
#define CLIENT_META_TTL_MS_DEFAULT 1000  /* options.metadata_ttl_ms when 0 */
#define CLIENT_MAX_SOCKETS         8192  /* ZMQ_MAX_SOCKETS per process (3 per node per session) */
#define CLIENT_MALLOC_PRIME_BYTES  (16u << 20) /* glibc mmap threshold s_malloc_prime sets */

/* Everything that belongs to one process: a forked child never uses its parent's copy (whose
 * mutexes may be held by a thread that does not exist in the child, and whose ZeroMQ context
 * must not be touched); it abandons it and builds its own on first use. Each part is
 * thread-safe on its own; the pointers are fixed once built.
 * Invariant: every part is non-NULL; pool, views and stats belong to zmq_context and health. */
struct client_proc {
    pid_t pid;                  /* process that built this state */
    void *zmq_context;          /* ZeroMQ context of this process */
    client_health_t *health;    /* nodes found dead recently, the view's stale flag */
    client_pool_t *pool;        /* sessions (sockets) of this process */
    client_view_cache_t *views; /* current view */
    client_stat_cache_t *stats; /* stat cache */
    client_local_t *local;      /* local nodes (short-circuit reads); NULL when off */
};

/* Frees the seed list built by s_seeds_parse. */
static void s_seeds_free(char **seeds, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(seeds[i]);
    free(seeds);
}

/* Parses "host:port[,host:port...]" (entries may already be "tcp://host:port"; spaces around
 * entries are ignored) into "tcp://host:port" strings. Fails with SHOAL_EINVAL on an empty
 * list or an entry without a port. */
static int s_seeds_parse(const char *text, char ***seeds_out, size_t *count_out)
{
    if (!text || !*text)
        return shoal_fail(SHOAL_EINVAL, "no seeds: give host:port of at least one node");
    char *copy = strdup(text);
    if (!copy)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    VEC(char *) seeds;
    vec_init(&seeds);
    int rc = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ')
            item++;
        size_t len = strlen(item);
        while (len > 0 && item[len - 1] == ' ')
            item[--len] = '\0';
        if (len == 0)
            continue;
        const char *hostport = strncmp(item, "tcp://", 6) == 0 ? item + 6 : item;
        const char *colon = strrchr(hostport, ':');
        if (!colon || colon == hostport || colon[1] == '\0' ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
            rc = shoal_fail(SHOAL_EINVAL, "bad seed '%s': expected host:port", item);
            break;
        }
        char *endpoint = malloc(strlen(hostport) + 7);
        if (endpoint == NULL || vec_push(&seeds, endpoint) < 0) {
            free(endpoint);
            rc = shoal_fail(SHOAL_ENOMEM, "out of memory");
            break;
        }
        sprintf(endpoint, "tcp://%s", hostport);
    }
    free(copy);
    if (rc == 0 && seeds.len == 0)
        rc = shoal_fail(SHOAL_EINVAL, "no seeds: give host:port of at least one node");
    if (rc != 0) {
        s_seeds_free(seeds.items, seeds.len);
        return rc;
    }
    *seeds_out = seeds.items; /* the caller frees it with s_seeds_free */
    *count_out = seeds.len;
    return 0;
}

shoal_client_t *shoal_client_new(const shoal_client_options_t *options)
{
    shoal_clear_error();
    if (!options) {
        shoal_fail(SHOAL_EINVAL, "shoal_client_new: options are required (seeds)");
        return NULL;
    }
    if (options->cluster_key && options->cluster_key[0]) {
        shoal_fail(SHOAL_ENOTSUP, "cluster keys (CurveZMQ) are not supported by this client yet");
        return NULL;
    }
    if (options->timeout_ms < 0) {
        shoal_fail(SHOAL_EINVAL, "timeout_ms must be >= 0");
        return NULL;
    }
    shoal_client_t *client = calloc(1, sizeof *client);
    if (!client) {
        shoal_fail(SHOAL_ENOMEM, "out of memory");
        return NULL;
    }
    if (s_seeds_parse(options->seeds, &client->seeds, &client->seed_count) != 0) {
        free(client);
        return NULL;
    }
    client->timeout_ms = options->timeout_ms ? options->timeout_ms : CLIENT_TIMEOUT_MS_DEFAULT;
    client->metadata_ttl_ms =
        options->metadata_ttl_ms ? options->metadata_ttl_ms : CLIENT_META_TTL_MS_DEFAULT;
    client->no_ufs_fallback = options->no_ufs_fallback;
    if (!client->no_ufs_fallback) {
        client->ufs = client_ufs_new();
        if (!client->ufs) {
            s_seeds_free(client->seeds, client->seed_count);
            free(client);
            shoal_fail(SHOAL_ENOMEM, "cannot set up the under-storage connectors");
            return NULL;
        }
    }
    atomic_init(&client->proc, NULL);
    return client;
}

/* Raises glibc's dynamic malloc thresholds once per process, the way glibc itself does after
 * a program frees a large block: malloc of more than the current mmap threshold is served by
 * mmap, and its free lifts the mmap threshold to that size and the trim threshold to twice it.
 *
 * Why: ZeroMQ allocates every received frame of more than a few bytes with malloc (a 1 MiB
 * page frame is one 1 MiB block, received straight into by the kernel), and we free it right
 * after copying it out. With glibc's starting point (first 1 MiB block freed: mmap threshold
 * 1 MiB, trim threshold 2 MiB), a READ reply of several pages, or several replies in flight,
 * free more than 2 MiB at the top of the heap at once, so glibc gives it back to the kernel
 * and the next reply faults in and zeroes fresh pages: ~250 page faults per MB received, about
 * a third of a reader's CPU. With the thresholds at CLIENT_MALLOC_PRIME_BYTES and twice that,
 * replies reuse the same heap memory. A program that set M_MMAP_THRESHOLD or
 * M_TRIM_THRESHOLD itself (mallopt or GLIBC_TUNABLES) turned the dynamic thresholds off, and
 * this changes nothing for it. Untouched memory: the block is mapped and unmapped, never
 * written beyond its header. */
static void s_malloc_prime(void)
{
#if defined(__GLIBC__)
    void *volatile block = malloc(CLIENT_MALLOC_PRIME_BYTES); /* volatile: keep the pair */
    free(block);
#endif
}

/* Frees the state of the calling process (also a partly built one): closes every session's
 * sockets and terminates the context. Only ever called by the process that built it. */
static void s_proc_destroy(client_proc_t *proc)
{
    client_local_destroy(&proc->local);
    client_pool_destroy(&proc->pool); /* every socket closed before the context goes */
    zmq_ctx_term(proc->zmq_context);
    client_view_cache_destroy(&proc->views);
    client_stat_cache_destroy(&proc->stats);
    client_health_destroy(&proc->health);
    free(proc);
}

/* Builds the state of the calling process: a fresh ZeroMQ context and empty caches. */
static client_proc_t *s_proc_new(shoal_client_t *client, pid_t pid)
{
    client_proc_t *proc = calloc(1, sizeof *proc);
    if (!proc)
        return NULL;
    proc->pid = pid;
    s_malloc_prime();
    proc->zmq_context = zmq_ctx_new();
    if (!proc->zmq_context) {
        free(proc);
        return NULL;
    }
    /* zmq_ctx_term must never wait: every socket is LINGER 0 as well. */
    zmq_ctx_set(proc->zmq_context, ZMQ_BLOCKY, 0);
    /* I/O threads from the cores (one per 8, 1..4): they receive every reply's bytes, and a
     * process with many reading threads (a Ray or PyTorch worker) outruns one. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    zmq_ctx_set(proc->zmq_context, ZMQ_IO_THREADS,
                cores < 16   ? 1
                : cores > 32 ? 4
                             : (int)(cores / 8));
    /* Each node connection of each session takes three sockets (DEALER, its monitor, the PAIR
     * reading it): raise the default of 1023 so that many calling threads still fit. */
    int socket_limit = zmq_ctx_get(proc->zmq_context, ZMQ_SOCKET_LIMIT);
    zmq_ctx_set(proc->zmq_context, ZMQ_MAX_SOCKETS,
                socket_limit > 0 && socket_limit < CLIENT_MAX_SOCKETS ? socket_limit
                                                                      : CLIENT_MAX_SOCKETS);
    proc->health = client_health_new();
    proc->pool = proc->health ? client_pool_new(proc->zmq_context, proc->health, &client->counters,
                                                client->timeout_ms)
                              : NULL;
    proc->views = proc->health ? client_view_cache_new(client->seeds, client->seed_count,
                                                       proc->health, &client->counters)
                               : NULL;
    proc->stats = client_stat_cache_new(client->metadata_ttl_ms);
    proc->local = client_local_new(&client->counters, client->timeout_ms); /* NULL: off */
    if (!proc->health || !proc->pool || !proc->views || !proc->stats) {
        s_proc_destroy(proc);
        return NULL;
    }
    return proc;
}

/* The fork rule: state whose pid is not ours was inherited from a parent. We never touch its
 * context, sockets or mutex (a parent thread may have held it at fork time); we build our own
 * and install it with a compare-and-swap, so that of several child threads racing on the first
 * call exactly one state wins and the others free theirs (unused, so that is safe). */
client_proc_t *client_proc_get(shoal_client_t *client)
{
    pid_t pid = getpid();
    client_proc_t *proc = atomic_load_explicit(&client->proc, memory_order_acquire);
    if (proc && proc->pid == pid)
        return proc;
    /* Before anything else, a child closes the local connections and descriptors it inherited
     * (lock-free), so that a dropped generation's disk space does not wait for the child. */
    if (proc)
        client_local_abandon(proc->local);
    client_proc_t *fresh = s_proc_new(client, pid);
    if (!fresh) {
        shoal_fail(SHOAL_ENOMEM, "cannot create the ZeroMQ context: %s", zmq_strerror(errno));
        return NULL;
    }
    if (atomic_compare_exchange_strong(&client->proc, &proc, fresh)) {
        if (proc) /* inherited from the parent: abandoned, never freed (see README) */
            CLIENT_COUNT(&client->counters, forks, 1);
        return fresh;
    }
    s_proc_destroy(fresh);
    return proc;
}

void shoal_client_destroy(shoal_client_t **client_p)
{
    if (!client_p || !*client_p)
        return;
    shoal_client_t *client = *client_p;
    *client_p = NULL;
    client_proc_t *proc = atomic_load(&client->proc);
    if (proc && proc->pid == getpid())
        s_proc_destroy(proc);
    /* else: a parent's state inherited over fork(): abandoned, its context is not ours. */
    client_ufs_destroy(&client->ufs);
    s_seeds_free(client->seeds, client->seed_count);
    free(client);
}

void shoal_free(void *ptr)
{
    free(ptr);
}

client_counters_t *client_counters(shoal_client_t *client)
{
    return &client->counters;
}

int shoal_client_counters_json(shoal_client_t *client, char **json_out)
{
    shoal_clear_error();
    if (!client || !json_out)
        return shoal_fail(SHOAL_EINVAL, "shoal_client_counters_json: NULL argument");
    json_t *object = client_counters_json(&client->counters);
    char *text = object ? json_dumps(object, JSON_COMPACT) : NULL;
    json_decref(object);
    if (!text)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    *json_out = text;
    return 0;
}

int client_ctx_begin(shoal_client_t *client, client_ctx_t *ctx)
{
    shoal_clear_error();
    memset(ctx, 0, sizeof *ctx);
    ctx->counters = &client->counters;
    ctx->ufs = client->ufs;
    client_proc_t *proc = client_proc_get(client);
    if (!proc)
        return SHOAL_ENOMEM;
    ctx->stats = proc->stats;
    ctx->views = proc->views;
    ctx->local = proc->local;
    ctx->session = client_session_acquire(proc->pool);
    if (!ctx->session)
        return SHOAL_ENOMEM;
    ctx->view = client_view_acquire(ctx->views, ctx->session, false);
    return 0;
}

void client_ctx_end(client_ctx_t *ctx)
{
    client_view_unref(&ctx->view);
    client_session_release(ctx->session);
    ctx->session = NULL;
}
