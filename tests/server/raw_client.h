/*
 * raw_client.h — dafsd process control and a raw protocol client for the
 * server tests (see raw_client.c), and the scaffolding both test programs
 * share: the failure count and CHECK, the scratch directory, the test loop.
 */
#ifndef DAFS_TEST_RAW_CLIENT_H
#define DAFS_TEST_RAW_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "proto.h"
#include "transport.h"

typedef struct daemon_proc {
    pid_t pid;
    char port[16];
} daemon_proc;

#define MSG 16384
#define NRX 128
#define DATA_BYTES (4u << 20)

typedef struct rx_buf {
    dfab_op op;
    struct client *c;
    int index;
} rx_buf;

typedef struct client {
    dfab *f;
    dfab_addr srv;
    uint8_t *mem;      /* tx slot + NRX rx slots, MSG bytes each */
    dfab_mr *mr;
    rx_buf rx[NRX];
    int ready[NRX];    /* FIFO of completed rx slots */
    size_t ready_len[NRX];
    int nready;
    dfab_op tx_op;
    bool tx_done;
    int tx_status;
    uint8_t last[MSG]; /* copy of the last reply taken */
    uint8_t *data;     /* DATA_BYTES, registered for remote access */
    dfab_mr *data_mr;
    uint64_t session;
    uint64_t xid;
    uint16_t credits;
    dafs_connect_rep limits;
    uint32_t cred;     /* put in every request header that names none */
} client;

int64_t now_ms(void);
extern const char *dafsd_path;
extern char scratch[256], export_dir[300], state_dir[300];

/* ---- test scaffolding ---- */

/* Failed checks so far, over all tests of the program. */
extern int test_failures;

/* How long a send completion or a reply may take before a test calls it
 * lost.  Only a hang waits this long, so it is generous: on a loaded machine
 * (two copies of the suite on two cores) 5 s was seen to pass. */
#define REPLY_WAIT_MS 30000

/* Report a failed check (printf-style message) and leave the test function. */
#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __func__, __LINE__);                         \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fprintf(stderr, "\n");                                                        \
            test_failures++;                                                              \
            return;                                                                       \
        }                                                                                 \
    } while (0)

typedef struct named_test {
    const char *name;
    void (*fn)(void);
} named_test;

/* mkdtemp(templ) into scratch, set export_dir and state_dir inside it and
 * create export_dir (0755); exits the program on failure. */
void make_scratch(const char *templ);
/* rm -rf scratch (best effort). */
void remove_scratch(void);
/* Run each test, printing "ok"/"FAIL", its name and how long it took. */
void run_tests(const named_test *tests, size_t n);
/* Print the failure count; the exit status: that count, capped at 100. */
int test_exit_status(void);

/* Start dafsd on the scratch export with --no-root-squash (and --lease-ms). */
int start_dafsd(daemon_proc *d, const char *lease_ms);
int start_dafsd_args(daemon_proc *d, const char *tag, const char *const *extra);
int stop_dafsd(daemon_proc *d);
bool dafsd_alive(daemon_proc *d);
int client_open(client *c, const char *port);
void client_close(client *c);
int send_raw(client *c, const void *buf, size_t len);
int take_reply(client *c, int timeout_ms, dafs_reply *rep);
int encode(client *c, dafs_request *req, uint8_t *buf);
int call(client *c, dafs_request *req, dafs_reply *rep);
void init_req(dafs_request *r, uint16_t op);
int do_connect(client *c, const char *client_id, uint64_t boot, uint16_t credits);
int simple(client *c, uint16_t op);
int getroot(client *c, dafs_fh *fh);
int dirop(client *c, uint16_t op, const dafs_fh *dir, const char *name, uint32_t flags,
                 dafs_fh *fh, dafs_attr *attr);
int write_inline(client *c, const dafs_fh *fh, uint64_t off, const void *data, uint32_t n);
int read_inline(client *c, const dafs_fh *fh, uint64_t off, uint32_t n, void *out,
                       uint32_t *got, bool *eof);
void make_segs(client *c, dafs_seg *segs, const size_t *offs, const size_t *lens, int n);
int direct(client *c, uint16_t op, const dafs_fh *fh, uint64_t off, uint32_t count,
                  const dafs_seg *segs, int nsegs, uint32_t *got);
int register_cred(client *c, uint32_t uid, uint32_t gid, unsigned ngroups,
                  const uint32_t *groups, uint32_t *id);

#endif
