#!/usr/bin/env bash
# sqlite.sh — two writer processes insert into one database on the mount at
# the same time (sqlite's rollback journal and its locks, which the kernel
# keeps local to the mount); then integrity_check must say ok and every row
# must be there.
source "$(dirname "$0")/lib.sh"
need sqlite3
start_server
mount_fs
db=$MNT/test.db
sqlite3 "$db" "CREATE TABLE t(id INTEGER PRIMARY KEY, writer INTEGER, v TEXT);" || fail "create table"
writer() {
  local w=$1 i sql="PRAGMA busy_timeout=30000;"
  for i in $(seq 300); do
    sql+="INSERT INTO t(writer, v) VALUES($w, hex(randomblob(64)));"
    if [ $((i % 50)) -eq 0 ]; then
      sqlite3 "$db" "$sql" || return 1
      sql="PRAGMA busy_timeout=30000;"
    fi
  done
  for i in $(seq 100); do
    sqlite3 "$db" "PRAGMA busy_timeout=30000; INSERT INTO t(writer, v) VALUES($w, 'single $i');" || return 1
  done
}
writer 1 & p1=$!
writer 2 & p2=$!
wait "$p1" || fail "writer 1 failed"
wait "$p2" || fail "writer 2 failed"
[ "$(sqlite3 "$db" 'PRAGMA integrity_check;')" = ok ] || fail "integrity_check not ok"
n=$(sqlite3 "$db" 'SELECT count(*) FROM t;')
[ "$n" -eq 800 ] || fail "expected 800 rows, found $n"
[ "$(sqlite3 "$db" 'SELECT count(*) FROM t WHERE writer=1;')" -eq 400 ] || fail "writer 1 rows lost"
unmount_fs
# The server's copy is the same database.
[ "$(sqlite3 "$EXPORT/test.db" 'PRAGMA integrity_check; SELECT count(*) FROM t;' | tr '\n' ' ')" = "ok 800 " ] ||
  fail "server copy differs"
pass
