/*
 * pagestore.c - the page store's front end: file keys, generations under the quota, promotion
 * of pages in use, counters and error reporting, over a backend (pagestore_backend.h).
 */
#include "pagestore.h"

#include <sodium.h>
#include <string.h>

int pagestore_file_key(const char *uri, const char *version,
                       uint8_t out[PAGESTORE_FILE_KEY_SIZE])
{
    if (uri == NULL || version == NULL || out == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_file_key: NULL argument");
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, PAGESTORE_FILE_KEY_SIZE);
    crypto_generichash_update(&state, (const unsigned char *)uri, strlen(uri) + 1);
    crypto_generichash_update(&state, (const unsigned char *)version, strlen(version));
    crypto_generichash_final(&state, out, PAGESTORE_FILE_KEY_SIZE);
    return 0;
}
