/*
 * node.c - building, starting, stopping and freeing one node (see node.h). The order of the
 * stop matters and is explained at node_stop.
 */
#include "node.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "cluster.h"
#include "coding.h"
#include "fetch.h"
#include "forward.h"
#include "gossip_agent.h"
#include "identity.h"
#include "local.h"
#include "log.h"
#include "server.h"
#include "storeq.h"

#define NODE_META_ENTRIES     200000      /* stat entries kept in memory */
#define NODE_META_LISTINGS    64          /* listings kept for paging */
#define NODE_IDLE_RANGE_BYTES (64u << 20) /* idle range buffers kept for reuse (at least one) */

/* mkdir -p `path`. Returns 0 or -1 with errno. */
static int s_mkdirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* The data endpoint other nodes and clients should use: the listen endpoint, with a wildcard
 * host replaced by this host's name. */
static void s_advertised(const node_config_t *config, char *out, size_t out_len)
{
    const char *host = config->listen + strlen("tcp://");
    const char *colon = strrchr(config->listen, ':');
    if (strncmp(host, "*:", 2) == 0 || strncmp(host, "0.0.0.0:", 8) == 0) {
        char name[256] = "localhost";
        gethostname(name, sizeof name - 1);
        name[sizeof name - 1] = '\0';
        snprintf(out, out_len, "tcp://%s%s", name, colon);
    } else {
        snprintf(out, out_len, "%s", config->listen);
    }
}

/* The ops handlers as the server's dispatch and the fetch pool's handler. */
static void s_dispatch(void *arg, reply_sink_t *sink, node_request_t **request_p)
{
    ops_dispatch(arg, sink, request_p);
}

static void s_fetch(void *arg, reply_sink_t *sink, node_request_t **request_p)
{
    ops_fetch(arg, sink, request_p);
}

/*
 * Wires the request path once the store, caches, membership and context exist: the store
 * queue and the forwarder get their own dependencies, the fetch pool and the server a handler
 * (ops.h) with its narrow context, and every request thread the shared request_env_t. Nothing
 * here is started. Returns 0 or -1 when out of memory (the caller destroys the node).
 */
static int s_wire(node_t *self)
{
    self->env = (request_env_t){
        .zmq_context = self->zmq_context,
        .members = self->members,
        .stats = &self->stats,
        .inflight = &self->inflight,
    };
    storeq_deps_t storeq = {
        .store = self->store,
        .flights = self->flights,
        .stats = &self->stats,
        .page_size = self->page_size,
        .range_pages = self->range_pages,
    };
    forward_deps_t forward = {
        .zmq_context = self->zmq_context,
        .members = self->members,
        .ranges = self->ranges,
        .stats = &self->stats,
        .page_size = self->page_size,
        .range_pages = self->range_pages,
        .timeout_ms = self->config.forward_timeout_ms,
    };
    reval_deps_t reval = {
        .ufs = self->ufs, .meta = self->meta, .store = self->store, .stats = &self->stats};
    self->reval = reval_new(&reval);
    self->storeq = storeq_new(&storeq, STOREQ_BYTES_MAX);
    self->forward = forward_new(&forward);
    self->fetch = fetch_pool_new(&self->env, self->config.fetch_threads, s_fetch, &self->ops);
    server_options_t server = {
        .env = &self->env,
        .listen = self->config.listen,
        .threads = self->config.threads,
        .inline_max_bytes = self->page_size * self->range_pages,
        .dispatch = s_dispatch,
        .dispatch_arg = &self->ops,
    };
    self->server = server_new(&server);
    if (self->fetch == NULL || self->server == NULL || self->forward == NULL ||
        self->storeq == NULL || self->reval == NULL)
        return -1;
    self->ops = (ops_ctx_t){
        .read =
            {
                .store = self->store,
                .ufs = self->ufs,
                .flights = self->flights,
                .ranges = self->ranges,
                .meta = self->meta,
                .stats = &self->stats,
                .storeq = self->storeq,
                .forward = self->forward,
                .reval = self->reval,
                .immutable = self->immutable,
                .page_size = self->page_size,
                .range_pages = self->range_pages,
            },
        .mounts = self->mounts,
        .members = self->members,
        .fetch = self->fetch,
        .inflight = &self->inflight,
        .flushed_puts = &self->flushed_puts,
    };
    return 0;
}

/* Decides the local socket's path into self->config.local_socket (NULL: none): --local-socket
 * PATH as given; by default <data-dir>/shoal.sock when it fits sun_path, else
 * /run/shoal/<name>.sock (the node id in hex when the name is not a plain file name or too
 * long); none with --local-socket off, or by default with the memory store (no data files to
 * pass). Returns 0 or -1 when out of memory. */
static int s_local_socket_path(node_t *self)
{
    node_config_t *config = &self->config;
    if (config->local_socket_off || config->local_socket != NULL)
        return 0;
    if (config->memory_store) {
        config->local_socket_off = true;
        return 0;
    }
    char path[4200];
    int len = snprintf(path, sizeof path, "%s/shoal.sock", config->data_dir);
    if (len < 0 || len > LOCAL_SUN_PATH_MAX) {
        bool plain =
            config->name[0] != '\0' && config->name[0] != '.' && strlen(config->name) <= 64;
        for (const char *p = config->name; *p && plain; p++)
            plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.';
        char id_hex[2 * MSG_NODE_ID_SIZE + 1];
        hex_encode(self->id, MSG_NODE_ID_SIZE, id_hex, sizeof id_hex, false);
        snprintf(path, sizeof path, "/run/shoal/%s.sock", plain ? config->name : id_hex);
    }
    config->local_socket = strdup(path);
    return config->local_socket != NULL ? 0 : -1;
}

/* Builds the local server when there is a socket path. Returns 0 or -1 (logged). */
static int s_local_new(node_t *self)
{
    if (s_local_socket_path(self) < 0) {
        log_error("out of memory");
        return -1;
    }
    if (self->config.local_socket == NULL)
        return 0;
    local_deps_t deps = {
        .read = &self->ops.read,
        .mounts = self->mounts,
        .store = self->store,
        .stats = &self->stats,
        .node_id = self->id,
        .host_id = "",
        .path = self->config.local_socket,
        .group = self->config.local_group,
    };
    self->local = local_new(&deps);
    return self->local != NULL ? 0 : -1;
}

/* Starts the local socket. A default path that cannot be served (another node listens there, a
 * directory that cannot be written) is logged and the node goes on without it; a path given
 * with --local-socket must work. The gossip thread has not started: the path it advertises is
 * settled here. */
static int s_local_start(node_t *self)
{
    if (self->local == NULL)
        return 0;
    if (self->config.local_socket_given == false && self->config.local_socket != NULL &&
        strncmp(self->config.local_socket, "/run/shoal/", 11) == 0)
        (void)mkdir("/run/shoal", 0755);
    int rc = local_start(self->local);
    if (rc == 0 || self->config.local_socket_given)
        return rc;
    log_warn("no short-circuit local reads: the default --local-socket %s cannot be served",
             self->config.local_socket);
    local_destroy(&self->local);
    free(self->config.local_socket);
    self->config.local_socket = NULL;
    self->config.local_socket_off = true;
    return 0;
}

/* The membership observer, on the gossip thread after every refresh (at least once a second):
 * tells main, once, that the cluster refused this node. */
static void s_on_members(void *arg)
{
    node_t *self = arg;
    if (atomic_load(&self->refused_told) || cluster_status(self->cluster, NULL, 0) == 0)
        return;
    atomic_store(&self->refused_told, true);
    if (eventfd_write(self->refused_fd, 1) != 0)
        log_error("cannot wake main for the refusal: %s", strerror(errno));
}

node_t *node_new(const node_config_t *config)
{
    node_t *self = calloc(1, sizeof *self);
    if (self == NULL || config_copy(&self->config, config) < 0) {
        log_error("out of memory");
        free(self);
        return NULL;
    }
    stats_init(&self->stats);
    atomic_init(&self->inflight, 0);
    atomic_init(&self->refused_told, false);
    self->refused_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (self->refused_fd < 0) {
        log_error("cannot make an eventfd: %s", strerror(errno));
        goto fail;
    }
    self->page_size = config->page_size;
    self->range_pages = config->range_pages;

    self->mounts = mount_table_new();
    if (self->mounts == NULL)
        goto fail;
    for (size_t i = 0; i < config->mounts.len; i++)
        if (mount_table_add(self->mounts, config->mounts.items[i]) < 0) {
            log_error("bad --mount '%s': %s", config->mounts.items[i], shoal_last_error());
            goto fail;
        }
    self->immutable = mount_table_new();
    if (self->immutable == NULL)
        goto fail;
    for (size_t i = 0; i < config->immutable_mounts.len; i++)
        if (mount_table_add(self->immutable, config->immutable_mounts.items[i]) < 0) {
            log_error("bad --immutable-mount '%s': %s", config->immutable_mounts.items[i],
                      shoal_last_error());
            goto fail;
        }

    if (!config->memory_store && s_mkdirs(config->data_dir) != 0) {
        log_error("cannot create --data-dir %s: %s", config->data_dir, strerror(errno));
        goto fail;
    }
    pagestore_options_t options = {
        .kind = config->memory_store ? PAGESTORE_MEMORY : PAGESTORE_ROCKSDB,
        .data_dir = config->data_dir,
        .capacity_bytes = config->capacity_bytes,
        .page_size = config->page_size,
    };
    int rc = pagestore_open(&options, &self->store);
    if (rc < 0) {
        log_error("cannot open the page store in %s: %s", config->data_dir, shoal_last_error());
        goto fail;
    }
    rc = identity_load(self->store, self->id, &self->incarnation);
    if (rc < 0) {
        log_error("cannot load the node identity: %s", shoal_last_error());
        goto fail;
    }

    self->members = membership_new(self->page_size, self->range_pages, self->id);
    if (self->members == NULL)
        goto fail;
    membership_member_t me;
    memset(&me, 0, sizeof me);
    memcpy(me.id, self->id, sizeof me.id);
    snprintf(me.name, sizeof me.name, "%s", config->name);
    s_advertised(config, me.data_endpoint, sizeof me.data_endpoint);
    snprintf(me.gossip_endpoint, sizeof me.gossip_endpoint, "%s", config->gossip);
    me.state = MSG_MEMBER_ALIVE;
    me.incarnation = self->incarnation;
    me.weight = config->capacity_bytes;
    if (membership_set_members(self->members, &me, 1) < 0)
        goto fail;

    self->ufs = ufs_new(NULL);
    self->meta = meta_cache_new(config->metadata_ttl_ns, NODE_META_ENTRIES, NODE_META_LISTINGS);
    if (self->meta != NULL)
        meta_cache_set_negative_ttl(self->meta, config->negative_ttl_ns);
    self->flights = flight_table_new();
    size_t range_bytes = (size_t)self->page_size * self->range_pages;
    size_t idle_ranges = NODE_IDLE_RANGE_BYTES / range_bytes;
    self->ranges = range_pool_new(range_bytes, idle_ranges ? idle_ranges : 1);
    self->zmq_context = gossip_agent_zmq_context(); /* the process's one context, czmq's */
    if (self->ufs == NULL || self->meta == NULL || self->flights == NULL || self->ranges == NULL ||
        self->zmq_context == NULL)
        goto fail;
    if (s_wire(self) < 0 || s_local_new(self) < 0)
        goto fail;
    cluster_deps_t cluster = {
        .config = &self->config,
        .store = self->store,
        .members = self->members,
        .id = self->id,
        .incarnation = self->incarnation,
        .page_size = self->page_size,
        .range_pages = self->range_pages,
    };
    self->cluster = cluster_new(&cluster, me.data_endpoint);
    if (self->cluster == NULL)
        goto fail;
    membership_set_observer(self->members, s_on_members, self); /* before the gossip thread */

    char id_hex[2 * MSG_NODE_ID_SIZE + 1];
    hex_encode(self->id, MSG_NODE_ID_SIZE, id_hex, sizeof id_hex, false);
    log_info("node %s (%s) incarnation %llu, store %s (%s, capacity %llu bytes), page %u x %u",
             config->name, id_hex, (unsigned long long)self->incarnation,
             config->memory_store ? "memory" : config->data_dir,
             config->memory_store ? "not persistent" : "rocksdb",
             (unsigned long long)config->capacity_bytes, config->page_size, config->range_pages);
    for (size_t i = 0; i < mount_table_count(self->mounts); i++)
        log_info("mount %s", mount_table_get(self->mounts, i));
    if (config->cluster_key)
        log_warn("--cluster-key is accepted but CurveZMQ is not wired yet: traffic is not "
                 "encrypted");
    return self;
fail:
    node_destroy(&self);
    return NULL;
}

int node_start(node_t *self)
{
    assert(self != NULL && self->server != NULL && self->zmq_context != NULL);
    storeq_start(self->storeq); /* without it fetch threads store themselves */
    /* Join before serving: a client that asks this node for the VIEW first then gets the
     * cluster's membership, not a view of this node alone that would send it every range. */
    int rc = fetch_pool_start(self->fetch);
    if (rc == 0)
        rc = reval_start(self->reval);
    if (rc == 0)
        rc = s_local_start(self);
    if (rc == 0)
        rc = cluster_start(self->cluster);
    if (rc == 0)
        rc = server_start(self->server);
    if (rc < 0)
        return rc;
    log_info("serving on %s (%u hit workers, %u fetch threads, metadata ttl %.3f s)",
             self->config.listen, self->config.threads, self->config.fetch_threads,
             (double)self->config.metadata_ttl_ns / 1e9);
    return 0;
}

/* Milliseconds (rounded up) from `now` until the next flush is due; 0 when it is. */
static int s_until_flush_ms(const node_t *self, int64_t now)
{
    int64_t left = self->flushed_ns + self->config.flush_interval_ns - now;
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int node_tick(node_t *self)
{
    assert(self != NULL);
    if (self->config.flush_interval_ns <= 0 || self->config.memory_store)
        return -1;
    int64_t now = clock_mono_ns();
    if (now - self->flushed_ns < self->config.flush_interval_ns)
        return s_until_flush_ms(self, now);
    self->flushed_ns = now;
    pagestore_stats_t store;
    pagestore_stats(self->store, &store);
    if (store.puts == atomic_load(&self->flushed_puts))
        return s_until_flush_ms(self, now);
    if (pagestore_flush(self->store) < 0) {
        log_warn("periodic flush of the page store: %s", shoal_last_error());
        return s_until_flush_ms(self, now);
    }
    atomic_store(&self->flushed_puts, store.puts);
    stats_add(&self->stats, STATS_PAGE_FLUSHES, 1);
    return s_until_flush_ms(self, now);
}

int node_refused_fd(const node_t *self)
{
    assert(self != NULL);
    return self->refused_fd;
}

int node_status(node_t *self, char *message, size_t cap)
{
    assert(self != NULL);
    return cluster_status(self->cluster, message, cap);
}

/*
 * Stop order: (0) the node leaves the cluster, so peers and clients stop sending to it; (1) the
 * fetch pool's queue is closed, so queued misses are answered ECANCELED and new ones refused
 * at once; (2) the router stops reading the ROUTER socket and keeps routing replies until every
 * forwarded request has been answered, then closes its sockets (the ROUTER with a linger that
 * flushes the last replies); (3) the hit workers get their stop signal (an eventfd) and close
 * their sockets; (4) every thread is joined, the store queue last (it stores what the fetch
 * threads left it, so every page of an answered read is in the store before it closes), and
 * (5) the forwarder's sockets are closed. The context is czmq's, shared with the gossip agent:
 * it is never shut down here (that would kill the gossip actor too) and czmq terminates it at
 * exit, after every node socket is closed.
 */
void node_stop(node_t *self)
{
    if (self == NULL || self->zmq_context == NULL)
        return;
    cluster_leave(self->cluster);
    local_stop(self->local); /* closes the listener, unlinks the path, joins its threads */
    fetch_pool_stop(self->fetch);
    server_stop(self->server);
    server_join(self->server);
    fetch_pool_join(self->fetch);
    reval_stop(self->reval);
    storeq_stop(self->storeq);
    forward_destroy(&self->forward);
    self->zmq_context = NULL;
}

void node_destroy(node_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    node_t *self = *self_p;
    node_stop(self);
    cluster_destroy(&self->cluster);
    local_destroy(&self->local);
    forward_destroy(&self->forward);
    fetch_pool_destroy(&self->fetch);
    reval_destroy(&self->reval);
    server_destroy(&self->server);
    storeq_destroy(&self->storeq);
    flight_table_destroy(&self->flights);
    range_pool_destroy(&self->ranges); /* buffers still out (none after the stop) free it later */
    meta_cache_destroy(&self->meta);
    ufs_destroy(&self->ufs);
    membership_destroy(&self->members);
    pagestore_close(&self->store);
    mount_table_destroy(&self->mounts);
    mount_table_destroy(&self->immutable);
    config_fini(&self->config);
    if (self->refused_fd >= 0)
        close(self->refused_fd);
    free(self);
    *self_p = NULL;
}
