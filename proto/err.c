/*
 * err.c - names for shoal error codes and the per-thread last-error buffer.
 */
#include "shoal_err.h"

#include <stdarg.h>
#include <stdio.h>

/* 512 bytes holds a URL plus a status line; longer messages are truncated, never overflowed. */
static _Thread_local char s_last_error[512];

const char *shoal_strerror(int code)
{
    switch (code) {
    case SHOAL_OK:
        return "success";
    case SHOAL_ENOENT:
        return "not found";
    case SHOAL_EACCES:
        return "access denied";
    case SHOAL_EIO:
        return "I/O error at the under storage";
    case SHOAL_ETIMEDOUT:
        return "timed out";
    case SHOAL_EBUSY:
        return "busy";
    case SHOAL_EINVAL:
        return "invalid argument or bad request";
    case SHOAL_EPROTO:
        return "protocol error";
    case SHOAL_ESTALE:
        return "stale version: the file changed";
    case SHOAL_ENOMEM:
        return "out of memory";
    case SHOAL_ENOSPC:
        return "no space left in the cache";
    case SHOAL_EISDIR:
        return "is a directory";
    case SHOAL_EROFS:
        return "read-only: shoal does not write";
    case SHOAL_ECORRUPT:
        return "checksum mismatch";
    case SHOAL_EMSGSIZE:
        return "message too large";
    case SHOAL_ENOTSUP:
        return "not supported";
    case SHOAL_EUNAVAIL:
        return "no node available";
    case SHOAL_ECONFIG:
        return "cluster settings mismatch";
    case SHOAL_ECANCELED:
        return "cancelled";
    case SHOAL_EINTERNAL:
        return "internal error";
    default:
        return "unknown error";
    }
}

const char *shoal_last_error(void)
{
    return s_last_error;
}

int shoal_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s_last_error, sizeof s_last_error, fmt, ap);
    va_end(ap);
    return code;
}

void shoal_clear_error(void)
{
    s_last_error[0] = '\0';
}
