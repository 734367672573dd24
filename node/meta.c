/*
 * meta.c - the metadata cache (see meta.h): proto's hash table (htab.h) of stat entries keyed by
 * URI, and a small array of reference-counted listings, both under one mutex.
 */
#include "meta.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "mount.h"
#include "vec.h"

#define META_TABLE_EXPECTED 1024 /* entries the table holds before its first growth */

/* One URI's metadata. */
typedef struct s_entry {
    char *uri;                             /* key, owned (the table borrows it) */
    uint64_t size;                         /* bytes */
    int64_t mtime;                         /* seconds since the epoch */
    bool is_dir;                           /* directory or prefix */
    char *version;                         /* current version, owned */
    char *old_versions[META_OLD_VERSIONS]; /* earlier versions, newest first, owned or NULL */
    int64_t fetched_ns;                    /* when the UFS said so; 0 = expired */
    int64_t missing_ns;                    /* when the UFS said "not found"; 0 = it exists */
    bool missing_object;                   /* with missing_ns: only a GET said so (no object of
                                            * that name; a prefix may still be a directory) */
    bool revalidating;                     /* a background revalidation is queued or running */
    bool recalled;                         /* read back from disk after a restart: never fresh */
} s_entry_t;

struct meta_cache {
    pthread_mutex_t lock;      /* guards everything below */
    int64_t ttl_ns;            /* freshness */
    int64_t negative_ttl_ns;   /* how long "not found" is kept; 0 = not at all */
    htab_t *entries;           /* uri -> s_entry_t (owned; keys borrowed from the entries) */
    size_t max_entries;        /* bound on the entries */
    meta_listing_t **listings; /* max_listings slots, NULL when empty */
    size_t max_listings;       /* slots */
};

static void s_entry_free(s_entry_t *entry)
{
    free(entry->uri);
    free(entry->version);
    for (int i = 0; i < META_OLD_VERSIONS; i++)
        free(entry->old_versions[i]);
    free(entry);
}

meta_cache_t *meta_cache_new(int64_t ttl_ns, size_t max_entries, size_t max_listings)
{
    meta_cache_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->entries = htab_new(META_TABLE_EXPECTED, false);
    self->max_listings = max_listings ? max_listings : 1;
    self->listings = calloc(self->max_listings, sizeof *self->listings);
    if (self->entries == NULL || self->listings == NULL) {
        htab_destroy(&self->entries);
        free(self->listings);
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->ttl_ns = ttl_ns;
    self->max_entries = max_entries ? max_entries : 1;
    return self;
}

void meta_cache_destroy(meta_cache_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    meta_cache_t *self = *self_p;
    size_t cursor = 0;
    void *value = NULL;
    while (htab_next(self->entries, &cursor, NULL, NULL, &value))
        s_entry_free(value);
    htab_destroy(&self->entries);
    for (size_t i = 0; i < self->max_listings; i++)
        meta_listing_release(&self->listings[i]);
    free(self->listings);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

/* The entry of `uri`, or NULL. Lock held. */
static s_entry_t *s_find(meta_cache_t *self, const char *uri)
{
    return htab_get(self->entries, uri, strlen(uri));
}

static bool s_fresh(const meta_cache_t *self, int64_t fetched_ns, int64_t now_ns)
{
    return fetched_ns != 0 && now_ns - fetched_ns < self->ttl_ns;
}

/* Makes room when the table is full: first every expired entry goes; if that freed less than
 * a quarter, every other remaining entry goes too. Crude, but O(n) once per n/4 inserts, and
 * a dropped entry only costs one UFS stat later. Lock held. */
static void s_make_room(meta_cache_t *self, int64_t now_ns)
{
    if (htab_count(self->entries) < self->max_entries)
        return;
    for (int round = 0; round < 2 && htab_count(self->entries) > self->max_entries * 3 / 4;
         round++) {
        size_t seen = 0, cursor = 0;
        void *value = NULL;
        while (htab_next(self->entries, &cursor, NULL, NULL, &value)) {
            s_entry_t *entry = value;
            bool drop = round == 0 ? !s_fresh(self, entry->fetched_ns, now_ns) : (seen++ & 1);
            if (drop) {
                htab_remove(self->entries, entry->uri, strlen(entry->uri));
                s_entry_free(entry);
            }
        }
    }
}

int meta_cache_get(meta_cache_t *self, const char *uri, int64_t now_ns, ufs_stat_t *out,
                   bool *fresh)
{
    pthread_mutex_lock(&self->lock);
    s_entry_t *entry = s_find(self, uri);
    if (entry == NULL || entry->missing_ns != 0) {
        pthread_mutex_unlock(&self->lock);
        return SHOAL_ENOENT;
    }
    out->size = entry->size;
    out->mtime = entry->mtime;
    out->is_dir = entry->is_dir;
    snprintf(out->version, sizeof out->version, "%s", entry->version);
    *fresh = !entry->recalled && s_fresh(self, entry->fetched_ns, now_ns);
    pthread_mutex_unlock(&self->lock);
    return 0;
}

static void s_put(meta_cache_t *self, const char *uri, const ufs_stat_t *stat, int64_t now_ns,
                  bool recalled);

void meta_cache_put(meta_cache_t *self, const char *uri, const ufs_stat_t *stat, int64_t now_ns)
{
    s_put(self, uri, stat, now_ns, false);
}

void meta_cache_put_recalled(meta_cache_t *self, const char *uri, const ufs_stat_t *stat,
                             int64_t now_ns)
{
    s_put(self, uri, stat, now_ns, true);
}

static void s_put(meta_cache_t *self, const char *uri, const ufs_stat_t *stat, int64_t now_ns,
                  bool recalled)
{
    pthread_mutex_lock(&self->lock);
    s_entry_t *entry = s_find(self, uri);
    if (entry == NULL) {
        s_make_room(self, now_ns);
        entry = calloc(1, sizeof *entry);
        if (entry == NULL || (entry->uri = strdup(uri)) == NULL ||
            (entry->version = strdup(stat->version)) == NULL) {
            if (entry)
                s_entry_free(entry);
            pthread_mutex_unlock(&self->lock);
            return;
        }
        if (htab_put(self->entries, entry->uri, strlen(entry->uri), entry, NULL) < 0) {
            s_entry_free(entry);
            pthread_mutex_unlock(&self->lock);
            return;
        }
    } else if (strcmp(entry->version, stat->version) != 0) {
        char *version = strdup(stat->version);
        if (version != NULL && entry->version[0] == '\0') { /* a negative entry's "" */
            free(entry->version);
            entry->version = version;
        } else if (version != NULL) {
            free(entry->old_versions[META_OLD_VERSIONS - 1]);
            memmove(&entry->old_versions[1], &entry->old_versions[0],
                    (META_OLD_VERSIONS - 1) * sizeof entry->old_versions[0]);
            entry->old_versions[0] = entry->version;
            entry->version = version;
        }
    }
    entry->size = stat->size;
    entry->mtime = stat->mtime;
    entry->is_dir = stat->is_dir;
    entry->fetched_ns = now_ns != 0 ? now_ns : 1;
    entry->missing_ns = 0;
    entry->revalidating = false;
    entry->recalled = recalled;
    pthread_mutex_unlock(&self->lock);
}

void meta_cache_set_negative_ttl(meta_cache_t *self, int64_t ttl_ns)
{
    pthread_mutex_lock(&self->lock);
    self->negative_ttl_ns = ttl_ns > 0 ? ttl_ns : 0;
    pthread_mutex_unlock(&self->lock);
}

static void s_put_missing(meta_cache_t *self, const char *uri, int64_t now_ns, bool object_only)
{
    pthread_mutex_lock(&self->lock);
    s_entry_t *entry = s_find(self, uri);
    if (self->negative_ttl_ns == 0) { /* no negative cache: just forget what was known */
        if (entry) {
            htab_remove(self->entries, uri, strlen(uri));
            s_entry_free(entry);
        }
        pthread_mutex_unlock(&self->lock);
        return;
    }
    if (entry == NULL) {
        s_make_room(self, now_ns);
        entry = calloc(1, sizeof *entry);
        if (entry == NULL || (entry->uri = strdup(uri)) == NULL ||
            (entry->version = strdup("")) == NULL ||
            htab_put(self->entries, entry->uri, strlen(entry->uri), entry, NULL) < 0) {
            if (entry)
                s_entry_free(entry);
            pthread_mutex_unlock(&self->lock);
            return;
        }
    }
    entry->fetched_ns = 0; /* no stat to serve; the remembered versions stay for EVICT */
    entry->missing_ns = now_ns != 0 ? now_ns : 1;
    entry->missing_object = object_only;
    entry->revalidating = false;
    pthread_mutex_unlock(&self->lock);
}

void meta_cache_put_missing(meta_cache_t *self, const char *uri, int64_t now_ns)
{
    s_put_missing(self, uri, now_ns, false);
}

void meta_cache_put_missing_object(meta_cache_t *self, const char *uri, int64_t now_ns)
{
    s_put_missing(self, uri, now_ns, true);
}

static bool s_missing(meta_cache_t *self, const char *uri, int64_t now_ns, bool entirely)
{
    pthread_mutex_lock(&self->lock);
    s_entry_t *entry = s_find(self, uri);
    bool missing = entry != NULL && entry->missing_ns != 0 &&
                   now_ns - entry->missing_ns < self->negative_ttl_ns &&
                   !(entirely && entry->missing_object);
    pthread_mutex_unlock(&self->lock);
    return missing;
}

bool meta_cache_missing(meta_cache_t *self, const char *uri, int64_t now_ns)
{
    return s_missing(self, uri, now_ns, false);
}

bool meta_cache_missing_entirely(meta_cache_t *self, const char *uri, int64_t now_ns)
{
    return s_missing(self, uri, now_ns, true);
}

bool meta_cache_begin_revalidate(meta_cache_t *self, const char *uri)
{
    pthread_mutex_lock(&self->lock);
    s_entry_t *entry = s_find(self, uri);
    bool begin = entry != NULL && entry->missing_ns == 0 && !entry->revalidating;
    if (begin)
        entry->revalidating = true;
    pthread_mutex_unlock(&self->lock);
    return begin;
}

void meta_cache_end_revalidate(meta_cache_t *self, const char *uri)
{
    pthread_mutex_lock(&self->lock);
    s_entry_t *entry = s_find(self, uri);
    if (entry)
        entry->revalidating = false;
    pthread_mutex_unlock(&self->lock);
}

void meta_cache_expire(meta_cache_t *self, const char *uri)
{
    pthread_mutex_lock(&self->lock);
    s_entry_t *entry = s_find(self, uri);
    if (entry)
        entry->fetched_ns = 0;
    pthread_mutex_unlock(&self->lock);
}

bool meta_cache_refused(meta_cache_t *self, const char *uri)
{
    pthread_mutex_lock(&self->lock);
    s_entry_t *entry = s_find(self, uri);
    bool refused = entry != NULL && entry->fetched_ns == 0 && entry->missing_ns == 0;
    pthread_mutex_unlock(&self->lock);
    return refused;
}

void meta_cache_forget(meta_cache_t *self, const char *uri)
{
    pthread_mutex_lock(&self->lock);
    s_entry_t *entry = htab_remove(self->entries, uri, strlen(uri));
    if (entry)
        s_entry_free(entry);
    pthread_mutex_unlock(&self->lock);
}

size_t meta_cache_versions(meta_cache_t *self, const char *uri, char (*versions)[UFS_VERSION_MAX],
                           size_t max)
{
    size_t count = 0;
    pthread_mutex_lock(&self->lock);
    s_entry_t *entry = s_find(self, uri);
    if (entry && !entry->is_dir) {
        if (count < max && entry->version[0] != '\0')
            snprintf(versions[count++], UFS_VERSION_MAX, "%s", entry->version);
        for (int i = 0; i < META_OLD_VERSIONS && count < max; i++)
            if (entry->old_versions[i])
                snprintf(versions[count++], UFS_VERSION_MAX, "%s", entry->old_versions[i]);
    }
    pthread_mutex_unlock(&self->lock);
    return count;
}

int meta_cache_uris_under(meta_cache_t *self, const char *prefix, char ***uris_out,
                          size_t *count_out)
{
    *uris_out = NULL;
    *count_out = 0;
    VEC(char *) uris;
    vec_init(&uris);
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    size_t cursor = 0;
    void *value = NULL;
    while (rc == 0 && htab_next(self->entries, &cursor, NULL, NULL, &value)) {
        const s_entry_t *entry = value;
        if (entry->is_dir || !mount_is_under(entry->uri, prefix))
            continue;
        char *uri = strdup(entry->uri);
        if (uri == NULL || vec_push(&uris, uri) < 0) {
            free(uri);
            rc = SHOAL_ENOMEM;
        }
    }
    pthread_mutex_unlock(&self->lock);
    if (rc < 0) {
        for (size_t i = 0; i < uris.len; i++)
            free(uris.items[i]);
        vec_fini(&uris);
        return rc;
    }
    *uris_out = uris.items; /* the caller frees every string and the array */
    *count_out = uris.len;
    return 0;
}

meta_listing_t *meta_cache_listing_get(meta_cache_t *self, const char *uri, bool recursive,
                                       int64_t now_ns)
{
    meta_listing_t *found = NULL;
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->max_listings; i++) {
        meta_listing_t *listing = self->listings[i];
        if (listing && listing->recursive == recursive && strcmp(listing->uri, uri) == 0 &&
            s_fresh(self, listing->fetched_ns, now_ns)) {
            atomic_fetch_add(&listing->refs, 1);
            found = listing;
            break;
        }
    }
    pthread_mutex_unlock(&self->lock);
    return found;
}

static int s_entry_compare(const void *a, const void *b)
{
    return strcmp(((const ufs_entry_t *)a)->uri, ((const ufs_entry_t *)b)->uri);
}

/*
 * The listing goes into the slot of the same (uri, recursive) if there is one, else an empty
 * slot, else the oldest. Each file entry also refreshes the stat cache, so the STATs that
 * usually follow a LIST cost no UFS request.
 */
meta_listing_t *meta_cache_listing_put(meta_cache_t *self, const char *uri, bool recursive,
                                       ufs_list_t *list, int64_t now_ns)
{
    meta_listing_t *listing = calloc(1, sizeof *listing);
    if (listing == NULL || (listing->uri = strdup(uri)) == NULL) {
        free(listing);
        ufs_list_fini(list);
        return NULL;
    }
    atomic_init(&listing->refs, 2); /* the cache's and the caller's */
    listing->recursive = recursive;
    listing->list = *list;
    listing->fetched_ns = now_ns != 0 ? now_ns : 1;
    ufs_list_init(list);
    if (listing->list.count > 1)
        qsort(listing->list.entries, listing->list.count, sizeof(ufs_entry_t), s_entry_compare);

    for (size_t i = 0; i < listing->list.count; i++)
        if (!listing->list.entries[i].stat.is_dir)
            meta_cache_put(self, listing->list.entries[i].uri, &listing->list.entries[i].stat,
                           now_ns);

    pthread_mutex_lock(&self->lock);
    size_t slot = self->max_listings;
    for (size_t i = 0; i < self->max_listings && slot == self->max_listings; i++) {
        meta_listing_t *old = self->listings[i];
        if (old && old->recursive == recursive && strcmp(old->uri, uri) == 0)
            slot = i;
    }
    for (size_t i = 0; i < self->max_listings && slot == self->max_listings; i++)
        if (self->listings[i] == NULL)
            slot = i;
    if (slot == self->max_listings) {
        slot = 0;
        for (size_t i = 1; i < self->max_listings; i++)
            if (self->listings[i]->fetched_ns < self->listings[slot]->fetched_ns)
                slot = i;
    }
    meta_listing_t *old = self->listings[slot];
    self->listings[slot] = listing;
    pthread_mutex_unlock(&self->lock);
    meta_listing_release(&old);
    return listing;
}

void meta_listing_release(meta_listing_t **listing_p)
{
    if (listing_p == NULL || *listing_p == NULL)
        return;
    meta_listing_t *listing = *listing_p;
    *listing_p = NULL;
    if (atomic_fetch_sub(&listing->refs, 1) != 1)
        return;
    ufs_list_fini(&listing->list);
    free(listing->uri);
    free(listing);
}

size_t meta_listing_seek(const meta_listing_t *listing, const char *cursor)
{
    if (cursor == NULL || cursor[0] == '\0')
        return 0;
    size_t low = 0, high = listing->list.count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (strcmp(listing->list.entries[middle].uri, cursor) <= 0)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}
