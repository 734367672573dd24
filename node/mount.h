/*
 * mount.h - which URIs this node may serve. A pure module (no I/O, no globals): it normalises a
 * URI into one canonical spelling (proto's uri_normalize: see uri.h for the normal form) and
 * checks it against the --mount prefixes on segment boundaries, so that no spelling of a path
 * (percent-encoding, `//`, `.`, `..`) escapes a mount.
 */
#ifndef SHOAL_NODE_MOUNT_H
#define SHOAL_NODE_MOUNT_H

#include <stdbool.h>
#include <stddef.h>

#include "shoal_err.h"
#include "uri.h"

#define MOUNT_MAX 64 /* mounts per node */

/* The set of mounts of one node. Immutable after setup, so any number of threads may call
 * mount_check at once. */
typedef struct mount_table mount_table_t;

/* Returns an empty table, or NULL when out of memory. Caller owns it. */
mount_table_t *mount_table_new(void);

/* Frees *self_p and sets it to NULL; safe on NULL. */
void mount_table_destroy(mount_table_t **self_p);

/* Adds a mount prefix (normalised by uri_normalize; a trailing `/` is implied: the mount covers the
 * prefix itself and every path below it). Returns 0, SHOAL_EINVAL (malformed, or more than
 * MOUNT_MAX mounts), SHOAL_EACCES (a `..` above the root) or SHOAL_ENOMEM. Borrows `prefix`. */
int mount_table_add(mount_table_t *self, const char *prefix);

/* Number of mounts added. */
size_t mount_table_count(const mount_table_t *self);

/* The normal form of mount `index` (no trailing `/` unless the path is just "/"). Borrowed for
 * the table's life. */
const char *mount_table_get(const mount_table_t *self, size_t index);

/*
 * Decides whether `uri` may be served: normalises it into `out` and returns 0 when it equals a
 * mount or lies below one on a segment boundary (mount file:///data covers file:///data and
 * file:///data/x, never file:///database), and no `..` in it climbed above that mount's own
 * path (file:///data/../data/x is refused: it names the mount only by leaving it). Returns
 * SHOAL_EACCES for everything refused, malformed URIs included, with a last error that says
 * why. `out` is written only on success. Borrows everything.
 */
int mount_check(const mount_table_t *self, const char *uri, char *out, size_t out_len);

/* True when normalised `uri` is `prefix` itself or below it on a segment boundary. Both must be
 * in normal form. Pure; exported for the tests and for EVICT's recursive prefix match. */
bool mount_is_under(const char *uri, const char *prefix);

#endif
