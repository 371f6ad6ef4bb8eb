#!/usr/bin/env bash
# sqlite2.sh — sqlite3 on one database from two mounts (two clients): two
# writer processes per mount insert at the same time with the rollback
# journal; then integrity_check must say ok and no row may be lost.  This
# needs the fcntl locks to exclude each other across mounts (the server's,
# ops_lock.c) and each lock to drop the mount's cached pages and attributes
# of the database (what another mount wrote under its lock is read, not an
# old page).  With locks local to each mount, writers on the two mounts
# overwrite each other's pages: rows go missing or the database breaks.
# WAL mode is not tested and does not work across mounts: its index is
# shared memory (an mmap of the -shm file) that every process must see
# coherently, which FUSE does not give between two mounts' page caches.
source "$(dirname "$0")/lib.sh"
need sqlite3
start_server
mount_fs
mount_fs2
sqlite3 "$MNT/test.db" "CREATE TABLE t(id INTEGER PRIMARY KEY, writer INTEGER, v TEXT);" ||
  fail "create table"
# writer W DB: 200 inserts in batches of 50 statements (each its own
# transaction) per sqlite3 process, then 50 single-insert processes.
writer() {
  local w=$1 db=$2 i sql="PRAGMA busy_timeout=30000;"
  for i in $(seq 200); do
    sql+="INSERT INTO t(writer, v) VALUES($w, hex(randomblob(64)));"
    if [ $((i % 50)) -eq 0 ]; then
      sqlite3 "$db" "$sql" || return 1
      sql="PRAGMA busy_timeout=30000;"
    fi
  done
  for i in $(seq 50); do
    sqlite3 "$db" "PRAGMA busy_timeout=30000; INSERT INTO t(writer, v) VALUES($w, 'single $i');" ||
      return 1
  done
}
writer 1 "$MNT/test.db" & p1=$!
writer 2 "$MNT/test.db" & p2=$!
writer 3 "$MNT2/test.db" & p3=$!
writer 4 "$MNT2/test.db" & p4=$!
rc=0
for p in "$p1" "$p2" "$p3" "$p4"; do
  wait "$p" || rc=1
done
[ "$rc" -eq 0 ] || fail "a writer failed"
for m in "$MNT" "$MNT2"; do
  [ "$(sqlite3 "$m/test.db" 'PRAGMA integrity_check;')" = ok ] || fail "integrity_check not ok on $m"
  n=$(sqlite3 "$m/test.db" 'SELECT count(*) FROM t;')
  [ "$n" -eq 1000 ] || fail "expected 1000 rows on $m, found $n"
done
for w in 1 2 3 4; do
  n=$(sqlite3 "$MNT2/test.db" "SELECT count(*) FROM t WHERE writer=$w;")
  [ "$n" -eq 250 ] || fail "writer $w: $n rows of 250"
done
unmount_fs
unmount_fs2
[ "$(sqlite3 "$EXPORT/test.db" 'PRAGMA integrity_check; SELECT count(*) FROM t;' | tr '\n' ' ')" = "ok 1000 " ] ||
  fail "server copy differs"
pass
