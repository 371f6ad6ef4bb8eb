/*
 * proto.h — the dafs wire protocol, version 2: message layouts and the one
 * bounds-checked codec that both dafsd and libdafs use.
 *
 * Design (see docs/protocol.md for the op-by-op description):
 *  - Every message is a fixed 48-byte header followed by an op-specific body.
 *    The header's first 40 bytes have the same layout in every version (v1
 *    ended there), so a peer of another version can still be answered.
 *  - Version 2 adds open state: OPEN and OPEN_FH return a server-chosen
 *    stateid, and READ/WRITE/APPEND/COMMIT/SETATTR/CLOSE carry one (0 = none:
 *    authorize the request as its caller, as in version 1).
 *  - All integers are little-endian and naturally aligned: the codec pads the
 *    cursor to a multiple of a field's size before writing or reading it, and
 *    pads every variable-length byte string to a multiple of 8.  Pad bytes are
 *    written as zero and ignored when read.
 *  - Decoding never trusts a length from the wire: every count and length is
 *    checked against the bytes actually received and against the protocol
 *    maxima below before anything is touched.  Decoded names and inline data
 *    point into the caller's receive buffer (no copies, no allocation), so a
 *    decoded message is only valid while that buffer is.
 *  - Status codes on the wire are dafs status values (DAFS_ST_*), fixed
 *    numbers that do not depend on the host's errno values.
 */
#ifndef DAFS_PROTO_H
#define DAFS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DAFS_PROTO_MAGIC 0x53464144u /* "DAFS" read as little-endian u32 */
#define DAFS_PROTO_VERSION 2
#define DAFS_HDR_SIZE 48
#define DAFS_HDR_V1_SIZE 40     /* the version-independent prefix of every header */

#define DAFS_FH_MAX 64          /* opaque file handle bytes (as in DAFS) */
#define DAFS_NAME_MAX 255       /* one path component */
#define DAFS_CLIENT_ID_MAX 128  /* CONNECT client id string */
#define DAFS_EPNAME_MAX 256     /* libfabric endpoint name carried in CONNECT */
#define DAFS_SEG_MAX 16         /* RMA segments in one direct request */
#define DAFS_PATH_MAX 4095      /* symlink target bytes */
#define DAFS_GROUPS_MAX 65536   /* supplementary groups in one credential (NGROUPS_MAX);
                                 * the message size bounds it further */
#define DAFS_XATTR_NAME_MAX 255 /* extended attribute name bytes ("user.x") */
#define DAFS_XATTR_VALUE_MAX 65536 /* extended attribute value bytes */
#define DAFS_XATTR_LIST_MAX 65536  /* LISTXATTR reply: NUL-terminated names */
#define DAFS_MSG_MIN 1024       /* smallest max_request/max_response allowed */
#define DAFS_MSG_LIMIT (1u << 20) /* largest max_request/max_response allowed */

/* Header flags. */
#define DAFS_HDR_REPLY 0x0001u
#define DAFS_HDR_NOTIFY 0x0002u /* reserved: server-initiated message (not a reply);
                                 * never valid in a request */

/*
 * Opcode space (docs/protocol.md §4):
 *   0-29  version 1 operations          30     OPEN_FH
 *   31-39 reserved: open state/sessions 40-49  reserved: batch, async, cache hints
 *   50-59 reserved: locks               60-69  reserved: authentication, fencing, admin
 *   70-79 file operations (FALLOCATE, COPY_RANGE, SEEK, xattrs, READDIRPLUS)
 *   80-89 reserved: server->client notifications (80 NOTIFY_INVAL)
 */
#define DAFS_OP_RANGE_OPEN_STATE 31  /* first reserved opcode of each range */
#define DAFS_OP_RANGE_BATCH 40
#define DAFS_OP_RANGE_LOCKS 50
#define DAFS_OP_RANGE_ADMIN 60
#define DAFS_OP_RANGE_FILEOPS 70
#define DAFS_OP_RANGE_NOTIFY 80
#define DAFS_OP_NOTIFY_INVAL 80      /* reserved, not implemented */
#define DAFS_OP_BATCH_COMPLETION 81  /* back channel: batch completions (flag NOTIFY) */

enum dafs_op {
    DAFS_OP_NULL = 0,        /* lease renewal / ping */
    DAFS_OP_CONNECT = 1,     /* open a session (session_id 0 in header) */
    DAFS_OP_DISCONNECT = 2,  /* close the session */
    DAFS_OP_GETROOT = 3,     /* handle + attributes of the export root */
    DAFS_OP_LOOKUP = 4,      /* dir fh + name -> fh + attr (never follows a final symlink) */
    DAFS_OP_GETATTR = 5,     /* fh -> attr */
    DAFS_OP_OPEN = 6,        /* dir fh + name + flags/mode -> fh + attr (O_CREAT/EXCL/TRUNC) */
    DAFS_OP_CLOSE = 7,       /* fh -> nothing */
    DAFS_OP_READ_INLINE = 8, /* data returned in the reply */
    DAFS_OP_READ_DIRECT = 9, /* server RMA-writes into client segments, then replies */
    DAFS_OP_WRITE_INLINE = 10, /* data carried in the request */
    DAFS_OP_WRITE_DIRECT = 11, /* server RMA-reads client segments, then replies */
    DAFS_OP_COMMIT = 12,     /* fsync / fdatasync of a file */
    DAFS_OP_REMOVE = 13,     /* unlink a non-directory */
    DAFS_OP_MKDIR = 14,
    DAFS_OP_RMDIR = 15,
    DAFS_OP_READDIR = 16,    /* cookie-based */
    DAFS_OP_STATFS = 17,
    /* namespace and attribute ops (protocol v1, second set) */
    DAFS_OP_SETATTR = 18,    /* fh + which attributes -> attr */
    DAFS_OP_RENAME = 19,     /* src dir+name -> dst dir+name, flags NOREPLACE/EXCHANGE */
    DAFS_OP_LINK = 20,       /* fh + new dir+name -> attr of fh */
    DAFS_OP_SYMLINK = 21,    /* dir+name+target -> fh + attr */
    DAFS_OP_READLINK = 22,   /* fh -> target */
    DAFS_OP_MKNOD = 23,      /* dir+name+mode(type|perm)+rdev -> fh + attr (fifo, socket, devices) */
    DAFS_OP_ACCESS = 24,     /* fh + R/W/X mask -> OK or ACCES, checked as the caller */
    DAFS_OP_LOOKUPP = 25,    /* fh of a dir -> its parent (the root is its own parent) */
    DAFS_OP_APPEND_INLINE = 26, /* write at end of file atomically; reply says where */
    DAFS_OP_APPEND_DIRECT = 27,
    DAFS_OP_REGISTER_CRED = 28, /* uid, gid, groups -> cred id used in later headers */
    DAFS_OP_RELEASE_CRED = 29,  /* forget a cred id */
    /* protocol v2 */
    DAFS_OP_OPEN_FH = 30,    /* fh + DAFS_OPEN_* access (+TRUNC) -> fh + attr + stateid */
    DAFS_OP_COUNT,           /* one past the last op of the base range */

    /* Batch, asynchronous I/O and cache hints (the 40..49 range). */
    DAFS_OP_BATCH_SUBMIT = 40, /* many READ/WRITE/APPEND/COMMIT entries in one request */
    DAFS_OP_CACHE_HINT = 41,   /* fh, stateid, offset, len, hint -> nothing (DAFS 4.2.4) */
    DAFS_OP_HURRY_UP = 42,     /* send the session's pending batch completions now */

    /* Byte-range locks (the 50..59 range; docs/protocol.md §4.8). */
    DAFS_OP_LOCK = 50,         /* lock_req -> empty (AGAIN when in the way) */
    DAFS_OP_LOCKT = 51,        /* lock_req -> lockt_rep (what is in the way, if anything) */
    DAFS_OP_LOCKU = 52,        /* lock_req (type ignored) -> empty */
    DAFS_OP_LOCK_CANCEL = 53,  /* lock_req (type ignored): end the owner's queued LOCK */
    DAFS_OP_LOCK_ABORT = 54,   /* lock_req (type, range ignored): roll back the owner's
                                * AUTORECOVER lock and release it */

    /* File-system extras (the 70..79 range; see docs/protocol.md). */
    DAFS_OP_EXT_FIRST = 70,
    DAFS_OP_FALLOCATE = 70,   /* fh, mode, offset, length -> attr (fallocate(2)) */
    DAFS_OP_COPY_RANGE = 71,  /* src fh+offset, dst fh+offset, length -> bytes copied */
    DAFS_OP_SEEK = 72,        /* fh, offset, DATA|HOLE -> offset, or NXIO */
    DAFS_OP_GETXATTR = 73,    /* fh, name, size -> value (or its size when size is 0) */
    DAFS_OP_SETXATTR = 74,    /* fh, name, value, CREATE|REPLACE */
    DAFS_OP_LISTXATTR = 75,   /* fh, size -> NUL-terminated names (or their size) */
    DAFS_OP_REMOVEXATTR = 76, /* fh, name */
    DAFS_OP_READDIRPLUS = 77, /* READDIR whose entries carry fh + attr */
    DAFS_OP_EXT_END,          /* one past the last extra op */
    DAFS_OP_LIMIT = 80        /* every opcode is below this */
};

/* Known opcodes in ascending order: dafs_op_next(op) is the next known one
 * after op (DAFS_OP_LIMIT after the last), so
 *   for (op = 0; op < DAFS_OP_LIMIT; op = dafs_op_next(op))
 * visits every op the codec knows. */
bool dafs_op_known(uint16_t op);
uint16_t dafs_op_next(uint16_t op);

/*
 * Wire status values.  0 is success.  The POSIX-like ones keep Linux's errno
 * numbers so that mapping is the identity on Linux, but they are protocol
 * constants: a port to another OS maps them explicitly.
 */
enum dafs_status {
    DAFS_ST_OK = 0,
    DAFS_ST_PERM = 1,
    DAFS_ST_NOENT = 2,
    DAFS_ST_INTR = 4,        /* a queued LOCK ended by LOCK_CANCEL or the server's shutdown */
    DAFS_ST_IO = 5,
    DAFS_ST_NXIO = 6,        /* SEEK: no data/hole at or after the offset */
    DAFS_ST_TOOBIG = 7,      /* E2BIG: xattr value or list larger than the protocol allows */
    DAFS_ST_BADF = 9,
    DAFS_ST_AGAIN = 11,
    DAFS_ST_NOMEM = 12,
    DAFS_ST_ACCES = 13,
    DAFS_ST_EXIST = 17,
    DAFS_ST_XDEV = 18,
    DAFS_ST_NOTDIR = 20,
    DAFS_ST_ISDIR = 21,
    DAFS_ST_INVAL = 22,
    DAFS_ST_MFILE = 24,   /* too many open states on this session */
    DAFS_ST_FBIG = 27,
    DAFS_ST_NOSPC = 28,
    DAFS_ST_ROFS = 30,
    DAFS_ST_MLINK = 31,
    DAFS_ST_RANGE = 34,      /* xattr value or list larger than the size asked for */
    DAFS_ST_DEADLK = 35,     /* LOCK: waiting would deadlock */
    DAFS_ST_NAMETOOLONG = 36,
    DAFS_ST_NOLCK = 37,      /* LOCK: the server's lock limits are reached */
    DAFS_ST_NOSYS = 38,
    DAFS_ST_NOTEMPTY = 39,
    DAFS_ST_LOOP = 40,
    DAFS_ST_NODATA = 61,     /* no such extended attribute */
    DAFS_ST_OVERFLOW = 75,
    DAFS_ST_BADMSG = 74,
    DAFS_ST_USERS = 87,      /* CONNECT: the server's session cap (overall or per peer) is reached */
    DAFS_ST_NOTSUP = 95,
    DAFS_ST_STALE = 116,
    DAFS_ST_DQUOT = 122,
    /* dafs-specific: same numbers as the public DAFS_E* codes in dafs.h */
    DAFS_ST_BADSESSION = 10001, /* unknown, expired or closed session */
    DAFS_ST_CREDIT = 10002,     /* request sent beyond the granted credits */
    DAFS_ST_VERSION = 10003,    /* protocol version not supported */
    DAFS_ST_BADHANDLE = 10004,  /* malformed or forged file handle */
    DAFS_ST_SERVERFAULT = 10005,/* server-side failure not covered above */
    DAFS_ST_BADOP = 10006,      /* unknown opcode */
    DAFS_ST_BADSTATEID = 10010, /* stateid unknown to this session, closed, stale or
                                 * not for this file handle */
    DAFS_ST_LOCK_BROKEN = 10012,/* LOCK/LOCKU/I/O: a broken PERSIST lock is in the way */
    DAFS_ST_GRACE = 10013,      /* grace period after a restart: only reclaims */
    DAFS_ST_WHOA = 10011,       /* BATCH_SUBMIT (asynchronous): the server is congested;
                                 * nothing was accepted, retry after a BATCH_COMPLETION
                                 * (DAFS's EWHOACOWBOY) */
};

/* Fixed message header.  length = header + body, in bytes. */
typedef struct dafs_hdr {
    uint32_t magic;
    uint16_t version;
    uint16_t opcode;     /* enum dafs_op */
    uint32_t length;
    uint16_t flags;      /* DAFS_HDR_REPLY */
    uint16_t credits;    /* reply: the session's credit grant from now on */
    uint64_t session_id; /* 0 only in CONNECT */
    uint64_t xid;        /* chosen by the client, echoed in the reply */
    int32_t status;      /* reply: enum dafs_status; request: 0 */
    uint32_t cred;       /* request: credential id from REGISTER_CRED under which the
                          * server runs it; 0 = anonymous (the export's anon uid/gid).
                          * reply: 0 */
    uint32_t slot;       /* reserved for the exactly-once slot table: clients send 0 */
    uint32_t seq;        /* reserved, with slot; any value is accepted */
} dafs_hdr;

typedef struct dafs_fh {
    uint8_t len; /* 1..DAFS_FH_MAX */
    uint8_t data[DAFS_FH_MAX];
} dafs_fh;

/* A counted byte string pointing into a message buffer (not NUL-terminated). */
typedef struct dafs_bytes {
    const uint8_t *ptr;
    uint32_t len;
} dafs_bytes;

/* File attributes.  type/permission bits use the POSIX S_IF* / 07777 values. */
typedef struct dafs_attr {
    uint32_t mode;
    uint32_t nlink;
    uint32_t uid;
    uint32_t gid;
    uint64_t size;
    uint64_t used;   /* bytes allocated */
    uint64_t fileid; /* inode number */
    uint64_t rdev;
    int64_t atime_sec, mtime_sec, ctime_sec;
    uint32_t atime_nsec, mtime_nsec, ctime_nsec;
} dafs_attr;

/* One remote memory segment of the client, for server-initiated RMA. */
typedef struct dafs_seg {
    uint64_t addr; /* address to use in RMA (0-based when the provider is not FI_MR_VIRT_ADDR) */
    uint64_t key;  /* remote key of the registration */
    uint64_t len;
} dafs_seg;

/* OPEN flags on the wire (not host O_* values). */
#define DAFS_OPEN_RDONLY 0x0000u
#define DAFS_OPEN_WRONLY 0x0001u
#define DAFS_OPEN_RDWR 0x0002u
#define DAFS_OPEN_ACCMODE 0x0003u
#define DAFS_OPEN_CREAT 0x0010u
#define DAFS_OPEN_EXCL 0x0020u
#define DAFS_OPEN_TRUNC 0x0040u
#define DAFS_OPEN_DIRECTORY 0x0080u
#define DAFS_OPEN_NOSTATE 0x0100u /* OPEN: keep no open state (stateid 0; v1 behaviour) */
#define DAFS_OPEN_ALL 0x01f3u
#define DAFS_OPEN_FH_ALL (DAFS_OPEN_ACCMODE | DAFS_OPEN_TRUNC) /* OPEN_FH flags */

/*
 * Open state.  A stateid names one open of one file in one session; the
 * server picks it (never 0) and refuses an unknown, closed or stale one with
 * DAFS_ST_BADSTATEID.  stateid 0 in a request means "no open state": the
 * server checks access as the caller, as in version 1.
 */
typedef uint64_t dafs_stateid;

/* WRITE stable_how / COMMIT. */
enum dafs_stable { DAFS_UNSTABLE = 0, DAFS_DATA_SYNC = 1, DAFS_FILE_SYNC = 2 };

/* Cache hints (DAFS 4.2.4): the hint of CACHE_HINT, and the per-request
 * `hints` of READ and WRITE (after the I/O, DONTNEED drops the range from
 * the server's page cache; on a READ, WILLNEED and SEQUENTIAL read ahead
 * past it).  Same values as the public enum dafs_cache_hint. */
enum dafs_hint { DAFS_WIRE_HINT_NORMAL = 0, DAFS_WIRE_HINT_RANDOM = 1, DAFS_WIRE_HINT_SEQUENTIAL = 2,
                 DAFS_WIRE_HINT_WILLNEED = 3, DAFS_WIRE_HINT_DONTNEED = 4 };

/* ---- request bodies ---------------------------------------------------- */

typedef struct dafs_connect_req {
    dafs_bytes client_id;  /* 1..DAFS_CLIENT_ID_MAX bytes */
    uint64_t boot_verifier;/* a new value releases the old incarnation's state */
    uint32_t fence_id;
    uint32_t max_request;  /* proposed limits; server answers with min(its, these) */
    uint32_t max_response;
    uint32_t inline_max;   /* largest inline read/write payload */
    uint16_t max_credits;
    dafs_bytes ep_name;    /* client's libfabric endpoint name, 1..DAFS_EPNAME_MAX */
} dafs_connect_req;

/*
 * Which body goes with which op (request / reply-on-success):
 *   GETATTR, STATFS, READLINK, LOOKUPP: fh_req / (attr, statfs, readlink, fh_attr)
 *   CLOSE: close_req / empty           OPEN_FH: open_fh_req / fh_attr with stateid
 *   SETATTR: setattr_req / attr        RENAME: rename_req / empty
 *   LINK: link_req / attr (of fh)      SYMLINK: symlink_req / fh_attr
 *   MKNOD: mknod_req / fh_attr         ACCESS: access_req / empty
 *   APPEND_INLINE/DIRECT: write_req (offset must be 0) / write_rep with offset
 *   REGISTER_CRED: cred_req / cred_rep RELEASE_CRED: cred_id_req / empty
 * (the first set is documented in docs/protocol.md)
 */
typedef struct dafs_fh_req { dafs_fh fh; } dafs_fh_req;

typedef struct dafs_close_req { /* CLOSE */
    dafs_fh fh;
    dafs_stateid stateid; /* released; 0: nothing to release (v1 behaviour) */
} dafs_close_req;

typedef struct dafs_open_fh_req { /* OPEN_FH */
    dafs_fh fh;
    uint32_t flags; /* DAFS_OPEN_RDONLY/WRONLY/RDWR, optionally DAFS_OPEN_TRUNC */
} dafs_open_fh_req;

typedef struct dafs_dirop_req { /* LOOKUP, REMOVE, RMDIR, MKDIR, OPEN */
    dafs_fh dir;
    dafs_bytes name;  /* 1..DAFS_NAME_MAX bytes; contents checked by the server */
    uint32_t flags;   /* OPEN: DAFS_OPEN_*; others 0 */
    uint32_t mode;    /* OPEN with CREAT, MKDIR: permission bits */
} dafs_dirop_req;

typedef struct dafs_read_req { /* READ_INLINE, READ_DIRECT */
    dafs_fh fh;
    dafs_stateid stateid; /* open state to do it under; 0 = none */
    uint64_t offset;
    uint32_t count;
    uint32_t hints;
    uint16_t nsegs;   /* DIRECT only, 1..DAFS_SEG_MAX; sum(len) >= count */
    dafs_seg segs[DAFS_SEG_MAX];
} dafs_read_req;

typedef struct dafs_write_req { /* WRITE_INLINE, WRITE_DIRECT */
    dafs_fh fh;
    dafs_stateid stateid; /* open state to do it under; 0 = none */
    uint64_t offset;
    uint32_t count;
    uint32_t stable;  /* enum dafs_stable */
    uint32_t hints;
    dafs_bytes data;  /* INLINE only: count bytes */
    uint16_t nsegs;   /* DIRECT only, 1..DAFS_SEG_MAX; sum(len) >= count */
    dafs_seg segs[DAFS_SEG_MAX];
} dafs_write_req;

typedef struct dafs_commit_req {
    dafs_fh fh;
    dafs_stateid stateid; /* open state to do it under; 0 = none */
    uint64_t offset;
    uint64_t count;   /* 0 = to end of file */
    uint32_t stable;  /* DAFS_DATA_SYNC or DAFS_FILE_SYNC */
} dafs_commit_req;

typedef struct dafs_readdir_req {
    dafs_fh dir;
    uint64_t cookie;   /* 0 = start; else a cookie from an earlier entry */
    uint32_t maxcount; /* largest reply body the client wants */
} dafs_readdir_req;

/* SETATTR: which fields of dafs_setattr_req to apply. */
#define DAFS_SET_MODE 0x01u
#define DAFS_SET_UID 0x02u
#define DAFS_SET_GID 0x04u
#define DAFS_SET_SIZE 0x08u
#define DAFS_SET_ATIME 0x10u     /* to atime_sec/nsec */
#define DAFS_SET_MTIME 0x20u
#define DAFS_SET_ATIME_NOW 0x40u /* to the server's clock (UTIME_NOW) */
#define DAFS_SET_MTIME_NOW 0x80u
#define DAFS_SET_ALL 0xffu

typedef struct dafs_setattr_req {
    dafs_fh fh;
    dafs_stateid stateid; /* open state to do it under; 0 = none */
    uint32_t valid; /* DAFS_SET_* */
    uint32_t mode;  /* permission bits 07777 */
    uint32_t uid, gid;
    uint64_t size;
    int64_t atime_sec, mtime_sec;
    uint32_t atime_nsec, mtime_nsec; /* < 1e9 */
} dafs_setattr_req;

#define DAFS_RENAME_NOREPLACE 0x1u
#define DAFS_RENAME_EXCHANGE 0x2u

typedef struct dafs_rename_req {
    dafs_fh src_dir;
    dafs_bytes src_name;
    dafs_fh dst_dir;
    dafs_bytes dst_name;
    uint32_t flags; /* DAFS_RENAME_*; not both */
} dafs_rename_req;

typedef struct dafs_link_req {
    dafs_fh fh;      /* existing object */
    dafs_fh dir;     /* new entry's directory */
    dafs_bytes name;
} dafs_link_req;

typedef struct dafs_symlink_req {
    dafs_fh dir;
    dafs_bytes name;
    dafs_bytes target; /* 1..DAFS_PATH_MAX bytes, stored verbatim, never followed by the server */
} dafs_symlink_req;

typedef struct dafs_mknod_req {
    dafs_fh dir;
    dafs_bytes name;
    uint32_t mode;   /* S_IFIFO/S_IFSOCK/S_IFCHR/S_IFBLK/S_IFREG | permission bits */
    uint64_t rdev;
} dafs_mknod_req;

#define DAFS_ACCESS_READ 0x4u
#define DAFS_ACCESS_WRITE 0x2u
#define DAFS_ACCESS_EXEC 0x1u

typedef struct dafs_access_req {
    dafs_fh fh;
    uint32_t mask; /* DAFS_ACCESS_*; 0 = existence only */
} dafs_access_req;

/* REGISTER_CRED: the group list is variable-length on the wire (u32 count,
 * then the ids), bounded by DAFS_GROUPS_MAX and the message size.  Encoding
 * reads the host-order array `groups`; decoding points `groups_wire` at the
 * little-endian ids in the receive buffer (no copy, no fixed array): read
 * them with dafs_cred_group(). */
typedef struct dafs_cred_req {
    uint32_t uid, gid;
    uint32_t ngroups;       /* 0..DAFS_GROUPS_MAX */
    const uint32_t *groups; /* encode: ngroups ids */
    dafs_bytes groups_wire; /* decode: 4 * ngroups bytes */
} dafs_cred_req;
uint32_t dafs_cred_group(const dafs_cred_req *c, uint32_t i); /* i < ngroups */

typedef struct dafs_cred_id_req { uint32_t cred_id; } dafs_cred_id_req; /* RELEASE_CRED */

/* FALLOCATE modes on the wire (not host FALLOC_FL_* values). */
#define DAFS_FALLOC_KEEP_SIZE 0x01u
#define DAFS_FALLOC_PUNCH_HOLE 0x02u
#define DAFS_FALLOC_ZERO_RANGE 0x04u
#define DAFS_FALLOC_COLLAPSE_RANGE 0x08u
#define DAFS_FALLOC_INSERT_RANGE 0x10u
#define DAFS_FALLOC_UNSHARE_RANGE 0x20u
#define DAFS_FALLOC_ALL 0x3fu

typedef struct dafs_fallocate_req {
    dafs_fh fh;
    uint32_t mode;   /* DAFS_FALLOC_*; which combinations work is the file system's call */
    uint64_t offset;
    uint64_t length; /* > 0 */
    dafs_stateid stateid; /* open state (for writing) to do it under; 0 = none */
} dafs_fallocate_req;

typedef struct dafs_copy_req { /* COPY_RANGE */
    dafs_fh src;
    uint64_t src_offset;
    dafs_fh dst;
    uint64_t dst_offset;
    uint64_t length; /* the server may copy less (the reply says how much) */
    uint32_t flags;  /* 0 */
    dafs_stateid src_stateid; /* open states (src for reading, dst for writing) */
    dafs_stateid dst_stateid; /* to do it under; 0 = none (checked as the caller) */
} dafs_copy_req;

#define DAFS_SEEK_DATA 0u
#define DAFS_SEEK_HOLE 1u

typedef struct dafs_seek_req {
    dafs_fh fh;
    uint64_t offset;
    uint32_t what; /* DAFS_SEEK_DATA or DAFS_SEEK_HOLE */
    dafs_stateid stateid; /* open state (any access) to do it under; 0 = none */
} dafs_seek_req;

#define DAFS_XATTR_CREATE 0x1u
#define DAFS_XATTR_REPLACE 0x2u

/* GETXATTR: fh, name, size.  SETXATTR: fh, name, value, flags.
 * LISTXATTR: fh, size.  REMOVEXATTR: fh, name.  (Unused fields are not sent.) */
typedef struct dafs_xattr_req {
    dafs_fh fh;
    dafs_bytes name;  /* 1..DAFS_XATTR_NAME_MAX bytes, no NUL */
    dafs_bytes value; /* SETXATTR: 0..DAFS_XATTR_VALUE_MAX bytes */
    uint32_t size;    /* GET: 0..DAFS_XATTR_VALUE_MAX; LIST: 0..DAFS_XATTR_LIST_MAX;
                       * 0 asks for the size only */
    uint32_t flags;   /* SETXATTR: DAFS_XATTR_CREATE or _REPLACE or 0, not both */
} dafs_xattr_req;

typedef struct dafs_cache_hint_req { /* CACHE_HINT */
    dafs_fh fh;
    dafs_stateid stateid; /* open state (any access) to do it under; 0 = none */
    uint64_t offset;
    uint64_t len;         /* 0 = to the end of the file */
    uint32_t hint;        /* enum dafs_hint, at most DAFS_WIRE_HINT_DONTNEED */
} dafs_cache_hint_req;
/* ==== locks (issue 12): LOCK, LOCKT, LOCKU ==== (docs/protocol.md §4.8)
 * One body for all three.  length 0 or all ones: to the end of the file. */
#define DAFS_WIRE_LOCK_SHARED 1u
#define DAFS_WIRE_LOCK_EXCL 2u
#define DAFS_WIRE_LOCK_RECLAIM 0x1u     /* flags: only in the grace period */
#define DAFS_WIRE_LOCK_PERSIST 0x2u
#define DAFS_WIRE_LOCK_AUTORECOVER 0x4u
#define DAFS_WIRE_LOCK_REPAIR 0x8u
#define DAFS_WIRE_LOCK_WAIT 0x10u       /* LOCK: queue until granted; the reply comes then */
#define DAFS_WIRE_LOCK_ALL 0x1fu
typedef struct dafs_lock_req {
    dafs_fh fh;
    dafs_stateid stateid; /* the open the lock belongs to (released by its CLOSE); 0 = none */
    uint64_t owner;       /* the client's lock owner within the session */
    uint64_t offset;
    uint64_t length;
    uint32_t type;        /* DAFS_WIRE_LOCK_SHARED or _EXCL; LOCKU: ignored (0..2) */
    uint32_t flags;       /* DAFS_WIRE_LOCK_* */
} dafs_lock_req;

/* LOCKT reply: found 0 (nothing in the way: the rest is 0) or 1. */
#define DAFS_LOCK_STATE_HELD 1u
#define DAFS_LOCK_STATE_BREAKABLE 2u
#define DAFS_LOCK_STATE_BROKEN 3u
#define DAFS_LOCK_STATE_ROLLBACK 4u
typedef struct dafs_lockt_rep {
    uint32_t found;
    uint32_t type, flags, state; /* DAFS_WIRE_LOCK_*, DAFS_LOCK_STATE_* */
    uint64_t session, owner;     /* who holds it (the server's session id) */
    uint64_t offset, length;     /* length all ones: to the end of the file */
} dafs_lockt_rep;
/* ==== end of locks ==== */

/* ==== batch I/O (issue 10): BATCH_SUBMIT, HURRY_UP, BATCH_COMPLETION ====
 * (kept together for the table-driven codec; docs/protocol.md "Batch I/O")
 *
 * BATCH_SUBMIT carries up to DAFS_BATCH_MAX entries (and what max_request
 * holds).  Synchronous: one reply with a completion per entry, in entry
 * order.  Asynchronous: the reply only accepts the batch (ncompl 0); the
 * completions come later in BATCH_COMPLETION messages on the back channel:
 * server -> client, header flags DAFS_HDR_NOTIFY, never more of them than the
 * client's back-channel grant (bc_credits) allows. */
#define DAFS_BATCH_MAX 1024        /* entries in one BATCH_SUBMIT */
#define DAFS_BATCH_SYNC 0u         /* mode */
#define DAFS_BATCH_ASYNC 1u
#define DAFS_BATCH_NOTIFY_ALL 0xffffffffu /* num_completions: when nothing is running */
enum dafs_batch_op { DAFS_BATCH_READ = 1, DAFS_BATCH_WRITE = 2, DAFS_BATCH_APPEND = 3,
                     DAFS_BATCH_COMMIT = 4 };
#define DAFS_BENT_INLINE 0x1u      /* WRITE/APPEND: the data is in the entry, no segment */
#define DAFS_BENT_ALL 0x1u
#define DAFS_BATCH_CPL_SIZE 24     /* encoded size of one completion */
#define DAFS_BATCH_REP_FIXED 8     /* ncompl + outstanding, before the completions */

typedef struct dafs_batch_entry {
    uint64_t request_id;   /* the client's tag, echoed in the completion */
    uint16_t op;           /* enum dafs_batch_op */
    uint16_t flags;        /* DAFS_BENT_* */
    uint32_t hint;         /* per-request cache hint (enum dafs_hint) */
    uint32_t stable;       /* WRITE/APPEND: enum dafs_stable; COMMIT: DATA_SYNC or FILE_SYNC */
    uint32_t count;        /* bytes; COMMIT: range length, 0 = to end of file */
    dafs_fh fh;
    dafs_stateid stateid;  /* 0 = none (checked as the header's credential) */
    uint64_t offset;       /* READ/WRITE/COMMIT; APPEND: 0 */
    dafs_seg seg;          /* READ, and WRITE/APPEND without INLINE: len >= count */
    dafs_bytes data;       /* WRITE/APPEND with INLINE: count bytes */
} dafs_batch_entry;

typedef struct dafs_batch_req { /* BATCH_SUBMIT */
    uint32_t mode;            /* DAFS_BATCH_SYNC or DAFS_BATCH_ASYNC */
    uint32_t usec_window;     /* ASYNC: latency bound for the completions; 0 = server's choice */
    uint32_t num_completions; /* ASYNC: notify after this many; 0 = keep the session's */
    uint32_t bc_credits;      /* back-channel grant: BATCH_COMPLETION messages the client
                               * can take in total since CONNECT (cumulative, wraps) */
    uint32_t nentries;        /* 0..DAFS_BATCH_MAX */
    const dafs_batch_entry *entries; /* encode: nentries entries */
    dafs_bytes entries_wire;  /* decode: the validated entries, walk with dafs_batch_next */
} dafs_batch_req;

/* Walk a decoded BATCH_SUBMIT's entries: 1 with *e filled (data points into
 * the receive buffer), 0 at the end.  *it starts as req->entries_wire. */
int dafs_batch_next(dafs_bytes *it, dafs_batch_entry *e);

typedef struct dafs_hurry_req { /* HURRY_UP */
    uint32_t bc_credits;      /* as in BATCH_SUBMIT */
} dafs_hurry_req;

typedef struct dafs_batch_cpl {
    uint64_t request_id;
    int32_t status;           /* enum dafs_status */
    uint32_t count;           /* bytes moved (READ: fewer at end of file) */
    uint64_t offset;          /* where: APPEND's landing offset, else the entry's */
} dafs_batch_cpl;

/* BATCH_SUBMIT reply body and BATCH_COMPLETION body. */
typedef struct dafs_batch_rep {
    uint32_t ncompl;          /* completions carried */
    uint32_t outstanding;     /* the session's async entries not yet reported */
    const dafs_batch_cpl *cpl;/* encode: ncompl completions */
    dafs_bytes cpl_wire;      /* decode: ncompl * DAFS_BATCH_CPL_SIZE bytes */
} dafs_batch_rep;
/* The i-th decoded completion (i < ncompl). */
void dafs_batch_cpl_get(const dafs_batch_rep *r, uint32_t i, dafs_batch_cpl *out);

/* BATCH_COMPLETION (server -> client): header opcode DAFS_OP_BATCH_COMPLETION,
 * flags DAFS_HDR_NOTIFY, xid = the session's notification number (1, 2, ...),
 * status 0, credits = the session's operation-channel grant. */
typedef struct dafs_notify {
    dafs_hdr hdr;
    dafs_batch_rep batch;
} dafs_notify;
int dafs_encode_notify(void *buf, size_t cap, const dafs_notify *m);
int dafs_decode_notify(const void *buf, size_t len, dafs_notify *out);
/* Incremental encoding of a batch reply or notification: begin with the
 * header (a reply header, or a NOTIFY one), add completions until one does
 * not fit (-DAFS_ST_OVERFLOW), then finish.  Nothing is copied twice. */
typedef struct dafs_batch_enc {
    uint8_t *buf;
    size_t cap;
    size_t pos;
    uint32_t ncompl;
} dafs_batch_enc;
int dafs_batch_enc_begin(dafs_batch_enc *e, void *buf, size_t cap, const dafs_hdr *hdr);
int dafs_batch_enc_add(dafs_batch_enc *e, const dafs_batch_cpl *c);
int dafs_batch_enc_finish(dafs_batch_enc *e, uint32_t outstanding); /* total length */
/* ==== end of batch I/O ==== */

typedef struct dafs_request {
    dafs_hdr hdr;
    union {
        dafs_connect_req connect;
        dafs_fh_req fh;
        dafs_close_req close;
        dafs_open_fh_req open_fh;
        dafs_dirop_req dirop;
        dafs_read_req read;
        dafs_write_req write;
        dafs_commit_req commit;
        dafs_readdir_req readdir;
        dafs_setattr_req setattr;
        dafs_rename_req rename;
        dafs_link_req link;
        dafs_symlink_req symlink;
        dafs_mknod_req mknod;
        dafs_access_req access;
        dafs_cred_req cred;
        dafs_cred_id_req cred_id;
        dafs_fallocate_req fallocate;
        dafs_copy_req copy;
        dafs_seek_req seek;
        dafs_xattr_req xattr;
        dafs_cache_hint_req cache_hint;
        dafs_batch_req batch; /* batch I/O */
        dafs_hurry_req hurry; /* batch I/O */
        dafs_lock_req lock;   /* LOCK, LOCKT, LOCKU */
    } u;
} dafs_request;

/* ---- reply bodies ------------------------------------------------------ */

typedef struct dafs_connect_rep {
    uint64_t server_instance; /* changes each time dafsd starts */
    uint32_t max_request;
    uint32_t max_response;
    uint32_t inline_max;
    uint32_t max_io;          /* largest count in one READ/WRITE_DIRECT */
    uint32_t lease_ms;
    uint16_t max_segs;        /* segments per direct request the server accepts */
} dafs_connect_rep;

typedef struct dafs_fh_attr_rep { /* GETROOT, LOOKUP, OPEN, OPEN_FH, MKDIR, ... */
    dafs_fh fh;
    dafs_attr attr;
    uint8_t created; /* OPEN: 1 when this call created the file */
    dafs_stateid stateid; /* OPEN and OPEN_FH only (not encoded for other ops):
                           * the new open state, 0 when none was made */
} dafs_fh_attr_rep;

typedef struct dafs_attr_rep { dafs_attr attr; } dafs_attr_rep; /* GETATTR */

typedef struct dafs_read_rep {
    uint32_t count;
    uint8_t eof;
    dafs_bytes data; /* READ_INLINE only: count bytes */
} dafs_read_rep;

typedef struct dafs_write_rep {
    uint32_t count;
    uint32_t committed;   /* enum dafs_stable actually achieved */
    uint64_t verifier;    /* write verifier (server instance) */
    uint64_t offset;      /* APPEND_* only: where the data was written */
} dafs_write_rep;

typedef struct dafs_readlink_rep { dafs_bytes target; } dafs_readlink_rep;
typedef struct dafs_cred_rep { uint32_t cred_id; } dafs_cred_rep; /* REGISTER_CRED, never 0 */

typedef struct dafs_commit_rep { uint64_t verifier; } dafs_commit_rep;

/* COPY_RANGE: bytes copied (0 at end of the source).  SEEK: the offset found. */
typedef struct dafs_u64_rep { uint64_t value; } dafs_u64_rep;

/* GETXATTR / LISTXATTR: size is the length of the value (names); data holds
 * it unless the request's size was 0 (then data is empty). */
typedef struct dafs_xattr_rep {
    uint32_t size;
    dafs_bytes data;
} dafs_xattr_rep;

/* READDIR reply: entries are validated at decode and walked with
 * dafs_readdir_next(). */
typedef struct dafs_dirent_wire {
    uint64_t fileid;
    uint64_t cookie; /* pass back to continue after this entry */
    uint32_t type;   /* S_IF* bits, 0 if unknown */
    dafs_bytes name;
} dafs_dirent_wire;

typedef struct dafs_readdir_rep {
    uint8_t eof;
    uint32_t nentries;
    dafs_bytes entries; /* encoded entries, already validated */
    uint8_t plus;       /* set by decode: READDIRPLUS entries (walk with dafs_readdirplus_next) */
} dafs_readdir_rep;

typedef struct dafs_statfs_rep {
    uint64_t bsize, frsize, blocks, bfree, bavail, files, ffree;
    uint32_t namemax;
} dafs_statfs_rep;

typedef struct dafs_reply {
    dafs_hdr hdr;
    union {
        dafs_connect_rep connect;
        dafs_fh_attr_rep fh_attr;
        dafs_attr_rep attr;
        dafs_read_rep read;
        dafs_write_rep write;
        dafs_commit_rep commit;
        dafs_readdir_rep readdir; /* READDIR and READDIRPLUS */
        dafs_statfs_rep statfs;
        dafs_readlink_rep readlink;
        dafs_cred_rep cred;
        dafs_u64_rep u64;
        dafs_xattr_rep xattr;
        dafs_batch_rep batch; /* batch I/O: BATCH_SUBMIT */
        dafs_lockt_rep lockt; /* LOCKT */
    } u;
} dafs_reply;

/* ---- codec ------------------------------------------------------------- */

/*
 * Decode only the header; checks magic, version, length against len, and
 * that a reply carries cred 0.  Returns 0 or a negative dafs status (-DAFS_ST_BADMSG,
 * -DAFS_ST_VERSION).
 */
int dafs_decode_hdr(const void *buf, size_t len, dafs_hdr *out);
void dafs_encode_hdr(void *buf, const dafs_hdr *h); /* writes DAFS_HDR_SIZE bytes */

/*
 * Decode a whole request/reply (header + body for hdr.opcode).  A reply whose
 * status is not OK has an empty body.  Returns 0, or -DAFS_ST_BADMSG for a
 * malformed message (truncated, oversized counts, bad lengths, trailing
 * garbage beyond padding), -DAFS_ST_VERSION, or -DAFS_ST_BADOP.
 */
int dafs_decode_request(const void *buf, size_t len, dafs_request *out);
int dafs_decode_reply(const void *buf, size_t len, dafs_reply *out);

/*
 * Encode a request/reply into buf (capacity cap).  hdr.length is computed and
 * filled in; magic and version are set.  Returns the encoded length, or
 * -DAFS_ST_OVERFLOW if it does not fit, -DAFS_ST_INVAL for out-of-range fields.
 */
int dafs_encode_request(void *buf, size_t cap, const dafs_request *m);
int dafs_encode_reply(void *buf, size_t cap, const dafs_reply *m);

/*
 * Incremental READDIR reply encoding for the server: begin, add entries until
 * one returns -DAFS_ST_OVERFLOW (that entry was not added), then finish.
 */
typedef struct dafs_readdir_enc {
    uint8_t *buf;
    size_t cap;
    size_t pos;
    uint32_t nentries;
    bool plus;
} dafs_readdir_enc;
/* hdr->opcode READDIR or READDIRPLUS (then add entries with _add_plus). */
int dafs_readdir_enc_begin(dafs_readdir_enc *e, void *buf, size_t cap, const dafs_hdr *hdr);
int dafs_readdir_enc_add(dafs_readdir_enc *e, const dafs_dirent_wire *ent);
/* READDIRPLUS entry flags on the wire. */
#define DAFS_PLUS_ATTR 0x1u      /* fh and attr follow */
#define DAFS_PLUS_NO_XATTRS 0x2u /* the object had no extended attributes (only with ATTR) */
/* READDIRPLUS entry: fh and attr NULL when the server could not get them
 * (the entry then carries only the READDIR fields); flags may add
 * DAFS_PLUS_NO_XATTRS (ignored without fh and attr). */
int dafs_readdir_enc_add_plus(dafs_readdir_enc *e, const dafs_dirent_wire *ent,
                              const dafs_fh *fh, const dafs_attr *attr, unsigned flags);
int dafs_readdir_enc_finish(dafs_readdir_enc *e, bool eof); /* returns total length */

/* Walk a decoded READDIR reply: returns 1 with *ent filled, 0 at the end. */
typedef struct dafs_readdir_iter {
    dafs_bytes rest;
    uint32_t left;
    uint8_t plus;
} dafs_readdir_iter;
void dafs_readdir_iter_init(dafs_readdir_iter *it, const dafs_readdir_rep *rep);
int dafs_readdir_next(dafs_readdir_iter *it, dafs_dirent_wire *ent);
/* READDIRPLUS: also *has_attr, the entry's DAFS_PLUS_* flags (fh and attr
 * filled when DAFS_PLUS_ATTR is set; 0 for a READDIR entry). */
int dafs_readdirplus_next(dafs_readdir_iter *it, dafs_dirent_wire *ent, dafs_fh *fh,
                          dafs_attr *attr, int *has_attr);

/* Encoded size of an error reply (header only). */
#define DAFS_ERROR_REPLY_SIZE DAFS_HDR_SIZE

/*
 * The VERSION error reply to a request of another version whose header
 * (common 40-byte prefix) is req: to a version-1 peer a 40-byte version-1
 * header, which a version-1 client decodes; to any other version our own
 * 48-byte version-2 header.  Returns the length written (cap must hold
 * DAFS_HDR_SIZE bytes) or -DAFS_ST_OVERFLOW.
 */
int dafs_encode_version_error(void *buf, size_t cap, const dafs_hdr *req, uint16_t credits);

const char *dafs_op_name(uint16_t op); /* "READ_DIRECT", or "UNKNOWN" */

#endif
