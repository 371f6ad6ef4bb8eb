/*
 * stats.c — per-thread counters summed at read time (see stats.h).
 *
 * Each recording thread owns one stats_block, found through a thread-local
 * pointer and linked once, under a mutex, into a global list that readers
 * walk.  The owner is the only writer of its block, so an increment is a
 * relaxed load and store of an _Atomic (a plain add on x86 and arm64, no
 * lock prefix); readers' relaxed loads see each counter whole, possibly a
 * few requests behind.  Blocks live until the process exits (a thread that
 * ends leaves its counts behind, as it should).
 */
#include "stats.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct stats_op_block {
    _Atomic uint64_t requests, errors, bytes_in, bytes_out;
    _Atomic uint64_t hist[STATS_HIST_BUCKETS];
} stats_op_block;

typedef struct stats_block {
    stats_op_block ops[STATS_OPS];
    _Atomic uint64_t status[STATS_STATUSES];
    struct stats_block *next;
} stats_block;

static pthread_mutex_t blocks_mu = PTHREAD_MUTEX_INITIALIZER;
static stats_block *_Atomic blocks; /* newest first; only ever grows */
static _Thread_local stats_block *my_block;

uint64_t stats_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static stats_block *thread_block(void)
{
    if (my_block)
        return my_block;
    stats_block *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL; /* this thread's requests go uncounted; nothing else suffers */
    pthread_mutex_lock(&blocks_mu);
    b->next = atomic_load_explicit(&blocks, memory_order_relaxed);
    atomic_store_explicit(&blocks, b, memory_order_release);
    pthread_mutex_unlock(&blocks_mu);
    my_block = b;
    return b;
}

static inline void bump(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

unsigned stats_bucket_of(uint64_t ns)
{
    const unsigned sub = 1u << STATS_HIST_SUB_BITS;
    if (ns < sub)
        return (unsigned)ns;
    unsigned k = 63u - (unsigned)__builtin_clzll(ns); /* >= SUB_BITS */
    if (k > STATS_HIST_MAX_LOG)
        return STATS_HIST_BUCKETS - 1;
    unsigned s = (unsigned)(ns >> (k - STATS_HIST_SUB_BITS)) & (sub - 1);
    return (k - STATS_HIST_SUB_BITS + 1) * sub + s;
}

uint64_t stats_bucket_low(unsigned b)
{
    const unsigned sub = 1u << STATS_HIST_SUB_BITS;
    if (b < sub)
        return b;
    unsigned k = b / sub + STATS_HIST_SUB_BITS - 1;
    return (uint64_t)(sub + b % sub) << (k - STATS_HIST_SUB_BITS);
}

uint64_t stats_bucket_high(unsigned b)
{
    const unsigned sub = 1u << STATS_HIST_SUB_BITS;
    if (b < sub)
        return b;
    if (b >= STATS_HIST_BUCKETS - 1)
        return UINT64_MAX;
    unsigned k = b / sub + STATS_HIST_SUB_BITS - 1;
    return stats_bucket_low(b) + ((uint64_t)1 << (k - STATS_HIST_SUB_BITS)) - 1;
}

static unsigned status_slot(int status)
{
    if (status >= 0 && status < 128)
        return (unsigned)status;
    if (status >= DAFS_ST_BADSESSION && status < DAFS_ST_BADSESSION + (STATS_STATUSES - 129))
        return 128u + (unsigned)(status - DAFS_ST_BADSESSION);
    return STATS_STATUSES - 1;
}

int stats_status_of_slot(unsigned i)
{
    if (i < 128)
        return (int)i;
    if (i < STATS_STATUSES - 1)
        return DAFS_ST_BADSESSION + (int)(i - 128);
    return -1;
}

void stats_record(uint16_t op, int status, uint64_t bytes_in, uint64_t bytes_out,
                  uint64_t latency_ns)
{
    stats_block *b = thread_block();
    if (!b)
        return;
    stats_op_block *o = &b->ops[op < STATS_OP_OTHER ? op : STATS_OP_OTHER];
    bump(&o->requests, 1);
    if (status != DAFS_ST_OK)
        bump(&o->errors, 1);
    bump(&o->bytes_in, bytes_in);
    bump(&o->bytes_out, bytes_out);
    bump(&o->hist[stats_bucket_of(latency_ns)], 1);
    bump(&b->status[status_slot(status)], 1);
}

void stats_reply(const dafs_request *req, const dafs_reply *rep, int status, size_t req_len,
                 size_t rep_len, uint64_t t_recv)
{
    uint64_t in = req_len, out = rep_len;
    uint16_t op = rep->hdr.opcode;
    if (status == DAFS_ST_OK) {
        if (op == DAFS_OP_READ_DIRECT)
            out += rep->u.read.count;
        else if (req && (op == DAFS_OP_WRITE_DIRECT || op == DAFS_OP_APPEND_DIRECT))
            in += req->u.write.count;
    }
    uint64_t now = stats_clock();
    stats_record(op, status, in, out, now > t_recv ? now - t_recv : 0);
}

static _Thread_local uint64_t here_t0;
static _Thread_local size_t here_len;

uint64_t stats_request_begin(size_t len)
{
    here_t0 = stats_clock();
    here_len = len;
    return here_t0;
}

void stats_reply_here(const dafs_reply *rep, size_t rep_len)
{
    stats_reply(NULL, rep, rep->hdr.status, here_len, rep_len, here_t0);
}

/* ---- reading ----------------------------------------------------------- */

void stats_collect(stats_totals *out)
{
    memset(out, 0, sizeof(*out));
    for (stats_block *b = atomic_load_explicit(&blocks, memory_order_acquire); b; b = b->next) {
        for (unsigned i = 0; i < STATS_OPS; i++) {
            stats_op_block *o = &b->ops[i];
            stats_op_total *t = &out->ops[i];
            uint64_t n = atomic_load_explicit(&o->requests, memory_order_relaxed);
            if (n == 0)
                continue;
            t->requests += n;
            t->errors += atomic_load_explicit(&o->errors, memory_order_relaxed);
            t->bytes_in += atomic_load_explicit(&o->bytes_in, memory_order_relaxed);
            t->bytes_out += atomic_load_explicit(&o->bytes_out, memory_order_relaxed);
            for (unsigned h = 0; h < STATS_HIST_BUCKETS; h++)
                t->hist[h] += atomic_load_explicit(&o->hist[h], memory_order_relaxed);
        }
        for (unsigned i = 0; i < STATS_STATUSES; i++)
            out->status[i] += atomic_load_explicit(&b->status[i], memory_order_relaxed);
    }
}

uint64_t stats_percentile(const stats_op_total *t, double q)
{
    uint64_t n = 0;
    for (unsigned h = 0; h < STATS_HIST_BUCKETS; h++)
        n += t->hist[h];
    if (n == 0)
        return 0;
    /* the smallest bucket holding the ceil(q * n)-th sample */
    uint64_t rank = (uint64_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    uint64_t seen = 0;
    for (unsigned h = 0; h < STATS_HIST_BUCKETS; h++) {
        seen += t->hist[h];
        if (seen >= rank) {
            uint64_t lo = stats_bucket_low(h);
            uint64_t hi = stats_bucket_high(h);
            return hi == UINT64_MAX ? lo : lo + (hi - lo) / 2;
        }
    }
    return 0;
}

/* ---- strbuf -------------------------------------------------------------- */

void sb_init(strbuf *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

void sb_free(strbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void sb_printf(strbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t want = b->cap ? b->cap * 2 : 4096;
        while (want < b->len + (size_t)n + 1)
            want *= 2;
        if (want > b->limit) {
            b->failed = true;
            return;
        }
        char *p = realloc(b->p, want);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = want;
    }
}

void sb_json_string(strbuf *b, const char *s, size_t len)
{
    sb_printf(b, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            sb_printf(b, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            sb_printf(b, "\\u%04x", c); /* bytes, not UTF-8: client ids are opaque */
        else
            sb_printf(b, "%c", c);
    }
    sb_printf(b, "\"");
}

/* ---- formats ------------------------------------------------------------- */

static const char *op_label(unsigned i)
{
    return i == STATS_OP_OTHER ? "OTHER" : dafs_op_name((uint16_t)i);
}

static const double quantiles[] = {0.5, 0.9, 0.99, 0.999};
static const char *const quantile_names[] = {"p50", "p90", "p99", "p99_9"};
#define NQUANTILES (sizeof(quantiles) / sizeof(quantiles[0]))

void stats_format_text(strbuf *b, const stats_totals *t, const stats_gauges *g)
{
    sb_printf(b, "sessions: %u (of %u)   credits in use: %llu (of %llu granted)   uptime: %.0f s\n",
              g->sessions, g->max_sessions, (unsigned long long)g->credits_in_use,
              (unsigned long long)g->credits_granted, g->uptime_s);
    sb_printf(b, "locks: %llu held, %llu waiting   broken: %llu   rolled back: %llu\n",
              (unsigned long long)g->locks, (unsigned long long)g->lock_waiters,
              (unsigned long long)g->locks_broken, (unsigned long long)g->lock_rollbacks);
    sb_printf(b, "\n%-16s %10s %8s %14s %14s %9s %9s %9s %9s\n", "OPERATION", "REQUESTS", "ERRORS",
              "BYTES_IN", "BYTES_OUT", "P50_US", "P90_US", "P99_US", "P99.9_US");
    uint64_t all = 0;
    for (unsigned i = 0; i < STATS_OPS; i++) {
        const stats_op_total *o = &t->ops[i];
        if (o->requests == 0)
            continue;
        all += o->requests;
        sb_printf(b, "%-16s %10llu %8llu %14llu %14llu", op_label(i),
                  (unsigned long long)o->requests, (unsigned long long)o->errors,
                  (unsigned long long)o->bytes_in, (unsigned long long)o->bytes_out);
        for (unsigned q = 0; q < NQUANTILES; q++)
            sb_printf(b, " %9.1f", (double)stats_percentile(o, quantiles[q]) / 1000.0);
        sb_printf(b, "\n");
    }
    if (all == 0)
        sb_printf(b, "(no requests yet)\n");
    bool header = false;
    for (unsigned i = 1; i < STATS_STATUSES; i++) {
        if (t->status[i] == 0)
            continue;
        if (!header)
            sb_printf(b, "\nerrors by status:\n");
        header = true;
        int st = stats_status_of_slot(i);
        if (st < 0)
            sb_printf(b, "  other %llu\n", (unsigned long long)t->status[i]);
        else
            sb_printf(b, "  %d %llu\n", st, (unsigned long long)t->status[i]);
    }
}

void stats_format_json(strbuf *b, const stats_totals *t, const stats_gauges *g)
{
    sb_printf(b,
              "{\"sessions\":%u,\"max_sessions\":%u,\"credits_in_use\":%llu,"
              "\"credits_granted\":%llu,\"uptime_s\":%.3f,\"locks\":%llu,"
              "\"lock_waiters\":%llu,\"locks_broken\":%llu,\"lock_rollbacks\":%llu,\"ops\":{",
              g->sessions, g->max_sessions, (unsigned long long)g->credits_in_use,
              (unsigned long long)g->credits_granted, g->uptime_s, (unsigned long long)g->locks,
              (unsigned long long)g->lock_waiters, (unsigned long long)g->locks_broken,
              (unsigned long long)g->lock_rollbacks);
    bool first = true;
    for (unsigned i = 0; i < STATS_OPS; i++) {
        const stats_op_total *o = &t->ops[i];
        if (o->requests == 0)
            continue;
        sb_printf(b,
                  "%s\"%s\":{\"requests\":%llu,\"errors\":%llu,\"bytes_in\":%llu,"
                  "\"bytes_out\":%llu,\"latency_ns\":{",
                  first ? "" : ",", op_label(i), (unsigned long long)o->requests,
                  (unsigned long long)o->errors, (unsigned long long)o->bytes_in,
                  (unsigned long long)o->bytes_out);
        for (unsigned q = 0; q < NQUANTILES; q++)
            sb_printf(b, "%s\"%s\":%llu", q ? "," : "", quantile_names[q],
                      (unsigned long long)stats_percentile(o, quantiles[q]));
        sb_printf(b, "}}");
        first = false;
    }
    sb_printf(b, "},\"status\":{");
    first = true;
    for (unsigned i = 0; i < STATS_STATUSES; i++) {
        if (t->status[i] == 0)
            continue;
        int st = stats_status_of_slot(i);
        if (st < 0)
            sb_printf(b, "%s\"other\":%llu", first ? "" : ",", (unsigned long long)t->status[i]);
        else
            sb_printf(b, "%s\"%d\":%llu", first ? "" : ",", st, (unsigned long long)t->status[i]);
        first = false;
    }
    sb_printf(b, "}}\n");
}

/* One counter family: HELP, TYPE, a sample per opcode with requests. */
static void prom_op_counter(strbuf *b, const stats_totals *t, const char *name, const char *help,
                            size_t field)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (unsigned i = 0; i < STATS_OPS; i++) {
        const stats_op_total *o = &t->ops[i];
        if (o->requests == 0)
            continue;
        uint64_t v = *(const uint64_t *)((const char *)o + field);
        sb_printf(b, "%s{op=\"%s\"} %llu\n", name, op_label(i), (unsigned long long)v);
    }
}

void stats_format_prometheus(strbuf *b, const stats_totals *t, const stats_gauges *g)
{
    sb_printf(b,
              "# HELP dafs_sessions Open sessions.\n# TYPE dafs_sessions gauge\n"
              "dafs_sessions %u\n",
              g->sessions);
    sb_printf(b,
              "# HELP dafs_sessions_max Most sessions the server accepts.\n"
              "# TYPE dafs_sessions_max gauge\ndafs_sessions_max %u\n",
              g->max_sessions);
    sb_printf(b,
              "# HELP dafs_credits_in_use Requests admitted and not yet answered.\n"
              "# TYPE dafs_credits_in_use gauge\ndafs_credits_in_use %llu\n",
              (unsigned long long)g->credits_in_use);
    sb_printf(b,
              "# HELP dafs_credits_granted Credits granted to all sessions.\n"
              "# TYPE dafs_credits_granted gauge\ndafs_credits_granted %llu\n",
              (unsigned long long)g->credits_granted);
    sb_printf(b,
              "# HELP dafs_uptime_seconds Seconds since dafsd started.\n"
              "# TYPE dafs_uptime_seconds gauge\ndafs_uptime_seconds %.3f\n",
              g->uptime_s);
    sb_printf(b,
              "# HELP dafs_locks Byte-range lock records held.\n# TYPE dafs_locks gauge\n"
              "dafs_locks %llu\n"
              "# HELP dafs_lock_waiters LOCK requests queued.\n# TYPE dafs_lock_waiters gauge\n"
              "dafs_lock_waiters %llu\n"
              "# HELP dafs_locks_broken_total PERSIST locks broken.\n"
              "# TYPE dafs_locks_broken_total counter\ndafs_locks_broken_total %llu\n"
              "# HELP dafs_lock_rollbacks_total AUTORECOVER rollbacks.\n"
              "# TYPE dafs_lock_rollbacks_total counter\ndafs_lock_rollbacks_total %llu\n",
              (unsigned long long)g->locks, (unsigned long long)g->lock_waiters,
              (unsigned long long)g->locks_broken, (unsigned long long)g->lock_rollbacks);
    prom_op_counter(b, t, "dafs_requests_total", "Requests answered, by operation.",
                    offsetof(stats_op_total, requests));
    prom_op_counter(b, t, "dafs_errors_total", "Replies with a status other than OK.",
                    offsetof(stats_op_total, errors));
    prom_op_counter(b, t, "dafs_bytes_in_total",
                    "Request bytes received, with file data read by RMA.",
                    offsetof(stats_op_total, bytes_in));
    prom_op_counter(b, t, "dafs_bytes_out_total",
                    "Reply bytes sent, with file data written by RMA.",
                    offsetof(stats_op_total, bytes_out));
    sb_printf(b, "# HELP dafs_request_latency_seconds Request latency, receipt to reply.\n"
                 "# TYPE dafs_request_latency_seconds summary\n");
    for (unsigned i = 0; i < STATS_OPS; i++) {
        const stats_op_total *o = &t->ops[i];
        if (o->requests == 0)
            continue;
        uint64_t count = 0;
        double sum = 0;
        for (unsigned h = 0; h < STATS_HIST_BUCKETS; h++) {
            if (!o->hist[h])
                continue;
            count += o->hist[h];
            uint64_t lo = stats_bucket_low(h), hi = stats_bucket_high(h);
            double mid = hi == UINT64_MAX ? (double)lo : (double)lo + (double)(hi - lo) / 2;
            sum += mid * (double)o->hist[h]; /* from the buckets: within 1/16 */
        }
        for (unsigned q = 0; q < NQUANTILES; q++)
            sb_printf(b, "dafs_request_latency_seconds{op=\"%s\",quantile=\"%g\"} %.9f\n",
                      op_label(i), quantiles[q], (double)stats_percentile(o, quantiles[q]) / 1e9);
        sb_printf(b, "dafs_request_latency_seconds_sum{op=\"%s\"} %.9f\n", op_label(i), sum / 1e9);
        sb_printf(b, "dafs_request_latency_seconds_count{op=\"%s\"} %llu\n", op_label(i),
                  (unsigned long long)count);
    }
    sb_printf(b, "# HELP dafs_replies_by_status_total Replies by status code (0 is OK).\n"
                 "# TYPE dafs_replies_by_status_total counter\n");
    for (unsigned i = 0; i < STATS_STATUSES; i++) {
        if (t->status[i] == 0)
            continue;
        int st = stats_status_of_slot(i);
        if (st < 0)
            sb_printf(b, "dafs_replies_by_status_total{status=\"other\"} %llu\n",
                      (unsigned long long)t->status[i]);
        else
            sb_printf(b, "dafs_replies_by_status_total{status=\"%d\"} %llu\n", st,
                      (unsigned long long)t->status[i]);
    }
}
