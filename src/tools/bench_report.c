/*
 * bench_report.c — what dafs-bench prints: one row per workload and system,
 * each dafs row as ratios to the floor and to the local directory, and the
 * issue's targets as PASS/FAIL lines; as a table, as JSON, or as a PNG
 * drawn by gnuplot.
 *
 * Ratios: QD1 rows compare mean latency (dafs / other: 1.20 means 20%
 * slower); every other row compares throughput (dafs / other: 0.80 means 80%
 * of the other's ops/s or MB/s).  CPU ratios are dafs / other per op.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const bench_workload_info bench_workloads[BW_COUNT] = {
    [BW_READ4K_QD1] = {"read4k_qd1", "read4k", "4KiB rand read QD1", 1, 0},
    [BW_READ4K_QD32] = {"read4k_qd32", "read4k", "4KiB rand read QD32", 0, 0},
    [BW_WRITE4K_QD1] = {"write4k_qd1", "write4k", "4KiB rand write QD1", 1, 0},
    [BW_WRITE4K_QD32] = {"write4k_qd32", "write4k", "4KiB rand write QD32", 0, 0},
    [BW_READ4K_ASYNC_QD32] = {"read4k_async_qd32", "async", "4KiB rand read async QD32", 0, 0},
    [BW_WRITE4K_ASYNC_QD32] = {"write4k_async_qd32", "async", "4KiB rand write async QD32", 0,
                               0},
    [BW_READ4K_BATCH32] = {"read4k_batch32", "batch", "4KiB rand read batch32", 0, 0},
    [BW_SEQREAD_1M] = {"seqread_1m", "seq", "1MiB seq read (8 in flight)", 0, 0},
    [BW_SEQWRITE_1M] = {"seqwrite_1m", "seq", "1MiB seq write (8 in flight)", 0, 0},
    [BW_CREATE] = {"create", "meta", "create", 0, 0},
    [BW_STAT] = {"stat", "meta", "stat", 0, 0},
    [BW_READDIR] = {"readdir", "meta", "readdir (entries)", 0, 0},
    [BW_UNLINK] = {"unlink", "meta", "unlink", 0, 0},
    [BW_LOCK] = {"lock", "lock", "lock+unlock QD1", 1, 0},
    [BW_WRITE4K_AR] = {"write4k_autorecover", "lock", "AUTORECOVER write4k QD1", 1, 0},
    [BW_MP1] = {"mp1", "mp", "4KiB read QD1 x1 proc", 0, 1},
    [BW_MP2] = {"mp2", "mp", "4KiB read QD1 x2 procs", 0, 2},
    [BW_MP4] = {"mp4", "mp", "4KiB read QD1 x4 procs", 0, 4},
    [BW_MP8] = {"mp8", "mp", "4KiB read QD1 x8 procs", 0, 8},
    [BW_MP16] = {"mp16", "mp", "4KiB read QD1 x16 procs", 0, 16},
};

const char *const bench_system_names[BS_COUNT] = {"floor", "dafs", "local"};

/* ---- ratios --------------------------------------------------------------- */

/* The headline ratio of dafs to `other` for workload w, or NAN. */
static double headline_ratio(const bench_table *t, int w, int other)
{
    if (!t->have[w][BS_DAFS] || !t->have[w][other])
        return NAN;
    const bench_result *d = &t->r[w][BS_DAFS], *x = &t->r[w][other];
    if (bench_workloads[w].latency_bound)
        return x->mean_us > 0 ? d->mean_us / x->mean_us : NAN;
    return x->ops_per_s > 0 ? d->ops_per_s / x->ops_per_s : NAN;
}

static double cpu_ratio(const bench_table *t, int w, int other)
{
    if (!t->have[w][BS_DAFS] || !t->have[w][other])
        return NAN;
    double x = t->r[w][other].client_cpu_us_per_op;
    return x > 0 ? t->r[w][BS_DAFS].client_cpu_us_per_op / x : NAN;
}

static double server_cpu_ratio(const bench_table *t, int w, int other)
{
    if (!t->have[w][BS_DAFS] || !t->have[w][other])
        return NAN;
    double d = t->r[w][BS_DAFS].server_cpu_us_per_op, x = t->r[w][other].server_cpu_us_per_op;
    return d >= 0 && x > 0 ? d / x : NAN;
}

/* ---- targets --------------------------------------------------------------- */

typedef struct bench_target {
    const char *name;
    double value, threshold;
    int at_most; /* pass when value <= threshold (else >=) */
} bench_target;

static double ops(const bench_table *t, int w, int sys)
{
    return t->have[w][sys] ? t->r[w][sys].ops_per_s : NAN;
}

static double safe_div(double a, double b)
{
    return isnan(a) || isnan(b) || b <= 0 ? NAN : a / b;
}

static double metadata_reference(const bench_table *t, int w)
{
    double fl = ops(t, w, BS_FLOOR), lo = ops(t, w, BS_LOCAL);
    if (isnan(lo))
        return fl;
    return isnan(fl) || lo < fl ? lo : fl;
}

/* Client CPU per op of dafs at depth w over the floor's per round trip at
 * depth 1: the issue asks that queue depth amortize a round trip's CPU (the
 * floor at QD1 spends its wait polling), not that dafs beat the bare fabric
 * at the same depth. */
static double cpu_vs_round_trip(const bench_table *t, int w)
{
    if (!t->have[w][BS_DAFS] || !t->have[BW_READ4K_QD1][BS_FLOOR])
        return NAN;
    double x = t->r[BW_READ4K_QD1][BS_FLOOR].client_cpu_us_per_op;
    return x > 0 ? t->r[w][BS_DAFS].client_cpu_us_per_op / x : NAN;
}

/* Fill up to max targets; returns how many. */
static int collect_targets(const bench_table *t, bench_target *out, int max)
{
    double best_single = ops(t, BW_MP1, BS_DAFS);
    double qd1 = ops(t, BW_READ4K_QD1, BS_DAFS);
    if (isnan(best_single) || (!isnan(qd1) && qd1 > best_single))
        best_single = qd1;
    bench_target all[] = {
        {"4KiB read QD1 mean latency / floor", headline_ratio(t, BW_READ4K_QD1, BS_FLOOR), 1.3,
         1},
        {"4KiB read QD32 ops/s / QD1 ops/s",
         safe_div(ops(t, BW_READ4K_QD32, BS_DAFS), ops(t, BW_READ4K_QD1, BS_DAFS)), 2.5, 0},
        {"4KiB read QD32 client CPU/op / floor round trip", cpu_vs_round_trip(t, BW_READ4K_QD32),
         0.5, 1},
        {"4KiB write QD32 ops/s / QD1 ops/s",
         safe_div(ops(t, BW_WRITE4K_QD32, BS_DAFS), ops(t, BW_WRITE4K_QD1, BS_DAFS)), 2.5, 0},
        {"4KiB write QD32 client CPU/op / floor round trip",
         cpu_vs_round_trip(t, BW_WRITE4K_QD32), 0.5, 1},
        /* issue 10: one thread, 32 in flight, against the floor at QD32 */
        {"4KiB read async QD32 ops/s / floor QD32",
         headline_ratio(t, BW_READ4K_ASYNC_QD32, BS_FLOOR), t->shm ? 0.5 : 0.8, 0},
        {"4KiB read async QD32 client CPU/op / floor QD32",
         cpu_ratio(t, BW_READ4K_ASYNC_QD32, BS_FLOOR), t->shm ? 2.0 : 1.2, 1},
        {"4KiB write async QD32 ops/s / floor QD32",
         headline_ratio(t, BW_WRITE4K_ASYNC_QD32, BS_FLOOR), t->shm ? 0.4 : 0.7, 0},
        {"4KiB read batch32 ops/s / floor QD32",
         headline_ratio(t, BW_READ4K_BATCH32, BS_FLOOR), t->shm ? 0.8 : 1.3, 0},
        {"1MiB seq read MB/s / floor", headline_ratio(t, BW_SEQREAD_1M, BS_FLOOR), 0.8, 0},
        {"1MiB seq write MB/s / floor", headline_ratio(t, BW_SEQWRITE_1M, BS_FLOOR), 0.8, 0},
        {"create ops/s / min(floor msg, local)",
         safe_div(ops(t, BW_CREATE, BS_DAFS), metadata_reference(t, BW_CREATE)), 0.8, 0},
        {"stat ops/s / min(floor msg, local)",
         safe_div(ops(t, BW_STAT, BS_DAFS), metadata_reference(t, BW_STAT)), 0.8, 0},
        {"unlink ops/s / min(floor msg, local)",
         safe_div(ops(t, BW_UNLINK, BS_DAFS), metadata_reference(t, BW_UNLINK)), 0.8, 0},
        {"16 procs aggregate / best single client", safe_div(ops(t, BW_MP16, BS_DAFS), best_single),
         0.9, 0},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && n < max; i++)
        if (!isnan(all[i].value))
            out[n++] = all[i];
    return n;
}

static int target_passes(const bench_target *g)
{
    return g->at_most ? g->value <= g->threshold : g->value >= g->threshold;
}

int bench_report_failed_targets(const bench_table *t)
{
    bench_target g[24];
    int n = collect_targets(t, g, 24), failed = 0;
    for (int i = 0; i < n; i++)
        failed += !target_passes(&g[i]);
    return failed;
}

/* ---- table --------------------------------------------------------------------- */

/* What the bare fabric reaches on this machine, to read the QD32 targets by. */
static void report_floor_context(FILE *out, const bench_table *t)
{
    double scale = safe_div(ops(t, BW_READ4K_QD32, BS_FLOOR), ops(t, BW_READ4K_QD1, BS_FLOOR));
    double cpu = cpu_ratio(t, BW_READ4K_QD32, BS_FLOOR);
    if (isnan(scale) && isnan(cpu))
        return;
    fprintf(out, "context: the floor itself scales QD32/QD1 by %.2f; dafs QD32 client CPU/op is "
                 "%.2f x the floor's at QD32\n", scale, cpu);
}

static void fmt_ratio(char *buf, size_t len, double v, const char *kind)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.2f%s", v, kind);
}

static void fmt_cpu(char *buf, size_t len, double v)
{
    if (v < 0)
        snprintf(buf, len, "n/a");
    else
        snprintf(buf, len, "%.1f", v);
}

void bench_report_table(FILE *out, const bench_table *t, const bench_opts *o)
{
    fprintf(out, "dafs-bench: provider %s, median of %d run%s%s\n", o->provider, o->repeat,
            o->repeat == 1 ? "" : "s", o->quick ? " (--quick: small op counts)" : "");
    fprintf(out,
            "ratios are dafs/other: mean latency for QD1 rows (lat), ops/s or MB/s otherwise "
            "(thr); cpu = client CPU per op\n");
    fprintf(out, "%-28s %-5s %10s %8s %8s %8s %8s %8s %8s %9s %9s %7s\n", "workload", "sys",
            "ops/s", "MB/s", "mean us", "p50 us", "p99 us", "cli us", "srv us", "vs floor",
            "vs local", "cpu/fl");
    for (int w = 0; w < BW_COUNT; w++) {
        for (int s = 0; s < BS_COUNT; s++) {
            if (!t->have[w][s])
                continue;
            const bench_result *r = &t->r[w][s];
            char vf[24] = "", vl[24] = "", cf[24] = "", srv[24];
            const char *kind = bench_workloads[w].latency_bound ? " lat" : " thr";
            if (s == BS_DAFS) {
                fmt_ratio(vf, sizeof(vf), headline_ratio(t, w, BS_FLOOR), kind);
                fmt_ratio(vl, sizeof(vl), headline_ratio(t, w, BS_LOCAL), kind);
                fmt_ratio(cf, sizeof(cf), cpu_ratio(t, w, BS_FLOOR), "");
            }
            fmt_cpu(srv, sizeof(srv), s == BS_LOCAL ? -1 : r->server_cpu_us_per_op);
            fprintf(out, "%-28s %-5s %10.0f %8.1f %8.1f %8.1f %8.1f %8.1f %8s %9s %9s %7s\n",
                    bench_workloads[w].title, bench_system_names[s], r->ops_per_s, r->mb_per_s,
                    r->mean_us, r->p50_us, r->p99_us, r->client_cpu_us_per_op, srv, vf, vl, cf);
        }
    }
    bench_target g[24];
    int n = collect_targets(t, g, 24);
    if (n == 0)
        return;
    fprintf(out, "\ntargets (this run, provider %s):\n", o->provider);
    for (int i = 0; i < n; i++)
        fprintf(out, "  %-48s %6.2f %s %4.2f  %s\n", g[i].name, g[i].value,
                g[i].at_most ? "<=" : ">=", g[i].threshold,
                target_passes(&g[i]) ? "PASS" : "FAIL");
    report_floor_context(out, t);
}

/* ---- JSON ------------------------------------------------------------------------ */

static void json_number(FILE *out, double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", out);
    else
        fprintf(out, "%.4g", v);
}

static void json_ratios(FILE *out, const bench_table *t, int w, int other)
{
    fputs("{\"headline\":", out);
    json_number(out, headline_ratio(t, w, other));
    fputs(",\"client_cpu\":", out);
    json_number(out, cpu_ratio(t, w, other));
    fputs(",\"server_cpu\":", out);
    json_number(out, server_cpu_ratio(t, w, other));
    fputs("}", out);
}

static void json_row(FILE *out, const bench_table *t, int w, int s)
{
    const bench_result *r = &t->r[w][s];
    fprintf(out,
            "{\"workload\":\"%s\",\"title\":\"%s\",\"system\":\"%s\",\"ops\":%d,\"size\":%zu,"
            "\"ops_per_s\":%.1f,\"mb_per_s\":%.3f,\"mean_us\":%.3f,\"p50_us\":%.3f,"
            "\"p99_us\":%.3f,\"client_cpu_us_per_op\":%.3f,\"server_cpu_us_per_op\":",
            bench_workloads[w].id, bench_workloads[w].title, bench_system_names[s], r->ops,
            r->size, r->ops_per_s, r->mb_per_s, r->mean_us, r->p50_us, r->p99_us,
            r->client_cpu_us_per_op);
    json_number(out, s == BS_LOCAL ? NAN : (r->server_cpu_us_per_op < 0 ? NAN
                                                                       : r->server_cpu_us_per_op));
    fprintf(out, ",\"ratio_kind\":\"%s\"", bench_workloads[w].latency_bound ? "latency"
                                                                            : "throughput");
    if (s == BS_DAFS) {
        fputs(",\"vs_floor\":", out);
        json_ratios(out, t, w, BS_FLOOR);
        fputs(",\"vs_local\":", out);
        json_ratios(out, t, w, BS_LOCAL);
    }
    fputs("}", out);
}

void bench_report_json(FILE *out, const bench_table *t, const bench_opts *o)
{
    fprintf(out, "{\"provider\":\"%s\",\"repeat\":%d,\"quick\":%s,\"results\":[", o->provider,
            o->repeat, o->quick ? "true" : "false");
    int first = 1;
    for (int w = 0; w < BW_COUNT; w++)
        for (int s = 0; s < BS_COUNT; s++) {
            if (!t->have[w][s])
                continue;
            if (!first)
                fputs(",", out);
            first = 0;
            json_row(out, t, w, s);
        }
    fputs("],\"targets\":[", out);
    bench_target g[24];
    int n = collect_targets(t, g, 24);
    for (int i = 0; i < n; i++) {
        fprintf(out, "%s{\"name\":\"%s\",\"value\":", i ? "," : "", g[i].name);
        json_number(out, g[i].value);
        fprintf(out, ",\"op\":\"%s\",\"threshold\":%.2f,\"pass\":%s}", g[i].at_most ? "<=" : ">=",
                g[i].threshold, target_passes(&g[i]) ? "true" : "false");
    }
    fputs("]}\n", out);
}

/* ---- plot --------------------------------------------------------------------------- */

static void plot_value(FILE *gp, const bench_table *t, int w, int s)
{
    if (t->have[w][s] && t->r[w][s].ops_per_s > 0)
        fprintf(gp, " %.1f", t->r[w][s].ops_per_s);
    else
        fputs(" NaN", gp);
}

static void plot_script(FILE *gp, const char *png, const bench_table *t, const bench_opts *o)
{
    fprintf(gp, "set terminal pngcairo size 1200,900 noenhanced font 'sans,10'\n");
    fprintf(gp, "set output '%s'\n", png);
    fputs("$ops << EOD\n", gp);
    for (int w = 0; w < BW_MP1; w++) {
        fprintf(gp, "\"%s\"", bench_workloads[w].title);
        for (int s = 0; s < BS_COUNT; s++)
            plot_value(gp, t, w, s);
        fputs("\n", gp);
    }
    fputs("EOD\n$mp << EOD\n", gp);
    for (int w = BW_MP1; w < BW_COUNT; w++) {
        fprintf(gp, "%d", bench_workloads[w].procs);
        for (int s = 0; s < BS_COUNT; s++)
            plot_value(gp, t, w, s);
        fputs("\n", gp);
    }
    fputs("EOD\n", gp);
    fputs("set multiplot layout 2,1\n", gp);
    fprintf(gp, "set title 'dafs-bench, provider %s: ops/s (1 MiB rows: MiB/s), median of %d'\n",
            o->provider, o->repeat);
    fputs("set style data histograms\nset style histogram clustered gap 1\n"
          "set style fill solid 0.8 border -1\nset logscale y\nset grid ytics\n"
          "set xtics rotate by -25 scale 0\nset key top right\nset ylabel 'ops/s (log)'\n"
          "plot $ops using 2:xtic(1) title 'floor (raw libfabric)', '' using 3 title 'dafs', "
          "'' using 4 title 'local directory'\n",
          gp);
    fputs("unset logscale y\nset style data linespoints\nset xtics norotate\nset logscale x 2\n"
          "set title 'client processes, each 4 KiB random read QD1: aggregate ops/s'\n"
          "set xlabel 'client processes'\nset ylabel 'aggregate ops/s'\nset yrange [0:*]\n"
          "plot $mp using 1:2 title 'floor' lw 2, '' using 1:3 title 'dafs' lw 2\n"
          "unset multiplot\n",
          gp);
}

int bench_report_plot(const char *png, const bench_table *t, const bench_opts *o)
{
    if (strchr(png, '\'')) {
        fprintf(stderr, "dafs-bench: --plot path must not contain a quote\n");
        return -EINVAL;
    }
    FILE *gp = popen("gnuplot", "w");
    if (!gp) {
        fprintf(stderr, "dafs-bench: cannot run gnuplot: %s\n", strerror(errno));
        return -errno;
    }
    plot_script(gp, png, t, o);
    int status = pclose(gp);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "dafs-bench: gnuplot failed (is it installed? apt-get install "
                        "gnuplot-nox)\n");
        return -EIO;
    }
    return 0;
}
