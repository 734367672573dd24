/*
 * pagestore_memory.c - the in-memory page-store backend: one hash table (proto htab) per
 * generation, for the unit tests of the layers above. Same semantics as RocksDB (generations,
 * quota, pinning) with none of the persistence: closing loses everything. One mutex serialises it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pagestore_backend.h"
#include "htab.h"
#include "vec.h"

/* A stored page. The map holds one reference; every pinned handle holds one more. */
typedef struct s_entry {
    _Atomic int refs;                     /* map + handles */
    size_t size;                          /* length of bytes */
    uint8_t key[PAGESTORE_PAGE_KEY_SIZE]; /* its page key (the map borrows it) */
    uint8_t bytes[];                      /* the page */
} s_entry_t;

typedef struct s_gen {
    uint64_t gen;  /* generation number */
    htab_t *pages; /* page key (borrowed from the entry) -> s_entry_t* */
} s_gen_t;

/* A record of a small table. */
typedef struct s_record {
    struct s_record *next; /* list link */
    size_t key_size;       /* length of key */
    size_t value_size;     /* length of value */
    uint8_t *key;          /* malloc'd */
    uint8_t *value;        /* malloc'd, NULL when empty */
} s_record_t;

typedef struct s_memory {
    pthread_mutex_t lock;  /* guards everything below */
    VEC(s_gen_t) gens;     /* oldest first */
    s_record_t *tables[2]; /* lists per pagestore_table_t */
} s_memory_t;

static void s_entry_unref(s_entry_t *entry)
{
    if (atomic_fetch_sub(&entry->refs, 1) == 1)
        free(entry);
}

/* A pinned handle: one per get, so handles of one entry share nothing but the entry. */
typedef struct s_handle {
    pagestore_page_t page; /* first: what the front end sees */
    s_entry_t *entry;      /* the reference this handle holds */
} s_handle_t;

static void s_handle_release(pagestore_page_t *page)
{
    s_handle_t *handle = (s_handle_t *)page;
    s_entry_unref(handle->entry);
    free(handle);
}

static s_gen_t *s_find_gen(s_memory_t *self, uint64_t gen)
{
    for (size_t i = 0; i < self->gens.len; i++) {
        if (self->gens.items[i].gen == gen)
            return &self->gens.items[i];
    }
    return NULL;
}

static void s_free_pages(htab_t **pages_p)
{
    size_t cursor = 0;
    void *value;
    while (htab_next(*pages_p, &cursor, NULL, NULL, &value))
        s_entry_unref(value);
    htab_destroy(pages_p);
}

static int s_open(const pagestore_options_t *options, void **self_out)
{
    (void)options;
    s_memory_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore memory: out of memory");
    pthread_mutex_init(&self->lock, NULL);
    *self_out = self;
    return 0;
}

static void s_close(void *self_)
{
    s_memory_t *self = self_;
    for (size_t i = 0; i < self->gens.len; i++)
        s_free_pages(&self->gens.items[i].pages);
    vec_fini(&self->gens);
    for (int t = 0; t < 2; t++) {
        for (s_record_t *record = self->tables[t], *next; record != NULL; record = next) {
            next = record->next;
            free(record->key);
            free(record->value);
            free(record);
        }
    }
    pthread_mutex_destroy(&self->lock);
    free(self);
}

static int s_gens(void *self_, pagestore_gen_info_t **gens_out, size_t *count_out)
{
    s_memory_t *self = self_;
    pthread_mutex_lock(&self->lock);
    pagestore_gen_info_t *infos = calloc(self->gens.len + 1, sizeof *infos);
    if (infos == NULL) {
        pthread_mutex_unlock(&self->lock);
        return shoal_fail(SHOAL_ENOMEM, "pagestore memory: out of memory");
    }
    for (size_t i = 0; i < self->gens.len; i++) {
        infos[i].gen = self->gens.items[i].gen;
        size_t cursor = 0;
        void *value;
        while (htab_next(self->gens.items[i].pages, &cursor, NULL, NULL, &value)) {
            infos[i].pages++;
            infos[i].bytes += ((s_entry_t *)value)->size + PAGESTORE_PAGE_KEY_SIZE;
        }
    }
    *gens_out = infos;
    *count_out = self->gens.len;
    pthread_mutex_unlock(&self->lock);
    return 0;
}

static int s_gen_create(void *self_, uint64_t gen)
{
    s_memory_t *self = self_;
    pthread_mutex_lock(&self->lock);
    int grown = vec_reserve(&self->gens, 1);
    htab_t *pages = htab_new(0, false);
    if (grown < 0 || pages == NULL) {
        htab_destroy(&pages);
        pthread_mutex_unlock(&self->lock);
        return shoal_fail(SHOAL_ENOMEM, "pagestore memory: out of memory");
    }
    self->gens.items[self->gens.len++] = (s_gen_t){.gen = gen, .pages = pages};
    pthread_mutex_unlock(&self->lock);
    return 0;
}

static void s_gen_seal(void *self_, uint64_t gen)
{
    (void)self_;
    (void)gen;
}

static int s_gen_drop(void *self_, uint64_t gen)
{
    s_memory_t *self = self_;
    pthread_mutex_lock(&self->lock);
    s_gen_t *found = s_find_gen(self, gen);
    if (found != NULL) {
        s_free_pages(&found->pages);
        vec_remove(&self->gens, (size_t)(found - self->gens.items));
    }
    pthread_mutex_unlock(&self->lock);
    return 0;
}

static int s_page_put(void *self_, uint64_t gen, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE],
                      const void *data, size_t size)
{
    s_memory_t *self = self_;
    s_entry_t *entry = malloc(sizeof *entry + size);
    if (entry == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore memory: out of memory");
    memcpy(entry->bytes, data, size);
    memcpy(entry->key, key, PAGESTORE_PAGE_KEY_SIZE);
    entry->size = size;
    atomic_store(&entry->refs, 1);
    pthread_mutex_lock(&self->lock);
    s_gen_t *found = s_find_gen(self, gen);
    void *old = NULL;
    int rc = found == NULL
                 ? shoal_fail(SHOAL_EINTERNAL, "pagestore memory: no generation")
                 : htab_put(found->pages, entry->key, PAGESTORE_PAGE_KEY_SIZE, entry, &old);
    pthread_mutex_unlock(&self->lock);
    if (rc < 0) {
        free(entry);
        return rc == SHOAL_ENOMEM ? shoal_fail(rc, "pagestore memory: out of memory") : rc;
    }
    if (old != NULL)
        s_entry_unref(old);
    return 0;
}

static int s_page_get(void *self_, uint64_t gen, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE],
                      size_t offset, size_t length, pagestore_page_t **out)
{
    s_memory_t *self = self_;
    s_handle_t *handle = malloc(sizeof *handle);
    if (handle == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore memory: out of memory");
    pthread_mutex_lock(&self->lock);
    s_gen_t *found = s_find_gen(self, gen);
    s_entry_t *entry = found == NULL ? NULL : htab_get(found->pages, key, PAGESTORE_PAGE_KEY_SIZE);
    if (entry != NULL)
        atomic_fetch_add(&entry->refs, 1);
    pthread_mutex_unlock(&self->lock);
    if (entry == NULL) {
        free(handle);
        return SHOAL_ENOENT;
    }
    if (length == PAGESTORE_WHOLE && offset <= entry->size)
        length = entry->size - offset;
    if (offset > entry->size || length > entry->size - offset) {
        size_t size = entry->size;
        s_entry_unref(entry);
        free(handle);
        return shoal_fail(SHOAL_EINVAL, "pagestore: range %zu+%zu is not inside the %zu-byte page",
                          offset, length, size);
    }
    handle->entry = entry;
    handle->page = (pagestore_page_t){.data = entry->bytes + offset,
                                      .size = length,
                                      .page_size = entry->size,
                                      .release = s_handle_release};
    *out = &handle->page;
    return 0;
}

static int s_page_delete(void *self_, uint64_t gen, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE])
{
    s_memory_t *self = self_;
    pthread_mutex_lock(&self->lock);
    s_gen_t *found = s_find_gen(self, gen);
    s_entry_t *entry =
        found == NULL ? NULL : htab_remove(found->pages, key, PAGESTORE_PAGE_KEY_SIZE);
    pthread_mutex_unlock(&self->lock);
    if (entry != NULL)
        s_entry_unref(entry);
    return 0;
}

/* What s_each_page calls for one page: may remove that page from `pages`; non-zero stops. */
typedef int (*s_visit_fn)(htab_t *pages, const uint8_t *key, s_entry_t *entry, void *arg);

/* Calls visit for every page of generation `gen` that belongs to file_key (every page when
 * NULL), under the lock, until it returns non-zero; returns that value or 0. */
static int s_each_page(s_memory_t *self, uint64_t gen, const uint8_t *file_key, s_visit_fn visit,
                       void *arg)
{
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    s_gen_t *found = s_find_gen(self, gen);
    if (found != NULL) {
        size_t cursor = 0;
        const void *key;
        void *value;
        while (rc == 0 && htab_next(found->pages, &cursor, &key, NULL, &value)) {
            if (file_key == NULL || memcmp(key, file_key, PAGESTORE_FILE_KEY_SIZE) == 0)
                rc = visit(found->pages, key, value, arg);
        }
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

static int s_delete_visit(htab_t *pages, const uint8_t *key, s_entry_t *entry, void *arg)
{
    (void)arg;
    htab_remove(pages, key, PAGESTORE_PAGE_KEY_SIZE);
    s_entry_unref(entry);
    return 0;
}

static int s_file_delete(void *self_, uint64_t gen, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE])
{
    return s_each_page(self_, gen, file_key, s_delete_visit, NULL);
}

typedef struct s_scan {
    pagestore_record_fn fn; /* the front end's callback */
    void *arg;              /* its argument */
} s_scan_t;

static int s_scan_visit(htab_t *pages, const uint8_t *key, s_entry_t *entry, void *arg)
{
    (void)pages;
    const s_scan_t *scan = arg;
    return scan->fn(key, entry->size, scan->arg);
}

/* Calls fn under the lock: fn must not call back into the store (the front end's scan does
 * not). */
static int s_page_scan(void *self_, uint64_t gen, const uint8_t *file_key, pagestore_record_fn fn,
                       void *arg)
{
    s_scan_t scan = {fn, arg};
    return s_each_page(self_, gen, file_key, s_scan_visit, &scan);
}

static s_record_t **s_find_record(s_memory_t *self, pagestore_table_t table, const void *key,
                                  size_t key_size)
{
    s_record_t **link = &self->tables[table];
    while (*link != NULL &&
           ((*link)->key_size != key_size || memcmp((*link)->key, key, key_size) != 0))
        link = &(*link)->next;
    return link;
}

static int s_kv_put(void *self_, pagestore_table_t table, const void *key, size_t key_size,
                    const void *value, size_t value_size, bool sync)
{
    (void)sync;
    s_memory_t *self = self_;
    uint8_t *value_copy = value_size > 0 ? malloc(value_size) : NULL;
    if (value_size > 0 && value_copy == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore memory: out of memory");
    if (value_size > 0)
        memcpy(value_copy, value, value_size);
    pthread_mutex_lock(&self->lock);
    s_record_t **link = s_find_record(self, table, key, key_size);
    if (*link == NULL) {
        s_record_t *record = calloc(1, sizeof *record);
        uint8_t *key_copy = malloc(key_size + 1);
        if (record == NULL || key_copy == NULL) {
            pthread_mutex_unlock(&self->lock);
            free(record);
            free(key_copy);
            free(value_copy);
            return shoal_fail(SHOAL_ENOMEM, "pagestore memory: out of memory");
        }
        memcpy(key_copy, key, key_size);
        record->key = key_copy;
        record->key_size = key_size;
        *link = record;
    }
    free((*link)->value);
    (*link)->value = value_copy;
    (*link)->value_size = value_size;
    pthread_mutex_unlock(&self->lock);
    return 0;
}

static int s_kv_get(void *self_, pagestore_table_t table, const void *key, size_t key_size,
                    void **value_out, size_t *value_size_out)
{
    s_memory_t *self = self_;
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    s_record_t *record = *s_find_record(self, table, key, key_size);
    if (record == NULL) {
        rc = shoal_fail(SHOAL_ENOENT, "pagestore: no such record");
    } else {
        void *copy = record->value_size > 0 ? malloc(record->value_size) : NULL;
        if (record->value_size > 0 && copy == NULL) {
            rc = shoal_fail(SHOAL_ENOMEM, "pagestore memory: out of memory");
        } else {
            if (copy != NULL)
                memcpy(copy, record->value, record->value_size);
            *value_out = copy;
            *value_size_out = record->value_size;
        }
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

static int s_kv_delete(void *self_, pagestore_table_t table, const void *key, size_t key_size)
{
    s_memory_t *self = self_;
    pthread_mutex_lock(&self->lock);
    s_record_t **link = s_find_record(self, table, key, key_size);
    s_record_t *record = *link;
    if (record != NULL)
        *link = record->next;
    pthread_mutex_unlock(&self->lock);
    if (record != NULL) {
        free(record->key);
        free(record->value);
        free(record);
    }
    return 0;
}

static int s_flush(void *self_)
{
    (void)self_;
    return 0;
}

static int s_recover(void *self_)
{
    (void)self_;
    return 0;
}

const pagestore_backend_t pagestore_memory_backend = {
    .name = "memory",
    .open = s_open,
    .close = s_close,
    .gens = s_gens,
    .gen_create = s_gen_create,
    .gen_seal = s_gen_seal,
    .gen_drop = s_gen_drop,
    .page_put = s_page_put,
    .page_get = s_page_get,
    .page_delete = s_page_delete,
    .file_delete = s_file_delete,
    .page_scan = s_page_scan,
    .kv_put = s_kv_put,
    .kv_get = s_kv_get,
    .kv_delete = s_kv_delete,
    .flush = s_flush,
    .recover = s_recover,
};
