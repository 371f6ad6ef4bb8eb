/*
 * bench.h — shared pieces of dafs-bench: results, timing, CPU accounting,
 * the workload list, and the runners for the three systems measured in one
 * run (the raw fabric floor, dafs, a local directory), plus reporting.
 *
 * Everything is split by concern: bench_util.c (timing, statistics),
 * bench_floor.c (raw libfabric floor), bench_io.c (dafs and local workloads),
 * bench_mp.c (several client processes at once), bench_report.c (ratios,
 * targets, table, JSON, plot), dafs_bench.c (options and the order of runs).
 */
#ifndef DAFS_BENCH_H
#define DAFS_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define BENCH_MAX_REPEAT 15
#define BENCH_QD 32                 /* threads (dafs, local) or outstanding requests (floor) */
#define BENCH_FILE_SIZE (64u << 20) /* data file for the 4 KiB and 1 MiB workloads */
#define BENCH_SEQ_CALL (8u << 20)   /* one sequential call: 8 x 1 MiB in flight */
#define BENCH_SEQ_DEPTH 8

typedef struct bench_result {
    int ops;
    size_t size;                 /* bytes per operation (0 for metadata) */
    double ops_per_s, mb_per_s;
    double mean_us, p50_us, p99_us;
    double client_cpu_us_per_op; /* client process(es), user + system (getrusage) */
    double server_cpu_us_per_op; /* server process (/proc); < 0 when not known */
} bench_result;

/* The workloads, in table order.  Each has a dafs and a local row and, where
 * one makes sense, a floor row. */
enum bench_workload {
    BW_READ4K_QD1,
    BW_READ4K_QD32,
    BW_WRITE4K_QD1,
    BW_WRITE4K_QD32,
    BW_READ4K_ASYNC_QD32,  /* one thread, 32 in flight (dafs_submit / dafs_cq_reap) */
    BW_WRITE4K_ASYNC_QD32,
    BW_READ4K_BATCH32, /* one thread, dafs_batch of BENCH_QD 4 KiB reads */
    BW_SEQREAD_1M,
    BW_SEQWRITE_1M,
    BW_CREATE,
    BW_STAT,
    BW_READDIR,
    BW_UNLINK,
    BW_LOCK,           /* exclusive lock + unlock of a range of the data file, QD1 */
    BW_WRITE4K_AR,     /* write4k_qd1 under an AUTORECOVER lock (every write undo-logged) */
    BW_MP1,
    BW_MP2,
    BW_MP4,
    BW_MP8,
    BW_MP16,
    BW_COUNT
};

enum bench_system { BS_FLOOR, BS_DAFS, BS_LOCAL, BS_COUNT };

typedef struct bench_workload_info {
    const char *id;    /* short name for --workloads and JSON */
    const char *group; /* --workloads group it belongs to */
    const char *title; /* table label */
    int latency_bound; /* QD1 rows: compare mean latency, else throughput */
    int procs;         /* multi-process rows: number of client processes */
} bench_workload_info;

extern const bench_workload_info bench_workloads[BW_COUNT];
extern const char *const bench_system_names[BS_COUNT];

/* Floor operation kinds: what the server does between request and reply. */
enum bench_floor_kind {
    BF_MSG,       /* nothing: a bare message round trip */
    BF_RMA_WRITE, /* RMA-write `size` bytes into the client (a dafs read) */
    BF_RMA_READ,  /* RMA-read `size` bytes from the client (a dafs write) */
};

typedef struct bench_floor_case {
    enum bench_floor_kind kind;
    size_t size;
    int depth; /* outstanding requests, <= BENCH_QD */
    int ops;
} bench_floor_case;

typedef struct bench_opts {
    const char *provider;
    const char *url;     /* existing server, or NULL to start one */
    int repeat;
    int json;
    int quick;
    const char *plot;    /* PNG path or NULL */
    int ops_small;       /* 4 KiB operations per QD1 run */
    int ops_qd32;        /* 4 KiB operations per QD32 run (all threads together) */
    int seq_calls;       /* 8 MiB calls per sequential run */
    int ops_meta;        /* files in the metadata directory */
    int ops_mp;          /* 4 KiB reads per client process in the multi-process runs */
    int selected[BW_COUNT];
} bench_opts;

/* ---- bench_util.c ---- */
double bench_now(void);                 /* monotonic seconds */
double bench_self_cpu_us(void);         /* user+system CPU of this process (all threads) */
double bench_children_cpu_us(void);     /* user+system CPU of waited-for children */
double bench_proc_cpu_us(pid_t pid);    /* user+system CPU of another process (/proc) */
size_t bench_round_up(size_t n, size_t align);
/* Fill r from per-op latencies (seconds; sorted in place).  Keeps
 * r->server_cpu_us_per_op. */
void bench_fill_result(bench_result *r, double *lat, int n, double elapsed, size_t size,
                       double client_cpu_per_op);
/* The median of n results by ops/s (n >= 1; reorders runs). */
bench_result bench_median(bench_result *runs, int n);
/* Server CPU per op between two /proc readings, or -1 when pid <= 0. */
double bench_server_cpu_per_op(pid_t pid, double before_us, int ops);

/* ---- bench_floor.c ---- */
typedef struct bench_floor_server {
    pid_t pid;
    char port[32];
} bench_floor_server;

int bench_floor_server_start(const char *provider, size_t max_size, bench_floor_server *out);
void bench_floor_server_stop(bench_floor_server *srv);
/* One client: run the cases in order on one endpoint (results[i] per case). */
/* A client endpoint, set up (HELLO done) and ready to run cases. */
typedef struct bench_floor_client bench_floor_client;
bench_floor_client *bench_floor_connect(const char *provider, const char *port,
                                        size_t data_len);
int bench_floor_client_run(bench_floor_client *cl, pid_t server, const bench_floor_case *c,
                           bench_result *r);
void bench_floor_disconnect(bench_floor_client *cl); /* NULL is fine */
/* server: the floor server's pid, for its CPU per case (0: unknown). */
int bench_floor_run(const char *provider, const char *port, pid_t server,
                    const bench_floor_case *cases, size_t ncases, bench_result *results);

/* ---- bench_io.c ---- */
struct dafs_session;
/* Run the selected dafs workloads (one repeat) on an open session; fills
 * out[w] for each selected w that is not multi-process. */
int bench_io_dafs(struct dafs_session *s, const bench_opts *o, pid_t server, int repeat_index,
                  bench_result out[BW_COUNT]);
/* The same on a local directory. */
int bench_io_local(const char *dir, const bench_opts *o, int repeat_index,
                   bench_result out[BW_COUNT]);
/* Create the 64 MiB data file the 4 KiB and 1 MiB workloads use. */
int bench_io_prepare_dafs(struct dafs_session *s);
int bench_io_prepare_local(const char *dir);
void bench_io_cleanup_dafs(struct dafs_session *s);
void bench_io_cleanup_local(const char *dir);
#define BENCH_DATA_FILE "dafs-bench.dat"

/* ---- bench_mp.c ---- */
/* `nprocs` client processes each doing o->ops_mp 4 KiB random reads at QD1
 * against `sys` (target: dafs URL, local directory, or floor port). */
int bench_mp_run(enum bench_system sys, const char *target, int nprocs, const bench_opts *o,
                 pid_t server, bench_result *out);
/* Entry point of a child (argv after "--child"); returns the exit status. */
int bench_mp_child_main(int argc, char **argv);

/* ---- bench_report.c ---- */
typedef struct bench_table {
    int have[BW_COUNT][BS_COUNT];
    bench_result r[BW_COUNT][BS_COUNT];
    int server_cpu_known;
    int shm; /* the provider is shm (its targets differ) */
} bench_table;

void bench_report_table(FILE *out, const bench_table *t, const bench_opts *o);
void bench_report_json(FILE *out, const bench_table *t, const bench_opts *o);
int bench_report_plot(const char *png, const bench_table *t, const bench_opts *o);
/* Number of targets that apply and failed (for the exit status, informative). */
int bench_report_failed_targets(const bench_table *t);

#endif
