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
 *    once at the end.  That lets every message body be a plain table of
 *    fields in wire order (the order of the structs in proto.h), which one
 *    generic walker encodes and another decodes (see "message descriptions").
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

/* ---- message descriptions ---------------------------------------------- */

/*
 * Every body is described once, as a table of fields in wire order, and two
 * walkers (put_body, get_body) encode and decode any of them through the
 * cursors above.  A field names a member of a proto.h struct by offsetof;
 * the MEMBER() macro also checks, at compile time, that the member has the
 * C type the field kind expects, so a table cannot silently read a u32 out
 * of a u64.  What each kind puts on the wire:
 *
 *   K_U8/U16/U32/U64  the integer, naturally aligned (an int64_t member is a
 *                     K_U64: two's complement on the wire)
 *   K_BYTES           u32 length in [min, max], the bytes, zero pad to 8
 *   K_FH              u8 length (1..DAFS_FH_MAX), the bytes, zero pad to 8
 *   K_REC             the fields of another body (a dafs_attr, say)
 *   K_ARRAY           u16 count in [min, max] (the member at count_off),
 *                     then count records of the body sub, stride bytes apart
 *                     in the struct; max must not exceed the array's length
 *   K_CUSTOM          a hand-written pair for a shape no table fits (the
 *                     READDIR entry list, the in-place group list)
 *
 * Scalars may carry a one-field check (C_MAX: value <= lim, C_MASK: no bit
 * outside lim, C_NONZERO), byte strings C_NONUL.  A check that crosses
 * fields is the body's valid() predicate: the encoder requires it before
 * writing, the decoder after reading the whole body.  A failed check makes
 * the encoder report -DAFS_ST_INVAL and the decoder -DAFS_ST_BADMSG.
 *
 * Adding a message = a struct in proto.h, a BODY() here for its request and
 * its reply, and an OP() line in the opcode table at the end of this part.
 */
enum field_kind { K_U8, K_U16, K_U32, K_U64, K_BYTES, K_FH, K_REC, K_ARRAY, K_CUSTOM };
enum field_check { C_NONE, C_MAX, C_MASK, C_NONZERO, C_NONUL };

struct body;
struct custom;

typedef struct field {
    uint8_t kind;       /* enum field_kind */
    uint8_t check;      /* enum field_check */
    uint16_t off;       /* offsetof the member in the body's struct */
    uint16_t count_off; /* K_ARRAY: offsetof its uint16_t count */
    uint16_t stride;    /* K_ARRAY: sizeof one element */
    uint32_t min, max;  /* K_BYTES: length bounds; K_ARRAY: count bounds */
    uint64_t lim;       /* C_MAX / C_MASK operand; K_CUSTOM: its argument */
    const struct body *sub;       /* K_REC, K_ARRAY */
    const struct custom *custom;  /* K_CUSTOM */
} field;

typedef struct body {
    const field *fields;
    size_t nfields;
    bool (*valid)(const void *body); /* cross-field check, or NULL */
} body;

/* K_CUSTOM: body is the whole body struct; arg is the field's lim. */
typedef struct custom {
    void (*put)(writer *w, const void *body, uint64_t arg);
    void (*get)(reader *r, void *body, uint64_t arg);
} custom;

/* offsetof(T, m), refused at compile time unless T.m has type `type`. */
#define MEMBER(T, m, type) ((uint16_t)_Generic(((T *)0)->m, type: offsetof(T, m)))

#define SCALAR(K, T, m, type, chk, l) {.kind = (K), .off = MEMBER(T, m, type), .check = (chk), .lim = (l)}
#define U8(T, m) SCALAR(K_U8, T, m, uint8_t, C_NONE, 0)
#define U8_MAX(T, m, mx) SCALAR(K_U8, T, m, uint8_t, C_MAX, mx)
#define U16(T, m) SCALAR(K_U16, T, m, uint16_t, C_NONE, 0)
#define U32(T, m) SCALAR(K_U32, T, m, uint32_t, C_NONE, 0)
#define U32_MAX(T, m, mx) SCALAR(K_U32, T, m, uint32_t, C_MAX, mx)
#define U32_MASK(T, m, mask) SCALAR(K_U32, T, m, uint32_t, C_MASK, mask)
#define U32_NONZERO(T, m) SCALAR(K_U32, T, m, uint32_t, C_NONZERO, 0)
#define U64(T, m) SCALAR(K_U64, T, m, uint64_t, C_NONE, 0)
#define U64_MAX(T, m, mx) SCALAR(K_U64, T, m, uint64_t, C_MAX, mx)
#define U64_NONZERO(T, m) SCALAR(K_U64, T, m, uint64_t, C_NONZERO, 0)
#define I64(T, m) SCALAR(K_U64, T, m, int64_t, C_NONE, 0)
#define BYTES(T, m, lo, hi) {.kind = K_BYTES, .off = MEMBER(T, m, dafs_bytes), .min = (lo), .max = (hi)}
#define NAME(T, m) BYTES(T, m, 1, DAFS_NAME_MAX)
#define XATTR_NAME(T, m) {.kind = K_BYTES, .off = MEMBER(T, m, dafs_bytes), .check = C_NONUL, \
                          .min = 1, .max = DAFS_XATTR_NAME_MAX}
#define FH(T, m) {.kind = K_FH, .off = MEMBER(T, m, dafs_fh)}
#define REC(T, m, type, b) {.kind = K_REC, .off = MEMBER(T, m, type), .sub = &(b)}
#define ATTR(T, m) REC(T, m, dafs_attr, attr_body)
#define ARRAY(T, m, E, n, lo, hi, b) {.kind = K_ARRAY, .off = MEMBER(T, m, E *), \
        .count_off = MEMBER(T, n, uint16_t), .stride = sizeof(E), .min = (lo), .max = (hi), \
        .sub = &(b)}
#define SEGS(T) ARRAY(T, segs, dafs_seg, nsegs, 1, DAFS_SEG_MAX, seg_body)
#define CUSTOM(c, arg) {.kind = K_CUSTOM, .custom = &(c), .lim = (arg)}

#define BODY(name, pred, ...)                                                            \
    static const field name##_fields[] = {__VA_ARGS__};                                  \
    static const body name = {name##_fields, sizeof name##_fields / sizeof(field), pred}

static const body empty_body = {NULL, 0, NULL};

/* ---- the walkers ------------------------------------------------------- */

static bool value_ok(const field *f, uint64_t v)
{
    switch (f->check) {
    case C_MAX: return v <= f->lim;
    case C_MASK: return (v & ~f->lim) == 0;
    case C_NONZERO: return v != 0;
    default: return true;
    }
}

/* A scalar member is copied as the kind's integer type (memcpy: no aliasing
 * or alignment assumptions) and checked only when the field has a check. */
#define PUT_SCALAR(T, put)                                                               \
    do {                                                                                 \
        T v_;                                                                            \
        memcpy(&v_, p, sizeof v_);                                                       \
        if (f->check != C_NONE)                                                          \
            writer_require(w, value_ok(f, v_));                                          \
        put(w, v_);                                                                      \
    } while (0)

#define GET_SCALAR(T, get)                                                               \
    do {                                                                                 \
        T v_ = get(r);                                                                   \
        memcpy(p, &v_, sizeof v_);                                                       \
        if (f->check != C_NONE)                                                          \
            reader_require(r, value_ok(f, v_));                                          \
    } while (0)

static void put_body(writer *w, const body *b, const void *base);
static void get_body(reader *r, const body *b, void *base);

static void put_field(writer *w, const field *f, const uint8_t *base)
{
    const uint8_t *p = base + f->off;
    switch (f->kind) {
    case K_BYTES: {
        const dafs_bytes *s = (const void *)p;
        bool in_range = s->len >= f->min && s->len <= f->max;
        if (f->check == C_NONUL && in_range && s->ptr != NULL)
            writer_require(w, memchr(s->ptr, '\0', s->len) == NULL);
        put_bytes(w, s, f->min, f->max);
        break;
    }
    case K_FH:
        put_fh(w, (const void *)p);
        break;
    case K_REC:
        put_body(w, f->sub, p);
        break;
    case K_ARRAY: {
        uint16_t n;
        memcpy(&n, base + f->count_off, sizeof n);
        writer_require(w, n >= f->min && n <= f->max);
        put_u16(w, n);
        for (uint16_t i = 0; i < n && i < f->max; i++)
            put_body(w, f->sub, p + (size_t)i * f->stride);
        break;
    }
    case K_CUSTOM:
        f->custom->put(w, base, f->lim);
        break;
    case K_U8: PUT_SCALAR(uint8_t, put_u8); break;
    case K_U16: PUT_SCALAR(uint16_t, put_u16); break;
    case K_U32: PUT_SCALAR(uint32_t, put_u32); break;
    default: PUT_SCALAR(uint64_t, put_u64); break; /* K_U64 */
    }
}

static void get_field(reader *r, const field *f, uint8_t *base)
{
    uint8_t *p = base + f->off;
    switch (f->kind) {
    case K_BYTES: {
        dafs_bytes *s = (void *)p;
        get_bytes(r, s, f->min, f->max);
        if (f->check == C_NONUL)
            reader_require(r, r->bad || memchr(s->ptr, '\0', s->len) == NULL);
        break;
    }
    case K_FH:
        get_fh(r, (void *)p);
        break;
    case K_REC:
        get_body(r, f->sub, p);
        break;
    case K_ARRAY: {
        uint16_t n = get_u16(r);
        reader_require(r, n >= f->min && n <= f->max);
        for (uint16_t i = 0; i < n && !r->bad; i++)
            get_body(r, f->sub, p + (size_t)i * f->stride);
        if (!r->bad)
            memcpy(base + f->count_off, &n, sizeof n);
        break;
    }
    case K_CUSTOM:
        f->custom->get(r, base, f->lim);
        break;
    case K_U8: GET_SCALAR(uint8_t, get_u8); break;
    case K_U16: GET_SCALAR(uint16_t, get_u16); break;
    case K_U32: GET_SCALAR(uint32_t, get_u32); break;
    default: GET_SCALAR(uint64_t, get_u64); break; /* K_U64 */
    }
}

/* The encoder checks the body's predicate first, so that an invalid message
 * is refused whatever its size; the decoder checks it once every field is in. */
static void put_body(writer *w, const body *b, const void *base)
{
    if (b->valid != NULL)
        writer_require(w, b->valid(base));
    for (size_t i = 0; i < b->nfields; i++)
        put_field(w, &b->fields[i], base);
}

static void get_body(reader *r, const body *b, void *base)
{
    for (size_t i = 0; i < b->nfields && !r->bad; i++)
        get_field(r, &b->fields[i], base);
    if (b->valid != NULL && !r->bad)
        reader_require(r, b->valid(base));
}

/* ---- shared records ---------------------------------------------------- */

BODY(attr_body, NULL,
     U32(dafs_attr, mode), U32(dafs_attr, nlink), U32(dafs_attr, uid), U32(dafs_attr, gid),
     U64(dafs_attr, size), U64(dafs_attr, used), U64(dafs_attr, fileid), U64(dafs_attr, rdev),
     I64(dafs_attr, atime_sec), I64(dafs_attr, mtime_sec), I64(dafs_attr, ctime_sec),
     U32(dafs_attr, atime_nsec), U32(dafs_attr, mtime_nsec), U32(dafs_attr, ctime_nsec));

BODY(seg_body, NULL, U64(dafs_seg, addr), U64(dafs_seg, key), U64(dafs_seg, len));

/* One READDIR entry: u64 fileid, u64 cookie, u32 type, name; 8-aligned. */
BODY(dirent_body, NULL,
     U64(dafs_dirent_wire, fileid), U64(dafs_dirent_wire, cookie),
     U32(dafs_dirent_wire, type), NAME(dafs_dirent_wire, name));

/* sum of segment lengths >= count, for a segment count in range (the
 * ARRAY field checks the range itself; this must not read past it) */
static bool segs_cover(const dafs_seg *segs, uint16_t nsegs, uint32_t count)
{
    if (nsegs < 1 || nsegs > DAFS_SEG_MAX)
        return false;
    uint64_t total = 0;
    for (uint16_t i = 0; i < nsegs; i++)
        total = segs[i].len > UINT64_MAX - total ? UINT64_MAX : total + segs[i].len;
    return total >= count;
}

/* ---- READDIR entries (hand-written: a list walked, not a struct) ------- */

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
    put_body(w, &dirent_body, ent);
    put_u8(w, (uint8_t)flags);
    if (has) {
        put_fh(w, fh);
        put_body(w, &attr_body, attr);
    }
    put_pad(w, 8);
}

/* Either kind of entry; fh/attr are scratch for READDIR. */
static void get_any_dirent(reader *r, bool plus, dafs_dirent_wire *ent, dafs_fh *fh,
                           dafs_attr *attr, int *has_attr)
{
    *has_attr = 0;
    get_body(r, &dirent_body, ent);
    if (!plus)
        return;
    uint8_t flags = get_u8(r);
    reader_require(r, plus_flags_valid(flags));
    *has_attr = r->bad ? 0 : flags;
    if (*has_attr & DAFS_PLUS_ATTR) {
        get_fh(r, fh);
        get_body(r, &attr_body, attr);
    }
    skip_pad8(r);
}

/*
 * After eof and nentries: the entries, which start 8-aligned.  They are
 * re-encoded one by one (not copied) so that they are checked and their pad
 * bytes come out zero.  arg: 1 for READDIRPLUS.
 */
static void put_readdir_entries(writer *w, const void *body, uint64_t arg)
{
    const dafs_readdir_rep *d = body;
    bool plus = arg != 0;
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
            put_body(w, &dirent_body, &ent);
    }
    writer_require(w, reader_finish(&r) == 0);
}

/* Entries are checked here, once, so that dafs_readdir_next() cannot fail. */
static void get_readdir_entries(reader *r, void *body, uint64_t arg)
{
    dafs_readdir_rep *d = body;
    bool plus = arg != 0;
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

static const custom readdir_entries = {put_readdir_entries, get_readdir_entries};

/* ---- REGISTER_CRED groups (hand-written: read in place, not copied) ---- */

/* u32 ngroups, then ngroups u32 ids.  Encoding takes the host-order array
 * `groups`, or re-encodes a decoded list from `groups_wire`. */
static void put_cred_groups(writer *w, const void *body, uint64_t arg)
{
    const dafs_cred_req *c = body;
    (void)arg;
    bool have = c->ngroups == 0 || c->groups != NULL ||
                (c->groups_wire.ptr != NULL && c->groups_wire.len == 4 * c->ngroups);
    writer_require(w, c->ngroups <= DAFS_GROUPS_MAX && have);
    put_u32(w, c->ngroups);
    if (w->err != 0)
        return;
    uint8_t *p = writer_reserve(w, 4, (size_t)c->ngroups * 4);
    for (uint32_t i = 0; p != NULL && i < c->ngroups; i++)
        store_u32(p + 4 * (size_t)i, dafs_cred_group(c, i));
}

/* The count is checked against the bytes received before anything is read. */
static void get_cred_groups(reader *r, void *body, uint64_t arg)
{
    dafs_cred_req *c = body;
    (void)arg;
    uint32_t n = get_u32(r);
    reader_require(r, n <= DAFS_GROUPS_MAX);
    const uint8_t *p = reader_take(r, 4, r->bad ? 0 : (size_t)n * 4);
    if (r->bad)
        return;
    c->ngroups = n;
    c->groups = NULL;
    c->groups_wire = (dafs_bytes){.ptr = p, .len = n * 4};
}

static const custom cred_groups = {put_cred_groups, get_cred_groups};

uint32_t dafs_cred_group(const dafs_cred_req *c, uint32_t i)
{
    if (i >= c->ngroups)
        return UINT32_MAX;
    if (c->groups != NULL)
        return c->groups[i];
    return load_u32(c->groups_wire.ptr + 4 * (size_t)i);
}

/* ---- cross-field checks ------------------------------------------------ */

/* SETATTR: only known DAFS_SET_* bits, and nanoseconds below one second
 * (checked whether or not the time is being set, so nothing odd travels). */
static bool setattr_valid(const void *body)
{
    const dafs_setattr_req *s = body;
    return (s->valid & ~DAFS_SET_ALL) == 0 && s->atime_nsec < 1000000000u &&
           s->mtime_nsec < 1000000000u;
}

/* RENAME flags: NOREPLACE or EXCHANGE or neither, never both. */
static bool rename_flags_valid(const void *body)
{
    const uint32_t known = DAFS_RENAME_NOREPLACE | DAFS_RENAME_EXCHANGE;
    uint32_t flags = ((const dafs_rename_req *)body)->flags;
    return (flags & ~known) == 0 && flags != known;
}

static bool read_direct_valid(const void *body)
{
    const dafs_read_req *q = body;
    return segs_cover(q->segs, q->nsegs, q->count);
}

static bool write_inline_valid(const void *body)
{
    const dafs_write_req *q = body;
    return q->data.len == q->count;
}

static bool write_direct_valid(const void *body)
{
    const dafs_write_req *q = body;
    return segs_cover(q->segs, q->nsegs, q->count);
}

/* APPEND_* carry a write_req whose offset must be 0 (the server picks it). */
static bool append_inline_valid(const void *body)
{
    return write_inline_valid(body) && ((const dafs_write_req *)body)->offset == 0;
}

static bool append_direct_valid(const void *body)
{
    return write_direct_valid(body) && ((const dafs_write_req *)body)->offset == 0;
}

static bool read_inline_rep_valid(const void *body)
{
    const dafs_read_rep *q = body;
    return q->data.len == q->count;
}

/* GETXATTR/LISTXATTR: the data is empty (a size query) or exactly size bytes. */
static bool xattr_rep_valid(const void *body)
{
    const dafs_xattr_rep *q = body;
    return q->data.len == 0 || q->data.len == q->size;
}

/* ---- request bodies ---------------------------------------------------- */

BODY(connect_req, NULL,
     BYTES(dafs_connect_req, client_id, 1, DAFS_CLIENT_ID_MAX),
     U64(dafs_connect_req, boot_verifier), U32(dafs_connect_req, fence_id),
     U32(dafs_connect_req, max_request), U32(dafs_connect_req, max_response),
     U32(dafs_connect_req, inline_max), U16(dafs_connect_req, max_credits),
     BYTES(dafs_connect_req, ep_name, 1, DAFS_EPNAME_MAX));

BODY(fh_req, NULL, FH(dafs_fh_req, fh));

BODY(close_req, NULL, FH(dafs_close_req, fh), U64(dafs_close_req, stateid));

/* OPEN_FH: access mode and TRUNC only (no CREAT/EXCL/DIRECTORY: the object exists). */
BODY(open_fh_req, NULL, FH(dafs_open_fh_req, fh), U32_MASK(dafs_open_fh_req, flags, DAFS_OPEN_FH_ALL));

BODY(dirop_req, NULL,
     FH(dafs_dirop_req, dir), NAME(dafs_dirop_req, name),
     U32(dafs_dirop_req, flags), U32(dafs_dirop_req, mode));

#define READ_REQ_HEAD                                                                    \
    FH(dafs_read_req, fh), U64(dafs_read_req, stateid), U64(dafs_read_req, offset),      \
        U32(dafs_read_req, count), U32(dafs_read_req, hints)
BODY(read_inline_req, NULL, READ_REQ_HEAD);
BODY(read_direct_req, read_direct_valid, READ_REQ_HEAD, SEGS(dafs_read_req));

#define WRITE_REQ_HEAD                                                                   \
    FH(dafs_write_req, fh), U64(dafs_write_req, stateid), U64(dafs_write_req, offset),   \
        U32(dafs_write_req, count), U32(dafs_write_req, stable), U32(dafs_write_req, hints)
#define WRITE_REQ_DATA BYTES(dafs_write_req, data, 0, UINT32_MAX)
BODY(write_inline_req, write_inline_valid, WRITE_REQ_HEAD, WRITE_REQ_DATA);
BODY(write_direct_req, write_direct_valid, WRITE_REQ_HEAD, SEGS(dafs_write_req));
BODY(append_inline_req, append_inline_valid, WRITE_REQ_HEAD, WRITE_REQ_DATA);
BODY(append_direct_req, append_direct_valid, WRITE_REQ_HEAD, SEGS(dafs_write_req));

BODY(commit_req, NULL,
     FH(dafs_commit_req, fh), U64(dafs_commit_req, stateid), U64(dafs_commit_req, offset),
     U64(dafs_commit_req, count), U32(dafs_commit_req, stable));

BODY(readdir_req, NULL,
     FH(dafs_readdir_req, dir), U64(dafs_readdir_req, cookie), U32(dafs_readdir_req, maxcount));

BODY(setattr_req, setattr_valid,
     FH(dafs_setattr_req, fh), U64(dafs_setattr_req, stateid), U32(dafs_setattr_req, valid),
     U32(dafs_setattr_req, mode), U32(dafs_setattr_req, uid), U32(dafs_setattr_req, gid),
     U64(dafs_setattr_req, size), I64(dafs_setattr_req, atime_sec),
     I64(dafs_setattr_req, mtime_sec), U32(dafs_setattr_req, atime_nsec),
     U32(dafs_setattr_req, mtime_nsec));

BODY(rename_req, rename_flags_valid,
     FH(dafs_rename_req, src_dir), NAME(dafs_rename_req, src_name),
     FH(dafs_rename_req, dst_dir), NAME(dafs_rename_req, dst_name), U32(dafs_rename_req, flags));

BODY(link_req, NULL, FH(dafs_link_req, fh), FH(dafs_link_req, dir), NAME(dafs_link_req, name));

BODY(symlink_req, NULL,
     FH(dafs_symlink_req, dir), NAME(dafs_symlink_req, name),
     BYTES(dafs_symlink_req, target, 1, DAFS_PATH_MAX));

BODY(mknod_req, NULL,
     FH(dafs_mknod_req, dir), NAME(dafs_mknod_req, name), U32(dafs_mknod_req, mode),
     U64(dafs_mknod_req, rdev));

BODY(access_req, NULL,
     FH(dafs_access_req, fh),
     U32_MAX(dafs_access_req, mask, DAFS_ACCESS_READ | DAFS_ACCESS_WRITE | DAFS_ACCESS_EXEC));

BODY(cred_req, NULL, U32(dafs_cred_req, uid), U32(dafs_cred_req, gid), CUSTOM(cred_groups, 0));

BODY(cred_id_req, NULL, U32(dafs_cred_id_req, cred_id));

BODY(fallocate_req, NULL,
     FH(dafs_fallocate_req, fh), U32_MASK(dafs_fallocate_req, mode, DAFS_FALLOC_ALL),
     U64(dafs_fallocate_req, offset), U64_NONZERO(dafs_fallocate_req, length),
     U64(dafs_fallocate_req, stateid));

BODY(copy_req, NULL,
     FH(dafs_copy_req, src), U64(dafs_copy_req, src_offset), FH(dafs_copy_req, dst),
     U64(dafs_copy_req, dst_offset), U64(dafs_copy_req, length), U32_MAX(dafs_copy_req, flags, 0),
     U64(dafs_copy_req, src_stateid), U64(dafs_copy_req, dst_stateid));

BODY(seek_req, NULL,
     FH(dafs_seek_req, fh), U64(dafs_seek_req, offset),
     U32_MAX(dafs_seek_req, what, DAFS_SEEK_HOLE), U64(dafs_seek_req, stateid));

/* The xattr ops share a struct; each sends only its own fields, in the order
 * fh, [name], [value], [size], [flags].  A name has no NUL; flags are 0,
 * CREATE or REPLACE. */
BODY(getxattr_req, NULL,
     FH(dafs_xattr_req, fh), XATTR_NAME(dafs_xattr_req, name),
     U32_MAX(dafs_xattr_req, size, DAFS_XATTR_VALUE_MAX));
BODY(setxattr_req, NULL,
     FH(dafs_xattr_req, fh), XATTR_NAME(dafs_xattr_req, name),
     BYTES(dafs_xattr_req, value, 0, DAFS_XATTR_VALUE_MAX),
     U32_MAX(dafs_xattr_req, flags, DAFS_XATTR_REPLACE));
BODY(listxattr_req, NULL,
     FH(dafs_xattr_req, fh), U32_MAX(dafs_xattr_req, size, DAFS_XATTR_LIST_MAX));
BODY(removexattr_req, NULL, FH(dafs_xattr_req, fh), XATTR_NAME(dafs_xattr_req, name));

BODY(cache_hint_req, NULL,
     FH(dafs_cache_hint_req, fh), U64(dafs_cache_hint_req, stateid),
     U64(dafs_cache_hint_req, offset), U64(dafs_cache_hint_req, len),
     U32_MAX(dafs_cache_hint_req, hint, DAFS_WIRE_HINT_DONTNEED));

BODY(lock_req, NULL,
     FH(dafs_lock_req, fh), U64(dafs_lock_req, stateid), U64(dafs_lock_req, owner),
     U64(dafs_lock_req, offset), U64(dafs_lock_req, length),
     U32_MAX(dafs_lock_req, type, DAFS_WIRE_LOCK_EXCL),
     U32_MASK(dafs_lock_req, flags, DAFS_WIRE_LOCK_ALL));

/* ---- reply bodies ------------------------------------------------------ */

BODY(connect_rep, NULL,
     U64(dafs_connect_rep, server_instance), U32(dafs_connect_rep, max_request),
     U32(dafs_connect_rep, max_response), U32(dafs_connect_rep, inline_max),
     U32(dafs_connect_rep, max_io), U32(dafs_connect_rep, lease_ms),
     U16(dafs_connect_rep, max_segs));

/* OPEN and OPEN_FH replies end with the new stateid; the others do not. */
#define FH_ATTR_REP_HEAD                                                                 \
    FH(dafs_fh_attr_rep, fh), ATTR(dafs_fh_attr_rep, attr), U8_MAX(dafs_fh_attr_rep, created, 1)
BODY(fh_attr_rep, NULL, FH_ATTR_REP_HEAD);
BODY(fh_attr_state_rep, NULL, FH_ATTR_REP_HEAD, U64(dafs_fh_attr_rep, stateid));

BODY(attr_rep, NULL, ATTR(dafs_attr_rep, attr));

BODY(read_inline_rep, read_inline_rep_valid,
     U32(dafs_read_rep, count), U8_MAX(dafs_read_rep, eof, 1),
     BYTES(dafs_read_rep, data, 0, UINT32_MAX));
BODY(read_direct_rep, NULL, U32(dafs_read_rep, count), U8_MAX(dafs_read_rep, eof, 1));

/* APPEND_* replies add the offset the data landed at; WRITE_* do not. */
#define WRITE_REP_HEAD                                                                   \
    U32(dafs_write_rep, count), U32(dafs_write_rep, committed), U64(dafs_write_rep, verifier)
BODY(write_rep, NULL, WRITE_REP_HEAD);
BODY(append_rep, NULL, WRITE_REP_HEAD, U64(dafs_write_rep, offset));

BODY(commit_rep, NULL, U64(dafs_commit_rep, verifier));

BODY(readdir_rep, NULL,
     U8_MAX(dafs_readdir_rep, eof, 1), U32(dafs_readdir_rep, nentries),
     CUSTOM(readdir_entries, 0));
BODY(readdirplus_rep, NULL,
     U8_MAX(dafs_readdir_rep, eof, 1), U32(dafs_readdir_rep, nentries),
     CUSTOM(readdir_entries, 1));

BODY(statfs_rep, NULL,
     U64(dafs_statfs_rep, bsize), U64(dafs_statfs_rep, frsize), U64(dafs_statfs_rep, blocks),
     U64(dafs_statfs_rep, bfree), U64(dafs_statfs_rep, bavail), U64(dafs_statfs_rep, files),
     U64(dafs_statfs_rep, ffree), U32(dafs_statfs_rep, namemax));

BODY(readlink_rep, NULL, BYTES(dafs_readlink_rep, target, 1, DAFS_PATH_MAX));

/* REGISTER_CRED: the new id; 0 means anonymous and is never handed out. */
BODY(cred_rep, NULL, U32_NONZERO(dafs_cred_rep, cred_id));

BODY(u64_rep, NULL, U64(dafs_u64_rep, value));

BODY(lockt_rep, NULL,
     U32_MAX(dafs_lockt_rep, found, 1), U32_MAX(dafs_lockt_rep, type, DAFS_WIRE_LOCK_EXCL),
     U32_MASK(dafs_lockt_rep, flags, DAFS_WIRE_LOCK_ALL),
     U32_MAX(dafs_lockt_rep, state, DAFS_LOCK_STATE_ROLLBACK), U64(dafs_lockt_rep, session),
     U64(dafs_lockt_rep, owner), U64(dafs_lockt_rep, offset), U64(dafs_lockt_rep, length));

/* GETXATTR/LISTXATTR: u32 size, then the data (empty for a size query, else
 * exactly size bytes). */
BODY(getxattr_rep, xattr_rep_valid,
     U32_MAX(dafs_xattr_rep, size, DAFS_XATTR_VALUE_MAX),
     BYTES(dafs_xattr_rep, data, 0, DAFS_XATTR_VALUE_MAX));
BODY(listxattr_rep, xattr_rep_valid,
     U32_MAX(dafs_xattr_rep, size, DAFS_XATTR_LIST_MAX),
     BYTES(dafs_xattr_rep, data, 0, DAFS_XATTR_LIST_MAX));

/* ---- batch I/O: BATCH_SUBMIT, HURRY_UP, BATCH_COMPLETION ---------------
 * The entries and completions are lists read in place: they are validated
 * once at decode and the decoded message points at them in the receive
 * buffer (dafs_batch_next, dafs_batch_cpl_get), so nothing is sized by the
 * peer.  An entry is a fixed head, then a segment (READ, and WRITE/APPEND
 * without INLINE) or inline data (WRITE/APPEND with INLINE). */

static bool bent_has_seg(const dafs_batch_entry *e)
{
    return e->op == DAFS_BATCH_READ ||
           ((e->op == DAFS_BATCH_WRITE || e->op == DAFS_BATCH_APPEND) &&
            !(e->flags & DAFS_BENT_INLINE));
}

static bool bent_head_valid(const void *body)
{
    const dafs_batch_entry *e = body;
    if (e->op < DAFS_BATCH_READ || e->op > DAFS_BATCH_COMMIT)
        return false;
    return !(e->flags & DAFS_BENT_INLINE) || e->op == DAFS_BATCH_WRITE ||
           e->op == DAFS_BATCH_APPEND;
}

BODY(bent_head, bent_head_valid,
     U64(dafs_batch_entry, request_id), SCALAR(K_U16, dafs_batch_entry, op, uint16_t, C_NONE, 0),
     SCALAR(K_U16, dafs_batch_entry, flags, uint16_t, C_MASK, DAFS_BENT_ALL),
     U32(dafs_batch_entry, hint), U32(dafs_batch_entry, stable), U32(dafs_batch_entry, count),
     FH(dafs_batch_entry, fh), U64(dafs_batch_entry, stateid), U64(dafs_batch_entry, offset));

static void put_batch_entry(writer *w, const dafs_batch_entry *e)
{
    put_body(w, &bent_head, e);
    if (bent_has_seg(e)) {
        writer_require(w, e->seg.len >= e->count);
        put_body(w, &seg_body, &e->seg);
    }
    if (e->flags & DAFS_BENT_INLINE) {
        writer_require(w, e->data.len == e->count);
        put_bytes(w, &e->data, 0, UINT32_MAX);
    }
}

static void get_batch_entry(reader *r, dafs_batch_entry *e)
{
    memset(e, 0, sizeof *e);
    get_body(r, &bent_head, e);
    if (r->bad)
        return;
    if (bent_has_seg(e)) {
        get_body(r, &seg_body, &e->seg);
        reader_require(r, e->seg.len >= e->count);
    }
    if (e->flags & DAFS_BENT_INLINE) {
        get_bytes(r, &e->data, 0, UINT32_MAX);
        reader_require(r, e->data.len == e->count);
    }
}

/* After nentries: the entries, 8-aligned, from `entries` (a new request) or
 * re-encoded one by one from a decoded request's `entries_wire` (so they are
 * checked again and their padding is zero). */
static void put_batch_entries(writer *w, const void *body, uint64_t arg)
{
    const dafs_batch_req *q = body;
    (void)arg;
    bool wire = q->entries == NULL && q->nentries > 0;
    writer_require(w, !wire || q->entries_wire.ptr != NULL);
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

static void get_batch_entries(reader *r, void *body, uint64_t arg)
{
    dafs_batch_req *q = body;
    (void)arg;
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

static const custom batch_entries = {put_batch_entries, get_batch_entries};

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

static bool batch_cpl_valid(const void *body)
{
    return ((const dafs_batch_cpl *)body)->status >= 0;
}

/* 24 bytes: request_id, status (never negative), count, offset. */
BODY(batch_cpl_body, batch_cpl_valid,
     U64(dafs_batch_cpl, request_id), SCALAR(K_U32, dafs_batch_cpl, status, int32_t, C_NONE, 0),
     U32(dafs_batch_cpl, count), U64(dafs_batch_cpl, offset));

/* After ncompl and outstanding: the completions, from `cpl`, or (NULL)
 * re-encoded from a decoded reply's `cpl_wire`. */
static void put_batch_cpls(writer *w, const void *body, uint64_t arg)
{
    const dafs_batch_rep *q = body;
    (void)arg;
    bool wire = q->cpl == NULL && q->ncompl > 0;
    writer_require(w, !wire || ((size_t)q->ncompl * DAFS_BATCH_CPL_SIZE <= q->cpl_wire.len &&
                                q->cpl_wire.ptr != NULL));
    for (uint32_t i = 0; i < q->ncompl && w->err == 0; i++) {
        dafs_batch_cpl c;
        if (wire)
            dafs_batch_cpl_get(q, i, &c);
        put_body(w, &batch_cpl_body, wire ? &c : &q->cpl[i]);
    }
}

/* The count is checked against the bytes that are there before it is used. */
static void get_batch_cpls(reader *r, void *body, uint64_t arg)
{
    dafs_batch_rep *q = body;
    (void)arg;
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

static const custom batch_cpls = {put_batch_cpls, get_batch_cpls};

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

BODY(batch_req, NULL,
     U32_MAX(dafs_batch_req, mode, DAFS_BATCH_ASYNC), U32(dafs_batch_req, usec_window),
     U32(dafs_batch_req, num_completions), U32(dafs_batch_req, bc_credits),
     U32_MAX(dafs_batch_req, nentries, DAFS_BATCH_MAX), CUSTOM(batch_entries, 0));
BODY(hurry_req, NULL, U32(dafs_hurry_req, bc_credits));
BODY(batch_rep, NULL,
     U32(dafs_batch_rep, ncompl), U32(dafs_batch_rep, outstanding), CUSTOM(batch_cpls, 0));

/* BATCH_COMPLETION: a NOTIFY message, not a request or a reply. */
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
    put_body(&w, &batch_rep, &m->batch);
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
    get_body(&r, &batch_rep, &out->batch);
    return reader_finish(&r);
}

/* Incremental batch replies and notifications (proto.h): the fixed fields
 * right after the header, then completions appended in place. */
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
    put_body(&w, &batch_cpl_body, c);
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

/* ---- the opcode table -------------------------------------------------- */

typedef struct op_desc {
    const char *name;
    const body *req; /* request body (a member of dafs_request.u) */
    const body *rep; /* reply body on success (a member of dafs_reply.u) */
} op_desc;

#define OP(op, req, rep) [DAFS_OP_##op] = {#op, &(req), &(rep)}

static const op_desc op_table[DAFS_OP_LIMIT] = {
    OP(NULL, empty_body, empty_body),
    OP(CONNECT, connect_req, connect_rep),
    OP(DISCONNECT, empty_body, empty_body),
    OP(GETROOT, empty_body, fh_attr_rep),
    OP(LOOKUP, dirop_req, fh_attr_rep),
    OP(GETATTR, fh_req, attr_rep),
    OP(OPEN, dirop_req, fh_attr_state_rep),
    OP(CLOSE, close_req, empty_body),
    OP(READ_INLINE, read_inline_req, read_inline_rep),
    OP(READ_DIRECT, read_direct_req, read_direct_rep),
    OP(WRITE_INLINE, write_inline_req, write_rep),
    OP(WRITE_DIRECT, write_direct_req, write_rep),
    OP(COMMIT, commit_req, commit_rep),
    OP(REMOVE, dirop_req, empty_body),
    OP(MKDIR, dirop_req, fh_attr_rep),
    OP(RMDIR, dirop_req, empty_body),
    OP(READDIR, readdir_req, readdir_rep),
    OP(STATFS, fh_req, statfs_rep),
    OP(SETATTR, setattr_req, attr_rep),
    OP(RENAME, rename_req, empty_body),
    OP(LINK, link_req, attr_rep),
    OP(SYMLINK, symlink_req, fh_attr_rep),
    OP(READLINK, fh_req, readlink_rep),
    OP(MKNOD, mknod_req, fh_attr_rep),
    OP(ACCESS, access_req, empty_body),
    OP(LOOKUPP, fh_req, fh_attr_rep),
    OP(APPEND_INLINE, append_inline_req, append_rep),
    OP(APPEND_DIRECT, append_direct_req, append_rep),
    OP(REGISTER_CRED, cred_req, cred_rep),
    OP(RELEASE_CRED, cred_id_req, empty_body),
    OP(OPEN_FH, open_fh_req, fh_attr_state_rep),
    OP(BATCH_SUBMIT, batch_req, batch_rep),
    OP(CACHE_HINT, cache_hint_req, empty_body),
    OP(HURRY_UP, hurry_req, empty_body),
    OP(LOCK, lock_req, empty_body),
    OP(LOCKT, lock_req, lockt_rep),
    OP(LOCKU, lock_req, empty_body),
    OP(LOCK_CANCEL, lock_req, empty_body),
    OP(LOCK_ABORT, lock_req, empty_body),
    OP(FALLOCATE, fallocate_req, attr_rep),
    OP(COPY_RANGE, copy_req, u64_rep),
    OP(SEEK, seek_req, u64_rep),
    OP(GETXATTR, getxattr_req, getxattr_rep),
    OP(SETXATTR, setxattr_req, empty_body),
    OP(LISTXATTR, listxattr_req, listxattr_rep),
    OP(REMOVEXATTR, removexattr_req, empty_body),
    OP(READDIRPLUS, readdir_req, readdirplus_rep),
};

/* NULL for an opcode the codec does not know. */
static const op_desc *op_lookup(uint16_t op)
{
    return op < DAFS_OP_LIMIT && op_table[op].name != NULL ? &op_table[op] : NULL;
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
    const op_desc *d = op_lookup(h.opcode);
    writer_require(&w, d != NULL);
    if (d != NULL)
        put_body(&w, d->req, &m->u);
    return finish_message(&w, &h);
}

int dafs_encode_reply(void *buf, size_t cap, const dafs_reply *m)
{
    writer w;
    writer_init(&w, buf, cap, 0);
    dafs_hdr h = m->hdr;
    writer_require(&w, h.status >= 0);
    prepare_hdr(&w, &h, true);
    if (h.status == DAFS_ST_OK) {
        const op_desc *d = op_lookup(h.opcode);
        writer_require(&w, d != NULL);
        if (d != NULL)
            put_body(&w, d->rep, &m->u);
    }
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
    const op_desc *d = op_lookup(out->hdr.opcode);
    if (d == NULL)
        return -DAFS_ST_BADOP;
    get_body(&r, d->req, &out->u);
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
    if (out->hdr.status == DAFS_ST_OK) {
        const op_desc *d = op_lookup(out->hdr.opcode);
        if (d == NULL)
            return -DAFS_ST_BADOP;
        get_body(&r, d->rep, &out->u);
    }
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
    put_body(&w, &dirent_body, ent);
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

bool dafs_op_known(uint16_t op)
{
    return op_lookup(op) != NULL;
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
    const op_desc *d = op_lookup(op);
    return d != NULL ? d->name : "UNKNOWN";
}
