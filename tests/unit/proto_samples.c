/*
 * proto_samples.c — sample messages for every opcode and equality checks,
 * see proto_samples.h.  The READDIR entries are laid out by hand here (not
 * by the codec) so that the codec's readdir decoder is checked against an
 * independent writer.
 */
#include "proto_samples.h"

#include <string.h>

static const uint8_t name_bytes[] = "a-file.name";
static const uint8_t client_id_bytes[] = "client-42@host";
static const uint8_t ep_name_bytes[] = "\x02\x00\x30\x39\x7f\x00\x00\x01 endpoint-addr";
static const uint8_t data_bytes[] = "inline payload, 37 bytes of it here!";
static const uint8_t name2_bytes[] = "other-name";
static const uint8_t target_bytes[] = "../some/where/else.txt";

static const uint32_t sample_groups[41] = {4, 24, 44, 64, 84, 100, 101, 102, 103, 104,
                                           105, 106, 107, 108, 109, 110, 111, 112, 113, 114,
                                           115, 116, 117, 118, 119, 120, 121, 122, 123, 124,
                                           125, 126, 127, 128, 129, 130, 131, 132, 133, 134,
                                           0xfffffffeu};
static const uint8_t xattr_name_bytes[] = "user.sample-attribute";
static const uint8_t xattr_value_bytes[] = "a value\0with a NUL";
static const uint8_t xattr_list_bytes[] = "user.a\0security.selinux\0user.sample-attribute";

static dafs_bytes make_bytes(const uint8_t *p, size_t n)
{
    dafs_bytes b = {.ptr = p, .len = (uint32_t)n};
    return b;
}

static void sample_fh(dafs_fh *fh, uint8_t len, uint8_t seed)
{
    memset(fh, 0, sizeof *fh);
    fh->len = len;
    for (uint8_t i = 0; i < len; i++)
        fh->data[i] = (uint8_t)(seed + i * 7);
}

static void sample_segs(dafs_seg *segs, uint16_t n)
{
    for (uint16_t i = 0; i < n; i++) {
        segs[i].addr = 0x7f0000001000ull + i * 0x10000ull;
        segs[i].key = 0xabcd0000ull + i;
        segs[i].len = 4096;
    }
}

static void sample_attr(dafs_attr *a)
{
    a->mode = 0100644;
    a->nlink = 2;
    a->uid = 1000;
    a->gid = 1001;
    a->size = 0x123456789ull;
    a->used = 0x123457000ull;
    a->fileid = 0xfeedfacecafebeefull;
    a->rdev = 0x0801;
    a->atime_sec = 1700000000;
    a->mtime_sec = -5; /* before the epoch: signed on the wire */
    a->ctime_sec = 1700000002;
    a->atime_nsec = 1;
    a->mtime_nsec = 999999999;
    a->ctime_nsec = 500;
}

static void sample_hdr(dafs_hdr *h, uint16_t op)
{
    h->opcode = op;
    h->session_id = op == DAFS_OP_CONNECT ? 0 : 0x1122334455667788ull;
    h->xid = 0x0102030405060708ull + op;
    h->credits = 0;
    h->slot = 0x51 + op; /* reserved: any value passes */
    h->seq = 0x5e000000u + op;
}

/* The extra ops (70..79). */
static void sample_ext_request_body(uint16_t op, dafs_request *q)
{
    switch (op) {
    case DAFS_OP_FALLOCATE:
        sample_fh(&q->u.fallocate.fh, 29, 0x90);
        q->u.fallocate.mode = DAFS_FALLOC_PUNCH_HOLE | DAFS_FALLOC_KEEP_SIZE;
        q->u.fallocate.offset = 0x100000001ull;
        q->u.fallocate.length = 0x20000;
        break;
    case DAFS_OP_COPY_RANGE:
        sample_fh(&q->u.copy.src, 31, 0x91);
        q->u.copy.src_offset = 4096;
        sample_fh(&q->u.copy.dst, 13, 0x92);
        q->u.copy.dst_offset = 0x7fffffffull;
        q->u.copy.length = 0x100000000ull;
        break;
    case DAFS_OP_SEEK:
        sample_fh(&q->u.seek.fh, 7, 0x93);
        q->u.seek.offset = 12345;
        q->u.seek.what = DAFS_SEEK_HOLE;
        break;
    case DAFS_OP_GETXATTR:
    case DAFS_OP_SETXATTR:
    case DAFS_OP_LISTXATTR:
    case DAFS_OP_REMOVEXATTR:
        sample_fh(&q->u.xattr.fh, 21, 0x94);
        if (op != DAFS_OP_LISTXATTR)
            q->u.xattr.name = make_bytes(xattr_name_bytes, sizeof xattr_name_bytes - 1);
        if (op == DAFS_OP_SETXATTR) {
            q->u.xattr.value = make_bytes(xattr_value_bytes, sizeof xattr_value_bytes - 1);
            q->u.xattr.flags = DAFS_XATTR_CREATE;
        }
        if (op == DAFS_OP_GETXATTR || op == DAFS_OP_LISTXATTR)
            q->u.xattr.size = op == DAFS_OP_GETXATTR ? 300 : DAFS_XATTR_LIST_MAX;
        break;
    case DAFS_OP_READDIRPLUS:
        sample_fh(&q->u.readdir.dir, 19, 0x95);
        q->u.readdir.cookie = 77;
        q->u.readdir.maxcount = 8000;
        break;
    case DAFS_OP_CACHE_HINT:
        sample_fh(&q->u.cache_hint.fh, 23, 0x96);
        q->u.cache_hint.stateid = 0xfedcba9876543210ull;
        q->u.cache_hint.offset = 0x100000000ull;
        q->u.cache_hint.len = 1u << 20;
        q->u.cache_hint.hint = DAFS_WIRE_HINT_DONTNEED;
        break;
    default:
        break;
    }
}

/* SETATTR .. RELEASE_CRED requests (the second set of ops). */
static void sample_second_set_request_body(uint16_t op, dafs_request *q)
{
    switch (op) {
    case DAFS_OP_READLINK:
    case DAFS_OP_LOOKUPP:
        sample_fh(&q->u.fh.fh, 33, 0x18);
        break;
    case DAFS_OP_SETATTR:
        sample_fh(&q->u.setattr.fh, 25, 0x80);
        q->u.setattr.valid = DAFS_SET_ALL;
        q->u.setattr.mode = 04755;
        q->u.setattr.uid = 2000;
        q->u.setattr.gid = 2001;
        q->u.setattr.size = 0x100000001ull;
        q->u.setattr.atime_sec = 1600000000;
        q->u.setattr.mtime_sec = -1; /* signed on the wire */
        q->u.setattr.atime_nsec = 999999999;
        q->u.setattr.mtime_nsec = 123;
        q->u.setattr.stateid = 0x5a5a000000010002ull;
        break;
    case DAFS_OP_RENAME:
        sample_fh(&q->u.rename.src_dir, 12, 0x90);
        q->u.rename.src_name = make_bytes(name_bytes, sizeof name_bytes - 1);
        sample_fh(&q->u.rename.dst_dir, DAFS_FH_MAX, 0xa0);
        q->u.rename.dst_name = make_bytes(name2_bytes, sizeof name2_bytes - 1);
        q->u.rename.flags = DAFS_RENAME_NOREPLACE;
        break;
    case DAFS_OP_LINK:
        sample_fh(&q->u.link.fh, 7, 0xb0);
        sample_fh(&q->u.link.dir, 16, 0xb8);
        q->u.link.name = make_bytes(name2_bytes, sizeof name2_bytes - 1);
        break;
    case DAFS_OP_SYMLINK:
        sample_fh(&q->u.symlink.dir, 10, 0xc0);
        q->u.symlink.name = make_bytes(name_bytes, sizeof name_bytes - 1);
        q->u.symlink.target = make_bytes(target_bytes, sizeof target_bytes - 1);
        break;
    case DAFS_OP_MKNOD:
        sample_fh(&q->u.mknod.dir, 5, 0xd0);
        q->u.mknod.name = make_bytes(name2_bytes, sizeof name2_bytes - 1);
        q->u.mknod.mode = 0060640; /* block device */
        q->u.mknod.rdev = 0x0803;
        break;
    case DAFS_OP_ACCESS:
        sample_fh(&q->u.access.fh, 2, 0xe0);
        q->u.access.mask = DAFS_ACCESS_READ | DAFS_ACCESS_EXEC;
        break;
    case DAFS_OP_APPEND_INLINE:
        sample_fh(&q->u.write.fh, 31, 0xe8);
        q->u.write.stable = DAFS_FILE_SYNC;
        q->u.write.hints = DAFS_WIRE_HINT_SEQUENTIAL;
        q->u.write.data = make_bytes(data_bytes, sizeof data_bytes - 1);
        q->u.write.count = q->u.write.data.len;
        q->u.write.stateid = 0x77;
        break;
    case DAFS_OP_APPEND_DIRECT:
        sample_fh(&q->u.write.fh, 8, 0xf0);
        q->u.write.stable = DAFS_UNSTABLE;
        q->u.write.hints = DAFS_WIRE_HINT_DONTNEED;
        q->u.write.count = 2 * 4096 - 100;
        q->u.write.nsegs = 2;
        sample_segs(q->u.write.segs, 2);
        break;
    case DAFS_OP_REGISTER_CRED:
        q->u.cred.uid = 1000;
        q->u.cred.gid = 100;
        q->u.cred.ngroups = 41; /* more than the old 32; odd: ends off an 8-byte boundary */
        q->u.cred.groups = sample_groups;
        break;
    case DAFS_OP_RELEASE_CRED:
        q->u.cred_id.cred_id = 0x2a;
        break;
    case DAFS_OP_OPEN_FH:
        sample_fh(&q->u.open_fh.fh, 19, 0x14);
        q->u.open_fh.flags = DAFS_OPEN_RDWR | DAFS_OPEN_TRUNC;
        break;
    default: /* NULL, DISCONNECT, GETROOT: no body */
        sample_ext_request_body(op, q);
        break;
    }
}

static void sample_request_body(uint16_t op, dafs_request *q)
{
    switch (op) {
    case DAFS_OP_CONNECT:
        q->u.connect.client_id = make_bytes(client_id_bytes, sizeof client_id_bytes - 1);
        q->u.connect.boot_verifier = 0x5555aaaa5555aaaaull;
        q->u.connect.fence_id = 77;
        q->u.connect.max_request = 65536;
        q->u.connect.max_response = 131072;
        q->u.connect.inline_max = 8192;
        q->u.connect.max_credits = 64;
        q->u.connect.ep_name = make_bytes(ep_name_bytes, sizeof ep_name_bytes - 1);
        break;
    case DAFS_OP_GETATTR:
    case DAFS_OP_STATFS:
        sample_fh(&q->u.fh.fh, 33, 0x10);
        break;
    case DAFS_OP_CLOSE:
        sample_fh(&q->u.close.fh, 33, 0x10);
        q->u.close.stateid = 0xc105e00000000003ull;
        break;
    case DAFS_OP_LOOKUP:
    case DAFS_OP_OPEN:
    case DAFS_OP_REMOVE:
    case DAFS_OP_MKDIR:
    case DAFS_OP_RMDIR:
        sample_fh(&q->u.dirop.dir, 20, 0x20);
        q->u.dirop.name = make_bytes(name_bytes, sizeof name_bytes - 1);
        q->u.dirop.flags = op == DAFS_OP_OPEN ? (DAFS_OPEN_RDWR | DAFS_OPEN_CREAT) : 0;
        q->u.dirop.mode = op == DAFS_OP_OPEN || op == DAFS_OP_MKDIR ? 0755 : 0;
        break;
    case DAFS_OP_READ_INLINE:
    case DAFS_OP_READ_DIRECT:
        sample_fh(&q->u.read.fh, DAFS_FH_MAX, 0x30);
        q->u.read.offset = 0x100000000ull;
        q->u.read.count = op == DAFS_OP_READ_DIRECT ? 3 * 4096 : 512;
        q->u.read.hints = DAFS_WIRE_HINT_SEQUENTIAL;
        q->u.read.stateid = 0x1000000000000001ull + op;
        if (op == DAFS_OP_READ_DIRECT) {
            q->u.read.nsegs = 3;
            sample_segs(q->u.read.segs, 3);
        }
        break;
    case DAFS_OP_WRITE_INLINE:
    case DAFS_OP_WRITE_DIRECT:
        sample_fh(&q->u.write.fh, 1, 0x40);
        q->u.write.offset = 4096;
        q->u.write.stable = DAFS_DATA_SYNC;
        q->u.write.hints = DAFS_WIRE_HINT_RANDOM;
        q->u.write.stateid = 0x2000000000000002ull + op;
        if (op == DAFS_OP_WRITE_DIRECT) {
            q->u.write.count = DAFS_SEG_MAX * 4096;
            q->u.write.nsegs = DAFS_SEG_MAX;
            sample_segs(q->u.write.segs, DAFS_SEG_MAX);
        } else {
            q->u.write.data = make_bytes(data_bytes, sizeof data_bytes - 1);
            q->u.write.count = q->u.write.data.len;
        }
        break;
    case DAFS_OP_COMMIT:
        sample_fh(&q->u.commit.fh, 9, 0x50);
        q->u.commit.offset = 8192;
        q->u.commit.count = 0;
        q->u.commit.stable = DAFS_FILE_SYNC;
        q->u.commit.stateid = 0xffffffffffffffffull;
        break;
    case DAFS_OP_READDIR:
        sample_fh(&q->u.readdir.dir, 17, 0x60);
        q->u.readdir.cookie = 0x8000000000000001ull;
        q->u.readdir.maxcount = 4000;
        break;
    default:
        sample_second_set_request_body(op, q);
        break;
    }
}

/* ==== batch I/O (issue 10): BATCH_SUBMIT, HURRY_UP ==== */

static bool fh_equal(const dafs_fh *a, const dafs_fh *b);
static bool bytes_equal(const dafs_bytes *a, const dafs_bytes *b);

static const uint8_t batch_inline[] = "inline write data";
static dafs_batch_entry batch_entries[4];
static dafs_batch_cpl batch_cpls[3];

static bool is_batch_op(uint16_t op)
{
    return op == DAFS_OP_BATCH_SUBMIT || op == DAFS_OP_HURRY_UP;
}

static void sample_batch_request(uint16_t op, dafs_request *q)
{
    if (op == DAFS_OP_HURRY_UP) {
        q->u.hurry.bc_credits = 17;
        return;
    }
    for (unsigned i = 0; i < 4; i++) {
        dafs_batch_entry *e = &batch_entries[i];
        memset(e, 0, sizeof *e);
        e->request_id = 0x1000 + i;
        e->op = (uint16_t)(DAFS_BATCH_READ + i);
        e->hint = i;
        e->stable = i == 3 ? DAFS_FILE_SYNC : DAFS_UNSTABLE;
        e->count = 4096u * (i + 1);
        sample_fh(&e->fh, (uint8_t)(20 + i), (uint8_t)(i * 3));
        e->stateid = 0x77 + i;
        e->offset = i == 2 ? 0 : 8192u * i;
        if (i == 1) { /* WRITE inline */
            e->flags = DAFS_BENT_INLINE;
            e->count = sizeof batch_inline - 1;
            e->data = make_bytes(batch_inline, e->count);
        } else if (i != 3) {
            sample_segs(&e->seg, 1);
            e->seg.len = e->count;
        }
    }
    q->u.batch = (dafs_batch_req){.mode = DAFS_BATCH_ASYNC, .usec_window = 500,
                                  .num_completions = 3, .bc_credits = 9, .nentries = 4,
                                  .entries = batch_entries};
}

static void sample_batch_reply(uint16_t op, dafs_reply *r)
{
    if (op != DAFS_OP_BATCH_SUBMIT)
        return;
    for (unsigned i = 0; i < 3; i++)
        batch_cpls[i] = (dafs_batch_cpl){.request_id = 0x1000 + i, .status = i == 1 ? 2 : 0,
                                         .count = 100u * i, .offset = 4096u * i};
    r->u.batch = (dafs_batch_rep){.ncompl = 3, .outstanding = 5, .cpl = batch_cpls};
}

/* The i-th entry of either form (encoded: entries, decoded: entries_wire). */
typedef struct bent_cursor {
    const dafs_batch_req *q;
    dafs_bytes it;
    uint32_t i;
} bent_cursor;

static bool bent_next(bent_cursor *c, dafs_batch_entry *e)
{
    if (c->q->entries != NULL) {
        if (c->i >= c->q->nentries)
            return false;
        *e = c->q->entries[c->i++];
        return true;
    }
    return dafs_batch_next(&c->it, e) == 1;
}

static bool batch_request_equal(const dafs_request *a, const dafs_request *b)
{
    if (a->hdr.opcode == DAFS_OP_HURRY_UP)
        return a->u.hurry.bc_credits == b->u.hurry.bc_credits;
    const dafs_batch_req *x = &a->u.batch, *y = &b->u.batch;
    if (x->mode != y->mode || x->usec_window != y->usec_window ||
        x->num_completions != y->num_completions || x->bc_credits != y->bc_credits ||
        x->nentries != y->nentries)
        return false;
    bent_cursor cx = {.q = x, .it = x->entries_wire}, cy = {.q = y, .it = y->entries_wire};
    dafs_batch_entry e, w;
    for (uint32_t i = 0; i < x->nentries; i++) {
        if (!bent_next(&cx, &w) || !bent_next(&cy, &e))
            return false;
        if (e.request_id != w.request_id || e.op != w.op || e.flags != w.flags ||
            e.hint != w.hint || e.stable != w.stable || e.count != w.count ||
            !fh_equal(&e.fh, &w.fh) || e.stateid != w.stateid || e.offset != w.offset ||
            e.seg.addr != w.seg.addr || e.seg.key != w.seg.key || e.seg.len != w.seg.len ||
            !bytes_equal(&e.data, &w.data))
            return false;
    }
    return !bent_next(&cx, &w) && !bent_next(&cy, &e);
}

static void cpl_at(const dafs_batch_rep *r, uint32_t i, dafs_batch_cpl *c)
{
    if (r->cpl != NULL)
        *c = r->cpl[i];
    else
        dafs_batch_cpl_get(r, i, c);
}

static bool batch_reply_equal(const dafs_reply *a, const dafs_reply *b)
{
    if (a->hdr.opcode == DAFS_OP_HURRY_UP)
        return true;
    const dafs_batch_rep *x = &a->u.batch, *y = &b->u.batch;
    if (x->ncompl != y->ncompl || x->outstanding != y->outstanding)
        return false;
    for (uint32_t i = 0; i < x->ncompl; i++) {
        dafs_batch_cpl c, d;
        cpl_at(x, i, &c);
        cpl_at(y, i, &d);
        if (c.request_id != d.request_id || c.status != d.status || c.count != d.count ||
            c.offset != d.offset)
            return false;
    }
    return true;
}
/* ==== end of batch I/O ==== */

/* ==== locks (issue 12): LOCK, LOCKT, LOCKU ==== */

static bool is_lock_op(uint16_t op)
{
    return op == DAFS_OP_LOCK || op == DAFS_OP_LOCKT || op == DAFS_OP_LOCKU ||
           op == DAFS_OP_LOCK_CANCEL || op == DAFS_OP_LOCK_ABORT;
}

static void sample_lock_request(uint16_t op, dafs_request *q)
{
    dafs_lock_req *l = &q->u.lock;
    sample_fh(&l->fh, 33, (uint8_t)op);
    l->stateid = 0x1234567800000009ull;
    l->owner = 0xfedcba9876543210ull;
    l->offset = 4096;
    l->length = op == DAFS_OP_LOCKU ? UINT64_MAX : 100;
    l->type = op == DAFS_OP_LOCK || op == DAFS_OP_LOCKT ? DAFS_WIRE_LOCK_EXCL : 0;
    l->flags = op == DAFS_OP_LOCK ? DAFS_WIRE_LOCK_PERSIST | DAFS_WIRE_LOCK_REPAIR : 0;
}

static void sample_lock_reply(uint16_t op, dafs_reply *r)
{
    if (op != DAFS_OP_LOCKT)
        return;
    r->u.lockt = (dafs_lockt_rep){.found = 1, .type = DAFS_WIRE_LOCK_SHARED,
                                  .flags = DAFS_WIRE_LOCK_PERSIST,
                                  .state = DAFS_LOCK_STATE_BROKEN, .session = 0x5e55,
                                  .owner = 77, .offset = 10, .length = UINT64_MAX};
}

static bool lock_request_equal(const dafs_request *a, const dafs_request *b)
{
    const dafs_lock_req *x = &a->u.lock, *y = &b->u.lock;
    return fh_equal(&x->fh, &y->fh) && x->stateid == y->stateid && x->owner == y->owner &&
           x->offset == y->offset && x->length == y->length && x->type == y->type &&
           x->flags == y->flags;
}

static bool lock_reply_equal(const dafs_reply *a, const dafs_reply *b)
{
    if (a->hdr.opcode != DAFS_OP_LOCKT)
        return true;
    const dafs_lockt_rep *x = &a->u.lockt, *y = &b->u.lockt;
    return x->found == y->found && x->type == y->type && x->flags == y->flags &&
           x->state == y->state && x->session == y->session && x->owner == y->owner &&
           x->offset == y->offset && x->length == y->length;
}
/* ==== end of locks ==== */

void sample_request(uint16_t op, dafs_request *q)
{
    memset(q, 0, sizeof *q);
    sample_hdr(&q->hdr, op);
    q->hdr.cred = 0x33 + op; /* any value is valid in a request */
    if (is_batch_op(op))
        sample_batch_request(op, q);
    else if (is_lock_op(op))
        sample_lock_request(op, q);
    else
        sample_request_body(op, q);
}

/* ---- READDIR entries, written by hand ---------------------------------- */

static uint8_t entries_buf[256];

static size_t put_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return n;
}

static size_t put_entry(uint8_t *p, uint64_t fileid, uint64_t cookie, uint32_t type,
                        const char *name)
{
    size_t len = strlen(name);
    size_t pos = 0;
    pos += put_le(p + pos, fileid, 8);
    pos += put_le(p + pos, cookie, 8);
    pos += put_le(p + pos, type, 4);
    pos += put_le(p + pos, len, 4);
    memcpy(p + pos, name, len);
    pos += len;
    while (pos % 8 != 0)
        p[pos++] = 0;
    return pos;
}

static void sample_readdir(dafs_readdir_rep *d)
{
    size_t pos = 0;
    memset(entries_buf, 0, sizeof entries_buf);
    pos += put_entry(entries_buf + pos, 11, 1, 0040000, ".");
    pos += put_entry(entries_buf + pos, 12, 2, 0100000, "12345678"); /* no padding */
    pos += put_entry(entries_buf + pos, 13, 0xffffffffffffffffull, 0, "last-one");
    d->eof = 1;
    d->nentries = 3;
    d->entries = make_bytes(entries_buf, pos);
}

/* READDIRPLUS entries, by hand too: an entry without attributes, one with. */
static uint8_t plus_buf[512];

static size_t put_plus_attrs(uint8_t *p, uint8_t fh_len)
{
    size_t pos = 0;
    pos += put_le(p + pos, DAFS_PLUS_ATTR | DAFS_PLUS_NO_XATTRS, 1); /* flags */
    pos += put_le(p + pos, fh_len, 1);
    for (uint8_t i = 0; i < fh_len; i++)
        p[pos++] = (uint8_t)(0xa0 + i);
    while (pos % 8 != 0)
        p[pos++] = 0;
    pos += put_le(p + pos, 0100755, 4); /* mode */
    pos += put_le(p + pos, 3, 4);       /* nlink */
    pos += put_le(p + pos, 1000, 4);    /* uid */
    pos += put_le(p + pos, 1001, 4);    /* gid */
    for (uint64_t v = 1; v <= 7; v++)   /* size used fileid rdev atime mtime ctime */
        pos += put_le(p + pos, v * 1000, 8);
    for (uint64_t v = 1; v <= 3; v++)   /* nsecs */
        pos += put_le(p + pos, v, 4);
    while (pos % 8 != 0)
        p[pos++] = 0;
    return pos;
}

static void sample_readdirplus(dafs_readdir_rep *d)
{
    size_t pos = 0;
    memset(plus_buf, 0, sizeof plus_buf);
    pos += put_entry(plus_buf + pos, 21, 1, 0040000, "..");
    plus_buf[pos] = 0; /* has_attr 0, then padding */
    pos += 8;
    pos += put_entry(plus_buf + pos, 22, 2, 0100000, "with-attrs");
    pos += put_plus_attrs(plus_buf + pos, 9);
    d->eof = 0;
    d->nentries = 2;
    d->plus = 1;
    d->entries = make_bytes(plus_buf, pos);
}

static void sample_ext_reply_body(uint16_t op, dafs_reply *r)
{
    switch (op) {
    case DAFS_OP_FALLOCATE:
        sample_attr(&r->u.attr.attr);
        break;
    case DAFS_OP_COPY_RANGE:
        r->u.u64.value = 0x12345678ull;
        break;
    case DAFS_OP_SEEK:
        r->u.u64.value = 0x7000000000000000ull;
        break;
    case DAFS_OP_GETXATTR:
        r->u.xattr.data = make_bytes(xattr_value_bytes, sizeof xattr_value_bytes - 1);
        r->u.xattr.size = r->u.xattr.data.len;
        break;
    case DAFS_OP_LISTXATTR:
        r->u.xattr.data = make_bytes(xattr_list_bytes, sizeof xattr_list_bytes);
        r->u.xattr.size = r->u.xattr.data.len;
        break;
    case DAFS_OP_READDIRPLUS:
        sample_readdirplus(&r->u.readdir);
        break;
    default: /* SETXATTR, REMOVEXATTR: no body */
        break;
    }
}

static void sample_second_set_reply_body(uint16_t op, dafs_reply *r)
{
    switch (op) {
    case DAFS_OP_SETATTR:
    case DAFS_OP_LINK:
        sample_attr(&r->u.attr.attr);
        break;
    case DAFS_OP_SYMLINK:
    case DAFS_OP_MKNOD:
    case DAFS_OP_LOOKUPP:
        sample_fh(&r->u.fh_attr.fh, 27, 0x78);
        sample_attr(&r->u.fh_attr.attr);
        break;
    case DAFS_OP_READLINK:
        r->u.readlink.target = make_bytes(target_bytes, sizeof target_bytes - 1);
        break;
    case DAFS_OP_APPEND_INLINE:
    case DAFS_OP_APPEND_DIRECT:
        r->u.write.count = 37;
        r->u.write.committed = DAFS_DATA_SYNC;
        r->u.write.verifier = 0x0123456789abcdefull;
        r->u.write.offset = 0x10000000123ull;
        break;
    case DAFS_OP_REGISTER_CRED:
        r->u.cred.cred_id = 0x2a;
        break;
    case DAFS_OP_OPEN_FH:
        sample_fh(&r->u.fh_attr.fh, 19, 0x14);
        sample_attr(&r->u.fh_attr.attr);
        r->u.fh_attr.stateid = 0x0000000700000005ull;
        break;
    default: /* RENAME, ACCESS, RELEASE_CRED: no body */
        sample_ext_reply_body(op, r);
        break;
    }
}

static void sample_reply_body(uint16_t op, dafs_reply *r)
{
    switch (op) {
    case DAFS_OP_CONNECT:
        r->u.connect.server_instance = 0x0123456789abcdefull;
        r->u.connect.max_request = 65536;
        r->u.connect.max_response = 131072;
        r->u.connect.inline_max = 8192;
        r->u.connect.max_io = 1u << 20;
        r->u.connect.lease_ms = 30000;
        r->u.connect.max_segs = DAFS_SEG_MAX;
        break;
    case DAFS_OP_GETROOT:
    case DAFS_OP_LOOKUP:
    case DAFS_OP_OPEN:
    case DAFS_OP_MKDIR:
        sample_fh(&r->u.fh_attr.fh, 40, 0x70);
        sample_attr(&r->u.fh_attr.attr);
        r->u.fh_attr.created = op == DAFS_OP_OPEN;
        r->u.fh_attr.stateid = op == DAFS_OP_OPEN ? 0x0000002a00000001ull : 0;
        break;
    case DAFS_OP_GETATTR:
        sample_attr(&r->u.attr.attr);
        break;
    case DAFS_OP_READ_INLINE:
        r->u.read.data = make_bytes(data_bytes, sizeof data_bytes - 1);
        r->u.read.count = r->u.read.data.len;
        r->u.read.eof = 1;
        break;
    case DAFS_OP_READ_DIRECT:
        r->u.read.count = 12288;
        r->u.read.eof = 0;
        break;
    case DAFS_OP_WRITE_INLINE:
    case DAFS_OP_WRITE_DIRECT:
        r->u.write.count = 4096;
        r->u.write.committed = DAFS_FILE_SYNC;
        r->u.write.verifier = 0x0123456789abcdefull;
        break;
    case DAFS_OP_COMMIT:
        r->u.commit.verifier = 0x0123456789abcdefull;
        break;
    case DAFS_OP_READDIR:
        sample_readdir(&r->u.readdir);
        break;
    case DAFS_OP_STATFS:
        r->u.statfs = (dafs_statfs_rep){.bsize = 4096,
                                        .frsize = 4096,
                                        .blocks = 1000000,
                                        .bfree = 500000,
                                        .bavail = 400000,
                                        .files = 65536,
                                        .ffree = 60000,
                                        .namemax = 255};
        break;
    default:
        sample_second_set_reply_body(op, r);
        break;
    }
}

void sample_reply(uint16_t op, dafs_reply *r)
{
    memset(r, 0, sizeof *r);
    sample_hdr(&r->hdr, op);
    r->hdr.flags = DAFS_HDR_REPLY;
    r->hdr.credits = 32;
    if (is_batch_op(op))
        sample_batch_reply(op, r);
    else if (is_lock_op(op))
        sample_lock_reply(op, r);
    else
        sample_reply_body(op, r);
}

/* ---- equality ---------------------------------------------------------- */

static bool hdr_equal(const dafs_hdr *a, const dafs_hdr *b)
{
    return a->opcode == b->opcode && a->flags == b->flags && a->credits == b->credits &&
           a->session_id == b->session_id && a->xid == b->xid && a->status == b->status &&
           a->cred == b->cred && a->slot == b->slot && a->seq == b->seq;
}

static bool fh_equal(const dafs_fh *a, const dafs_fh *b)
{
    return a->len == b->len && a->len <= DAFS_FH_MAX && memcmp(a->data, b->data, a->len) == 0;
}

static bool bytes_equal(const dafs_bytes *a, const dafs_bytes *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
}

static bool segs_equal(uint16_t n, const dafs_seg *a, const dafs_seg *b)
{
    for (uint16_t i = 0; i < n && i < DAFS_SEG_MAX; i++)
        if (a[i].addr != b[i].addr || a[i].key != b[i].key || a[i].len != b[i].len)
            return false;
    return true;
}

static bool attr_equal(const dafs_attr *a, const dafs_attr *b)
{
    return a->mode == b->mode && a->nlink == b->nlink && a->uid == b->uid && a->gid == b->gid &&
           a->size == b->size && a->used == b->used && a->fileid == b->fileid &&
           a->rdev == b->rdev && a->atime_sec == b->atime_sec && a->mtime_sec == b->mtime_sec &&
           a->ctime_sec == b->ctime_sec && a->atime_nsec == b->atime_nsec &&
           a->mtime_nsec == b->mtime_nsec && a->ctime_nsec == b->ctime_nsec;
}

static bool read_req_equal(const dafs_read_req *a, const dafs_read_req *b)
{
    return fh_equal(&a->fh, &b->fh) && a->stateid == b->stateid && a->offset == b->offset &&
           a->count == b->count && a->hints == b->hints && a->nsegs == b->nsegs && segs_equal(a->nsegs, a->segs, b->segs);
}

static bool write_req_equal(const dafs_write_req *a, const dafs_write_req *b)
{
    return fh_equal(&a->fh, &b->fh) && a->stateid == b->stateid && a->offset == b->offset &&
           a->count == b->count && a->stable == b->stable && a->hints == b->hints && bytes_equal(&a->data, &b->data) &&
           a->nsegs == b->nsegs && segs_equal(a->nsegs, a->segs, b->segs);
}

static bool setattr_equal(const dafs_setattr_req *a, const dafs_setattr_req *b)
{
    return fh_equal(&a->fh, &b->fh) && a->stateid == b->stateid && a->valid == b->valid &&
           a->mode == b->mode &&
           a->uid == b->uid && a->gid == b->gid && a->size == b->size &&
           a->atime_sec == b->atime_sec && a->mtime_sec == b->mtime_sec &&
           a->atime_nsec == b->atime_nsec && a->mtime_nsec == b->mtime_nsec;
}

static bool cred_req_equal(const dafs_cred_req *a, const dafs_cred_req *b)
{
    if (a->uid != b->uid || a->gid != b->gid || a->ngroups != b->ngroups ||
        a->ngroups > DAFS_GROUPS_MAX)
        return false;
    for (uint32_t i = 0; i < a->ngroups; i++)
        if (dafs_cred_group(a, i) != dafs_cred_group(b, i))
            return false;
    return true;
}

static bool ext_request_body_equal(uint16_t op, const dafs_request *a, const dafs_request *b)
{
    switch (op) {
    case DAFS_OP_FALLOCATE:
        return fh_equal(&a->u.fallocate.fh, &b->u.fallocate.fh) &&
               a->u.fallocate.mode == b->u.fallocate.mode &&
               a->u.fallocate.offset == b->u.fallocate.offset &&
               a->u.fallocate.length == b->u.fallocate.length;
    case DAFS_OP_COPY_RANGE:
        return fh_equal(&a->u.copy.src, &b->u.copy.src) &&
               fh_equal(&a->u.copy.dst, &b->u.copy.dst) &&
               a->u.copy.src_offset == b->u.copy.src_offset &&
               a->u.copy.dst_offset == b->u.copy.dst_offset &&
               a->u.copy.length == b->u.copy.length && a->u.copy.flags == b->u.copy.flags;
    case DAFS_OP_SEEK:
        return fh_equal(&a->u.seek.fh, &b->u.seek.fh) && a->u.seek.offset == b->u.seek.offset &&
               a->u.seek.what == b->u.seek.what;
    case DAFS_OP_GETXATTR:
    case DAFS_OP_SETXATTR:
    case DAFS_OP_LISTXATTR:
    case DAFS_OP_REMOVEXATTR:
        return fh_equal(&a->u.xattr.fh, &b->u.xattr.fh) &&
               bytes_equal(&a->u.xattr.name, &b->u.xattr.name) &&
               bytes_equal(&a->u.xattr.value, &b->u.xattr.value) &&
               a->u.xattr.size == b->u.xattr.size && a->u.xattr.flags == b->u.xattr.flags;
    case DAFS_OP_READDIRPLUS:
        return fh_equal(&a->u.readdir.dir, &b->u.readdir.dir) &&
               a->u.readdir.cookie == b->u.readdir.cookie &&
               a->u.readdir.maxcount == b->u.readdir.maxcount;
    case DAFS_OP_CACHE_HINT:
        return fh_equal(&a->u.cache_hint.fh, &b->u.cache_hint.fh) &&
               a->u.cache_hint.stateid == b->u.cache_hint.stateid &&
               a->u.cache_hint.offset == b->u.cache_hint.offset &&
               a->u.cache_hint.len == b->u.cache_hint.len &&
               a->u.cache_hint.hint == b->u.cache_hint.hint;
    default:
        return true;
    }
}

/* SETATTR .. RELEASE_CRED requests. */
static bool second_set_request_body_equal(uint16_t op, const dafs_request *a, const dafs_request *b)
{
    switch (op) {
    case DAFS_OP_READLINK:
    case DAFS_OP_LOOKUPP:
        return fh_equal(&a->u.fh.fh, &b->u.fh.fh);
    case DAFS_OP_SETATTR:
        return setattr_equal(&a->u.setattr, &b->u.setattr);
    case DAFS_OP_RENAME:
        return fh_equal(&a->u.rename.src_dir, &b->u.rename.src_dir) &&
               bytes_equal(&a->u.rename.src_name, &b->u.rename.src_name) &&
               fh_equal(&a->u.rename.dst_dir, &b->u.rename.dst_dir) &&
               bytes_equal(&a->u.rename.dst_name, &b->u.rename.dst_name) &&
               a->u.rename.flags == b->u.rename.flags;
    case DAFS_OP_LINK:
        return fh_equal(&a->u.link.fh, &b->u.link.fh) && fh_equal(&a->u.link.dir, &b->u.link.dir) &&
               bytes_equal(&a->u.link.name, &b->u.link.name);
    case DAFS_OP_SYMLINK:
        return fh_equal(&a->u.symlink.dir, &b->u.symlink.dir) &&
               bytes_equal(&a->u.symlink.name, &b->u.symlink.name) &&
               bytes_equal(&a->u.symlink.target, &b->u.symlink.target);
    case DAFS_OP_MKNOD:
        return fh_equal(&a->u.mknod.dir, &b->u.mknod.dir) &&
               bytes_equal(&a->u.mknod.name, &b->u.mknod.name) &&
               a->u.mknod.mode == b->u.mknod.mode && a->u.mknod.rdev == b->u.mknod.rdev;
    case DAFS_OP_ACCESS:
        return fh_equal(&a->u.access.fh, &b->u.access.fh) && a->u.access.mask == b->u.access.mask;
    case DAFS_OP_APPEND_INLINE:
    case DAFS_OP_APPEND_DIRECT:
        return write_req_equal(&a->u.write, &b->u.write);
    case DAFS_OP_REGISTER_CRED:
        return cred_req_equal(&a->u.cred, &b->u.cred);
    case DAFS_OP_RELEASE_CRED:
        return a->u.cred_id.cred_id == b->u.cred_id.cred_id;
    case DAFS_OP_OPEN_FH:
        return fh_equal(&a->u.open_fh.fh, &b->u.open_fh.fh) &&
               a->u.open_fh.flags == b->u.open_fh.flags;
    default:
        return ext_request_body_equal(op, a, b);
    }
}

static bool request_body_equal(uint16_t op, const dafs_request *a, const dafs_request *b)
{
    switch (op) {
    case DAFS_OP_CONNECT: {
        const dafs_connect_req *x = &a->u.connect, *y = &b->u.connect;
        return bytes_equal(&x->client_id, &y->client_id) && x->boot_verifier == y->boot_verifier &&
               x->fence_id == y->fence_id && x->max_request == y->max_request &&
               x->max_response == y->max_response && x->inline_max == y->inline_max &&
               x->max_credits == y->max_credits && bytes_equal(&x->ep_name, &y->ep_name);
    }
    case DAFS_OP_GETATTR:
    case DAFS_OP_STATFS:
        return fh_equal(&a->u.fh.fh, &b->u.fh.fh);
    case DAFS_OP_CLOSE:
        return fh_equal(&a->u.close.fh, &b->u.close.fh) &&
               a->u.close.stateid == b->u.close.stateid;
    case DAFS_OP_LOOKUP:
    case DAFS_OP_OPEN:
    case DAFS_OP_REMOVE:
    case DAFS_OP_MKDIR:
    case DAFS_OP_RMDIR:
        return fh_equal(&a->u.dirop.dir, &b->u.dirop.dir) &&
               bytes_equal(&a->u.dirop.name, &b->u.dirop.name) &&
               a->u.dirop.flags == b->u.dirop.flags && a->u.dirop.mode == b->u.dirop.mode;
    case DAFS_OP_READ_INLINE:
    case DAFS_OP_READ_DIRECT:
        return read_req_equal(&a->u.read, &b->u.read);
    case DAFS_OP_WRITE_INLINE:
    case DAFS_OP_WRITE_DIRECT:
        return write_req_equal(&a->u.write, &b->u.write);
    case DAFS_OP_COMMIT:
        return fh_equal(&a->u.commit.fh, &b->u.commit.fh) &&
               a->u.commit.stateid == b->u.commit.stateid &&
               a->u.commit.offset == b->u.commit.offset && a->u.commit.count == b->u.commit.count &&
               a->u.commit.stable == b->u.commit.stable;
    case DAFS_OP_READDIR:
        return fh_equal(&a->u.readdir.dir, &b->u.readdir.dir) &&
               a->u.readdir.cookie == b->u.readdir.cookie &&
               a->u.readdir.maxcount == b->u.readdir.maxcount;
    default:
        return second_set_request_body_equal(op, a, b);
    }
}

bool requests_equal(const dafs_request *a, const dafs_request *b)
{
    if (is_batch_op(a->hdr.opcode))
        return hdr_equal(&a->hdr, &b->hdr) && batch_request_equal(a, b);
    if (is_lock_op(a->hdr.opcode))
        return hdr_equal(&a->hdr, &b->hdr) && lock_request_equal(a, b);
    return hdr_equal(&a->hdr, &b->hdr) && request_body_equal(a->hdr.opcode, a, b);
}

/* stateid is compared too: it is 0 in the samples of ops that do not carry it. */
static bool fh_attr_equal(const dafs_fh_attr_rep *a, const dafs_fh_attr_rep *b)
{
    return fh_equal(&a->fh, &b->fh) && attr_equal(&a->attr, &b->attr) &&
           a->created == b->created && a->stateid == b->stateid;
}

static bool write_rep_equal(const dafs_write_rep *a, const dafs_write_rep *b)
{
    return a->count == b->count && a->committed == b->committed && a->verifier == b->verifier &&
           a->offset == b->offset;
}

/* SETATTR .. RELEASE_CRED replies. */
static bool second_set_reply_body_equal(uint16_t op, const dafs_reply *a, const dafs_reply *b)
{
    switch (op) {
    case DAFS_OP_SETATTR:
    case DAFS_OP_LINK:
        return attr_equal(&a->u.attr.attr, &b->u.attr.attr);
    case DAFS_OP_SYMLINK:
    case DAFS_OP_MKNOD:
    case DAFS_OP_LOOKUPP:
    case DAFS_OP_OPEN_FH:
        return fh_attr_equal(&a->u.fh_attr, &b->u.fh_attr);
    case DAFS_OP_READLINK:
        return bytes_equal(&a->u.readlink.target, &b->u.readlink.target);
    case DAFS_OP_APPEND_INLINE:
    case DAFS_OP_APPEND_DIRECT:
        return write_rep_equal(&a->u.write, &b->u.write);
    case DAFS_OP_REGISTER_CRED:
        return a->u.cred.cred_id == b->u.cred.cred_id;
    case DAFS_OP_FALLOCATE:
        return attr_equal(&a->u.attr.attr, &b->u.attr.attr);
    case DAFS_OP_COPY_RANGE:
    case DAFS_OP_SEEK:
        return a->u.u64.value == b->u.u64.value;
    case DAFS_OP_GETXATTR:
    case DAFS_OP_LISTXATTR:
        return a->u.xattr.size == b->u.xattr.size && bytes_equal(&a->u.xattr.data, &b->u.xattr.data);
    case DAFS_OP_READDIRPLUS: /* entries compared by walking them */
        return a->u.readdir.eof == b->u.readdir.eof &&
               a->u.readdir.nentries == b->u.readdir.nentries && b->u.readdir.plus == 1;
    default:
        return true;
    }
}

static bool reply_body_equal(uint16_t op, const dafs_reply *a, const dafs_reply *b)
{
    switch (op) {
    case DAFS_OP_CONNECT:
        return a->u.connect.server_instance == b->u.connect.server_instance &&
               a->u.connect.max_request == b->u.connect.max_request &&
               a->u.connect.max_response == b->u.connect.max_response &&
               a->u.connect.inline_max == b->u.connect.inline_max &&
               a->u.connect.max_io == b->u.connect.max_io &&
               a->u.connect.lease_ms == b->u.connect.lease_ms &&
               a->u.connect.max_segs == b->u.connect.max_segs;
    case DAFS_OP_GETROOT:
    case DAFS_OP_LOOKUP:
    case DAFS_OP_OPEN:
    case DAFS_OP_MKDIR:
        return fh_attr_equal(&a->u.fh_attr, &b->u.fh_attr);
    case DAFS_OP_GETATTR:
        return attr_equal(&a->u.attr.attr, &b->u.attr.attr);
    case DAFS_OP_READ_INLINE:
    case DAFS_OP_READ_DIRECT:
        return a->u.read.count == b->u.read.count && a->u.read.eof == b->u.read.eof &&
               bytes_equal(&a->u.read.data, &b->u.read.data);
    case DAFS_OP_WRITE_INLINE:
    case DAFS_OP_WRITE_DIRECT:
        /* offset is not on the wire for WRITE_*: decoded as 0 */
        return a->u.write.count == b->u.write.count &&
               a->u.write.committed == b->u.write.committed &&
               a->u.write.verifier == b->u.write.verifier && b->u.write.offset == 0;
    case DAFS_OP_COMMIT:
        return a->u.commit.verifier == b->u.commit.verifier;
    case DAFS_OP_READDIR:
        /* entries compared by walking them: pad bytes may differ */
        return a->u.readdir.eof == b->u.readdir.eof &&
               a->u.readdir.nentries == b->u.readdir.nentries;
    case DAFS_OP_STATFS:
        return a->u.statfs.bsize == b->u.statfs.bsize && a->u.statfs.frsize == b->u.statfs.frsize &&
               a->u.statfs.blocks == b->u.statfs.blocks && a->u.statfs.bfree == b->u.statfs.bfree &&
               a->u.statfs.bavail == b->u.statfs.bavail && a->u.statfs.files == b->u.statfs.files &&
               a->u.statfs.ffree == b->u.statfs.ffree && a->u.statfs.namemax == b->u.statfs.namemax;
    default:
        return second_set_reply_body_equal(op, a, b);
    }
}

static bool dirents_equal(const dafs_readdir_rep *a, const dafs_readdir_rep *b)
{
    dafs_readdir_iter ia, ib;
    dafs_dirent_wire ea, eb;
    dafs_fh fa, fb;
    dafs_attr aa, ab;
    int ha, hb;
    dafs_readdir_iter_init(&ia, a);
    dafs_readdir_iter_init(&ib, b);
    for (;;) {
        int ra = dafs_readdirplus_next(&ia, &ea, &fa, &aa, &ha);
        int rb = dafs_readdirplus_next(&ib, &eb, &fb, &ab, &hb);
        if (ra != rb)
            return false;
        if (ra != 1)
            return true;
        if (ea.fileid != eb.fileid || ea.cookie != eb.cookie || ea.type != eb.type ||
            !bytes_equal(&ea.name, &eb.name) || ha != hb)
            return false;
        if (ha && (!fh_equal(&fa, &fb) || !attr_equal(&aa, &ab)))
            return false;
    }
}

bool replies_equal(const dafs_reply *a, const dafs_reply *b)
{
    if (!hdr_equal(&a->hdr, &b->hdr))
        return false;
    if (a->hdr.status != DAFS_ST_OK)
        return true;
    if ((a->hdr.opcode == DAFS_OP_READDIR || a->hdr.opcode == DAFS_OP_READDIRPLUS) &&
        !dirents_equal(&a->u.readdir, &b->u.readdir))
        return false;
    if (is_batch_op(a->hdr.opcode))
        return batch_reply_equal(a, b);
    if (is_lock_op(a->hdr.opcode))
        return lock_reply_equal(a, b);
    return reply_body_equal(a->hdr.opcode, a, b);
}
