/*
 * ufs.c - the UFS front door: validates a URI, finds its scheme's connector and calls it; owns
 * the connector states, the options and the shared HTTP handle pool; and the listing helpers.
 */
#include "ufs_conn.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "vec.h"

/* The connectors this build has. s3 and az live on another branch until merged; cmake defines
 * SHOAL_HAVE_S3 / SHOAL_HAVE_AZ when their files exist. */
static const ufs_connector_t *const s_connectors[] = {
    &ufs_file_connector, &ufs_http_connector, &ufs_https_connector, &ufs_hf_connector,
#ifdef SHOAL_HAVE_S3
    &ufs_s3_connector,
#endif
#ifdef SHOAL_HAVE_AZ
    &ufs_az_connector,
#endif
};
#define S_CONNECTOR_COUNT (sizeof s_connectors / sizeof s_connectors[0])

struct ufs {
    ufs_options_t options;           /* defaults filled in; read-only after ufs_new */
    ufs_http_pool_t *pool;           /* reusable curl handles; fork aware */
    void *states[S_CONNECTOR_COUNT]; /* connector state by index of s_connectors; may be NULL */
    char init_error[S_CONNECTOR_COUNT][256]; /* why a state is NULL (connector init failed) */
    _Atomic uint64_t requests;               /* requests made to the stores (ufs_requests) */
};

ufs_t *ufs_new(const ufs_options_t *options)
{
    ufs_t *ufs = calloc(1, sizeof *ufs);
    if (!ufs)
        return NULL;
    if (options)
        ufs->options = *options;
    if (ufs->options.connect_timeout_ms <= 0)
        ufs->options.connect_timeout_ms = 5000;
    if (ufs->options.timeout_ms <= 0)
        ufs->options.timeout_ms = 60000;
    if (ufs->options.low_speed_ms <= 0)
        ufs->options.low_speed_ms = 10000;
    if (ufs->options.max_retries < 0)
        ufs->options.max_retries = 0; /* negative: no retries at all */
    else if (ufs->options.max_retries == 0)
        ufs->options.max_retries = 4;
    if (ufs->options.retry_base_ms <= 0)
        ufs->options.retry_base_ms = 100;
    ufs->pool = ufs_http_pool_new();
    if (!ufs->pool) {
        free(ufs);
        return NULL;
    }
    for (size_t i = 0; i < S_CONNECTOR_COUNT; i++) {
        shoal_clear_error();
        ufs->states[i] = s_connectors[i]->init(ufs, &ufs->options);
        if (!ufs->states[i])
            snprintf(ufs->init_error[i], sizeof ufs->init_error[i], "%s", shoal_last_error());
    }
    shoal_clear_error();
    return ufs;
}

void ufs_destroy(ufs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ufs_t *ufs = *self_p;
    for (size_t i = 0; i < S_CONNECTOR_COUNT; i++)
        if (ufs->states[i])
            s_connectors[i]->fini(ufs->states[i]);
    ufs_http_pool_destroy(&ufs->pool);
    free(ufs);
    *self_p = NULL;
}

const ufs_options_t *ufs_options(const ufs_t *ufs)
{
    return &ufs->options;
}

void ufs_requests_add(ufs_t *ufs, uint64_t n)
{
    atomic_fetch_add_explicit(&ufs->requests, n, memory_order_relaxed);
}

uint64_t ufs_requests(const ufs_t *ufs)
{
    return atomic_load_explicit(&((ufs_t *)ufs)->requests, memory_order_relaxed);
}

ufs_http_pool_t *ufs_http_pool_of(ufs_t *ufs)
{
    return ufs->pool;
}

int ufs_uri_check(const char *uri)
{
    if (!uri)
        return ufs_fail(SHOAL_EINVAL, "uri is NULL");
    size_t len = strnlen(uri, UFS_URI_MAX + 1);
    if (len == 0)
        return ufs_fail(SHOAL_EINVAL, "uri is empty");
    if (len > UFS_URI_MAX)
        return ufs_fail(SHOAL_EINVAL, "uri longer than %d bytes", UFS_URI_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)uri[i];
        if (c < 0x20 || c == 0x7f)
            return ufs_fail(SHOAL_EINVAL, "uri has a control character at byte %zu", i);
    }
    return 0;
}

int ufs_uri_scheme(const char *uri, char *out, size_t out_len)
{
    size_t i = 0;
    /* RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://" for every scheme here. */
    while (uri[i] &&
           (isalnum((unsigned char)uri[i]) || uri[i] == '+' || uri[i] == '-' || uri[i] == '.')) {
        if (i + 1 >= out_len)
            return ufs_fail(SHOAL_EINVAL, "uri scheme too long: %.40s", uri);
        out[i] = (char)tolower((unsigned char)uri[i]);
        i++;
    }
    out[i] = '\0';
    if (i == 0 || !isalpha((unsigned char)uri[0]) || strncmp(uri + i, "://", 3) != 0)
        return ufs_fail(SHOAL_EINVAL, "uri has no scheme:// prefix: %.200s", uri);
    return 0;
}

/* Finds the connector for `uri` after validating it. Returns 0 with *index set, or an error:
 * EINVAL for a malformed uri, ENOTSUP for an unknown scheme or one whose init failed. */
static int s_dispatch(ufs_t *ufs, const char *uri, size_t *index)
{
    int rc = ufs_uri_check(uri);
    if (rc < 0)
        return rc;
    char scheme[16];
    rc = ufs_uri_scheme(uri, scheme, sizeof scheme);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < S_CONNECTOR_COUNT; i++) {
        if (strcmp(s_connectors[i]->scheme, scheme) != 0)
            continue;
        if (!ufs->states[i])
            return ufs_fail(SHOAL_ENOTSUP, "%s:// is not available: %s", scheme,
                            ufs->init_error[i]);
        *index = i;
        return 0;
    }
    return ufs_fail(SHOAL_ENOTSUP, "no connector for scheme %s:// (uri %.200s)", scheme, uri);
}

int ufs_stat(ufs_t *ufs, const char *uri, ufs_stat_t *out)
{
    size_t i;
    int rc = s_dispatch(ufs, uri, &i);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof *out);
    return s_connectors[i]->stat(ufs->states[i], uri, out);
}

int ufs_list(ufs_t *ufs, const char *uri, bool recursive, ufs_list_t *out)
{
    size_t i;
    int rc = s_dispatch(ufs, uri, &i);
    if (rc < 0)
        return rc;
    rc = s_connectors[i]->list(ufs->states[i], uri, recursive, out);
    ufs_list_sort(out);
    return rc;
}

int64_t ufs_read(ufs_t *ufs, const char *uri, const char *version, uint64_t offset, void *buf,
                 size_t length)
{
    return ufs_read_progress(ufs, uri, version, offset, buf, length, NULL);
}

int64_t ufs_read_progress(ufs_t *ufs, const char *uri, const char *version, uint64_t offset,
                          void *buf, size_t length, const ufs_progress_t *progress)
{
    return ufs_read_stat(ufs, uri, version, offset, buf, length, progress, NULL);
}

/* A read of 0 bytes asks nothing of the connector's read: one stat gives what stat_out wants,
 * and the version is checked as a read would (a directory is SHOAL_EISDIR). */
static int64_t s_read_nothing(ufs_t *ufs, size_t i, const char *uri, const char *version,
                              ufs_stat_t *stat_out)
{
    int rc = s_connectors[i]->stat(ufs->states[i], uri, stat_out);
    if (rc == 0 && stat_out->is_dir)
        rc = ufs_fail(SHOAL_EISDIR, "read of %s: a directory", uri);
    if (rc == 0 && version && strcmp(version, stat_out->version) != 0)
        rc = ufs_fail(SHOAL_ESTALE, "read of %s: version is %s, not %s", uri, stat_out->version,
                      version);
    return rc;
}

int64_t ufs_read_stat(ufs_t *ufs, const char *uri, const char *version, uint64_t offset, void *buf,
                      size_t length, const ufs_progress_t *progress, ufs_stat_t *stat_out)
{
    ufs_stat_t scratch;
    ufs_stat_t *out = stat_out ? stat_out : &scratch;
    memset(out, 0, sizeof *out);
    size_t i;
    int rc = s_dispatch(ufs, uri, &i);
    if (rc < 0)
        return rc;
    if (!buf && length > 0)
        return ufs_fail(SHOAL_EINVAL, "read of %s: buffer is NULL", uri);
    if (length > INT64_MAX)
        length = INT64_MAX;
    if (version && !version[0])
        version = NULL;
    if (progress && !progress->fn)
        progress = NULL;
    int64_t result;
    if (!stat_out && offset > INT64_MAX)
        result = 0; /* as before: nothing to read there and nothing to report */
    else if (length == 0 && stat_out)
        result = s_read_nothing(ufs, i, uri, version, out);
    else
        result = s_connectors[i]->read(ufs->states[i], uri, version,
                                       offset > INT64_MAX ? INT64_MAX : offset, buf, length,
                                       progress, out);
    if (result < 0)
        memset(out, 0, sizeof *out);
    return result;
}

/* ---- listings ---------------------------------------------------------------------------- */

void ufs_list_init(ufs_list_t *list)
{
    memset(list, 0, sizeof *list);
}

void ufs_list_fini(ufs_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->entries[i].uri);
    free(list->entries);
    memset(list, 0, sizeof *list);
}

int ufs_list_push(ufs_list_t *list, const char *uri, const ufs_stat_t *stat)
{
    /* proto's growth (vec.h); ufs_list_t keeps its own public field names */
    if (list->count == list->capacity &&
        vec_grow_raw(&list->entries, &list->capacity, list->count, 1, sizeof *list->entries) < 0)
        return ufs_fail(SHOAL_ENOMEM, "listing: out of memory at %zu entries", list->count);
    char *copy = strdup(uri);
    if (!copy)
        return ufs_fail(SHOAL_ENOMEM, "listing: out of memory");
    ufs_entry_t *entry = &list->entries[list->count++];
    entry->uri = copy;
    entry->stat = *stat;
    return 0;
}

static int s_entry_compare(const void *a, const void *b)
{
    return strcmp(((const ufs_entry_t *)a)->uri, ((const ufs_entry_t *)b)->uri);
}

void ufs_list_sort(ufs_list_t *list)
{
    if (list->count > 1)
        qsort(list->entries, list->count, sizeof *list->entries, s_entry_compare);
}
