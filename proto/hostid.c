/*
 * hostid.c - the host id (hostid.h): the environment, then two files that name the machine or
 * its boot, then the host name. The only file reads in proto/: two small files, once per
 * process in practice (the node at start, the client at its first view).
 */
#include "hostid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shoal_err.h"

/* Copies the trimmed first line of `text` (len bytes) into out (size >= 1 bytes), at most
 * HOST_ID_MAX bytes. Returns the length written (0: nothing but whitespace). */
static size_t s_trim_copy(const char *text, size_t len, char *out, size_t size)
{
    size_t start = 0;
    while (start < len && (text[start] == ' ' || text[start] == '\t' || text[start] == '\n' ||
                           text[start] == '\r'))
        start++;
    size_t end = start;
    while (end < len && (unsigned char)text[end] >= 0x20 && text[end] != 0x7f)
        end++;
    while (end > start && text[end - 1] == ' ')
        end--;
    size_t n = end - start;
    if (n > HOST_ID_MAX)
        n = HOST_ID_MAX;
    if (n > size - 1)
        n = size - 1;
    memcpy(out, text + start, n);
    out[n] = '\0';
    return n;
}

/* Reads up to 512 bytes of `path` and keeps its trimmed first line. Returns its length, 0 when
 * the file is missing, unreadable or blank. */
static size_t s_from_file(const char *path, char *out, size_t size)
{
    FILE *file = fopen(path, "re");
    if (file == NULL)
        return 0;
    char text[512];
    size_t len = fread(text, 1, sizeof text, file);
    fclose(file);
    return s_trim_copy(text, len, out, size);
}

int host_id_get(char *out, size_t size)
{
    if (out == NULL || size == 0)
        return SHOAL_EINVAL;
    out[0] = '\0';
    const char *env = getenv("SHOAL_HOST_ID");
    if (env && s_trim_copy(env, strlen(env), out, size) > 0)
        return 0;
    if (s_from_file("/etc/machine-id", out, size) > 0)
        return 0;
    if (s_from_file("/proc/sys/kernel/random/boot_id", out, size) > 0)
        return 0;
    char host[256];
    if (gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = '\0';
        if (s_trim_copy(host, strlen(host), out, size) > 0)
            return 0;
    }
    return SHOAL_ENOENT;
}
