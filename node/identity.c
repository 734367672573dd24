/*
 * identity.c - node id and incarnation in the state records "node_id" (16 bytes) and
 * "incarnation" (8 bytes, little endian). See identity.h.
 */
#include "identity.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int identity_load(pagestore_t *store, uint8_t id[MSG_NODE_ID_SIZE], uint64_t *incarnation)
{
    void *value = NULL;
    size_t size = 0;
    int rc = pagestore_state_get(store, "node_id", &value, &size);
    if (rc == 0 && size == MSG_NODE_ID_SIZE) {
        memcpy(id, value, MSG_NODE_ID_SIZE);
    } else if (rc == 0 || rc == SHOAL_ENOENT || rc == SHOAL_ECORRUPT) {
        if (rc != SHOAL_ENOENT)
            log_warn("node id record is damaged: making a new identity");
        randombytes_buf(id, MSG_NODE_ID_SIZE);
        free(value);
        value = NULL;
        rc = pagestore_state_put(store, "node_id", id, MSG_NODE_ID_SIZE);
        if (rc < 0)
            return rc;
    } else {
        return rc;
    }
    free(value);
    value = NULL;

    uint64_t previous = 0;
    rc = pagestore_state_get(store, "incarnation", &value, &size);
    if (rc == 0 && size == 8) {
        const uint8_t *bytes = value;
        for (int i = 7; i >= 0; i--)
            previous = (previous << 8) | bytes[i];
    } else if (rc < 0 && rc != SHOAL_ENOENT && rc != SHOAL_ECORRUPT) {
        free(value);
        return rc;
    }
    free(value);
    uint64_t next = previous + 1;
    uint8_t bytes[8];
    for (int i = 0; i < 8; i++)
        bytes[i] = (uint8_t)(next >> (8 * i));
    rc = pagestore_state_put(store, "incarnation", bytes, sizeof bytes);
    if (rc < 0)
        return rc;
    *incarnation = next;
    return 0;
}

int identity_save_incarnation(pagestore_t *store, uint64_t incarnation)
{
    void *value = NULL;
    size_t size = 0;
    uint64_t stored = 0;
    if (pagestore_state_get(store, "incarnation", &value, &size) == 0 && size == 8) {
        const uint8_t *bytes = value;
        for (int i = 7; i >= 0; i--)
            stored = (stored << 8) | bytes[i];
    }
    free(value);
    if (incarnation <= stored)
        return 0;
    uint8_t bytes[8];
    for (int i = 0; i < 8; i++)
        bytes[i] = (uint8_t)(incarnation >> (8 * i));
    return pagestore_state_put(store, "incarnation", bytes, sizeof bytes);
}
