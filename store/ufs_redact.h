/*
 * ufs_redact.h - messages without secrets: URL redaction and ufs_fail, through which every
 * message of the UFS that may name a URL goes. Not for use outside store/.
 */
#ifndef SHOAL_UFS_REDACT_H
#define SHOAL_UFS_REDACT_H

#include <stddef.h>

#define UFS_ERROR_MAX 512 /* bytes of a last error (shoal_last_error's buffer) */

/* Copies `text` into out (capacity out_len, always NUL-terminated, cut to fit) with every
 * HTTP URL in it ("http(s)://..." up to whitespace, a quote or '<' '>'; a ':' or ',' ending it is
 * punctuation) made safe to log: a password in the authority becomes "<redacted>", and so does
 * the value of every query parameter except the listing parameters the connectors send
 * themselves (prefix, delimiter, marker, max-keys, comp, recursive, ...: see ufs_redact.c). So a
 * SAS token (sig, se, sp, sv...), a presigned S3 URL (X-Amz-Signature, X-Amz-Credential,
 * X-Amz-Security-Token) or any other signed query never reaches a log. Returns the length. */
size_t ufs_redact(const char *text, char *out, size_t out_len);

/* shoal_fail for the UFS: formats the message, passes it through ufs_redact, records it as the
 * last error and returns `code`. Every message of the shared HTTP layer and of the connectors
 * that may name a URL goes through here, so no connector needs its own redaction. */
int ufs_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
