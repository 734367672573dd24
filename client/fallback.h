/*
 * fallback.h - the client's last resort (fallback.c): stat, list and read straight from the
 * under storage with the connectors the nodes use (store/ufs.h). A leaf: it takes the UFS
 * handle, not the client.
 */
#ifndef SHOAL_CLIENT_FALLBACK_H
#define SHOAL_CLIENT_FALLBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal.h"

struct ufs;

/* The UFS connectors of a client (caller owns; free with client_ufs_destroy); NULL on failure. */
struct ufs *client_ufs_new(void);
/* Frees the connectors and sets *ufs_p to NULL; safe on NULL. */
void client_ufs_destroy(struct ufs **ufs_p);
/* Stats `uri` through `ufs` (borrowed; NULL gives SHOAL_EUNAVAIL). 0 or a negative code. */
int client_ufs_stat(struct ufs *ufs, const char *uri, shoal_stat_t *out);
/* Reads [offset, +length) of `version` into buf (caller's). Bytes read or a negative code. */
int64_t client_ufs_read(struct ufs *ufs, const char *uri, const char *version, uint64_t offset,
                        void *buf, size_t length);
/* Lists through the UFS, handing each entry to `push` (uri and stat borrowed for the call). */
typedef int (*client_list_push_fn)(void *arg, const char *uri, const shoal_stat_t *stat);
int client_ufs_list(struct ufs *ufs, const char *uri, bool recursive, client_list_push_fn push,
                    void *arg);

#endif
