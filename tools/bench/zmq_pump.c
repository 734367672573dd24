/*
 * zmq_pump.c - the raw ZeroMQ ceiling for the read benchmark: one thread PUSHes `count`
 * messages of `size` bytes over TCP on loopback to a PULL socket in another thread, and the
 * program prints the throughput as one JSON line. No shoal code is involved.
 *
 * Usage: zmq_pump [count [size [port]]]   defaults: 2000 messages of 1 MiB, port 0 (any free)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"

typedef struct pump {
    void *context;     /* shared ZeroMQ context */
    char endpoint[64]; /* where the PULL socket is bound */
    long count;        /* messages to send */
    size_t size;       /* bytes per message */
    int failed;        /* set by the sender on error */
} pump_t;

/* Sender thread: connects a PUSH socket and sends every message. */
static void *s_send(void *arg)
{
    pump_t *pump = arg;
    void *push = zmq_socket(pump->context, ZMQ_PUSH);
    char *payload = malloc(pump->size);
    if (!push || !payload || zmq_connect(push, pump->endpoint) != 0) {
        pump->failed = 1;
        free(payload);
        if (push)
            zmq_close(push);
        return NULL;
    }
    memset(payload, 0x5a, pump->size);
    for (long i = 0; i < pump->count; i++) {
        if (zmq_send(push, payload, pump->size, 0) < 0) {
            pump->failed = 1;
            break;
        }
    }
    free(payload);
    zmq_close(push);
    return NULL;
}

int main(int argc, char **argv)
{
    pump_t pump = {.count = argc > 1 ? atol(argv[1]) : 2000,
                   .size = argc > 2 ? (size_t)atol(argv[2]) : (size_t)1 << 20};
    int port = argc > 3 ? atoi(argv[3]) : 0;
    pump.context = zmq_ctx_new();
    void *pull = zmq_socket(pump.context, ZMQ_PULL);
    char bind_to[64];
    if (port > 0)
        snprintf(bind_to, sizeof bind_to, "tcp://127.0.0.1:%d", port);
    else
        snprintf(bind_to, sizeof bind_to, "tcp://127.0.0.1:*");
    size_t endpoint_len = sizeof pump.endpoint;
    if (!pull || zmq_bind(pull, bind_to) != 0 ||
        zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, pump.endpoint, &endpoint_len) != 0) {
        fprintf(stderr, "zmq_pump: bind %s: %s\n", bind_to, zmq_strerror(zmq_errno()));
        return 1;
    }
    pthread_t sender;
    pthread_create(&sender, NULL, s_send, &pump);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    double start = 0;
    long received = 0;
    size_t bytes = 0;
    while (received < pump.count) {
        if (zmq_msg_recv(&msg, pull, 0) < 0) {
            fprintf(stderr, "zmq_pump: recv: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
        if (received == 0)
            start = (double)clock_mono_ns() /
                    CLOCK_NS_PER_S; /* time from the first message: excludes connection set-up */
        else
            bytes += zmq_msg_size(&msg);
        received++;
    }
    double seconds = (double)clock_mono_ns() / CLOCK_NS_PER_S - start;
    zmq_msg_close(&msg);
    pthread_join(sender, NULL);
    zmq_close(pull);
    zmq_ctx_term(pump.context);
    if (pump.failed) {
        fprintf(stderr, "zmq_pump: sender failed\n");
        return 1;
    }
    printf("{\"messages\": %ld, \"message_bytes\": %zu, \"seconds\": %.6f, \"MBps\": %.1f}\n",
           received, pump.size, seconds, seconds > 0 ? (double)bytes / 1e6 / seconds : 0.0);
    return 0;
}
