/*
 * test_hostid.c - the host id and the local socket path in the view (issue 11), end to end:
 * three real shoald processes on loopback advertise host_id_get() and the socket path they were
 * listens on (--local-socket under the test's temp dir), every member in shoal_members shows both,
 * and client_view_local lists the three as this host's; a fourth node with --host-id of another
 * host is shown with it and is not listed.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "client.h"
#include "hostid.h"
#include "testproc.h"

#define NODES 4 /* three on this host, one "elsewhere" */

typedef struct test_node {
    tp_proc_t proc;        /* the shoald process */
    int port;              /* data port */
    int gossip_port;       /* gossip port */
    char socket_path[128]; /* the local socket it listens on and advertises ("" = none) */
    char log[TP_PATH_MAX]; /* its log */
} test_node_t;

static char *s_dir;                /* temp dir: mount root, logs */
static test_node_t s_nodes[NODES]; /* the cluster */
static int s_started;              /* nodes started */
static char s_seeds[NODES * 32];   /* data endpoints of the nodes, for the client */

static void s_setup(void)
{
    unsetenv("SHOAL_HOST_ID"); /* the nodes and this process find the same host id */
    s_dir = tp_tempdir("hostid");
    cr_assert_not_null(s_dir);
    char path[TP_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/data/f.bin", s_dir);
    cr_assert_eq(tp_write_file(path, "x", 1), 0);
    s_started = 0;
}

static void s_teardown(void)
{
    for (int i = 0; i < s_started; i++)
        tp_stop(&s_nodes[i].proc, 5000);
    if (s_dir) {
        tp_rmtree(s_dir);
        free(s_dir);
        s_dir = NULL;
    }
}

static void s_dump_logs(void)
{
    for (int i = 0; i < s_started; i++) {
        size_t len = 0;
        char *text = tp_read_file(s_nodes[i].log, &len);
        cr_log_error("%s:\n%s", s_nodes[i].log, text ? text : "(none)");
        free(text);
    }
}

/* Starts node `index` (joining node 0 unless it is node 0) advertising `socket_path` ("" =
 * none) and, when `host_id` is not NULL, that --host-id. Returns once its data port listens. */
static void s_start_node(int index, const char *socket_path, const char *host_id)
{
    test_node_t *node = &s_nodes[index];
    const char *build = getenv("SHOAL_BUILD_DIR");
    char shoald[TP_PATH_MAX], listen[64], gossip[64], seeds[64], mount[TP_PATH_MAX + 16];
    char name[16], db_dir[TP_PATH_MAX + 16];
    snprintf(shoald, sizeof shoald, "%s/node/shoald", build ? build : ".");
    snprintf(node->log, sizeof node->log, "%s/node%d.log", s_dir, index);
    snprintf(db_dir, sizeof db_dir, "%s/db%d", s_dir, index);
    snprintf(name, sizeof name, "h%d", index);
    snprintf(node->socket_path, sizeof node->socket_path, "%s", socket_path);
    node->port = tp_free_port();
    node->gossip_port = tp_free_port();
    cr_assert(node->port > 0 && node->gossip_port > 0 && node->port != node->gossip_port);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", node->port);
    snprintf(gossip, sizeof gossip, "127.0.0.1:%d", node->gossip_port);
    snprintf(seeds, sizeof seeds, "127.0.0.1:%d", s_nodes[0].gossip_port);
    snprintf(mount, sizeof mount, "file://%s/data/", s_dir);
    const char *argv[32] = {shoald,   "--name",
                            name,     "--data-dir",
                            db_dir,   "--store",
                            "memory", "--capacity",
                            "64M",    "--listen",
                            listen,   "--gossip",
                            gossip,   "--mount",
                            mount,    "--page-size",
                            "65536",  "--threads",
                            "2",      "--fetch-threads",
                            "2",      "--probe-interval",
                            "200ms",  "--probe-timeout",
                            "100ms",  NULL};
    size_t n = 0;
    while (argv[n])
        n++;
    if (index > 0) {
        argv[n++] = "--seeds";
        argv[n++] = seeds;
    }
    if (host_id) {
        argv[n++] = "--host-id";
        argv[n++] = host_id;
    }
    argv[n] = NULL;
    argv[n++] = "--local-socket";
    argv[n++] = socket_path[0] ? socket_path : "off";
    argv[n] = NULL;
    int rc = tp_spawn(&node->proc, argv, node->log);
    cr_assert_eq(rc, 0, "cannot start %s", shoald);
    if (index >= s_started)
        s_started = index + 1;
    if (tp_wait_port(node->port, 20000) != 0) {
        s_dump_logs();
        cr_assert_fail("node %d did not listen", index);
    }
    s_seeds[0] = '\0';
    for (int i = 0; i < s_started; i++)
        snprintf(s_seeds + strlen(s_seeds), sizeof s_seeds - strlen(s_seeds), "%s127.0.0.1:%d",
                 i ? "," : "", s_nodes[i].port);
}

/* The members document of `client` once it shows `count` alive members (polled; NULL after
 * 30 s). Caller owns it. */
static json_t *s_members_when_alive(shoal_client_t *client, size_t count)
{
    int64_t deadline = tp_now_ms() + 30000;
    while (tp_now_ms() < deadline) {
        char *text = NULL;
        if (shoal_members(client, &text) == 0) {
            json_t *root = json_loads(text, 0, NULL);
            shoal_free(text);
            size_t alive = 0, index;
            json_t *member;
            json_array_foreach(json_object_get(root, "members"), index, member)
            {
                alive += strcmp(json_string_value(json_object_get(member, "state")), "alive") == 0;
            }
            if (alive == count && json_array_size(json_object_get(root, "members")) == count)
                return root;
            json_decref(root);
        }
        struct timespec step = {0, 50 * 1000000L};
        nanosleep(&step, NULL);
    }
    return NULL;
}

/* The index of the node named `name` ("hN"), or -1. */
static int s_node_index(const char *name)
{
    int index = -1;
    return name && sscanf(name, "h%d", &index) == 1 && index >= 0 && index < s_started ? index : -1;
}

Test(hostid, members_show_the_host_id_and_socket_path, .init = s_setup, .fini = s_teardown,
     .timeout = 240)
{
    char own[HOST_ID_MAX + 1];
    cr_assert_eq(host_id_get(own, sizeof own), 0);
    for (int i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/n%d.sock", s_dir, i);
        s_start_node(i, path, NULL);
    }
    shoal_client_options_t options = {.seeds = s_seeds, .timeout_ms = 3000};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client, "%s", shoal_last_error());
    json_t *root = s_members_when_alive(client, 3);
    if (!root)
        s_dump_logs();
    cr_assert_not_null(root, "three alive members not seen");
    size_t index;
    json_t *member;
    bool seen[NODES] = {false};
    json_array_foreach(json_object_get(root, "members"), index, member)
    {
        int node = s_node_index(json_string_value(json_object_get(member, "name")));
        cr_assert_geq(node, 0);
        seen[node] = true;
        cr_assert_str_eq(json_string_value(json_object_get(member, "host_id")), own);
        cr_assert_str_eq(json_string_value(json_object_get(member, "local_socket")),
                         s_nodes[node].socket_path);
    }
    cr_assert(seen[0] && seen[1] && seen[2]);
    json_decref(root);

    /* every node answers the same: ask each one alone */
    for (int i = 0; i < 3; i++) {
        char seed[32];
        snprintf(seed, sizeof seed, "127.0.0.1:%d", s_nodes[i].port);
        shoal_client_options_t one = {.seeds = seed, .timeout_ms = 3000};
        shoal_client_t *single = shoal_client_new(&one);
        cr_assert_not_null(single);
        root = s_members_when_alive(single, 3);
        cr_assert_not_null(root, "node %d does not show three alive members", i);
        json_array_foreach(json_object_get(root, "members"), index, member)
        {
            int node = s_node_index(json_string_value(json_object_get(member, "name")));
            cr_assert_geq(node, 0);
            cr_assert_str_eq(json_string_value(json_object_get(member, "host_id")), own);
            cr_assert_str_eq(json_string_value(json_object_get(member, "local_socket")),
                             s_nodes[node].socket_path);
        }
        json_decref(root);
        shoal_client_destroy(&single);
    }

    /* a node of another host, without a socket: shown with its host id, never local */
    s_start_node(3, "", "elsewhere-host");
    shoal_client_destroy(&client);
    options.seeds = s_seeds;
    client = shoal_client_new(&options);
    cr_assert_not_null(client);
    root = s_members_when_alive(client, 4);
    if (!root)
        s_dump_logs();
    cr_assert_not_null(root, "four alive members not seen");
    json_array_foreach(json_object_get(root, "members"), index, member)
    {
        int node = s_node_index(json_string_value(json_object_get(member, "name")));
        cr_assert_geq(node, 0);
        cr_assert_str_eq(json_string_value(json_object_get(member, "host_id")),
                         node == 3 ? "elsewhere-host" : own);
        cr_assert_str_eq(json_string_value(json_object_get(member, "local_socket")),
                         s_nodes[node].socket_path);
    }
    json_decref(root);

    client_ctx_t ctx;
    cr_assert_eq(client_ctx_begin(client, &ctx), 0);
    cr_assert_not_null(ctx.view, "%s", shoal_last_error());
    size_t count = 0;
    const client_local_member_t *local = client_view_local(ctx.view, &count);
    cr_assert_eq(count, 3, "members on this host: %zu", count);
    for (size_t k = 0; k < count; k++) {
        int node = s_node_index(ctx.view->members[local[k].index].name);
        cr_assert(node >= 0 && node < 3, "node %d listed as local", node);
        cr_assert_str_eq(local[k].socket_path, s_nodes[node].socket_path);
    }
    client_ctx_end(&ctx);
    shoal_client_destroy(&client);
}
