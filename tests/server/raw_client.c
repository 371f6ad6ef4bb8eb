/*
 * raw_client.c — test helpers shared by the dafsd test programs: start and
 * stop a dafsd by PID, and a raw protocol client (dafs_transport + the wire
 * codec, no libdafs) with one request in flight at a time; and the test
 * scaffolding (failure count, scratch directory, test loop).
 */
#include "raw_client.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the dafsd process -------------------------------------------------- */

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *dafsd_path;
char scratch[256], export_dir[300], state_dir[300];

/* ---- test scaffolding --------------------------------------------------- */

int test_failures;

void make_scratch(const char *templ)
{
    snprintf(scratch, sizeof(scratch), "%s", templ);
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(export_dir, sizeof(export_dir), "%s/export", scratch);
    snprintf(state_dir, sizeof(state_dir), "%s/state", scratch);
    if (mkdir(export_dir, 0755) != 0) {
        perror("scratch");
        exit(1);
    }
}

void remove_scratch(void)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", scratch);
}

void run_tests(const named_test *tests, size_t n)
{
    const char *only = getenv("DAFS_TEST_ONLY"); /* run just the test of that name */
    for (size_t i = 0; i < n; i++) {
        if (only && strcmp(only, tests[i].name) != 0)
            continue;
        int before = test_failures;
        int64_t t0 = now_ms();
        tests[i].fn();
        fprintf(stderr, "%s %s (%lld ms)\n", test_failures == before ? "ok  " : "FAIL",
                tests[i].name, (long long)(now_ms() - t0));
    }
}

int test_exit_status(void)
{
    fprintf(stderr, "%d failure(s)\n", test_failures);
    return test_failures > 100 ? 100 : test_failures;
}

int start_dafsd(daemon_proc *d, const char *lease_ms)
{
    const char *extra[] = {"--no-root-squash", lease_ms ? "--lease-ms" : NULL, lease_ms, NULL};
    return start_dafsd_args(d, lease_ms ? lease_ms : "default", extra);
}

int start_dafsd_args(daemon_proc *d, const char *tag, const char *const *extra)
{
    char ready[320];
    snprintf(ready, sizeof(ready), "%s/ready.%s", scratch, tag);
    unlink(ready);
    d->pid = fork();
    if (d->pid < 0)
        return -1;
    if (d->pid == 0) {
        const char *argv[40];
        int n = 0;
        argv[n++] = dafsd_path;
        argv[n++] = "--export";
        argv[n++] = export_dir;
        argv[n++] = "--state-dir";
        argv[n++] = state_dir;
        argv[n++] = "--listen";
        argv[n++] = "127.0.0.1:0";
        argv[n++] = "--ready-file";
        argv[n++] = ready;
        argv[n++] = "--threads";
        argv[n++] = "2";
        for (int i = 0; extra && extra[i] && n < 38; i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
        execv(dafsd_path, (char *const *)argv);
        _exit(127);
    }
    /* a deadline for a hang, not a speed limit: dafsd took over 10 s to
     * start with two copies of the suite and other work on two cores */
    int64_t deadline = now_ms() + 60000;
    while (now_ms() < deadline) {
        FILE *f = fopen(ready, "r");
        if (f) {
            bool ok = fgets(d->port, sizeof(d->port), f) != NULL;
            fclose(f);
            if (ok) {
                d->port[strcspn(d->port, "\n")] = '\0';
                return 0;
            }
        }
        if (waitpid(d->pid, NULL, WNOHANG) == d->pid)
            return -1;
        usleep(50000);
    }
    return -1;
}

/* SIGTERM; returns the exit status, or -1 if it did not exit within 5 s. */
int stop_dafsd(daemon_proc *d)
{
    kill(d->pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    return -1;
}

bool dafsd_alive(daemon_proc *d)
{
    return waitpid(d->pid, NULL, WNOHANG) == 0;
}

/* ---- a raw protocol client ---------------------------------------------- */

static void rx_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)src;
    rx_buf *r = (rx_buf *)op;
    if (status < 0)
        return;
    r->c->ready[r->c->nready] = r->index;
    r->c->ready_len[r->c->nready] = len;
    r->c->nready++;
}

static int post_rx(client *c, int i)
{
    memset(&c->rx[i].op, 0, sizeof(c->rx[i].op));
    c->rx[i].op.done = rx_done;
    c->rx[i].c = c;
    c->rx[i].index = i;
    return dfab_post_recv(c->f, c->mem + (size_t)(i + 1) * MSG, MSG, c->mr, &c->rx[i].op);
}

static void tx_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)len;
    (void)src;
    client *c = (client *)((char *)op - offsetof(client, tx_op));
    c->tx_done = true;
    c->tx_status = status;
}

int client_open(client *c, const char *port)
{
    memset(c, 0, sizeof(*c));
    dfab_config cfg = {.node = "127.0.0.1"};
    const char *why = NULL;
    if (dfab_open(&cfg, &c->f, &why) != 0) {
        fprintf(stderr, "dfab_open: %s\n", why ? why : "?");
        return -1;
    }
    if (dfab_resolve(c->f, "127.0.0.1", port, &c->srv) != 0)
        return -1;
    c->mem = aligned_alloc(4096, (size_t)(NRX + 1) * MSG);
    c->data = aligned_alloc(4096, DATA_BYTES);
    if (!c->mem || !c->data)
        return -1;
    if (dfab_mr_reg(c->f, c->mem, (size_t)(NRX + 1) * MSG, DFAB_ACCESS_LOCAL, &c->mr) != 0 ||
        dfab_mr_reg(c->f, c->data, DATA_BYTES,
                    DFAB_ACCESS_LOCAL | DFAB_ACCESS_REMOTE_READ | DFAB_ACCESS_REMOTE_WRITE,
                    &c->data_mr) != 0)
        return -1;
    for (int i = 0; i < NRX; i++)
        if (post_rx(c, i) != 0)
            return -1;
    return 0;
}

void client_close(client *c)
{
    dfab_mr_close(c->mr);
    dfab_mr_close(c->data_mr);
    dfab_close(c->f);
    free(c->mem);
    free(c->data);
}

/* Send len raw bytes (copied into the tx slot) and wait for the send. */
int send_raw(client *c, const void *buf, size_t len)
{
    memcpy(c->mem, buf, len);
    memset(&c->tx_op, 0, sizeof(c->tx_op));
    c->tx_op.done = tx_done;
    c->tx_done = false;
    int rc;
    while ((rc = dfab_send(c->f, c->srv, c->mem, len, c->mr, &c->tx_op)) == -EAGAIN)
        dfab_progress(c->f, 0);
    if (rc != 0)
        return rc;
    int64_t deadline = now_ms() + REPLY_WAIT_MS;
    while (!c->tx_done && now_ms() < deadline)
        dfab_progress(c->f, 10);
    return c->tx_done ? c->tx_status : -ETIMEDOUT;
}

/* Take the next reply (any xid) within timeout_ms, decoded into *rep (its
 * byte strings point into c->last). */
int take_reply(client *c, int timeout_ms, dafs_reply *rep)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (c->nready == 0 && now_ms() < deadline)
        dfab_progress(c->f, 10);
    if (c->nready == 0)
        return -ETIMEDOUT;
    int i = c->ready[0];
    size_t len = c->ready_len[0];
    memmove(c->ready, c->ready + 1, sizeof(int) * (size_t)(c->nready - 1));
    memmove(c->ready_len, c->ready_len + 1, sizeof(size_t) * (size_t)(c->nready - 1));
    c->nready--;
    memcpy(c->last, c->mem + (size_t)(i + 1) * MSG, len);
    if (post_rx(c, i) != 0)
        return -EIO;
    int rc = dafs_decode_reply(c->last, len, rep);
    if (rc == 0 && rep->hdr.credits)
        c->credits = rep->hdr.credits;
    return rc;
}

int encode(client *c, dafs_request *req, uint8_t *buf)
{
    req->hdr.session_id = c->session;
    req->hdr.xid = ++c->xid;
    if (req->hdr.cred == 0)
        req->hdr.cred = c->cred;
    return dafs_encode_request(buf, MSG, req);
}

/* One request, one reply: returns the reply status (or a negative error). */
int call(client *c, dafs_request *req, dafs_reply *rep)
{
    uint8_t buf[MSG];
    int len = encode(c, req, buf);
    if (len < 0)
        return len - 100000;
    if (send_raw(c, buf, (size_t)len) != 0)
        return -EIO;
    for (;;) {
        int rc = take_reply(c, REPLY_WAIT_MS, rep);
        if (rc != 0)
            return rc;
        if (rep->hdr.xid == req->hdr.xid)
            return rep->hdr.status;
    }
}

void init_req(dafs_request *r, uint16_t op)
{
    memset(r, 0, sizeof(*r));
    r->hdr.opcode = op;
}

int do_connect(client *c, const char *client_id, uint64_t boot, uint16_t credits)
{
    uint8_t name[DAFS_EPNAME_MAX];
    size_t nlen = sizeof(name);
    if (dfab_getname(c->f, name, &nlen) != 0)
        return -EIO;
    dafs_request req;
    init_req(&req, DAFS_OP_CONNECT);
    req.u.connect = (dafs_connect_req){
        .client_id = {(const uint8_t *)client_id, (uint32_t)strlen(client_id)},
        .boot_verifier = boot,
        .max_request = MSG,
        .max_response = MSG,
        .inline_max = 8192,
        .max_credits = credits,
        .ep_name = {name, (uint32_t)nlen},
    };
    c->session = 0;
    dafs_reply rep;
    int st = call(c, &req, &rep);
    if (st == 0) {
        c->session = rep.hdr.session_id;
        c->limits = rep.u.connect;
        c->cred = 0;
        uint32_t id = 0;
        st = register_cred(c, 0, 0, 0, NULL, &id);
        c->cred = id;
    }
    return st;
}

int simple(client *c, uint16_t op)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, op);
    return call(c, &req, &rep);
}

int getroot(client *c, dafs_fh *fh)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_GETROOT);
    int st = call(c, &req, &rep);
    if (st == 0)
        *fh = rep.u.fh_attr.fh;
    return st;
}

int dirop(client *c, uint16_t op, const dafs_fh *dir, const char *name, uint32_t flags,
                 dafs_fh *fh, dafs_attr *attr)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, op);
    req.u.dirop.dir = *dir;
    req.u.dirop.name = (dafs_bytes){(const uint8_t *)name, (uint32_t)strlen(name)};
    req.u.dirop.flags = flags;
    req.u.dirop.mode = 0644;
    int st = call(c, &req, &rep);
    if (st == 0 && fh)
        *fh = rep.u.fh_attr.fh;
    if (st == 0 && attr)
        *attr = rep.u.fh_attr.attr;
    return st;
}

int write_inline(client *c, const dafs_fh *fh, uint64_t off, const void *data, uint32_t n)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_WRITE_INLINE);
    req.u.write.fh = *fh;
    req.u.write.offset = off;
    req.u.write.count = n;
    req.u.write.stable = DAFS_FILE_SYNC;
    req.u.write.data = (dafs_bytes){data, n};
    int st = call(c, &req, &rep);
    if (st == 0 && rep.u.write.count != n)
        return -EIO;
    return st;
}

/* Read inline into out; returns status, *got and *eof. */
int read_inline(client *c, const dafs_fh *fh, uint64_t off, uint32_t n, void *out,
                       uint32_t *got, bool *eof)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_READ_INLINE);
    req.u.read.fh = *fh;
    req.u.read.offset = off;
    req.u.read.count = n;
    int st = call(c, &req, &rep);
    if (st == 0) {
        *got = rep.u.read.count;
        *eof = rep.u.read.eof;
        if (out && rep.u.read.data.len)
            memcpy(out, rep.u.read.data.ptr, rep.u.read.data.len);
    }
    return st;
}

/* segments of the client's data buffer: (offset, len) pairs */
void make_segs(client *c, dafs_seg *segs, const size_t *offs, const size_t *lens, int n)
{
    for (int i = 0; i < n; i++)
        segs[i] = (dafs_seg){.addr = c->data_mr->remote_addr + offs[i], .key = c->data_mr->key,
                             .len = lens[i]};
}

int direct(client *c, uint16_t op, const dafs_fh *fh, uint64_t off, uint32_t count,
                  const dafs_seg *segs, int nsegs, uint32_t *got)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, op);
    if (op == DAFS_OP_READ_DIRECT) {
        req.u.read.fh = *fh;
        req.u.read.offset = off;
        req.u.read.count = count;
        req.u.read.nsegs = (uint16_t)nsegs;
        memcpy(req.u.read.segs, segs, sizeof(dafs_seg) * (size_t)nsegs);
    } else {
        req.u.write.fh = *fh;
        req.u.write.offset = off;
        req.u.write.count = count;
        req.u.write.stable = DAFS_DATA_SYNC;
        req.u.write.nsegs = (uint16_t)nsegs;
        memcpy(req.u.write.segs, segs, sizeof(dafs_seg) * (size_t)nsegs);
    }
    int st = call(c, &req, &rep);
    if (st == 0 && got)
        *got = op == DAFS_OP_READ_DIRECT ? rep.u.read.count : rep.u.write.count;
    return st;
}

int register_cred(client *c, uint32_t uid, uint32_t gid, unsigned ngroups,
                  const uint32_t *groups, uint32_t *id)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_REGISTER_CRED);
    req.u.cred.uid = uid;
    req.u.cred.gid = gid;
    req.u.cred.ngroups = ngroups;
    req.u.cred.groups = groups;
    int st = call(c, &req, &rep);
    if (st == 0)
        *id = rep.u.cred.cred_id;
    return st;
}

