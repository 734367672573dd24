/*
 * fuzz_ufs_json.c - libFuzzer target for the hf:// tree API parser (ufs_hf_parse_tree in
 * store/ufs_hf.c): one page of JSON into listing entries. The first input byte picks a
 * one-level or recursive listing; the rest is the reply. Every entry must be an addressable
 * uri below the repository; any breach aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ufs_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE "hf://datasets/org/name@rev"

static void s_die(const char *what, const char *uri)
{
    fprintf(stderr, "fuzz_ufs_json: %s: %s (last error: %s)\n", what, uri ? uri : "",
            shoal_last_error());
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool recursive = data[0] & 1;
    ufs_list_t list;
    ufs_list_init(&list);
    int rc = ufs_hf_parse_tree(BASE, "http://hub/api/tree", (const char *)data + 1, size - 1,
                               recursive, &list);
    if (rc > 0 || rc < SHOAL_ERR_MIN)
        s_die("code outside the error range", NULL);
    if (list.count > list.capacity)
        s_die("count over capacity", NULL);
    for (size_t i = 0; i < list.count; i++) {
        const ufs_entry_t *entry = &list.entries[i];
        const char *uri = entry->uri;
        if (strlen(uri) > UFS_URI_MAX || strncmp(uri, BASE "/", sizeof BASE) != 0)
            s_die("entry outside the repository or too long", uri);
        const char *path = uri + sizeof BASE;
        if (!path[0] || strstr(path, "//") || strcmp(path, "..") == 0 ||
            strncmp(path, "../", 3) == 0 || strstr(path, "/../") ||
            (strlen(path) >= 3 && strcmp(path + strlen(path) - 3, "/..") == 0))
            s_die("entry path with empty or '..' segments", uri);
        if (ufs_uri_check(uri) != 0)
            s_die("entry uri fails ufs_uri_check", uri);
        if (recursive && entry->stat.is_dir)
            s_die("directory in a recursive listing", uri);
        if (strnlen(entry->stat.version, UFS_VERSION_MAX) == UFS_VERSION_MAX)
            s_die("version not terminated", uri);
    }
    ufs_list_fini(&list);
    return 0;
}
