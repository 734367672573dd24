/*
 * main.c - shoald: parses the flags, starts one node, and stops it cleanly on SIGTERM or
 * SIGINT. Exit status: 0 after a clean stop, 1 when the node could not start, 2 for bad flags
 * and when the cluster refuses the node (its page or range size differs from the cluster's).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

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

    /* Every thread inherits this mask, so the signals are only ever taken by the signalfd
     * below. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
    if (signal_fd < 0) {
        fprintf(stderr, "shoald: cannot make a signalfd: %s\n", strerror(errno));
        return 1;
    }
    /* One ZeroMQ context per process, czmq's (the gossip actor lives in it), set up before any
     * thread starts and without czmq's own SIGINT/SIGTERM handlers: the signalfd takes them. */
    if (gossip_agent_process_init(config.io_threads) == NULL) {
        fprintf(stderr, "shoald: cannot create the ZeroMQ context\n");
        close(signal_fd);
        return 1;
    }

    node_t *node = node_new(&config);
    config_fini(&config);
    if (node == NULL) {
        close(signal_fd);
        return 1;
    }
    rc = node_start(node);
    if (rc < 0) {
        node_destroy(&node);
        close(signal_fd);
        return rc == SHOAL_ECONFIG ? 2 : 1;
    }
    /* Sleep in one poll until a signal, the cluster's refusal (node_refused_fd) or the next
     * periodic flush (node_tick's timeout; none with --flush-interval 0). */
    uint32_t signal_number = 0;
    while (signal_number == 0) {
        struct pollfd events[2] = {
            {.fd = signal_fd, .events = POLLIN},
            {.fd = node_refused_fd(node), .events = POLLIN},
        };
        int ready = poll(events, 2, node_tick(node));
        if (ready < 0 && errno != EINTR) {
            log_error("poll: %s; stopping", strerror(errno));
            break;
        }
        char refused[512];
        if (ready > 0 && (events[1].revents & POLLIN) &&
            node_status(node, refused, sizeof refused) < 0) {
            log_error("the cluster refused this node: %s; stopping", refused);
            node_stop(node);
            node_destroy(&node);
            close(signal_fd);
            return 2;
        }
        struct signalfd_siginfo info;
        if (ready > 0 && (events[0].revents & POLLIN) &&
            read(signal_fd, &info, sizeof info) == (ssize_t)sizeof info)
            signal_number = info.ssi_signo;
    }
    log_info("%s: stopping", signal_number == SIGINT    ? "SIGINT"
                             : signal_number == SIGTERM ? "SIGTERM"
                                                        : "poll failed");
    node_stop(node);
    node_destroy(&node);
    close(signal_fd);
    log_info("stopped");
    return 0;
}
