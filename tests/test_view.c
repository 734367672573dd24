/*
 * test_view.c - membership snapshots: contents and order, placement alignment, versions that
 * grow with changes, and the holder read by many threads while one publishes.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "swim_fake.h"
#include "view.h"

Test(view, snapshot_of_a_cluster)
{
    swim_fake_net_t *net = swim_fake_net_new(3, 1000);
    for (int i = 0; i < 4; i++) {
        swim_opts_t o;
        swim_opts_default(&o);
        o.id[0] = (uint8_t)(40 - i); /* added in descending id order */
        o.weight = 100 + (uint64_t)i;
        o.data_ep = "tcp://h:1";
        cr_assert_eq(swim_fake_add(net, &o), i);
        if (i > 0) {
            const char *seeds[] = {"sim:0"};
            swim_join(swim_fake_swim(net, (size_t)i), seeds, 1, swim_fake_now(net));
        }
    }
    swim_fake_run(net, 5000);
    swim_t *swim = swim_fake_swim(net, 0);
    view_t *v = view_from_swim(swim);
    cr_assert_not_null(v);
    cr_assert_eq(view_count(v), 4);
    cr_assert_eq(view_live_count(v), 4);
    cr_assert_eq(view_version(v), swim_version(swim));
    for (size_t i = 1; i < 4; i++)
        cr_assert_lt(memcmp(view_member(v, i - 1)->id, view_member(v, i)->id, 16), 0);
    uint8_t id[16] = {38};
    const view_member_t *m = view_find(v, id);
    cr_assert_not_null(m);
    cr_assert_eq(m->weight, 102);
    cr_assert_str_eq(m->gossip_ep, "sim:2");
    cr_assert_str_eq(m->data_ep, "tcp://h:1");
    const hrw_member_t *h = view_hrw(v);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(memcmp(h[i].id, view_member(v, i)->id, 16), 0);
        cr_assert(h[i].live);
    }
    /* A crash makes a new version with the member dead and not live for placement. */
    uint64_t version = view_version(v);
    swim_fake_crash(net, 2);
    swim_fake_run(net, 30000);
    view_t *v2 = view_from_swim(swim);
    cr_assert_gt(view_version(v2), version);
    cr_assert_eq(view_find(v2, id)->state, SWIM_DEAD);
    cr_assert_eq(view_live_count(v2), 3);
    size_t owners[3];
    uint8_t key[24] = {0};
    cr_assert_eq(hrw_owners(view_hrw(v2), view_count(v2), key, sizeof key, 3, owners), 3);
    for (int i = 0; i < 3; i++)
        cr_assert_neq(memcmp(view_member(v2, owners[i])->id, id, 16), 0);
    /* The old snapshot is untouched. */
    cr_assert_eq(view_find(v, id)->state, SWIM_ALIVE);
    view_unref(&v);
    view_unref(&v2);
    cr_assert_null(v);
    view_unref(&v); /* safe on NULL */
    swim_fake_net_destroy(&net);
}

typedef struct reader_arg {
    view_holder_t *holder; /* shared */
    int ok;                /* versions never went backwards */
} reader_arg_t;

static void *s_reader(void *p)
{
    reader_arg_t *arg = p;
    uint64_t last = 0;
    arg->ok = 1;
    for (int i = 0; i < 20000; i++) {
        view_t *v = view_holder_get(arg->holder);
        if (view_version(v) < last || view_count(v) != view_version(v) % 5)
            arg->ok = 0;
        last = view_version(v);
        view_unref(&v);
    }
    return NULL;
}

Test(view, holder_is_safe_across_threads)
{
    view_holder_t *holder = view_holder_new();
    cr_assert_not_null(holder);
    pthread_t threads[3];
    reader_arg_t args[3];
    for (int i = 0; i < 3; i++) {
        args[i].holder = holder;
        pthread_create(&threads[i], NULL, s_reader, &args[i]);
    }
    view_member_t members[4];
    memset(members, 0, sizeof members);
    for (int i = 0; i < 4; i++)
        members[i].id[0] = (uint8_t)i;
    for (uint64_t version = 1; version <= 5000; version++) {
        view_t *v = view_new(version, members, version % 5);
        view_holder_publish(holder, &v);
        cr_assert_null(v);
    }
    view_t *old = view_new(3, members, 3); /* older than current: ignored */
    view_holder_publish(holder, &old);
    for (int i = 0; i < 3; i++) {
        pthread_join(threads[i], NULL);
        cr_assert(args[i].ok, "reader %d saw a torn or older view", i);
    }
    view_t *v = view_holder_get(holder);
    cr_assert_eq(view_version(v), 5000);
    view_unref(&v);
    view_holder_destroy(&holder);
    cr_assert_null(holder);
}
