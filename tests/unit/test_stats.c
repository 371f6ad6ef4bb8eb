/*
 * test_stats.c — unit tests of dafsd's statistics (src/server/stats.c):
 *  - every latency falls inside the bounds of its histogram bucket, buckets
 *    tile the range without gaps, and a bucket is at most 1/8 of its value
 *    wide (so the midpoint is within 1/16);
 *  - counts recorded by several threads are all there when summed;
 *  - percentiles of a known distribution;
 *  - the three output formats carry the numbers (the Prometheus text's
 *    syntax is checked against a real scrape in tests/ops/ops.sh).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stats.h"

static void test_buckets(void **state)
{
    (void)state;
    for (unsigned b = 0; b + 1 < STATS_HIST_BUCKETS; b++) {
        assert_true(stats_bucket_low(b) <= stats_bucket_high(b));
        assert_int_equal(stats_bucket_high(b) + 1, stats_bucket_low(b + 1)); /* no gap */
    }
    /* below the last bucket (which also takes everything longer) */
    uint64_t top = stats_bucket_low(STATS_HIST_BUCKETS - 1);
    for (uint64_t v = 0; v < top; v = v < 64 ? v + 1 : v + v / 7 + 3) {
        unsigned b = stats_bucket_of(v);
        assert_true(b < STATS_HIST_BUCKETS - 1);
        assert_true(stats_bucket_low(b) <= v && v <= stats_bucket_high(b));
        uint64_t width = stats_bucket_high(b) - stats_bucket_low(b) + 1;
        assert_true(v < 8 || width * 8 <= stats_bucket_low(b));
    }
    assert_int_equal(stats_bucket_of(top), STATS_HIST_BUCKETS - 1);
    assert_int_equal(stats_bucket_of(UINT64_MAX), STATS_HIST_BUCKETS - 1);
    assert_int_equal(stats_bucket_high(STATS_HIST_BUCKETS - 1), UINT64_MAX);
}

#define THREADS    4
#define PER_THREAD 10000

static void *record_many(void *arg)
{
    (void)arg;
    for (unsigned i = 1; i <= PER_THREAD; i++) /* 1..10000 us, uniformly */
        stats_record(DAFS_OP_GETATTR, i % 100 == 0 ? DAFS_ST_NOENT : DAFS_ST_OK, 10, 20,
                     (uint64_t)i * 1000);
    return NULL;
}

static void test_threads_and_percentiles(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, record_many, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    stats_record(500, DAFS_ST_BADOP, 1, 2, 3); /* beyond the table: OTHER */
    stats_totals *tot = malloc(sizeof(*tot));
    assert_non_null(tot);
    stats_collect(tot);
    const stats_op_total *g = &tot->ops[DAFS_OP_GETATTR];
    assert_int_equal(g->requests, THREADS * PER_THREAD);
    assert_int_equal(g->errors, THREADS * PER_THREAD / 100);
    assert_int_equal(g->bytes_in, 10u * THREADS * PER_THREAD);
    assert_int_equal(g->bytes_out, 20u * THREADS * PER_THREAD);
    assert_int_equal(tot->ops[STATS_OP_OTHER].requests, 1);
    assert_int_equal(tot->status[DAFS_ST_NOENT], THREADS * PER_THREAD / 100);
    const double q[] = {0.5, 0.9, 0.99, 0.999};
    for (int i = 0; i < 4; i++) {
        double want = q[i] * PER_THREAD * 1000.0, got = (double)stats_percentile(g, q[i]);
        assert_true(got >= want * (1 - 1.0 / 16) && got <= want * (1 + 1.0 / 16));
    }
    stats_gauges gg = {.sessions = 3, .max_sessions = 10, .credits_in_use = 2,
                       .credits_granted = 96, .locks = 5, .lock_waiters = 1, .locks_broken = 2,
                       .lock_rollbacks = 7};
    strbuf b;
    sb_init(&b, 1 << 20);
    stats_format_json(&b, tot, &gg);
    assert_false(b.failed);
    assert_non_null(strstr(b.p, "\"GETATTR\":{\"requests\":40000,\"errors\":400,"));
    assert_non_null(strstr(b.p, "\"sessions\":3,"));
    assert_non_null(strstr(b.p, "\"locks\":5,\"lock_waiters\":1,\"locks_broken\":2,"
                                "\"lock_rollbacks\":7,"));
    assert_non_null(strstr(b.p, "\"OTHER\":{\"requests\":1,"));
    sb_free(&b);
    sb_init(&b, 1 << 20);
    stats_format_prometheus(&b, tot, &gg);
    assert_false(b.failed);
    assert_non_null(strstr(b.p, "# TYPE dafs_requests_total counter\n"));
    assert_non_null(strstr(b.p, "dafs_requests_total{op=\"GETATTR\"} 40000\n"));
    assert_non_null(strstr(b.p, "dafs_request_latency_seconds_count{op=\"GETATTR\"} 40000\n"));
    assert_non_null(strstr(b.p, "dafs_credits_granted 96\n"));
    assert_non_null(strstr(b.p, "dafs_locks 5\n"));
    assert_non_null(strstr(b.p, "dafs_lock_rollbacks_total 7\n"));
    sb_free(&b);
    sb_init(&b, 1 << 20);
    stats_format_text(&b, tot, &gg);
    assert_false(b.failed);
    assert_non_null(strstr(b.p, "GETATTR"));
    assert_non_null(strstr(b.p, "locks: 5 held, 1 waiting   broken: 2   rolled back: 7\n"));
    sb_free(&b);
    sb_init(&b, 64); /* the cap holds */
    stats_format_text(&b, tot, &gg);
    assert_true(b.failed);
    sb_free(&b);
    free(tot);
}

static void test_json_string(void **state)
{
    (void)state;
    strbuf b;
    sb_init(&b, 4096);
    sb_json_string(&b, "a\"b\\c\n\x01\xff", 8);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\u000a\\u0001\\u00ff\"");
    sb_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_threads_and_percentiles),
        cmocka_unit_test(test_json_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
