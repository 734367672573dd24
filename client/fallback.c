/*
 * fallback.c - the client's last resort: stat, list and read straight from the under storage
 * with the same connectors the nodes use (store/ufs.h), when no node answers.
 */
#include <stdio.h>
#include <string.h>

#include "fallback.h"
#include "ufs.h"

struct ufs *client_ufs_new(void)
{
    return ufs_new(NULL);
}

void client_ufs_destroy(struct ufs **ufs_p)
{
    ufs_destroy(ufs_p);
}

/* Copies a UFS stat into the public struct (both versions hold 255 bytes + NUL). */
static void s_stat_copy(const ufs_stat_t *from, shoal_stat_t *to)
{
    memset(to, 0, sizeof *to);
    to->size = from->size;
    to->mtime = from->mtime;
    to->is_dir = from->is_dir;
    snprintf(to->version, sizeof to->version, "%s", from->version);
}

int client_ufs_stat(struct ufs *ufs, const char *uri, shoal_stat_t *out)
{
    if (!ufs)
        return SHOAL_EUNAVAIL;
    ufs_stat_t stat;
    int rc = ufs_stat(ufs, uri, &stat);
    if (rc == 0)
        s_stat_copy(&stat, out);
    return rc;
}

int64_t client_ufs_read(struct ufs *ufs, const char *uri, const char *version, uint64_t offset,
                        void *buf, size_t length)
{
    if (!ufs)
        return SHOAL_EUNAVAIL;
    return ufs_read(ufs, uri, version, offset, buf, length);
}

int client_ufs_list(struct ufs *ufs, const char *uri, bool recursive, client_list_push_fn push,
                    void *arg)
{
    if (!ufs)
        return SHOAL_EUNAVAIL;
    ufs_list_t list;
    ufs_list_init(&list);
    int rc = ufs_list(ufs, uri, recursive, &list);
    for (size_t i = 0; rc == 0 && i < list.count; i++) {
        shoal_stat_t stat;
        s_stat_copy(&list.entries[i].stat, &stat);
        rc = push(arg, list.entries[i].uri, &stat);
    }
    ufs_list_fini(&list);
    return rc;
}
