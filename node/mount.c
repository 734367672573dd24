/*
 * mount.c - the mount table and the mount check (see mount.h), on proto's URI normaliser
 * (uri.h). Pure string work: every refusal records a last error that names the URI and the
 * reason.
 */
#include "mount.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uri.h"

/* One mount: its normal form and how many path segments it has. */
typedef struct mount_entry {
    char *prefix; /* normal form without trailing '/' (unless the path is just "/") */
    size_t depth; /* path segments in prefix */
} mount_entry_t;

struct mount_table {
    mount_entry_t entries[MOUNT_MAX]; /* the mounts, in the order they were added */
    size_t count;                     /* entries in use */
};

mount_table_t *mount_table_new(void)
{
    return calloc(1, sizeof(mount_table_t));
}

void mount_table_destroy(mount_table_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    mount_table_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free(self->entries[i].prefix);
    free(self);
    *self_p = NULL;
}

/* Number of path segments of a normalised uri (slashes after the authority's). */
static size_t s_depth(const char *normal)
{
    const char *path = strstr(normal, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    size_t depth = 0;
    for (const char *p = path; p && *p; p++)
        if (*p == '/' && p[1] != '\0')
            depth++;
    return depth;
}

int mount_table_add(mount_table_t *self, const char *prefix)
{
    if (self == NULL || prefix == NULL)
        return shoal_fail(SHOAL_EINVAL, "mount_table_add: NULL argument");
    if (self->count == MOUNT_MAX)
        return shoal_fail(SHOAL_EINVAL, "more than %d mounts", MOUNT_MAX);
    char normal[URI_MAX + 1];
    int rc = uri_normalize(prefix, normal, sizeof normal, NULL);
    if (rc < 0)
        return rc;
    size_t len = strlen(normal);
    const char *path = strchr(strstr(normal, "://") + 3, '/');
    if (len > 1 && normal[len - 1] == '/' && path != normal + len - 1)
        normal[len - 1] = '\0'; /* keep "scheme://auth/" for a root mount */
    char *copy = strdup(normal);
    if (copy == NULL)
        return shoal_fail(SHOAL_ENOMEM, "mount_table_add: out of memory");
    self->entries[self->count].prefix = copy;
    self->entries[self->count].depth = s_depth(copy);
    self->count++;
    return 0;
}

size_t mount_table_count(const mount_table_t *self)
{
    return self ? self->count : 0;
}

const char *mount_table_get(const mount_table_t *self, size_t index)
{
    return self && index < self->count ? self->entries[index].prefix : NULL;
}

bool mount_is_under(const char *uri, const char *prefix)
{
    size_t len = strlen(prefix);
    if (len == 0 || strncmp(uri, prefix, len) != 0)
        return false;
    return prefix[len - 1] == '/' || uri[len] == '\0' || uri[len] == '/';
}

int mount_check(const mount_table_t *self, const char *uri, char *out, size_t out_len)
{
    char normal[URI_MAX + 2];
    size_t min_depth = SIZE_MAX;
    int rc = uri_normalize(uri, normal, sizeof normal, &min_depth);
    if (rc < 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", shoal_last_error());
        return shoal_fail(SHOAL_EACCES, "refused: %s", why);
    }
    for (size_t i = 0; self && i < self->count; i++) {
        const mount_entry_t *mount = &self->entries[i];
        if (!mount_is_under(normal, mount->prefix))
            continue;
        if (min_depth != SIZE_MAX && min_depth < mount->depth)
            return shoal_fail(SHOAL_EACCES, "refused: '..' climbs above mount %s: %.200s",
                              mount->prefix, uri);
        size_t len = strlen(normal);
        if (len + 1 > out_len)
            return shoal_fail(SHOAL_EACCES, "refused: uri too long: %.200s", uri);
        memcpy(out, normal, len + 1);
        return 0;
    }
    return shoal_fail(SHOAL_EACCES, "refused: not under any mount: %.200s", uri);
}
