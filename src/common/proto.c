/*
 * proto.c — the dafs wire codec (protocol version 2), see proto.h and
 * docs/protocol.md for the layout rules this file implements.
 *
 * How it is built:
 *  - Two cursors, a writer and a reader, own every byte access.  Each field
 *    is placed at the next offset (from the message start) that is a multiple
 *    of its size; byte strings and file handles are padded to a multiple of
 *    8.  Loads and stores go through memcpy plus explicit little-endian
 *    conversion, so no pointer is ever cast to a wider type (no unaligned
 *    access, nothing for UBSan to object to).
 *  - Errors are sticky: a cursor that ran out of room or met an out-of-range
 *    value remembers it, later puts/gets become no-ops, and the caller checks
 *    once at the end.  That keeps the per-op functions a plain list of fields
 *    in wire order, which is also the order of the structs in proto.h.
 *  - The writer reports -DAFS_ST_INVAL for a field out of range in preference
 *    to -DAFS_ST_OVERFLOW, so a caller learns about a bug before learning
 *    that its buffer was small.
 *  - The reader never reads past the received length and checks every count
 *    against the protocol maxima before using it.  Decoded byte strings point
 *    into the caller's buffer; nothing is allocated.
 *  - The codec checks syntax only (ranges, lengths, layout).  Meaning — name
 *    contents such as '/', "." or NUL, open flags, session ids, negotiated
 *    limits — is the server's and the client's business.
 */
#include "proto.h"

#include <endian.h>
#include <string.h>

/* ---- little-endian loads and stores ------------------------------------ */

static void store_u16(uint8_t *p, uint16_t v)
{
    uint16_t le = htole16(v);
    memcpy(p, &le, sizeof le);
}

static void store_u32(uint8_t *p, uint32_t v)
{
    uint32_t le = htole32(v);
    memcpy(p, &le, sizeof le);
}

static void store_u64(uint8_t *p, uint64_t v)
{
    uint64_t le = htole64(v);
    memcpy(p, &le, sizeof le);
}

static uint16_t load_u16(const uint8_t *p)
{
    uint16_t le;
    memcpy(&le, p, sizeof le);
    return le16toh(le);
}

static uint32_t load_u32(const uint8_t *p)
{
    uint32_t le;
    memcpy(&le, p, sizeof le);
    return le32toh(le);
}

static uint64_t load_u64(const uint8_t *p)
{
    uint64_t le;
    memcpy(&le, p, sizeof le);
    return le64toh(le);
}

static size_t round_up(size_t pos, size_t align)
{
    return (pos + align - 1) / align * align;
}

/* ---- writer ------------------------------------------------------------ */

typedef struct writer {
    uint8_t *buf;
    size_t cap;
    size_t pos;
    int err; /* 0, -DAFS_ST_OVERFLOW or -DAFS_ST_INVAL (which wins) */
} writer;

static void writer_init(writer *w, void *buf, size_t cap, size_t pos)
{
    w->buf = buf;
    w->cap = cap < DAFS_MSG_LIMIT ? cap : DAFS_MSG_LIMIT;
    w->pos = pos;
    w->err = 0;
}

static void writer_fail(writer *w, int err)
{
    if (w->err == 0 || err == -DAFS_ST_INVAL)
        w->err = err;
}

/* Check a field's range; a false check marks the writer -DAFS_ST_INVAL. */
static void writer_require(writer *w, bool ok)
{
    if (!ok)
        writer_fail(w, -DAFS_ST_INVAL);
}

/* Zero-pad to align, then return room for n bytes (NULL after any error). */
static uint8_t *writer_reserve(writer *w, size_t align, size_t n)
{
    if (w->err != 0)
        return NULL;
    size_t start = round_up(w->pos, align);
    if (start > w->cap || n > w->cap - start) {
        writer_fail(w, -DAFS_ST_OVERFLOW);
        return NULL;
    }
    memset(w->buf + w->pos, 0, start - w->pos);
    w->pos = start + n;
    return w->buf + start;
}

static void put_pad(writer *w, size_t align)
{
    (void)writer_reserve(w, align, 0);
}

static void put_u8(writer *w, uint8_t v)
{
    uint8_t *p = writer_reserve(w, 1, 1);
    if (p != NULL)
        *p = v;
}

static void put_u16(writer *w, uint16_t v)
{
    uint8_t *p = writer_reserve(w, 2, 2);
    if (p != NULL)
        store_u16(p, v);
}

static void put_u32(writer *w, uint32_t v)
{
    uint8_t *p = writer_reserve(w, 4, 4);
    if (p != NULL)
        store_u32(p, v);
}

static void put_u64(writer *w, uint64_t v)
{
    uint8_t *p = writer_reserve(w, 8, 8);
    if (p != NULL)
        store_u64(p, v);
}

/* memmove: the server may pread inline data straight into the reply buffer. */
static void put_raw(writer *w, const uint8_t *src, size_t n)
{
    if (src == NULL && n > 0) {
        writer_fail(w, -DAFS_ST_INVAL);
        return;
    }
    uint8_t *p = writer_reserve(w, 1, n);
    if (p != NULL && n > 0)
        memmove(p, src, n);
}

/* u32 length, the bytes, zero padding to a multiple of 8. */
static void put_bytes(writer *w, const dafs_bytes *b, uint32_t min, uint32_t max)
{
    writer_require(w, b->len >= min && b->len <= max);
    put_u32(w, b->len);
    put_raw(w, b->ptr, b->len);
    put_pad(w, 8);
}

/* u8 length (1..DAFS_FH_MAX), the bytes, zero padding to a multiple of 8. */
static void put_fh(writer *w, const dafs_fh *fh)
{
    writer_require(w, fh->len >= 1 && fh->len <= DAFS_FH_MAX);
    put_u8(w, fh->len);
    put_raw(w, fh->data, fh->len <= DAFS_FH_MAX ? fh->len : 0);
    put_pad(w, 8);
}

/* ---- reader ------------------------------------------------------------ */

typedef struct reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    bool bad;
} reader;

static void reader_init(reader *r, const void *buf, size_t len, size_t pos)
{
    r->buf = buf;
    r->len = len;
    r->pos = pos;
    r->bad = false;
}

static void reader_require(reader *r, bool ok)
{
    if (!ok)
        r->bad = true;
}

/* Skip padding to align, then return the next n bytes (NULL if absent). */
static const uint8_t *reader_take(reader *r, size_t align, size_t n)
{
    if (r->bad)
        return NULL;
    size_t start = round_up(r->pos, align);
    if (start > r->len || n > r->len - start) {
        r->bad = true;
        return NULL;
    }
    r->pos = start + n;
    return r->buf + start;
}

/*
 * Skip the padding that follows a byte string.  Padding that would run past
 * the end of the message is tolerated (it may be the message's final
 * padding); a field that follows it will then find no bytes and fail.
 */
static void skip_pad8(reader *r)
{
    size_t next = round_up(r->pos, 8);
    r->pos = next < r->len ? next : r->len;
}

static uint8_t get_u8(reader *r)
{
    const uint8_t *p = reader_take(r, 1, 1);
    return p != NULL ? *p : 0;
}

static uint16_t get_u16(reader *r)
{
    const uint8_t *p = reader_take(r, 2, 2);
    return p != NULL ? load_u16(p) : 0;
}

static uint32_t get_u32(reader *r)
{
    const uint8_t *p = reader_take(r, 4, 4);
    return p != NULL ? load_u32(p) : 0;
}

static uint64_t get_u64(reader *r)
{
    const uint8_t *p = reader_take(r, 8, 8);
    return p != NULL ? load_u64(p) : 0;
}

static int64_t get_i64(reader *r)
{
    return (int64_t)get_u64(r);
}

static void get_bytes(reader *r, dafs_bytes *out, uint32_t min, uint32_t max)
{
    uint32_t len = get_u32(r);
    reader_require(r, len >= min && len <= max);
    const uint8_t *p = reader_take(r, 1, r->bad ? 0 : len);
    out->ptr = r->bad ? NULL : p;
    out->len = r->bad ? 0 : len;
    skip_pad8(r);
}

static void get_fh(reader *r, dafs_fh *fh)
{
    uint8_t len = get_u8(r);
    reader_require(r, len >= 1 && len <= DAFS_FH_MAX);
    const uint8_t *p = reader_take(r, 1, r->bad ? 0 : len);
    if (p != NULL) {
        fh->len = len;
        memcpy(fh->data, p, len);
    }
    skip_pad8(r);
}

/* 0 if the body ended cleanly: nothing after it but < 8 bytes of padding. */
static int reader_finish(const reader *r)
{
    if (r->bad || r->len > round_up(r->pos, 8))
        return -DAFS_ST_BADMSG;
    return 0;
}

/* ---- header ------------------------------------------------------------ */

void dafs_encode_hdr(void *buf, const dafs_hdr *h)
{
    uint8_t *p = buf;
    store_u32(p + 0, h->magic);
    store_u16(p + 4, h->version);
    store_u16(p + 6, h->opcode);
    store_u32(p + 8, h->length);
    store_u16(p + 12, h->flags);
    store_u16(p + 14, h->credits);
    store_u64(p + 16, h->session_id);
    store_u64(p + 24, h->xid);
    store_u32(p + 32, (uint32_t)h->status);
    store_u32(p + 36, h->cred);
    if (h->version != 1) { /* version 1 headers end at the common prefix */
        store_u32(p + 40, h->slot);
        store_u32(p + 44, h->seq);
    }
}

/*
 * The first DAFS_HDR_V1_SIZE bytes are read whatever the version, so that a
 * message of another version still yields opcode, session and xid (for a
 * VERSION reply, or to match a peer's VERSION reply to our request).
 */
int dafs_decode_hdr(const void *buf, size_t len, dafs_hdr *out)
{
    memset(out, 0, sizeof *out);
    if (len < DAFS_HDR_V1_SIZE)
        return -DAFS_ST_BADMSG;
    const uint8_t *p = buf;
    out->magic = load_u32(p + 0);
    out->version = load_u16(p + 4);
    out->opcode = load_u16(p + 6);
    out->length = load_u32(p + 8);
    out->flags = load_u16(p + 12);
    out->credits = load_u16(p + 14);
    out->session_id = load_u64(p + 16);
    out->xid = load_u64(p + 24);
    out->status = (int32_t)load_u32(p + 32);
    out->cred = load_u32(p + 36);
    if (out->magic != DAFS_PROTO_MAGIC)
        return -DAFS_ST_BADMSG;
    if (out->version != DAFS_PROTO_VERSION)
        return -DAFS_ST_VERSION;
    if (len < DAFS_HDR_SIZE || out->length != len || out->length > DAFS_MSG_LIMIT)
        return -DAFS_ST_BADMSG;
    out->slot = load_u32(p + 40);
    out->seq = load_u32(p + 44);
    if ((out->flags & DAFS_HDR_REPLY) && out->cred != 0) /* cred only travels in requests */
        return -DAFS_ST_BADMSG;
    return 0;
}

/* ---- shared body pieces ------------------------------------------------ */

static bool is_direct(uint16_t op)
{
    return op == DAFS_OP_READ_DIRECT || op == DAFS_OP_WRITE_DIRECT || op == DAFS_OP_APPEND_DIRECT;
}

/* sum of segment lengths, saturating at UINT64_MAX */
static uint64_t segs_total(const dafs_seg *segs, uint16_t nsegs)
{
    uint64_t total = 0;
    for (uint16_t i = 0; i < nsegs; i++)
        total = segs[i].len > UINT64_MAX - total ? UINT64_MAX : total + segs[i].len;
    return total;
}

static bool segs_valid(const dafs_seg *segs, uint16_t nsegs, uint32_t count)
{
    return nsegs >= 1 && nsegs <= DAFS_SEG_MAX && segs_total(segs, nsegs) >= count;
}

static void put_segs(writer *w, uint16_t nsegs, const dafs_seg *segs, uint32_t count)
{
    writer_require(w, segs_valid(segs, nsegs, count));
    put_u16(w, nsegs);
    for (uint16_t i = 0; i < nsegs && i < DAFS_SEG_MAX; i++) {
        put_u64(w, segs[i].addr);
        put_u64(w, segs[i].key);
        put_u64(w, segs[i].len);
    }
}

static void get_segs(reader *r, uint16_t *nsegs, dafs_seg *segs, uint32_t count)
{
    uint16_t n = get_u16(r);
    reader_require(r, n >= 1 && n <= DAFS_SEG_MAX);
    for (uint16_t i = 0; i < n && !r->bad; i++) {
        segs[i].addr = get_u64(r);
        segs[i].key = get_u64(r);
        segs[i].len = get_u64(r);
    }
    if (r->bad)
        return;
    *nsegs = n;
    reader_require(r, segs_valid(segs, n, count));
}

static void put_attr(writer *w, const dafs_attr *a)
{
    put_u32(w, a->mode);
    put_u32(w, a->nlink);
    put_u32(w, a->uid);
    put_u32(w, a->gid);
    put_u64(w, a->size);
    put_u64(w, a->used);
    put_u64(w, a->fileid);
    put_u64(w, a->rdev);
    put_u64(w, (uint64_t)a->atime_sec);
    put_u64(w, (uint64_t)a->mtime_sec);
    put_u64(w, (uint64_t)a->ctime_sec);
    put_u32(w, a->atime_nsec);
    put_u32(w, a->mtime_nsec);
    put_u32(w, a->ctime_nsec);
}

static void get_attr(reader *r, dafs_attr *a)
{
    a->mode = get_u32(r);
    a->nlink = get_u32(r);
    a->uid = get_u32(r);
    a->gid = get_u32(r);
    a->size = get_u64(r);
    a->used = get_u64(r);
    a->fileid = get_u64(r);
    a->rdev = get_u64(r);
    a->atime_sec = get_i64(r);
    a->mtime_sec = get_i64(r);
    a->ctime_sec = get_i64(r);
    a->atime_nsec = get_u32(r);
    a->mtime_nsec = get_u32(r);
    a->ctime_nsec = get_u32(r);
}

/* One READDIR entry: u64 fileid, u64 cookie, u32 type, name; 8-aligned. */
static void put_dirent(writer *w, const dafs_dirent_wire *ent)
{
    put_u64(w, ent->fileid);
    put_u64(w, ent->cookie);
    put_u32(w, ent->type);
    put_bytes(w, &ent->name, 1, DAFS_NAME_MAX);
}

static void get_dirent(reader *r, dafs_dirent_wire *ent)
{
    ent->fileid = get_u64(r);
    ent->cookie = get_u64(r);
    ent->type = get_u32(r);
    get_bytes(r, &ent->name, 1, DAFS_NAME_MAX);
}

/* One READDIRPLUS entry: a READDIR entry, u8 flags (DAFS_PLUS_ATTR, and
 * DAFS_PLUS_NO_XATTRS only with it), then with ATTR the fh and attr; padded
 * to 8 so that the next entry starts aligned. */
static bool plus_flags_valid(unsigned f)
{
    return (f & ~(unsigned)(DAFS_PLUS_ATTR | DAFS_PLUS_NO_XATTRS)) == 0 &&
           (!(f & DAFS_PLUS_NO_XATTRS) || (f & DAFS_PLUS_ATTR));
}

static void put_dirent_plus(writer *w, const dafs_dirent_wire *ent, const dafs_fh *fh,
                            const dafs_attr *attr, unsigned extra)
{
    bool has = fh != NULL && attr != NULL;
    unsigned flags = has ? DAFS_PLUS_ATTR | (extra & DAFS_PLUS_NO_XATTRS) : 0;
    writer_require(w, (extra & ~(unsigned)(DAFS_PLUS_ATTR | DAFS_PLUS_NO_XATTRS)) == 0);
    put_dirent(w, ent);
    put_u8(w, (uint8_t)flags);
    if (has) {
        put_fh(w, fh);
        put_attr(w, attr);
    }
    put_pad(w, 8);
}

static void get_dirent_plus(reader *r, dafs_dirent_wire *ent, dafs_fh *fh, dafs_attr *attr,
                            int *has_attr)
{
    get_dirent(r, ent);
    uint8_t flags = get_u8(r);
    reader_require(r, plus_flags_valid(flags));
    *has_attr = r->bad ? 0 : flags;
    if (*has_attr & DAFS_PLUS_ATTR) {
        get_fh(r, fh);
        get_attr(r, attr);
    }
    skip_pad8(r);
}

/* Either kind of entry; fh/attr are scratch for READDIR. */
static void get_any_dirent(reader *r, bool plus, dafs_dirent_wire *ent, dafs_fh *fh,
                           dafs_attr *attr, int *has_attr)
{
    *has_attr = 0;
    if (plus)
        get_dirent_plus(r, ent, fh, attr, has_attr);
    else
        get_dirent(r, ent);
}

/* ---- request bodies ---------------------------------------------------- */

static void put_connect_req(writer *w, const dafs_connect_req *c)
{
    put_bytes(w, &c->client_id, 1, DAFS_CLIENT_ID_MAX);
    put_u64(w, c->boot_verifier);
    put_u32(w, c->fence_id);
    put_u32(w, c->max_request);
    put_u32(w, c->max_response);
    put_u32(w, c->inline_max);
    put_u16(w, c->max_credits);
    put_bytes(w, &c->ep_name, 1, DAFS_EPNAME_MAX);
}

static void get_connect_req(reader *r, dafs_connect_req *c)
{
    get_bytes(r, &c->client_id, 1, DAFS_CLIENT_ID_MAX);
    c->boot_verifier = get_u64(r);
    c->fence_id = get_u32(r);
    c->max_request = get_u32(r);
    c->max_response = get_u32(r);
    c->inline_max = get_u32(r);
    c->max_credits = get_u16(r);
    get_bytes(r, &c->ep_name, 1, DAFS_EPNAME_MAX);
}

static void put_dirop_req(writer *w, const dafs_dirop_req *d)
{
    put_fh(w, &d->dir);
    put_bytes(w, &d->name, 1, DAFS_NAME_MAX);
    put_u32(w, d->flags);
    put_u32(w, d->mode);
}

static void get_dirop_req(reader *r, dafs_dirop_req *d)
{
    get_fh(r, &d->dir);
    get_bytes(r, &d->name, 1, DAFS_NAME_MAX);
    d->flags = get_u32(r);
    d->mode = get_u32(r);
}

static void put_read_req(writer *w, const dafs_read_req *q, bool direct)
{
    put_fh(w, &q->fh);
    put_u64(w, q->stateid);
    put_u64(w, q->offset);
    put_u32(w, q->count);
    put_u32(w, q->hints);
    if (direct)
        put_segs(w, q->nsegs, q->segs, q->count);
}

static void get_read_req(reader *r, dafs_read_req *q, bool direct)
{
    get_fh(r, &q->fh);
    q->stateid = get_u64(r);
    q->offset = get_u64(r);
    q->count = get_u32(r);
    q->hints = get_u32(r);
    if (direct)
        get_segs(r, &q->nsegs, q->segs, q->count);
}

static void put_write_req(writer *w, const dafs_write_req *q, bool direct)
{
    put_fh(w, &q->fh);
    put_u64(w, q->stateid);
    put_u64(w, q->offset);
    put_u32(w, q->count);
    put_u32(w, q->stable);
    put_u32(w, q->hints);
    if (direct) {
        put_segs(w, q->nsegs, q->segs, q->count);
    } else {
        writer_require(w, q->data.len == q->count);
        put_bytes(w, &q->data, 0, UINT32_MAX);
    }
}

static void get_write_req(reader *r, dafs_write_req *q, bool direct)
{
    get_fh(r, &q->fh);
    q->stateid = get_u64(r);
    q->offset = get_u64(r);
    q->count = get_u32(r);
    q->stable = get_u32(r);
    q->hints = get_u32(r);
    if (direct) {
        get_segs(r, &q->nsegs, q->segs, q->count);
    } else {
        get_bytes(r, &q->data, 0, UINT32_MAX);
        reader_require(r, q->data.len == q->count);
    }
}

static void put_commit_req(writer *w, const dafs_commit_req *c)
{
    put_fh(w, &c->fh);
    put_u64(w, c->stateid);
    put_u64(w, c->offset);
    put_u64(w, c->count);
    put_u32(w, c->stable);
}

static void get_commit_req(reader *r, dafs_commit_req *c)
{
    get_fh(r, &c->fh);
    c->stateid = get_u64(r);
    c->offset = get_u64(r);
    c->count = get_u64(r);
    c->stable = get_u32(r);
}

static void put_readdir_req(writer *w, const dafs_readdir_req *d)
{
    put_fh(w, &d->dir);
    put_u64(w, d->cookie);
    put_u32(w, d->maxcount);
}

static void get_readdir_req(reader *r, dafs_readdir_req *d)
{
    get_fh(r, &d->dir);
    d->cookie = get_u64(r);
    d->maxcount = get_u32(r);
}

/* SETATTR: only known DAFS_SET_* bits, and nanoseconds below one second
 * (checked whether or not the time is being set, so nothing odd travels). */
static bool setattr_valid(const dafs_setattr_req *s)
{
    return (s->valid & ~DAFS_SET_ALL) == 0 && s->atime_nsec < 1000000000u &&
           s->mtime_nsec < 1000000000u;
}

static void put_setattr_req(writer *w, const dafs_setattr_req *s)
{
    writer_require(w, setattr_valid(s));
    put_fh(w, &s->fh);
    put_u64(w, s->stateid);
    put_u32(w, s->valid);
    put_u32(w, s->mode);
    put_u32(w, s->uid);
    put_u32(w, s->gid);
    put_u64(w, s->size);
    put_u64(w, (uint64_t)s->atime_sec);
    put_u64(w, (uint64_t)s->mtime_sec);
    put_u32(w, s->atime_nsec);
    put_u32(w, s->mtime_nsec);
}

static void get_setattr_req(reader *r, dafs_setattr_req *s)
{
    get_fh(r, &s->fh);
    s->stateid = get_u64(r);
    s->valid = get_u32(r);
    s->mode = get_u32(r);
    s->uid = get_u32(r);
    s->gid = get_u32(r);
    s->size = get_u64(r);
    s->atime_sec = get_i64(r);
    s->mtime_sec = get_i64(r);
    s->atime_nsec = get_u32(r);
    s->mtime_nsec = get_u32(r);
    reader_require(r, setattr_valid(s));
}

/* RENAME flags: NOREPLACE or EXCHANGE or neither, never both. */
static bool rename_flags_valid(uint32_t flags)
{
    const uint32_t known = DAFS_RENAME_NOREPLACE | DAFS_RENAME_EXCHANGE;
    return (flags & ~known) == 0 && flags != known;
}

static void put_rename_req(writer *w, const dafs_rename_req *q)
{
    writer_require(w, rename_flags_valid(q->flags));
    put_fh(w, &q->src_dir);
    put_bytes(w, &q->src_name, 1, DAFS_NAME_MAX);
    put_fh(w, &q->dst_dir);
    put_bytes(w, &q->dst_name, 1, DAFS_NAME_MAX);
    put_u32(w, q->flags);
}

static void get_rename_req(reader *r, dafs_rename_req *q)
{
    get_fh(r, &q->src_dir);
    get_bytes(r, &q->src_name, 1, DAFS_NAME_MAX);
    get_fh(r, &q->dst_dir);
    get_bytes(r, &q->dst_name, 1, DAFS_NAME_MAX);
    q->flags = get_u32(r);
    reader_require(r, rename_flags_valid(q->flags));
}

static void put_link_req(writer *w, const dafs_link_req *q)
{
    put_fh(w, &q->fh);
    put_fh(w, &q->dir);
    put_bytes(w, &q->name, 1, DAFS_NAME_MAX);
}

static void get_link_req(reader *r, dafs_link_req *q)
{
    get_fh(r, &q->fh);
    get_fh(r, &q->dir);
    get_bytes(r, &q->name, 1, DAFS_NAME_MAX);
}

static void put_symlink_req(writer *w, const dafs_symlink_req *q)
{
    put_fh(w, &q->dir);
    put_bytes(w, &q->name, 1, DAFS_NAME_MAX);
    put_bytes(w, &q->target, 1, DAFS_PATH_MAX);
}

static void get_symlink_req(reader *r, dafs_symlink_req *q)
{
    get_fh(r, &q->dir);
    get_bytes(r, &q->name, 1, DAFS_NAME_MAX);
    get_bytes(r, &q->target, 1, DAFS_PATH_MAX);
}

static void put_mknod_req(writer *w, const dafs_mknod_req *q)
{
    put_fh(w, &q->dir);
    put_bytes(w, &q->name, 1, DAFS_NAME_MAX);
    put_u32(w, q->mode);
    put_u64(w, q->rdev);
}

static void get_mknod_req(reader *r, dafs_mknod_req *q)
{
    get_fh(r, &q->dir);
    get_bytes(r, &q->name, 1, DAFS_NAME_MAX);
    q->mode = get_u32(r);
    q->rdev = get_u64(r);
}

#define ACCESS_MASK_ALL (DAFS_ACCESS_READ | DAFS_ACCESS_WRITE | DAFS_ACCESS_EXEC)

static void put_access_req(writer *w, const dafs_access_req *q)
{
    writer_require(w, q->mask <= ACCESS_MASK_ALL);
    put_fh(w, &q->fh);
    put_u32(w, q->mask);
}

static void get_access_req(reader *r, dafs_access_req *q)
{
    get_fh(r, &q->fh);
    q->mask = get_u32(r);
    reader_require(r, q->mask <= ACCESS_MASK_ALL);
}

/* u32 uid, u32 gid, u32 ngroups, then ngroups u32 group ids. */
static void put_cred_req(writer *w, const dafs_cred_req *c)
{
    bool have = c->ngroups == 0 || c->groups != NULL ||
                (c->groups_wire.ptr != NULL && c->groups_wire.len == 4 * c->ngroups);
    writer_require(w, c->ngroups <= DAFS_GROUPS_MAX && have);
    put_u32(w, c->uid);
    put_u32(w, c->gid);
    put_u32(w, c->ngroups);
    if (w->err != 0)
        return;
    uint8_t *p = writer_reserve(w, 4, (size_t)c->ngroups * 4);
    for (uint32_t i = 0; p != NULL && i < c->ngroups; i++) /* a decoded list re-encodes too */
        store_u32(p + 4 * (size_t)i, dafs_cred_group(c, i));
}

/* The ids stay in the buffer: the count is checked against the bytes
 * received before anything is read, and nothing is copied. */
static void get_cred_req(reader *r, dafs_cred_req *c)
{
    c->uid = get_u32(r);
    c->gid = get_u32(r);
    uint32_t n = get_u32(r);
    reader_require(r, n <= DAFS_GROUPS_MAX);
    const uint8_t *p = reader_take(r, 4, r->bad ? 0 : (size_t)n * 4);
    if (r->bad)
        return;
    c->ngroups = n;
    c->groups = NULL;
    c->groups_wire = (dafs_bytes){.ptr = p, .len = n * 4};
}

uint32_t dafs_cred_group(const dafs_cred_req *c, uint32_t i)
{
    if (i >= c->ngroups)
        return UINT32_MAX;
    if (c->groups != NULL)
        return c->groups[i];
    return load_u32(c->groups_wire.ptr + 4 * (size_t)i);
}

static void put_close_req(writer *w, const dafs_close_req *q)
{
    put_fh(w, &q->fh);
    put_u64(w, q->stateid);
}

static void get_close_req(reader *r, dafs_close_req *q)
{
    get_fh(r, &q->fh);
    q->stateid = get_u64(r);
}

/* OPEN_FH: access mode and TRUNC only (no CREAT/EXCL/DIRECTORY: the object exists). */
static void put_open_fh_req(writer *w, const dafs_open_fh_req *q)
{
    writer_require(w, (q->flags & ~DAFS_OPEN_FH_ALL) == 0);
    put_fh(w, &q->fh);
    put_u32(w, q->flags);
}

static void get_open_fh_req(reader *r, dafs_open_fh_req *q)
{
    get_fh(r, &q->fh);
    q->flags = get_u32(r);
    reader_require(r, (q->flags & ~DAFS_OPEN_FH_ALL) == 0);
}

/* APPEND_* carry a write_req whose offset must be 0 (the server picks it). */
static void put_append_req(writer *w, const dafs_write_req *q, bool direct)
{
    writer_require(w, q->offset == 0);
    put_write_req(w, q, direct);
}

static void get_append_req(reader *r, dafs_write_req *q, bool direct)
{
    get_write_req(r, q, direct);
    reader_require(r, q->offset == 0);
}

/* ---- extra ops (70..79): request bodies ------------------------------- */

static bool fallocate_valid(const dafs_fallocate_req *q)
{
    return (q->mode & ~DAFS_FALLOC_ALL) == 0 && q->length > 0;
}

static void put_fallocate_req(writer *w, const dafs_fallocate_req *q)
{
    writer_require(w, fallocate_valid(q));
    put_fh(w, &q->fh);
    put_u32(w, q->mode);
    put_u64(w, q->offset);
    put_u64(w, q->length);
    put_u64(w, q->stateid);
}

static void get_fallocate_req(reader *r, dafs_fallocate_req *q)
{
    get_fh(r, &q->fh);
    q->mode = get_u32(r);
    q->offset = get_u64(r);
    q->length = get_u64(r);
    q->stateid = get_u64(r);
    reader_require(r, fallocate_valid(q));
}

static void put_copy_req(writer *w, const dafs_copy_req *q)
{
    writer_require(w, q->flags == 0);
    put_fh(w, &q->src);
    put_u64(w, q->src_offset);
    put_fh(w, &q->dst);
    put_u64(w, q->dst_offset);
    put_u64(w, q->length);
    put_u32(w, q->flags);
    put_u64(w, q->src_stateid);
    put_u64(w, q->dst_stateid);
}

static void get_copy_req(reader *r, dafs_copy_req *q)
{
    get_fh(r, &q->src);
    q->src_offset = get_u64(r);
    get_fh(r, &q->dst);
    q->dst_offset = get_u64(r);
    q->length = get_u64(r);
    q->flags = get_u32(r);
    q->src_stateid = get_u64(r);
    q->dst_stateid = get_u64(r);
    reader_require(r, q->flags == 0);
}

static void put_seek_req(writer *w, const dafs_seek_req *q)
{
    writer_require(w, q->what <= DAFS_SEEK_HOLE);
    put_fh(w, &q->fh);
    put_u64(w, q->offset);
    put_u32(w, q->what);
    put_u64(w, q->stateid);
}

static void get_seek_req(reader *r, dafs_seek_req *q)
{
    get_fh(r, &q->fh);
    q->offset = get_u64(r);
    q->what = get_u32(r);
    q->stateid = get_u64(r);
    reader_require(r, q->what <= DAFS_SEEK_HOLE);
}

/* An xattr name: 1..DAFS_XATTR_NAME_MAX bytes without a NUL. */
static bool xattr_name_valid(const dafs_bytes *b)
{
    return b->ptr != NULL && b->len >= 1 && b->len <= DAFS_XATTR_NAME_MAX &&
           memchr(b->ptr, '\0', b->len) == NULL;
}

static bool xattr_flags_valid(uint32_t flags)
{
    return flags <= DAFS_XATTR_REPLACE; /* 0, CREATE or REPLACE */
}

/* Which fields each xattr op carries, in wire order: fh, [name], [value],
 * [size], [flags]. */
static void put_xattr_req(writer *w, uint16_t op, const dafs_xattr_req *q)
{
    put_fh(w, &q->fh);
    if (op != DAFS_OP_LISTXATTR) {
        writer_require(w, xattr_name_valid(&q->name));
        put_bytes(w, &q->name, 1, DAFS_XATTR_NAME_MAX);
    }
    if (op == DAFS_OP_SETXATTR) {
        writer_require(w, xattr_flags_valid(q->flags));
        put_bytes(w, &q->value, 0, DAFS_XATTR_VALUE_MAX);
        put_u32(w, q->flags);
    }
    if (op == DAFS_OP_GETXATTR || op == DAFS_OP_LISTXATTR) {
        writer_require(w, q->size <= (op == DAFS_OP_GETXATTR ? DAFS_XATTR_VALUE_MAX
                                                              : DAFS_XATTR_LIST_MAX));
        put_u32(w, q->size);
    }
}

static void get_xattr_req(reader *r, uint16_t op, dafs_xattr_req *q)
{
    get_fh(r, &q->fh);
    if (op != DAFS_OP_LISTXATTR) {
        get_bytes(r, &q->name, 1, DAFS_XATTR_NAME_MAX);
        reader_require(r, r->bad || xattr_name_valid(&q->name));
    }
    if (op == DAFS_OP_SETXATTR) {
        get_bytes(r, &q->value, 0, DAFS_XATTR_VALUE_MAX);
        q->flags = get_u32(r);
        reader_require(r, xattr_flags_valid(q->flags));
    }
    if (op == DAFS_OP_GETXATTR || op == DAFS_OP_LISTXATTR) {
        q->size = get_u32(r);
        reader_require(r, q->size <= (op == DAFS_OP_GETXATTR ? DAFS_XATTR_VALUE_MAX
                                                              : DAFS_XATTR_LIST_MAX));
    }
}

/* The extra ops; false for an unknown op. */
static bool put_ext_request_body(writer *w, const dafs_request *m)
{
    uint16_t op = m->hdr.opcode;
    switch (op) {
    case DAFS_OP_FALLOCATE:
        put_fallocate_req(w, &m->u.fallocate);
        return true;
    case DAFS_OP_COPY_RANGE:
        put_copy_req(w, &m->u.copy);
        return true;
    case DAFS_OP_SEEK:
        put_seek_req(w, &m->u.seek);
        return true;
    case DAFS_OP_GETXATTR:
    case DAFS_OP_SETXATTR:
    case DAFS_OP_LISTXATTR:
    case DAFS_OP_REMOVEXATTR:
        put_xattr_req(w, op, &m->u.xattr);
        return true;
    case DAFS_OP_READDIRPLUS:
        put_readdir_req(w, &m->u.readdir);
        return true;
    default:
        return false;
    }
}

static bool get_ext_request_body(reader *r, dafs_request *m)
{
    uint16_t op = m->hdr.opcode;
    switch (op) {
    case DAFS_OP_FALLOCATE:
        get_fallocate_req(r, &m->u.fallocate);
        return true;
    case DAFS_OP_COPY_RANGE:
        get_copy_req(r, &m->u.copy);
        return true;
    case DAFS_OP_SEEK:
        get_seek_req(r, &m->u.seek);
        return true;
    case DAFS_OP_GETXATTR:
    case DAFS_OP_SETXATTR:
    case DAFS_OP_LISTXATTR:
    case DAFS_OP_REMOVEXATTR:
        get_xattr_req(r, op, &m->u.xattr);
        return true;
    case DAFS_OP_READDIRPLUS:
        get_readdir_req(r, &m->u.readdir);
        return true;
    default:
        return false;
    }
}

/* The second set of ops (SETATTR..RELEASE_CRED); false for an unknown op. */
static bool put_second_set_request_body(writer *w, const dafs_request *m)
{
    uint16_t op = m->hdr.opcode;
    switch (op) {
    case DAFS_OP_READLINK:
    case DAFS_OP_LOOKUPP:
        put_fh(w, &m->u.fh.fh);
        return true;
    case DAFS_OP_SETATTR:
        put_setattr_req(w, &m->u.setattr);
        return true;
    case DAFS_OP_RENAME:
        put_rename_req(w, &m->u.rename);
        return true;
    case DAFS_OP_LINK:
        put_link_req(w, &m->u.link);
        return true;
    case DAFS_OP_SYMLINK:
        put_symlink_req(w, &m->u.symlink);
        return true;
    case DAFS_OP_MKNOD:
        put_mknod_req(w, &m->u.mknod);
        return true;
    case DAFS_OP_ACCESS:
        put_access_req(w, &m->u.access);
        return true;
    case DAFS_OP_APPEND_INLINE:
    case DAFS_OP_APPEND_DIRECT:
        put_append_req(w, &m->u.write, is_direct(op));
        return true;
    case DAFS_OP_REGISTER_CRED:
        put_cred_req(w, &m->u.cred);
        return true;
    case DAFS_OP_RELEASE_CRED:
        put_u32(w, m->u.cred_id.cred_id);
        return true;
    case DAFS_OP_OPEN_FH:
        put_open_fh_req(w, &m->u.open_fh);
        return true;
    default:
        return put_ext_request_body(w, m);
    }
}

static bool get_second_set_request_body(reader *r, dafs_request *m)
{
    uint16_t op = m->hdr.opcode;
    switch (op) {
    case DAFS_OP_READLINK:
    case DAFS_OP_LOOKUPP:
        get_fh(r, &m->u.fh.fh);
        return true;
    case DAFS_OP_SETATTR:
        get_setattr_req(r, &m->u.setattr);
        return true;
    case DAFS_OP_RENAME:
        get_rename_req(r, &m->u.rename);
        return true;
    case DAFS_OP_LINK:
        get_link_req(r, &m->u.link);
        return true;
    case DAFS_OP_SYMLINK:
        get_symlink_req(r, &m->u.symlink);
        return true;
    case DAFS_OP_MKNOD:
        get_mknod_req(r, &m->u.mknod);
        return true;
    case DAFS_OP_ACCESS:
        get_access_req(r, &m->u.access);
        return true;
    case DAFS_OP_APPEND_INLINE:
    case DAFS_OP_APPEND_DIRECT:
        get_append_req(r, &m->u.write, is_direct(op));
        return true;
    case DAFS_OP_REGISTER_CRED:
        get_cred_req(r, &m->u.cred);
        return true;
    case DAFS_OP_RELEASE_CRED:
        m->u.cred_id.cred_id = get_u32(r);
        return true;
    case DAFS_OP_OPEN_FH:
        get_open_fh_req(r, &m->u.open_fh);
        return true;
    default:
        return get_ext_request_body(r, m);
    }
}

/* Returns false for an unknown opcode. */
/* ==== batch I/O (issue 10): BATCH_SUBMIT, HURRY_UP, BATCH_COMPLETION ====
 * Kept together so that the table-driven codec can take them over as a unit.
 * Entries and completions are validated once at decode; the decoded message
 * points at them in the receive buffer (dafs_batch_next, dafs_batch_cpl_get),
 * so nothing is sized by the peer. */

static bool bent_has_seg(const dafs_batch_entry *e)
{
    return e->op == DAFS_BATCH_READ ||
           ((e->op == DAFS_BATCH_WRITE || e->op == DAFS_BATCH_APPEND) &&
            !(e->flags & DAFS_BENT_INLINE));
}

static bool bent_valid(const dafs_batch_entry *e)
{
    if (e->op < DAFS_BATCH_READ || e->op > DAFS_BATCH_COMMIT || (e->flags & ~DAFS_BENT_ALL))
        return false;
    if ((e->flags & DAFS_BENT_INLINE) && e->op != DAFS_BATCH_WRITE && e->op != DAFS_BATCH_APPEND)
        return false;
    return !bent_has_seg(e) || e->seg.len >= e->count;
}

static void put_batch_entry(writer *w, const dafs_batch_entry *e)
{
    writer_require(w, bent_valid(e));
    put_u64(w, e->request_id);
    put_u16(w, e->op);
    put_u16(w, e->flags);
    put_u32(w, e->hint);
    put_u32(w, e->stable);
    put_u32(w, e->count);
    put_fh(w, &e->fh);
    put_u64(w, e->stateid);
    put_u64(w, e->offset);
    if (bent_has_seg(e)) {
        put_u64(w, e->seg.addr);
        put_u64(w, e->seg.key);
        put_u64(w, e->seg.len);
    }
    if (e->flags & DAFS_BENT_INLINE) {
        writer_require(w, e->data.len == e->count);
        put_bytes(w, &e->data, 0, UINT32_MAX);
    }
}

static void get_batch_entry(reader *r, dafs_batch_entry *e)
{
    memset(e, 0, sizeof *e);
    e->request_id = get_u64(r);
    e->op = get_u16(r);
    e->flags = get_u16(r);
    e->hint = get_u32(r);
    e->stable = get_u32(r);
    e->count = get_u32(r);
    get_fh(r, &e->fh);
    e->stateid = get_u64(r);
    e->offset = get_u64(r);
    reader_require(r, e->op >= DAFS_BATCH_READ && e->op <= DAFS_BATCH_COMMIT &&
                          (e->flags & ~DAFS_BENT_ALL) == 0);
    if (r->bad)
        return;
    if (bent_has_seg(e)) {
        e->seg.addr = get_u64(r);
        e->seg.key = get_u64(r);
        e->seg.len = get_u64(r);
    }
    if (e->flags & DAFS_BENT_INLINE) {
        get_bytes(r, &e->data, 0, UINT32_MAX);
        reader_require(r, e->data.len == e->count);
    }
    reader_require(r, bent_valid(e));
}

/* Entries come from `entries` (encoding a new request) or, when that is
 * NULL, from a decoded request's `entries_wire`, which are re-encoded one by
 * one (not copied) so that they are checked again and their padding is zero. */
static void put_batch_req(writer *w, const dafs_batch_req *q)
{
    bool wire = q->entries == NULL && q->nentries > 0;
    writer_require(w, (q->mode == DAFS_BATCH_SYNC || q->mode == DAFS_BATCH_ASYNC) &&
                          q->nentries <= DAFS_BATCH_MAX &&
                          (!wire || q->entries_wire.ptr != NULL));
    put_u32(w, q->mode);
    put_u32(w, q->usec_window);
    put_u32(w, q->num_completions);
    put_u32(w, q->bc_credits);
    put_u32(w, q->nentries);
    put_pad(w, 8);
    dafs_bytes it = q->entries_wire;
    for (uint32_t i = 0; i < q->nentries && q->nentries <= DAFS_BATCH_MAX && w->err == 0; i++) {
        dafs_batch_entry e;
        if (!wire)
            put_batch_entry(w, &q->entries[i]);
        else if (dafs_batch_next(&it, &e) == 1)
            put_batch_entry(w, &e);
        else
            writer_fail(w, -DAFS_ST_INVAL); /* fewer entries than nentries */
    }
}

static void get_batch_req(reader *r, dafs_batch_req *q)
{
    q->mode = get_u32(r);
    q->usec_window = get_u32(r);
    q->num_completions = get_u32(r);
    q->bc_credits = get_u32(r);
    q->nentries = get_u32(r);
    reader_require(r, (q->mode == DAFS_BATCH_SYNC || q->mode == DAFS_BATCH_ASYNC) &&
                          q->nentries <= DAFS_BATCH_MAX);
    const uint8_t *start = reader_take(r, 8, 0);
    size_t begin = r->pos;
    dafs_batch_entry e;
    for (uint32_t i = 0; i < q->nentries && !r->bad; i++)
        get_batch_entry(r, &e);
    if (r->bad)
        return;
    q->entries_wire.ptr = start;
    q->entries_wire.len = (uint32_t)(r->pos - begin);
}

int dafs_batch_next(dafs_bytes *it, dafs_batch_entry *e)
{
    if (it->ptr == NULL || it->len == 0)
        return 0;
    reader r;
    reader_init(&r, it->ptr, it->len, 0);
    get_batch_entry(&r, e);
    if (r.bad) { /* only for a hand-made request: decode validated the rest */
        it->len = 0;
        return 0;
    }
    size_t used = round_up(r.pos, 8) < it->len ? round_up(r.pos, 8) : it->len;
    it->ptr += used;
    it->len -= (uint32_t)used;
    return 1;
}

static void put_batch_cpl(writer *w, const dafs_batch_cpl *c)
{
    writer_require(w, c->status >= 0);
    put_u64(w, c->request_id);
    put_u32(w, (uint32_t)c->status);
    put_u32(w, c->count);
    put_u64(w, c->offset);
}

/* Completions from `cpl`, or (NULL) from a decoded reply's `cpl_wire`. */
static void put_batch_rep(writer *w, const dafs_batch_rep *q)
{
    bool wire = q->cpl == NULL && q->ncompl > 0;
    writer_require(w, !wire || ((size_t)q->ncompl * DAFS_BATCH_CPL_SIZE <= q->cpl_wire.len &&
                                q->cpl_wire.ptr != NULL));
    put_u32(w, q->ncompl);
    put_u32(w, q->outstanding);
    for (uint32_t i = 0; i < q->ncompl && w->err == 0; i++) {
        dafs_batch_cpl c;
        if (wire)
            dafs_batch_cpl_get(q, i, &c);
        put_batch_cpl(w, wire ? &c : &q->cpl[i]);
    }
}

static void get_batch_rep(reader *r, dafs_batch_rep *q)
{
    q->ncompl = get_u32(r);
    q->outstanding = get_u32(r);
    /* the count is checked against the bytes that are there before it is used */
    reader_require(r, q->ncompl <= (DAFS_MSG_LIMIT / DAFS_BATCH_CPL_SIZE));
    size_t n = r->bad ? 0 : (size_t)q->ncompl * DAFS_BATCH_CPL_SIZE;
    const uint8_t *p = reader_take(r, 8, n);
    if (r->bad)
        return;
    q->cpl_wire.ptr = p;
    q->cpl_wire.len = (uint32_t)n;
    for (uint32_t i = 0; i < q->ncompl; i++) /* statuses are never negative */
        reader_require(r, (int32_t)load_u32(p + (size_t)i * DAFS_BATCH_CPL_SIZE + 8) >= 0);
}

void dafs_batch_cpl_get(const dafs_batch_rep *r, uint32_t i, dafs_batch_cpl *out)
{
    memset(out, 0, sizeof *out);
    if (i >= r->ncompl || r->cpl_wire.ptr == NULL ||
        (size_t)(i + 1) * DAFS_BATCH_CPL_SIZE > r->cpl_wire.len)
        return;
    const uint8_t *p = r->cpl_wire.ptr + (size_t)i * DAFS_BATCH_CPL_SIZE;
    out->request_id = load_u64(p);
    out->status = (int32_t)load_u32(p + 8);
    out->count = load_u32(p + 12);
    out->offset = load_u64(p + 16);
}

/* Request bodies of the batch ops; false for another op. */
static bool put_batch_request_body(writer *w, const dafs_request *m)
{
    switch (m->hdr.opcode) {
    case DAFS_OP_BATCH_SUBMIT:
        put_batch_req(w, &m->u.batch);
        return true;
    case DAFS_OP_HURRY_UP:
        put_u32(w, m->u.hurry.bc_credits);
        return true;
    default:
        return false;
    }
}

static bool get_batch_request_body(reader *r, dafs_request *m)
{
    switch (m->hdr.opcode) {
    case DAFS_OP_BATCH_SUBMIT:
        get_batch_req(r, &m->u.batch);
        return true;
    case DAFS_OP_HURRY_UP:
        m->u.hurry.bc_credits = get_u32(r);
        return true;
    default:
        return false;
    }
}

static bool put_batch_reply_body(writer *w, const dafs_reply *m)
{
    switch (m->hdr.opcode) {
    case DAFS_OP_BATCH_SUBMIT:
        put_batch_rep(w, &m->u.batch);
        return true;
    case DAFS_OP_HURRY_UP:
        return true;
    default:
        return false;
    }
}

static bool get_batch_reply_body(reader *r, dafs_reply *m)
{
    switch (m->hdr.opcode) {
    case DAFS_OP_BATCH_SUBMIT:
        get_batch_rep(r, &m->u.batch);
        return true;
    case DAFS_OP_HURRY_UP:
        return true;
    default:
        return false;
    }
}

static void notify_hdr(dafs_hdr *h)
{
    h->magic = DAFS_PROTO_MAGIC;
    h->version = DAFS_PROTO_VERSION;
    h->opcode = DAFS_OP_BATCH_COMPLETION;
    h->flags = DAFS_HDR_NOTIFY;
    h->status = 0;
    h->cred = 0;
}

int dafs_encode_notify(void *buf, size_t cap, const dafs_notify *m)
{
    writer w;
    writer_init(&w, buf, cap, 0);
    dafs_hdr h = m->hdr;
    writer_require(&w, h.opcode == DAFS_OP_BATCH_COMPLETION && h.status == 0);
    notify_hdr(&h);
    (void)writer_reserve(&w, 1, DAFS_HDR_SIZE);
    put_batch_rep(&w, &m->batch);
    put_pad(&w, 8);
    if (w.err != 0)
        return w.err;
    h.length = (uint32_t)w.pos;
    dafs_encode_hdr(w.buf, &h);
    return (int)w.pos;
}

int dafs_decode_notify(const void *buf, size_t len, dafs_notify *out)
{
    memset(out, 0, sizeof *out);
    int rc = dafs_decode_hdr(buf, len, &out->hdr);
    if (rc != 0)
        return rc;
    if (out->hdr.flags != DAFS_HDR_NOTIFY || out->hdr.status != 0 || out->hdr.cred != 0)
        return -DAFS_ST_BADMSG;
    if (out->hdr.opcode != DAFS_OP_BATCH_COMPLETION)
        return -DAFS_ST_BADOP;
    reader r;
    reader_init(&r, buf, len, DAFS_HDR_SIZE);
    get_batch_rep(&r, &out->batch);
    return reader_finish(&r);
}

/* Offsets of the batch reply's fixed fields, right after the header. */
#define BATCH_NCOMPL_OFF DAFS_HDR_SIZE
#define BATCH_OUTSTANDING_OFF (DAFS_HDR_SIZE + 4)
#define BATCH_CPL_OFF (DAFS_HDR_SIZE + DAFS_BATCH_REP_FIXED)

int dafs_batch_enc_begin(dafs_batch_enc *e, void *buf, size_t cap, const dafs_hdr *hdr)
{
    e->buf = buf;
    e->cap = cap < DAFS_MSG_LIMIT ? cap : DAFS_MSG_LIMIT;
    e->pos = BATCH_CPL_OFF;
    e->ncompl = 0;
    dafs_hdr h = *hdr;
    if (h.flags == DAFS_HDR_NOTIFY) {
        notify_hdr(&h);
    } else {
        if (h.opcode != DAFS_OP_BATCH_SUBMIT || h.status != DAFS_ST_OK ||
            (h.flags & ~DAFS_HDR_REPLY) != 0)
            return -DAFS_ST_INVAL;
        h.magic = DAFS_PROTO_MAGIC;
        h.version = DAFS_PROTO_VERSION;
        h.flags = DAFS_HDR_REPLY;
        h.cred = 0;
    }
    if (e->cap < BATCH_CPL_OFF)
        return -DAFS_ST_OVERFLOW;
    h.length = 0; /* set by finish */
    dafs_encode_hdr(e->buf, &h);
    memset(e->buf + DAFS_HDR_SIZE, 0, DAFS_BATCH_REP_FIXED);
    return 0;
}

int dafs_batch_enc_add(dafs_batch_enc *e, const dafs_batch_cpl *c)
{
    writer w;
    writer_init(&w, e->buf, e->cap, e->pos);
    put_batch_cpl(&w, c);
    if (w.err != 0)
        return w.err;
    e->pos = w.pos;
    e->ncompl++;
    return 0;
}

int dafs_batch_enc_finish(dafs_batch_enc *e, uint32_t outstanding)
{
    if (e->pos < BATCH_CPL_OFF || e->pos > e->cap || e->pos % 8 != 0)
        return -DAFS_ST_INVAL;
    store_u32(e->buf + BATCH_NCOMPL_OFF, e->ncompl);
    store_u32(e->buf + BATCH_OUTSTANDING_OFF, outstanding);
    store_u32(e->buf + 8, (uint32_t)e->pos);
    return (int)e->pos;
}
/* ==== end of batch I/O ==== */

static bool put_request_body(writer *w, const dafs_request *m)
{
    uint16_t op = m->hdr.opcode;
    if (op == DAFS_OP_BATCH_SUBMIT || op == DAFS_OP_HURRY_UP) /* batch I/O */
        return put_batch_request_body(w, m);
    switch (op) {
    case DAFS_OP_NULL:
    case DAFS_OP_DISCONNECT:
    case DAFS_OP_GETROOT:
        return true;
    case DAFS_OP_CONNECT:
        put_connect_req(w, &m->u.connect);
        return true;
    case DAFS_OP_GETATTR:
    case DAFS_OP_STATFS:
        put_fh(w, &m->u.fh.fh);
        return true;
    case DAFS_OP_CLOSE:
        put_close_req(w, &m->u.close);
        return true;
    case DAFS_OP_LOOKUP:
    case DAFS_OP_OPEN:
    case DAFS_OP_REMOVE:
    case DAFS_OP_MKDIR:
    case DAFS_OP_RMDIR:
        put_dirop_req(w, &m->u.dirop);
        return true;
    case DAFS_OP_READ_INLINE:
    case DAFS_OP_READ_DIRECT:
        put_read_req(w, &m->u.read, is_direct(op));
        return true;
    case DAFS_OP_WRITE_INLINE:
    case DAFS_OP_WRITE_DIRECT:
        put_write_req(w, &m->u.write, is_direct(op));
        return true;
    case DAFS_OP_COMMIT:
        put_commit_req(w, &m->u.commit);
        return true;
    case DAFS_OP_READDIR:
        put_readdir_req(w, &m->u.readdir);
        return true;
    default:
        return put_second_set_request_body(w, m);
    }
}

static bool get_request_body(reader *r, dafs_request *m)
{
    uint16_t op = m->hdr.opcode;
    if (op == DAFS_OP_BATCH_SUBMIT || op == DAFS_OP_HURRY_UP) /* batch I/O */
        return get_batch_request_body(r, m);
    switch (op) {
    case DAFS_OP_NULL:
    case DAFS_OP_DISCONNECT:
    case DAFS_OP_GETROOT:
        return true;
    case DAFS_OP_CONNECT:
        get_connect_req(r, &m->u.connect);
        return true;
    case DAFS_OP_GETATTR:
    case DAFS_OP_STATFS:
        get_fh(r, &m->u.fh.fh);
        return true;
    case DAFS_OP_CLOSE:
        get_close_req(r, &m->u.close);
        return true;
    case DAFS_OP_LOOKUP:
    case DAFS_OP_OPEN:
    case DAFS_OP_REMOVE:
    case DAFS_OP_MKDIR:
    case DAFS_OP_RMDIR:
        get_dirop_req(r, &m->u.dirop);
        return true;
    case DAFS_OP_READ_INLINE:
    case DAFS_OP_READ_DIRECT:
        get_read_req(r, &m->u.read, is_direct(op));
        return true;
    case DAFS_OP_WRITE_INLINE:
    case DAFS_OP_WRITE_DIRECT:
        get_write_req(r, &m->u.write, is_direct(op));
        return true;
    case DAFS_OP_COMMIT:
        get_commit_req(r, &m->u.commit);
        return true;
    case DAFS_OP_READDIR:
        get_readdir_req(r, &m->u.readdir);
        return true;
    default:
        return get_second_set_request_body(r, m);
    }
}

/* ---- reply bodies ------------------------------------------------------ */

static void put_connect_rep(writer *w, const dafs_connect_rep *c)
{
    put_u64(w, c->server_instance);
    put_u32(w, c->max_request);
    put_u32(w, c->max_response);
    put_u32(w, c->inline_max);
    put_u32(w, c->max_io);
    put_u32(w, c->lease_ms);
    put_u16(w, c->max_segs);
}

static void get_connect_rep(reader *r, dafs_connect_rep *c)
{
    c->server_instance = get_u64(r);
    c->max_request = get_u32(r);
    c->max_response = get_u32(r);
    c->inline_max = get_u32(r);
    c->max_io = get_u32(r);
    c->lease_ms = get_u32(r);
    c->max_segs = get_u16(r);
}

/* with_state: OPEN and OPEN_FH replies end with the new stateid. */
static void put_fh_attr_rep(writer *w, const dafs_fh_attr_rep *f, bool with_state)
{
    writer_require(w, f->created <= 1);
    put_fh(w, &f->fh);
    put_attr(w, &f->attr);
    put_u8(w, f->created);
    if (with_state)
        put_u64(w, f->stateid);
}

static void get_fh_attr_rep(reader *r, dafs_fh_attr_rep *f, bool with_state)
{
    get_fh(r, &f->fh);
    get_attr(r, &f->attr);
    f->created = get_u8(r);
    reader_require(r, f->created <= 1);
    if (with_state)
        f->stateid = get_u64(r);
}

static void put_read_rep(writer *w, const dafs_read_rep *q, bool direct)
{
    writer_require(w, q->eof <= 1);
    put_u32(w, q->count);
    put_u8(w, q->eof);
    if (!direct) {
        writer_require(w, q->data.len == q->count);
        put_bytes(w, &q->data, 0, UINT32_MAX);
    }
}

static void get_read_rep(reader *r, dafs_read_rep *q, bool direct)
{
    q->count = get_u32(r);
    q->eof = get_u8(r);
    reader_require(r, q->eof <= 1);
    if (!direct) {
        get_bytes(r, &q->data, 0, UINT32_MAX);
        reader_require(r, q->data.len == q->count);
    }
}

/* APPEND_* replies add the offset the data landed at; WRITE_* do not. */
static void put_write_rep(writer *w, const dafs_write_rep *q, bool append)
{
    put_u32(w, q->count);
    put_u32(w, q->committed);
    put_u64(w, q->verifier);
    if (append)
        put_u64(w, q->offset);
}

static void get_write_rep(reader *r, dafs_write_rep *q, bool append)
{
    q->count = get_u32(r);
    q->committed = get_u32(r);
    q->verifier = get_u64(r);
    if (append)
        q->offset = get_u64(r);
}

/*
 * eof, nentries, then the entries, which start 8-aligned.  The entries are
 * re-encoded one by one (not copied) so that they are checked and their pad
 * bytes come out zero.
 */
static void put_readdir_rep(writer *w, const dafs_readdir_rep *d, bool plus)
{
    writer_require(w, d->eof <= 1);
    put_u8(w, d->eof);
    put_u32(w, d->nentries);
    put_pad(w, 8);
    reader r;
    reader_init(&r, d->entries.ptr, d->entries.ptr != NULL ? d->entries.len : 0, 0);
    dafs_dirent_wire ent;
    dafs_fh fh;
    dafs_attr attr;
    int has;
    for (uint32_t i = 0; i < d->nentries && !r.bad && w->err != -DAFS_ST_INVAL; i++) {
        get_any_dirent(&r, plus, &ent, &fh, &attr, &has);
        if (!r.bad && plus)
            put_dirent_plus(w, &ent, has ? &fh : NULL, has ? &attr : NULL, (unsigned)has);
        else if (!r.bad)
            put_dirent(w, &ent);
    }
    writer_require(w, reader_finish(&r) == 0);
}

/* Entries are checked here, once, so that dafs_readdir_next() cannot fail. */
static void get_readdir_rep(reader *r, dafs_readdir_rep *d, bool plus)
{
    d->eof = get_u8(r);
    reader_require(r, d->eof <= 1);
    d->nentries = get_u32(r);
    d->plus = plus ? 1 : 0;
    const uint8_t *start = reader_take(r, 8, 0);
    size_t begin = r->pos;
    dafs_dirent_wire ent;
    dafs_fh fh;
    dafs_attr attr;
    int has;
    for (uint32_t i = 0; i < d->nentries && !r->bad; i++)
        get_any_dirent(r, plus, &ent, &fh, &attr, &has);
    if (r->bad)
        return;
    d->entries.ptr = start;
    d->entries.len = (uint32_t)(r->pos - begin);
}

static void put_statfs_rep(writer *w, const dafs_statfs_rep *s)
{
    put_u64(w, s->bsize);
    put_u64(w, s->frsize);
    put_u64(w, s->blocks);
    put_u64(w, s->bfree);
    put_u64(w, s->bavail);
    put_u64(w, s->files);
    put_u64(w, s->ffree);
    put_u32(w, s->namemax);
}

static void get_statfs_rep(reader *r, dafs_statfs_rep *s)
{
    s->bsize = get_u64(r);
    s->frsize = get_u64(r);
    s->blocks = get_u64(r);
    s->bfree = get_u64(r);
    s->bavail = get_u64(r);
    s->files = get_u64(r);
    s->ffree = get_u64(r);
    s->namemax = get_u32(r);
}

/* READLINK: the target, 1..DAFS_PATH_MAX bytes. */
static void put_readlink_rep(writer *w, const dafs_readlink_rep *q)
{
    put_bytes(w, &q->target, 1, DAFS_PATH_MAX);
}

static void get_readlink_rep(reader *r, dafs_readlink_rep *q)
{
    get_bytes(r, &q->target, 1, DAFS_PATH_MAX);
}

/* REGISTER_CRED: the new id; 0 means anonymous and is never handed out. */
static void put_cred_rep(writer *w, const dafs_cred_rep *c)
{
    writer_require(w, c->cred_id != 0);
    put_u32(w, c->cred_id);
}

static void get_cred_rep(reader *r, dafs_cred_rep *c)
{
    c->cred_id = get_u32(r);
    reader_require(r, c->cred_id != 0);
}

/* ---- extra ops (70..79): reply bodies --------------------------------- */

/* GETXATTR/LISTXATTR: u32 size, then the data (empty for a size query, else
 * exactly size bytes). */
static void put_xattr_rep(writer *w, uint16_t op, const dafs_xattr_rep *q)
{
    uint32_t max = op == DAFS_OP_GETXATTR ? DAFS_XATTR_VALUE_MAX : DAFS_XATTR_LIST_MAX;
    writer_require(w, q->size <= max && (q->data.len == 0 || q->data.len == q->size));
    put_u32(w, q->size);
    put_bytes(w, &q->data, 0, max);
}

static void get_xattr_rep(reader *r, uint16_t op, dafs_xattr_rep *q)
{
    uint32_t max = op == DAFS_OP_GETXATTR ? DAFS_XATTR_VALUE_MAX : DAFS_XATTR_LIST_MAX;
    q->size = get_u32(r);
    get_bytes(r, &q->data, 0, max);
    reader_require(r, q->size <= max && (q->data.len == 0 || q->data.len == q->size));
}

static bool put_ext_reply_body(writer *w, const dafs_reply *m)
{
    uint16_t op = m->hdr.opcode;
    switch (op) {
    case DAFS_OP_SETXATTR:
    case DAFS_OP_REMOVEXATTR:
        return true;
    case DAFS_OP_FALLOCATE:
        put_attr(w, &m->u.attr.attr);
        return true;
    case DAFS_OP_COPY_RANGE:
    case DAFS_OP_SEEK:
        put_u64(w, m->u.u64.value);
        return true;
    case DAFS_OP_GETXATTR:
    case DAFS_OP_LISTXATTR:
        put_xattr_rep(w, op, &m->u.xattr);
        return true;
    case DAFS_OP_READDIRPLUS:
        put_readdir_rep(w, &m->u.readdir, true);
        return true;
    default:
        return false;
    }
}

static bool get_ext_reply_body(reader *r, dafs_reply *m)
{
    uint16_t op = m->hdr.opcode;
    switch (op) {
    case DAFS_OP_SETXATTR:
    case DAFS_OP_REMOVEXATTR:
        return true;
    case DAFS_OP_FALLOCATE:
        get_attr(r, &m->u.attr.attr);
        return true;
    case DAFS_OP_COPY_RANGE:
    case DAFS_OP_SEEK:
        m->u.u64.value = get_u64(r);
        return true;
    case DAFS_OP_GETXATTR:
    case DAFS_OP_LISTXATTR:
        get_xattr_rep(r, op, &m->u.xattr);
        return true;
    case DAFS_OP_READDIRPLUS:
        get_readdir_rep(r, &m->u.readdir, true);
        return true;
    default:
        return false;
    }
}

/* The second set of ops (SETATTR..RELEASE_CRED); false for an unknown op. */
static bool put_second_set_reply_body(writer *w, const dafs_reply *m)
{
    uint16_t op = m->hdr.opcode;
    switch (op) {
    case DAFS_OP_RENAME:
    case DAFS_OP_ACCESS:
    case DAFS_OP_RELEASE_CRED:
        return true;
    case DAFS_OP_SETATTR:
    case DAFS_OP_LINK:
        put_attr(w, &m->u.attr.attr);
        return true;
    case DAFS_OP_SYMLINK:
    case DAFS_OP_MKNOD:
    case DAFS_OP_LOOKUPP:
        put_fh_attr_rep(w, &m->u.fh_attr, false);
        return true;
    case DAFS_OP_OPEN_FH:
        put_fh_attr_rep(w, &m->u.fh_attr, true);
        return true;
    case DAFS_OP_READLINK:
        put_readlink_rep(w, &m->u.readlink);
        return true;
    case DAFS_OP_APPEND_INLINE:
    case DAFS_OP_APPEND_DIRECT:
        put_write_rep(w, &m->u.write, true);
        return true;
    case DAFS_OP_REGISTER_CRED:
        put_cred_rep(w, &m->u.cred);
        return true;
    default:
        return put_ext_reply_body(w, m);
    }
}

static bool get_second_set_reply_body(reader *r, dafs_reply *m)
{
    uint16_t op = m->hdr.opcode;
    switch (op) {
    case DAFS_OP_RENAME:
    case DAFS_OP_ACCESS:
    case DAFS_OP_RELEASE_CRED:
        return true;
    case DAFS_OP_SETATTR:
    case DAFS_OP_LINK:
        get_attr(r, &m->u.attr.attr);
        return true;
    case DAFS_OP_SYMLINK:
    case DAFS_OP_MKNOD:
    case DAFS_OP_LOOKUPP:
        get_fh_attr_rep(r, &m->u.fh_attr, false);
        return true;
    case DAFS_OP_OPEN_FH:
        get_fh_attr_rep(r, &m->u.fh_attr, true);
        return true;
    case DAFS_OP_READLINK:
        get_readlink_rep(r, &m->u.readlink);
        return true;
    case DAFS_OP_APPEND_INLINE:
    case DAFS_OP_APPEND_DIRECT:
        get_write_rep(r, &m->u.write, true);
        return true;
    case DAFS_OP_REGISTER_CRED:
        get_cred_rep(r, &m->u.cred);
        return true;
    default:
        return get_ext_reply_body(r, m);
    }
}

static bool put_reply_body(writer *w, const dafs_reply *m)
{
    uint16_t op = m->hdr.opcode;
    if (op == DAFS_OP_BATCH_SUBMIT || op == DAFS_OP_HURRY_UP) /* batch I/O */
        return put_batch_reply_body(w, m);
    switch (op) {
    case DAFS_OP_NULL:
    case DAFS_OP_DISCONNECT:
    case DAFS_OP_CLOSE:
    case DAFS_OP_REMOVE:
    case DAFS_OP_RMDIR:
        return true;
    case DAFS_OP_CONNECT:
        put_connect_rep(w, &m->u.connect);
        return true;
    case DAFS_OP_GETROOT:
    case DAFS_OP_LOOKUP:
    case DAFS_OP_MKDIR:
        put_fh_attr_rep(w, &m->u.fh_attr, false);
        return true;
    case DAFS_OP_OPEN:
        put_fh_attr_rep(w, &m->u.fh_attr, true);
        return true;
    case DAFS_OP_GETATTR:
        put_attr(w, &m->u.attr.attr);
        return true;
    case DAFS_OP_READ_INLINE:
    case DAFS_OP_READ_DIRECT:
        put_read_rep(w, &m->u.read, is_direct(op));
        return true;
    case DAFS_OP_WRITE_INLINE:
    case DAFS_OP_WRITE_DIRECT:
        put_write_rep(w, &m->u.write, false);
        return true;
    case DAFS_OP_COMMIT:
        put_u64(w, m->u.commit.verifier);
        return true;
    case DAFS_OP_READDIR:
        put_readdir_rep(w, &m->u.readdir, false);
        return true;
    case DAFS_OP_STATFS:
        put_statfs_rep(w, &m->u.statfs);
        return true;
    default:
        return put_second_set_reply_body(w, m);
    }
}

static bool get_reply_body(reader *r, dafs_reply *m)
{
    uint16_t op = m->hdr.opcode;
    if (op == DAFS_OP_BATCH_SUBMIT || op == DAFS_OP_HURRY_UP) /* batch I/O */
        return get_batch_reply_body(r, m);
    switch (op) {
    case DAFS_OP_NULL:
    case DAFS_OP_DISCONNECT:
    case DAFS_OP_CLOSE:
    case DAFS_OP_REMOVE:
    case DAFS_OP_RMDIR:
        return true;
    case DAFS_OP_CONNECT:
        get_connect_rep(r, &m->u.connect);
        return true;
    case DAFS_OP_GETROOT:
    case DAFS_OP_LOOKUP:
    case DAFS_OP_MKDIR:
        get_fh_attr_rep(r, &m->u.fh_attr, false);
        return true;
    case DAFS_OP_OPEN:
        get_fh_attr_rep(r, &m->u.fh_attr, true);
        return true;
    case DAFS_OP_GETATTR:
        get_attr(r, &m->u.attr.attr);
        return true;
    case DAFS_OP_READ_INLINE:
    case DAFS_OP_READ_DIRECT:
        get_read_rep(r, &m->u.read, is_direct(op));
        return true;
    case DAFS_OP_WRITE_INLINE:
    case DAFS_OP_WRITE_DIRECT:
        get_write_rep(r, &m->u.write, false);
        return true;
    case DAFS_OP_COMMIT:
        m->u.commit.verifier = get_u64(r);
        return true;
    case DAFS_OP_READDIR:
        get_readdir_rep(r, &m->u.readdir, false);
        return true;
    case DAFS_OP_STATFS:
        get_statfs_rep(r, &m->u.statfs);
        return true;
    default:
        return get_second_set_reply_body(r, m);
    }
}

/* ---- whole messages ---------------------------------------------------- */

/*
 * Header fields the encoder owns: magic, version and the reply flag are set
 * here (and cred is cleared in replies); any other flag bit is a caller bug.
 */
static void prepare_hdr(writer *w, dafs_hdr *h, bool reply)
{
    writer_require(w, (h->flags & ~DAFS_HDR_REPLY) == 0); /* NOTIFY: not encoded yet */
    h->magic = DAFS_PROTO_MAGIC;
    h->version = DAFS_PROTO_VERSION;
    h->flags = reply ? DAFS_HDR_REPLY : 0;
    if (reply)
        h->cred = 0;
    (void)writer_reserve(w, 1, DAFS_HDR_SIZE);
}

/* Pad the message to a multiple of 8, then write the header with its length. */
static int finish_message(writer *w, dafs_hdr *h)
{
    put_pad(w, 8);
    if (w->err != 0)
        return w->err;
    h->length = (uint32_t)w->pos;
    dafs_encode_hdr(w->buf, h);
    return (int)w->pos;
}

int dafs_encode_request(void *buf, size_t cap, const dafs_request *m)
{
    writer w;
    writer_init(&w, buf, cap, 0);
    dafs_hdr h = m->hdr;
    writer_require(&w, h.status == 0);
    prepare_hdr(&w, &h, false);
    writer_require(&w, put_request_body(&w, m));
    return finish_message(&w, &h);
}

int dafs_encode_reply(void *buf, size_t cap, const dafs_reply *m)
{
    writer w;
    writer_init(&w, buf, cap, 0);
    dafs_hdr h = m->hdr;
    writer_require(&w, h.status >= 0);
    prepare_hdr(&w, &h, true);
    if (h.status == DAFS_ST_OK)
        writer_require(&w, put_reply_body(&w, m));
    return finish_message(&w, &h);
}

int dafs_decode_request(const void *buf, size_t len, dafs_request *out)
{
    memset(out, 0, sizeof *out);
    int rc = dafs_decode_hdr(buf, len, &out->hdr);
    if (rc != 0)
        return rc;
    if (out->hdr.flags != 0 || out->hdr.status != 0)
        return -DAFS_ST_BADMSG;
    reader r;
    reader_init(&r, buf, len, DAFS_HDR_SIZE);
    if (!get_request_body(&r, out))
        return -DAFS_ST_BADOP;
    return reader_finish(&r);
}

int dafs_decode_reply(const void *buf, size_t len, dafs_reply *out)
{
    memset(out, 0, sizeof *out);
    int rc = dafs_decode_hdr(buf, len, &out->hdr);
    if (rc != 0)
        return rc;
    if (out->hdr.flags != DAFS_HDR_REPLY || out->hdr.status < 0)
        return -DAFS_ST_BADMSG;
    reader r;
    reader_init(&r, buf, len, DAFS_HDR_SIZE);
    /* Error replies are header-only, whatever the opcode (it may be one the
     * server did not know, answered with DAFS_ST_BADOP). */
    if (out->hdr.status == DAFS_ST_OK && !get_reply_body(&r, out))
        return -DAFS_ST_BADOP;
    return reader_finish(&r);
}

int dafs_encode_version_error(void *buf, size_t cap, const dafs_hdr *req, uint16_t credits)
{
    bool v1 = req->version == 1;
    size_t len = v1 ? DAFS_HDR_V1_SIZE : DAFS_HDR_SIZE;
    if (cap < len)
        return -DAFS_ST_OVERFLOW;
    dafs_hdr h;
    memset(&h, 0, sizeof h);
    h.magic = DAFS_PROTO_MAGIC;
    h.version = v1 ? 1 : DAFS_PROTO_VERSION;
    h.opcode = req->opcode;
    h.length = (uint32_t)len;
    h.flags = DAFS_HDR_REPLY;
    h.credits = credits;
    h.session_id = req->session_id;
    h.xid = req->xid;
    h.status = DAFS_ST_VERSION;
    dafs_encode_hdr(buf, &h); /* a version-1 header is the 40-byte prefix */
    return (int)len;
}

/* ---- incremental READDIR reply ----------------------------------------- */

/* Offsets of the READDIR reply's fixed fields, right after the header. */
#define HDR_LENGTH_OFF       8
#define READDIR_EOF_OFF      DAFS_HDR_SIZE
#define READDIR_NENTRIES_OFF (DAFS_HDR_SIZE + 4)
#define READDIR_ENTRIES_OFF  (DAFS_HDR_SIZE + 8)

int dafs_readdir_enc_begin(dafs_readdir_enc *e, void *buf, size_t cap, const dafs_hdr *hdr)
{
    e->buf = buf;
    e->cap = cap < DAFS_MSG_LIMIT ? cap : DAFS_MSG_LIMIT;
    e->pos = READDIR_ENTRIES_OFF;
    e->nentries = 0;
    e->plus = hdr->opcode == DAFS_OP_READDIRPLUS;
    if ((hdr->opcode != DAFS_OP_READDIR && !e->plus) || hdr->status != DAFS_ST_OK ||
        (hdr->flags & ~DAFS_HDR_REPLY) != 0)
        return -DAFS_ST_INVAL;
    if (e->cap < READDIR_ENTRIES_OFF)
        return -DAFS_ST_OVERFLOW;
    dafs_hdr h = *hdr;
    h.magic = DAFS_PROTO_MAGIC;
    h.version = DAFS_PROTO_VERSION;
    h.flags = DAFS_HDR_REPLY;
    h.cred = 0;
    h.length = 0; /* set by finish */
    dafs_encode_hdr(e->buf, &h);
    memset(e->buf + DAFS_HDR_SIZE, 0, READDIR_ENTRIES_OFF - DAFS_HDR_SIZE);
    return 0;
}

int dafs_readdir_enc_add(dafs_readdir_enc *e, const dafs_dirent_wire *ent)
{
    if (e->plus)
        return dafs_readdir_enc_add_plus(e, ent, NULL, NULL, 0);
    writer w;
    writer_init(&w, e->buf, e->cap, e->pos);
    put_dirent(&w, ent);
    if (w.err != 0)
        return w.err;
    e->pos = w.pos;
    e->nentries++;
    return 0;
}

int dafs_readdir_enc_add_plus(dafs_readdir_enc *e, const dafs_dirent_wire *ent,
                              const dafs_fh *fh, const dafs_attr *attr, unsigned flags)
{
    if (!e->plus)
        return -DAFS_ST_INVAL;
    writer w;
    writer_init(&w, e->buf, e->cap, e->pos);
    put_dirent_plus(&w, ent, fh, attr, flags);
    if (w.err != 0)
        return w.err;
    e->pos = w.pos;
    e->nentries++;
    return 0;
}

int dafs_readdir_enc_finish(dafs_readdir_enc *e, bool eof)
{
    if (e->pos < READDIR_ENTRIES_OFF || e->pos > e->cap || e->pos % 8 != 0)
        return -DAFS_ST_INVAL;
    e->buf[READDIR_EOF_OFF] = eof ? 1 : 0;
    store_u32(e->buf + READDIR_NENTRIES_OFF, e->nentries);
    store_u32(e->buf + HDR_LENGTH_OFF, (uint32_t)e->pos);
    return (int)e->pos;
}

void dafs_readdir_iter_init(dafs_readdir_iter *it, const dafs_readdir_rep *rep)
{
    it->rest = rep->entries;
    it->left = rep->nentries;
    it->plus = rep->plus;
}

int dafs_readdir_next(dafs_readdir_iter *it, dafs_dirent_wire *ent)
{
    dafs_fh fh;
    dafs_attr attr;
    int has;
    return dafs_readdirplus_next(it, ent, &fh, &attr, &has);
}

int dafs_readdirplus_next(dafs_readdir_iter *it, dafs_dirent_wire *ent, dafs_fh *fh,
                          dafs_attr *attr, int *has_attr)
{
    *has_attr = 0;
    if (it->left == 0 || it->rest.ptr == NULL)
        return 0;
    reader r;
    reader_init(&r, it->rest.ptr, it->rest.len, 0);
    get_any_dirent(&r, it->plus, ent, fh, attr, has_attr);
    if (r.bad) { /* only for a hand-made rep: decode validated the rest */
        it->left = 0;
        return 0;
    }
    it->rest.ptr += r.pos;
    it->rest.len -= (uint32_t)r.pos;
    it->left--;
    return 1;
}

/* ---- names ------------------------------------------------------------- */

static const char *const op_names[DAFS_OP_COUNT] = {
    [DAFS_OP_NULL] = "NULL",
    [DAFS_OP_CONNECT] = "CONNECT",
    [DAFS_OP_DISCONNECT] = "DISCONNECT",
    [DAFS_OP_GETROOT] = "GETROOT",
    [DAFS_OP_LOOKUP] = "LOOKUP",
    [DAFS_OP_GETATTR] = "GETATTR",
    [DAFS_OP_OPEN] = "OPEN",
    [DAFS_OP_CLOSE] = "CLOSE",
    [DAFS_OP_READ_INLINE] = "READ_INLINE",
    [DAFS_OP_READ_DIRECT] = "READ_DIRECT",
    [DAFS_OP_WRITE_INLINE] = "WRITE_INLINE",
    [DAFS_OP_WRITE_DIRECT] = "WRITE_DIRECT",
    [DAFS_OP_COMMIT] = "COMMIT",
    [DAFS_OP_REMOVE] = "REMOVE",
    [DAFS_OP_MKDIR] = "MKDIR",
    [DAFS_OP_RMDIR] = "RMDIR",
    [DAFS_OP_READDIR] = "READDIR",
    [DAFS_OP_STATFS] = "STATFS",
    [DAFS_OP_SETATTR] = "SETATTR",
    [DAFS_OP_RENAME] = "RENAME",
    [DAFS_OP_LINK] = "LINK",
    [DAFS_OP_SYMLINK] = "SYMLINK",
    [DAFS_OP_READLINK] = "READLINK",
    [DAFS_OP_MKNOD] = "MKNOD",
    [DAFS_OP_ACCESS] = "ACCESS",
    [DAFS_OP_LOOKUPP] = "LOOKUPP",
    [DAFS_OP_APPEND_INLINE] = "APPEND_INLINE",
    [DAFS_OP_APPEND_DIRECT] = "APPEND_DIRECT",
    [DAFS_OP_REGISTER_CRED] = "REGISTER_CRED",
    [DAFS_OP_RELEASE_CRED] = "RELEASE_CRED",
    [DAFS_OP_OPEN_FH] = "OPEN_FH",
};

static const char *const ext_op_names[DAFS_OP_EXT_END - DAFS_OP_EXT_FIRST] = {
    [DAFS_OP_FALLOCATE - DAFS_OP_EXT_FIRST] = "FALLOCATE",
    [DAFS_OP_COPY_RANGE - DAFS_OP_EXT_FIRST] = "COPY_RANGE",
    [DAFS_OP_SEEK - DAFS_OP_EXT_FIRST] = "SEEK",
    [DAFS_OP_GETXATTR - DAFS_OP_EXT_FIRST] = "GETXATTR",
    [DAFS_OP_SETXATTR - DAFS_OP_EXT_FIRST] = "SETXATTR",
    [DAFS_OP_LISTXATTR - DAFS_OP_EXT_FIRST] = "LISTXATTR",
    [DAFS_OP_REMOVEXATTR - DAFS_OP_EXT_FIRST] = "REMOVEXATTR",
    [DAFS_OP_READDIRPLUS - DAFS_OP_EXT_FIRST] = "READDIRPLUS",
};

bool dafs_op_known(uint16_t op)
{
    return op < DAFS_OP_COUNT || (op >= DAFS_OP_EXT_FIRST && op < DAFS_OP_EXT_END) ||
           op == DAFS_OP_BATCH_SUBMIT || op == DAFS_OP_HURRY_UP;
}

uint16_t dafs_op_next(uint16_t op)
{
    for (uint32_t next = (uint32_t)op + 1; next < DAFS_OP_LIMIT; next++)
        if (dafs_op_known((uint16_t)next))
            return (uint16_t)next;
    return DAFS_OP_LIMIT;
}

const char *dafs_op_name(uint16_t op)
{
    if (op == DAFS_OP_BATCH_SUBMIT) /* batch I/O */
        return "BATCH_SUBMIT";
    if (op == DAFS_OP_HURRY_UP)
        return "HURRY_UP";
    if (op >= DAFS_OP_EXT_FIRST && op < DAFS_OP_EXT_END)
        return ext_op_names[op - DAFS_OP_EXT_FIRST];
    if (op >= DAFS_OP_COUNT || op_names[op] == NULL)
        return "UNKNOWN";
    return op_names[op];
}
