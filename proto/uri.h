/*
 * uri.h - the one URI normaliser: every spelling of a name (percent-encoding of unreserved
 * bytes, `//`, `.`, `..`, scheme and http host case) becomes one canonical string, which the
 * node checks against its mounts and caches under and the client hashes to place ranges.
 * A pure module: no I/O, no globals beyond the per-thread last error.
 */
#ifndef SHOAL_PROTO_URI_H
#define SHOAL_PROTO_URI_H

#include <stdbool.h>
#include <stddef.h>

#include "shoal_err.h"

#define URI_MAX        4096 /* longest URI, excluding the NUL (MSG_URI_MAX) */
#define URI_SCHEME_MAX 32   /* longest scheme accepted ("https", "s3", "file", ...) */

/*
 * Normal form. A URI is `scheme://authority/path`:
 *   - scheme: letters, digits, `+`, `-`, `.`, starting with a letter; lowercased.
 *   - authority: everything up to the next `/` (bucket, host:port, "" for file:///); kept as is
 *     (lowercased for http and https, whose host names are case-insensitive).
 *   - path: `%XX` escapes of unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded, other
 *     escapes are kept with upper-case hex digits; runs of `/` collapse to one; `.` segments
 *     are dropped and `..` segments remove the segment before them. A trailing `/` is kept
 *     (a directory), and the path always starts with `/` (possibly just "/"). Other bytes,
 *     spaces and bytes >= 0x80 included, are kept as they came. The normal form of a normal
 *     form is itself, so a client and a node that both normalise agree.
 * Refused (SHOAL_EINVAL): no "://", a bad scheme, a malformed escape, a control character
 * (0x00-0x1f, 0x7f) raw or escaped, an escaped `/` or `\` (%2F, %5C: a connector that decodes
 * them would see a different path than this check), a `?` or `#` (queries and fragments are not
 * part of a file's name here: escape them), a bad byte in the authority (control, `?`, `#`,
 * `%`, `\`), an empty input, or a result over URI_MAX or out_len - 1.
 * Refused (SHOAL_EACCES): a `..` that climbs above the root of the path.
 */

/* Writes the normal form of `uri` into `out` (out_len bytes incl. the NUL). When min_depth is
 * not NULL it receives the smallest number of path segments left on the stack right after a
 * `..` was applied (SIZE_MAX when there was no `..`): the mount check uses it to refuse paths
 * that go above a mount and come back. Returns 0, SHOAL_EINVAL, SHOAL_EACCES or SHOAL_ENOMEM,
 * with a last error (shoal_last_error) that names the problem; on error `out` may hold a
 * partial string. Borrows everything. */
int uri_normalize(const char *uri, char *out, size_t out_len, size_t *min_depth);

#endif
