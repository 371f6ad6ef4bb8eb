/*
 * test_proto.c — unit tests of the wire codec (src/common/proto.c).
 *
 * What is covered:
 *  - round trips of a populated request and reply for every opcode, and
 *    header-only error replies;
 *  - golden byte layouts, written by an independent little "raw" writer in
 *    this file, so a layout change in the codec cannot go unnoticed, and a
 *    digest of the encoded sample request and reply of every opcode;
 *  - every decode validation rule with a crafted message (truncation at
 *    every byte, wrong magic/version, length mismatch, trailing bytes, bad
 *    flags, out-of-range handle/name/id/segment counts, inline length
 *    mismatch, malformed READDIR entries), with each message copied into a
 *    buffer of exactly its size so that ASan sees any over-read;
 *  - every encode validation rule (-DAFS_ST_INVAL, -DAFS_ST_OVERFLOW);
 *  - the second set of ops (SETATTR..RELEASE_CRED): golden layouts and
 *    their rules (setattr bits and nanoseconds, rename flags, symlink
 *    target length, access mask, group count, APPEND offset 0, the APPEND
 *    reply's offset, a non-zero cred id), decode and encode side;
 *  - the incremental READDIR encoder and the entry iterator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"
#include "proto_samples.h"

#define BUF_SIZE 8192

/* ---- helpers ----------------------------------------------------------- */

/* Decode from a heap copy of exactly n bytes (ASan catches any over-read). */
static int decode_request_exact(const uint8_t *p, size_t n, dafs_request *out)
{
    uint8_t *copy = malloc(n > 0 ? n : 1);
    assert_non_null(copy);
    if (n > 0)
        memcpy(copy, p, n);
    int rc = dafs_decode_request(copy, n, out);
    free(copy);
    return rc;
}

static int decode_reply_exact(const uint8_t *p, size_t n, dafs_reply *out)
{
    uint8_t *copy = malloc(n > 0 ? n : 1);
    assert_non_null(copy);
    if (n > 0)
        memcpy(copy, p, n);
    int rc = dafs_decode_reply(copy, n, out);
    free(copy);
    return rc;
}

static void store_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void set_length(uint8_t *msg, size_t len)
{
    store_le(msg + 8, len, 4);
}

/* An independent writer of the layout rules, for crafted messages. */
typedef struct raw {
    uint8_t b[BUF_SIZE];
    size_t pos;
    uint16_t op;
    uint16_t flags;
    int32_t status;
} raw;

static void raw_align(raw *r, size_t a)
{
    while (r->pos % a != 0)
        r->b[r->pos++] = 0;
}

static void raw_le(raw *r, uint64_t v, size_t n)
{
    raw_align(r, n);
    store_le(r->b + r->pos, v, n);
    r->pos += n;
}

static void raw_str(raw *r, uint32_t len, uint8_t fill)
{
    raw_le(r, len, 4);
    memset(r->b + r->pos, fill, len);
    r->pos += len;
    raw_align(r, 8);
}

static void raw_fh(raw *r, uint8_t len)
{
    r->b[r->pos++] = len;
    memset(r->b + r->pos, 0xf0, len);
    r->pos += len;
    raw_align(r, 8);
}

static void raw_seg(raw *r, uint64_t len)
{
    raw_le(r, 0x1000, 8);
    raw_le(r, 0x42, 8);
    raw_le(r, len, 8);
}

static void raw_begin(raw *r, uint16_t op, bool reply)
{
    memset(r, 0, sizeof *r);
    r->pos = DAFS_HDR_SIZE;
    r->op = op;
    r->flags = reply ? DAFS_HDR_REPLY : 0;
}

static size_t raw_end(raw *r)
{
    raw_align(r, 8);
    store_le(r->b + 0, DAFS_PROTO_MAGIC, 4);
    store_le(r->b + 4, DAFS_PROTO_VERSION, 2);
    store_le(r->b + 6, r->op, 2);
    store_le(r->b + 8, r->pos, 4);
    store_le(r->b + 12, r->flags, 2);
    store_le(r->b + 14, 0, 2);
    store_le(r->b + 16, 1, 8);
    store_le(r->b + 24, 2, 8);
    store_le(r->b + 32, (uint32_t)r->status, 4);
    store_le(r->b + 36, 0, 4);
    store_le(r->b + 40, 0, 4); /* slot */
    store_le(r->b + 44, 0, 4); /* seq */
    return r->pos;
}

static int raw_decode_request(raw *r)
{
    dafs_request q;
    size_t n = raw_end(r);
    return decode_request_exact(r->b, n, &q);
}

static int raw_decode_reply(raw *r)
{
    dafs_reply p;
    size_t n = raw_end(r);
    return decode_reply_exact(r->b, n, &p);
}

static int encode_req(uint8_t *buf, const dafs_request *q)
{
    return dafs_encode_request(buf, BUF_SIZE, q);
}

static int encode_rep(uint8_t *buf, const dafs_reply *p)
{
    return dafs_encode_reply(buf, BUF_SIZE, p);
}

/* ---- round trips ------------------------------------------------------- */

static void test_roundtrip_requests(void **state)
{
    (void)state;
    for (uint16_t op = 0; op < DAFS_OP_LIMIT; op = dafs_op_next(op)) {
        dafs_request q, d;
        uint8_t buf[BUF_SIZE];
        sample_request(op, &q);
        int n = encode_req(buf, &q);
        assert_true(n >= DAFS_HDR_SIZE);
        assert_int_equal(n % 8, 0);
        assert_int_equal(load_le(buf + 8, 4), n);
        assert_int_equal(dafs_decode_request(buf, (size_t)n, &d), 0);
        assert_int_equal(d.hdr.magic, DAFS_PROTO_MAGIC);
        assert_int_equal(d.hdr.version, DAFS_PROTO_VERSION);
        assert_int_equal(d.hdr.length, n);
        assert_int_equal(d.hdr.flags, 0);
        assert_true(requests_equal(&q, &d));
        /* exactly enough room works, one byte less does not */
        assert_int_equal(dafs_encode_request(buf, (size_t)n, &q), n);
        assert_int_equal(dafs_encode_request(buf, (size_t)n - 1, &q), -DAFS_ST_OVERFLOW);
    }
}

static void test_roundtrip_replies(void **state)
{
    (void)state;
    for (uint16_t op = 0; op < DAFS_OP_LIMIT; op = dafs_op_next(op)) {
        dafs_reply p, d;
        uint8_t buf[BUF_SIZE];
        sample_reply(op, &p);
        int n = encode_rep(buf, &p);
        assert_true(n >= DAFS_HDR_SIZE);
        assert_int_equal(n % 8, 0);
        assert_int_equal(dafs_decode_reply(buf, (size_t)n, &d), 0);
        assert_int_equal(d.hdr.flags, DAFS_HDR_REPLY);
        assert_int_equal(d.hdr.credits, 32);
        assert_true(replies_equal(&p, &d));
        assert_int_equal(dafs_encode_reply(buf, (size_t)n, &p), n);
        assert_int_equal(dafs_encode_reply(buf, (size_t)n - 1, &p), -DAFS_ST_OVERFLOW);
    }
}

static void test_error_replies_are_header_only(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    for (uint16_t op = 0; op < DAFS_OP_LIMIT; op = dafs_op_next(op)) {
        dafs_reply p, d;
        sample_reply(op, &p);
        p.hdr.status = DAFS_ST_NOENT;
        assert_int_equal(encode_rep(buf, &p), DAFS_ERROR_REPLY_SIZE);
        assert_int_equal(dafs_decode_reply(buf, DAFS_ERROR_REPLY_SIZE, &d), 0);
        assert_int_equal(d.hdr.status, DAFS_ST_NOENT);
        assert_int_equal(d.hdr.xid, p.hdr.xid);
        assert_int_equal(d.hdr.opcode, op);
    }
    /* an error reply to an opcode we do not know still decodes */
    dafs_reply p = {.hdr = {.opcode = 999, .xid = 5, .status = DAFS_ST_BADOP}}, d;
    assert_int_equal(encode_rep(buf, &p), DAFS_HDR_SIZE);
    assert_int_equal(dafs_decode_reply(buf, DAFS_HDR_SIZE, &d), 0);
    assert_int_equal(d.hdr.opcode, 999);
    assert_int_equal(d.hdr.status, DAFS_ST_BADOP);
}

/* ---- golden layouts ---------------------------------------------------- */

static void test_golden_lookup(void **state)
{
    (void)state;
    static const uint8_t expect[80] = {
        0x44, 0x41, 0x46, 0x53, 0x02, 0x00, 0x04, 0x00, /* magic, version 2, op 4 */
        0x50, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, /* length 80, flags 0, credits 3 */
        0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* session 7 */
        0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* xid 9 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* status, cred */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* slot, seq */
        0x03, 0x61, 0x62, 0x63, 0x00, 0x00, 0x00, 0x00, /* fh len 3 "abc" pad */
        0x05, 0x00, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, /* name len 5 "hell" */
        0x6f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* "o" pad */
        0x00, 0x00, 0x00, 0x00, 0xed, 0x01, 0x00, 0x00, /* flags 0, mode 0755 */
    };
    dafs_request q;
    memset(&q, 0, sizeof q);
    q.hdr.opcode = DAFS_OP_LOOKUP;
    q.hdr.credits = 3;
    q.hdr.session_id = 7;
    q.hdr.xid = 9;
    q.u.dirop.dir.len = 3;
    memcpy(q.u.dirop.dir.data, "abc", 3);
    q.u.dirop.name = (dafs_bytes){.ptr = (const uint8_t *)"hello", .len = 5};
    q.u.dirop.mode = 0755;
    uint8_t buf[BUF_SIZE];
    assert_int_equal(encode_req(buf, &q), sizeof expect);
    assert_memory_equal(buf, expect, sizeof expect);
}

/* Same message from the raw writer, and a READ_DIRECT and an inline read
 * reply, compared byte for byte with the codec's output. */
static void test_golden_against_raw(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    raw r;
    dafs_request q;

    /* READ_DIRECT: fh 64, stateid, offset, count, hints, nsegs u16 then 8-aligned segs */
    sample_request(DAFS_OP_READ_DIRECT, &q);
    q.hdr.session_id = 1;
    q.hdr.xid = 2;
    q.hdr.cred = 0;
    q.hdr.slot = q.hdr.seq = 0;
    raw_begin(&r, DAFS_OP_READ_DIRECT, false);
    raw_fh(&r, DAFS_FH_MAX);
    memcpy(r.b + DAFS_HDR_SIZE + 1, q.u.read.fh.data, DAFS_FH_MAX);
    raw_le(&r, q.u.read.stateid, 8);
    raw_le(&r, q.u.read.offset, 8);
    raw_le(&r, q.u.read.count, 4);
    raw_le(&r, q.u.read.hints, 4);
    raw_le(&r, 3, 2);
    for (int i = 0; i < 3; i++) {
        raw_le(&r, q.u.read.segs[i].addr, 8);
        raw_le(&r, q.u.read.segs[i].key, 8);
        raw_le(&r, q.u.read.segs[i].len, 8);
    }
    size_t n = raw_end(&r);
    assert_int_equal(n, 48 + 72 + 8 + 8 + 4 + 4 + 8 + 72);
    assert_int_equal(encode_req(buf, &q), n);
    assert_memory_equal(buf, r.b, n);

    /* READ_INLINE reply: count@48, eof@52, data length@56, data@60 */
    dafs_reply p;
    sample_reply(DAFS_OP_READ_INLINE, &p);
    p.hdr.session_id = 1;
    p.hdr.xid = 2;
    p.hdr.credits = 0;
    p.hdr.slot = p.hdr.seq = 0;
    raw_begin(&r, DAFS_OP_READ_INLINE, true);
    raw_le(&r, p.u.read.count, 4);
    raw_le(&r, p.u.read.eof, 1);
    raw_le(&r, p.u.read.data.len, 4);
    memcpy(r.b + r.pos, p.u.read.data.ptr, p.u.read.data.len);
    r.pos += p.u.read.data.len;
    n = raw_end(&r);
    assert_int_equal(encode_rep(buf, &p), n);
    assert_memory_equal(buf, r.b, n);
    assert_memory_equal(buf + 60, p.u.read.data.ptr, p.u.read.data.len);
}

/* ---- truncation -------------------------------------------------------- */

/*
 * Cut a valid message at every length.  Without fixing hdr.length every cut
 * must fail; with hdr.length patched to the cut, every cut before the end
 * of the body must fail and only the final padding may be dropped.
 */
static void check_truncations(const uint8_t *msg, size_t n, bool reply)
{
    uint8_t cut[BUF_SIZE];
    size_t first_ok = n + 1;
    for (size_t len = 0; len < n; len++) {
        dafs_request q;
        dafs_reply p;
        int rc = reply ? decode_reply_exact(msg, len, &p) : decode_request_exact(msg, len, &q);
        assert_int_equal(rc, -DAFS_ST_BADMSG);
        if (len < DAFS_HDR_SIZE)
            continue;
        memcpy(cut, msg, len);
        set_length(cut, len);
        rc = reply ? decode_reply_exact(cut, len, &p) : decode_request_exact(cut, len, &q);
        if (rc == 0 && first_ok > n)
            first_ok = len;
        if (first_ok <= n)
            assert_int_equal(rc, 0);
        else
            assert_int_equal(rc, -DAFS_ST_BADMSG);
    }
    if (first_ok <= n)
        assert_true(n - first_ok < 8);
}

static void test_truncation(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    for (uint16_t op = 0; op < DAFS_OP_LIMIT; op = dafs_op_next(op)) {
        dafs_request q;
        dafs_reply p;
        sample_request(op, &q);
        int n = encode_req(buf, &q);
        assert_true(n > 0);
        check_truncations(buf, (size_t)n, false);
        sample_reply(op, &p);
        n = encode_rep(buf, &p);
        assert_true(n > 0);
        check_truncations(buf, (size_t)n, true);
    }
}

/* GETATTR with a 3-byte handle: the body ends at 52, the encoder pads to 56. */
static void test_final_padding_optional(void **state)
{
    (void)state;
    raw r;
    raw_begin(&r, DAFS_OP_GETATTR, false);
    raw_fh(&r, 3);
    size_t n = raw_end(&r);
    assert_int_equal(n, 56);
    dafs_request q;
    for (size_t len = 52; len <= 56; len++) {
        set_length(r.b, len);
        assert_int_equal(decode_request_exact(r.b, len, &q), 0);
        assert_int_equal(q.u.fh.fh.len, 3);
    }
    /* anything beyond the padding is trailing garbage */
    memset(r.b + 56, 0, 8);
    for (size_t len = 57; len <= 64; len++) {
        set_length(r.b, len);
        assert_int_equal(decode_request_exact(r.b, len, &q), -DAFS_ST_BADMSG);
    }
}

static void test_pad_bytes_ignored_on_read(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE], again[BUF_SIZE];
    dafs_request q, d;
    sample_request(DAFS_OP_LOOKUP, &q);
    int n = encode_req(buf, &q);
    assert_true(n > 0);
    /* fh is 20 bytes: pad at 69..71; name is 11 bytes at 76: pad at 87 */
    buf[69] = buf[70] = buf[71] = 0xee;
    buf[87] = 0xee;
    assert_int_equal(dafs_decode_request(buf, (size_t)n, &d), 0);
    assert_true(requests_equal(&q, &d));
    assert_int_equal(encode_req(again, &d), n);
    assert_int_equal(again[69], 0);
    assert_int_equal(again[87], 0);
}

/* ---- header validation ------------------------------------------------- */

static int encode_sample_request(uint8_t *buf, uint16_t op)
{
    dafs_request q;
    sample_request(op, &q);
    int n = encode_req(buf, &q);
    assert_true(n > 0);
    return n;
}

/* Decode a copy of a good request with one header field overwritten. */
static int mutated_request(const uint8_t *good, int n, size_t off, uint64_t val, size_t width)
{
    uint8_t buf[BUF_SIZE];
    dafs_request q;
    memcpy(buf, good, (size_t)n);
    store_le(buf + off, val, width);
    return decode_request_exact(buf, (size_t)n, &q);
}

static void test_header_errors(void **state)
{
    (void)state;
    uint8_t good[BUF_SIZE], buf[BUF_SIZE];
    dafs_request q;
    dafs_reply p;
    dafs_hdr h;
    int n = encode_sample_request(good, DAFS_OP_GETATTR);

    assert_int_equal(dafs_decode_hdr(good, (size_t)n, &h), 0);
    assert_int_equal(dafs_decode_hdr(good, DAFS_HDR_SIZE - 1, &h), -DAFS_ST_BADMSG);

    assert_int_equal(mutated_request(good, n, 0, 0x53464145u, 4), -DAFS_ST_BADMSG); /* magic */
    assert_int_equal(mutated_request(good, n, 4, 1, 2), -DAFS_ST_VERSION);          /* version */
    assert_int_equal(mutated_request(good, n, 4, 3, 2), -DAFS_ST_VERSION);
    assert_int_equal(mutated_request(good, n, 4, 0, 2), -DAFS_ST_VERSION);
    assert_int_equal(mutated_request(good, n, 12, DAFS_HDR_NOTIFY, 2),
                     -DAFS_ST_BADMSG); /* NOTIFY is never valid in a request */
    assert_int_equal(mutated_request(good, n, 40, 0xffffffffu, 4), 0); /* slot: reserved */
    assert_int_equal(mutated_request(good, n, 44, 0x12345678u, 4), 0); /* seq: reserved */
    assert_int_equal(mutated_request(good, n, 6, DAFS_OP_COUNT, 2), -DAFS_ST_BADOP); /* opcode */
    assert_int_equal(mutated_request(good, n, 6, 0xffff, 2), -DAFS_ST_BADOP);
    assert_int_equal(mutated_request(good, n, 8, (uint64_t)n + 8, 4),
                     -DAFS_ST_BADMSG); /* length > received */
    assert_int_equal(mutated_request(good, n, 8, (uint64_t)n - 8, 4),
                     -DAFS_ST_BADMSG); /* length < received */
    assert_int_equal(mutated_request(good, n, 8, 0, 4), -DAFS_ST_BADMSG);
    assert_int_equal(mutated_request(good, n, 12, DAFS_HDR_REPLY, 2),
                     -DAFS_ST_BADMSG); /* reply flag on a request */
    assert_int_equal(mutated_request(good, n, 12, 0x8000, 2), -DAFS_ST_BADMSG); /* unknown flag */
    assert_int_equal(mutated_request(good, n, 32, DAFS_ST_NOENT, 4),
                     -DAFS_ST_BADMSG);                                     /* status in a request */
    assert_int_equal(mutated_request(good, n, 36, 1, 4), 0); /* cred id: the server checks it */
    assert_int_equal(mutated_request(good, n, 16, 0, 8), 0);      /* session id: not the codec's */
    assert_int_equal(mutated_request(good, n, 14, 0xffff, 2), 0); /* credits: not the codec's */

    /* unknown opcode: the header is still returned, so the server can echo xid */
    memcpy(buf, good, (size_t)n);
    store_le(buf + 6, 200, 2);
    assert_int_equal(dafs_decode_request(buf, (size_t)n, &q), -DAFS_ST_BADOP);
    assert_int_equal(q.hdr.opcode, 200);
    assert_int_equal(q.hdr.xid, load_le(good + 24, 8));

    /* the wrong version is reported as such with the header filled in */
    memcpy(buf, good, (size_t)n);
    store_le(buf + 4, 7, 2);
    assert_int_equal(dafs_decode_hdr(buf, (size_t)n, &h), -DAFS_ST_VERSION);
    assert_int_equal(h.version, 7);

    /* a request is not a reply and vice versa */
    assert_int_equal(decode_reply_exact(good, (size_t)n, &p), -DAFS_ST_BADMSG);
    dafs_reply rep;
    sample_reply(DAFS_OP_GETATTR, &rep);
    int m = encode_rep(buf, &rep);
    assert_true(m > 0);
    assert_int_equal(decode_request_exact(buf, (size_t)m, &q), -DAFS_ST_BADMSG);
    assert_int_equal(decode_reply_exact(buf, (size_t)m, &p), 0);
    store_le(buf + 12, DAFS_HDR_REPLY | 0x0100, 2);
    assert_int_equal(decode_reply_exact(buf, (size_t)m, &p), -DAFS_ST_BADMSG);
    store_le(buf + 12, DAFS_HDR_REPLY, 2);
    store_le(buf + 6, DAFS_OP_COUNT, 2);
    assert_int_equal(decode_reply_exact(buf, (size_t)m, &p), -DAFS_ST_BADOP);
    store_le(buf + 6, DAFS_OP_GETATTR, 2);
    store_le(buf + 32, (uint32_t)-5, 4); /* negative status */
    assert_int_equal(decode_reply_exact(buf, (size_t)m, &p), -DAFS_ST_BADMSG);
    store_le(buf + 32, DAFS_ST_IO, 4); /* error reply carrying a body */
    assert_int_equal(decode_reply_exact(buf, (size_t)m, &p), -DAFS_ST_BADMSG);
}

static void test_trailing_garbage(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    dafs_request q;
    for (uint16_t op = 0; op < DAFS_OP_LIMIT; op = dafs_op_next(op)) {
        int n = encode_sample_request(buf, op);
        memset(buf + n, 0, 8);
        /* a receive buffer larger than the message: caller passed too much */
        assert_int_equal(decode_request_exact(buf, (size_t)n + 8, &q), -DAFS_ST_BADMSG);
        /* the header agrees, but 8 bytes follow the body */
        set_length(buf, (size_t)n + 8);
        assert_int_equal(decode_request_exact(buf, (size_t)n + 8, &q), -DAFS_ST_BADMSG);
    }
    /* also for replies, including error replies */
    dafs_reply p = {.hdr = {.opcode = DAFS_OP_NULL, .status = DAFS_ST_IO}}, d;
    int n = encode_rep(buf, &p);
    assert_int_equal(n, DAFS_HDR_SIZE);
    memset(buf + n, 0, 8);
    set_length(buf, DAFS_HDR_SIZE + 8);
    assert_int_equal(decode_reply_exact(buf, DAFS_HDR_SIZE + 8, &d), -DAFS_ST_BADMSG);
}

static void test_oversized_length_field(void **state)
{
    (void)state;
    /* a message longer than DAFS_MSG_LIMIT is refused even if it is all there */
    size_t big = DAFS_MSG_LIMIT + 8;
    uint8_t *buf = calloc(1, big);
    assert_non_null(buf);
    dafs_request q;
    sample_request(DAFS_OP_NULL, &q);
    assert_int_equal(dafs_encode_request(buf, big, &q), DAFS_HDR_SIZE);
    set_length(buf, big);
    dafs_hdr h;
    assert_int_equal(dafs_decode_hdr(buf, big, &h), -DAFS_ST_BADMSG);
    free(buf);
}

/* ---- body validation, crafted with the raw writer ---------------------- */

static void test_fh_len_range(void **state)
{
    (void)state;
    raw r;
    static const int cases[][2] = {
        {0, -DAFS_ST_BADMSG}, {1, 0}, {64, 0}, {65, -DAFS_ST_BADMSG}, {255, -DAFS_ST_BADMSG}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        raw_begin(&r, DAFS_OP_GETATTR, false);
        raw_fh(&r, (uint8_t)cases[i][0]);
        assert_int_equal(raw_decode_request(&r), cases[i][1]);
        /* same handle inside an fh+attr reply */
        raw_begin(&r, DAFS_OP_LOOKUP, true);
        raw_fh(&r, (uint8_t)cases[i][0]);
        for (int k = 0; k < 4; k++)
            raw_le(&r, 1, 4);
        for (int k = 0; k < 7; k++)
            raw_le(&r, 1, 8);
        for (int k = 0; k < 3; k++)
            raw_le(&r, 1, 4);
        raw_le(&r, 0, 1);
        assert_int_equal(raw_decode_reply(&r), cases[i][1]);
    }
}

static int dirop_with_name(uint16_t op, uint32_t name_len)
{
    raw r;
    raw_begin(&r, op, false);
    raw_fh(&r, 8);
    raw_str(&r, name_len, 'x');
    raw_le(&r, 0, 4);
    raw_le(&r, 0, 4);
    return raw_decode_request(&r);
}

static void test_name_len_range(void **state)
{
    (void)state;
    static const uint16_t ops[] = {DAFS_OP_LOOKUP, DAFS_OP_OPEN, DAFS_OP_REMOVE, DAFS_OP_MKDIR,
                                   DAFS_OP_RMDIR};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        assert_int_equal(dirop_with_name(ops[i], 0), -DAFS_ST_BADMSG);
        assert_int_equal(dirop_with_name(ops[i], 1), 0);
        assert_int_equal(dirop_with_name(ops[i], DAFS_NAME_MAX), 0);
        assert_int_equal(dirop_with_name(ops[i], DAFS_NAME_MAX + 1), -DAFS_ST_BADMSG);
    }
    /* a length far beyond the message */
    raw r;
    raw_begin(&r, DAFS_OP_LOOKUP, false);
    raw_fh(&r, 8);
    raw_le(&r, 0xffffffffu, 4);
    raw_le(&r, 0, 8);
    assert_int_equal(raw_decode_request(&r), -DAFS_ST_BADMSG);
}

static int connect_with(uint32_t id_len, uint32_t ep_len)
{
    raw r;
    raw_begin(&r, DAFS_OP_CONNECT, false);
    raw_str(&r, id_len, 'c');
    raw_le(&r, 1, 8);
    for (int k = 0; k < 4; k++)
        raw_le(&r, 4096, 4);
    raw_le(&r, 8, 2);
    raw_str(&r, ep_len, 'e');
    return raw_decode_request(&r);
}

static void test_connect_ranges(void **state)
{
    (void)state;
    assert_int_equal(connect_with(1, 1), 0);
    assert_int_equal(connect_with(DAFS_CLIENT_ID_MAX, DAFS_EPNAME_MAX), 0);
    assert_int_equal(connect_with(0, 16), -DAFS_ST_BADMSG);
    assert_int_equal(connect_with(DAFS_CLIENT_ID_MAX + 1, 16), -DAFS_ST_BADMSG);
    assert_int_equal(connect_with(16, 0), -DAFS_ST_BADMSG);
    assert_int_equal(connect_with(16, DAFS_EPNAME_MAX + 1), -DAFS_ST_BADMSG);
}

static int direct_with(uint16_t op, uint32_t count, uint16_t nsegs_field, uint16_t nsegs_real,
                       uint64_t seg_len)
{
    raw r;
    raw_begin(&r, op, false);
    raw_fh(&r, 16);
    raw_le(&r, 0, 8); /* stateid */
    raw_le(&r, 0, 8);
    raw_le(&r, count, 4);
    if (op != DAFS_OP_READ_DIRECT)
        raw_le(&r, DAFS_UNSTABLE, 4);
    raw_le(&r, 0, 4);
    raw_le(&r, nsegs_field, 2);
    for (uint16_t i = 0; i < nsegs_real; i++)
        raw_seg(&r, seg_len);
    return raw_decode_request(&r);
}

static void test_direct_segments(void **state)
{
    (void)state;
    static const uint16_t ops[] = {DAFS_OP_READ_DIRECT, DAFS_OP_WRITE_DIRECT,
                                   DAFS_OP_APPEND_DIRECT};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        uint16_t op = ops[i];
        assert_int_equal(direct_with(op, 4096, 1, 1, 4096), 0);
        assert_int_equal(direct_with(op, 0, 1, 1, 0), 0);
        assert_int_equal(direct_with(op, 65536, 16, 16, 4096), 0);
        assert_int_equal(direct_with(op, 0, 0, 0, 0), -DAFS_ST_BADMSG);
        assert_int_equal(direct_with(op, 4096, 17, 17, 4096), -DAFS_ST_BADMSG);
        assert_int_equal(direct_with(op, 4096, 0xffff, 2, 4096), -DAFS_ST_BADMSG);
        assert_int_equal(direct_with(op, 4096, 3, 2, 4096), -DAFS_ST_BADMSG); /* short */
        assert_int_equal(direct_with(op, 4096, 1, 2, 4096), -DAFS_ST_BADMSG); /* extra */
        assert_int_equal(direct_with(op, 4097, 1, 1, 4096), -DAFS_ST_BADMSG); /* too small */
        /* a length sum beyond u64 saturates instead of wrapping to a small value */
        assert_int_equal(direct_with(op, 4096, 2, 2, 0x8000000000000000ull), 0);
    }
}

static int write_inline_with(uint32_t count, uint32_t data_len)
{
    raw r;
    raw_begin(&r, DAFS_OP_WRITE_INLINE, false);
    raw_fh(&r, 16);
    raw_le(&r, 0, 8); /* stateid */
    raw_le(&r, 0, 8);
    raw_le(&r, count, 4);
    raw_le(&r, DAFS_FILE_SYNC, 4);
    raw_le(&r, 0, 4);
    raw_str(&r, data_len, 'd');
    return raw_decode_request(&r);
}

static int read_inline_reply_with(uint32_t count, uint8_t eof, uint32_t data_len)
{
    raw r;
    raw_begin(&r, DAFS_OP_READ_INLINE, true);
    raw_le(&r, count, 4);
    raw_le(&r, eof, 1);
    raw_str(&r, data_len, 'd');
    return raw_decode_reply(&r);
}

static void test_inline_lengths(void **state)
{
    (void)state;
    assert_int_equal(write_inline_with(0, 0), 0);
    assert_int_equal(write_inline_with(100, 100), 0);
    assert_int_equal(write_inline_with(100, 99), -DAFS_ST_BADMSG);
    assert_int_equal(write_inline_with(99, 100), -DAFS_ST_BADMSG);
    assert_int_equal(write_inline_with(0xffffffffu, 8), -DAFS_ST_BADMSG);
    assert_int_equal(read_inline_reply_with(10, 0, 10), 0);
    assert_int_equal(read_inline_reply_with(10, 1, 10), 0);
    assert_int_equal(read_inline_reply_with(10, 2, 10), -DAFS_ST_BADMSG);
    assert_int_equal(read_inline_reply_with(11, 0, 10), -DAFS_ST_BADMSG);

    /* a data length far larger than the message */
    raw r;
    raw_begin(&r, DAFS_OP_READ_INLINE, true);
    raw_le(&r, 0x7fffffff, 4);
    raw_le(&r, 0, 1);
    raw_le(&r, 0x7fffffff, 4);
    assert_int_equal(raw_decode_reply(&r), -DAFS_ST_BADMSG);
}

static void test_bool_fields(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    dafs_reply p, d;
    sample_reply(DAFS_OP_OPEN, &p);
    int n = encode_rep(buf, &p);
    assert_true(n > 0);
    /* created: 48 + 48 (fh 40) + 84 (attr) = 180, then the stateid at 184 */
    assert_int_equal(buf[180], 1);
    assert_int_equal(load_le(buf + 184, 8), p.u.fh_attr.stateid);
    buf[180] = 2;
    assert_int_equal(decode_reply_exact(buf, (size_t)n, &d), -DAFS_ST_BADMSG);
    sample_reply(DAFS_OP_READDIR, &p);
    n = encode_rep(buf, &p);
    assert_true(n > 0);
    buf[48] = 2; /* eof */
    assert_int_equal(decode_reply_exact(buf, (size_t)n, &d), -DAFS_ST_BADMSG);
}

/* READDIR reply with `claimed` entries in nentries and `real` entries present */
static int readdir_reply_with(uint32_t claimed, uint32_t real, uint32_t bad_name_len)
{
    raw r;
    raw_begin(&r, DAFS_OP_READDIR, true);
    raw_le(&r, 1, 1);
    raw_le(&r, claimed, 4);
    raw_align(&r, 8);
    for (uint32_t i = 0; i < real; i++) {
        raw_le(&r, 100 + i, 8);
        raw_le(&r, i + 1, 8);
        raw_le(&r, 0100000, 4);
        raw_str(&r, i == real - 1 && bad_name_len != 0 ? bad_name_len : 5 + i, 'n');
    }
    return raw_decode_reply(&r);
}

static void test_readdir_reply_validation(void **state)
{
    (void)state;
    assert_int_equal(readdir_reply_with(0, 0, 0), 0);
    assert_int_equal(readdir_reply_with(3, 3, 0), 0);
    assert_int_equal(readdir_reply_with(4, 3, 0), -DAFS_ST_BADMSG);
    assert_int_equal(readdir_reply_with(2, 3, 0), -DAFS_ST_BADMSG);
    assert_int_equal(readdir_reply_with(0xffffffffu, 3, 0), -DAFS_ST_BADMSG);
    assert_int_equal(readdir_reply_with(3, 3, DAFS_NAME_MAX), 0);
    assert_int_equal(readdir_reply_with(3, 3, DAFS_NAME_MAX + 1), -DAFS_ST_BADMSG);
    /* a zero-length name: raw_str(0) then the next field follows at once */
    raw r;
    raw_begin(&r, DAFS_OP_READDIR, true);
    raw_le(&r, 0, 1);
    raw_le(&r, 1, 4);
    raw_le(&r, 1, 8);
    raw_le(&r, 1, 8);
    raw_le(&r, 0, 4);
    raw_str(&r, 0, 0);
    assert_int_equal(raw_decode_reply(&r), -DAFS_ST_BADMSG);
}

/* ---- encoder validation ------------------------------------------------ */

static void expect_request_inval(const dafs_request *q)
{
    uint8_t buf[BUF_SIZE];
    assert_int_equal(encode_req(buf, q), -DAFS_ST_INVAL);
    /* an invalid field is reported even when the buffer is also too small */
    assert_int_equal(dafs_encode_request(buf, 44, q), -DAFS_ST_INVAL);
}

static void expect_reply_inval(const dafs_reply *p)
{
    uint8_t buf[BUF_SIZE];
    assert_int_equal(encode_rep(buf, p), -DAFS_ST_INVAL);
}

static void test_encode_request_inval(void **state)
{
    (void)state;
    dafs_request q;
    char longname[DAFS_EPNAME_MAX + 2];
    memset(longname, 'z', sizeof longname);

    sample_request(DAFS_OP_GETATTR, &q);
    q.u.fh.fh.len = 0;
    expect_request_inval(&q);
    q.u.fh.fh.len = DAFS_FH_MAX + 1;
    expect_request_inval(&q);

    sample_request(DAFS_OP_LOOKUP, &q);
    q.u.dirop.name.len = 0;
    expect_request_inval(&q);
    q.u.dirop.name = (dafs_bytes){(const uint8_t *)longname, DAFS_NAME_MAX + 1};
    expect_request_inval(&q);
    q.u.dirop.name = (dafs_bytes){NULL, 3};
    expect_request_inval(&q);

    sample_request(DAFS_OP_CONNECT, &q);
    q.u.connect.client_id = (dafs_bytes){(const uint8_t *)longname, DAFS_CLIENT_ID_MAX + 1};
    expect_request_inval(&q);
    sample_request(DAFS_OP_CONNECT, &q);
    q.u.connect.ep_name = (dafs_bytes){(const uint8_t *)longname, DAFS_EPNAME_MAX + 1};
    expect_request_inval(&q);
    q.u.connect.ep_name.len = 0;
    expect_request_inval(&q);

    sample_request(DAFS_OP_READ_DIRECT, &q);
    q.u.read.nsegs = 0;
    expect_request_inval(&q);
    q.u.read.nsegs = DAFS_SEG_MAX + 1;
    expect_request_inval(&q);
    sample_request(DAFS_OP_READ_DIRECT, &q);
    q.u.read.count += 1; /* segments no longer cover count */
    expect_request_inval(&q);

    sample_request(DAFS_OP_WRITE_DIRECT, &q);
    q.u.write.nsegs = 0;
    expect_request_inval(&q);

    sample_request(DAFS_OP_WRITE_INLINE, &q);
    q.u.write.count += 1;
    expect_request_inval(&q);

    sample_request(DAFS_OP_NULL, &q);
    q.hdr.status = DAFS_ST_IO;
    expect_request_inval(&q);
    sample_request(DAFS_OP_NULL, &q);
    q.hdr.flags = 0x0004;
    expect_request_inval(&q);
    sample_request(DAFS_OP_NULL, &q);
    q.hdr.opcode = DAFS_OP_COUNT;
    expect_request_inval(&q);

    /* the reply flag is set/cleared by the encoder, not an error */
    uint8_t buf[BUF_SIZE];
    sample_request(DAFS_OP_NULL, &q);
    q.hdr.flags = DAFS_HDR_REPLY;
    assert_int_equal(encode_req(buf, &q), DAFS_HDR_SIZE);
    assert_int_equal(load_le(buf + 12, 2), 0);
}

static void test_encode_reply_inval(void **state)
{
    (void)state;
    dafs_reply p;
    sample_reply(DAFS_OP_LOOKUP, &p);
    p.u.fh_attr.fh.len = 0;
    expect_reply_inval(&p);
    sample_reply(DAFS_OP_OPEN, &p);
    p.u.fh_attr.created = 2;
    expect_reply_inval(&p);
    sample_reply(DAFS_OP_READ_INLINE, &p);
    p.u.read.count -= 1;
    expect_reply_inval(&p);
    sample_reply(DAFS_OP_READ_DIRECT, &p);
    p.u.read.eof = 3;
    expect_reply_inval(&p);
    sample_reply(DAFS_OP_READDIR, &p);
    p.u.readdir.nentries = 4;
    expect_reply_inval(&p);
    sample_reply(DAFS_OP_READDIR, &p);
    p.u.readdir.nentries = 2; /* third entry left over */
    expect_reply_inval(&p);
    sample_reply(DAFS_OP_NULL, &p);
    p.hdr.status = -DAFS_ST_IO; /* a negative status is a caller bug */
    expect_reply_inval(&p);
    sample_reply(DAFS_OP_NULL, &p);
    p.hdr.opcode = 4000;
    expect_reply_inval(&p);

    uint8_t buf[BUF_SIZE];
    sample_reply(DAFS_OP_NULL, &p);
    p.hdr.flags = 0; /* the encoder sets the reply flag */
    assert_int_equal(encode_rep(buf, &p), DAFS_HDR_SIZE);
    assert_int_equal(load_le(buf + 12, 2), DAFS_HDR_REPLY);
}

static void test_encode_overflow(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    dafs_request q;
    sample_request(DAFS_OP_NULL, &q);
    assert_int_equal(dafs_encode_request(buf, 0, &q), -DAFS_ST_OVERFLOW);
    assert_int_equal(dafs_encode_request(buf, DAFS_HDR_SIZE - 1, &q), -DAFS_ST_OVERFLOW);
    assert_int_equal(dafs_encode_request(buf, DAFS_HDR_SIZE, &q), DAFS_HDR_SIZE);

    /* no message beyond DAFS_MSG_LIMIT, whatever the buffer */
    size_t big = DAFS_MSG_LIMIT + 4096;
    uint8_t *data = calloc(1, big);
    uint8_t *out = calloc(1, big);
    assert_non_null(data);
    assert_non_null(out);
    sample_request(DAFS_OP_WRITE_INLINE, &q);
    q.u.write.data = (dafs_bytes){data, DAFS_MSG_LIMIT};
    q.u.write.count = DAFS_MSG_LIMIT;
    assert_int_equal(dafs_encode_request(out, big, &q), -DAFS_ST_OVERFLOW);
    q.u.write.data.len = q.u.write.count = DAFS_MSG_LIMIT - 128;
    int n = dafs_encode_request(out, big, &q);
    assert_true(n > 0 && (size_t)n <= DAFS_MSG_LIMIT);
    dafs_request d;
    assert_int_equal(dafs_decode_request(out, (size_t)n, &d), 0);
    assert_int_equal(d.u.write.data.len, DAFS_MSG_LIMIT - 128);
    free(data);
    free(out);
}

/* The server may read file data straight into the reply buffer. */
static void test_read_inline_in_place(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    dafs_reply p, d;
    sample_reply(DAFS_OP_READ_INLINE, &p);
    memset(buf + 60, 'Q', 100);
    p.u.read.data = (dafs_bytes){buf + 60, 100};
    p.u.read.count = 100;
    int n = encode_rep(buf, &p);
    assert_int_equal(n, 160);
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &d), 0);
    assert_int_equal(d.u.read.data.len, 100);
    assert_ptr_equal(d.u.read.data.ptr, buf + 60);
    assert_int_equal(d.u.read.data.ptr[99], 'Q');
}

/* ---- second set of ops (SETATTR..RELEASE_CRED) ------------------------- */

/* Sample request with the header fields raw_end() writes (session 1, xid 2,
 * credits 0, cred 0), so codec and raw writer can be compared byte for byte. */
static void raw_comparable_request(uint16_t op, dafs_request *q)
{
    sample_request(op, q);
    q->hdr.session_id = 1;
    q->hdr.xid = 2;
    q->hdr.cred = 0;
    q->hdr.slot = q->hdr.seq = 0;
}

static void raw_fh_copy(raw *r, const dafs_fh *fh)
{
    r->b[r->pos++] = fh->len;
    memcpy(r->b + r->pos, fh->data, fh->len);
    r->pos += fh->len;
    raw_align(r, 8);
}

static void raw_bytes_copy(raw *r, const dafs_bytes *b)
{
    raw_le(r, b->len, 4);
    memcpy(r->b + r->pos, b->ptr, b->len);
    r->pos += b->len;
    raw_align(r, 8);
}

static void assert_codec_matches_raw(const dafs_request *q, raw *r)
{
    uint8_t buf[BUF_SIZE];
    size_t n = raw_end(r);
    assert_int_equal(encode_req(buf, q), n);
    assert_memory_equal(buf, r->b, n);
}

static void test_golden_second_set_requests(void **state)
{
    (void)state;
    dafs_request q;
    raw r;

    /* SETATTR: fh, valid, mode, uid, gid @4, size, atime_sec, mtime_sec @8, nsecs @4 */
    raw_comparable_request(DAFS_OP_SETATTR, &q);
    raw_begin(&r, DAFS_OP_SETATTR, false);
    raw_fh_copy(&r, &q.u.setattr.fh);
    raw_le(&r, q.u.setattr.stateid, 8);
    raw_le(&r, q.u.setattr.valid, 4);
    raw_le(&r, q.u.setattr.mode, 4);
    raw_le(&r, q.u.setattr.uid, 4);
    raw_le(&r, q.u.setattr.gid, 4);
    raw_le(&r, q.u.setattr.size, 8);
    raw_le(&r, (uint64_t)q.u.setattr.atime_sec, 8);
    raw_le(&r, (uint64_t)q.u.setattr.mtime_sec, 8);
    raw_le(&r, q.u.setattr.atime_nsec, 4);
    raw_le(&r, q.u.setattr.mtime_nsec, 4);
    assert_int_equal(r.pos, 48 + 32 + 8 + 16 + 24 + 8);
    assert_codec_matches_raw(&q, &r);

    /* RENAME: src dir, src name, dst dir, dst name, flags */
    raw_comparable_request(DAFS_OP_RENAME, &q);
    raw_begin(&r, DAFS_OP_RENAME, false);
    raw_fh_copy(&r, &q.u.rename.src_dir);
    raw_bytes_copy(&r, &q.u.rename.src_name);
    raw_fh_copy(&r, &q.u.rename.dst_dir);
    raw_bytes_copy(&r, &q.u.rename.dst_name);
    raw_le(&r, q.u.rename.flags, 4);
    assert_codec_matches_raw(&q, &r);

    /* LINK: fh, dir, name */
    raw_comparable_request(DAFS_OP_LINK, &q);
    raw_begin(&r, DAFS_OP_LINK, false);
    raw_fh_copy(&r, &q.u.link.fh);
    raw_fh_copy(&r, &q.u.link.dir);
    raw_bytes_copy(&r, &q.u.link.name);
    assert_codec_matches_raw(&q, &r);

    /* SYMLINK: dir, name, target */
    raw_comparable_request(DAFS_OP_SYMLINK, &q);
    raw_begin(&r, DAFS_OP_SYMLINK, false);
    raw_fh_copy(&r, &q.u.symlink.dir);
    raw_bytes_copy(&r, &q.u.symlink.name);
    raw_bytes_copy(&r, &q.u.symlink.target);
    assert_codec_matches_raw(&q, &r);

    /* MKNOD: dir, name, mode u32, rdev u64 (8-aligned) */
    raw_comparable_request(DAFS_OP_MKNOD, &q);
    raw_begin(&r, DAFS_OP_MKNOD, false);
    raw_fh_copy(&r, &q.u.mknod.dir);
    raw_bytes_copy(&r, &q.u.mknod.name);
    raw_le(&r, q.u.mknod.mode, 4);
    raw_le(&r, q.u.mknod.rdev, 8);
    assert_codec_matches_raw(&q, &r);

    /* ACCESS: fh, mask */
    raw_comparable_request(DAFS_OP_ACCESS, &q);
    raw_begin(&r, DAFS_OP_ACCESS, false);
    raw_fh_copy(&r, &q.u.access.fh);
    raw_le(&r, q.u.access.mask, 4);
    assert_codec_matches_raw(&q, &r);

    /* REGISTER_CRED: uid @48, gid @52, ngroups @56, groups from 60 */
    raw_comparable_request(DAFS_OP_REGISTER_CRED, &q);
    raw_begin(&r, DAFS_OP_REGISTER_CRED, false);
    raw_le(&r, q.u.cred.uid, 4);
    raw_le(&r, q.u.cred.gid, 4);
    raw_le(&r, q.u.cred.ngroups, 4);
    for (uint32_t i = 0; i < q.u.cred.ngroups; i++)
        raw_le(&r, q.u.cred.groups[i], 4);
    assert_int_equal(r.pos, 60 + 4 * 41);
    assert_codec_matches_raw(&q, &r);

    /* FALLOCATE: fh, mode u32, offset u64, length u64 */
    raw_comparable_request(DAFS_OP_FALLOCATE, &q);
    raw_begin(&r, DAFS_OP_FALLOCATE, false);
    raw_fh_copy(&r, &q.u.fallocate.fh);
    raw_le(&r, q.u.fallocate.mode, 4);
    raw_le(&r, q.u.fallocate.offset, 8);
    raw_le(&r, q.u.fallocate.length, 8);
    raw_le(&r, q.u.fallocate.stateid, 8);
    assert_codec_matches_raw(&q, &r);

    /* SETXATTR: fh, name, value, flags u32 */
    raw_comparable_request(DAFS_OP_SETXATTR, &q);
    raw_begin(&r, DAFS_OP_SETXATTR, false);
    raw_fh_copy(&r, &q.u.xattr.fh);
    raw_le(&r, q.u.xattr.name.len, 4);
    memcpy(r.b + r.pos, q.u.xattr.name.ptr, q.u.xattr.name.len);
    r.pos += q.u.xattr.name.len;
    raw_align(&r, 8);
    raw_le(&r, q.u.xattr.value.len, 4);
    memcpy(r.b + r.pos, q.u.xattr.value.ptr, q.u.xattr.value.len);
    r.pos += q.u.xattr.value.len;
    raw_align(&r, 8);
    raw_le(&r, q.u.xattr.flags, 4);
    assert_codec_matches_raw(&q, &r);

    /* RELEASE_CRED: cred_id */
    raw_comparable_request(DAFS_OP_RELEASE_CRED, &q);
    raw_begin(&r, DAFS_OP_RELEASE_CRED, false);
    raw_le(&r, q.u.cred_id.cred_id, 4);
    assert_codec_matches_raw(&q, &r);

    /* READLINK and LOOKUPP: just a handle */
    raw_comparable_request(DAFS_OP_LOOKUPP, &q);
    raw_begin(&r, DAFS_OP_LOOKUPP, false);
    raw_fh_copy(&r, &q.u.fh.fh);
    assert_codec_matches_raw(&q, &r);

    /* APPEND_DIRECT has the WRITE_DIRECT layout */
    raw_comparable_request(DAFS_OP_APPEND_DIRECT, &q);
    raw_begin(&r, DAFS_OP_APPEND_DIRECT, false);
    raw_fh_copy(&r, &q.u.write.fh);
    raw_le(&r, q.u.write.stateid, 8);
    raw_le(&r, 0, 8);
    raw_le(&r, q.u.write.count, 4);
    raw_le(&r, q.u.write.stable, 4);
    raw_le(&r, q.u.write.hints, 4);
    raw_le(&r, q.u.write.nsegs, 2);
    for (uint16_t i = 0; i < q.u.write.nsegs; i++) {
        raw_le(&r, q.u.write.segs[i].addr, 8);
        raw_le(&r, q.u.write.segs[i].key, 8);
        raw_le(&r, q.u.write.segs[i].len, 8);
    }
    assert_codec_matches_raw(&q, &r);
}

/* ---- version 2: open state, header, version errors --------------------- */

/* stateid sits right after the handle in READ, WRITE, COMMIT, SETATTR and
 * CLOSE requests, and after `created` in OPEN and OPEN_FH replies. */
static void test_stateid_fields(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    static const uint16_t ops[] = {DAFS_OP_READ_INLINE, DAFS_OP_READ_DIRECT,
                                   DAFS_OP_WRITE_INLINE, DAFS_OP_WRITE_DIRECT,
                                   DAFS_OP_APPEND_INLINE, DAFS_OP_COMMIT, DAFS_OP_SETATTR,
                                   DAFS_OP_CLOSE};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        dafs_request q, d;
        sample_request(ops[i], &q);
        const dafs_fh *fh = &q.u.read.fh; /* every one of these bodies starts with fh */
        uint64_t want = ops[i] == DAFS_OP_CLOSE     ? q.u.close.stateid
                        : ops[i] == DAFS_OP_COMMIT  ? q.u.commit.stateid
                        : ops[i] == DAFS_OP_SETATTR ? q.u.setattr.stateid
                        : ops[i] == DAFS_OP_READ_INLINE || ops[i] == DAFS_OP_READ_DIRECT
                            ? q.u.read.stateid
                            : q.u.write.stateid;
        if (ops[i] == DAFS_OP_CLOSE)
            fh = &q.u.close.fh;
        else if (ops[i] == DAFS_OP_COMMIT)
            fh = &q.u.commit.fh;
        else if (ops[i] == DAFS_OP_SETATTR)
            fh = &q.u.setattr.fh;
        else if (ops[i] != DAFS_OP_READ_INLINE && ops[i] != DAFS_OP_READ_DIRECT)
            fh = &q.u.write.fh;
        assert_true(want != 0);
        int n = encode_req(buf, &q);
        assert_true(n > 0);
        size_t off = DAFS_HDR_SIZE + ((1u + fh->len + 7u) / 8u) * 8u;
        assert_int_equal(load_le(buf + off, 8), want);
        assert_int_equal(dafs_decode_request(buf, (size_t)n, &d), 0);
        assert_true(requests_equal(&q, &d));
    }
    /* OPEN_FH reply: fh 19 (24 bytes), attr 84, created, pad, stateid */
    dafs_reply p, d;
    sample_reply(DAFS_OP_OPEN_FH, &p);
    int n = encode_rep(buf, &p);
    assert_int_equal(n, 48 + 24 + 88 + 8);
    assert_int_equal(load_le(buf + 48 + 24 + 88, 8), p.u.fh_attr.stateid);
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &d), 0);
    assert_int_equal(d.u.fh_attr.stateid, p.u.fh_attr.stateid);
    /* LOOKUP replies do not carry one, even if the caller set it */
    sample_reply(DAFS_OP_LOOKUP, &p);
    p.u.fh_attr.stateid = 77;
    n = encode_rep(buf, &p);
    assert_int_equal(n, 48 + 48 + 88);
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &d), 0);
    assert_int_equal(d.u.fh_attr.stateid, 0);
}

static void test_open_fh_flags(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    dafs_request q, d;
    static const uint32_t good[] = {DAFS_OPEN_RDONLY, DAFS_OPEN_WRONLY, DAFS_OPEN_RDWR,
                                    DAFS_OPEN_WRONLY | DAFS_OPEN_TRUNC};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        sample_request(DAFS_OP_OPEN_FH, &q);
        q.u.open_fh.flags = good[i];
        int n = encode_req(buf, &q);
        assert_true(n > 0);
        assert_int_equal(dafs_decode_request(buf, (size_t)n, &d), 0);
        assert_int_equal(d.u.open_fh.flags, good[i]);
    }
    static const uint32_t bad[] = {DAFS_OPEN_CREAT, DAFS_OPEN_EXCL, DAFS_OPEN_DIRECTORY, 0x100};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sample_request(DAFS_OP_OPEN_FH, &q);
        q.u.open_fh.flags = DAFS_OPEN_RDWR | bad[i];
        expect_request_inval(&q);
        raw r;
        raw_begin(&r, DAFS_OP_OPEN_FH, false);
        raw_fh(&r, 8);
        raw_le(&r, DAFS_OPEN_RDWR | bad[i], 4);
        assert_int_equal(raw_decode_request(&r), -DAFS_ST_BADMSG);
    }
}

/* A v1 peer gets a 40-byte v1 header it can decode; other versions get ours. */
static void test_version_error_reply(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    dafs_hdr req = {.magic = DAFS_PROTO_MAGIC, .version = 1, .opcode = DAFS_OP_LOOKUP,
                    .session_id = 5, .xid = 0x1234};
    int n = dafs_encode_version_error(buf, sizeof buf, &req, 4);
    assert_int_equal(n, 40);
    assert_int_equal(load_le(buf + 4, 2), 1);
    assert_int_equal(load_le(buf + 8, 4), 40);
    assert_int_equal(load_le(buf + 12, 2), DAFS_HDR_REPLY);
    assert_int_equal(load_le(buf + 24, 8), 0x1234);
    assert_int_equal(load_le(buf + 32, 4), DAFS_ST_VERSION);
    /* our decoder reads the common prefix and reports the version */
    dafs_hdr h;
    assert_int_equal(dafs_decode_hdr(buf, (size_t)n, &h), -DAFS_ST_VERSION);
    assert_int_equal(h.xid, 0x1234);
    assert_int_equal(h.status, DAFS_ST_VERSION);
    dafs_reply p;
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &p), -DAFS_ST_VERSION);

    req.version = 9;
    n = dafs_encode_version_error(buf, sizeof buf, &req, 4);
    assert_int_equal(n, DAFS_HDR_SIZE);
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &p), 0);
    assert_int_equal(p.hdr.status, DAFS_ST_VERSION);
    assert_int_equal(p.hdr.xid, 0x1234);
    assert_int_equal(dafs_encode_version_error(buf, DAFS_HDR_SIZE - 1, &req, 4),
                     -DAFS_ST_OVERFLOW);

    /* a v2 header cut to the v1 size is malformed, not another version */
    dafs_request q;
    sample_request(DAFS_OP_NULL, &q);
    n = encode_req(buf, &q);
    assert_int_equal(n, DAFS_HDR_SIZE);
    set_length(buf, DAFS_HDR_V1_SIZE);
    assert_int_equal(dafs_decode_hdr(buf, DAFS_HDR_V1_SIZE, &h), -DAFS_ST_BADMSG);
    assert_int_equal(dafs_decode_hdr(buf, DAFS_HDR_V1_SIZE - 1, &h), -DAFS_ST_BADMSG);
}

/* The request header's cred id goes through unchanged; replies carry 0. */
static void test_hdr_cred(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    dafs_request q, dq;
    sample_request(DAFS_OP_GETATTR, &q);
    q.hdr.cred = 0xdeadbeefu;
    int n = encode_req(buf, &q);
    assert_true(n > 0);
    assert_int_equal(load_le(buf + 36, 4), 0xdeadbeefu);
    assert_int_equal(dafs_decode_request(buf, (size_t)n, &dq), 0);
    assert_int_equal(dq.hdr.cred, 0xdeadbeefu);

    /* the reply encoder clears cred; a reply carrying one is malformed */
    dafs_reply p, dp;
    sample_reply(DAFS_OP_GETATTR, &p);
    p.hdr.cred = 9;
    n = encode_rep(buf, &p);
    assert_true(n > 0);
    assert_int_equal(load_le(buf + 36, 4), 0);
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &dp), 0);
    store_le(buf + 36, 9, 4);
    assert_int_equal(decode_reply_exact(buf, (size_t)n, &dp), -DAFS_ST_BADMSG);
    dafs_hdr h;
    assert_int_equal(dafs_decode_hdr(buf, (size_t)n, &h), -DAFS_ST_BADMSG);
}

static int setattr_with(uint32_t valid, uint32_t atime_nsec, uint32_t mtime_nsec)
{
    raw r;
    raw_begin(&r, DAFS_OP_SETATTR, false);
    raw_fh(&r, 8);
    raw_le(&r, 0, 8); /* stateid */
    raw_le(&r, valid, 4);
    for (int k = 0; k < 3; k++)
        raw_le(&r, 0, 4);
    for (int k = 0; k < 3; k++)
        raw_le(&r, 0, 8);
    raw_le(&r, atime_nsec, 4);
    raw_le(&r, mtime_nsec, 4);
    return raw_decode_request(&r);
}

static void test_setattr_rules(void **state)
{
    (void)state;
    assert_int_equal(setattr_with(0, 0, 0), 0);
    assert_int_equal(setattr_with(DAFS_SET_ALL, 999999999, 999999999), 0);
    assert_int_equal(setattr_with(0x100, 0, 0), -DAFS_ST_BADMSG);
    assert_int_equal(setattr_with(0x80000000u, 0, 0), -DAFS_ST_BADMSG);
    assert_int_equal(setattr_with(DAFS_SET_ATIME, 1000000000, 0), -DAFS_ST_BADMSG);
    assert_int_equal(setattr_with(DAFS_SET_MTIME, 0, 1000000000), -DAFS_ST_BADMSG);
    assert_int_equal(setattr_with(0, 0xffffffffu, 0), -DAFS_ST_BADMSG);

    dafs_request q;
    sample_request(DAFS_OP_SETATTR, &q);
    q.u.setattr.valid = 0x100;
    expect_request_inval(&q);
    sample_request(DAFS_OP_SETATTR, &q);
    q.u.setattr.atime_nsec = 1000000000;
    expect_request_inval(&q);
    sample_request(DAFS_OP_SETATTR, &q);
    q.u.setattr.mtime_nsec = 1000000000;
    expect_request_inval(&q);
    sample_request(DAFS_OP_SETATTR, &q);
    q.u.setattr.fh.len = 0;
    expect_request_inval(&q);
}

static int rename_with(uint8_t src_fh, uint32_t src_len, uint8_t dst_fh, uint32_t dst_len,
                       uint32_t flags)
{
    raw r;
    raw_begin(&r, DAFS_OP_RENAME, false);
    raw_fh(&r, src_fh);
    raw_str(&r, src_len, 's');
    raw_fh(&r, dst_fh);
    raw_str(&r, dst_len, 'd');
    raw_le(&r, flags, 4);
    return raw_decode_request(&r);
}

static void test_rename_rules(void **state)
{
    (void)state;
    assert_int_equal(rename_with(8, 1, 8, 1, 0), 0);
    assert_int_equal(rename_with(1, DAFS_NAME_MAX, DAFS_FH_MAX, DAFS_NAME_MAX, 0), 0);
    assert_int_equal(rename_with(8, 3, 8, 3, DAFS_RENAME_NOREPLACE), 0);
    assert_int_equal(rename_with(8, 3, 8, 3, DAFS_RENAME_EXCHANGE), 0);
    assert_int_equal(rename_with(8, 3, 8, 3, DAFS_RENAME_NOREPLACE | DAFS_RENAME_EXCHANGE),
                     -DAFS_ST_BADMSG);
    assert_int_equal(rename_with(8, 3, 8, 3, 0x4), -DAFS_ST_BADMSG);
    assert_int_equal(rename_with(8, 0, 8, 3, 0), -DAFS_ST_BADMSG);
    assert_int_equal(rename_with(8, 3, 8, 0, 0), -DAFS_ST_BADMSG);
    assert_int_equal(rename_with(8, DAFS_NAME_MAX + 1, 8, 3, 0), -DAFS_ST_BADMSG);
    assert_int_equal(rename_with(8, 3, 8, DAFS_NAME_MAX + 1, 0), -DAFS_ST_BADMSG);
    assert_int_equal(rename_with(0, 3, 8, 3, 0), -DAFS_ST_BADMSG);
    assert_int_equal(rename_with(8, 3, DAFS_FH_MAX + 1, 3, 0), -DAFS_ST_BADMSG);

    dafs_request q;
    sample_request(DAFS_OP_RENAME, &q);
    q.u.rename.flags = DAFS_RENAME_NOREPLACE | DAFS_RENAME_EXCHANGE;
    expect_request_inval(&q);
    q.u.rename.flags = 0x10;
    expect_request_inval(&q);
    sample_request(DAFS_OP_RENAME, &q);
    q.u.rename.dst_name.len = 0;
    expect_request_inval(&q);
    sample_request(DAFS_OP_RENAME, &q);
    q.u.rename.src_name.len = DAFS_NAME_MAX + 1;
    expect_request_inval(&q);
    sample_request(DAFS_OP_RENAME, &q);
    q.u.rename.dst_dir.len = DAFS_FH_MAX + 1;
    expect_request_inval(&q);
}

static int link_with(uint8_t fh_len, uint8_t dir_len, uint32_t name_len)
{
    raw r;
    raw_begin(&r, DAFS_OP_LINK, false);
    raw_fh(&r, fh_len);
    raw_fh(&r, dir_len);
    raw_str(&r, name_len, 'l');
    return raw_decode_request(&r);
}

static int mknod_with(uint32_t name_len)
{
    raw r;
    raw_begin(&r, DAFS_OP_MKNOD, false);
    raw_fh(&r, 8);
    raw_str(&r, name_len, 'm');
    raw_le(&r, 0010644, 4);
    raw_le(&r, 0, 8);
    return raw_decode_request(&r);
}

static int symlink_with(uint32_t name_len, uint32_t target_len)
{
    raw r;
    raw_begin(&r, DAFS_OP_SYMLINK, false);
    raw_fh(&r, 8);
    raw_str(&r, name_len, 'n');
    raw_str(&r, target_len, 't');
    return raw_decode_request(&r);
}

static void test_link_mknod_symlink_rules(void **state)
{
    (void)state;
    assert_int_equal(link_with(1, DAFS_FH_MAX, 1), 0);
    assert_int_equal(link_with(8, 8, DAFS_NAME_MAX), 0);
    assert_int_equal(link_with(0, 8, 3), -DAFS_ST_BADMSG);
    assert_int_equal(link_with(8, DAFS_FH_MAX + 1, 3), -DAFS_ST_BADMSG);
    assert_int_equal(link_with(8, 8, 0), -DAFS_ST_BADMSG);
    assert_int_equal(link_with(8, 8, DAFS_NAME_MAX + 1), -DAFS_ST_BADMSG);

    assert_int_equal(mknod_with(1), 0);
    assert_int_equal(mknod_with(DAFS_NAME_MAX), 0);
    assert_int_equal(mknod_with(0), -DAFS_ST_BADMSG);
    assert_int_equal(mknod_with(DAFS_NAME_MAX + 1), -DAFS_ST_BADMSG);

    assert_int_equal(symlink_with(1, 1), 0);
    assert_int_equal(symlink_with(DAFS_NAME_MAX, DAFS_PATH_MAX), 0);
    assert_int_equal(symlink_with(3, 0), -DAFS_ST_BADMSG);
    assert_int_equal(symlink_with(3, DAFS_PATH_MAX + 1), -DAFS_ST_BADMSG);
    assert_int_equal(symlink_with(0, 5), -DAFS_ST_BADMSG);
    assert_int_equal(symlink_with(DAFS_NAME_MAX + 1, 5), -DAFS_ST_BADMSG);

    dafs_request q;
    char longpath[DAFS_PATH_MAX + 1];
    memset(longpath, 'p', sizeof longpath);
    sample_request(DAFS_OP_SYMLINK, &q);
    q.u.symlink.target = (dafs_bytes){(const uint8_t *)longpath, DAFS_PATH_MAX + 1};
    expect_request_inval(&q);
    q.u.symlink.target.len = 0;
    expect_request_inval(&q);
    q.u.symlink.target.len = DAFS_PATH_MAX; /* the longest target fits and round-trips */
    uint8_t buf[BUF_SIZE];
    dafs_request d;
    int n = encode_req(buf, &q);
    assert_true(n > 0);
    assert_int_equal(dafs_decode_request(buf, (size_t)n, &d), 0);
    assert_true(requests_equal(&q, &d));

    sample_request(DAFS_OP_LINK, &q);
    q.u.link.fh.len = 0;
    expect_request_inval(&q);
    sample_request(DAFS_OP_LINK, &q);
    q.u.link.name.len = 0;
    expect_request_inval(&q);
    sample_request(DAFS_OP_MKNOD, &q);
    q.u.mknod.name.len = DAFS_NAME_MAX + 1;
    expect_request_inval(&q);
}

static int access_with(uint32_t mask)
{
    raw r;
    raw_begin(&r, DAFS_OP_ACCESS, false);
    raw_fh(&r, 8);
    raw_le(&r, mask, 4);
    return raw_decode_request(&r);
}

static void test_access_rules(void **state)
{
    (void)state;
    for (uint32_t mask = 0; mask <= 7; mask++)
        assert_int_equal(access_with(mask), 0);
    assert_int_equal(access_with(8), -DAFS_ST_BADMSG);
    assert_int_equal(access_with(0xffffffffu), -DAFS_ST_BADMSG);
    dafs_request q;
    sample_request(DAFS_OP_ACCESS, &q);
    q.u.access.mask = 8;
    expect_request_inval(&q);
}

static int cred_with(uint32_t ngroups_field, uint32_t ngroups_real)
{
    raw r;
    raw_begin(&r, DAFS_OP_REGISTER_CRED, false);
    raw_le(&r, 1000, 4);
    raw_le(&r, 1000, 4);
    raw_le(&r, ngroups_field, 4);
    for (uint32_t i = 0; i < ngroups_real; i++)
        raw_le(&r, 100u + i, 4);
    return raw_decode_request(&r);
}

/* ---- extra ops (70..79) ------------------------------------------------ */

static int fallocate_with(uint32_t mode, uint64_t length)
{
    raw r;
    raw_begin(&r, DAFS_OP_FALLOCATE, false);
    raw_fh(&r, 8);
    raw_le(&r, mode, 4);
    raw_le(&r, 0, 8);
    raw_le(&r, length, 8);
    raw_le(&r, 0, 8); /* stateid */
    return raw_decode_request(&r);
}

static int seek_with(uint32_t what)
{
    raw r;
    raw_begin(&r, DAFS_OP_SEEK, false);
    raw_fh(&r, 8);
    raw_le(&r, 100, 8);
    raw_le(&r, what, 4);
    raw_le(&r, 0, 8); /* stateid */
    return raw_decode_request(&r);
}

static int copy_with(uint32_t flags)
{
    raw r;
    raw_begin(&r, DAFS_OP_COPY_RANGE, false);
    raw_fh(&r, 8);
    raw_le(&r, 0, 8);
    raw_fh(&r, 9);
    raw_le(&r, 0, 8);
    raw_le(&r, 1u << 20, 8);
    raw_le(&r, flags, 4);
    raw_le(&r, 0, 8); /* src_stateid */
    raw_le(&r, 0, 8); /* dst_stateid */
    return raw_decode_request(&r);
}

/* SETXATTR with a name of name_len bytes (fill byte fill), a value of
 * value_len bytes, flags. */
static int setxattr_with(uint32_t name_len, uint8_t fill, uint32_t value_len, uint32_t flags)
{
    static raw r; /* large values do not fit the stack of a test */
    raw_begin(&r, DAFS_OP_SETXATTR, false);
    raw_fh(&r, 8);
    raw_str(&r, name_len, fill);
    raw_le(&r, value_len, 4);
    if (value_len <= BUF_SIZE - r.pos - 16) {
        memset(r.b + r.pos, 'v', value_len);
        r.pos += value_len;
        raw_align(&r, 8);
    }
    raw_le(&r, flags, 4);
    return raw_decode_request(&r);
}

static int getxattr_with(uint16_t op, uint32_t size)
{
    raw r;
    raw_begin(&r, op, false);
    raw_fh(&r, 8);
    if (op == DAFS_OP_GETXATTR)
        raw_str(&r, 6, 'n');
    raw_le(&r, size, 4);
    return raw_decode_request(&r);
}

static int xattr_reply_with(uint16_t op, uint32_t size, uint32_t data_len)
{
    raw r;
    raw_begin(&r, op, true);
    raw_le(&r, size, 4);
    raw_str(&r, data_len, 'd');
    return raw_decode_reply(&r);
}

static int readdirplus_reply_with(uint8_t has_attr)
{
    raw r;
    raw_begin(&r, DAFS_OP_READDIRPLUS, true);
    raw_le(&r, 1, 1); /* eof */
    raw_le(&r, 1, 4); /* nentries */
    raw_align(&r, 8);
    raw_le(&r, 5, 8); /* fileid */
    raw_le(&r, 6, 8); /* cookie */
    raw_le(&r, 0100000, 4);
    raw_str(&r, 4, 'f');
    raw_le(&r, has_attr, 1);
    if (has_attr & DAFS_PLUS_ATTR) {
        raw_fh(&r, 12);
        for (int i = 0; i < 4; i++)
            raw_le(&r, 1, 4);
        for (int i = 0; i < 7; i++)
            raw_le(&r, 1, 8);
        for (int i = 0; i < 3; i++)
            raw_le(&r, 1, 4);
    }
    return raw_decode_reply(&r);
}

static void test_ext_rules(void **state)
{
    (void)state;
    assert_int_equal(fallocate_with(0, 1), 0);
    assert_int_equal(fallocate_with(DAFS_FALLOC_ALL, 1), 0); /* the file system judges combos */
    assert_int_equal(fallocate_with(0x40, 1), -DAFS_ST_BADMSG);
    assert_int_equal(fallocate_with(0, 0), -DAFS_ST_BADMSG); /* length 0: EINVAL in fallocate(2) */
    assert_int_equal(seek_with(DAFS_SEEK_DATA), 0);
    assert_int_equal(seek_with(DAFS_SEEK_HOLE), 0);
    assert_int_equal(seek_with(2), -DAFS_ST_BADMSG);
    assert_int_equal(copy_with(0), 0);
    assert_int_equal(copy_with(1), -DAFS_ST_BADMSG);

    assert_int_equal(setxattr_with(6, 'n', 0, 0), 0); /* empty values are allowed */
    assert_int_equal(setxattr_with(DAFS_XATTR_NAME_MAX, 'n', 100, DAFS_XATTR_CREATE), 0);
    assert_int_equal(setxattr_with(5, 'n', 10, DAFS_XATTR_REPLACE), 0);
    assert_int_equal(setxattr_with(5, 'n', 10, DAFS_XATTR_CREATE | DAFS_XATTR_REPLACE),
                     -DAFS_ST_BADMSG);
    assert_int_equal(setxattr_with(0, 'n', 10, 0), -DAFS_ST_BADMSG);
    assert_int_equal(setxattr_with(DAFS_XATTR_NAME_MAX + 1, 'n', 10, 0), -DAFS_ST_BADMSG);
    assert_int_equal(setxattr_with(6, '\0', 10, 0), -DAFS_ST_BADMSG); /* NUL in the name */
    assert_int_equal(setxattr_with(6, 'n', DAFS_XATTR_VALUE_MAX + 1, 0), -DAFS_ST_BADMSG);
    assert_int_equal(setxattr_with(6, 'n', 0xffffffffu, 0), -DAFS_ST_BADMSG);
    assert_int_equal(getxattr_with(DAFS_OP_GETXATTR, 0), 0);
    assert_int_equal(getxattr_with(DAFS_OP_GETXATTR, DAFS_XATTR_VALUE_MAX), 0);
    assert_int_equal(getxattr_with(DAFS_OP_GETXATTR, DAFS_XATTR_VALUE_MAX + 1), -DAFS_ST_BADMSG);
    assert_int_equal(getxattr_with(DAFS_OP_LISTXATTR, DAFS_XATTR_LIST_MAX), 0);
    assert_int_equal(getxattr_with(DAFS_OP_LISTXATTR, DAFS_XATTR_LIST_MAX + 1), -DAFS_ST_BADMSG);

    assert_int_equal(xattr_reply_with(DAFS_OP_GETXATTR, 10, 10), 0);
    assert_int_equal(xattr_reply_with(DAFS_OP_GETXATTR, 1000, 0), 0); /* a size answer */
    assert_int_equal(xattr_reply_with(DAFS_OP_GETXATTR, 10, 9), -DAFS_ST_BADMSG);
    assert_int_equal(xattr_reply_with(DAFS_OP_LISTXATTR, DAFS_XATTR_LIST_MAX + 1, 0),
                     -DAFS_ST_BADMSG);
    assert_int_equal(readdirplus_reply_with(0), 0);
    assert_int_equal(readdirplus_reply_with(1), 0);
    assert_int_equal(readdirplus_reply_with(DAFS_PLUS_ATTR | DAFS_PLUS_NO_XATTRS), 0);
    assert_int_equal(readdirplus_reply_with(DAFS_PLUS_NO_XATTRS), -DAFS_ST_BADMSG); /* without ATTR */
    assert_int_equal(readdirplus_reply_with(4), -DAFS_ST_BADMSG);

    /* the encoder refuses what the decoder refuses */
    dafs_request q;
    sample_request(DAFS_OP_FALLOCATE, &q);
    q.u.fallocate.length = 0;
    expect_request_inval(&q);
    sample_request(DAFS_OP_SEEK, &q);
    q.u.seek.what = 7;
    expect_request_inval(&q);
    sample_request(DAFS_OP_SETXATTR, &q);
    q.u.xattr.flags = 3;
    expect_request_inval(&q);
    sample_request(DAFS_OP_GETXATTR, &q);
    q.u.xattr.name.len = 0;
    expect_request_inval(&q);
    assert_true(dafs_op_known(DAFS_OP_READDIRPLUS));
    assert_false(dafs_op_known(DAFS_OP_EXT_END));
    assert_int_equal(dafs_op_next(DAFS_OP_COUNT - 1), DAFS_OP_BATCH_SUBMIT);
    assert_int_equal(dafs_op_next(DAFS_OP_BATCH_SUBMIT), DAFS_OP_CACHE_HINT);
    assert_int_equal(dafs_op_next(DAFS_OP_CACHE_HINT), DAFS_OP_HURRY_UP);
    assert_int_equal(dafs_op_next(DAFS_OP_HURRY_UP), DAFS_OP_LOCK);
    assert_int_equal(dafs_op_next(DAFS_OP_LOCKU), DAFS_OP_LOCK_CANCEL);
    assert_int_equal(dafs_op_next(DAFS_OP_LOCK_CANCEL), DAFS_OP_LOCK_ABORT);
    assert_int_equal(dafs_op_next(DAFS_OP_LOCK_ABORT), DAFS_OP_EXT_FIRST);
    assert_int_equal(dafs_op_next(DAFS_OP_EXT_END - 1), DAFS_OP_LIMIT);
    assert_string_equal(dafs_op_name(DAFS_OP_COPY_RANGE), "COPY_RANGE");
    assert_string_equal(dafs_op_name(DAFS_OP_EXT_END), "UNKNOWN");
}

/* CACHE_HINT: fh, stateid, offset, len, hint. */
static void raw_cache_hint(raw *r, uint32_t hint)
{
    raw_begin(r, DAFS_OP_CACHE_HINT, false);
    raw_fh(r, 11);
    raw_le(r, 0x1122334455667788ull, 8);
    raw_le(r, 4096, 8);
    raw_le(r, 0, 8); /* len 0: to the end of the file */
    raw_le(r, hint, 4);
}

static void test_cache_hint_rules(void **state)
{
    (void)state;
    raw r;
    for (uint32_t hint = 0; hint <= DAFS_WIRE_HINT_DONTNEED + 1; hint++) {
        raw_cache_hint(&r, hint);
        int rc = raw_decode_request(&r);
        assert_int_equal(rc, hint <= DAFS_WIRE_HINT_DONTNEED ? 0 : -DAFS_ST_BADMSG);
    }
    raw_cache_hint(&r, 0xffffffffu);
    assert_int_equal(raw_decode_request(&r), -DAFS_ST_BADMSG);

    /* the codec lays it out exactly as the raw writer does */
    dafs_request q;
    memset(&q, 0, sizeof q);
    q.hdr.opcode = DAFS_OP_CACHE_HINT;
    q.hdr.session_id = 1;
    q.hdr.xid = 2;
    q.u.cache_hint.fh.len = 11;
    memset(q.u.cache_hint.fh.data, 0xf0, 11);
    q.u.cache_hint.stateid = 0x1122334455667788ull;
    q.u.cache_hint.offset = 4096;
    q.u.cache_hint.hint = DAFS_WIRE_HINT_WILLNEED;
    raw_cache_hint(&r, DAFS_WIRE_HINT_WILLNEED);
    size_t n = raw_end(&r);
    assert_int_equal(n, DAFS_HDR_SIZE + 16 + 8 + 8 + 8 + 8);
    uint8_t buf[BUF_SIZE];
    assert_int_equal(encode_req(buf, &q), (int)n);
    assert_memory_equal(buf, r.b, n);

    q.u.cache_hint.hint = DAFS_WIRE_HINT_DONTNEED + 1;
    expect_request_inval(&q);

    /* the reply is empty */
    dafs_reply p;
    sample_reply(DAFS_OP_CACHE_HINT, &p);
    assert_int_equal(encode_rep(buf, &p), DAFS_HDR_SIZE);
}

/* LOCK, LOCKT, LOCKU: one body (fh, stateid, owner, offset, length, type,
 * flags), written here by hand; LOCKT's reply likewise. */
static void raw_lock(raw *r, uint16_t op, uint32_t type, uint32_t flags)
{
    raw_begin(r, op, false);
    raw_fh(r, 11);
    raw_le(r, 0x1122334455667788ull, 8); /* stateid */
    raw_le(r, 42, 8);                    /* owner */
    raw_le(r, 4096, 8);                  /* offset */
    raw_le(r, UINT64_MAX, 8);            /* length: to the end */
    raw_le(r, type, 4);
    raw_le(r, flags, 4);
}

static void test_lock_rules(void **state)
{
    (void)state;
    raw r;
    for (uint32_t type = 0; type <= DAFS_WIRE_LOCK_EXCL + 1; type++) {
        raw_lock(&r, DAFS_OP_LOCK, type, 0);
        assert_int_equal(raw_decode_request(&r), type <= DAFS_WIRE_LOCK_EXCL ? 0 : -DAFS_ST_BADMSG);
    }
    raw_lock(&r, DAFS_OP_LOCK, DAFS_WIRE_LOCK_EXCL, DAFS_WIRE_LOCK_ALL);
    assert_int_equal(raw_decode_request(&r), 0);
    raw_lock(&r, DAFS_OP_LOCKU, 0, DAFS_WIRE_LOCK_ALL + 1);
    assert_int_equal(raw_decode_request(&r), -DAFS_ST_BADMSG);

    dafs_request q;
    memset(&q, 0, sizeof q);
    q.hdr.opcode = DAFS_OP_LOCKT;
    q.hdr.session_id = 1;
    q.hdr.xid = 2;
    q.u.lock.fh.len = 11;
    memset(q.u.lock.fh.data, 0xf0, 11);
    q.u.lock = (dafs_lock_req){.fh = q.u.lock.fh, .stateid = 0x1122334455667788ull, .owner = 42,
                               .offset = 4096, .length = UINT64_MAX,
                               .type = DAFS_WIRE_LOCK_SHARED, .flags = DAFS_WIRE_LOCK_PERSIST};
    raw_lock(&r, DAFS_OP_LOCKT, DAFS_WIRE_LOCK_SHARED, DAFS_WIRE_LOCK_PERSIST);
    size_t n = raw_end(&r);
    assert_int_equal(n, DAFS_HDR_SIZE + 16 + 4 * 8 + 8);
    uint8_t buf[BUF_SIZE];
    assert_int_equal(encode_req(buf, &q), (int)n);
    assert_memory_equal(buf, r.b, n);
    q.u.lock.type = 3;
    expect_request_inval(&q);

    /* LOCKT reply: found, type, flags, state (u32 each), session, owner,
     * offset, length (u64 each) */
    raw_begin(&r, DAFS_OP_LOCKT, true);
    raw_le(&r, 1, 4);
    raw_le(&r, DAFS_WIRE_LOCK_EXCL, 4);
    raw_le(&r, 0, 4);
    raw_le(&r, DAFS_LOCK_STATE_HELD, 4);
    raw_le(&r, 0x5e55, 8);
    raw_le(&r, 7, 8);
    raw_le(&r, 0, 8);
    raw_le(&r, 100, 8);
    assert_int_equal(raw_decode_reply(&r), 0);
    r.b[DAFS_HDR_SIZE + 12] = 5; /* state 5: no such state */
    assert_int_equal(raw_decode_reply(&r), -DAFS_ST_BADMSG);
    dafs_reply p;
    sample_reply(DAFS_OP_LOCK, &p);
    assert_int_equal(encode_rep(buf, &p), DAFS_HDR_SIZE); /* LOCK, LOCKU: empty replies */
}

static int cred_reply_with(uint32_t cred_id)
{
    raw r;
    raw_begin(&r, DAFS_OP_REGISTER_CRED, true);
    raw_le(&r, cred_id, 4);
    return raw_decode_reply(&r);
}

static void test_cred_rules(void **state)
{
    (void)state;
    assert_int_equal(cred_with(0, 0), 0);
    assert_int_equal(cred_with(1, 1), 0);
    assert_int_equal(cred_with(33, 33), 0);     /* past the old fixed 32 */
    assert_int_equal(cred_with(1500, 1500), 0); /* only the message size bounds it */
    assert_int_equal(cred_with(DAFS_GROUPS_MAX + 1, 40), -DAFS_ST_BADMSG);
    assert_int_equal(cred_with(0xffffffffu, 40), -DAFS_ST_BADMSG);
    assert_int_equal(cred_with(0x40000001u, 1), -DAFS_ST_BADMSG); /* 4 * n wraps in 32 bits */
    assert_int_equal(cred_with(0xffff, 40), -DAFS_ST_BADMSG);
    /* short lists (an even count present, so no pad bytes could pass for a group) */
    assert_int_equal(cred_with(2, 1), -DAFS_ST_BADMSG);
    assert_int_equal(cred_with(4, 3), -DAFS_ST_BADMSG);
    assert_int_equal(cred_with(1, 3), -DAFS_ST_BADMSG); /* extra groups */
    assert_int_equal(cred_reply_with(1), 0);
    assert_int_equal(cred_reply_with(0xffffffffu), 0);
    assert_int_equal(cred_reply_with(0), -DAFS_ST_BADMSG);

    dafs_request q, d;
    uint8_t buf[BUF_SIZE];
    sample_request(DAFS_OP_REGISTER_CRED, &q);
    q.u.cred.ngroups = DAFS_GROUPS_MAX + 1;
    expect_request_inval(&q);
    q.u.cred.ngroups = 3;
    q.u.cred.groups = NULL;
    expect_request_inval(&q);
    static uint32_t many[1000];
    for (uint32_t i = 0; i < 1000; i++)
        many[i] = 0xfff00000u + i;
    q.u.cred.ngroups = 1000;
    q.u.cred.groups = many;
    int n = encode_req(buf, &q);
    assert_int_equal(n, 60 + 4 * 1000 + 4); /* + final padding */
    assert_int_equal(dafs_decode_request(buf, (size_t)n, &d), 0);
    assert_true(requests_equal(&q, &d));
    assert_null(d.u.cred.groups); /* decoded in place */
    assert_int_equal(dafs_cred_group(&d.u.cred, 999), 0xfff00000u + 999);
    assert_int_equal(dafs_cred_group(&d.u.cred, 1000), UINT32_MAX);
    q.u.cred.ngroups = 4000; /* 16 KB of groups do not fit an 8 KB buffer */
    static uint32_t more[4000];
    q.u.cred.groups = more;
    assert_int_equal(encode_req(buf, &q), -DAFS_ST_OVERFLOW);

    /* any cred id may be released: the server decides what it means */
    sample_request(DAFS_OP_RELEASE_CRED, &q);
    q.u.cred_id.cred_id = 0;
    n = encode_req(buf, &q);
    assert_int_equal(n, 56);
    assert_int_equal(dafs_decode_request(buf, (size_t)n, &d), 0);

    dafs_reply p;
    sample_reply(DAFS_OP_REGISTER_CRED, &p);
    p.u.cred.cred_id = 0;
    expect_reply_inval(&p);
}

static int append_inline_with(uint64_t offset, uint32_t count, uint32_t data_len)
{
    raw r;
    raw_begin(&r, DAFS_OP_APPEND_INLINE, false);
    raw_fh(&r, 16);
    raw_le(&r, 0, 8); /* stateid */
    raw_le(&r, offset, 8);
    raw_le(&r, count, 4);
    raw_le(&r, DAFS_FILE_SYNC, 4);
    raw_le(&r, 0, 4);
    raw_str(&r, data_len, 'a');
    return raw_decode_request(&r);
}

static int append_direct_with_offset(uint64_t offset)
{
    raw r;
    raw_begin(&r, DAFS_OP_APPEND_DIRECT, false);
    raw_fh(&r, 16);
    raw_le(&r, 0, 8); /* stateid */
    raw_le(&r, offset, 8);
    raw_le(&r, 4096, 4);
    raw_le(&r, DAFS_UNSTABLE, 4);
    raw_le(&r, 0, 4);
    raw_le(&r, 1, 2);
    raw_seg(&r, 4096);
    return raw_decode_request(&r);
}

/* count, committed, verifier, and the offset only when with_offset */
static int write_reply_with(uint16_t op, bool with_offset)
{
    raw r;
    raw_begin(&r, op, true);
    raw_le(&r, 10, 4);
    raw_le(&r, DAFS_FILE_SYNC, 4);
    raw_le(&r, 0x77, 8);
    if (with_offset)
        raw_le(&r, 0x1234, 8);
    return raw_decode_reply(&r);
}

static void test_append_rules(void **state)
{
    (void)state;
    assert_int_equal(append_inline_with(0, 10, 10), 0);
    assert_int_equal(append_inline_with(0, 0, 0), 0);
    assert_int_equal(append_inline_with(1, 10, 10), -DAFS_ST_BADMSG);
    assert_int_equal(append_inline_with(UINT64_MAX, 10, 10), -DAFS_ST_BADMSG);
    assert_int_equal(append_inline_with(0, 10, 9), -DAFS_ST_BADMSG);
    assert_int_equal(append_direct_with_offset(0), 0);
    assert_int_equal(append_direct_with_offset(4096), -DAFS_ST_BADMSG);
    /* segment rules: test_direct_segments covers APPEND_DIRECT too */

    /* replies: APPEND_* carry the offset, WRITE_* do not */
    assert_int_equal(write_reply_with(DAFS_OP_APPEND_INLINE, true), 0);
    assert_int_equal(write_reply_with(DAFS_OP_APPEND_DIRECT, true), 0);
    assert_int_equal(write_reply_with(DAFS_OP_APPEND_INLINE, false), -DAFS_ST_BADMSG);
    assert_int_equal(write_reply_with(DAFS_OP_APPEND_DIRECT, false), -DAFS_ST_BADMSG);
    assert_int_equal(write_reply_with(DAFS_OP_WRITE_INLINE, false), 0);
    assert_int_equal(write_reply_with(DAFS_OP_WRITE_INLINE, true), -DAFS_ST_BADMSG);
    assert_int_equal(write_reply_with(DAFS_OP_WRITE_DIRECT, true), -DAFS_ST_BADMSG);

    uint8_t buf[BUF_SIZE];
    dafs_reply p, d;
    sample_reply(DAFS_OP_APPEND_DIRECT, &p);
    int n = encode_rep(buf, &p);
    assert_int_equal(n, 48 + 24);
    assert_int_equal(load_le(buf + 64, 8), p.u.write.offset);
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &d), 0);
    assert_int_equal(d.u.write.offset, p.u.write.offset);
    /* a WRITE reply does not carry an offset even if the caller set one */
    sample_reply(DAFS_OP_WRITE_INLINE, &p);
    p.u.write.offset = 99;
    assert_int_equal(encode_rep(buf, &p), 48 + 16);

    dafs_request q;
    sample_request(DAFS_OP_APPEND_INLINE, &q);
    q.u.write.offset = 1;
    expect_request_inval(&q);
    sample_request(DAFS_OP_APPEND_INLINE, &q);
    q.u.write.count += 1;
    expect_request_inval(&q);
    sample_request(DAFS_OP_APPEND_DIRECT, &q);
    q.u.write.offset = 4096;
    expect_request_inval(&q);
    sample_request(DAFS_OP_APPEND_DIRECT, &q);
    q.u.write.nsegs = 0;
    expect_request_inval(&q);
    sample_request(DAFS_OP_APPEND_DIRECT, &q);
    q.u.write.nsegs = DAFS_SEG_MAX + 1;
    expect_request_inval(&q);
    sample_request(DAFS_OP_APPEND_DIRECT, &q);
    q.u.write.count = 2 * 4096 + 1; /* segments no longer cover count */
    expect_request_inval(&q);
}

static int readlink_reply_with(uint32_t target_len)
{
    raw r;
    raw_begin(&r, DAFS_OP_READLINK, true);
    raw_str(&r, target_len, 'r');
    return raw_decode_reply(&r);
}

static void test_readlink_reply_rules(void **state)
{
    (void)state;
    assert_int_equal(readlink_reply_with(1), 0);
    assert_int_equal(readlink_reply_with(DAFS_PATH_MAX), 0);
    assert_int_equal(readlink_reply_with(0), -DAFS_ST_BADMSG);
    assert_int_equal(readlink_reply_with(DAFS_PATH_MAX + 1), -DAFS_ST_BADMSG);

    dafs_reply p;
    sample_reply(DAFS_OP_READLINK, &p);
    p.u.readlink.target.len = 0;
    expect_reply_inval(&p);
    p.u.readlink.target.len = DAFS_PATH_MAX + 1;
    expect_reply_inval(&p);
    sample_reply(DAFS_OP_READLINK, &p);
    p.u.readlink.target.ptr = NULL;
    expect_reply_inval(&p);
    /* fh+attr replies of the new ops check created like OPEN's */
    sample_reply(DAFS_OP_LOOKUPP, &p);
    p.u.fh_attr.created = 2;
    expect_reply_inval(&p);
    sample_reply(DAFS_OP_SYMLINK, &p);
    p.u.fh_attr.fh.len = 0;
    expect_reply_inval(&p);
}

/* ---- READDIR encoder and iterator -------------------------------------- */

static void test_readdir_encoder(void **state)
{
    (void)state;
    uint8_t buf[1024];
    dafs_hdr h = {.opcode = DAFS_OP_READDIR, .session_id = 3, .xid = 4, .credits = 9};
    dafs_readdir_enc e;
    assert_int_equal(dafs_readdir_enc_begin(&e, buf, sizeof buf, &h), 0);
    char names[64][16];
    uint32_t added = 0;
    for (;;) {
        snprintf(names[added], sizeof names[added], "entry-%03u", added); /* 9 bytes */
        dafs_dirent_wire ent = {.fileid = 1000 + added,
                                .cookie = added + 1,
                                .type = 0100000,
                                .name = {(const uint8_t *)names[added], 9}};
        size_t before = e.pos;
        int rc = dafs_readdir_enc_add(&e, &ent);
        if (rc != 0) {
            assert_int_equal(rc, -DAFS_ST_OVERFLOW);
            assert_int_equal(e.pos, before);
            break;
        }
        added++;
        assert_true(added < 64);
    }
    /* each entry takes 8+8+4+4+16 = 40 bytes after the 56-byte start */
    assert_int_equal(added, (sizeof buf - 56) / 40);
    assert_int_equal(e.nentries, added);
    int n = dafs_readdir_enc_finish(&e, false);
    assert_int_equal(n, 56 + 40 * added);

    dafs_reply d;
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &d), 0);
    assert_int_equal(d.hdr.xid, 4);
    assert_int_equal(d.hdr.credits, 9);
    assert_int_equal(d.hdr.flags, DAFS_HDR_REPLY);
    assert_int_equal(d.u.readdir.eof, 0);
    assert_int_equal(d.u.readdir.nentries, added);

    dafs_readdir_iter it;
    dafs_dirent_wire ent;
    uint32_t seen = 0;
    dafs_readdir_iter_init(&it, &d.u.readdir);
    while (dafs_readdir_next(&it, &ent) == 1) {
        assert_int_equal(ent.fileid, 1000 + seen);
        assert_int_equal(ent.cookie, seen + 1);
        assert_int_equal(ent.type, 0100000);
        assert_int_equal(ent.name.len, 9);
        assert_memory_equal(ent.name.ptr, names[seen], 9);
        seen++;
    }
    assert_int_equal(seen, added);
    assert_int_equal(dafs_readdir_next(&it, &ent), 0);

    /* re-encoding the decoded reply gives the same bytes */
    uint8_t again[1024];
    assert_int_equal(dafs_encode_reply(again, sizeof again, &d), n);
    assert_memory_equal(again, buf, (size_t)n);
}

static void test_readdir_encoder_edges(void **state)
{
    (void)state;
    uint8_t buf[256];
    dafs_hdr h = {.opcode = DAFS_OP_READDIR};
    dafs_readdir_enc e;

    assert_int_equal(dafs_readdir_enc_begin(&e, buf, 55, &h), -DAFS_ST_OVERFLOW);
    h.opcode = DAFS_OP_LOOKUP;
    assert_int_equal(dafs_readdir_enc_begin(&e, buf, sizeof buf, &h), -DAFS_ST_INVAL);
    h.opcode = DAFS_OP_READDIR;
    h.status = DAFS_ST_NOENT;
    assert_int_equal(dafs_readdir_enc_begin(&e, buf, sizeof buf, &h), -DAFS_ST_INVAL);
    h.status = 0;

    /* empty directory at eof */
    assert_int_equal(dafs_readdir_enc_begin(&e, buf, 56, &h), 0);
    dafs_dirent_wire ent = {.fileid = 1, .cookie = 1, .name = {(const uint8_t *)"a", 1}};
    assert_int_equal(dafs_readdir_enc_add(&e, &ent), -DAFS_ST_OVERFLOW);
    int n = dafs_readdir_enc_finish(&e, true);
    assert_int_equal(n, 56);
    dafs_reply d;
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &d), 0);
    assert_int_equal(d.u.readdir.eof, 1);
    assert_int_equal(d.u.readdir.nentries, 0);
    dafs_readdir_iter it;
    dafs_readdir_iter_init(&it, &d.u.readdir);
    assert_int_equal(dafs_readdir_next(&it, &ent), 0);

    /* bad names are refused, and nothing is added */
    assert_int_equal(dafs_readdir_enc_begin(&e, buf, sizeof buf, &h), 0);
    char longname[DAFS_NAME_MAX + 1];
    memset(longname, 'l', sizeof longname);
    ent.name = (dafs_bytes){(const uint8_t *)longname, DAFS_NAME_MAX + 1};
    assert_int_equal(dafs_readdir_enc_add(&e, &ent), -DAFS_ST_INVAL);
    ent.name.len = 0;
    assert_int_equal(dafs_readdir_enc_add(&e, &ent), -DAFS_ST_INVAL);
    assert_int_equal(e.nentries, 0);
    assert_int_equal(e.pos, 56);
    /* a 255-byte name does not fit in 256 - 56 bytes */
    ent.name.len = DAFS_NAME_MAX;
    assert_int_equal(dafs_readdir_enc_add(&e, &ent), -DAFS_ST_OVERFLOW);
    ent.name.len = 8; /* exactly 32 bytes */
    for (int i = 0; i < 6; i++)
        assert_int_equal(dafs_readdir_enc_add(&e, &ent), 0);
    assert_int_equal(dafs_readdir_enc_add(&e, &ent), -DAFS_ST_OVERFLOW);
    n = dafs_readdir_enc_finish(&e, true);
    assert_int_equal(n, 56 + 6 * 32);
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &d), 0);
    assert_int_equal(d.u.readdir.nentries, 6);
}

/* A hand-made rep that claims more entries than it holds stops cleanly. */
static void test_readdir_iter_handmade(void **state)
{
    (void)state;
    dafs_reply p;
    sample_reply(DAFS_OP_READDIR, &p);
    dafs_readdir_rep rep = p.u.readdir;
    rep.nentries = 10;
    dafs_readdir_iter it;
    dafs_dirent_wire ent;
    int count = 0;
    dafs_readdir_iter_init(&it, &rep);
    while (dafs_readdir_next(&it, &ent) == 1)
        count++;
    assert_int_equal(count, 3);
    assert_int_equal(dafs_readdir_next(&it, &ent), 0);

    dafs_readdir_rep empty = {.nentries = 5};
    dafs_readdir_iter_init(&it, &empty);
    assert_int_equal(dafs_readdir_next(&it, &ent), 0);
}

/* ---- golden digests of every sample ----------------------------------- */

/*
 * Length and FNV-1a-64 digest of the encoded sample request and reply of
 * every opcode (tests/unit/proto_samples.c), recorded from the hand-written
 * codec before it became table-driven (CACHE_HINT, added after, from the
 * layout test_cache_hint_rules checks; BATCH_SUBMIT and HURRY_UP from the
 * hand-written batch codec they were first built with; the lock ops (50-54)
 * from the layout test_lock_rules checks): any byte the codec moves, adds or
 * drops in any message shows here.  A new opcode must add its row (the test
 * fails for a known opcode without one); changing a row is a wire change.
 */
static const struct {
    uint16_t op;
    int req_len;
    uint64_t req_fnv;
    int rep_len;
    uint64_t rep_fnv;
} golden_digests[] = {
    {DAFS_OP_NULL, 48, 0xee7d9880e70105d7ull, 48, 0xfd34fcf449d93d65ull},
    {DAFS_OP_CONNECT, 128, 0xaa69105b54b3288cull, 80, 0xc783a4b4a6511c73ull},
    {DAFS_OP_DISCONNECT, 48, 0xe14d765d324e5b09ull, 48, 0x7e90b0bcd22c89ddull},
    {DAFS_OP_GETROOT, 48, 0xb7e14e72b7d0e178ull, 184, 0x589643894507c3afull},
    {DAFS_OP_LOOKUP, 96, 0x298463bfb4ddfa8bull, 184, 0x6c3305a87d854e8dull},
    {DAFS_OP_GETATTR, 88, 0x6d0879156eff8033ull, 136, 0xddf9cd31cdca148bull},
    {DAFS_OP_OPEN, 96, 0xa93c405d4e6dd685ull, 192, 0xd04a17a05475e287ull},
    {DAFS_OP_CLOSE, 96, 0x8cd8689cb7afde68ull, 48, 0x564fc803b5061a03ull},
    {DAFS_OP_READ_INLINE, 144, 0x3cd256ec2b2e4a0full, 96, 0x7e535ecaebd10f99ull},
    {DAFS_OP_READ_DIRECT, 224, 0xe1f439c9e37e1e79ull, 56, 0x0946354d53ade7afull},
    {DAFS_OP_WRITE_INLINE, 128, 0x0caac5ace8f48311ull, 64, 0xe262895c3ce3231full},
    {DAFS_OP_WRITE_DIRECT, 472, 0x787d751b18fadc52ull, 64, 0x969573b9dda42679ull},
    {DAFS_OP_COMMIT, 96, 0x8d14b1f39ef0d120ull, 56, 0x5963eec86c75289dull},
    {DAFS_OP_REMOVE, 96, 0x2c420b838e361adaull, 48, 0x4a00d48a46b70ed7ull},
    {DAFS_OP_MKDIR, 96, 0xf7fb530c1922d80bull, 184, 0x0273c7b1c3f0ca55ull},
    {DAFS_OP_RMDIR, 96, 0x72d8ff7d86c31f14ull, 48, 0x912117d054754173ull},
    {DAFS_OP_READDIR, 88, 0x5dc3ff9106f78976ull, 152, 0x5fb48ca741f02cb4ull},
    {DAFS_OP_STATFS, 88, 0x9cf18517b0b5fdb7ull, 112, 0xb2d4ea425e4f9c7eull},
    {DAFS_OP_SETATTR, 136, 0x946bdd41bf1f4094ull, 136, 0x13d77c53408f0335ull},
    {DAFS_OP_RENAME, 176, 0xaaa75950b4306d9dull, 48, 0xf87bd4a2de968febull},
    {DAFS_OP_LINK, 96, 0xe92c3291742636a9ull, 136, 0x97f916e80dfe4d4dull},
    {DAFS_OP_SYMLINK, 112, 0x6b9625d2d5c38b88ull, 168, 0x0614940228799f7dull},
    {DAFS_OP_READLINK, 88, 0xf9f113329debc3b4ull, 80, 0xd753937da32816e2ull},
    {DAFS_OP_MKNOD, 88, 0xf5b82c260178304dull, 168, 0x5fe18767bbcfe311ull},
    {DAFS_OP_ACCESS, 64, 0x0acd87ec12533157ull, 48, 0x46f28b04d413fbb5ull},
    {DAFS_OP_LOOKUPP, 88, 0x298564d419d6b697ull, 168, 0x356f481e70e2e1ddull},
    {DAFS_OP_APPEND_INLINE, 152, 0xad6a1c9a1ba233f5ull, 72, 0x21baad4442e7eda2ull},
    {DAFS_OP_APPEND_DIRECT, 144, 0x05bbaa459c7f1f5full, 72, 0x97f973de8ba7d6f4ull},
    {DAFS_OP_REGISTER_CRED, 224, 0xf13c69d357229e2dull, 56, 0xa0a72a819731e807ull},
    {DAFS_OP_RELEASE_CRED, 56, 0x4d9fa68b217a68c0ull, 48, 0xc9a7c61b20715237ull},
    {DAFS_OP_OPEN_FH, 80, 0x4fb330ef1ab1e411ull, 168, 0xbe2bde8880b1b4ddull},
    {DAFS_OP_BATCH_SUBMIT, 400, 0xf1fd816acd9d4d2dull, 128, 0xfdd96c86033de0deull},
    {DAFS_OP_CACHE_HINT, 104, 0xfcdc14b68fe6dfcbull, 48, 0xfca8382aff2f9687ull},
    {DAFS_OP_HURRY_UP, 56, 0xf78f2a4ed0564998ull, 48, 0x81fd4b8dccb0b2ddull},
    {DAFS_OP_LOCK, 128, 0xbb055e9b2566c03bull, 48, 0xd7d87f6ba96af79dull},
    {DAFS_OP_LOCKT, 128, 0xbb1926b762567797ull, 96, 0xce40237f3c80774eull},
    {DAFS_OP_LOCKU, 128, 0x721acfca5333ba27ull, 48, 0x366b649171d00b75ull},
    {DAFS_OP_LOCK_CANCEL, 128, 0x30dd4708cdf4a5a1ull, 48, 0x1b164bb6cbc76307ull},
    {DAFS_OP_LOCK_ABORT, 128, 0x354f1d46d9f39963ull, 48, 0x9558079ca9e4641dull},
    {DAFS_OP_FALLOCATE, 112, 0xc1eff9b0e7d2e9c9ull, 136, 0xe1b19658b4a387b5ull},
    {DAFS_OP_COPY_RANGE, 144, 0x6f9377e487a8cb3bull, 56, 0xa9cf667a2507165bull},
    {DAFS_OP_SEEK, 80, 0x71f2f130e2b4ad04ull, 56, 0x2c2c86a821f8878dull},
    {DAFS_OP_GETXATTR, 112, 0xe33ea5fe225b51b5ull, 80, 0x343b90896c709e6dull},
    {DAFS_OP_SETXATTR, 136, 0x0b572393149b9e30ull, 48, 0xb08105aa0a0c161dull},
    {DAFS_OP_LISTXATTR, 80, 0x72b88214d9cb1134ull, 104, 0xf5dfc146fa91bf9full},
    {DAFS_OP_REMOVEXATTR, 104, 0x6980d743ae57bfe3ull, 48, 0x4847eadb24dd1c65ull},
    {DAFS_OP_READDIRPLUS, 88, 0x90e68d4fbc850e97ull, 240, 0x43eb54704a608d09ull},
};

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void test_golden_digests(void **state)
{
    (void)state;
    size_t rows = sizeof golden_digests / sizeof golden_digests[0];
    size_t seen = 0;
    for (uint16_t op = 0; op < DAFS_OP_LIMIT; op = dafs_op_next(op)) {
        size_t i = 0;
        while (i < rows && golden_digests[i].op != op)
            i++;
        if (i == rows)
            fail_msg("opcode %u (%s) has no golden digest row", op, dafs_op_name(op));
        dafs_request q;
        dafs_reply p;
        uint8_t buf[BUF_SIZE];
        sample_request(op, &q);
        int n = encode_req(buf, &q);
        assert_int_equal(n, golden_digests[i].req_len);
        if (fnv1a64(buf, (size_t)n) != golden_digests[i].req_fnv)
            fail_msg("%s request bytes changed", dafs_op_name(op));
        sample_reply(op, &p);
        n = encode_rep(buf, &p);
        assert_int_equal(n, golden_digests[i].rep_len);
        if (fnv1a64(buf, (size_t)n) != golden_digests[i].rep_fnv)
            fail_msg("%s reply bytes changed", dafs_op_name(op));
        seen++;
    }
    assert_int_equal(seen, rows); /* no row for an opcode the codec forgot */
}

/* ---- names ------------------------------------------------------------- */

static void test_op_names(void **state)
{
    (void)state;
    assert_string_equal(dafs_op_name(DAFS_OP_NULL), "NULL");
    assert_string_equal(dafs_op_name(DAFS_OP_READ_DIRECT), "READ_DIRECT");
    assert_string_equal(dafs_op_name(DAFS_OP_STATFS), "STATFS");
    assert_string_equal(dafs_op_name(DAFS_OP_SETATTR), "SETATTR");
    assert_string_equal(dafs_op_name(DAFS_OP_LOOKUPP), "LOOKUPP");
    assert_string_equal(dafs_op_name(DAFS_OP_APPEND_DIRECT), "APPEND_DIRECT");
    assert_string_equal(dafs_op_name(DAFS_OP_RELEASE_CRED), "RELEASE_CRED");
    assert_string_equal(dafs_op_name(DAFS_OP_COUNT), "UNKNOWN");
    assert_string_equal(dafs_op_name(0xffff), "UNKNOWN");
    for (uint16_t op = 0; op < DAFS_OP_LIMIT; op = dafs_op_next(op)) {
        assert_non_null(dafs_op_name(op));
        assert_string_not_equal(dafs_op_name(op), "UNKNOWN");
        for (uint16_t other = 0; other < op; other++)
            assert_string_not_equal(dafs_op_name(op), dafs_op_name(other));
    }
}

/* ---- batch I/O (issue 10) ---------------------------------------------- */

static void test_batch_limits(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    dafs_request q, d;
    sample_request(DAFS_OP_BATCH_SUBMIT, &q);
    int n = encode_req(buf, &q);
    assert_true(n > 0);
    /* nentries is at DAFS_HDR_SIZE + 16: above the protocol max, or more
     * entries than bytes, is refused before anything is used */
    store_le(buf + DAFS_HDR_SIZE + 16, DAFS_BATCH_MAX + 1, 4);
    assert_int_equal(dafs_decode_request(buf, (size_t)n, &d), -DAFS_ST_BADMSG);
    store_le(buf + DAFS_HDR_SIZE + 16, 5, 4);
    assert_int_equal(dafs_decode_request(buf, (size_t)n, &d), -DAFS_ST_BADMSG);
    store_le(buf + DAFS_HDR_SIZE + 16, 4, 4);
    assert_int_equal(dafs_decode_request(buf, (size_t)n, &d), 0);
    /* a decoded request (entries_wire) encodes again to the same bytes */
    uint8_t again[BUF_SIZE];
    assert_int_equal(encode_req(again, &d), n);
    assert_memory_equal(buf, again, (size_t)n);
    /* mode other than SYNC/ASYNC */
    store_le(buf + DAFS_HDR_SIZE, 2, 4);
    assert_int_equal(dafs_decode_request(buf, (size_t)n, &d), -DAFS_ST_BADMSG);
    /* encoder refuses an entry whose segment is shorter than its count */
    sample_request(DAFS_OP_BATCH_SUBMIT, &q);
    dafs_batch_entry e[1] = {q.u.batch.entries[0]};
    e[0].seg.len = e[0].count - 1;
    q.u.batch.entries = e;
    q.u.batch.nentries = 1;
    assert_int_equal(encode_req(buf, &q), -DAFS_ST_INVAL);
    q.u.batch.nentries = DAFS_BATCH_MAX + 1;
    assert_int_equal(encode_req(buf, &q), -DAFS_ST_INVAL);

    /* a reply claiming more completions than it carries */
    dafs_reply p, r;
    sample_reply(DAFS_OP_BATCH_SUBMIT, &p);
    n = encode_rep(buf, &p);
    assert_true(n > 0);
    store_le(buf + DAFS_HDR_SIZE, 4, 4);
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &r), -DAFS_ST_BADMSG);
    store_le(buf + DAFS_HDR_SIZE, 0xffffffffu, 4);
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &r), -DAFS_ST_BADMSG);
    store_le(buf + DAFS_HDR_SIZE, 3, 4);
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &r), 0);
    uint8_t again2[BUF_SIZE];
    assert_int_equal(encode_rep(again2, &r), n);
    assert_memory_equal(buf, again2, (size_t)n);
}

static void test_batch_notify(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    dafs_batch_cpl cpl[2] = {{.request_id = 7, .status = 0, .count = 4096, .offset = 8192},
                             {.request_id = 9, .status = DAFS_ST_STALE, .count = 0, .offset = 1}};
    dafs_notify m = {.hdr = {.opcode = DAFS_OP_BATCH_COMPLETION, .session_id = 5, .xid = 1,
                             .credits = 8},
                     .batch = {.ncompl = 2, .outstanding = 3, .cpl = cpl}};
    int n = dafs_encode_notify(buf, sizeof buf, &m);
    assert_int_equal(n, DAFS_HDR_SIZE + 8 + 2 * DAFS_BATCH_CPL_SIZE);
    dafs_notify d;
    assert_int_equal(dafs_decode_notify(buf, (size_t)n, &d), 0);
    assert_int_equal(d.hdr.flags, DAFS_HDR_NOTIFY);
    assert_int_equal(d.batch.ncompl, 2);
    assert_int_equal(d.batch.outstanding, 3);
    dafs_batch_cpl c;
    dafs_batch_cpl_get(&d.batch, 1, &c);
    assert_int_equal(c.request_id, 9);
    assert_int_equal(c.status, DAFS_ST_STALE);
    /* a notification is neither a request nor a reply */
    dafs_request q;
    dafs_reply r;
    assert_int_equal(dafs_decode_request(buf, (size_t)n, &q), -DAFS_ST_BADMSG);
    assert_int_equal(dafs_decode_reply(buf, (size_t)n, &r), -DAFS_ST_BADMSG);
    /* the incremental encoder makes the same bytes */
    uint8_t buf2[BUF_SIZE];
    dafs_batch_enc e;
    dafs_hdr h = {.opcode = DAFS_OP_BATCH_COMPLETION, .flags = DAFS_HDR_NOTIFY, .session_id = 5,
                  .xid = 1, .credits = 8};
    assert_int_equal(dafs_batch_enc_begin(&e, buf2, sizeof buf2, &h), 0);
    assert_int_equal(dafs_batch_enc_add(&e, &cpl[0]), 0);
    assert_int_equal(dafs_batch_enc_add(&e, &cpl[1]), 0);
    assert_int_equal(dafs_batch_enc_finish(&e, 3), n);
    assert_memory_equal(buf, buf2, (size_t)n);
    /* room for the fixed part and one completion only */
    assert_int_equal(dafs_batch_enc_begin(&e, buf2, DAFS_HDR_SIZE + 8 + DAFS_BATCH_CPL_SIZE, &h), 0);
    assert_int_equal(dafs_batch_enc_add(&e, &cpl[0]), 0);
    assert_int_equal(dafs_batch_enc_add(&e, &cpl[1]), -DAFS_ST_OVERFLOW);
    /* a negative status is never encoded */
    dafs_batch_cpl neg = {.status = -1};
    assert_int_equal(dafs_batch_enc_begin(&e, buf2, sizeof buf2, &h), 0);
    assert_int_equal(dafs_batch_enc_add(&e, &neg), -DAFS_ST_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_requests),
        cmocka_unit_test(test_roundtrip_replies),
        cmocka_unit_test(test_error_replies_are_header_only),
        cmocka_unit_test(test_golden_lookup),
        cmocka_unit_test(test_golden_against_raw),
        cmocka_unit_test(test_golden_digests),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_final_padding_optional),
        cmocka_unit_test(test_pad_bytes_ignored_on_read),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_oversized_length_field),
        cmocka_unit_test(test_fh_len_range),
        cmocka_unit_test(test_name_len_range),
        cmocka_unit_test(test_connect_ranges),
        cmocka_unit_test(test_direct_segments),
        cmocka_unit_test(test_inline_lengths),
        cmocka_unit_test(test_bool_fields),
        cmocka_unit_test(test_readdir_reply_validation),
        cmocka_unit_test(test_encode_request_inval),
        cmocka_unit_test(test_encode_reply_inval),
        cmocka_unit_test(test_encode_overflow),
        cmocka_unit_test(test_read_inline_in_place),
        cmocka_unit_test(test_golden_second_set_requests),
        cmocka_unit_test(test_hdr_cred),
        cmocka_unit_test(test_setattr_rules),
        cmocka_unit_test(test_rename_rules),
        cmocka_unit_test(test_link_mknod_symlink_rules),
        cmocka_unit_test(test_access_rules),
        cmocka_unit_test(test_cred_rules),
        cmocka_unit_test(test_ext_rules),
        cmocka_unit_test(test_cache_hint_rules),
        cmocka_unit_test(test_lock_rules),
        cmocka_unit_test(test_append_rules),
        cmocka_unit_test(test_stateid_fields),
        cmocka_unit_test(test_open_fh_flags),
        cmocka_unit_test(test_version_error_reply),
        cmocka_unit_test(test_readlink_reply_rules),
        cmocka_unit_test(test_readdir_encoder),
        cmocka_unit_test(test_readdir_encoder_edges),
        cmocka_unit_test(test_readdir_iter_handmade),
        cmocka_unit_test(test_op_names),
        cmocka_unit_test(test_batch_limits),
        cmocka_unit_test(test_batch_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
