/*
 * test_node_local.c - shoald's short-circuit local read socket (node/local.c), end to end: the
 * real binary over a file:// origin, warmed through a normal ZeroMQ READ, then spoken to by hand
 * over its SOCK_SEQPACKET socket with the proto codec: HELLO, LOCATE, the passed descriptors
 * read with pread and every byte and every chunk sum checked; misses; the peer check (a uid
 * outside --local-group, when the test runs as root); garbage and passed descriptors; the
 * connection bound; the clean stop.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>
#include <zmq.h>

#include "proto.h"
#include "testproc.h"

#define PAGE      (256u << 10) /* --page-size 256K: four 64 KiB chunks per page */
#define WAIT_MS   20000        /* longest wait for one reply */
#define FOREIGN_G 4242         /* --local-group of the peer-check test: nobody's groups lack it */

typedef struct s_node {
    tp_proc_t proc;   /* the daemon */
    int port;         /* its data port */
    char *dir;        /* temp dir: data dir, socket, log */
    char socket[108]; /* --local-socket */
    void *context;    /* ZeroMQ */
    void *dealer;     /* connected to the data port */
    uint64_t next_id; /* request ids */
} s_node_t;

static s_node_t s_node;
static char *s_origin;                  /* temp dir with the files */
static const char *s_capacity = "256M"; /* --capacity of the next s_start */

static const char *s_shoald(void)
{
    static char path[TP_PATH_MAX];
    const char *build = getenv("SHOAL_BUILD_DIR");
    snprintf(path, sizeof path, "%s/node/shoald", build ? build : "build");
    return path;
}

/* Starts shoald over the origin with its local socket in its temp dir, and `group` as
 * --local-group (NULL: the default). */
static void s_start(const char *group)
{
    memset(&s_node, 0, sizeof s_node);
    s_node.dir = tp_tempdir("local");
    cr_assert_not_null(s_node.dir);
    cr_assert_eq(chmod(s_node.dir, 0755), 0); /* a peer of another uid must reach the socket */
    char data[TP_PATH_MAX], log[TP_PATH_MAX], listen[64], mount[TP_PATH_MAX];
    snprintf(data, sizeof data, "%s/data", s_node.dir);
    snprintf(log, sizeof log, "%s/shoald.log", s_node.dir);
    int len = snprintf(s_node.socket, sizeof s_node.socket, "%s/l.sock", s_node.dir);
    cr_assert_lt(len, (int)sizeof s_node.socket, "TMPDIR too long for a socket path");
    snprintf(mount, sizeof mount, "file://%s/", s_origin);
    for (int attempt = 0; attempt < 3; attempt++) {
        s_node.port = tp_free_port();
        snprintf(listen, sizeof listen, "tcp://127.0.0.1:%d", s_node.port);
        const char *argv[] = {s_shoald(),    "--listen",
                              listen,        "--data-dir",
                              data,          "--capacity",
                              s_capacity,    "--page-size",
                              "256K",        "--range-pages",
                              "1",           "--metadata-ttl",
                              "600",         "--mount",
                              mount,         "--threads",
                              "2",           "--fetch-threads",
                              "4",           "--log-level",
                              "debug",       "--local-socket",
                              s_node.socket, group ? "--local-group" : NULL,
                              group,         NULL};
        cr_assert_eq(tp_spawn(&s_node.proc, argv, log), 0);
        if (tp_wait_port(s_node.port, 15000) == 0 && tp_alive(&s_node.proc))
            break;
        tp_stop(&s_node.proc, 2000);
    }
    cr_assert(tp_alive(&s_node.proc), "shoald did not start; see %s", log);
    struct stat st;
    cr_assert_eq(stat(s_node.socket, &st), 0, "no socket at %s", s_node.socket);
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0660);
    s_node.context = zmq_ctx_new();
    s_node.dealer = zmq_socket(s_node.context, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s_node.dealer, ZMQ_LINGER, &zero, sizeof zero);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_node.port);
    cr_assert_eq(zmq_connect(s_node.dealer, endpoint), 0);
}

static void s_setup(void)
{
    s_origin = tp_tempdir("origin");
    cr_assert_not_null(s_origin);
    cr_assert_eq(chmod(s_origin, 0755), 0);
}

static void s_teardown(void)
{
    if (s_node.dealer)
        zmq_close(s_node.dealer);
    if (s_node.context)
        zmq_ctx_term(s_node.context);
    bool running = s_node.proc.pid > 0;
    int status = tp_stop(&s_node.proc, 10000);
    if (running)
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "shoald stopped with status %d",
                  status);
    if (s_node.dir) {
        tp_rmtree(s_node.dir);
        free(s_node.dir);
    }
    memset(&s_node, 0, sizeof s_node);
    if (s_origin) {
        tp_rmtree(s_origin);
        free(s_origin);
        s_origin = NULL;
    }
}

TestSuite(node_local, .init = s_setup, .fini = s_teardown, .timeout = 120);

/* ---- ZeroMQ side: warm a file, read counters ------------------------------------------- */

/* Sends `request` over ZeroMQ and returns its decoded header (raw frames dropped). */
static void s_zcall(msg_t *request, msg_t *reply)
{
    request->header.request_id = ++s_node.next_id;
    msg_buf_t buf;
    msg_buf_init(&buf);
    cr_assert_eq(msg_encode(request, &buf), 0, "%s", shoal_last_error());
    cr_assert(zmq_send(s_node.dealer, buf.data, buf.len, 0) >= 0);
    msg_buf_fini(&buf);
    zmq_pollitem_t item = {.socket = s_node.dealer, .events = ZMQ_POLLIN};
    cr_assert_gt(zmq_poll(&item, 1, WAIT_MS), 0, "no reply over ZeroMQ");
    bool first = true, more = true;
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        cr_assert(zmq_msg_recv(&frame, s_node.dealer, 0) >= 0);
        more = zmq_msg_more(&frame);
        if (first)
            cr_assert_eq(msg_decode(zmq_msg_data(&frame), zmq_msg_size(&frame), reply), 0);
        first = false;
        zmq_msg_close(&frame);
    }
    cr_assert_eq(reply->header.request_id, request->header.request_id);
}

static uint64_t s_counter(const char *name)
{
    msg_t request, reply;
    msg_init(&request, MSG_STATS_REQ, 0, 0);
    s_zcall(&request, &reply);
    cr_assert_eq(reply.header.type, MSG_STATS_REP);
    uint64_t value = UINT64_MAX;
    for (uint32_t i = 0; i < reply.body.stats_reply.counter_count; i++)
        if (strcmp(reply.body.stats_reply.counters[i].name, name) == 0)
            value = reply.body.stats_reply.counters[i].value;
    msg_fini(&reply);
    cr_assert_neq(value, UINT64_MAX, "no counter %s", name);
    return value;
}

/* READs [offset, offset + length) of `uri` over ZeroMQ (warming it), then waits until the
 * pages are stored (they are stored after the reply). */
static void s_warm(const char *uri, uint64_t offset, uint64_t length)
{
    msg_t request, reply;
    msg_read_request(&request, 0, 0, uri, "", offset, length, 0);
    s_zcall(&request, &reply);
    cr_assert_eq(reply.header.type, MSG_READ_REP, "READ failed: %s",
                 reply.header.type == MSG_ERROR ? reply.body.error.message : "");
    msg_fini(&reply);
    int64_t deadline = tp_now_ms() + 10000;
    while (s_counter("store_queue_depth") != 0 && tp_now_ms() < deadline)
        usleep(5000);
    cr_assert_eq(s_counter("store_queue_depth"), 0);
}

/* Writes a patterned file at origin/name; returns its bytes (caller frees). */
static uint8_t *s_make_file(const char *name, size_t size, uint64_t seed, char *uri, size_t cap)
{
    uint8_t *bytes = malloc(size);
    tp_fill_pattern(bytes, size, seed);
    char path[TP_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", s_origin, name);
    cr_assert_eq(tp_write_file(path, bytes, size), 0);
    snprintf(uri, cap, "file://%s/%s", s_origin, name);
    return bytes;
}

/* ---- the local socket by hand ---------------------------------------------------------- */

static int s_local_connect(void)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, s_node.socket, sizeof s_node.socket);
    cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0, "connect: %s",
                 strerror(errno));
    return fd;
}

/* Sends `len` raw bytes with `fd_count` descriptors attached. Returns sendmsg's result. */
static ssize_t s_local_send_raw(int fd, const void *data, size_t len, const int *fds,
                                size_t fd_count)
{
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr header = {.msg_iov = &iov, .msg_iovlen = 1};
    union {
        char bytes[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } control;
    if (fd_count) {
        memset(&control, 0, sizeof control);
        header.msg_control = control.bytes;
        header.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&header);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * fd_count);
    }
    return sendmsg(fd, &header, MSG_NOSIGNAL);
}

/* Receives one datagram and decodes it; passed descriptors go to fds (at most 16). 0, or -1
 * when nothing came within WAIT_MS or the peer closed. */
static int s_local_recv(int fd, msg_t *reply, int *fds, size_t *fd_count)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, WAIT_MS) <= 0)
        return -1;
    static uint8_t buf[MSG_LOCAL_DATAGRAM_MAX + 1];
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    union {
        char bytes[CMSG_SPACE(sizeof(int) * MSG_LOCATE_FDS_MAX)];
        struct cmsghdr align;
    } control;
    struct msghdr header = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = control.bytes,
                            .msg_controllen = sizeof control.bytes};
    ssize_t n = recvmsg(fd, &header, MSG_CMSG_CLOEXEC);
    if (n <= 0)
        return -1;
    cr_assert_eq(header.msg_flags & (MSG_TRUNC | MSG_CTRUNC), 0);
    size_t count = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&header); c; c = CMSG_NXTHDR(&header, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds + count, CMSG_DATA(c), k * sizeof(int));
            count += k;
        }
    if (fd_count)
        *fd_count = count;
    else
        for (size_t i = 0; i < count; i++)
            close(fds[i]);
    cr_assert_eq(msg_decode(buf, (size_t)n, reply), 0, "reply does not decode: %s",
                 shoal_last_error());
    return 0;
}

/* Encodes and sends `request`, receives its reply. */
static void s_local_call(int fd, msg_t *request, msg_t *reply, int *fds, size_t *fd_count)
{
    static uint64_t id = 1000;
    request->header.request_id = ++id;
    msg_buf_t buf;
    msg_buf_init(&buf);
    cr_assert_eq(msg_encode(request, &buf), 0, "%s", shoal_last_error());
    cr_assert_eq(s_local_send_raw(fd, buf.data, buf.len, NULL, 0), (ssize_t)buf.len);
    msg_buf_fini(&buf);
    int none[MSG_LOCATE_FDS_MAX];
    cr_assert_eq(s_local_recv(fd, reply, fds ? fds : none, fds ? fd_count : NULL), 0,
                 "no reply on the local socket");
    cr_assert_eq(reply->header.request_id, id);
}

static void s_hello(int fd, msg_t *reply)
{
    msg_t request;
    msg_init(&request, MSG_LOCAL_HELLO_REQ, 0, 0);
    s_local_call(fd, &request, reply, NULL, NULL);
}

static void s_locate(int fd, const char *uri, const char *version, uint64_t offset, uint64_t length,
                     msg_t *reply, int *fds, size_t *fd_count)
{
    msg_t request;
    msg_init(&request, MSG_LOCATE_REQ, 0, 0);
    request.body.locate_request.uri = uri;
    request.body.locate_request.version = version;
    request.body.locate_request.offset = offset;
    request.body.locate_request.length = length;
    s_local_call(fd, &request, reply, fds, fd_count);
}

/* Checks one located page against the file: pread from the descriptor of its generation, every
 * byte and every chunk's XXH3_64bits_withSeed(chunk, seed + c). */
static void s_check_page(const msg_local_page_t *page, int fd, const uint8_t *file,
                         uint64_t file_size)
{
    uint64_t start = page->index * PAGE;
    uint64_t want = file_size - start < PAGE ? file_size - start : PAGE;
    cr_assert_eq(page->size, want, "page %llu size", (unsigned long long)page->index);
    cr_assert_eq(page->chunk_shift, 16);
    uint8_t *bytes = malloc(page->size + 1);
    ssize_t got = pread(fd, bytes, page->size, (off_t)page->offset);
    cr_assert_eq(got, (ssize_t)page->size, "pread of page %llu", (unsigned long long)page->index);
    cr_assert_eq(memcmp(bytes, file + start, page->size), 0, "page %llu bytes differ",
                 (unsigned long long)page->index);
    uint64_t chunk = 1u << page->chunk_shift;
    cr_assert_eq(page->sum_count, (page->size + chunk - 1) / chunk);
    for (uint32_t c = 0; c < page->sum_count; c++) {
        uint64_t from = c * chunk;
        uint64_t len = page->size - from < chunk ? page->size - from : chunk;
        cr_assert_eq(XXH3_64bits_withSeed(bytes + from, len, page->seed + c), page->sums[c],
                     "page %llu chunk %u sum", (unsigned long long)page->index, c);
    }
    free(bytes);
}

/* The descriptor passed for generation `gen` in a reply (fds[i] goes with fd_gens[i]). */
static int s_fd_of(const msg_locate_reply_t *rep, const int *fds, size_t count, uint64_t gen)
{
    cr_assert_eq(rep->fd_count, count, "fds announced and attached differ");
    for (uint32_t i = 0; i < rep->fd_count; i++)
        if (rep->fd_gens[i] == gen)
            return fds[i];
    return -1;
}

/* ---- tests ----------------------------------------------------------------------------- */

Test(node_local, hello_and_locate_of_warm_pages)
{
    s_start(NULL);
    char uri[TP_PATH_MAX];
    const uint64_t size = 2 * PAGE + 70000; /* the last page: 70000 bytes, two chunks */
    uint8_t *file = s_make_file("warm.bin", size, 11, uri, sizeof uri);
    s_warm(uri, 0, size);

    int sock = s_local_connect();
    msg_t hello;
    s_hello(sock, &hello);
    cr_assert_eq(hello.header.type, MSG_LOCAL_HELLO_REP);
    uint64_t store_id = hello.body.local_hello_reply.store_id;
    cr_assert_neq(store_id, 0);
    cr_assert_eq(hello.body.local_hello_reply.page_size, PAGE);
    cr_assert_eq(hello.body.local_hello_reply.lease_ms, 30000);
    msg_fini(&hello);

    msg_t reply;
    int fds[MSG_LOCATE_FDS_MAX];
    size_t fd_count = 0;
    s_locate(sock, uri, "", 0, size, &reply, fds, &fd_count);
    cr_assert_eq(reply.header.type, MSG_LOCATE_REP, "%s",
                 reply.header.type == MSG_ERROR ? reply.body.error.message : "");
    const msg_locate_reply_t *rep = &reply.body.locate_reply;
    cr_assert_eq(rep->store_id, store_id);
    cr_assert_eq(rep->file_size, size);
    cr_assert_str_neq(rep->version, "", "a fresh version is named");
    cr_assert_eq(rep->page_count, 3);
    cr_assert_geq(fd_count, 1);
    for (uint32_t i = 0; i < rep->page_count; i++) {
        cr_assert_eq(rep->pages[i].index, i);
        int fd = s_fd_of(rep, fds, fd_count, rep->pages[i].gen);
        cr_assert_geq(fd, 0, "no descriptor for generation %llu",
                      (unsigned long long)rep->pages[i].gen);
        s_check_page(&rep->pages[i], fd, file, size);
    }
    /* the descriptor is read-only */
    cr_assert_eq(write(fds[0], "x", 1), -1);
    cr_assert_eq(errno, EBADF);
    cr_assert_eq(fcntl(fds[0], F_GETFL) & O_ACCMODE, O_RDONLY);
    char version[256];
    snprintf(version, sizeof version, "%s", rep->version);
    size_t first_fds = fd_count;
    msg_fini(&reply);

    /* a span inside page 1 with the version: the page again, no descriptor twice */
    size_t again_count = 0;
    int again[MSG_LOCATE_FDS_MAX];
    s_locate(sock, uri, version, PAGE + 10, 100, &reply, again, &again_count);
    cr_assert_eq(reply.header.type, MSG_LOCATE_REP);
    cr_assert_eq(reply.body.locate_reply.page_count, 1);
    cr_assert_eq(reply.body.locate_reply.pages[0].index, 1);
    cr_assert_eq(again_count, 0, "a generation's descriptor goes once per connection");
    cr_assert_eq(reply.body.locate_reply.fd_count, 0);
    s_check_page(&reply.body.locate_reply.pages[0], fds[0], file, size);
    msg_fini(&reply);
    /* another version of the file is refused as stale (its metadata is fresh) */
    s_locate(sock, uri, "some-other-version", 0, 1, &reply, NULL, NULL);
    cr_assert_eq(reply.header.type, MSG_ERROR);
    cr_assert_eq(reply.body.error.code, SHOAL_ESTALE);
    msg_fini(&reply);

    cr_assert_eq(s_counter("local_connections"), 1);
    cr_assert_eq(s_counter("local_locates"), 2);
    cr_assert_eq(s_counter("local_pages"), 4);
    cr_assert_eq(s_counter("local_bytes"), size + PAGE);
    cr_assert_eq(s_counter("local_fds_sent"), first_fds);
    cr_assert_eq(s_counter("local_misses"), 0);
    for (size_t i = 0; i < first_fds; i++)
        close(fds[i]);
    close(sock);
    free(file);
}

Test(node_local, cold_pages_and_unknown_files_are_misses)
{
    s_start(NULL);
    char uri[TP_PATH_MAX], cold_uri[TP_PATH_MAX];
    const uint64_t size = 3 * PAGE;
    uint8_t *file = s_make_file("part.bin", size, 12, uri, sizeof uri);
    uint8_t *cold = s_make_file("cold.bin", 1000, 13, cold_uri, sizeof cold_uri);
    s_warm(uri, PAGE, 10); /* --range-pages 1: page 1 only */
    int sock = s_local_connect();
    msg_t reply;
    int fds[MSG_LOCATE_FDS_MAX];
    size_t fd_count = 0;
    s_locate(sock, uri, "", 0, size, &reply, fds, &fd_count);
    cr_assert_eq(reply.header.type, MSG_LOCATE_REP);
    cr_assert_eq(reply.body.locate_reply.page_count, 1, "pages 0 and 2 are cold: misses");
    cr_assert_eq(reply.body.locate_reply.pages[0].index, 1);
    s_check_page(&reply.body.locate_reply.pages[0], fds[0], file, size);
    msg_fini(&reply);
    for (size_t i = 0; i < fd_count; i++)
        close(fds[i]);
    cr_assert_eq(s_counter("local_misses"), 2);
    /* a file the node knows nothing of: no version without asking the origin, no pages */
    s_locate(sock, cold_uri, "", 0, 1000, &reply, fds, &fd_count);
    cr_assert_eq(reply.header.type, MSG_LOCATE_REP);
    cr_assert_str_eq(reply.body.locate_reply.version, "");
    cr_assert_eq(reply.body.locate_reply.page_count, 0);
    cr_assert_eq(fd_count, 0);
    msg_fini(&reply);
    /* past the end of the file: nothing to locate, not an error */
    s_locate(sock, uri, "", 10 * PAGE, 10, &reply, NULL, NULL);
    cr_assert_eq(reply.header.type, MSG_LOCATE_REP);
    cr_assert_eq(reply.body.locate_reply.page_count, 0);
    msg_fini(&reply);
    /* outside every mount: refused as READ refuses it */
    s_locate(sock, "file:///etc/passwd", "", 0, 10, &reply, NULL, NULL);
    cr_assert_eq(reply.header.type, MSG_ERROR);
    cr_assert_eq(reply.body.error.code, SHOAL_EACCES);
    msg_fini(&reply);
    close(sock);
    free(file);
    free(cold);
}

/* Runs in a forked child as uid 65534 with the socket's group as its gid (so the kernel lets it
 * connect): the node must still refuse it, by its passwd entry's groups. Exit 0 = refused with
 * EACCES naming the uid. */
static int s_child_as_nobody(void)
{
    gid_t group = FOREIGN_G;
    if (setgroups(1, &group) != 0 || setgid(FOREIGN_G) != 0 || setuid(65534) != 0)
        return 10;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, s_node.socket, sizeof s_node.socket);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        return 11;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, WAIT_MS) <= 0)
        return 12;
    uint8_t buf[8192];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    msg_t reply;
    if (n <= 0 || msg_decode(buf, (size_t)n, &reply) != 0)
        return 13;
    int rc = reply.header.type == MSG_ERROR && reply.body.error.code == SHOAL_EACCES &&
                     strstr(reply.body.error.message, "uid 65534") != NULL
                 ? 0
                 : 14;
    msg_fini(&reply);
    /* and nothing more: the node closed the connection */
    if (rc == 0 && (poll(&pfd, 1, WAIT_MS) <= 0 || recv(fd, buf, sizeof buf, 0) != 0))
        rc = 15;
    close(fd);
    return rc;
}

Test(node_local, a_uid_outside_the_group_is_refused)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to run a peer as another uid");
    char group[16];
    snprintf(group, sizeof group, "%d", FOREIGN_G);
    s_start(group);
    struct stat st;
    cr_assert_eq(stat(s_node.socket, &st), 0);
    cr_assert_eq(st.st_gid, FOREIGN_G, "the socket belongs to --local-group");
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(s_child_as_nobody());
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw exit %d",
              WEXITSTATUS(status));
    cr_assert_eq(s_counter("local_refused"), 1);
    cr_assert_eq(s_counter("local_connections"), 0);
    /* root is admitted */
    int sock = s_local_connect();
    msg_t hello;
    s_hello(sock, &hello);
    cr_assert_eq(hello.header.type, MSG_LOCAL_HELLO_REP);
    msg_fini(&hello);
    close(sock);
}

Test(node_local, garbage_gets_an_error_and_the_node_stays_up)
{
    s_start(NULL);
    int sock = s_local_connect();
    msg_t reply;
    int none[MSG_LOCATE_FDS_MAX];
    /* random bytes */
    uint8_t junk[300];
    tp_fill_pattern(junk, sizeof junk, 99);
    cr_assert_eq(s_local_send_raw(sock, junk, sizeof junk, NULL, 0), (ssize_t)sizeof junk);
    cr_assert_eq(s_local_recv(sock, &reply, none, NULL), 0);
    cr_assert_eq(reply.header.type, MSG_ERROR);
    cr_assert_eq(reply.body.error.code, SHOAL_EPROTO);
    msg_fini(&reply);
    /* a well-formed message that is not a local request (a READ) */
    msg_t request;
    msg_read_request(&request, 5, 0, "file:///x", "", 0, 1, 0);
    msg_buf_t buf;
    msg_buf_init(&buf);
    cr_assert_eq(msg_encode(&request, &buf), 0);
    cr_assert_eq(s_local_send_raw(sock, buf.data, buf.len, NULL, 0), (ssize_t)buf.len);
    cr_assert_eq(s_local_recv(sock, &reply, none, NULL), 0);
    cr_assert_eq(reply.header.type, MSG_ERROR);
    cr_assert_eq(reply.body.error.code, SHOAL_EPROTO);
    cr_assert_eq(reply.header.request_id, 5, "the request id is echoed");
    msg_fini(&reply);
    /* a LOCATE with a length over 64 MiB: the codec refuses it */
    msg_header_t h = {.type = MSG_LOCATE_REQ, .request_id = 6};
    cr_assert_eq(msg_header_encode(&h, &buf), 0);
    mp_write_map(&buf, 3);
    mp_write_uint(&buf, 1), mp_write_cstr(&buf, "file:///x");
    mp_write_uint(&buf, 3), mp_write_uint(&buf, 0);
    mp_write_uint(&buf, 4), mp_write_uint(&buf, (64u << 20) + 1);
    cr_assert_eq(s_local_send_raw(sock, buf.data, buf.len, NULL, 0), (ssize_t)buf.len);
    cr_assert_eq(s_local_recv(sock, &reply, none, NULL), 0);
    cr_assert_eq(reply.body.error.code, SHOAL_EPROTO);
    cr_assert_eq(reply.header.request_id, 6);
    msg_fini(&reply);
    /* descriptors sent to the node are closed unread: the pipe's write end it got goes away */
    int pipe_fds[2];
    cr_assert_eq(pipe(pipe_fds), 0);
    msg_init(&request, MSG_LOCAL_HELLO_REQ, 7, 0);
    cr_assert_eq(msg_encode(&request, &buf), 0);
    cr_assert_eq(s_local_send_raw(sock, buf.data, buf.len, &pipe_fds[1], 1), (ssize_t)buf.len);
    close(pipe_fds[1]);
    cr_assert_eq(s_local_recv(sock, &reply, none, NULL), 0);
    cr_assert_eq(reply.header.type, MSG_LOCAL_HELLO_REP, "the request itself is answered");
    msg_fini(&reply);
    struct pollfd pfd = {.fd = pipe_fds[0], .events = POLLIN};
    cr_assert_gt(poll(&pfd, 1, WAIT_MS), 0);
    char byte;
    cr_assert_eq(read(pipe_fds[0], &byte, 1), 0, "the node still holds the passed descriptor");
    close(pipe_fds[0]);
    /* a datagram over 256 KiB, when the socket buffer lets one through */
    size_t big_len = MSG_LOCAL_DATAGRAM_MAX + 4096;
    int sndbuf = (int)(2 * big_len);
    (void)setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
    uint8_t *big = calloc(1, big_len);
    if (s_local_send_raw(sock, big, big_len, NULL, 0) == (ssize_t)big_len) {
        cr_assert_eq(s_local_recv(sock, &reply, none, NULL), 0);
        cr_assert_eq(reply.body.error.code, SHOAL_EMSGSIZE);
        msg_fini(&reply);
    } else {
        cr_log_info("a %zu-byte datagram does not fit the socket buffer here: %s", big_len,
                    strerror(errno));
    }
    free(big);
    msg_buf_fini(&buf);
    /* the node is up and the connection still answers */
    cr_assert(tp_alive(&s_node.proc));
    s_hello(sock, &reply);
    cr_assert_eq(reply.header.type, MSG_LOCAL_HELLO_REP);
    msg_fini(&reply);
    cr_assert_geq(s_counter("malformed_requests"), 3);
    close(sock);
}

Test(node_local, connections_are_bounded)
{
    s_start(NULL);
    enum { N = 256 };
    int socks[N];
    for (int i = 0; i < N; i++) {
        socks[i] = s_local_connect();
        msg_t hello;
        s_hello(socks[i], &hello); /* admitted and served */
        cr_assert_eq(hello.header.type, MSG_LOCAL_HELLO_REP);
        msg_fini(&hello);
    }
    int extra = s_local_connect();
    msg_t reply;
    int none[MSG_LOCATE_FDS_MAX];
    cr_assert_eq(s_local_recv(extra, &reply, none, NULL), 0, "the 257th is told, not left hanging");
    cr_assert_eq(reply.header.type, MSG_ERROR);
    cr_assert_eq(reply.body.error.code, SHOAL_EBUSY);
    msg_fini(&reply);
    close(extra);
    close(socks[0]); /* a slot comes back once its thread has ended */
    int64_t deadline = tp_now_ms() + 10000;
    bool served = false;
    while (!served && tp_now_ms() < deadline) {
        int again = s_local_connect();
        msg_t request;
        msg_init(&request, MSG_LOCAL_HELLO_REQ, 0, 0);
        msg_buf_t buf;
        msg_buf_init(&buf);
        cr_assert_eq(msg_encode(&request, &buf), 0);
        (void)s_local_send_raw(again, buf.data, buf.len, NULL, 0);
        msg_buf_fini(&buf);
        if (s_local_recv(again, &reply, none, NULL) == 0) {
            served = reply.header.type == MSG_LOCAL_HELLO_REP;
            msg_fini(&reply);
        }
        close(again);
        if (!served)
            usleep(10000);
    }
    cr_assert(served, "a freed slot serves a new connection");
    for (int i = 1; i < N; i++)
        close(socks[i]);
    cr_assert_geq(s_counter("local_refused"), 1);
}

/* A generation dropped under the quota while a connection holds its descriptor: the next
 * LOCATE names it in `gone`, and the held descriptor now reads short (its file was cut), so a
 * client can only miss, never read wrong bytes; the disk space is back. */
Test(node_local, dropped_generations_are_gone_and_cut)
{
    s_capacity = "4M"; /* 16 pages in 8 generations of 2 */
    s_start(NULL);
    s_capacity = "256M";
    char uri[TP_PATH_MAX], churn_uri[TP_PATH_MAX];
    uint8_t *file = s_make_file("first.bin", PAGE, 21, uri, sizeof uri);
    const uint64_t churn_size = 40 * (uint64_t)PAGE;
    uint8_t *churn = s_make_file("churn.bin", churn_size, 22, churn_uri, sizeof churn_uri);
    s_warm(uri, 0, PAGE);
    int sock = s_local_connect();
    msg_t reply;
    int fds[MSG_LOCATE_FDS_MAX];
    size_t fd_count = 0;
    s_locate(sock, uri, "", 0, PAGE, &reply, fds, &fd_count);
    cr_assert_eq(reply.header.type, MSG_LOCATE_REP);
    cr_assert_eq(reply.body.locate_reply.page_count, 1);
    cr_assert_eq(fd_count, 1);
    uint64_t gen = reply.body.locate_reply.pages[0].gen;
    s_check_page(&reply.body.locate_reply.pages[0], fds[0], file, PAGE);
    msg_local_page_t held = reply.body.locate_reply.pages[0];
    held.sums = NULL;
    msg_fini(&reply);
    for (uint64_t at = 0; at < churn_size; at += 8 * (uint64_t)PAGE)
        s_warm(churn_uri, at, 8 * (uint64_t)PAGE); /* 40 pages through a 16-page quota */
    cr_assert_gt(s_counter("evictions"), 0);
    s_locate(sock, churn_uri, "", 0, PAGE, &reply, NULL, NULL); /* any LOCATE reports gone */
    cr_assert_eq(reply.header.type, MSG_LOCATE_REP);
    bool named = false;
    for (uint32_t i = 0; i < reply.body.locate_reply.gone_count; i++)
        named = named || reply.body.locate_reply.gone_gens[i] == gen;
    cr_assert(named, "generation %llu is not named gone", (unsigned long long)gen);
    msg_fini(&reply);
    struct stat st;
    cr_assert_eq(fstat(fds[0], &st), 0);
    cr_assert_eq(st.st_size, 0, "the dropped generation's file is cut");
    cr_assert_eq(st.st_blocks, 0, "its disk space is back under the held descriptor");
    uint8_t byte;
    cr_assert_eq(pread(fds[0], &byte, 1, (off_t)held.offset), 0, "a held descriptor reads short");
    /* and the page itself is a miss now (or, promoted, in a live generation) */
    s_locate(sock, uri, "", 0, PAGE, &reply, NULL, NULL);
    cr_assert_eq(reply.header.type, MSG_LOCATE_REP);
    for (uint32_t i = 0; i < reply.body.locate_reply.page_count; i++)
        cr_assert_neq(reply.body.locate_reply.pages[i].gen, gen);
    msg_fini(&reply);
    close(fds[0]);
    close(sock);
    free(file);
    free(churn);
}

Test(node_local, stop_removes_the_socket)
{
    s_start(NULL);
    int sock = s_local_connect(); /* a connection open at the stop does not hold it up */
    msg_t hello;
    s_hello(sock, &hello);
    msg_fini(&hello);
    int status = tp_stop(&s_node.proc, 10000);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "shoald stopped with status %d",
              status);
    struct stat st;
    cr_assert_neq(stat(s_node.socket, &st), 0, "the socket path is unlinked at the stop");
    char byte;
    cr_assert_leq(recv(sock, &byte, 1, 0), 0, "the connection is closed");
    close(sock);
}
