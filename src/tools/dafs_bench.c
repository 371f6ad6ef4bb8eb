/*
 * dafs_bench.c — dafs-bench: the same workloads against dafs, a local
 * directory and the raw libfabric floor, in one run, on one provider.
 *
 * Every figure is meant to be read as a ratio: dafs against the floor (what
 * the fabric allows) and against the local file system (what the page cache
 * allows).  The machine is noisy, so the three systems take turns within each
 * of --repeat rounds and the median round (by ops/s) of every workload is
 * reported.
 *
 * By default dafs-bench starts its own dafsd (from the same bin directory)
 * on 127.0.0.1 with a scratch export, and the local baseline uses a scratch
 * directory on the same file system; --url uses an existing server instead
 * (its CPU is then unknown).  This file holds the options and the order of
 * runs; the workloads are in bench_io.c, bench_mp.c and bench_floor.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dafs_version.h"
#include "bench.h"
#include <dafs/dafs.h>

/* ---- server management --------------------------------------------------- */

static int start_dafsd(const char *provider, char *scratch, size_t scratch_len, pid_t *pid,
                       char *url, size_t url_len)
{
    char self[PATH_MAX], dafsd[PATH_MAX + 16], exp[PATH_MAX], state[PATH_MAX], ready[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -errno;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(dafsd, sizeof(dafsd), "%s/dafsd", self);
    snprintf(scratch, scratch_len, "/tmp/dafs-bench.XXXXXX");
    if (!mkdtemp(scratch))
        return -errno;
    snprintf(exp, sizeof(exp), "%s/export", scratch);
    snprintf(state, sizeof(state), "%s/state", scratch);
    snprintf(ready, sizeof(ready), "%s/ready", scratch);
    if (mkdir(exp, 0755) != 0 || mkdir(state, 0700) != 0)
        return -errno;
    *pid = fork();
    if (*pid < 0)
        return -errno;
    if (*pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM); /* no stray dafsd if dafs-bench is killed */
        execl(dafsd, "dafsd", "--export", exp, "--state-dir", state, "--listen", "127.0.0.1:0",
              "--ready-file", ready, "--provider", provider, "--no-root-squash", (char *)NULL);
        fprintf(stderr, "dafs-bench: exec %s: %s\n", dafsd, strerror(errno));
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(ready, "r");
        unsigned port = 0;
        if (f) {
            int got = fscanf(f, "%u", &port);
            fclose(f);
            if (got == 1) {
                snprintf(url, url_len, "dafs://127.0.0.1:%u/", port);
                return 0;
            }
        }
        if (waitpid(*pid, NULL, WNOHANG) == *pid)
            return -ECHILD;
        usleep(10000);
    }
    return -ETIMEDOUT;
}

static void stop_dafsd(pid_t pid, const char *scratch)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    if (scratch[0]) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
        if (system(cmd) != 0)
            fprintf(stderr, "dafs-bench: could not remove %s\n", scratch);
    }
}

/* ---- the runs ------------------------------------------------------------- */

/* All results of all rounds, then the medians. */
static bench_result runs[BENCH_MAX_REPEAT][BW_COUNT][BS_COUNT];
static int ran[BW_COUNT][BS_COUNT];

typedef struct floor_row {
    int workload;
    bench_floor_case c;
} floor_row;

static int floor_rows(const bench_opts *o, floor_row *rows)
{
    floor_row all[] = {
        {BW_READ4K_QD1, {BF_RMA_WRITE, 4096, 1, o->ops_small}},
        {BW_READ4K_QD32, {BF_RMA_WRITE, 4096, BENCH_QD, o->ops_qd32}},
        {BW_WRITE4K_QD1, {BF_RMA_READ, 4096, 1, o->ops_small}},
        {BW_WRITE4K_QD32, {BF_RMA_READ, 4096, BENCH_QD, o->ops_qd32}},
        {BW_READ4K_ASYNC_QD32, {BF_RMA_WRITE, 4096, BENCH_QD, o->ops_qd32}},
        {BW_WRITE4K_ASYNC_QD32, {BF_RMA_READ, 4096, BENCH_QD, o->ops_qd32}},
        {BW_READ4K_BATCH32, {BF_RMA_WRITE, 4096, BENCH_QD, o->ops_qd32}}, /* same depth */
        {BW_SEQREAD_1M, {BF_RMA_WRITE, 1u << 20, BENCH_SEQ_DEPTH, o->seq_calls * 8}},
        {BW_SEQWRITE_1M, {BF_RMA_READ, 1u << 20, BENCH_SEQ_DEPTH, o->seq_calls * 8}},
        {BW_STAT, {BF_MSG, 0, 1, o->ops_meta}},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (o->selected[all[i].workload])
            rows[n++] = all[i];
    return n;
}

static int run_floor_round(const bench_opts *o, const bench_floor_server *fs, int rep)
{
    floor_row rows[16];
    bench_floor_case cases[16];
    bench_result res[16];
    int n = floor_rows(o, rows);
    if (n == 0)
        return 0;
    for (int i = 0; i < n; i++)
        cases[i] = rows[i].c;
    memset(res, 0, sizeof(res));
    int rc = bench_floor_run(o->provider, fs->port, fs->pid, cases, (size_t)n, res);
    if (rc != 0) {
        fprintf(stderr, "dafs-bench: floor: %s\n", strerror(-rc));
        return rc;
    }
    for (int i = 0; i < n; i++) {
        int w = rows[i].workload;
        runs[rep][w][BS_FLOOR] = res[i];
        ran[w][BS_FLOOR] = 1;
        if (w == BW_STAT) { /* the bare message round trip is the floor of every metadata op */
            static const int meta[] = {BW_CREATE, BW_UNLINK};
            for (int k = 0; k < 2; k++) {
                runs[rep][meta[k]][BS_FLOOR] = res[i];
                ran[meta[k]][BS_FLOOR] = 1;
            }
        }
    }
    return 0;
}

/* Copy one round's dafs or local results (indexed by workload) in place. */
static void keep_io_results(const bench_opts *o, int rep, int sys, const bench_result *res)
{
    for (int w = 0; w < BW_MP1; w++)
        if (o->selected[w]) {
            if (sys == BS_LOCAL && (w == BW_READ4K_ASYNC_QD32 || w == BW_WRITE4K_ASYNC_QD32))
                continue; /* no local row: the local rows are the threaded QD32 ones */
            runs[rep][w][sys] = res[w];
            ran[w][sys] = 1;
        }
}

static int run_mp_round(const bench_opts *o, int rep, const char *url, pid_t server,
                        const char *local_dir, const bench_floor_server *fs)
{
    for (int w = BW_MP1; w < BW_COUNT; w++) {
        if (!o->selected[w])
            continue;
        int n = bench_workloads[w].procs;
        const char *targets[BS_COUNT] = {fs->port, url, local_dir};
        pid_t pids[BS_COUNT] = {fs->pid, server, 0};
        for (int s = 0; s < BS_COUNT; s++) {
            int rc = bench_mp_run((enum bench_system)s, targets[s], n, o, pids[s],
                                  &runs[rep][w][s]);
            if (rc != 0) {
                fprintf(stderr, "dafs-bench: %d %s client processes: %s\n", n,
                        bench_system_names[s], dafs_strerror(rc));
                return rc;
            }
            ran[w][s] = 1;
        }
    }
    return 0;
}

static int run_rounds(const bench_opts *o, const char *url, pid_t server, const char *local_dir)
{
    bench_floor_server fs = {0};
    dafs_session *s = NULL;
    dafs_options dopts = {.provider = o->provider};
    int rc = bench_floor_server_start(o->provider, (size_t)BENCH_SEQ_DEPTH << 20, &fs);
    if (rc != 0)
        fprintf(stderr, "dafs-bench: starting the floor server: %s\n", strerror(-rc));
    if (rc == 0) {
        rc = dafs_connect(url, &dopts, &s);
        if (rc != 0)
            fprintf(stderr, "dafs-bench: connect %s: %s\n", url, dafs_strerror(rc));
    }
    /* Every selection needs the data file: the dafs and local rounds open it
     * before running any workload, the metadata ones included. */
    if (rc == 0) {
        rc = bench_io_prepare_dafs(s);
        if (rc == 0)
            rc = bench_io_prepare_local(local_dir);
        if (rc != 0)
            fprintf(stderr, "dafs-bench: writing the data files: %s\n", dafs_strerror(rc));
    }
    for (int rep = 0; rc == 0 && rep < o->repeat; rep++) {
        bench_result res[BW_COUNT];
        rc = run_floor_round(o, &fs, rep);
        if (rc == 0) {
            memset(res, 0, sizeof(res));
            rc = bench_io_dafs(s, o, server, rep, res);
            if (rc != 0)
                fprintf(stderr, "dafs-bench: dafs workloads: %s\n", dafs_strerror(rc));
            else
                keep_io_results(o, rep, BS_DAFS, res);
        }
        if (rc == 0) {
            memset(res, 0, sizeof(res));
            rc = bench_io_local(local_dir, o, rep, res);
            if (rc != 0)
                fprintf(stderr, "dafs-bench: local workloads: %s\n", strerror(-rc));
            else
                keep_io_results(o, rep, BS_LOCAL, res);
        }
        if (rc == 0)
            rc = run_mp_round(o, rep, url, server, local_dir, &fs);
    }
    if (s) {
        bench_io_cleanup_dafs(s);
        dafs_disconnect(s);
    }
    bench_io_cleanup_local(local_dir);
    bench_floor_server_stop(&fs);
    return rc;
}

static void take_medians(const bench_opts *o, bench_table *t)
{
    memset(t, 0, sizeof(*t));
    t->shm = o->provider != NULL && strncmp(o->provider, "shm", 3) == 0;
    for (int w = 0; w < BW_COUNT; w++)
        for (int sys = 0; sys < BS_COUNT; sys++) {
            if (!ran[w][sys])
                continue;
            bench_result col[BENCH_MAX_REPEAT];
            for (int i = 0; i < o->repeat; i++)
                col[i] = runs[i][w][sys];
            t->r[w][sys] = bench_median(col, o->repeat);
            t->have[w][sys] = 1;
        }
}

/* ---- options --------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dafs-bench [--provider NAME] [--url dafs://HOST[:PORT]/] [--repeat N]\n"
            "                  [--quick] [--json] [--plot FILE.png] [--workloads LIST]\n"
            "Runs 4 KiB random reads/writes (QD1, QD32), 1 MiB sequential reads/writes,\n"
            "create/stat/readdir/unlink, lock+unlock and 1..16 client processes against\n"
            "dafs, a local directory and the raw libfabric floor, and prints one table with\n"
            "ratios and the performance targets.  LIST: comma-separated groups (read4k,\n"
            "write4k, seq, async, batch, meta, lock, mp) or workload ids (read4k_qd1, ...,\n"
            "mp16); default all.\n"
            "  -h, --help     show this help;  -V, --version  show the version\n");
}

static int select_token(bench_opts *o, const char *tok)
{
    int found = 0;
    for (int w = 0; w < BW_COUNT; w++) {
        const bench_workload_info *wi = &bench_workloads[w];
        int meta_id = strcmp(wi->group, "meta") == 0 && strcmp(wi->id, tok) == 0;
        if (strcmp(tok, "all") == 0 || strcmp(wi->group, tok) == 0 || strcmp(wi->id, tok) == 0)
            o->selected[w] = found = 1;
        if (meta_id) /* the metadata steps build on each other: run them all */
            for (int m = BW_CREATE; m <= BW_UNLINK; m++)
                o->selected[m] = 1;
    }
    return found;
}

static int parse_workloads(bench_opts *o, const char *list)
{
    char buf[512];
    if (strlen(list) >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, list, strlen(list) + 1);
    memset(o->selected, 0, sizeof(o->selected));
    char *save = NULL;
    int any = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!select_token(o, tok)) {
            fprintf(stderr, "dafs-bench: unknown workload '%s'\n", tok);
            return -EINVAL;
        }
        any = 1;
    }
    return any ? 0 : -EINVAL;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    static const struct option longopts[] = {
        {"provider", required_argument, NULL, 'p'}, {"url", required_argument, NULL, 'u'},
        {"repeat", required_argument, NULL, 'r'},   {"json", no_argument, NULL, 'j'},
        {"quick", no_argument, NULL, 'q'},          {"plot", required_argument, NULL, 'P'},
        {"workloads", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0}};
    *o = (bench_opts){.repeat = 3, .ops_small = 5000, .ops_qd32 = 20000, .seq_calls = 32,
                      .ops_meta = 10000, .ops_mp = 2000};
    for (int w = 0; w < BW_COUNT; w++)
        o->selected[w] = 1;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "p:u:r:jqP:w:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': o->provider = optarg; break;
        case 'u': o->url = optarg; break;
        case 'r':
            errno = 0;
            o->repeat = (int)strtol(optarg, &end, 10);
            if (errno || *end || o->repeat < 1 || o->repeat > BENCH_MAX_REPEAT) {
                fprintf(stderr, "dafs-bench: --repeat %s: must be 1..%d\n", optarg,
                        BENCH_MAX_REPEAT);
                return 2;
            }
            break;
        case 'j': o->json = 1; break;
        case 'q':
            o->quick = 1;
            o->ops_small = 200;
            o->ops_qd32 = 640;
            o->seq_calls = 4;
            o->ops_meta = 200;
            o->ops_mp = 100;
            break;
        case 'P': o->plot = optarg; break;
        case 'w':
            if (parse_workloads(o, optarg) != 0)
                return 2;
            break;
        case 'h': usage(stdout); return 1;
        case 'V': printf("dafs-bench (dafs) %s\n", DAFS_VERSION_STRING); return 1;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (!o->provider)
        o->provider = getenv("DAFS_PROVIDER") ? getenv("DAFS_PROVIDER")
                      : getenv("FI_PROVIDER") ? getenv("FI_PROVIDER")
                                              : "tcp;ofi_rxm";
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--child") == 0)
        return bench_mp_child_main(argc - 2, argv + 2);
    bench_opts o;
    int prc = parse_args(argc, argv, &o);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    char scratch[PATH_MAX] = "", url[256], local_dir[PATH_MAX + 8];
    pid_t server = 0;
    int rc = 0;
    if (o.url) {
        snprintf(url, sizeof(url), "%s", o.url);
        snprintf(scratch, sizeof(scratch), "/tmp/dafs-bench.XXXXXX");
        if (!mkdtemp(scratch)) {
            rc = -errno;
            scratch[0] = '\0';
        }
    } else {
        rc = start_dafsd(o.provider, scratch, sizeof(scratch), &server, url, sizeof(url));
        if (rc != 0)
            fprintf(stderr, "dafs-bench: starting dafsd: %s\n", strerror(-rc));
    }
    snprintf(local_dir, sizeof(local_dir), "%s/local", scratch);
    if (rc == 0 && mkdir(local_dir, 0755) != 0)
        rc = -errno;
    if (rc == 0)
        rc = run_rounds(&o, url, server, local_dir);
    stop_dafsd(server, scratch);
    if (rc != 0)
        return 1;
    bench_table t;
    take_medians(&o, &t);
    if (o.json)
        bench_report_json(stdout, &t, &o);
    else
        bench_report_table(stdout, &t, &o);
    if (o.plot && bench_report_plot(o.plot, &t, &o) != 0)
        return 1;
    return 0;
}
