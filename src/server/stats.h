/*
 * stats.h — dafsd's live statistics: per opcode, requests, errors, bytes in
 * and out and a latency histogram; per status, how many replies carried it.
 *
 * Hot path: stats_record() adds to counters owned by the calling thread (a
 * block allocated at its first call), with relaxed atomic loads and stores
 * and no lock and no shared cache line, so it costs a few additions.
 * Readers (the admin socket, the metrics endpoint) sum every thread's block
 * at read time; percentiles are computed then from the summed histogram.
 *
 * Latency histogram: log-linear ("HDR-style") buckets over nanoseconds, 8
 * sub-buckets per power of two (relative error under 1/16 at the bucket's
 * midpoint), from 0 ns to 2^41 ns (~37 min); anything longer counts in the
 * last bucket.
 */
#ifndef DAFSD_STATS_H
#define DAFSD_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define STATS_OPS           128 /* opcodes 0..126; every other one counts as 127 */
#define STATS_OP_OTHER      (STATS_OPS - 1)
#define STATS_HIST_SUB_BITS 3
#define STATS_HIST_MAX_LOG  40
#define STATS_HIST_BUCKETS  ((STATS_HIST_MAX_LOG - 1) * (1 << STATS_HIST_SUB_BITS))
#define STATS_STATUSES      192 /* 0..127 errno-like, 128.. 10001+, last: other */

/* Monotonic nanoseconds: the start of a request, for stats_record. */
uint64_t stats_clock(void);

/* Count one answered (or dropped) request.  Any thread, no lock. */
void stats_record(uint16_t op, int status, uint64_t bytes_in, uint64_t bytes_out,
                  uint64_t latency_ns);

/* stats_record for a reply (its header names the opcode) to a request: the
 * request and reply messages' lengths plus the file data moved by RMA
 * (READ_DIRECT out; WRITE_DIRECT and APPEND_DIRECT in, when req is given)
 * count as bytes; the latency runs from t_recv (stats_clock() when the
 * request arrived) to now. */
void stats_reply(const dafs_request *req, const dafs_reply *rep, int status, size_t req_len,
                 size_t rep_len, uint64_t t_recv);

/* The network thread: a message of len bytes has arrived (returns its
 * stats_clock() time, remembered for stats_reply_here); a reply to it goes
 * out from this thread (rep_len 0: none). */
uint64_t stats_request_begin(size_t len);
void stats_reply_here(const dafs_reply *rep, size_t rep_len);

/* ---- reading ----------------------------------------------------------- */

typedef struct stats_op_total {
    uint64_t requests, errors, bytes_in, bytes_out;
    uint64_t hist[STATS_HIST_BUCKETS];
} stats_op_total;

typedef struct stats_totals {
    stats_op_total ops[STATS_OPS];
    uint64_t status[STATS_STATUSES];
} stats_totals;

/* State of the server that is not a counter, filled in by the caller. */
typedef struct stats_gauges {
    unsigned sessions; /* open sessions */
    unsigned max_sessions;
    uint64_t credits_in_use;  /* admitted requests not yet answered */
    uint64_t credits_granted; /* sum of the sessions' grants */
    double uptime_s;
    uint64_t locks;           /* byte-range lock records held (a split counts) */
    uint64_t lock_waiters;    /* LOCK requests queued */
    uint64_t locks_broken;    /* PERSIST locks broken since start */
    uint64_t lock_rollbacks;  /* AUTORECOVER rollbacks since start */
} stats_gauges;

/* Sum every thread's counters into *out (a large struct: allocate it). */
void stats_collect(stats_totals *out);

/* Latency at quantile q (0..1) of one opcode, in ns (0 with no samples). */
uint64_t stats_percentile(const stats_op_total *t, double q);

/* Bucket index of a latency, and the bounds of a bucket (for tests). */
unsigned stats_bucket_of(uint64_t ns);
uint64_t stats_bucket_low(unsigned b);
uint64_t stats_bucket_high(unsigned b); /* inclusive */

/* Status code of status-table slot i, or -1 for "other". */
int stats_status_of_slot(unsigned i);

/* ---- output ------------------------------------------------------------ */

/* A growing text buffer with a hard cap; `failed` once out of memory or cap. */
typedef struct strbuf {
    char *p;
    size_t len, cap, limit;
    bool failed;
} strbuf;

void sb_init(strbuf *b, size_t limit);
void sb_free(strbuf *b);
void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal (quotes and escapes included). */
void sb_json_string(strbuf *b, const char *s, size_t len);

/* Human-readable table, JSON object, and Prometheus text exposition format
 * (version 0.0.4) of the totals and gauges.  Only opcodes with requests are
 * listed. */
void stats_format_text(strbuf *b, const stats_totals *t, const stats_gauges *g);
void stats_format_json(strbuf *b, const stats_totals *t, const stats_gauges *g);
void stats_format_prometheus(strbuf *b, const stats_totals *t, const stats_gauges *g);

#endif
