/*
 * bench_mp.c — several client processes at once (1, 2, 4, ... 16), each
 * doing 4 KiB random reads at QD1 against the same server (dafs), the same
 * local file, or the same floor server.
 *
 * Each client is this program re-executed with --child (a fresh process, so
 * no libfabric state crosses a fork).  A child sets up (connects, registers
 * its buffer), writes "ready" on its stdout pipe, waits for one byte on its
 * stdin pipe so that all start together, runs, and writes one result line:
 * ops, start and end (CLOCK_MONOTONIC, shared by all processes), mean, p50
 * and p99 latency, and its own CPU time.  The aggregate rate is all ops over
 * the span from the first start to the last end.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dafs/dafs.h>

#define MP_MAX_PROCS 64

typedef struct mp_child {
    pid_t pid;
    int to_child, from_child;
    FILE *in;
} mp_child;

typedef struct mp_report {
    int ops;
    double t0, t1, mean_us, p50_us, p99_us, cpu_us;
} mp_report;

/* ---- child side ---------------------------------------------------------- */

typedef struct mp_conn {
    dafs_session *s;
    dafs_file *f;
    dafs_mr *mr;
    int fd;
    char *buf;
} mp_conn;

static int mp_wait_go(void)
{
    if (printf("ready\n") < 0 || fflush(stdout) != 0)
        return -EIO;
    char go;
    return read(STDIN_FILENO, &go, 1) == 1 ? 0 : -EIO;
}

static int mp_child_io(mp_conn *c, int ops, mp_report *rep)
{
    double *lat = calloc((size_t)ops, sizeof(double));
    if (!lat)
        return -ENOMEM;
    int rc = mp_wait_go();
    unsigned seed = (unsigned)getpid() * 2654435761u;
    double cpu0 = bench_self_cpu_us();
    rep->t0 = bench_now();
    for (int i = 0; i < ops && rc == 0; i++) {
        uint64_t off = (uint64_t)(rand_r(&seed) % (BENCH_FILE_SIZE / 4096)) * 4096;
        double a = bench_now();
        ssize_t n = c->s ? dafs_pread(c->f, c->buf, 4096, off)
                         : pread(c->fd, c->buf, 4096, (off_t)off);
        lat[i] = bench_now() - a;
        rc = n == 4096 ? 0 : -EIO;
    }
    rep->t1 = bench_now();
    rep->cpu_us = bench_self_cpu_us() - cpu0;
    bench_result r = {0};
    if (rc == 0)
        bench_fill_result(&r, lat, ops, rep->t1 - rep->t0, 4096, 0);
    rep->ops = ops;
    rep->mean_us = r.mean_us;
    rep->p50_us = r.p50_us;
    rep->p99_us = r.p99_us;
    free(lat);
    return rc;
}

static int mp_child_dafs(const char *url, const char *provider, int ops, mp_report *rep)
{
    mp_conn c = {.fd = -1};
    dafs_options dopts = {.provider = provider};
    int rc = dafs_connect(url, &dopts, &c.s);
    if (rc != 0)
        return rc;
    c.buf = aligned_alloc(4096, 4096);
    rc = c.buf ? dafs_mem_register(c.s, c.buf, 4096, &c.mr) : -ENOMEM;
    if (rc == 0)
        rc = dafs_open(c.s, BENCH_DATA_FILE, O_RDONLY, 0, &c.f);
    if (rc == 0)
        rc = mp_child_io(&c, ops, rep);
    if (c.f)
        dafs_close(c.f);
    if (c.mr)
        dafs_mem_deregister(c.mr);
    dafs_disconnect(c.s);
    free(c.buf);
    return rc;
}

static int mp_child_local(const char *dir, int ops, mp_report *rep)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, BENCH_DATA_FILE);
    mp_conn c = {.fd = open(path, O_RDONLY), .buf = aligned_alloc(4096, 4096)};
    int rc = (c.fd >= 0 && c.buf) ? mp_child_io(&c, ops, rep) : -EIO;
    if (c.fd >= 0)
        close(c.fd);
    free(c.buf);
    return rc;
}

static int mp_child_floor(const char *port, const char *provider, int ops, mp_report *rep)
{
    bench_floor_client *cl = bench_floor_connect(provider, port, 4096);
    int rc = cl ? mp_wait_go() : -EIO;
    bench_floor_case c = {.kind = BF_RMA_WRITE, .size = 4096, .depth = 1, .ops = ops};
    bench_result r = {0};
    double cpu0 = bench_self_cpu_us();
    rep->t0 = bench_now();
    if (rc == 0)
        rc = bench_floor_client_run(cl, 0, &c, &r);
    rep->t1 = bench_now();
    rep->cpu_us = bench_self_cpu_us() - cpu0;
    bench_floor_disconnect(cl);
    rep->ops = ops;
    rep->mean_us = r.mean_us;
    rep->p50_us = r.p50_us;
    rep->p99_us = r.p99_us;
    return rc;
}

/* argv: SYSTEM TARGET OPS PROVIDER */
int bench_mp_child_main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "dafs-bench --child: SYSTEM TARGET OPS PROVIDER\n");
        return 2;
    }
    int ops = atoi(argv[2]);
    if (ops < 1 || ops > 10000000)
        return 2;
    mp_report rep = {0};
    int rc;
    if (strcmp(argv[0], "dafs") == 0)
        rc = mp_child_dafs(argv[1], argv[3], ops, &rep);
    else if (strcmp(argv[0], "local") == 0)
        rc = mp_child_local(argv[1], ops, &rep);
    else if (strcmp(argv[0], "floor") == 0)
        rc = mp_child_floor(argv[1], argv[3], ops, &rep);
    else
        rc = -EINVAL;
    if (rc != 0) {
        fprintf(stderr, "dafs-bench child (%s): %s\n", argv[0], dafs_strerror(rc));
        return 1;
    }
    printf("%d %.9f %.9f %.3f %.3f %.3f %.1f\n", rep.ops, rep.t0, rep.t1, rep.mean_us,
           rep.p50_us, rep.p99_us, rep.cpu_us);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- parent side ----------------------------------------------------------- */

static int mp_spawn(mp_child *c, char *const argv[])
{
    int down[2], up[2];
    if (pipe(down) != 0)
        return -errno;
    if (pipe(up) != 0) {
        int e = errno;
        close(down[0]);
        close(down[1]);
        return -e;
    }
    fflush(NULL);
    c->pid = fork();
    if (c->pid < 0) {
        int e = errno;
        close(down[0]), close(down[1]), close(up[0]), close(up[1]);
        return -e;
    }
    if (c->pid == 0) {
        if (dup2(down[0], STDIN_FILENO) < 0 || dup2(up[1], STDOUT_FILENO) < 0)
            _exit(127);
        close(down[0]), close(down[1]), close(up[0]), close(up[1]);
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(down[0]);
    close(up[1]);
    c->to_child = down[1];
    c->in = fdopen(up[0], "r");
    if (!c->in) {
        close(up[0]);
        return -ENOMEM;
    }
    return 0;
}

static int mp_expect_ready(mp_child *c)
{
    char line[64];
    if (!fgets(line, sizeof(line), c->in) || strcmp(line, "ready\n") != 0)
        return -EIO;
    return 0;
}

static int mp_read_report(mp_child *c, mp_report *rep)
{
    char line[256];
    if (!fgets(line, sizeof(line), c->in))
        return -EIO;
    if (sscanf(line, "%d %lf %lf %lf %lf %lf %lf", &rep->ops, &rep->t0, &rep->t1, &rep->mean_us,
               &rep->p50_us, &rep->p99_us, &rep->cpu_us) != 7 ||
        rep->ops <= 0 || rep->t1 < rep->t0)
        return -EIO;
    return 0;
}

static int mp_reap(mp_child *c, int failed)
{
    if (c->to_child >= 0)
        close(c->to_child);
    if (c->in)
        fclose(c->in);
    if (c->pid <= 0)
        return 0;
    if (failed)
        kill(c->pid, SIGTERM);
    int status = 0;
    if (waitpid(c->pid, &status, 0) < 0)
        return -errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static void mp_combine(const mp_report *reps, int n, double span, double server_cpu,
                       bench_result *out)
{
    int ops = 0;
    double mean = 0, p99 = 0, cpu = 0;
    double p50s[MP_MAX_PROCS];
    for (int i = 0; i < n; i++) {
        ops += reps[i].ops;
        mean += reps[i].mean_us * reps[i].ops;
        cpu += reps[i].cpu_us;
        if (reps[i].p99_us > p99)
            p99 = reps[i].p99_us;
        p50s[i] = reps[i].p50_us;
    }
    for (int i = 1; i < n; i++) /* median of the per-process p50s */
        for (int j = i; j > 0 && p50s[j] < p50s[j - 1]; j--) {
            double t = p50s[j];
            p50s[j] = p50s[j - 1];
            p50s[j - 1] = t;
        }
    memset(out, 0, sizeof(*out));
    out->ops = ops;
    out->size = 4096;
    out->ops_per_s = span > 0 ? ops / span : 0;
    out->mb_per_s = out->ops_per_s * 4096 / 1e6;
    out->mean_us = ops ? mean / ops : 0;
    out->p50_us = p50s[n / 2];
    out->p99_us = p99;
    out->client_cpu_us_per_op = ops ? cpu / ops : 0;
    out->server_cpu_us_per_op = server_cpu;
}

int bench_mp_run(enum bench_system sys, const char *target, int nprocs, const bench_opts *o,
                 pid_t server, bench_result *out)
{
    if (nprocs < 1 || nprocs > MP_MAX_PROCS)
        return -EINVAL;
    char ops[16];
    snprintf(ops, sizeof(ops), "%d", o->ops_mp);
    char *argv[] = {"dafs-bench", "--child", (char *)bench_system_names[sys], (char *)target,
                    ops, (char *)o->provider, NULL};
    mp_child kids[MP_MAX_PROCS];
    mp_report reps[MP_MAX_PROCS];
    int rc = 0, spawned = 0;
    for (int i = 0; i < nprocs && rc == 0; i++) {
        kids[i] = (mp_child){.to_child = -1};
        rc = mp_spawn(&kids[i], argv);
        spawned = i + 1;
    }
    for (int i = 0; i < spawned && rc == 0; i++)
        rc = mp_expect_ready(&kids[i]);
    double srv0 = server > 0 ? bench_proc_cpu_us(server) : 0;
    for (int i = 0; i < spawned && rc == 0; i++)
        if (write(kids[i].to_child, "g", 1) != 1)
            rc = -EIO;
    for (int i = 0; i < spawned && rc == 0; i++)
        rc = mp_read_report(&kids[i], &reps[i]);
    double server_cpu = bench_server_cpu_per_op(server, srv0, o->ops_mp * nprocs);
    for (int i = 0; i < spawned; i++) {
        int wrc = mp_reap(&kids[i], rc != 0);
        if (rc == 0)
            rc = wrc;
    }
    if (rc != 0)
        return rc;
    double first = reps[0].t0, last = reps[0].t1;
    for (int i = 1; i < nprocs; i++) {
        if (reps[i].t0 < first)
            first = reps[i].t0;
        if (reps[i].t1 > last)
            last = reps[i].t1;
    }
    mp_combine(reps, nprocs, last - first, server_cpu, out);
    return 0;
}
