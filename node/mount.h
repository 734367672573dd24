/*
 * mount.h - which URIs this node may serve. A pure module (no I/O, no globals): it normalises a
 * URI into one canonical spelling and checks it against the --mount prefixes on segment
 * boundaries, so that no spelling of a path (percent-encoding, `//`, `.`, `..`) escapes a mount.
 */
#ifndef SHOAL_NODE_MOUNT_H
#define SHOAL_NODE_MOUNT_H

#include <stdbool.h>
#include <stddef.h>

#include "shoal_err.h"

#define MOUNT_URI_MAX 4096 /* longest URI, excluding the NUL (MSG_URI_MAX) */
#define MOUNT_MAX     64   /* mounts per node */

/*
 * Normal form. A URI is `scheme://authority/path`:
 *   - scheme: letters, digits, `+`, `-`, `.`, starting with a letter; lowercased.
 *   - authority: everything up to the next `/` (bucket, host:port, "" for file:///); kept as is
 *     (lowercased for http and https, whose host names are case-insensitive).
 *   - path: `%XX` escapes of unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded, other
 *     escapes are kept with upper-case hex digits; runs of `/` collapse to one; `.` segments
 *     are dropped and `..` segments remove the segment before them. A trailing `/` is kept
 *     (a directory), and the path always starts with `/` (possibly just "/").
 * Refused (SHOAL_EINVAL): no "://", a bad scheme, a malformed escape, a control character
 * (0x00-0x1f, 0x7f) raw or escaped, an escaped `/` or `\` (%2F, %5C: a connector that decodes
 * them would see a different path than this check), a `?` or `#` (queries and fragments are not
 * part of a file's name here: escape them), an empty result or one over MOUNT_URI_MAX.
 * Refused (SHOAL_EACCES): a `..` that climbs above the root of the path.
 */

/* Writes the normal form of `uri` into `out` (out_len bytes incl. the NUL). When min_depth is
 * not NULL it receives the smallest number of path segments left on the stack right after a
 * `..` was applied (SIZE_MAX when there was no `..`): mount_check uses it to refuse paths that
 * go above a mount and come back. Returns 0, SHOAL_EINVAL or SHOAL_EACCES, with a last error
 * (shoal_last_error) that names the problem. Borrows everything. */
int mount_normalize(const char *uri, char *out, size_t out_len, size_t *min_depth);

/* The set of mounts of one node. Immutable after setup, so any number of threads may call
 * mount_check at once. */
typedef struct mount_table mount_table_t;

/* Returns an empty table, or NULL when out of memory. Caller owns it. */
mount_table_t *mount_table_new(void);

/* Frees *self_p and sets it to NULL; safe on NULL. */
void mount_table_destroy(mount_table_t **self_p);

/* Adds a mount prefix (normalised as above; a trailing `/` is implied: the mount covers the
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
