/*
 * counters.c - the client counters as JSON, for shoal_stats and shoal_client_counters_json.
 */
#include <jansson.h>

#include "counters.h"

json_t *client_counters_json(const client_counters_t *counters)
{
    json_t *object = json_object();
    if (!object)
        return NULL;
#define CLIENT_COUNTER_JSON(name)                                                                  \
    json_object_set_new(object, #name, json_integer((json_int_t)atomic_load(&counters->name)));
    CLIENT_COUNTERS(CLIENT_COUNTER_JSON)
#undef CLIENT_COUNTER_JSON
    return object;
}
