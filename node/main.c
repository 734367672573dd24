/*
 * main.c - shoald: parses the flags, starts one node, and stops it cleanly on SIGTERM or
 * SIGINT. Exit status: 0 after a clean stop, 1 when the node could not start, 2 for bad flags
 * and when the cluster refuses the node (its page or range size differs from the cluster's).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "gossip_agent.h"
#include "log.h"
#include "node.h"

int main(int argc, char **argv)
{
    node_config_t config;
    if (config_init(&config) < 0) {
        fprintf(stderr, "shoald: out of memory\n");
        return 1;
    }
    char error[CONFIG_ERROR_MAX];
    int rc = config_parse(&config, argc, argv, error, sizeof error);
    if (rc == 1) {
        config_usage(stdout);
        config_fini(&config);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "shoald: %s\n(see shoald --help)\n", error);
        config_fini(&config);
        return 2;
    }
    log_set_level(config.log_level);

    /* Every thread inherits this mask, so the signals are only ever taken by sigwait below. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* One ZeroMQ context per process, czmq's (the gossip actor lives in it), set up before any
     * thread starts and without czmq's own SIGINT/SIGTERM handlers: sigwait takes them. */
    if (gossip_agent_process_init() == NULL) {
        fprintf(stderr, "shoald: cannot create the ZeroMQ context\n");
        return 1;
    }

    node_t *node = node_new(&config);
    config_fini(&config);
    if (node == NULL)
        return 1;
    rc = node_start(node);
    if (rc < 0) {
        node_destroy(&node);
        return rc == SHOAL_ECONFIG ? 2 : 1;
    }
    /* Wait for a signal, looking every 200 ms whether the cluster has refused us since. */
    int signal_number = 0;
    char refused[512];
    struct timespec poll_interval = {0, 200 * 1000 * 1000};
    for (;;) {
        signal_number = sigtimedwait(&signals, NULL, &poll_interval);
        if (signal_number > 0)
            break;
        node_tick(node);
        if (node_status(node, refused, sizeof refused) < 0) {
            log_error("the cluster refused this node: %s; stopping", refused);
            node_stop(node);
            node_destroy(&node);
            return 2;
        }
    }
    log_info("%s: stopping", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    node_stop(node);
    node_destroy(&node);
    log_info("stopped");
    return 0;
}
