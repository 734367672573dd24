/*
 * hostid.h - the host id: one string naming the machine (or container host) a process runs on,
 * the same for every process there, so a client can tell which nodes share its host. The
 * endpoint IP cannot: behind NAT, in pods and on one host running several nodes it misleads.
 * Nodes advertise it in the view (gossip records, VIEW_REP key 9); clients compare it with
 * their own.
 */
#ifndef SHOAL_PROTO_HOSTID_H
#define SHOAL_PROTO_HOSTID_H

#include <stddef.h>

#define HOST_ID_MAX 128 /* bytes of a host id, excluding the NUL (as on the wire) */

/*
 * Writes this host's id into `out` (`size` bytes, caller owns it; at least HOST_ID_MAX + 1 to
 * never cut one), NUL-terminated: the first non-empty of, in order,
 *   1. $SHOAL_HOST_ID (for pods and tests: set the same value in every container of a host),
 *   2. /etc/machine-id (systemd; stable across reboots),
 *   3. /proc/sys/kernel/random/boot_id (Linux; changes at each boot),
 *   4. the host name (gethostname),
 * with leading and trailing whitespace trimmed and cut to HOST_ID_MAX bytes (and to size - 1).
 * Bytes below 0x20 inside a value (a NUL, a newline) end it there, so the result is one line.
 * Reads the files each call (a process that wants one value keeps the first).
 * Returns 0, or SHOAL_EINVAL when out is NULL or size is 0, or SHOAL_ENOENT when every
 * source is empty (out is then "").
 */
int host_id_get(char *out, size_t size);

#endif
