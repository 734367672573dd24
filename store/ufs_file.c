/*
 * ufs_hf.c - placeholder until the file:// connector lands.
 */
#include "ufs_conn.h"

#include <stdlib.h>

static void *s_file_init(ufs_t *ufs, const ufs_options_t *options)
{
    (void)ufs, (void)options;
    shoal_fail(SHOAL_ENOTSUP, "file:// is not written yet");
    return NULL;
}

static void s_file_fini(void *state)
{
    free(state);
}

static int s_file_stat(void *state, const char *uri, ufs_stat_t *out)
{
    (void)state, (void)uri, (void)out;
    return SHOAL_ENOTSUP;
}

static int s_file_list(void *state, const char *uri, bool recursive, ufs_list_t *out)
{
    (void)state, (void)uri, (void)recursive, (void)out;
    return SHOAL_ENOTSUP;
}

static int64_t s_file_read(void *state, const char *uri, const char *version, uint64_t offset,
                         void *buf, size_t length)
{
    (void)state, (void)uri, (void)version, (void)offset, (void)buf, (void)length;
    return SHOAL_ENOTSUP;
}

const ufs_connector_t ufs_file_connector = {
    .scheme = "file", .init = s_file_init, .fini = s_file_fini,
    .stat = s_file_stat, .list = s_file_list, .read = s_file_read,
};
