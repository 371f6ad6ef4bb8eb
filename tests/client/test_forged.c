/*
 * test_forged.c — forged replies (issue 13): another local process sends
 * replies to a libdafs client's endpoint while the client reads a file in a
 * loop.  The client must take replies only from its server, for its session,
 * with an xid it actually sent: its session survives and every read returns
 * the file's real data.
 *
 * The forger is a child forked before any libfabric use.  It learns the
 * client's endpoint the way a local attacker would — tcp: the listening
 * port the client process holds (/proc/self/net/tcp + its socket fds);
 * shm: the region the client maps (/proc/self/maps) — opens its own
 * endpoint and sends READ_INLINE replies with status OK and forged data,
 * sweeping every xid the old scheme (generation << 16 | slot) would have
 * used for the first slots, and session ids 0..3.  Without the checks the
 * client took one of them within a few hundred reads (wrong data or EPROTO).
 *
 *   test_forged DAFSD      (FI_PROVIDER selects tcp;ofi_rxm or shm)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dafs/dafs.h"
#include "proto.h"
#include "server_fixture.h"
#include "transport.h"


#define FILE_BYTES 4096
#define READS 1000
#define FORGED_MIN 500 /* forged replies sent while the client reads */
#define FORGED_DATA "FORGED-REPLY-DATA"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_shm(void)
{
    const char *p = getenv("FI_PROVIDER");
    return p && strcmp(p, "shm") == 0;
}

/* ---- the forger ---- */

typedef struct {
    dfab_op op;
    volatile int done;
} send_op;

static void send_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)status;
    (void)len;
    (void)src;
    ((send_op *)op)->done = 1;
}

/* Reads the target's name from `in`, floods until `in` reports EOF, writes
 * the number of forged replies sent to `out`. */
static int forger(int in, int out)
{
    uint8_t name[256];
    ssize_t nlen = read(in, name, sizeof name);
    if (nlen <= 0)
        return 1;
    dfab_config cfg = {.node = "127.0.0.1"};
    dfab *f;
    const char *err;
    if (dfab_open(&cfg, &f, &err) != 0) {
        fprintf(stderr, "forger: open: %s\n", err ? err : "?");
        return 1;
    }
    dfab_addr dst;
    if (dfab_insert_name(f, name, (size_t)nlen, &dst) != 0) {
        fprintf(stderr, "forger: cannot insert the client's name\n");
        return 1;
    }
    static uint8_t buf[4096] __attribute__((aligned(4096)));
    dfab_mr *mr;
    if (dfab_mr_reg(f, buf, sizeof buf, DFAB_ACCESS_LOCAL, &mr) != 0) {
        fprintf(stderr, "forger: cannot register\n");
        return 1;
    }
    uint64_t sent = 0;
    struct pollfd p = {.fd = in, .events = POLLIN};
    for (uint64_t gen = 1;; gen = gen % (READS + 100) + 1) {
        for (uint32_t slot = 0; slot < 1; slot++) {
            dafs_reply rep;
            memset(&rep, 0, sizeof rep);
            rep.hdr.magic = DAFS_PROTO_MAGIC;
            rep.hdr.version = DAFS_PROTO_VERSION;
            rep.hdr.opcode = DAFS_OP_READ_INLINE;
            rep.hdr.flags = DAFS_HDR_REPLY;
            rep.hdr.credits = 32;
            rep.hdr.session_id = gen & 3;
            rep.hdr.xid = gen << 16 | slot;
            rep.hdr.status = DAFS_ST_OK;
            rep.u.read.count = sizeof FORGED_DATA - 1;
            rep.u.read.data = (dafs_bytes){(const uint8_t *)FORGED_DATA, sizeof FORGED_DATA - 1};
            int len = dafs_encode_reply(buf, sizeof buf, &rep);
            if (len < 0) {
                fprintf(stderr, "forger: cannot encode: %d\n", len);
                return 1;
            }
            send_op op = {.op.done = send_done};
            if (poll(&p, 1, 0) > 0)
                goto stop; /* the parent closed the pipe: stop */
            if (dfab_send(f, dst, buf, (size_t)len, mr, &op.op) != 0)
                continue; /* the client may be busy: go on */
            int64_t deadline = now_ms() + 2000;
            while (!op.done && now_ms() < deadline)
                (void)dfab_progress(f, 1);
            /* a flood, but one the client keeps up with (a full-rate flood
             * is another attack: it slows everyone) */
            nanosleep(&(struct timespec){0, 20000}, NULL);
            /* "r": the parent starts reading now; then a "k" every 100 sent,
             * so that it reads until the attack has really run */
            if (op.done && (++sent == 1 || sent % 100 == 0) &&
                write(out, sent == 1 ? "r" : "k", 1) != 1)
                return 1;
        }
    }
stop:
    fprintf(stderr, "forger: %" PRIu64 " sent\n", sent);
    ssize_t w = write(out, "n", 1) == 1 ? write(out, &sent, sizeof sent) : -1;
    dfab_mr_close(mr);
    dfab_close(f);
    return w == (ssize_t)sizeof sent ? 0 : 1;
}

/* ---- finding the client's endpoint, as a local attacker can ---- */

/* tcp: a port this process listens on (the client's rxm endpoint). */
static int own_listen_port(unsigned *port)
{
    char want[64][32];
    int nwant = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && nwant < 64) {
        char path[300], link[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (sscanf(link, "socket:[%31[0-9]]", want[nwant]) == 1)
            nwant++;
    }
    closedir(d);
    FILE *f = fopen("/proc/self/net/tcp", "r");
    if (!f)
        return -1;
    char line[512];
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        unsigned lport, st;
        char inode[32];
        if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %31s", &lport, &st,
                   inode) != 3 ||
            st != 0x0a)
            continue;
        for (int i = 0; i < nwant; i++)
            if (strcmp(inode, want[i]) == 0) {
                *port = lport;
                found = 0;
            }
    }
    fclose(f);
    return found;
}

/* The client's endpoint name, as the forger inserts it. */
static int client_name(uint8_t *name, size_t *len)
{
    if (is_shm()) {
        FILE *f = fopen("/proc/self/maps", "r");
        if (!f)
            return -1;
        char line[1024];
        int rc = -1;
        while (rc < 0 && fgets(line, sizeof line, f)) {
            char *p = strstr(line, "/dev/shm/dafs_shm_c");
            if (!p)
                continue;
            p += strlen("/dev/shm/");
            p[strcspn(p, " \n")] = '\0';
            *len = strlen(p) + 1;
            memcpy(name, p, *len);
            rc = 0;
        }
        fclose(f);
        return rc;
    }
    unsigned port;
    if (own_listen_port(&port) != 0)
        return -1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memcpy(name, &sin, sizeof sin);
    *len = sizeof sin;
    return 0;
}

/* ---- the test ---- */

static void read_under_fire(test_server *srv, int to_forger, int from_forger)
{
    dafs_session *s = NULL;
    CHECK_EQ(dafs_connect(srv->url, NULL, &s), 0);
    static uint8_t data[FILE_BYTES], got[FILE_BYTES];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    dafs_file *f = NULL;
    CHECK_EQ(dafs_open(s, "/target", O_RDWR | O_CREAT, 0644, &f), 0);
    CHECK_EQ(dafs_pwrite(f, data, sizeof data, 0), (long long)sizeof data);

    uint8_t name[256];
    size_t nlen = 0;
    CHECK(client_name(name, &nlen) == 0);
    CHECK(write(to_forger, name, nlen) == (ssize_t)nlen);
    /* read until the forger's first reply got through (tcp: its connection
     * to us needs our progress), then READS more under fire */
    struct pollfd p = {.fd = from_forger, .events = POLLIN};
    int bad = 0, after = -1, ticks = 0;
    int64_t deadline = now_ms() + 120000; /* a hang's bound, not a speed limit */
    /* READS reads at least, and on until the forger has sent FORGED_MIN
     * replies (it says so every 100): on a loaded machine it is slower */
    for (int i = 0; (after < READS || ticks < FORGED_MIN / 100) && bad == 0; i++) {
        char note = 0;
        while (poll(&p, 1, 0) == 1 && read(from_forger, &note, 1) == 1) {
            if (note == 'r')
                after = 0;
            else if (note == 'k')
                ticks++;
        }
        if (now_ms() > deadline)
            break;
        if (after >= 0)
            after++;
        memset(got, 0, sizeof got);
        ssize_t n = dafs_pread(f, got, sizeof got, 0);
        if (n != (ssize_t)sizeof got || memcmp(got, data, sizeof got) != 0) {
            fprintf(stderr, "read %d: returned %zd (%s)%s\n", i, n,
                    n < 0 ? dafs_strerror((int)n) : "",
                    n > 0 && memcmp(got, FORGED_DATA, sizeof FORGED_DATA - 1) == 0
                        ? ", forged data"
                        : "");
            bad++;
        }
    }
    close(to_forger); /* stop the forger */
    uint64_t forged = 0;
    ssize_t r = -1;
    for (char note = 0; r < 0 && poll(&p, 1, 30000) == 1 && read(from_forger, &note, 1) == 1;)
        if (note == 'n')
            r = poll(&p, 1, 30000) == 1 ? read(from_forger, &forged, sizeof forged) : -1;
    fprintf(stderr, "forged replies sent during %d reads: %" PRIu64 " (r %zd)\n", after, forged, r);
    CHECK_EQ(bad, 0);
    CHECK(after >= 0); /* the forger got through */
    CHECK(r == (ssize_t)sizeof forged);
    CHECK(forged >= FORGED_MIN); /* the attack really ran alongside the reads */
    /* the session still works */
    CHECK_EQ(dafs_pread(f, got, sizeof got, 0), (long long)sizeof got);
    CHECK(memcmp(got, data, sizeof got) == 0);
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_disconnect(s), 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DAFSD\n", argv[0]);
        return 2;
    }
    int down[2], up[2];
    if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0)
        return 2;
    pid_t child = fork(); /* before any libfabric use in this process */
    if (child < 0)
        return 2;
    if (child == 0) {
        close(down[1]);
        close(up[0]);
        _exit(forger(down[0], up[1]));
    }
    close(down[0]);
    close(up[1]);
    test_server srv;
    if (test_server_start(argv[1], &srv) != 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return 1;
    }
    read_under_fire(&srv, down[1], up[0]);
    close(down[1]);
    int64_t deadline = now_ms() + 10000;
    int status = 0;
    while (waitpid(child, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            break;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    test_server_stop(&srv);
    printf("%s\n", test_failures ? "FAIL" : "ok");
    return test_failures ? 1 : 0;
}
