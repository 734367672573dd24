/*
 * testproc.c - process, port, temp-dir and server helpers for tests (see testproc.h). Written
 * for tests: failures print one line to stderr and return -1; nothing here aborts.
 */
#define _GNU_SOURCE
#include "testproc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"

#ifndef TP_SUPPORT_DIR
#define TP_SUPPORT_DIR "tests/support"
#endif

int64_t tp_now_ms(void)
{
    return clock_mono_ms();
}

/* Sleeps a few milliseconds between two polls of a condition (never as synchronisation). */
static void s_poll_pause(void)
{
    struct timespec pause = clock_timespec(5 * CLOCK_NS_PER_MS);
    nanosleep(&pause, NULL);
}

int tp_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof addr;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &addr_len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

char *tp_tempdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char path[TP_PATH_MAX];
    snprintf(path, sizeof path, "%s/shoal-%s-XXXXXX", base && base[0] ? base : "/tmp", tag);
    if (!mkdtemp(path)) {
        fprintf(stderr, "tp_tempdir: mkdtemp %s: %s\n", path, strerror(errno));
        return NULL;
    }
    return strdup(path);
}

/* Removes everything inside the open directory dir_fd, then nothing else. */
static int s_rmtree_at(int dir_fd)
{
    DIR *dir = fdopendir(dir_fd);
    if (!dir) {
        close(dir_fd);
        return -1;
    }
    int rc = 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = -1;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            int child =
                openat(dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (child < 0 || s_rmtree_at(child) != 0)
                rc = -1;
            if (unlinkat(dirfd(dir), entry->d_name, AT_REMOVEDIR) != 0)
                rc = -1;
        } else if (unlinkat(dirfd(dir), entry->d_name, 0) != 0) {
            rc = -1;
        }
    }
    closedir(dir);
    return rc;
}

int tp_rmtree(const char *path)
{
    if (!path)
        return 0;
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || s_rmtree_at(fd) != 0)
        return -1;
    return rmdir(path);
}

int tp_mkdirs(const char *path, mode_t mode)
{
    char buf[TP_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, mode) == 0 || errno == EEXIST ? 0 : -1;
}

int tp_write_file(const char *path, const void *data, size_t len)
{
    char dir[TP_PATH_MAX], temp[TP_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (tp_mkdirs(dir, 0755) != 0)
            return -1;
    }
    snprintf(temp, sizeof temp, "%s.tmp-%d", path, (int)getpid());
    int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            unlink(temp);
            return -1;
        }
        p += n;
        left -= (size_t)n;
    }
    if (close(fd) != 0 || rename(temp, path) != 0) {
        unlink(temp);
        return -1;
    }
    return 0;
}

char *tp_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    msg_buf_t buf; /* proto's byte buffer; its bytes become the caller's */
    msg_buf_init(&buf);
    for (;;) {
        if (!msg_buf_reserve(&buf, 4096 + 1)) /* + 1: room for the NUL */
            break;
        size_t n = fread(buf.data + buf.len, 1, 4096, f);
        buf.len += n;
        if (n < 4096)
            break;
    }
    fclose(f);
    if (buf.err != 0) {
        msg_buf_fini(&buf);
        return NULL;
    }
    buf.data[buf.len] = '\0';
    if (len)
        *len = buf.len;
    return (char *)buf.data;
}

void tp_fill_pattern(void *buf, size_t len, uint64_t seed)
{
    unsigned char *p = buf;
    uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < len; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        p[i] = (unsigned char)(state >> 24);
    }
}

/* ---- processes --------------------------------------------------------------------------- */

int tp_spawn(tp_proc_t *proc, const char *const argv[], const char *log_path)
{
    memset(proc, 0, sizeof *proc);
    snprintf(proc->log_path, sizeof proc->log_path, "%s", log_path);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "tp_spawn %s: fork: %s\n", argv[0], strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the test died before prctl took effect */
            _exit(127);
        int null_fd = open("/dev/null", O_RDONLY);
        int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (null_fd < 0 || log_fd < 0)
            _exit(126);
        dup2(null_fd, 0);
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        execvp(argv[0], (char *const *)argv);
        dprintf(2, "tp_spawn: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* also in the parent: no window where kill(-pid) misses */
    proc->pid = pid;
    return 0;
}

bool tp_alive(tp_proc_t *proc)
{
    if (proc->pid <= 0)
        return false;
    int status;
    pid_t r = waitpid(proc->pid, &status, WNOHANG);
    if (r == proc->pid || (r < 0 && errno == ECHILD)) {
        kill(-proc->pid, SIGKILL); /* leftovers of its group */
        proc->pid = 0;
        return false;
    }
    return true;
}

int tp_stop(tp_proc_t *proc, int timeout_ms)
{
    if (proc->pid <= 0)
        return -1;
    int status = -1;
    kill(-proc->pid, SIGTERM);
    int64_t deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(proc->pid, &status, WNOHANG);
        if (r == proc->pid || (r < 0 && errno != EINTR))
            break;
        if (clock_mono_ms() >= deadline) {
            kill(-proc->pid, SIGKILL);
            waitpid(proc->pid, &status, 0);
            break;
        }
        s_poll_pause();
    }
    kill(-proc->pid, SIGKILL); /* workers that outlived their master */
    proc->pid = 0;
    return status;
}

/* Connects to 127.0.0.1:port with a short timeout. Returns the socket or -1. */
static int s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tp_wait_port(int port, int timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    do {
        int fd = s_connect(port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        s_poll_pause();
    } while (clock_mono_ms() < deadline);
    return -1;
}

int tp_wait_http(int port, const char *path, int timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    do {
        int fd = s_connect(port);
        if (fd >= 0) {
            char request[512], reply[16] = {0};
            int n = snprintf(request, sizeof request, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
                             path);
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (write(fd, request, (size_t)n) == n && poll(&pfd, 1, 1000) == 1 &&
                read(fd, reply, 5) == 5 && memcmp(reply, "HTTP/", 5) == 0) {
                close(fd);
                return 0;
            }
            close(fd);
        }
        s_poll_pause();
    } while (clock_mono_ms() < deadline);
    return -1;
}

long tp_count_lines(const char *path, const char *needle)
{
    size_t len;
    char *text = tp_read_file(path, &len);
    if (!text)
        return 0;
    long count = 0;
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (!needle || strstr(line, needle))
            count++;
        if (!end)
            break;
        line = end + 1;
    }
    free(text);
    return count;
}

long tp_wait_lines(const char *path, const char *needle, long at_least, int timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    long count;
    while ((count = tp_count_lines(path, needle)) < at_least && clock_mono_ms() < deadline)
        s_poll_pause();
    return count;
}

int tp_log_sync(const tp_server_t *server, int timeout_ms)
{
    static int s_sync_count;
    char path[64], needle[80];
    snprintf(path, sizeof path, "/tp-log-sync/%d-%d", (int)getpid(), ++s_sync_count);
    snprintf(needle, sizeof needle, "%s ", path); /* "-1 " must not match "-10 " */
    if (tp_wait_http(server->port, path, timeout_ms) != 0)
        return -1;
    return tp_wait_lines(server->access_log, needle, 1, timeout_ms) >= 1 ? 0 : -1;
}

long tp_count_synced(const tp_server_t *server, const char *needle)
{
    if (tp_log_sync(server, 5000) != 0) {
        fprintf(stderr, "tp_count_synced: no sentinel line in %s\n", server->access_log);
        return -1;
    }
    return tp_count_lines(server->access_log, needle);
}

/* ---- servers ----------------------------------------------------------------------------- */

/* Prints the tail of a server's log when it failed to start. */
static void s_dump_log(const char *path)
{
    size_t len;
    char *text = tp_read_file(path, &len);
    if (text) {
        fprintf(stderr, "---- %s\n%s\n----\n", path, len > 4000 ? text + len - 4000 : text);
        free(text);
    }
}

void tp_server_stop(tp_server_t *server)
{
    if (!server)
        return;
    tp_stop(&server->proc, 5000);
    if (server->dir) {
        tp_rmtree(server->dir);
        free(server->dir);
    }
    memset(server, 0, sizeof *server);
}

/* Common start: temp dir, port, access log path. */
static int s_server_prepare(tp_server_t *server, const char *tag)
{
    memset(server, 0, sizeof *server);
    server->dir = tp_tempdir(tag);
    server->port = tp_free_port();
    if (!server->dir || server->port < 0)
        return -1;
    snprintf(server->access_log, sizeof server->access_log, "%s/access.log", server->dir);
    snprintf(server->base_url, sizeof server->base_url, "http://127.0.0.1:%d", server->port);
    return 0;
}

int tp_nginx_start(tp_server_t *server, const char *root, const char *server_extra)
{
    if (s_server_prepare(server, "nginx") != 0)
        goto fail;
    char conf_path[TP_PATH_MAX], error_log[TP_PATH_MAX], out_log[TP_PATH_MAX];
    snprintf(conf_path, sizeof conf_path, "%s/nginx.conf", server->dir);
    snprintf(error_log, sizeof error_log, "%s/error.log", server->dir);
    snprintf(out_log, sizeof out_log, "%s/stdout.log", server->dir);
    const char *d = server->dir;
    size_t conf_cap = 16384 + (server_extra ? strlen(server_extra) : 0);
    char *conf = malloc(conf_cap);
    if (!conf)
        goto fail;
    int n = snprintf(conf, conf_cap,
                     "user root;\n"
                     "worker_processes 1;\n"
                     "pid %s/nginx.pid;\n"
                     "error_log %s info;\n"
                     "events { worker_connections 256; }\n"
                     "http {\n"
                     "  log_format shoal '$request_method $request_uri $status "
                     "range=$http_range conn=$connection sent=$body_bytes_sent';\n"
                     "  access_log %s/access.log shoal;\n"
                     "  client_body_temp_path %s/body;\n"
                     "  proxy_temp_path %s/proxy;\n"
                     "  fastcgi_temp_path %s/fastcgi;\n"
                     "  uwsgi_temp_path %s/uwsgi;\n"
                     "  scgi_temp_path %s/scgi;\n"
                     "  types { application/json json; }\n"
                     "  default_type application/octet-stream;\n"
                     "  keepalive_timeout 60s;\n"
                     "  server {\n"
                     "    listen 127.0.0.1:%d;\n"
                     "    root %s;\n"
                     "%s\n"
                     "  }\n"
                     "}\n",
                     d, error_log, d, d, d, d, d, d, server->port, root,
                     server_extra ? server_extra : "");
    int rc = (n > 0 && (size_t)n < conf_cap) ? tp_write_file(conf_path, conf, (size_t)n) : -1;
    free(conf);
    if (rc != 0)
        goto fail;
    const char *nginx = getenv("SHOAL_NGINX");
    const char *argv[] = {nginx && nginx[0] ? nginx : "/usr/sbin/nginx",
                          "-p",
                          d,
                          "-c",
                          conf_path,
                          "-e",
                          error_log,
                          "-g",
                          "daemon off;",
                          NULL};
    if (tp_spawn(&server->proc, argv, out_log) != 0)
        goto fail;
    if (tp_wait_http(server->port, "/", 10000) != 0 || !tp_alive(&server->proc)) {
        fprintf(stderr, "tp_nginx_start: nginx did not answer on port %d\n", server->port);
        s_dump_log(out_log);
        s_dump_log(error_log);
        goto fail;
    }
    return 0;
fail:
    tp_server_stop(server);
    return -1;
}

int tp_badhttp_start(tp_server_t *server, const char *root)
{
    if (s_server_prepare(server, "badhttp") != 0)
        goto fail;
    char out_log[TP_PATH_MAX], port[16];
    snprintf(out_log, sizeof out_log, "%s/stdout.log", server->dir);
    snprintf(port, sizeof port, "%d", server->port);
    const char *argv[] = {"python3", TP_SUPPORT_DIR "/badhttp.py", port,
                          root,      server->access_log,           NULL};
    if (tp_spawn(&server->proc, argv, out_log) != 0)
        goto fail;
    if (tp_wait_http(server->port, "/", 15000) != 0 || !tp_alive(&server->proc)) {
        fprintf(stderr, "tp_badhttp_start: no answer on port %d\n", server->port);
        s_dump_log(out_log);
        goto fail;
    }
    return 0;
fail:
    tp_server_stop(server);
    return -1;
}

int tp_origin_start(tp_server_t *server, const char *root, int delay_ms)
{
    if (s_server_prepare(server, "origin") != 0)
        goto fail;
    char out_log[TP_PATH_MAX], port[16], delay[16];
    snprintf(out_log, sizeof out_log, "%s/stdout.log", server->dir);
    snprintf(port, sizeof port, "%d", server->port);
    snprintf(delay, sizeof delay, "%d", delay_ms);
    const char *argv[] = {
        "python3", TP_SUPPORT_DIR "/origin.py", "--port", port, "--root", root, "--delay-ms", delay,
        NULL};
    if (tp_spawn(&server->proc, argv, out_log) != 0)
        goto fail;
    if (tp_wait_http(server->port, "/_counts", 15000) != 0 || !tp_alive(&server->proc)) {
        fprintf(stderr, "tp_origin_start: no answer on port %d\n", server->port);
        s_dump_log(out_log);
        goto fail;
    }
    return 0;
fail:
    tp_server_stop(server);
    return -1;
}

/* One HTTP/1.0 exchange with 127.0.0.1:port: sends `request`, reads the reply until the server
 * closes (at most out_len - 1 bytes, NUL-terminated). Returns the status, or -1. */
static int s_http_exchange(int port, const char *request, char *out, size_t out_len)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval timeout = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    size_t len = 0, want = strlen(request);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        goto fail;
    while (len < want) {
        ssize_t n = send(fd, request + len, want - len, MSG_NOSIGNAL);
        if (n <= 0)
            goto fail;
        len += (size_t)n;
    }
    len = 0;
    for (;;) {
        ssize_t n = recv(fd, out + len, out_len - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        if (n == 0 || (len += (size_t)n) == out_len - 1)
            break;
    }
    out[len] = '\0';
    close(fd);
    int status = -1;
    return sscanf(out, "HTTP/%*s %d", &status) == 1 ? status : -1;
fail:
    close(fd);
    return -1;
}

/* The integer after "\"key\": " in text, or -1. */
static long s_json_count(const char *text, const char *key)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\": ", key);
    const char *at = strstr(text, needle);
    return at ? strtol(at + strlen(needle), NULL, 10) : -1;
}

int tp_origin_counts(const tp_server_t *server, tp_origin_counts_t *out)
{
    static const char request[] = "GET /_counts HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    char *reply = malloc(1 << 20);
    if (!reply)
        return -1;
    int status = s_http_exchange(server->port, request, reply, 1 << 20);
    char *body = status == 200 ? strstr(reply, "\r\n\r\n") : NULL;
    if (!body) {
        free(reply);
        return -1;
    }
    char *per_path = strstr(body, "\"by_path\"");
    if (per_path)
        *per_path = '\0'; /* only the top-level counts, which come first */
    *out = (tp_origin_counts_t){
        .head = s_json_count(body, "HEAD"),
        .get = s_json_count(body, "GET"),
        .head_404 = s_json_count(body, "HEAD_404"),
        .get_404 = s_json_count(body, "GET_404"),
        .head_412 = s_json_count(body, "HEAD_412"),
        .get_412 = s_json_count(body, "GET_412"),
        .get_304 = s_json_count(body, "GET_304"),
        .bytes = s_json_count(body, "bytes"),
    };
    free(reply);
    return out->head < 0 || out->get < 0 ? -1 : 0;
}

int tp_origin_reset(const tp_server_t *server)
{
    static const char request[] =
        "POST /_reset HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
    char reply[4096];
    return s_http_exchange(server->port, request, reply, sizeof reply) == 200 ? 0 : -1;
}
