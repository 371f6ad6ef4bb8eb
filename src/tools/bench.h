/*
 * bench.h — shared pieces of dafs-bench: results, timing, CPU accounting,
 * and the workload runners (raw fabric floor, dafs, local directory).
 */
#ifndef DAFS_BENCH_H
#define DAFS_BENCH_H

#include <stddef.h>
#include <sys/types.h>

typedef struct bench_result {
    int ops;
    size_t size;                 /* bytes per operation (0 for metadata) */
    double ops_per_s, mb_per_s;
    double mean_us, p50_us, p99_us;
    double client_cpu_us_per_op; /* this process, user + system */
    double server_cpu_us_per_op; /* server process, from /proc; 0 when not known */
} bench_result;

typedef struct bench_floor_case {
    size_t size;
    int depth; /* outstanding requests, <= 32 */
    int ops;
} bench_floor_case;

double bench_now(void);                 /* monotonic seconds */
double bench_self_cpu_us(void);         /* user+system CPU of this process */
double bench_proc_cpu_us(pid_t pid);    /* user+system CPU of another process (/proc) */
size_t bench_round_up(size_t n, size_t align);
/* Fill r from per-op latencies (seconds; sorted in place). */
void bench_fill_result(bench_result *r, double *lat, int n, double elapsed, size_t size,
                       double client_cpu_per_op);

/* Raw libfabric floor: request, server RMA write of `size`, reply. */
int bench_floor(const char *provider, const bench_floor_case *cases, size_t ncases,
                bench_result *results);

#endif
