/*
 * test_err.c - error codes have distinct names and the last error is per thread.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "shoal_err.h"

Test(err, every_code_has_a_distinct_name)
{
    for (int a = SHOAL_ERR_MIN; a <= 0; a++) {
        cr_assert_str_neq(shoal_strerror(a), "unknown error", "code %d has no name", a);
        for (int b = SHOAL_ERR_MIN; b < a; b++)
            cr_assert_str_neq(shoal_strerror(a), shoal_strerror(b), "codes %d and %d", a, b);
    }
    cr_assert_str_eq(shoal_strerror(SHOAL_ERR_MIN - 1), "unknown error");
    cr_assert_str_eq(shoal_strerror(5), "unknown error");
}

Test(err, fail_records_message_and_returns_code)
{
    shoal_clear_error();
    cr_assert_str_eq(shoal_last_error(), "");
    int rc = shoal_fail(SHOAL_EIO, "GET %s: HTTP %d", "http://x/y", 503);
    cr_assert_eq(rc, SHOAL_EIO);
    cr_assert_str_eq(shoal_last_error(), "GET http://x/y: HTTP 503");
}

static void *s_other_thread(void *arg)
{
    (void)arg;
    return (void *)(strcmp(shoal_last_error(), "") == 0 ? (void *)1 : NULL);
}

Test(err, last_error_is_per_thread_and_truncates)
{
    char long_text[2000];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    shoal_fail(SHOAL_EINVAL, "%s", long_text);
    cr_assert_lt(strlen(shoal_last_error()), sizeof long_text - 1);
    pthread_t thread;
    void *other_empty = NULL;
    pthread_create(&thread, NULL, s_other_thread, NULL);
    pthread_join(thread, &other_empty);
    cr_assert_not_null(other_empty, "another thread saw this thread's error");
}
