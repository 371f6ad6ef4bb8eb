/*
 * server_test.c — robustness tests of a real dafsd, spoken to in raw
 * protocol (dafs_transport + the wire codec; no libdafs).
 *
 * Usage: server_test DAFSD_PATH
 * The provider comes from FI_PROVIDER (CTest runs it for "tcp;ofi_rxm" and
 * "shm").  The test makes a scratch directory (mkdtemp) with an export and
 * a state dir, starts dafsd --listen 127.0.0.1:0 --ready-file, runs every
 * check against it, and stops it by PID (SIGTERM must exit 0 promptly).
 * A second dafsd with --lease-ms 3000 checks lease expiry.  Each check that
 * fails prints one line; the exit status is the number of failures (capped).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raw_client.h"

/* ---- the checks --------------------------------------------------------- */

static const char *port;
static dafs_fh saved_fh; /* "hello", to check handles survive a restart */

/* A fresh session (client id `id`, 8 credits) with `name` opened from the
 * root with `flags` into *fh. */
static void open_session_file(client *c, const char *id, const char *name, uint32_t flags,
                              dafs_fh *fh)
{
    dafs_fh root;
    CHECK(client_open(c, port) == 0, "client open");
    CHECK(do_connect(c, id, 1, 8) == 0, "connect %s", id);
    CHECK(getroot(c, &root) == 0, "getroot");
    CHECK(dirop(c, DAFS_OP_OPEN, &root, name, flags, fh, NULL) == 0, "open %s", name);
}

static void test_round_trip(void)
{
    client c;
    CHECK(client_open(&c, port) == 0, "client open");
    CHECK(do_connect(&c, "rt", 1, 8) == 0, "connect");
    CHECK(c.session != 0 && c.credits >= 2, "session %llx credits %u",
          (unsigned long long)c.session, c.credits);
    CHECK(c.limits.max_io >= 65536 && c.limits.inline_max >= 1024, "limits");
    CHECK(simple(&c, DAFS_OP_NULL) == 0, "null");
    dafs_fh root, fh;
    dafs_attr attr;
    CHECK(getroot(&c, &root) == 0, "getroot");
    int st = dirop(&c, DAFS_OP_OPEN, &root, "hello", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, &fh, &attr);
    CHECK(st == 0, "open creat: %d", st);
    const char msg[] = "hello, dafs";
    CHECK(write_inline(&c, &fh, 0, msg, sizeof(msg)) == 0, "write inline");
    char buf[8192];
    uint32_t got = 0;
    bool eof = false;
    CHECK(read_inline(&c, &fh, 0, sizeof(buf), buf, &got, &eof) == 0, "read inline");
    CHECK(got == sizeof(msg) && eof && memcmp(buf, msg, got) == 0, "read back %u bytes", got);
    /* past EOF */
    CHECK(read_inline(&c, &fh, 1000, 100, buf, &got, &eof) == 0 && got == 0 && eof, "past eof");
    /* lookup gives the same handle; OPEN EXCL of an existing file fails */
    dafs_fh fh2;
    CHECK(dirop(&c, DAFS_OP_LOOKUP, &root, "hello", 0, &fh2, &attr) == 0, "lookup");
    CHECK(fh2.len == fh.len && memcmp(fh2.data, fh.data, fh.len) == 0, "stable handle");
    saved_fh = fh;
    CHECK(attr.size == sizeof(msg), "size %llu", (unsigned long long)attr.size);
    CHECK(dirop(&c, DAFS_OP_OPEN, &root, "hello", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT |
                DAFS_OPEN_EXCL, NULL, NULL) == DAFS_ST_EXIST, "excl");
    CHECK(dirop(&c, DAFS_OP_LOOKUP, &root, "nope", 0, NULL, NULL) == DAFS_ST_NOENT, "noent");
    /* directories */
    dafs_fh dir;
    CHECK(dirop(&c, DAFS_OP_MKDIR, &root, "sub", 0, &dir, &attr) == 0 && S_ISDIR(attr.mode),
          "mkdir");
    CHECK(dirop(&c, DAFS_OP_REMOVE, &root, "sub", 0, NULL, NULL) == DAFS_ST_ISDIR, "remove dir");
    CHECK(dirop(&c, DAFS_OP_RMDIR, &root, "sub", 0, NULL, NULL) == 0, "rmdir");
    CHECK(dirop(&c, DAFS_OP_LOOKUP, &dir, ".", 0, NULL, NULL) == DAFS_ST_STALE, "stale dir");
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_STATFS);
    req.u.fh.fh = root;
    CHECK(call(&c, &req, &rep) == 0 && rep.u.statfs.bsize > 0, "statfs");
    init_req(&req, DAFS_OP_COMMIT);
    req.u.commit.fh = fh;
    req.u.commit.stable = DAFS_FILE_SYNC;
    CHECK(call(&c, &req, &rep) == 0 && rep.u.commit.verifier == c.limits.server_instance,
          "commit");
    CHECK(simple(&c, DAFS_OP_DISCONNECT) == 0, "disconnect");
    CHECK(simple(&c, DAFS_OP_NULL) == DAFS_ST_BADSESSION, "after disconnect");
    client_close(&c);
}

static int raw_status(client *c, const void *buf, size_t len, int timeout_ms);

/* READ_DIRECT whose count (patched on the wire, since the encoder refuses
 * it) is one more than the segments hold. */
static int direct_short_segs(client *c, const dafs_fh *fh, uint32_t total, const dafs_seg *segs,
                             int nsegs)
{
    dafs_request req;
    init_req(&req, DAFS_OP_READ_DIRECT);
    req.u.read.fh = *fh;
    req.u.read.count = total;
    req.u.read.nsegs = (uint16_t)nsegs;
    memcpy(req.u.read.segs, segs, sizeof(dafs_seg) * (size_t)nsegs);
    uint8_t buf[MSG];
    int len = encode(c, &req, buf);
    if (len < 0)
        return len;
    size_t at = DAFS_HDR_SIZE + ((1u + fh->len + 7u) & ~7u) + 8 + 8; /* fh, stateid, offset */
    uint32_t patched = total + 1;
    memcpy(buf + at, &patched, 4); /* little-endian host */
    return raw_status(c, buf, (size_t)len, 2000);
}

static void test_direct(void)
{
    client c;
    dafs_fh fh;
    open_session_file(&c, "direct", "big", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, &fh);
    const uint32_t n = 300000;
    for (uint32_t i = 0; i < n; i++)
        c.data[i] = (uint8_t)(i * 7 + 3);
    size_t woffs[3] = {0, 100000, 200000}, wlens[3] = {100000, 100000, 100000};
    dafs_seg segs[3];
    make_segs(&c, segs, woffs, wlens, 3);
    uint32_t got = 0;
    CHECK(direct(&c, DAFS_OP_WRITE_DIRECT, &fh, 4096, n, segs, 3, &got) == 0 && got == n,
          "write direct");
    /* read back into a different, oddly split area */
    size_t roffs[3] = {1u << 20, (1u << 20) + 5000, 2u << 20}, rlens[3] = {5000, 95000, 200000};
    make_segs(&c, segs, roffs, rlens, 3);
    CHECK(direct(&c, DAFS_OP_READ_DIRECT, &fh, 4096, n, segs, 3, &got) == 0 && got == n,
          "read direct got %u", got);
    CHECK(memcmp(c.data + roffs[0], c.data, 5000) == 0 &&
              memcmp(c.data + roffs[1], c.data + 5000, 95000) == 0 &&
              memcmp(c.data + roffs[2], c.data + 100000, 200000) == 0,
          "direct data mismatch");
    /* segments too small, count above max_io, no segments */
    int st = direct_short_segs(&c, &fh, n, segs, 3);
    CHECK(st == DAFS_ST_INVAL || st == DAFS_ST_BADMSG, "segs too small: %d", st);
    size_t boff[1] = {0}, blen[1] = {DATA_BYTES};
    make_segs(&c, segs, boff, blen, 1);
    CHECK(direct(&c, DAFS_OP_READ_DIRECT, &fh, 0, c.limits.max_io + 1, segs, 1, NULL) ==
              DAFS_ST_INVAL,
          "over max_io");
    /* read past EOF through the direct path */
    CHECK(direct(&c, DAFS_OP_READ_DIRECT, &fh, 1u << 30, 4096, segs, 1, &got) == 0 && got == 0,
          "direct past eof");
    client_close(&c);
}

/* Several big READ_DIRECTs in flight at once (replies may come in any
 * order: two workers and the fast path share them), at odd offsets into
 * an odd-sized file, split over odd segments; one straddles end of file and
 * one starts past it.  Every reply must name its own count and eof, and the
 * data must be in place when the reply arrives. */
#define PIPE_READS 6
static void test_direct_pipelined(void)
{
    client c;
    dafs_fh fh;
    open_session_file(&c, "pipelined", "odd", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, &fh);
    const uint32_t fsize = 700001;
    for (uint32_t i = 0; i < fsize; i++)
        c.data[i] = (uint8_t)(i * 13 + i / 251);
    size_t woff[1] = {0}, wlen[1] = {fsize};
    dafs_seg wseg[1];
    make_segs(&c, wseg, woff, wlen, 1);
    uint32_t got = 0;
    CHECK(direct(&c, DAFS_OP_WRITE_DIRECT, &fh, 0, fsize, wseg, 1, &got) == 0 && got == fsize,
          "write %u", got);
    /* file offset, count, expected count; each read lands in its own area */
    const uint64_t off[PIPE_READS] = {1, 65537, 123457, 399999, fsize - 4097, fsize + 3};
    const uint32_t cnt[PIPE_READS] = {300001, 65537, 276543, 300002, 262144, 4096};
    uint64_t xids[PIPE_READS];
    size_t area[PIPE_READS];
    for (int i = 0; i < PIPE_READS; i++) {
        area[i] = (1u << 20) + (size_t)i * 500000 + 3; /* within DATA_BYTES */
        dafs_request req;
        init_req(&req, DAFS_OP_READ_DIRECT);
        req.u.read = (dafs_read_req){.fh = fh, .offset = off[i], .count = cnt[i], .nsegs = 3};
        size_t a = cnt[i] / 3 + 1, b = 7;
        size_t offs[3] = {area[i], area[i] + a + 11, area[i] + a + 11 + b + 5};
        size_t lens[3] = {a, b, cnt[i] - a - b + 100};
        make_segs(&c, req.u.read.segs, offs, lens, 3);
        memset(c.data + area[i], 0xEE, 490000);
        uint8_t buf[MSG];
        int len = encode(&c, &req, buf);
        xids[i] = req.hdr.xid;
        CHECK(len > 0 && send_raw(&c, buf, (size_t)len) == 0, "send read %d", i);
    }
    for (int n = 0; n < PIPE_READS; n++) {
        dafs_reply rep;
        CHECK(take_reply(&c, REPLY_WAIT_MS, &rep) == 0 && rep.hdr.status == DAFS_ST_OK, "reply %d", n);
        int i = 0;
        while (i < PIPE_READS && xids[i] != rep.hdr.xid)
            i++;
        if (i == PIPE_READS) {
            CHECK(false, "reply with unknown xid");
            continue;
        }
        uint64_t want = off[i] >= fsize ? 0 : fsize - off[i];
        want = want < cnt[i] ? want : cnt[i];
        CHECK(rep.u.read.count == want, "read %d count %u want %llu", i, rep.u.read.count,
              (unsigned long long)want);
        CHECK(rep.u.read.eof == (off[i] + want >= fsize), "read %d eof %u", i, rep.u.read.eof);
        size_t a = cnt[i] / 3 + 1, b = 7;
        size_t dst[3] = {area[i], area[i] + a + 11, area[i] + a + 11 + b + 5};
        size_t seglen[3] = {a, b, cnt[i] - a - b + 100};
        size_t done = 0;
        bool same = true;
        for (int sgi = 0; sgi < 3 && done < want; sgi++) {
            size_t take = want - done < seglen[sgi] ? want - done : seglen[sgi];
            same = same && memcmp(c.data + dst[sgi], c.data + off[i] + done, take) == 0;
            if (take < seglen[sgi]) /* nothing written beyond the data */
                same = same && c.data[dst[sgi] + take] == 0xEE;
            done += take;
        }
        CHECK(same, "read %d data", i);
    }
    client_close(&c);
}

/* The eof flag at and around the end of a file, through the worker (the
 * first read of a handle) and the network thread's fast path (the fd is then
 * cached, and the fast path tells EOF from a probe byte read past the
 * range): eof is set exactly when the read reaches the end of the file. */
static void test_eof(void)
{
    enum { SIZE = 3 * 4096 + 100 };
    char path[512];
    snprintf(path, sizeof(path), "%s/eofs", export_dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0, "create %s", path);
    static char content[SIZE];
    for (int i = 0; i < SIZE; i++)
        content[i] = (char)(i * 13 + 1);
    CHECK(fd >= 0 && write(fd, content, SIZE) == SIZE, "write eofs");
    if (fd >= 0)
        close(fd);
    client c;
    dafs_fh fh;
    open_session_file(&c, "eof", "eofs", DAFS_OPEN_RDONLY, &fh);
    static const struct {
        uint64_t off;
        uint32_t count, want;
        bool eof;
    } cases[] = {
        {0, 4096, 4096, false},        {SIZE - 4096, 4096, 4096, true},
        {SIZE - 4097, 4096, 4096, false}, {3 * 4096, 100, 100, true},
        {3 * 4096, 99, 99, false},     {3 * 4096, 4096, 100, true},
        {SIZE, 10, 0, true},           {SIZE + 4096, 10, 0, true},
    };
    char buf[4096];
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            uint32_t got = 0;
            bool eof = !cases[i].eof;
            int st = read_inline(&c, &fh, cases[i].off, cases[i].count, buf, &got, &eof);
            CHECK(st == 0 && got == cases[i].want && eof == cases[i].eof &&
                      (got == 0 || memcmp(buf, content + cases[i].off, got) == 0),
                  "pass %d read %llu+%u: st %d got %u eof %d", pass,
                  (unsigned long long)cases[i].off, cases[i].count, st, got, (int)eof);
        }
    }
    client_close(&c);
}

static void test_offsets(void)
{
    client c;
    dafs_fh fh;
    open_session_file(&c, "offsets", "hello", DAFS_OPEN_RDWR, &fh);
    uint32_t got;
    bool eof;
    char buf[16];
    CHECK(read_inline(&c, &fh, UINT64_MAX, 10, buf, &got, &eof) == DAFS_ST_INVAL, "u64 max");
    CHECK(read_inline(&c, &fh, INT64_MAX - 5, 10, buf, &got, &eof) == DAFS_ST_INVAL, "overflow");
    int st = write_inline(&c, &fh, INT64_MAX - 2, "abcdef", 6);
    CHECK(st == DAFS_ST_INVAL || st == DAFS_ST_FBIG, "write overflow: %d", st);
    st = write_inline(&c, &fh, (uint64_t)1 << 62, "abcdef", 6);
    CHECK(st == DAFS_ST_INVAL || st == DAFS_ST_FBIG, "write huge offset: %d", st);
    CHECK(read_inline(&c, &fh, 0, c.limits.inline_max + 1, NULL, &got, &eof) == DAFS_ST_INVAL,
          "inline over limit");
    client_close(&c);
}

/* Replies expected for a raw message: returns the status or -ETIMEDOUT. */
static int raw_status(client *c, const void *buf, size_t len, int timeout_ms)
{
    dafs_reply rep;
    if (send_raw(c, buf, len) != 0)
        return -EIO;
    int rc = take_reply(c, timeout_ms, &rep);
    return rc != 0 ? rc : rep.hdr.status;
}

static void test_hostile(void)
{
    client c;
    CHECK(client_open(&c, port) == 0, "client open");
    CHECK(do_connect(&c, "hostile", 1, 8) == 0, "connect");
    dafs_fh root;
    CHECK(getroot(&c, &root) == 0, "getroot");
    uint8_t buf[MSG];
    /* garbage: no reply (not even our magic), server keeps going */
    for (size_t i = 0; i < 200; i++)
        buf[i] = (uint8_t)(i * 131 + 17);
    CHECK(raw_status(&c, buf, 200, 300) == -ETIMEDOUT, "garbage answered");
    CHECK(raw_status(&c, buf, 3, 300) == -ETIMEDOUT, "3 bytes answered");
    CHECK(simple(&c, DAFS_OP_NULL) == 0, "null after garbage");
    /* truncated GETATTR */
    dafs_request req;
    init_req(&req, DAFS_OP_GETATTR);
    req.u.fh.fh = root;
    int len = encode(&c, &req, buf);
    CHECK(len > DAFS_HDR_SIZE, "encode");
    CHECK(raw_status(&c, buf, (size_t)len - 8, 2000) == DAFS_ST_BADMSG, "truncated");
    CHECK(raw_status(&c, buf, DAFS_HDR_SIZE, 2000) == DAFS_ST_BADMSG, "header only");
    /* wrong version */
    len = encode(&c, &req, buf);
    buf[4] = 99;
    CHECK(raw_status(&c, buf, (size_t)len, 2000) == DAFS_ST_VERSION, "version");
    /* unknown opcode */
    len = encode(&c, &req, buf);
    buf[6] = 0xe7;
    buf[7] = 0x03;
    int st = raw_status(&c, buf, (size_t)len, 2000);
    CHECK(st == DAFS_ST_BADOP || st == DAFS_ST_BADMSG, "unknown opcode: %d", st);
    /* forged handles */
    dafs_reply rep;
    dafs_fh bad = root;
    bad.data[bad.len / 2] ^= 0x40;
    init_req(&req, DAFS_OP_GETATTR);
    req.u.fh.fh = bad;
    CHECK(call(&c, &req, &rep) == DAFS_ST_BADHANDLE, "modified handle");
    bad = root;
    bad.len = 3;
    req.u.fh.fh = bad;
    CHECK(call(&c, &req, &rep) == DAFS_ST_BADHANDLE, "short handle");
    memset(&bad, 0xa5, sizeof(bad));
    bad.len = DAFS_FH_MAX;
    req.u.fh.fh = bad;
    CHECK(call(&c, &req, &rep) == DAFS_ST_BADHANDLE, "random handle");
    init_req(&req, DAFS_OP_READ_INLINE);
    req.u.read.fh = bad;
    req.u.read.count = 100;
    CHECK(call(&c, &req, &rep) == DAFS_ST_BADHANDLE, "read with random handle");
    /* a request flagged as a reply */
    init_req(&req, DAFS_OP_NULL);
    len = encode(&c, &req, buf);
    buf[12] |= 1;
    CHECK(raw_status(&c, buf, (size_t)len, REPLY_WAIT_MS) == DAFS_ST_BADMSG, "reply flag");
    /* unknown session */
    uint64_t saved = c.session;
    c.session = 0x1234567887654321ull;
    st = simple(&c, DAFS_OP_NULL);
    c.session = saved;
    CHECK(st == DAFS_ST_BADSESSION || st == -ETIMEDOUT, "unknown session: %d", st);
    CHECK(simple(&c, DAFS_OP_NULL) == 0, "null after hostile input");
    client_close(&c);
}

/* LOOKUP with a name that the encoder refuses: encode a 1- or 255-byte name
 * and patch its length on the wire. */
static int lookup_patched(client *c, const dafs_fh *root, uint32_t wire_len)
{
    char name[256];
    uint32_t enc_len = wire_len == 0 ? 1 : 255;
    memset(name, 'a', sizeof(name));
    dafs_request req;
    init_req(&req, DAFS_OP_LOOKUP);
    req.u.dirop.dir = *root;
    req.u.dirop.name = (dafs_bytes){(const uint8_t *)name, enc_len};
    uint8_t buf[MSG];
    int len = encode(c, &req, buf);
    if (len < 0)
        return -EINVAL;
    size_t at = DAFS_HDR_SIZE + ((1u + root->len + 7u) & ~7u);
    buf[at] = (uint8_t)wire_len;
    buf[at + 1] = (uint8_t)(wire_len >> 8);
    if (wire_len == 256)
        buf[at + 4 + 255] = 'a';
    return raw_status(c, buf, (size_t)len, 2000);
}

static void test_names(void)
{
    client c;
    CHECK(client_open(&c, port) == 0, "client open");
    CHECK(do_connect(&c, "names", 1, 8) == 0, "connect");
    dafs_fh root, fh;
    dafs_attr attr;
    CHECK(getroot(&c, &root) == 0, "getroot");
    CHECK(dirop(&c, DAFS_OP_LOOKUP, &root, "..", 0, NULL, NULL) == DAFS_ST_INVAL, "..");
    CHECK(dirop(&c, DAFS_OP_LOOKUP, &root, "a/b", 0, NULL, NULL) == DAFS_ST_INVAL, "a/b");
    CHECK(dirop(&c, DAFS_OP_OPEN, &root, "../x", DAFS_OPEN_CREAT | DAFS_OPEN_WRONLY, NULL,
                NULL) == DAFS_ST_INVAL,
          "open ../x");
    CHECK(dirop(&c, DAFS_OP_MKDIR, &root, "..", 0, NULL, NULL) == DAFS_ST_INVAL, "mkdir ..");
    CHECK(dirop(&c, DAFS_OP_REMOVE, &root, "/etc", 0, NULL, NULL) == DAFS_ST_INVAL, "rm /etc");
    int st = lookup_patched(&c, &root, 0);
    CHECK(st == DAFS_ST_BADMSG || st == DAFS_ST_INVAL, "empty name: %d", st);
    st = lookup_patched(&c, &root, 256);
    CHECK(st == DAFS_ST_BADMSG || st == DAFS_ST_NAMETOOLONG, "256-byte name: %d", st);
    /* symlinks: LOOKUP gives the link itself; OPEN refuses; no data leaks */
    CHECK(dirop(&c, DAFS_OP_LOOKUP, &root, "pw", 0, &fh, &attr) == 0, "lookup link");
    CHECK(S_ISLNK(attr.mode), "pw is not reported as a symlink (mode %o)", attr.mode);
    CHECK(dirop(&c, DAFS_OP_OPEN, &root, "pw", DAFS_OPEN_RDONLY, NULL, NULL) == DAFS_ST_LOOP,
          "open link");
    char buf[4096];
    uint32_t got = 0;
    bool eof;
    st = read_inline(&c, &fh, 0, sizeof(buf), buf, &got, &eof);
    CHECK(st != 0, "read through a symlink handle succeeded (%u bytes)", got);
    CHECK(dirop(&c, DAFS_OP_LOOKUP, &root, "up", 0, &fh, &attr) == 0 && S_ISLNK(attr.mode),
          "lookup ../.. link");
    st = dirop(&c, DAFS_OP_OPEN, &root, "up", DAFS_OPEN_RDONLY | DAFS_OPEN_DIRECTORY, NULL, NULL);
    CHECK(st == DAFS_ST_LOOP, "open ../.. link: %d", st);
    CHECK(dirop(&c, DAFS_OP_LOOKUP, &fh, "etc", 0, NULL, NULL) == DAFS_ST_NOTDIR,
          "lookup beneath a link");
    CHECK(dirop(&c, DAFS_OP_OPEN, &root, "pw", DAFS_OPEN_WRONLY | DAFS_OPEN_CREAT, NULL, NULL) ==
              DAFS_ST_LOOP,
          "creat through link");
    client_close(&c);
}

/* READDIR a directory of many files in small replies; checks every name once. */
static void test_readdir(void)
{
    enum { NFILES = 1500 };
    char path[512];
    snprintf(path, sizeof(path), "%s/many", export_dir);
    CHECK(mkdir(path, 0755) == 0, "mkdir many");
    for (int i = 0; i < NFILES; i++) {
        snprintf(path, sizeof(path), "%s/many/f%05d", export_dir, i);
        int fd = open(path, O_CREAT | O_WRONLY, 0644);
        CHECK(fd >= 0, "create %s", path);
        close(fd);
    }
    client c;
    CHECK(client_open(&c, port) == 0, "client open");
    CHECK(do_connect(&c, "readdir", 1, 8) == 0, "connect");
    dafs_fh root, dir;
    CHECK(getroot(&c, &root) == 0, "getroot");
    CHECK(dirop(&c, DAFS_OP_LOOKUP, &root, "many", 0, &dir, NULL) == 0, "lookup many");
    static bool seen[NFILES];
    int total = 0, calls = 0;
    uint64_t cookie = 0;
    for (;;) {
        dafs_request req;
        dafs_reply rep;
        init_req(&req, DAFS_OP_READDIR);
        req.u.readdir.dir = dir;
        req.u.readdir.cookie = cookie;
        req.u.readdir.maxcount = 4096;
        CHECK(call(&c, &req, &rep) == 0, "readdir call %d", calls);
        calls++;
        dafs_readdir_iter it;
        dafs_dirent_wire e;
        dafs_readdir_iter_init(&it, &rep.u.readdir);
        while (dafs_readdir_next(&it, &e) == 1) {
            int idx;
            CHECK(e.name.len == 6 && sscanf((const char *)e.name.ptr, "f%05d", &idx) == 1 &&
                      idx >= 0 && idx < NFILES && !seen[idx],
                  "bad or repeated entry");
            seen[idx] = true;
            total++;
            cookie = e.cookie;
        }
        if (rep.u.readdir.eof)
            break;
        CHECK(rep.u.readdir.nentries > 0 && calls < 10000, "no progress");
    }
    CHECK(total == NFILES, "saw %d of %d entries in %d calls", total, NFILES, calls);
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_READDIR);
    req.u.readdir.dir = dir;
    req.u.readdir.maxcount = 8;
    CHECK(call(&c, &req, &rep) == DAFS_ST_INVAL, "tiny maxcount");
    client_close(&c);
}

/* Send n WRITE_INLINE FILE_SYNC requests back to back without waiting, then
 * take every reply, counting executed, CREDIT-refused and other answers.
 * Returns 0, or -1 when a reply is missing or not one of ours. */
static int flood_once(client *c, const dafs_fh *fh, int n, int *ok, int *refused, int *other)
{
    static uint8_t data[4096];
    uint64_t first = c->xid + 1;
    for (int i = 0; i < n; i++) {
        dafs_request req;
        init_req(&req, DAFS_OP_WRITE_INLINE);
        req.u.write.fh = *fh;
        req.u.write.offset = (uint64_t)i * sizeof(data);
        req.u.write.count = sizeof(data);
        req.u.write.stable = DAFS_FILE_SYNC;
        req.u.write.data = (dafs_bytes){data, sizeof(data)};
        uint8_t buf[MSG];
        int len = encode(c, &req, buf);
        if (len <= 0 || send_raw(c, buf, (size_t)len) != 0)
            return -1;
    }
    for (int i = 0; i < n; i++) {
        dafs_reply rep;
        if (take_reply(c, REPLY_WAIT_MS, &rep) != 0 || rep.hdr.xid < first ||
            rep.hdr.xid >= first + (uint64_t)n)
            return -1;
        if (rep.hdr.status == 0)
            (*ok)++;
        else if (rep.hdr.status == DAFS_ST_CREDIT)
            (*refused)++;
        else
            (*other)++;
    }
    return 0;
}

/* Flood a session granted 2 credits with slow requests: some must be
 * refused with CREDIT, all must be answered, and the server stays up.
 * Whether a flood outruns the server depends on scheduling (a client slowed
 * by a sanitizer can send each request after the last one was answered), so
 * floods repeat, a bounded number of times, until one overruns the grant. */
static void test_credits(void)
{
    client c;
    CHECK(client_open(&c, port) == 0, "client open");
    CHECK(do_connect(&c, "credits", 1, 2) == 0, "connect");
    CHECK(c.credits == 2, "grant %u", c.credits);
    dafs_fh root, fh;
    CHECK(getroot(&c, &root) == 0, "getroot");
    CHECK(dirop(&c, DAFS_OP_OPEN, &root, "flood", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, &fh, NULL) ==
              0,
          "open");
    enum { N = 64, ROUNDS = 20 };
    int ok = 0, refused = 0, other = 0;
    for (int round = 0; round < ROUNDS && refused == 0; round++)
        CHECK(flood_once(&c, &fh, N, &ok, &refused, &other) == 0, "flood %d: a reply is missing",
              round);
    fprintf(stderr, "credits: %d executed, %d refused with CREDIT\n", ok, refused);
    CHECK(ok >= 2 && refused > 0 && other == 0, "ok %d refused %d other %d", ok, refused, other);
    CHECK(simple(&c, DAFS_OP_NULL) == 0, "null after flood");
    client c2;
    CHECK(client_open(&c2, port) == 0, "second client");
    CHECK(do_connect(&c2, "credits-2", 1, 8) == 0 && simple(&c2, DAFS_OP_NULL) == 0,
          "second session");
    client_close(&c2);
    client_close(&c);
}

/* Many sessions share the receive pool: grants go down as sessions come
 * and back up as they leave. */
static void test_grants(void)
{
    enum { NSESS = 40 };
    client c;
    CHECK(client_open(&c, port) == 0, "client open");
    CHECK(do_connect(&c, "grants-base", 1, 32) == 0, "connect base");
    uint64_t base = c.session;
    CHECK(simple(&c, DAFS_OP_NULL) == 0, "null");
    unsigned before = c.credits;
    uint64_t ids[NSESS];
    for (int i = 0; i < NSESS; i++) {
        CHECK(do_connect(&c, "grants", 1, 32) == 0, "connect %d", i);
        ids[i] = c.session;
    }
    unsigned during = c.credits;
    c.session = base;
    CHECK(simple(&c, DAFS_OP_NULL) == 0, "base null");
    CHECK(c.credits == during && during <= 512 / NSESS && during >= 2,
          "grant with %d more sessions: %u (before %u)", NSESS, c.credits, before);
    for (int i = 0; i < NSESS; i++) {
        c.session = ids[i];
        CHECK(simple(&c, DAFS_OP_DISCONNECT) == 0, "disconnect %d", i);
    }
    c.session = base;
    CHECK(simple(&c, DAFS_OP_NULL) == 0, "base null after");
    CHECK(c.credits > during, "grant not raised again: %u -> %u", during, c.credits);
    CHECK(simple(&c, DAFS_OP_DISCONNECT) == 0, "disconnect base");
    client_close(&c);
}

/* A new boot verifier for the same client id ends the old incarnation. */
static void test_incarnation(void)
{
    client a, b;
    CHECK(client_open(&a, port) == 0 && client_open(&b, port) == 0, "client open");
    CHECK(do_connect(&a, "incarnation", 1, 4) == 0, "connect a");
    CHECK(do_connect(&b, "incarnation", 1, 4) == 0, "connect b (same boot)");
    CHECK(simple(&a, DAFS_OP_NULL) == 0, "a alive");
    CHECK(do_connect(&b, "incarnation", 2, 4) == 0, "connect b (new boot)");
    CHECK(simple(&a, DAFS_OP_NULL) == DAFS_ST_BADSESSION, "old incarnation survived");
    CHECK(simple(&b, DAFS_OP_NULL) == 0, "new incarnation");
    client_close(&a);
    client_close(&b);
}

static void test_lease(void)
{
    daemon_proc d;
    /* 3 s: long enough that a loaded machine does not expire the session
     * between its CONNECT and the next request (1 s did, at load 15) */
    CHECK(start_dafsd(&d, "3000") == 0, "start dafsd --lease-ms 3000");
    client c;
    int opened = client_open(&c, d.port);
    int connected = opened == 0 ? do_connect(&c, "lease", 1, 4) : -1;
    if (opened != 0 || connected != 0) {
        if (opened == 0)
            client_close(&c);
        stop_dafsd(&d);
        CHECK(false, "connect: open %d connect %d", opened, connected);
    }
    int st1 = simple(&c, DAFS_OP_NULL);
    /* a handle minted by the first dafsd still works after a "restart" */
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_GETATTR);
    req.u.fh.fh = saved_fh;
    int st0 = call(&c, &req, &rep);
    /* Idle past the 3 s lease, then probe.  The server expires idle
     * sessions every 100 ms or so; on a loaded machine that can come late,
     * and a probe that finds the session alive renews it, so idle again,
     * up to 5 times (a session that never expires fails). */
    int st2 = 0;
    for (int round = 0; round < 5 && st2 == 0; round++) {
        usleep(4000 * 1000);
        st2 = simple(&c, DAFS_OP_NULL);
    }
    client_close(&c);
    int rc = stop_dafsd(&d);
    CHECK(st1 == 0, "null before expiry: %d", st1);
    CHECK(st0 == 0 && rep.u.attr.attr.size > 0, "handle across restart: %d", st0);
    CHECK(st2 == DAFS_ST_BADSESSION, "after expiry: %d", st2);
    CHECK(rc == 0, "dafsd exit %d", rc);
}

static void test_fresh_session(daemon_proc *d)
{
    CHECK(dafsd_alive(d), "dafsd died");
    client c;
    CHECK(client_open(&c, port) == 0, "client open");
    CHECK(do_connect(&c, "fresh", 7, 8) == 0, "connect");
    dafs_fh root;
    CHECK(getroot(&c, &root) == 0 && simple(&c, DAFS_OP_NULL) == 0, "fresh session");
    client_close(&c);
}

/* Exit status of dafsd run with the given arguments (no server expected). */
static int run_dafsd(const char *a1, const char *a2, const char *a3)
{
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execl(dafsd_path, dafsd_path, a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void check_bad_arguments(void)
{
    CHECK(run_dafsd("--bogus", NULL, NULL) == 2, "unknown option");
    CHECK(run_dafsd("--threads", "0", NULL) == 2, "--threads 0");
    CHECK(run_dafsd("--export", "/tmp", "extra") == 2, "extra argument");
    CHECK(run_dafsd("--listen", "127.0.0.1:99999", NULL) == 2, "bad port");
    CHECK(run_dafsd("--version", NULL, NULL) == 0, "--version");
    CHECK(run_dafsd("--export", "/nonexistent/dafs-test", NULL) == 1, "missing export dir");
}

static void prepare_scratch(void)
{
    make_scratch("/tmp/dafsd-test-XXXXXX");
    char path[400];
    snprintf(path, sizeof(path), "%s/pw", export_dir);
    if (symlink("/etc/passwd", path) != 0) {
        perror("scratch");
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/up", export_dir);
    if (symlink("../..", path) != 0) {
        perror("symlink");
        exit(1);
    }
}

/* The last "(N sessions)" dafsd logged, or -1. */
static int last_session_count(const char *log)
{
    FILE *f = fopen(log, "r");
    if (!f)
        return -1;
    char line[512];
    int n = -1;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, " sessions)");
        if (!p || strncmp(line, "dafsd: session ", 15) != 0)
            continue;
        while (p > line && p[-1] >= '0' && p[-1] <= '9')
            p--;
        n = atoi(p);
    }
    fclose(f);
    return n;
}

/* Issue 13, session exhaustion: one endpoint opening sessions until refused
 * gets EUSERS at its per-client cap, another endpoint still connects, the
 * overall cap refuses the next, and once all have disconnected the server
 * counts 0 sessions and serves the full number again. */
static void test_session_limits(void)
{
    char log[400];
    snprintf(log, sizeof log, "%s/limits.log", scratch);
    int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int saved = dup(2);
    CHECK(logfd >= 0 && saved >= 0, "log file");
    const char *extra[] = {"--max-sessions", "6", "--max-sessions-per-client", "4", "-v", NULL};
    daemon_proc d;
    fflush(stderr);
    dup2(logfd, 2); /* dafsd's log goes to the file */
    int started = start_dafsd_args(&d, "limits", extra);
    dup2(saved, 2);
    close(saved);
    close(logfd);
    CHECK(started == 0, "dafsd with limits did not start");
    client a, b, c;
    uint64_t ids_a[8], ids_b[8];
    int na = 0, nb = 0, st = 0;
    CHECK(client_open(&a, d.port) == 0 && client_open(&b, d.port) == 0 &&
              client_open(&c, d.port) == 0,
          "clients");
    char id[32];
    /* one endpoint, sessions until refused */
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof id, "flood-%d", i);
        st = do_connect(&a, id, 1, 2);
        if (st != 0)
            break;
        ids_a[na++] = a.session;
    }
    CHECK(na == 4 && st == DAFS_ST_USERS, "one endpoint: %d sessions, then status %d", na, st);
    /* another endpoint still connects, up to the overall cap */
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "other-%d", i);
        st = do_connect(&b, id, 1, 2);
        if (st != 0)
            break;
        ids_b[nb++] = b.session;
    }
    CHECK(nb == 2 && st == DAFS_ST_USERS, "second endpoint: %d sessions, then status %d", nb, st);
    CHECK(do_connect(&c, "third", 1, 2) == DAFS_ST_USERS, "overall cap");
    CHECK(nb > 0, "no session for the second endpoint");
    b.session = ids_b[nb - 1]; /* the refused CONNECT cleared it */
    CHECK(simple(&b, DAFS_OP_NULL) == DAFS_ST_OK, "a session works");
    for (int i = 0; i < na; i++) {
        a.session = ids_a[i];
        CHECK(simple(&a, DAFS_OP_DISCONNECT) == 0, "disconnect a%d", i);
    }
    for (int i = 0; i < nb; i++) {
        b.session = ids_b[i];
        CHECK(simple(&b, DAFS_OP_DISCONNECT) == 0, "disconnect b%d", i);
    }
    /* the server logs each close with the count left: wait for 0 */
    int64_t deadline = now_ms() + REPLY_WAIT_MS;
    int count;
    while ((count = last_session_count(log)) != 0 && now_ms() < deadline)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    CHECK(count == 0, "sessions left after every disconnect: %d", count);
    /* and the caps are whole again */
    CHECK(do_connect(&c, "third", 1, 2) == 0, "connect after the others left");
    client_close(&a);
    client_close(&b);
    client_close(&c);
    CHECK(stop_dafsd(&d) == 0, "stop");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: server_test DAFSD_PATH\n");
        return 2;
    }
    dafsd_path = argv[1];
    setenv("FI_TCP_IFACE", "lo", 0);
    setvbuf(stderr, NULL, _IOLBF, 0);
    prepare_scratch();
    daemon_proc d;
    if (start_dafsd(&d, NULL) != 0) {
        fprintf(stderr, "FAIL: dafsd did not start\n");
        remove_scratch();
        return 1;
    }
    check_bad_arguments();
    port = d.port;
    fprintf(stderr, "dafsd pid %d port %s provider %s\n", (int)d.pid, port,
            getenv("FI_PROVIDER") ? getenv("FI_PROVIDER") : "(default)");
    const named_test tests[] = {
        {"round_trip", test_round_trip}, {"direct", test_direct},
        {"direct_pipelined", test_direct_pipelined}, {"eof", test_eof},
        {"offsets", test_offsets},       {"hostile", test_hostile},
        {"names", test_names},           {"readdir", test_readdir},
        {"credits", test_credits},       {"grants", test_grants},
        {"incarnation", test_incarnation},
        {"lease", test_lease},
        {"session_limits", test_session_limits},
    };
    run_tests(tests, sizeof(tests) / sizeof(tests[0]));
    test_fresh_session(&d);
    int64_t t0 = now_ms();
    int rc = stop_dafsd(&d);
    if (rc != 0 || now_ms() - t0 > 3000) {
        fprintf(stderr, "FAIL: SIGTERM: exit %d after %lld ms\n", rc, (long long)(now_ms() - t0));
        test_failures++;
    }
    remove_scratch();
    return test_exit_status();
}
