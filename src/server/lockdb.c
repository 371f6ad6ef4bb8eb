/*
 * lockdb.c — see lockdb.h.  One LMDB environment, one unnamed database,
 * MDB_NOSUBDIR (locks.mdb and locks.mdb-lock in the state directory),
 * MDB_NOTLS (transactions are begun on whichever thread holds the lock
 * table's mutex).  Writes are serialized by the lock table's mutex anyway.
 */
#include "lockdb.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_SIZE 32u
#define KEY_MAX    (1u + LOCKDB_FID_MAX + 24u)

struct lockdb {
    MDB_env *env;
    MDB_dbi dbi;
};

static int mdb_errno(int rc)
{
    if (rc > 0)
        return -rc; /* a system errno */
    if (rc == MDB_MAP_FULL)
        return -ENOSPC;
    fprintf(stderr, "dafsd: lock database: %s\n", mdb_strerror(rc));
    return -EIO;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++, v >>= 8)
        p[i] = (uint8_t)v;
}
static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (uint8_t)v;
}
static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

int lockdb_open(const char *state_dir, lockdb **out)
{
    *out = NULL;
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/%s", state_dir, LOCKDB_FILE) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    lockdb *db = calloc(1, sizeof(*db));
    if (!db)
        return -ENOMEM;
    int rc = mdb_env_create(&db->env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(db->env, LOCKDB_MAP_SIZE);
    if (rc == 0)
        rc = mdb_env_open(db->env, path, MDB_NOSUBDIR | MDB_NOTLS, 0600);
    MDB_txn *txn = NULL;
    if (rc == 0)
        rc = mdb_txn_begin(db->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, NULL, 0, &db->dbi);
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (rc != 0) {
        if (txn)
            mdb_txn_abort(txn);
        if (db->env)
            mdb_env_close(db->env);
        free(db);
        return mdb_errno(rc);
    }
    *out = db;
    return 0;
}

void lockdb_close(lockdb *db)
{
    if (!db)
        return;
    mdb_env_close(db->env);
    free(db);
}

static size_t make_key(uint8_t *k, const uint8_t *fid, size_t fid_len, const lockdb_rec *r)
{
    k[0] = (uint8_t)fid_len;
    memcpy(k + 1, fid, fid_len);
    put_be64(k + 1 + fid_len, r->start);
    put_be64(k + 9 + fid_len, r->session);
    put_be64(k + 17 + fid_len, r->owner);
    return 25 + fid_len;
}

int lockdb_replace_file(lockdb *db, const uint8_t *fid, size_t fid_len, const lockdb_rec *recs,
                        size_t n)
{
    if (fid_len == 0 || fid_len > LOCKDB_FID_MAX)
        return -EINVAL;
    MDB_txn *txn;
    int rc = mdb_txn_begin(db->env, NULL, 0, &txn);
    if (rc != 0)
        return mdb_errno(rc);
    /* Delete the file's records: every key that starts with len | fid. */
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, db->dbi, &cur);
    if (rc == 0) {
        uint8_t prefix[1 + LOCKDB_FID_MAX];
        prefix[0] = (uint8_t)fid_len;
        memcpy(prefix + 1, fid, fid_len);
        for (;;) {
            MDB_val k = {1 + fid_len, prefix}, v;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            if (rc != 0 || k.mv_size < 1 + fid_len || memcmp(k.mv_data, prefix, 1 + fid_len) != 0)
                break;
            rc = mdb_cursor_del(cur, 0);
            if (rc != 0)
                break;
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
        mdb_cursor_close(cur);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t key[KEY_MAX], val[VALUE_SIZE];
        MDB_val k = {make_key(key, fid, fid_len, &recs[i]), key};
        put_le32(val, 1);
        put_le32(val + 4, recs[i].type);
        put_le32(val + 8, recs[i].flags);
        put_le32(val + 12, recs[i].state);
        put_le64(val + 16, recs[i].end);
        put_le64(val + 24, recs[i].stateid);
        MDB_val v = {VALUE_SIZE, val};
        rc = mdb_put(txn, db->dbi, &k, &v, 0);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return mdb_errno(rc);
    }
    rc = mdb_txn_commit(txn);
    return rc == 0 ? 0 : mdb_errno(rc);
}

int lockdb_load(lockdb *db, lockdb_load_fn cb, void *ctx, unsigned *bad)
{
    if (bad)
        *bad = 0;
    MDB_txn *txn;
    int rc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return mdb_errno(rc);
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, db->dbi, &cur);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return mdb_errno(rc);
    }
    MDB_val k, v;
    int ret = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && ret == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data, *vp = v.mv_data;
        size_t fid_len = k.mv_size >= 1 ? kp[0] : 0;
        if (fid_len == 0 || fid_len > LOCKDB_FID_MAX || k.mv_size != 25 + fid_len ||
            v.mv_size != VALUE_SIZE || get_le32(vp) != 1) {
            if (bad)
                (*bad)++;
            continue;
        }
        lockdb_rec r = {
            .start = get_be64(kp + 1 + fid_len),
            .session = get_be64(kp + 9 + fid_len),
            .owner = get_be64(kp + 17 + fid_len),
            .type = get_le32(vp + 4),
            .flags = get_le32(vp + 8),
            .state = get_le32(vp + 12),
            .end = get_le64(vp + 16),
            .stateid = get_le64(vp + 24),
        };
        if (r.end < r.start || r.state < LOCKDB_HELD || r.state > LOCKDB_REPAIRING) {
            if (bad)
                (*bad)++;
            continue;
        }
        ret = cb(ctx, kp + 1, fid_len, &r);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return mdb_errno(rc);
    return ret;
}
