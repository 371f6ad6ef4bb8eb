/*
 * undolog.c — see undolog.h for the design and the crash argument.
 *
 * File STATE_DIR/undo/undo-<hex id>.log:
 *   header (96 bytes): "DAFSUNDO" | u32 version (1) | u32 id_len | id[64]
 *                      | u64 created (ns, informative) | u32 0 | u32 crc32c
 *                      of the 92 bytes before it
 *   records, each:     u32 magic "UREC" | u32 kind (1 write, 2 truncate)
 *                      | u64 seq (1, 2, ...) | u64 offset | u64 old_size
 *                      | u32 len (<= UNDOLOG_CHUNK) | u32 0
 *                      | u32 0 | u32 crc32c of the 44 header bytes before it
 *                      and the len pre-image bytes; then len pre-image bytes
 * Reading stops at the first record that is short, has a bad magic, length,
 * sequence number or checksum.
 */
#include "undolog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"

#define HDR_SIZE     96u
#define REC_HDR_SIZE 48u
#define LOG_VERSION  1u
#define REC_MAGIC    0x43455255u /* "UREC" */
#define REC_WRITE    1u
#define REC_TRUNCATE 2u

struct undolog {
    pthread_mutex_t mu;
    int dirfd;    /* not owned */
    int logfd;    /* owned */
    int datafd;   /* owned (a dup) */
    uint64_t end; /* append position */
    uint64_t seq; /* last record's */
    char name[sizeof("undo-.log") + 2 * UNDOLOG_ID_MAX];
    uint8_t *buf; /* UNDOLOG_CHUNK + REC_HDR_SIZE */
};

/* ---- CRC-32C ------------------------------------------------------------ */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t undolog_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    crc = ~crc;
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- little-endian helpers ---------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- plain I/O that finishes or fails ------------------------------------ */

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Bytes read (short only at end of file), or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, p + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static int file_size(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

static void log_name(char *out, size_t outlen, const uint8_t *id, size_t id_len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = (size_t)snprintf(out, outlen, "undo-");
    for (size_t i = 0; i < id_len && n + 2 < outlen; i++) {
        out[n++] = hex[id[i] >> 4];
        out[n++] = hex[id[i] & 15];
    }
    snprintf(out + n, outlen - n, ".log");
}

/* ---- the directory -------------------------------------------------------- */

int undolog_dir_open(const char *state_dir, int *dirfd)
{
    int sfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0)
        return -errno;
    int rc = 0;
    if (mkdirat(sfd, UNDOLOG_DIR, 0700) == 0) {
        if (fsync(sfd) != 0)
            rc = -errno;
    } else if (errno != EEXIST) {
        rc = -errno;
    }
    if (rc == 0) {
        *dirfd = openat(sfd, UNDOLOG_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (*dirfd < 0)
            rc = -errno;
    }
    close(sfd);
    return rc;
}

/* ---- writing ---------------------------------------------------------------- */

int undolog_create(int dirfd, const void *id, size_t id_len, int data_fd, undolog **out)
{
    *out = NULL;
    if (id_len == 0 || id_len > UNDOLOG_ID_MAX)
        return -EINVAL;
    undolog *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->buf = malloc(UNDOLOG_CHUNK + REC_HDR_SIZE);
    if (!u->buf || pthread_mutex_init(&u->mu, NULL) != 0) {
        free(u->buf);
        free(u);
        return -ENOMEM;
    }
    u->dirfd = dirfd;
    u->logfd = -1;
    u->datafd = fcntl(data_fd, F_DUPFD_CLOEXEC, 0);
    int rc = u->datafd < 0 ? -errno : 0;
    log_name(u->name, sizeof(u->name), id, id_len);
    if (rc == 0) {
        u->logfd = openat(dirfd, u->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (u->logfd < 0)
            rc = -errno;
    }
    if (rc == 0) {
        uint8_t h[HDR_SIZE];
        memset(h, 0, sizeof(h));
        memcpy(h, "DAFSUNDO", 8);
        put32(h + 8, LOG_VERSION);
        put32(h + 12, (uint32_t)id_len);
        memcpy(h + 16, id, id_len);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        put64(h + 80, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
        put32(h + 92, undolog_crc32c(0, h, 92));
        rc = pwrite_all(u->logfd, h, sizeof(h), 0);
        fault_point("undo:after_create");
        if (rc == 0 && fdatasync(u->logfd) != 0)
            rc = -errno;
        if (rc == 0 && fsync(dirfd) != 0)
            rc = -errno;
        if (rc != 0)
            unlinkat(dirfd, u->name, 0);
        u->end = HDR_SIZE;
    }
    if (rc != 0) {
        if (u->logfd >= 0)
            close(u->logfd);
        if (u->datafd >= 0)
            close(u->datafd);
        pthread_mutex_destroy(&u->mu);
        free(u->buf);
        free(u);
        return rc;
    }
    *out = u;
    return 0;
}

/* Append records holding the bytes [off, off + len) of the file (those below
 * its size `size`), each with old_size = size; or one empty record when
 * there are none.  Not yet durable.  Called with u->mu held. */
static int append_records(undolog *u, uint32_t kind, uint64_t off, uint64_t len, uint64_t size)
{
    uint64_t stop = off < size ? (len > size - off ? size : off + len) : off;
    uint64_t pos = off;
    do {
        uint64_t want = stop - pos > UNDOLOG_CHUNK ? UNDOLOG_CHUNK : stop - pos;
        uint8_t *h = u->buf;
        ssize_t got = 0;
        if (want > 0) {
            got = pread_full(u->datafd, h + REC_HDR_SIZE, (size_t)want, pos);
            if (got < 0)
                return (int)got;
        }
        memset(h, 0, REC_HDR_SIZE);
        put32(h, REC_MAGIC);
        put32(h + 4, kind);
        put64(h + 8, u->seq + 1);
        put64(h + 16, pos);
        put64(h + 24, size);
        put32(h + 32, (uint32_t)got);
        uint32_t crc = undolog_crc32c(0, h, 44);
        crc = undolog_crc32c(crc, h + REC_HDR_SIZE, (size_t)got);
        put32(h + 44, crc);
        size_t total = REC_HDR_SIZE + (size_t)got;
        /* A torn record, as a crash in the middle of the append leaves it. */
        int rc = pwrite_all(u->logfd, h, total / 2, u->end);
        if (rc != 0)
            return rc;
        fault_point("undo:mid_record");
        rc = pwrite_all(u->logfd, h + total / 2, total - total / 2, u->end + total / 2);
        if (rc != 0)
            return rc;
        u->end += total;
        u->seq++;
        if (got < (ssize_t)want)
            break; /* the file shrank meanwhile: nothing beyond to save */
        pos += want;
    } while (pos < stop);
    return 0;
}

static int record(undolog *u, uint32_t kind, uint64_t off, uint64_t len)
{
    pthread_mutex_lock(&u->mu);
    uint64_t size = 0;
    int rc = file_size(u->datafd, &size);
    if (rc == 0) {
        fault_point("undo:before_record");
        rc = append_records(u, kind, off, len, size);
    }
    if (rc == 0 && fdatasync(u->logfd) != 0)
        rc = -errno;
    pthread_mutex_unlock(&u->mu);
    if (rc == 0)
        fault_point("undo:after_record");
    return rc;
}

int undolog_before_write(undolog *u, uint64_t off, uint64_t len)
{
    if (off > INT64_MAX || len > (uint64_t)INT64_MAX - off)
        return -EFBIG;
    return record(u, REC_WRITE, off, len);
}

int undolog_before_truncate(undolog *u, uint64_t new_size)
{
    if (new_size > INT64_MAX)
        return -EFBIG;
    /* Everything from new_size on: nothing when the file grows. */
    return record(u, REC_TRUNCATE, new_size, (uint64_t)INT64_MAX - new_size);
}

uint64_t undolog_records(const undolog *u)
{
    return u->seq;
}

static void undolog_free(undolog *u)
{
    close(u->logfd);
    close(u->datafd);
    pthread_mutex_destroy(&u->mu);
    free(u->buf);
    free(u);
}

static int remove_log(int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
        return -errno;
    return fsync(dirfd) != 0 ? -errno : 0;
}

int undolog_commit(undolog *u)
{
    int rc = remove_log(u->dirfd, u->name);
    undolog_free(u);
    return rc;
}

void undolog_close(undolog *u)
{
    undolog_free(u);
}

/* ---- reading and rolling back ------------------------------------------------ */

/* 1 with the id if the header is valid, 0 if not (no record can follow a bad
 * header), -errno on a read error. */
static int read_header(int logfd, uint8_t *id, size_t *id_len)
{
    uint8_t h[HDR_SIZE];
    ssize_t n = pread_full(logfd, h, sizeof(h), 0);
    if (n < 0)
        return (int)n;
    if ((size_t)n < sizeof(h) || memcmp(h, "DAFSUNDO", 8) != 0 || get32(h + 8) != LOG_VERSION ||
        get32(h + 12) == 0 || get32(h + 12) > UNDOLOG_ID_MAX ||
        get32(h + 92) != undolog_crc32c(0, h, 92))
        return 0;
    *id_len = get32(h + 12);
    memcpy(id, h + 16, *id_len);
    return 1;
}

/* Undo the records of logfd on datafd, newest first, then fsync datafd.
 * buf holds UNDOLOG_CHUNK + REC_HDR_SIZE bytes. */
static int apply_log(int logfd, int datafd, uint8_t *buf)
{
    /* Pass 1: where the valid records are. */
    uint64_t *pos = NULL;
    size_t npos = 0, cap = 0;
    uint64_t at = HDR_SIZE;
    int rc = 0;
    for (;;) {
        uint8_t *h = buf;
        ssize_t n = pread_full(logfd, h, REC_HDR_SIZE, at);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if ((size_t)n < REC_HDR_SIZE || get32(h) != REC_MAGIC || get64(h + 8) != npos + 1 ||
            get32(h + 32) > UNDOLOG_CHUNK || get64(h + 24) > INT64_MAX)
            break;
        uint32_t len = get32(h + 32);
        n = pread_full(logfd, h + REC_HDR_SIZE, len, at + REC_HDR_SIZE);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if ((size_t)n < len)
            break; /* torn */
        uint32_t crc = undolog_crc32c(0, h, 44);
        crc = undolog_crc32c(crc, h + REC_HDR_SIZE, len);
        if (crc != get32(h + 44))
            break; /* torn */
        if (npos == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            uint64_t *np = realloc(pos, ncap * sizeof(*np));
            if (!np) {
                rc = -ENOMEM;
                break;
            }
            pos = np;
            cap = ncap;
        }
        pos[npos++] = at;
        at += REC_HDR_SIZE + len;
    }
    /* Pass 2: newest first. */
    for (size_t i = npos; rc == 0 && i-- > 0;) {
        uint8_t *h = buf;
        ssize_t n = pread_full(logfd, h, REC_HDR_SIZE, pos[i]);
        if (n >= 0 && (size_t)n < REC_HDR_SIZE)
            n = -EIO;
        uint32_t len = n >= 0 ? get32(h + 32) : 0;
        if (n >= 0)
            n = pread_full(logfd, h + REC_HDR_SIZE, len, pos[i] + REC_HDR_SIZE);
        if (n >= 0 && (size_t)n < len)
            n = -EIO; /* checked in pass 1: the log changed under us */
        if (n < 0) {
            rc = (int)n;
            break;
        }
        uint64_t off = get64(h + 16), old_size = get64(h + 24);
        if (len > 0)
            rc = pwrite_all(datafd, h + REC_HDR_SIZE, len, off);
        if (rc == 0 && ftruncate(datafd, (off_t)old_size) != 0)
            rc = -errno;
        if (rc == 0)
            fault_point("rollback:after_apply");
    }
    free(pos);
    if (rc == 0 && fsync(datafd) != 0)
        rc = -errno;
    if (rc == 0)
        fault_point("rollback:before_unlink");
    return rc;
}

int undolog_rollback(undolog *u)
{
    pthread_mutex_lock(&u->mu);
    int rc = apply_log(u->logfd, u->datafd, u->buf);
    pthread_mutex_unlock(&u->mu);
    if (rc == 0)
        rc = remove_log(u->dirfd, u->name);
    undolog_free(u);
    return rc;
}

static bool is_log_name(const char *name)
{
    size_t n = strlen(name);
    return n > 9 && strncmp(name, "undo-", 5) == 0 && strcmp(name + n - 4, ".log") == 0;
}

/* Roll back one log found at start.  1 rolled back, 0 nothing to do, -errno. */
static int recover_one(int dirfd, const char *name, undolog_open_fn open_fn, void *ctx,
                       uint8_t *buf)
{
    int logfd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (logfd < 0)
        return errno == ENOENT ? 0 : -errno;
    uint8_t id[UNDOLOG_ID_MAX];
    size_t id_len = 0;
    int rc = read_header(logfd, id, &id_len);
    if (rc <= 0) {
        close(logfd);
        return rc < 0 ? rc : remove_log(dirfd, name); /* no write was ever applied */
    }
    int datafd = open_fn(ctx, id, id_len);
    if (datafd < 0) {
        close(logfd);
        if (datafd == -ENOENT || datafd == -ESTALE)
            return remove_log(dirfd, name); /* the object is gone */
        return datafd;
    }
    rc = apply_log(logfd, datafd, buf);
    close(logfd);
    close(datafd);
    if (rc == 0)
        rc = remove_log(dirfd, name);
    return rc == 0 ? 1 : rc;
}

int undolog_recover(int dirfd, undolog_open_fn open_fn, void *ctx, unsigned *rolled)
{
    if (rolled)
        *rolled = 0;
    int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    DIR *d = fdopendir(dfd);
    if (!d) {
        int err = errno;
        close(dfd);
        return -err;
    }
    uint8_t *buf = malloc(UNDOLOG_CHUNK + REC_HDR_SIZE);
    if (!buf) {
        closedir(d);
        return -ENOMEM;
    }
    /* Collect the names first: removing entries while reading the directory
     * may skip some. */
    char **names = NULL;
    size_t n = 0, cap = 0;
    int first_err = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (!is_log_name(de->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = realloc(names, ncap * sizeof(*nn));
            if (!nn) {
                first_err = -ENOMEM;
                break;
            }
            names = nn;
            cap = ncap;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) {
            first_err = -ENOMEM;
            break;
        }
        n++;
    }
    if (!de && errno != 0 && first_err == 0)
        first_err = -errno;
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        int rc = recover_one(dirfd, names[i], open_fn, ctx, buf);
        if (rc > 0 && rolled)
            (*rolled)++;
        if (rc < 0 && first_err == 0)
            first_err = rc;
        free(names[i]);
    }
    free(names);
    free(buf);
    return first_err;
}

/* ---- the set of open logs --------------------------------------------------------- */

typedef struct undo_entry {
    uint8_t id[UNDOLOG_ID_MAX];
    size_t id_len;
    undolog *log;
    unsigned refs; /* records being written */
    struct undo_entry *next;
} undo_entry;

struct undo_set {
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int dirfd;
    undo_entry *head;
};

int undoset_open(int dirfd, undo_set **out)
{
    *out = NULL;
    undo_set *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return -ENOMEM;
    }
    if (pthread_cond_init(&s->idle, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return -ENOMEM;
    }
    s->dirfd = dirfd;
    *out = s;
    return 0;
}

void undoset_close(undo_set *s)
{
    if (!s)
        return;
    for (undo_entry *e = s->head, *next; e; e = next) {
        next = e->next;
        undolog_close(e->log);
        free(e);
    }
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* The entry for id (created with its log when data_fd >= 0), referenced;
 * or NULL with *rc. */
static undo_entry *set_get(undo_set *s, const void *id, size_t id_len, int data_fd, int *rc)
{
    *rc = 0;
    if (id_len == 0 || id_len > UNDOLOG_ID_MAX) {
        *rc = -EINVAL;
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    undo_entry *e = s->head;
    while (e && (e->id_len != id_len || memcmp(e->id, id, id_len) != 0))
        e = e->next;
    if (!e && data_fd >= 0) {
        e = calloc(1, sizeof(*e));
        if (!e) {
            *rc = -ENOMEM;
        } else {
            *rc = undolog_create(s->dirfd, id, id_len, data_fd, &e->log);
            if (*rc != 0) {
                free(e);
                e = NULL;
            } else {
                memcpy(e->id, id, id_len);
                e->id_len = id_len;
                e->next = s->head;
                s->head = e;
            }
        }
    }
    if (e)
        e->refs++;
    pthread_mutex_unlock(&s->mu);
    return e;
}

static void set_put(undo_set *s, undo_entry *e)
{
    pthread_mutex_lock(&s->mu);
    if (--e->refs == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
}

int undoset_before_write(undo_set *s, const void *id, size_t id_len, int data_fd, uint64_t off,
                         uint64_t len)
{
    int rc;
    undo_entry *e = set_get(s, id, id_len, data_fd, &rc);
    if (!e)
        return rc;
    rc = undolog_before_write(e->log, off, len);
    set_put(s, e);
    return rc;
}

int undoset_before_truncate(undo_set *s, const void *id, size_t id_len, int data_fd,
                            uint64_t new_size)
{
    int rc;
    undo_entry *e = set_get(s, id, id_len, data_fd, &rc);
    if (!e)
        return rc;
    rc = undolog_before_truncate(e->log, new_size);
    set_put(s, e);
    return rc;
}

/* Take id's entry out of the set once no record is being written to it. */
static undo_entry *set_take(undo_set *s, const void *id, size_t id_len)
{
    pthread_mutex_lock(&s->mu);
    undo_entry **pp = &s->head;
    while (*pp && ((*pp)->id_len != id_len || memcmp((*pp)->id, id, id_len) != 0))
        pp = &(*pp)->next;
    undo_entry *e = *pp;
    if (e) {
        *pp = e->next;
        while (e->refs > 0)
            pthread_cond_wait(&s->idle, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

int undoset_rollback(undo_set *s, const void *id, size_t id_len)
{
    undo_entry *e = set_take(s, id, id_len);
    if (!e)
        return 0;
    int rc = undolog_rollback(e->log);
    free(e);
    return rc;
}

int undoset_commit(undo_set *s, const void *id, size_t id_len)
{
    undo_entry *e = set_take(s, id, id_len);
    if (!e)
        return 0;
    int rc = undolog_commit(e->log);
    free(e);
    return rc;
}
