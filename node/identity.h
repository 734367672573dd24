/*
 * identity.h - who this node is across restarts: a node id of 16 random bytes created once and
 * an incarnation number bumped at every start, both kept in the page store's state records.
 */
#ifndef SHOAL_NODE_IDENTITY_H
#define SHOAL_NODE_IDENTITY_H

#include <stdint.h>

#include "pagestore.h"
#include "proto.h"

/* Reads the node id (creating and storing a random one the first time) and the incarnation,
 * stores incarnation + 1 durably, and returns the new one in *incarnation. Returns 0 or the
 * store's error (SHOAL_EIO, SHOAL_ENOSPC, SHOAL_ENOMEM); a corrupt record is replaced by a new
 * identity (logged). Borrows the store. */
int identity_load(pagestore_t *store, uint8_t id[MSG_NODE_ID_SIZE], uint64_t *incarnation);

/* Stores `incarnation` as the last one used (fsync'd), if it is higher than the stored one,
 * so the next start begins above everything this run announced (refutations, leave). Returns
 * 0 or the store's error. Borrows the store. */
int identity_save_incarnation(pagestore_t *store, uint64_t incarnation);

#endif
