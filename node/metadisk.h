/*
 * metadisk.h - file metadata kept on the node's disk beside the pages (the page store's
 * metadata records), so that a restarted node knows which version its held pages are of and
 * serves them without asking the UFS first. Read back only on a miss of the memory cache
 * (meta.h), as never-fresh metadata: a READ serves the held pages while one background
 * revalidation asks the UFS, a STAT asks the UFS.
 */
#ifndef SHOAL_NODE_METADISK_H
#define SHOAL_NODE_METADISK_H

#include <stdbool.h>

#include "pagestore.h"
#include "ufs.h"

/* Writes the record of normalised `uri`: size, mtime and version of `stat` (a file, not a
 * directory; directories are not recorded). A failed write is only logged at debug level: the
 * record is an optimisation of the restart, never needed for correctness. Borrows all. */
void metadisk_put(pagestore_t *store, const char *uri, const ufs_stat_t *stat);

/* Reads the record of `uri` into *out. Returns true when there is a well-formed record; a
 * malformed one is deleted and false returned. Borrows all. */
bool metadisk_get(pagestore_t *store, const char *uri, ufs_stat_t *out);

/* Deletes the record of `uri` (EVICT, a file found gone). Borrows all. */
void metadisk_delete(pagestore_t *store, const char *uri);

#endif
