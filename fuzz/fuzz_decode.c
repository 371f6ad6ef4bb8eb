/*
 * fuzz_decode.c — libFuzzer target for the wire decoder (src/common/proto.c).
 *
 * Every input is decoded as a request and as a reply.  Whatever decodes must
 * survive a round trip: re-encoding succeeds with the length the input had
 * (up to its optional final padding), decoding that again succeeds with
 * equal fields, and a second encoding is byte-identical to the first.
 * READDIR replies are also walked entry by entry, and a message of another
 * version must get a VERSION reply that decodes for that version.  Any mismatch aborts, so
 * libFuzzer records it as a crash; ASan/UBSan catch memory errors and UB.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "proto_samples.h"

static size_t round_up8(size_t n)
{
    return (n + 7) / 8 * 8;
}

static void require(int ok)
{
    if (!ok)
        abort();
}

static void walk_readdir(const dafs_readdir_rep *rep)
{
    dafs_readdir_iter it;
    dafs_dirent_wire ent;
    dafs_fh fh;
    dafs_attr attr;
    int has_attr;
    uint32_t seen = 0;
    dafs_readdir_iter_init(&it, rep);
    while (dafs_readdirplus_next(&it, &ent, &fh, &attr, &has_attr) == 1) {
        require(ent.name.len >= 1 && ent.name.len <= DAFS_NAME_MAX);
        require(!has_attr || (rep->plus && fh.len >= 1 && fh.len <= DAFS_FH_MAX));
        require(ent.name.ptr >= rep->entries.ptr &&
                ent.name.ptr + ent.name.len <= rep->entries.ptr + rep->entries.len);
        seen++;
    }
    require(seen == rep->nentries);
}

static void check_request(const dafs_request *q, size_t size)
{
    size_t cap = round_up8(size);
    uint8_t *first = malloc(cap);
    uint8_t *second = malloc(cap);
    require(first != NULL && second != NULL);
    int n = dafs_encode_request(first, cap, q);
    require(n > 0 && (size_t)n == cap);
    dafs_request again;
    require(dafs_decode_request(first, (size_t)n, &again) == 0);
    require(requests_equal(q, &again));
    require(dafs_encode_request(second, cap, &again) == n);
    require(memcmp(first, second, (size_t)n) == 0);
    /* one byte less room must be refused, not overrun */
    require(dafs_encode_request(second, cap - 1, q) == -DAFS_ST_OVERFLOW);
    free(first);
    free(second);
}

static void check_reply(const dafs_reply *p, size_t size)
{
    size_t cap = round_up8(size);
    uint8_t *first = malloc(cap);
    uint8_t *second = malloc(cap);
    require(first != NULL && second != NULL);
    int n = dafs_encode_reply(first, cap, p);
    require(n > 0 && (size_t)n == cap);
    dafs_reply again;
    require(dafs_decode_reply(first, (size_t)n, &again) == 0);
    require(replies_equal(p, &again));
    require(dafs_encode_reply(second, cap, &again) == n);
    require(memcmp(first, second, (size_t)n) == 0);
    require(dafs_encode_reply(second, cap - 1, p) == -DAFS_ST_OVERFLOW);
    if (p->hdr.status == DAFS_ST_OK &&
        (p->hdr.opcode == DAFS_OP_READDIR || p->hdr.opcode == DAFS_OP_READDIRPLUS)) {
        walk_readdir(&p->u.readdir);
        walk_readdir(&again.u.readdir);
    }
    free(first);
    free(second);
}

/* Batch I/O: a NOTIFY message (BATCH_COMPLETION) round-trips too, and its
 * completions can all be read. */
static void check_notify(const uint8_t *data, size_t size)
{
    dafs_notify m;
    int rc = dafs_decode_notify(data, size, &m);
    require(rc == 0 || rc == -DAFS_ST_BADMSG || rc == -DAFS_ST_VERSION || rc == -DAFS_ST_BADOP);
    if (rc != 0)
        return;
    require((size_t)m.batch.ncompl * DAFS_BATCH_CPL_SIZE == m.batch.cpl_wire.len);
    for (uint32_t i = 0; i < m.batch.ncompl; i++) {
        dafs_batch_cpl c;
        dafs_batch_cpl_get(&m.batch, i, &c);
        require(c.status >= 0);
    }
    size_t cap = round_up8(size);
    uint8_t *buf = malloc(cap);
    require(buf != NULL);
    require(dafs_encode_notify(buf, cap, &m) == (int)cap);
    dafs_notify again;
    require(dafs_decode_notify(buf, cap, &again) == 0 && again.batch.ncompl == m.batch.ncompl);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dafs_hdr h;
    dafs_request q;
    dafs_reply p;
    int hdr_rc = dafs_decode_hdr(data, size, &h);
    int req_rc = dafs_decode_request(data, size, &q);
    int rep_rc = dafs_decode_reply(data, size, &p);
    require(hdr_rc == 0 || hdr_rc == -DAFS_ST_BADMSG || hdr_rc == -DAFS_ST_VERSION);
    require(req_rc == 0 || req_rc == -DAFS_ST_BADMSG || req_rc == -DAFS_ST_VERSION ||
            req_rc == -DAFS_ST_BADOP);
    require(rep_rc == 0 || rep_rc == -DAFS_ST_BADMSG || rep_rc == -DAFS_ST_VERSION ||
            rep_rc == -DAFS_ST_BADOP);
    require(!(req_rc == 0 && rep_rc == 0)); /* the reply flag tells them apart */
    if (req_rc == 0 || rep_rc == 0)
        require(hdr_rc == 0);
    if (hdr_rc == -DAFS_ST_VERSION) { /* the server's answer must decode for that peer */
        uint8_t err[DAFS_HDR_SIZE];
        int n = dafs_encode_version_error(err, sizeof err, &h, 1);
        require(n == (h.version == 1 ? DAFS_HDR_V1_SIZE : DAFS_HDR_SIZE));
        dafs_reply e;
        int rc = dafs_decode_reply(err, (size_t)n, &e);
        require(h.version == 1 ? rc == -DAFS_ST_VERSION : rc == 0);
        require(e.hdr.status == DAFS_ST_VERSION && e.hdr.xid == h.xid);
    }
    if (req_rc == 0)
        check_request(&q, size);
    if (rep_rc == 0)
        check_reply(&p, size);
    check_notify(data, size);
    return 0;
}
