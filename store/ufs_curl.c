/*
 * ufs_curl.c - the shared HTTP layer of the s3, az, hf and http connectors: a fork-aware pool of
 * reused libcurl easy handles (so TCP/TLS connections are kept alive between requests), retries
 * with exponential backoff and full jitter, and ranged GETs written straight into the caller's
 * buffer with every check that keeps short or foreign bytes out of it.
 */
#include "ufs_conn.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "rng.h"

#define S_POOL_MAX       16           /* idle handles kept per pool; more are freed */
#define S_BODY_MAX       (64u << 20)  /* default cap of a collected body */
#define S_ERROR_BODY_MAX (64u << 10)  /* bytes of a non-2xx body kept for the caller */
#define S_BACKOFF_CAP_MS 20000        /* no single backoff sleeps longer than this */
#define S_HEADER_MAX     (256u << 10) /* response headers larger than this are refused */
/* libcurl's receive buffer for ranged reads of S_BIG_READ bytes or more (default 16 KiB).
 * 512 KiB is the largest every libcurl accepts (CURL_MAX_READ_SIZE before 7.88). Measured on
 * loopback nginx, 4 threads x 4 MiB ranges: 0.65 -> 0.41-0.49 CPU ms per MB read, +20-40 %
 * MB/s (tools/bench/README-read.md). 16 reused handles hold 8 MiB of such buffers at most. */
#define S_BIG_READ    (1u << 20)
#define S_RECV_BUFFER (512L << 10)

struct ufs_http_pool {
    uint64_t generation;    /* s_fork_generation when the idle handles were made: forked */
    size_t idle_count;      /* handles in idle */
    CURL *idle[S_POOL_MAX]; /* idle handles, most recently used last (warm connections) */
};

/* One lock for every pool, so that pthread_atfork can hold it across fork(): a child never
 * inherits it locked by a thread that does not exist in the child. Held only to push or pop. */
static pthread_mutex_t s_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t s_global_once = PTHREAD_ONCE_INIT;
static CURLcode s_global_rc = CURLE_OK; /* result of curl_global_init */
/* Forks this process has made a child of, counted in the child (pthread_atfork): a pool whose
 * generation differs was made by an ancestor. Read and written under s_pool_lock. It replaces a
 * getpid() per acquire and release (a real system call since glibc 2.25, made while holding the
 * lock every fetch thread takes). */
static uint64_t s_fork_generation;

static void s_atfork_prepare(void)
{
    pthread_mutex_lock(&s_pool_lock);
}

static void s_atfork_parent(void)
{
    pthread_mutex_unlock(&s_pool_lock);
}

static void s_atfork_child(void)
{
    s_fork_generation++;
    pthread_mutex_unlock(&s_pool_lock);
}

static void s_global_init(void)
{
    s_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_atfork(s_atfork_prepare, s_atfork_parent, s_atfork_child);
}

ufs_http_pool_t *ufs_http_pool_new(void)
{
    pthread_once(&s_global_once, s_global_init);
    ufs_http_pool_t *pool = calloc(1, sizeof *pool);
    if (pool) {
        pthread_mutex_lock(&s_pool_lock);
        pool->generation = s_fork_generation;
        pthread_mutex_unlock(&s_pool_lock);
    }
    return pool;
}

void ufs_http_pool_destroy(ufs_http_pool_t **pool_p)
{
    if (!pool_p || !*pool_p)
        return;
    ufs_http_pool_t *pool = *pool_p;
    /* In a forked child the idle handles are the parent's: abandon them (see ufs_conn.h). */
    pthread_mutex_lock(&s_pool_lock);
    bool ours = pool->generation == s_fork_generation;
    pthread_mutex_unlock(&s_pool_lock);
    if (ours)
        for (size_t i = 0; i < pool->idle_count; i++)
            curl_easy_cleanup(pool->idle[i]);
    free(pool);
    *pool_p = NULL;
}

/* Takes an idle handle (or makes one). After fork() the first call in the child forgets the
 * parent's handles without touching them. Returns NULL when libcurl cannot make a handle. */
static CURL *s_pool_acquire(ufs_http_pool_t *pool)
{
    CURL *curl = NULL;
    pthread_mutex_lock(&s_pool_lock);
    if (pool->generation != s_fork_generation) {
        pool->idle_count = 0; /* deliberately leaked in the child */
        pool->generation = s_fork_generation;
    }
    if (pool->idle_count > 0)
        curl = pool->idle[--pool->idle_count];
    pthread_mutex_unlock(&s_pool_lock);
    return curl ? curl : curl_easy_init();
}

static void s_pool_release(ufs_http_pool_t *pool, CURL *curl)
{
    pthread_mutex_lock(&s_pool_lock);
    if (pool->generation == s_fork_generation && pool->idle_count < S_POOL_MAX) {
        pool->idle[pool->idle_count++] = curl;
        curl = NULL;
    }
    pthread_mutex_unlock(&s_pool_lock);
    if (curl)
        curl_easy_cleanup(curl);
}

/* ---- one transfer ------------------------------------------------------------------------ */

/* State of one attempt, shared by the write and header callbacks. */
typedef struct s_transfer {
    const ufs_http_request_t *request; /* what is asked */
    ufs_http_response_t *response;     /* body_len, header_block and body are filled here */
    CURL *curl;                        /* the handle in use */
    size_t header_cap;                 /* bytes allocated for response->header_block */
    size_t body_cap;                   /* bytes allocated for response->body */
    size_t header_len;                 /* bytes in response->header_block */
    bool refused_200;                  /* a ranged request got a 200: aborted */
    bool overflow;                     /* the body was longer than buf or body_max: aborted */
    bool out_of_memory;                /* growing a buffer failed: aborted */
    bool gate_done;                    /* progress: the headers were checked this attempt */
    int gate_error;                    /* progress: the header check failed (aborted) */
    bool changed;                      /* progress: a retry got other bytes than reported */
    size_t *reported;                  /* progress: bytes of buf reported, over all attempts */
} s_transfer_t;

/* Appends to a malloc'd, NUL-terminated buffer (the response's body or header block, whose
 * pointer and length are the response's public fields), grown by proto's byte buffer. Returns
 * false when out of memory; the buffer is then unchanged. */
static bool s_append(char **data, size_t *len, size_t *cap, const char *bytes, size_t n)
{
    msg_buf_t buf = {.data = (uint8_t *)*data, .len = *len, .cap = *cap};
    bool ok = msg_buf_reserve(&buf, n + 1);
    *data = (char *)buf.data; /* a grown buffer is ours even when the reserve failed later */
    *cap = buf.cap;
    if (!ok)
        return false;
    memcpy(*data + *len, bytes, n);
    *len += n;
    (*data)[*len] = '\0';
    return true;
}

static bool s_parse_content_range(const char *value, uint64_t *first, uint64_t *last,
                                  int64_t *total);
static void s_parse_headers(CURL *curl, ufs_http_response_t *response);

/* Progress gate, at the first 2xx body byte of an attempt (the final reply's headers are all
 * in): the bytes are the range asked for (a 206 starting at range_offset, no longer than the
 * range, shorter only at the object's end, Content-Length agreeing) and the caller accepts
 * them (request->accept: say, the version). Returns 0 or an error with a last error. */
static int s_gate(s_transfer_t *t, long status)
{
    const ufs_http_request_t *request = t->request;
    ufs_http_response_t *response = t->response;
    s_parse_headers(t->curl, response);
    char value[128];
    uint64_t first, last;
    int64_t total;
    uint64_t want_last = request->range_offset + request->range_length - 1;
    if (status != 206 || !ufs_http_header(response, "Content-Range", value, sizeof value) ||
        !s_parse_content_range(value, &first, &last, &total) || first == UINT64_MAX ||
        first != request->range_offset || last > want_last ||
        (last != want_last && !(total >= 0 && last + 1 == (uint64_t)total)) ||
        (response->content_length >= 0 && (uint64_t)response->content_length != last - first + 1))
        return ufs_fail(SHOAL_EIO, "%s %s: HTTP %ld, not the bytes %" PRIu64 "-%" PRIu64 " asked",
                        request->method, request->url, status, request->range_offset, want_last);
    response->status = status;
    return request->accept ? request->accept(request->accept_arg, response) : 0;
}

/* Body bytes of a ranged read with progress: below what earlier attempts reported, compare
 * (never write bytes the caller may be using); above, copy; then report. Returns false to
 * abort the transfer. */
static bool s_body_progress(s_transfer_t *t, const char *data, size_t n)
{
    const ufs_http_request_t *request = t->request;
    ufs_http_response_t *response = t->response;
    char *at = (char *)request->buf + response->body_len;
    size_t seen = 0;
    if (response->body_len < *t->reported) {
        seen = *t->reported - response->body_len < n ? *t->reported - response->body_len : n;
        if (memcmp(at, data, seen) != 0) {
            t->changed = true;
            return false;
        }
    }
    memcpy(at + seen, data + seen, n - seen);
    response->body_len += n;
    if (response->body_len > *t->reported) {
        *t->reported = response->body_len;
        request->progress->fn(request->progress->arg, response->body_len);
    }
    return true;
}

/* Body bytes. 2xx bodies go into request->buf (ranged reads: the only copy libcurl allows, from
 * its receive buffer into the caller's) or into response->body; other bodies (error documents)
 * are kept in response->body up to S_ERROR_BODY_MAX. Returning less than n aborts the transfer:
 * that is how a 200 to a ranged request and an over-long body are stopped at the first byte. */
static size_t s_on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    s_transfer_t *t = userdata;
    ufs_http_response_t *response = t->response;
    const ufs_http_request_t *request = t->request;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
        size_t keep =
            response->body_len >= S_ERROR_BODY_MAX ? 0 : S_ERROR_BODY_MAX - response->body_len;
        if (keep > n)
            keep = n;
        if (keep && !s_append(&response->body, &response->body_len, &t->body_cap, data, keep)) {
            t->out_of_memory = true;
            return 0;
        }
        return n;
    }
    if (request->ranged && status == 200) {
        t->refused_200 = true;
        return 0;
    }
    if (request->buf) {
        if (n > request->buf_len - response->body_len) {
            t->overflow = true;
            return 0;
        }
        if (request->progress && request->ranged) {
            if (!t->gate_done) {
                t->gate_done = true;
                t->gate_error = s_gate(t, status);
            }
            if (t->gate_error < 0 || !s_body_progress(t, data, n))
                return 0;
            return n;
        }
        memcpy((char *)request->buf + response->body_len, data, n);
        response->body_len += n;
        return n;
    }
    if (request->collect_body) {
        size_t max = request->body_max ? request->body_max : S_BODY_MAX;
        if (n > max - response->body_len) {
            t->overflow = true;
            return 0;
        }
        if (!s_append(&response->body, &response->body_len, &t->body_cap, data, n)) {
            t->out_of_memory = true;
            return 0;
        }
        return n;
    }
    response->body_len += n; /* nowhere to put it: counted and dropped */
    return n;
}

/* Header lines. A status line starts a new response (a redirect or a 100 Continue came
 * before), so header_block always holds the final response's headers only. */
static size_t s_on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    s_transfer_t *t = userdata;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
        t->header_len = 0;
    if (t->header_len + n > S_HEADER_MAX)
        return 0;
    if (!s_append(&t->response->header_block, &t->header_len, &t->header_cap, data, n)) {
        t->out_of_memory = true;
        return 0;
    }
    return n;
}

void ufs_http_response_fini(ufs_http_response_t *response)
{
    if (!response)
        return;
    free(response->body);
    free(response->header_block);
    free(response->redirect_url);
    memset(response, 0, sizeof *response);
    response->content_length = -1;
    response->range_total = -1;
}

const char *ufs_http_header(const ufs_http_response_t *response, const char *name, char *out,
                            size_t out_len)
{
    if (!response->header_block || out_len == 0)
        return NULL;
    size_t name_len = strlen(name);
    const char *line = response->header_block;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t line_len = end ? (size_t)(end - line) : strlen(line);
        if (line_len > name_len && strncasecmp(line, name, name_len) == 0 &&
            line[name_len] == ':') {
            const char *value = line + name_len + 1;
            const char *value_end = line + line_len;
            while (value < value_end && (*value == ' ' || *value == '\t'))
                value++;
            while (value_end > value && isspace((unsigned char)value_end[-1]))
                value_end--;
            size_t value_len = (size_t)(value_end - value);
            if (value_len >= out_len)
                value_len = out_len - 1;
            memcpy(out, value, value_len);
            out[value_len] = '\0';
            return out;
        }
        if (!end)
            break;
        line = end + 1;
    }
    return NULL;
}

/* Parses a decimal uint64 filling the whole string [s, end). */
static bool s_parse_u64(const char *s, const char *end, uint64_t *out)
{
    uint64_t value = 0;
    if (s == end)
        return false;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9' || value > (UINT64_MAX - 9) / 10)
            return false;
        value = value * 10 + (uint64_t)(*s - '0');
    }
    *out = value;
    return true;
}

/* Parses "bytes FIRST-LAST/TOTAL" or "bytes * /TOTAL" (TOTAL may be "*"). Returns false on any
 * other shape; *first is UINT64_MAX for the "*" form, *total INT64 -1 when unknown. */
static bool s_parse_content_range(const char *value, uint64_t *first, uint64_t *last,
                                  int64_t *total)
{
    if (strncasecmp(value, "bytes ", 6) != 0)
        return false;
    const char *p = value + 6;
    const char *slash = strchr(p, '/');
    if (!slash)
        return false;
    if (slash - p == 1 && *p == '*') {
        *first = *last = UINT64_MAX;
    } else {
        const char *dash = memchr(p, '-', (size_t)(slash - p));
        if (!dash || !s_parse_u64(p, dash, first) || !s_parse_u64(dash + 1, slash, last) ||
            *last < *first)
            return false;
    }
    const char *t = slash + 1;
    uint64_t parsed;
    if (strcmp(t, "*") == 0)
        *total = -1;
    else if (s_parse_u64(t, t + strlen(t), &parsed) && parsed <= INT64_MAX)
        *total = (int64_t)parsed;
    else
        return false;
    return true;
}

/* Whether a failed attempt (libcurl code) is worth another try: the network hiccups, not our
 * own mistakes (bad URL, refused option) nor aborts we asked for. */
static bool s_transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

/* Sleeps before retry number `retry` (0-based): full jitter, uniform in [0, base * 2^retry],
 * capped at S_BACKOFF_CAP_MS (AWS architecture blog, "Exponential Backoff And Jitter"). A
 * Retry-After in seconds from the server raises the floor, within the same cap. */
static void s_backoff(const ufs_options_t *options, int retry, long retry_after_s)
{
    uint64_t ceiling = (uint64_t)options->retry_base_ms << (retry < 20 ? retry : 20);
    if (ceiling > S_BACKOFF_CAP_MS)
        ceiling = S_BACKOFF_CAP_MS;
    uint64_t delay_ms = rng_thread_below(ceiling + 1); /* per-thread: no lock */
    if (retry_after_s > 0 && (uint64_t)retry_after_s * 1000 > delay_ms)
        delay_ms = (uint64_t)retry_after_s * 1000 > S_BACKOFF_CAP_MS
                       ? S_BACKOFF_CAP_MS
                       : (uint64_t)retry_after_s * 1000;
    struct timespec pause = clock_timespec((int64_t)delay_ms * CLOCK_NS_PER_MS);
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        ;
}

/* Sets every option of one attempt on a reset handle. Returns false if libcurl refuses one. */
static bool s_setup(CURL *curl, const ufs_options_t *options, const ufs_http_request_t *request,
                    s_transfer_t *t, char *errbuf)
{
    CURLcode rc = CURLE_OK;
    long low_speed_s = options->low_speed_ms / 1000 > 0 ? options->low_speed_ms / 1000 : 1;
#define S_SET(option, value)                                                                       \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(curl, option, value);                                            \
    } while (0)
    S_SET(CURLOPT_URL, request->url);
    S_SET(CURLOPT_ERRORBUFFER, errbuf);
    S_SET(CURLOPT_NOSIGNAL, 1L);
    S_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    S_SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    S_SET(CURLOPT_CONNECTTIMEOUT_MS, options->connect_timeout_ms);
    S_SET(CURLOPT_TIMEOUT_MS, options->timeout_ms);
    S_SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
    S_SET(CURLOPT_LOW_SPEED_TIME, low_speed_s);
    S_SET(CURLOPT_TCP_KEEPALIVE, 1L);
    /* Big reads: a larger receive buffer means 32x fewer recv/poll rounds and write callbacks
     * per byte. A hint only, so a libcurl that refuses the size does not fail the request. */
    if (rc == CURLE_OK && request->buf && request->buf_len >= S_BIG_READ)
        (void)curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, S_RECV_BUFFER);
    S_SET(CURLOPT_WRITEFUNCTION, s_on_body);
    S_SET(CURLOPT_WRITEDATA, t);
    S_SET(CURLOPT_HEADERFUNCTION, s_on_header);
    S_SET(CURLOPT_HEADERDATA, t);
    if (strcmp(request->method, "HEAD") == 0)
        S_SET(CURLOPT_NOBODY, 1L);
    else if (strcmp(request->method, "GET") == 0)
        S_SET(CURLOPT_HTTPGET, 1L);
    else
        S_SET(CURLOPT_CUSTOMREQUEST, request->method);
    if (request->headers)
        S_SET(CURLOPT_HTTPHEADER, (struct curl_slist *)request->headers);
    char range[64];
    if (request->ranged) {
        snprintf(range, sizeof range, "%" PRIu64 "-%" PRIu64, request->range_offset,
                 request->range_offset + request->range_length - 1);
        S_SET(CURLOPT_RANGE, range); /* libcurl copies strings it is given */
    }
    if (request->aws_sigv4)
        S_SET(CURLOPT_AWS_SIGV4, request->aws_sigv4);
    if (request->userpwd)
        S_SET(CURLOPT_USERPWD, request->userpwd);
    if (request->follow_redirects) {
        S_SET(CURLOPT_FOLLOWLOCATION, 1L);
        S_SET(CURLOPT_MAXREDIRS, 8L);
    }
#undef S_SET
    return rc == CURLE_OK;
}

/* Checks a 2xx reply for completeness: the body is as long as Content-Length says, and a 206
 * covers exactly the bytes asked for from the offset asked for (shorter only at the object's
 * end). Returns 0 or SHOAL_EIO. */
static int s_check_complete(const ufs_http_request_t *request, ufs_http_response_t *response)
{
    if (strcmp(request->method, "HEAD") != 0 && response->content_length >= 0 &&
        (uint64_t)response->content_length != response->body_len)
        return ufs_fail(SHOAL_EIO, "%s %s: body of %zu bytes, Content-Length %" PRId64,
                        request->method, request->url, response->body_len,
                        response->content_length);
    if (!request->ranged || response->status != 206 || strcmp(request->method, "HEAD") == 0)
        return 0;
    char value[128];
    uint64_t first, last;
    int64_t total;
    if (!ufs_http_header(response, "Content-Range", value, sizeof value) ||
        !s_parse_content_range(value, &first, &last, &total) || first == UINT64_MAX)
        return ufs_fail(SHOAL_EIO, "%s %s: 206 without a usable Content-Range", request->method,
                        request->url);
    uint64_t want_last = request->range_offset + request->range_length - 1;
    bool at_end = total >= 0 && last + 1 == (uint64_t)total;
    if (first != request->range_offset || last > want_last || (last != want_last && !at_end) ||
        last - first + 1 != response->body_len)
        return ufs_fail(SHOAL_EIO,
                        "%s %s: asked bytes %" PRIu64 "-%" PRIu64 ", got %s with %zu bytes",
                        request->method, request->url, request->range_offset, want_last, value,
                        response->body_len);
    return 0;
}

/* Fills the parsed fields of a response from its headers. */
static void s_parse_headers(CURL *curl, ufs_http_response_t *response)
{
    char value[128];
    uint64_t parsed, first, last;
    int64_t total;
    response->content_length = -1;
    response->range_total = -1;
    if (ufs_http_header(response, "Content-Length", value, sizeof value) &&
        s_parse_u64(value, value + strlen(value), &parsed) && parsed <= INT64_MAX)
        response->content_length = (int64_t)parsed;
    if (ufs_http_header(response, "Content-Range", value, sizeof value) &&
        s_parse_content_range(value, &first, &last, &total))
        response->range_total = total;
    if (response->status >= 300 && response->status < 400) {
        char *location = NULL;
        if (curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location)
            response->redirect_url = strdup(location);
    }
}

/* The attempt loop. Each attempt starts from a reset handle (connections survive a reset) and
 * from an empty response. What is retried: libcurl's transient failures (s_transient), 5xx and
 * 429, each up to options.max_retries times. What is never retried: 4xx other than 429 (a 404
 * stays a 404), a 200 to a ranged request, an over-long body. */
int ufs_http_perform(ufs_t *ufs, const ufs_http_request_t *request, ufs_http_response_t *response)
{
    memset(response, 0, sizeof *response);
    response->content_length = -1;
    response->range_total = -1;
    if (!request->url || !request->method)
        return ufs_fail(SHOAL_EINVAL, "http request without url or method");
    if (request->ranged &&
        (request->range_length == 0 || request->range_offset > UINT64_MAX - request->range_length))
        return ufs_fail(SHOAL_EINVAL, "%s: bad range", request->url);
    if (request->ranged && request->buf && request->buf_len < request->range_length)
        return ufs_fail(SHOAL_EINVAL, "%s: buffer smaller than the range", request->url);
    pthread_once(&s_global_once, s_global_init);
    if (s_global_rc != CURLE_OK)
        return ufs_fail(SHOAL_EIO, "curl_global_init: %s", curl_easy_strerror(s_global_rc));
    const ufs_options_t *options = ufs_options(ufs);
    ufs_http_pool_t *pool = ufs_http_pool_of(ufs);
    CURL *curl = s_pool_acquire(pool);
    if (!curl)
        return ufs_fail(SHOAL_ENOMEM, "curl_easy_init failed");
    int result = 0;
    char errbuf[CURL_ERROR_SIZE];
    size_t reported = 0; /* bytes of buf reported to request->progress, over all attempts */
    for (int attempt = 0;; attempt++) {
        ufs_http_response_fini(response);
        response->attempts = attempt + 1;
        s_transfer_t t = {
            .request = request, .response = response, .curl = curl, .reported = &reported};
        errbuf[0] = '\0';
        curl_easy_reset(curl);
        if (!s_setup(curl, options, request, &t, errbuf)) {
            result = ufs_fail(SHOAL_EINVAL, "%s %s: libcurl refused an option", request->method,
                              request->url);
            break;
        }
        CURLcode rc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
        long redirects = 0; /* hops libcurl followed inside this attempt: requests too */
        curl_easy_getinfo(curl, CURLINFO_REDIRECT_COUNT, &redirects);
        ufs_requests_add(ufs, 1 + (redirects > 0 ? (uint64_t)redirects : 0));
        bool retries_left = attempt < options->max_retries;
        if (t.refused_200) {
            result = ufs_fail(SHOAL_ENOTSUP,
                              "%s %s: server ignored Range (200 to a ranged request); refusing "
                              "to read the whole object",
                              request->method, request->url);
            break;
        }
        if (t.overflow) {
            result = ufs_fail(SHOAL_EIO, "%s %s: body longer than the %zu bytes expected",
                              request->method, request->url,
                              request->buf ? request->buf_len
                                           : (request->body_max ? request->body_max : S_BODY_MAX));
            break;
        }
        if (t.out_of_memory) {
            result = ufs_fail(SHOAL_ENOMEM, "%s %s: out of memory", request->method, request->url);
            break;
        }
        if (t.gate_error < 0) {
            result = t.gate_error; /* last error set by s_gate */
            break;
        }
        if (t.changed) {
            result = ufs_fail(SHOAL_ESTALE,
                              "%s %s: attempt %d got other bytes than an earlier attempt: the "
                              "object changed",
                              request->method, request->url, attempt + 1);
            break;
        }
        if (rc != CURLE_OK) {
            if (s_transient(rc) && retries_left) {
                s_backoff(options, attempt, 0);
                continue;
            }
            result = ufs_fail(rc == CURLE_OPERATION_TIMEDOUT ? SHOAL_ETIMEDOUT : SHOAL_EIO,
                              "%s %s: %s (%s) after %d attempt%s", request->method, request->url,
                              curl_easy_strerror(rc), errbuf[0] ? errbuf : "no detail", attempt + 1,
                              attempt ? "s" : "");
            break;
        }
        s_parse_headers(curl, response);
        if ((response->status >= 500 || response->status == 429) && retries_left) {
            char value[32];
            long retry_after = 0;
            if (ufs_http_header(response, "Retry-After", value, sizeof value))
                retry_after = strtol(value, NULL, 10);
            s_backoff(options, attempt, retry_after);
            continue;
        }
        if (response->status >= 200 && response->status < 300)
            result = s_check_complete(request, response);
        /* s_on_body refuses a 200 to a ranged request at its first byte; one with no body at
         * all is an empty object (nginx ignores Range on 0-byte files) and harmless. */
        if (result == 0 && request->ranged && response->status == 200 && response->body_len > 0)
            result = ufs_fail(SHOAL_ENOTSUP, "%s %s: server ignored Range", request->method,
                              request->url);
        break;
    }
    s_pool_release(pool, curl);
    if (result < 0) {
        long status = response->status;
        int attempts = response->attempts;
        ufs_http_response_fini(response);
        response->status = status;
        response->attempts = attempts;
    }
    return result;
}

bool ufs_http_reply_size(const ufs_http_response_t *response, uint64_t *size)
{
    if ((response->status == 206 || response->status == 416) && response->range_total >= 0) {
        *size = (uint64_t)response->range_total;
        return true;
    }
    if (response->status == 200 && response->content_length >= 0) {
        *size = (uint64_t)response->content_length;
        return true;
    }
    return false;
}

int ufs_http_status_error(long status, const char *what)
{
    switch (status) {
    case 404:
    case 410:
        return ufs_fail(SHOAL_ENOENT, "%s: HTTP %ld (not found)", what, status);
    case 401:
    case 403:
        return ufs_fail(SHOAL_EACCES, "%s: HTTP %ld (access denied)", what, status);
    case 412:
        return ufs_fail(SHOAL_ESTALE, "%s: HTTP 412 (the object changed)", what);
    case 416:
        return 0;
    case 408:
    case 504:
        return ufs_fail(SHOAL_ETIMEDOUT, "%s: HTTP %ld (timed out)", what, status);
    default:
        return ufs_fail(SHOAL_EIO, "%s: HTTP %ld", what, status);
    }
}

/* Days from 1970-01-01 to the proleptic Gregorian date (year, month 1-12, day 1-31) (H. Hinnant,
 * "chrono-Compatible Low-Level Date Algorithms", days_from_civil). */
static int64_t s_days_from_civil(int64_t year, int64_t month, int64_t day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

/* The decimal number in the `n` digits at text, or -1 when one is not a digit. */
static int s_digits(const char *text, int n)
{
    int value = 0;
    for (int i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

int64_t ufs_http_date(const char *text)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    static const int month_days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (text == NULL)
        return -1;
    /* "Sun, 06 Nov 1994 08:49:37 GMT": 29 bytes, every field at a fixed place */
    int day = -1, month = -1, year = -1, hour = -1, minute = -1, second = -1;
    if (strlen(text) == 29 && isalpha((unsigned char)text[0]) && text[3] == ',' && text[4] == ' ' &&
        text[7] == ' ' && text[11] == ' ' && text[16] == ' ' && text[19] == ':' &&
        text[22] == ':' && strcmp(text + 25, " GMT") == 0) {
        for (int i = 0; i < 12; i++)
            if (memcmp(text + 8, months + 3 * i, 3) == 0)
                month = i + 1;
        day = s_digits(text + 5, 2);
        year = s_digits(text + 12, 4);
        hour = s_digits(text + 17, 2);
        minute = s_digits(text + 20, 2);
        second = s_digits(text + 23, 2);
    }
    if (month < 1 || day < 1 || day > month_days[month - 1] || year < 1970 || hour < 0 ||
        hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) {
        time_t parsed = curl_getdate(text, NULL); /* another form, or not a date */
        return parsed < 0 ? -1 : (int64_t)parsed;
    }
    return ((s_days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second;
}

char *ufs_etag_version(const char *etag, char *out, size_t out_len)
{
    out[0] = '\0';
    if (!etag || out_len < 3)
        return out;
    bool weak = strncmp(etag, "W/", 2) == 0;
    const char *p = weak ? etag + 2 : etag;
    size_t len = strlen(p);
    if (len >= 2 && p[0] == '"' && p[len - 1] == '"') {
        p++;
        len -= 2;
    }
    snprintf(out, out_len, "%s%.*s", weak ? "W/" : "", (int)len, p);
    return out;
}
