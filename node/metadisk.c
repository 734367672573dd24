/*
 * metadisk.c - file metadata records on disk (metadisk.h): a msgpack array
 * [size uint, mtime int, version str] in the page store's metadata family, written with
 * proto's one codec and read back with its bounded reader.
 */
#include "metadisk.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "mp.h"

#define METADISK_FIELDS 3 /* size, mtime, version */

void metadisk_put(pagestore_t *store, const char *uri, const ufs_stat_t *stat)
{
    if (store == NULL || stat->is_dir || stat->version[0] == '\0')
        return;
    msg_buf_t buf;
    msg_buf_init(&buf);
    mp_write_array(&buf, METADISK_FIELDS);
    mp_write_uint(&buf, stat->size);
    mp_write_int(&buf, stat->mtime);
    mp_write_cstr(&buf, stat->version);
    if (buf.err == 0) {
        int rc = pagestore_meta_put(store, uri, buf.data, buf.len, clock_real_ms());
        if (rc < 0)
            log_debug("metadata record of %s not written: %s", uri, shoal_last_error());
    }
    msg_buf_fini(&buf);
}

bool metadisk_get(pagestore_t *store, const char *uri, ufs_stat_t *out)
{
    if (store == NULL)
        return false;
    void *blob = NULL;
    size_t size = 0;
    int64_t fetched_at = 0;
    if (pagestore_meta_get(store, uri, &blob, &size, &fetched_at) < 0)
        return false;
    mp_reader_t reader;
    mp_reader_init(&reader, blob, size);
    uint32_t count = 0;
    uint64_t file_size = 0;
    int64_t mtime = 0;
    const char *version = NULL;
    uint32_t version_len = 0;
    bool ok = mp_read_array(&reader, &count) == 0 && count == METADISK_FIELDS &&
              mp_read_uint(&reader, &file_size) == 0 && mp_read_int(&reader, &mtime) == 0 &&
              mp_read_str(&reader, &version, &version_len) == 0 && version_len > 0 &&
              version_len < UFS_VERSION_MAX && memchr(version, '\0', version_len) == NULL &&
              mp_reader_left(&reader) == 0;
    if (ok) {
        memset(out, 0, sizeof *out);
        out->size = file_size;
        out->mtime = mtime;
        memcpy(out->version, version, version_len);
        out->version[version_len] = '\0';
    } else {
        log_warn("metadata record of %s is malformed; dropped", uri);
        pagestore_meta_delete(store, uri);
    }
    free(blob);
    return ok;
}

void metadisk_delete(pagestore_t *store, const char *uri)
{
    if (store != NULL)
        pagestore_meta_delete(store, uri);
}
