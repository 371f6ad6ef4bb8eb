/*
 * bench_util.c — timing, CPU accounting and statistics for dafs-bench.
 *
 * CPU time is what DAFS is about (client CPU per I/O is its figure of merit),
 * so every result carries it: this process's from getrusage, the server's
 * from /proc/PID/stat (clock ticks; runs are long enough that the tick
 * granularity is a small fraction of the total).
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* User + system CPU of `who` (RUSAGE_SELF or RUSAGE_CHILDREN), in us. */
static double rusage_cpu_us(int who)
{
    struct rusage ru;
    if (getrusage(who, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

double bench_self_cpu_us(void) { return rusage_cpu_us(RUSAGE_SELF); }

double bench_children_cpu_us(void) { return rusage_cpu_us(RUSAGE_CHILDREN); }

double bench_proc_cpu_us(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* fields after the command name, which is in parentheses and may hold spaces */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long utime = 0, stime = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return 0;
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? (double)(utime + stime) * 1e6 / (double)hz : 0;
}

size_t bench_round_up(size_t n, size_t align)
{
    return (n + align - 1) / align * align;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_fill_result(bench_result *r, double *lat, int n, double elapsed, size_t size,
                       double client_cpu_per_op)
{
    double server = r->server_cpu_us_per_op;
    memset(r, 0, sizeof(*r));
    r->server_cpu_us_per_op = server;
    r->ops = n;
    r->size = size;
    r->client_cpu_us_per_op = client_cpu_per_op;
    if (n <= 0 || elapsed <= 0)
        return;
    qsort(lat, (size_t)n, sizeof(double), compare_double);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += lat[i];
    r->mean_us = sum / n * 1e6;
    r->p50_us = lat[n / 2] * 1e6;
    r->p99_us = lat[(int)((double)n * 0.99) < n ? (int)((double)n * 0.99) : n - 1] * 1e6;
    r->ops_per_s = n / elapsed;
    r->mb_per_s = (double)size * n / elapsed / 1e6;
}

bench_result bench_median(bench_result *runs, int n)
{
    for (int i = 1; i < n; i++) /* insertion sort by ops/s; n is small */
        for (int j = i; j > 0 && runs[j].ops_per_s < runs[j - 1].ops_per_s; j--) {
            bench_result tmp = runs[j];
            runs[j] = runs[j - 1];
            runs[j - 1] = tmp;
        }
    return runs[n / 2];
}

double bench_server_cpu_per_op(pid_t pid, double before_us, int ops)
{
    if (pid <= 0 || ops <= 0)
        return -1;
    return (bench_proc_cpu_us(pid) - before_us) / ops;
}
