/*
 * bench_pread.c - libshoal read loops for the read benchmark, in C so that Python's overhead
 * does not hide the library's: sequential 1 MiB reads of whole files, and random fixed-size
 * reads from many threads with per-read latencies. libshoal is loaded with dlopen from the
 * path given, so this helper builds before (and independently of) the library target.
 *
 * Usage:
 *   bench_pread LIBSHOAL SEEDS seq DEPTH BLOCK URI...
 *       reads every URI front to back in BLOCK-byte reads, DEPTH of them per shoal_pread_many
 *       call (1 = plain shoal_pread); prints {"bytes", "seconds", "MBps"}.
 *   bench_pread LIBSHOAL SEEDS rand THREADS SECONDS SIZE URI...
 *       THREADS threads each read SIZE bytes at random SIZE-aligned offsets of random URIs for
 *       SECONDS; prints {"reads", "reads_per_s", "p50_us", "p99_us", "MBps"}.
 * Exit status 1 on any failed read.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "shoal.h"
#include "vec.h"

/* The libshoal functions used, resolved with dlsym. */
static shoal_client_t *(*p_client_new)(const shoal_client_options_t *);
static void (*p_client_destroy)(shoal_client_t **);
static int (*p_stat)(shoal_client_t *, const char *, shoal_stat_t *);
static int64_t (*p_pread)(shoal_client_t *, const char *, void *, size_t, uint64_t);
static int (*p_pread_many)(shoal_client_t *, shoal_read_t *, size_t);
static const char *(*p_strerror)(int);
static const char *(*p_last_error)(void);

typedef struct target {
    const char *uri; /* file to read */
    uint64_t size;   /* its size */
} target_t;

typedef struct worker {
    shoal_client_t *client;   /* shared client */
    const target_t *targets;  /* files */
    int target_count;         /* entries in targets */
    size_t read_size;         /* bytes per read */
    double stop_at;           /* monotonic deadline */
    unsigned seed;            /* rand_r state */
    VEC(double) latencies_us; /* out: one per read */
    int failed;               /* a read failed */
} worker_t;

static int s_compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *s_symbol(void *lib, const char *name)
{
    void *symbol = dlsym(lib, name);
    if (!symbol) {
        fprintf(stderr, "bench_pread: %s missing from libshoal\n", name);
        exit(2);
    }
    return symbol;
}

/* Random reads until the deadline, recording each read's latency. */
static void *s_random_reads(void *arg)
{
    worker_t *w = arg;
    char *buf = malloc(w->read_size);
    while (buf && (double)clock_mono_ns() / CLOCK_NS_PER_S < w->stop_at) {
        const target_t *t = &w->targets[rand_r(&w->seed) % (unsigned)w->target_count];
        uint64_t slots = t->size > w->read_size ? t->size / w->read_size : 1;
        uint64_t offset = ((uint64_t)rand_r(&w->seed) * 2654435761u % slots) * w->read_size;
        double start = (double)clock_mono_ns() / CLOCK_NS_PER_S;
        int64_t got = p_pread(w->client, t->uri, buf, w->read_size, offset);
        double took = (double)clock_mono_ns() / CLOCK_NS_PER_S - start;
        if (got < 0) {
            fprintf(stderr, "bench_pread: %s: %s: %s\n", t->uri, p_strerror((int)got),
                    p_last_error());
            w->failed = 1;
            break;
        }
        if (vec_push(&w->latencies_us, took * 1e6) < 0) {
            fprintf(stderr, "bench_pread: out of memory\n");
            w->failed = 1;
            break;
        }
    }
    free(buf);
    return NULL;
}

static int s_sequential(shoal_client_t *client, const target_t *targets, int count, int depth,
                        size_t block)
{
    char *buf = malloc(block * (size_t)depth);
    shoal_read_t *reads = calloc((size_t)depth, sizeof *reads);
    uint64_t bytes = 0;
    double start = (double)clock_mono_ns() / CLOCK_NS_PER_S;
    for (int i = 0; i < count; i++) {
        for (uint64_t offset = 0; offset < targets[i].size;) {
            int n = 0;
            for (; n < depth && offset < targets[i].size; n++, offset += block)
                reads[n] = (shoal_read_t){.uri = targets[i].uri,
                                          .offset = offset,
                                          .length = block,
                                          .buf = buf + (size_t)n * block};
            int rc = depth == 1 ? 0 : p_pread_many(client, reads, (size_t)n);
            if (depth == 1)
                reads[0].result = p_pread(client, reads[0].uri, buf, block, reads[0].offset);
            for (int k = 0; k < n; k++) {
                if (reads[k].result < 0 || rc < 0) {
                    fprintf(stderr, "bench_pread: %s: %s: %s\n", targets[i].uri,
                            p_strerror(rc < 0 ? rc : (int)reads[k].result), p_last_error());
                    return 1;
                }
                bytes += (uint64_t)reads[k].result;
            }
        }
    }
    double seconds = (double)clock_mono_ns() / CLOCK_NS_PER_S - start;
    printf("{\"bytes\": %llu, \"seconds\": %.6f, \"MBps\": %.1f}\n", (unsigned long long)bytes,
           seconds, (double)bytes / 1e6 / seconds);
    free(buf);
    free(reads);
    return 0;
}

static int s_random(shoal_client_t *client, const target_t *targets, int count, int threads,
                    double seconds, size_t size)
{
    worker_t *workers = calloc((size_t)threads, sizeof *workers);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    double start = (double)clock_mono_ns() / CLOCK_NS_PER_S;
    for (int i = 0; i < threads; i++) {
        workers[i] = (worker_t){.client = client,
                                .targets = targets,
                                .target_count = count,
                                .read_size = size,
                                .stop_at = start + seconds,
                                .seed = (unsigned)(12345 + i * 7919)};
        pthread_create(&ids[i], NULL, s_random_reads, &workers[i]);
    }
    size_t total = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        total += workers[i].latencies_us.len;
        failed |= workers[i].failed;
    }
    double elapsed = (double)clock_mono_ns() / CLOCK_NS_PER_S - start;
    double *all = malloc((total ? total : 1) * sizeof(double));
    size_t at = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + at, workers[i].latencies_us.items,
               workers[i].latencies_us.len * sizeof(double));
        at += workers[i].latencies_us.len;
        vec_fini(&workers[i].latencies_us);
    }
    qsort(all, total, sizeof(double), s_compare_double);
    printf("{\"reads\": %zu, \"seconds\": %.3f, \"reads_per_s\": %.0f, \"p50_us\": %.0f, "
           "\"p99_us\": %.0f, \"MBps\": %.1f}\n",
           total, elapsed, (double)total / elapsed, total ? all[total / 2] : 0.0,
           total ? all[(size_t)((double)total * 0.99)] : 0.0,
           (double)total * (double)size / 1e6 / elapsed);
    free(all);
    free(workers);
    free(ids);
    return failed;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: bench_pread LIB SEEDS seq DEPTH BLOCK URI...\n"
                        "       bench_pread LIB SEEDS rand THREADS SECONDS SIZE URI...\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) {
        fprintf(stderr, "bench_pread: %s\n", dlerror());
        return 2;
    }
    *(void **)&p_client_new = s_symbol(lib, "shoal_client_new");
    *(void **)&p_client_destroy = s_symbol(lib, "shoal_client_destroy");
    *(void **)&p_stat = s_symbol(lib, "shoal_stat");
    *(void **)&p_pread = s_symbol(lib, "shoal_pread");
    *(void **)&p_pread_many = s_symbol(lib, "shoal_pread_many");
    *(void **)&p_strerror = s_symbol(lib, "shoal_strerror");
    *(void **)&p_last_error = s_symbol(lib, "shoal_last_error");

    shoal_client_options_t options = {.seeds = argv[2]};
    shoal_client_t *client = p_client_new(&options);
    if (!client) {
        fprintf(stderr, "bench_pread: client: %s\n", p_last_error());
        return 2;
    }
    int seq = strcmp(argv[3], "seq") == 0;
    int first_uri = seq ? 6 : 7;
    int count = argc - first_uri;
    if (count <= 0) {
        fprintf(stderr, "bench_pread: no URIs\n");
        return 2;
    }
    target_t *targets = calloc((size_t)count, sizeof *targets);
    for (int i = 0; i < count; i++) {
        shoal_stat_t st;
        int rc = p_stat(client, argv[first_uri + i], &st);
        if (rc < 0) {
            fprintf(stderr, "bench_pread: stat %s: %s: %s\n", argv[first_uri + i], p_strerror(rc),
                    p_last_error());
            return 1;
        }
        targets[i] = (target_t){.uri = argv[first_uri + i], .size = st.size};
    }
    int rc =
        seq ? s_sequential(client, targets, count, atoi(argv[4]), (size_t)atol(argv[5]))
            : s_random(client, targets, count, atoi(argv[4]), atof(argv[5]), (size_t)atol(argv[6]));
    free(targets);
    p_client_destroy(&client);
    return rc;
}
