/*
 * dafs_bench.c — dafs-bench: the same workloads against dafs, a local
 * directory and the raw libfabric floor, in one run, on one provider.
 *
 * Every figure is meant to be read as a ratio: dafs against the floor (what
 * the fabric allows) and against the local file system (what the disk and
 * page cache allow).  The machine is noisy, so each workload runs --repeat
 * times and the median run (by its headline metric) is reported.
 *
 * By default dafs-bench starts its own dafsd (from the same bin directory)
 * on 127.0.0.1 with a scratch export, and the local baseline uses a scratch
 * directory on the same file system; --url uses an existing server instead.
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
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include <dafs/dafs.h>

#define FILE_SIZE (64u << 20)
#define SEQ_CALL (8u << 20) /* one sequential call: 8 x 1 MiB in flight */

typedef struct bench_opts {
    const char *provider;
    const char *url;
    int repeat;
    int json;
    int ops_small; /* 4 KiB operations per run */
    int ops_meta;
} bench_opts;

typedef struct bench_row {
    const char *workload;
    const char *system;
    bench_result r;
    double ratio;       /* dafs: vs floor (latency ratio, or bandwidth ratio); else 0 */
    const char *ratio_kind;
} bench_row;

static bench_row rows[32];
static int nrows;

/* ---- one-op runners: each returns the op's latency in seconds, or < 0 ---- */

typedef struct target {
    dafs_session *s;  /* dafs, or NULL for local */
    dafs_file *f;
    int fd;           /* local */
    char *buf;        /* registered with the session when dafs */
    const char *stat_path;
} target;

static double one_read(target *t, size_t size, uint64_t off)
{
    double t0 = bench_now();
    ssize_t n = t->s ? dafs_pread(t->f, t->buf, size, off) : pread(t->fd, t->buf, size, (off_t)off);
    return n == (ssize_t)size ? bench_now() - t0 : -1;
}

static double one_write(target *t, size_t size, uint64_t off)
{
    double t0 = bench_now();
    ssize_t n = t->s ? dafs_pwrite(t->f, t->buf, size, off)
                     : pwrite(t->fd, t->buf, size, (off_t)off);
    return n == (ssize_t)size ? bench_now() - t0 : -1;
}

static double one_stat(target *t)
{
    double t0 = bench_now();
    int rc;
    if (t->s) {
        struct dafs_stat st;
        rc = dafs_stat(t->s, t->stat_path, &st);
    } else {
        struct stat st;
        rc = stat(t->stat_path, &st);
    }
    return rc == 0 ? bench_now() - t0 : -1;
}

enum workload { W_RAND_READ_4K, W_SEQ_READ_1M, W_SEQ_WRITE_1M, W_STAT };

static const char *workload_name(enum workload w)
{
    switch (w) {
    case W_RAND_READ_4K: return "4KiB rand read QD1";
    case W_SEQ_READ_1M: return "1MiB seq read (8 in flight)";
    case W_SEQ_WRITE_1M: return "1MiB seq write (8 in flight)";
    case W_STAT: return "stat QD1";
    }
    return "?";
}

static int run_workload(target *t, enum workload w, const bench_opts *o, pid_t server,
                        bench_result *r)
{
    int ops = w == W_STAT ? o->ops_meta
              : (w == W_RAND_READ_4K ? o->ops_small : (int)(FILE_SIZE / SEQ_CALL) * 4);
    size_t size = w == W_RAND_READ_4K ? 4096 : (w == W_STAT ? 0 : SEQ_CALL);
    double *lat = calloc((size_t)ops, sizeof(double));
    if (!lat)
        return -ENOMEM;
    unsigned seed = 12345;
    double srv0 = server > 0 ? bench_proc_cpu_us(server) : 0;
    double cpu0 = bench_self_cpu_us(), t0 = bench_now();
    for (int i = 0; i < ops; i++) {
        uint64_t off = (uint64_t)(i % (int)(FILE_SIZE / SEQ_CALL)) * SEQ_CALL;
        if (w == W_RAND_READ_4K)
            off = (uint64_t)(rand_r(&seed) % (FILE_SIZE / 4096)) * 4096;
        lat[i] = w == W_RAND_READ_4K || w == W_SEQ_READ_1M ? one_read(t, size, off)
                 : w == W_SEQ_WRITE_1M                     ? one_write(t, size, off)
                                                           : one_stat(t);
        if (lat[i] < 0) {
            free(lat);
            return -EIO;
        }
    }
    double elapsed = bench_now() - t0, cpu = bench_self_cpu_us() - cpu0;
    r->server_cpu_us_per_op = server > 0 ? (bench_proc_cpu_us(server) - srv0) / ops : 0;
    bench_fill_result(r, lat, ops, elapsed, size, cpu / ops);
    /* sequential calls move 8 MiB: report per-MiB operations */
    if (size == SEQ_CALL) {
        r->ops_per_s *= 8;
        r->client_cpu_us_per_op /= 8;
        r->server_cpu_us_per_op /= 8;
    }
    free(lat);
    return 0;
}

/* Median of `repeat` runs, by mean latency. */
static int run_median(target *t, enum workload w, const bench_opts *o, pid_t server,
                      bench_result *out)
{
    bench_result runs[16];
    int n = o->repeat < 16 ? o->repeat : 16;
    for (int i = 0; i < n; i++) {
        memset(&runs[i], 0, sizeof(runs[i]));
        int rc = run_workload(t, w, o, server, &runs[i]);
        if (rc != 0)
            return rc;
    }
    for (int i = 1; i < n; i++) /* insertion sort by mean latency */
        for (int j = i; j > 0 && runs[j].mean_us < runs[j - 1].mean_us; j--) {
            bench_result tmp = runs[j];
            runs[j] = runs[j - 1];
            runs[j - 1] = tmp;
        }
    *out = runs[n / 2];
    return 0;
}

static void add_row(const char *workload, const char *system, const bench_result *r)
{
    if (nrows < (int)(sizeof(rows) / sizeof(rows[0])))
        rows[nrows++] = (bench_row){.workload = workload, .system = system, .r = *r};
}

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

/* ---- targets ------------------------------------------------------------- */

static int fill(target *t)
{
    memset(t->buf, 0x5a, SEQ_CALL);
    for (uint64_t off = 0; off < FILE_SIZE; off += SEQ_CALL)
        if (one_write(t, SEQ_CALL, off) < 0)
            return -EIO;
    return 0;
}

static int run_target(target *t, const char *system, const bench_opts *o, pid_t server)
{
    static const enum workload all[] = {W_RAND_READ_4K, W_SEQ_READ_1M, W_SEQ_WRITE_1M, W_STAT};
    int rc = fill(t);
    for (size_t i = 0; rc == 0 && i < sizeof(all) / sizeof(all[0]); i++) {
        bench_result r;
        rc = run_median(t, all[i], o, server, &r);
        if (rc == 0)
            add_row(workload_name(all[i]), system, &r);
    }
    return rc;
}

static int run_dafs(const bench_opts *o, const char *url, pid_t server)
{
    dafs_options dopts = {.provider = o->provider};
    dafs_session *s = NULL;
    int rc = dafs_connect(url, &dopts, &s);
    if (rc != 0) {
        fprintf(stderr, "dafs-bench: connect %s: %s\n", url, dafs_strerror(rc));
        return rc;
    }
    target t = {.s = s, .stat_path = "bench.dat"};
    dafs_mr *mr = NULL;
    t.buf = aligned_alloc(4096, SEQ_CALL);
    rc = t.buf ? dafs_mem_register(s, t.buf, SEQ_CALL, &mr) : -ENOMEM;
    if (rc == 0)
        rc = dafs_open(s, "bench.dat", O_RDWR | O_CREAT | O_TRUNC, 0644, &t.f);
    if (rc == 0)
        rc = run_target(&t, "dafs", o, server);
    if (rc != 0)
        fprintf(stderr, "dafs-bench: dafs workloads: %s\n", dafs_strerror(rc));
    if (t.f)
        dafs_close(t.f);
    if (mr)
        dafs_mem_deregister(mr);
    (void)dafs_unlink(s, "bench.dat");
    dafs_disconnect(s);
    free(t.buf);
    return rc;
}

static int run_local(const bench_opts *o, const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/local-bench.dat", dir);
    target t = {.stat_path = path};
    t.fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    t.buf = aligned_alloc(4096, SEQ_CALL);
    int rc = (t.fd >= 0 && t.buf) ? run_target(&t, "local", o, 0) : -errno;
    if (t.fd >= 0)
        close(t.fd);
    unlink(path);
    free(t.buf);
    return rc;
}

static int run_floor(const bench_opts *o)
{
    bench_floor_case cases[] = {{4096, 1, o->ops_small}, {1u << 20, 8, 1024}, {0, 1, o->ops_meta}};
    const char *names[] = {"4KiB rand read QD1", "1MiB seq read (8 in flight)", "stat QD1"};
    bench_result best[3];
    bench_result runs[16][3];
    int n = o->repeat < 16 ? o->repeat : 16;
    for (int i = 0; i < n; i++) {
        memset(runs[i], 0, sizeof(runs[i]));
        int rc = bench_floor(o->provider, cases, 3, runs[i]);
        if (rc != 0) {
            fprintf(stderr, "dafs-bench: floor: %s\n", strerror(-rc));
            return rc;
        }
    }
    for (int c = 0; c < 3; c++) {
        bench_result col[16];
        for (int i = 0; i < n; i++)
            col[i] = runs[i][c];
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && col[j].mean_us < col[j - 1].mean_us; j--) {
                bench_result tmp = col[j];
                col[j] = col[j - 1];
                col[j - 1] = tmp;
            }
        best[c] = col[n / 2];
        add_row(names[c], "floor", &best[c]);
    }
    /* the floor's 1 MiB case is per 1 MiB op already; write shares the read figure */
    add_row("1MiB seq write (8 in flight)", "floor", &best[1]);
    return 0;
}

/* ---- output -------------------------------------------------------------- */

static const bench_row *find_row(const char *workload, const char *system)
{
    for (int i = 0; i < nrows; i++)
        if (strcmp(rows[i].workload, workload) == 0 && strcmp(rows[i].system, system) == 0)
            return &rows[i];
    return NULL;
}

static void compute_ratios(void)
{
    for (int i = 0; i < nrows; i++) {
        bench_row *row = &rows[i];
        const bench_row *fl = find_row(row->workload, "floor");
        if (strcmp(row->system, "floor") == 0 || !fl)
            continue;
        if (row->r.size >= (1u << 20)) {
            row->ratio = fl->r.mb_per_s > 0 ? row->r.mb_per_s / fl->r.mb_per_s : 0;
            row->ratio_kind = "bw/floor";
        } else {
            row->ratio = fl->r.mean_us > 0 ? row->r.mean_us / fl->r.mean_us : 0;
            row->ratio_kind = "lat/floor";
        }
    }
}

static void print_table(const bench_opts *o)
{
    printf("dafs-bench: provider %s, median of %d runs\n", o->provider, o->repeat);
    printf("%-30s %-6s %10s %9s %9s %9s %9s %9s %9s %9s\n", "workload", "system", "ops/s", "MB/s",
           "mean us", "p50 us", "p99 us", "cli us/op", "srv us/op", "ratio");
    for (int i = 0; i < nrows; i++) {
        const bench_row *w = &rows[i];
        char ratio[32] = "";
        if (w->ratio_kind)
            snprintf(ratio, sizeof(ratio), "%.2f %s", w->ratio, w->ratio_kind);
        printf("%-30s %-6s %10.0f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %s\n", w->workload,
               w->system, w->r.ops_per_s, w->r.mb_per_s, w->r.mean_us, w->r.p50_us, w->r.p99_us,
               w->r.client_cpu_us_per_op, w->r.server_cpu_us_per_op, ratio);
    }
}

static void print_json(const bench_opts *o)
{
    printf("{\"provider\":\"%s\",\"repeat\":%d,\"results\":[", o->provider, o->repeat);
    for (int i = 0; i < nrows; i++) {
        const bench_row *w = &rows[i];
        printf("%s{\"workload\":\"%s\",\"system\":\"%s\",\"ops_per_s\":%.1f,\"mb_per_s\":%.2f,"
               "\"mean_us\":%.2f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"client_cpu_us_per_op\":%.2f,"
               "\"server_cpu_us_per_op\":%.2f,\"ratio\":%.3f,\"ratio_kind\":\"%s\"}",
               i ? "," : "", w->workload, w->system, w->r.ops_per_s, w->r.mb_per_s, w->r.mean_us,
               w->r.p50_us, w->r.p99_us, w->r.client_cpu_us_per_op, w->r.server_cpu_us_per_op,
               w->ratio, w->ratio_kind ? w->ratio_kind : "");
    }
    printf("]}\n");
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dafs-bench [--provider NAME] [--url dafs://HOST[:PORT]/] [--repeat N]\n"
            "                  [--quick] [--json]\n"
            "Runs 4 KiB random reads, 1 MiB sequential reads/writes and stat against dafs,\n"
            "a local directory and the raw libfabric floor, and prints one table.\n");
}

int main(int argc, char **argv)
{
    bench_opts o = {.repeat = 3, .ops_small = 5000, .ops_meta = 5000};
    static const struct option longopts[] = {
        {"provider", required_argument, NULL, 'p'}, {"url", required_argument, NULL, 'u'},
        {"repeat", required_argument, NULL, 'r'},   {"json", no_argument, NULL, 'j'},
        {"quick", no_argument, NULL, 'q'},          {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "p:u:r:jqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': o.provider = optarg; break;
        case 'u': o.url = optarg; break;
        case 'r':
            o.repeat = atoi(optarg);
            if (o.repeat < 1 || o.repeat > 15) {
                fprintf(stderr, "dafs-bench: --repeat %s: must be 1..15\n", optarg);
                return 2;
            }
            break;
        case 'j': o.json = 1; break;
        case 'q': o.ops_small = o.ops_meta = 500; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!o.provider)
        o.provider = getenv("DAFS_PROVIDER") ? getenv("DAFS_PROVIDER")
                     : getenv("FI_PROVIDER") ? getenv("FI_PROVIDER")
                                             : "tcp;ofi_rxm";
    char scratch[PATH_MAX] = "", url[256];
    pid_t server = 0;
    int rc = 0;
    if (o.url) {
        snprintf(url, sizeof(url), "%s", o.url);
    } else {
        rc = start_dafsd(o.provider, scratch, sizeof(scratch), &server, url, sizeof(url));
        if (rc != 0)
            fprintf(stderr, "dafs-bench: starting dafsd: %s\n", strerror(-rc));
    }
    if (rc == 0)
        rc = run_floor(&o);
    if (rc == 0)
        rc = run_dafs(&o, url, server);
    if (rc == 0)
        rc = run_local(&o, scratch[0] ? scratch : "/tmp");
    stop_dafsd(server, scratch);
    if (rc != 0)
        return 1;
    compute_ratios();
    if (o.json)
        print_json(&o);
    else
        print_table(&o);
    return 0;
}
