/*
 * ufs_hf.c - placeholder until the hf:// connector lands.
 */
#include "ufs_conn.h"

#include <stdlib.h>

static void *s_hf_init(ufs_t *ufs, const ufs_options_t *options)
{
    (void)ufs, (void)options;
    shoal_fail(SHOAL_ENOTSUP, "hf:// is not written yet");
    return NULL;
}

static void s_hf_fini(void *state)
{
    free(state);
}

static int s_hf_stat(void *state, const char *uri, ufs_stat_t *out)
{
    (void)state, (void)uri, (void)out;
    return SHOAL_ENOTSUP;
}

static int s_hf_list(void *state, const char *uri, bool recursive, ufs_list_t *out)
{
    (void)state, (void)uri, (void)recursive, (void)out;
    return SHOAL_ENOTSUP;
}

static int64_t s_hf_read(void *state, const char *uri, const char *version, uint64_t offset,
                         void *buf, size_t length)
{
    (void)state, (void)uri, (void)version, (void)offset, (void)buf, (void)length;
    return SHOAL_ENOTSUP;
}

const ufs_connector_t ufs_hf_connector = {
    .scheme = "hf", .init = s_hf_init, .fini = s_hf_fini,
    .stat = s_hf_stat, .list = s_hf_list, .read = s_hf_read,
};
