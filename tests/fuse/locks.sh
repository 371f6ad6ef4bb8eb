#!/usr/bin/env bash
# locks.sh — fcntl, OFD and flock locks exclude each other across two mounts
# of one export (the server holds them; a kernel keeping them local to its
# mount fails every part below at its first cross-mount assertion).
#  (a) F_SETLK exclusive on mount 1: an overlapping F_SETLK (and OFD lock) on
#      mount 2 fails EAGAIN, a non-overlapping one succeeds; F_GETLK on
#      mount 2 reports F_WRLCK and the holder's range.
#  (b) F_SETLKW on mount 2 blocks while mount 1 holds the lock, and gets it
#      once the holder exits (its close releases it); a signal interrupts a
#      blocked F_SETLKW (EINTR).
#  (c) flock -x on mount 1: flock -n on mount 2 fails (and so does an fcntl
#      lock: flock is emulated as a whole-file lock), and succeeds after the
#      release.
#  (d) a holder killed with SIGKILL releases its locks (fcntl: at once, the
#      kernel's FLUSH at exit; flock: with the open's RELEASE, which the
#      kernel sends in the background).
#  (e) shared locks from both mounts coexist; an exclusive one then fails.
#  (f) taking a lock drops the mount's cached pages: data another mount
#      wrote under the lock is read, not the page cache's old copy.
#  (g) two shared flocks (one per mount) both converted to exclusive: as
#      Linux does, a blocking conversion drops the shared lock first, so one
#      gets it and the other follows (no deadlock).
#  (h) at most 8 blocking requests wait at once per mount (each holds a
#      daemon thread): a 9th gets ENOLCK, the mount still answers, and the 8
#      get the lock in turn once it is released.
#  (i) with -o writeback_cache (both mounts again), an unlock has the
#      kernel write the cached data back first: the next holder, on the
#      other mount, reads it while the writer still has the file open.
#  (j) POSIX: closing any descriptor of the file releases the process's
#      locks on it, also one other than the descriptor that took them (a
#      FLUSH through another open than the lock's).
#  (k) a deadlock across mounts: two processes, each holding a byte the
#      other waits for with F_SETLKW: one of them gets EDEADLK (the server
#      queues waiters and follows who waits for whom), the other then gets
#      its lock; neither hangs.
# And the daemon asked the kernel for both kinds of locks at INIT (-d says
# so).
# Events are lines in a local log ($LOCAL/events, see lock_helper.c); the
# test waits for them, never for time.
source "$(dirname "$0")/lib.sh"
need flock
: "${LOCK_HELPER:?set LOCK_HELPER to the lock_helper program}"
start_server
mount_fs -d -o attr_timeout=30,entry_timeout=30
grep -q 'locks through the server: fcntl yes, flock yes' "$WORK/fuse.log" ||
  fail "INIT did not ask the kernel for POSIX and flock locks"
mount_fs2 -o attr_timeout=30,entry_timeout=30
EV=$LOCAL/events
FIFO=$LOCAL/go
mkfifo "$FIFO"
: >"$EV"
F1=$MNT/lockfile
F2=$MNT2/lockfile
printf 'AAAA' >"$F1"

LH=$LOCK_HELPER
# Helpers started in the background (their PIDs) are killed if the test
# fails while they wait, and whatever still waits on the FIFO (flock's
# command) is let go: lib.sh's cleanup waits for every child.
HELPERS=()
_locks_cleanup() {
  local rc=$? p
  set +e
  for p in "${HELPERS[@]}"; do
    kill -KILL "$p" 2>/dev/null
  done
  # opening a FIFO read-write never blocks; it wakes the readers blocked in
  # open, which read end-of-file once it is closed again
  [ -p "$FIFO" ] && { exec 9<>"$FIFO"; exec 9>&-; }
  (exit "$rc")
  _cleanup
}
trap _locks_cleanup EXIT
# await PATTERN: wait (at most 30 s: a deadline for a hang) for a line of
# the event log matching the extended regex PATTERN.
await() {
  local i
  for i in $(seq 600); do
    grep -Eq "$1" "$EV" && return 0
    sleep 0.05
  done
  fail "no event matching '$1' after 30 s; events: $(tr '\n' '|' <"$EV")"
}
# expect NAME STEP RESULT: the line NAME's STEP logged must end in RESULT.
expect() {
  local got
  got=$(grep -E "^$1 $2 " "$EV" | grep -v ' start$' | tail -n1)
  [ "$got" = "$1 $2 $3" ] || fail "expected '$1 $2 $3', log has '${got:-nothing}'"
}
# release: let the helper waiting on the FIFO go on
release() { timeout 30 bash -c "echo go >'$FIFO'" || fail "no helper waits on the FIFO"; }
# until_flock_free FILE WHY: wait (at most 30 s) until flock -n gets FILE:
# a flock is dropped by its open's RELEASE, which the kernel sends in the
# background after the holder's close or death; fail with WHY at the deadline.
until_flock_free() {
  local i
  for i in $(seq 600); do
    flock -n "$1" true && return 0
    sleep 0.05
  done
  fail "$2"
}
# line_no PATTERN: the number of the first event line matching PATTERN.
line_no() { grep -En "$1" "$EV" | head -n1 | cut -d: -f1; }
# blocked PID PATTERN: wait until PID sleeps in a FUSE request (its lock
# request is at the daemon) or fail if PATTERN (its success) shows up first.
# A kernel that shows no wchan ("0": no symbols) gets 1 s instead.
blocked() {
  local i w
  for i in $(seq 600); do
    grep -Eq "$2" "$EV" && fail "got a lock another mount holds: $(tr '\n' '|' <"$EV")"
    w=$(cat "/proc/$1/wchan" 2>/dev/null || true)
    case $w in
      *request_wait_answer* | *fuse*) return 0 ;;
      0 | "") [ "$i" -lt 20 ] || return 0 ;;
    esac
    sleep 0.05
  done
  fail "pid $1 never blocked in a FUSE request (wchan $w)"
}

part_a() {
  local hp wp rp
  log "(a) F_SETLK, OFD locks and F_GETLK across mounts"
  "$LH" h1 "$EV" "$F1" lk:w:0:100 wait:"$FIFO" close &
  hp=$!
  HELPERS+=("$hp")
  await '^h1 lk:w:0:100 ok$'
  "$LH" t1 "$EV" "$F2" lk:w:50:100 ofd:w:0:10 lk:r:99:1 lk:w:100:100 get:w:0:10 get:r:90:20 \
    get:w:200:10 close
  expect t1 lk:w:50:100 EAGAIN
  expect t1 ofd:w:0:10 EAGAIN
  expect t1 lk:r:99:1 EAGAIN
  expect t1 lk:w:100:100 ok
  expect t1 get:w:0:10 "wrlck 0 100"
  expect t1 get:r:90:20 "wrlck 0 100"
  expect t1 get:w:200:10 unlck
  # t1's close released its lock ([100, 200)) on the server
  "$LH" t2 "$EV" "$F1" get:w:100:10 close
  expect t2 get:w:100:10 unlck
  release
  wait "$hp" || fail "holder h1 failed"
  expect h1 close ok
}

part_b() {
  local hp wp rp
  log "(b) F_SETLKW waits for the holder on the other mount"
  "$LH" h2 "$EV" "$F1" lk:w:0:0 wait:"$FIFO" say:releasing &
  hp=$!
  HELPERS+=("$hp")
  await '^h2 lk:w:0:0 ok$'
  "$LH" w2 "$EV" "$F2" lkw:w:10:10 say:got &
  wp=$!
  HELPERS+=("$wp")
  await '^w2 lkw:w:10:10 start$'
  blocked "$wp" '^w2 lkw:w:10:10 ok$'
  release # h2 logs "releasing" and exits: its close releases the lock
  wait "$hp" || fail "holder h2 failed"
  wait "$wp" || fail "waiter w2 failed"
  expect w2 lkw:w:10:10 ok
  [ "$(line_no '^w2 lkw:w:10:10 ok$')" -gt "$(line_no '^h2 say:releasing ok$')" ] ||
    fail "F_SETLKW returned before the holder released: $(tr '\n' '|' <"$EV")"
  # OFD F_SETLKW, interrupted by a signal while it waits
  "$LH" h3 "$EV" "$F1" ofd:w:0:0 wait:"$FIFO" &
  hp=$!
  HELPERS+=("$hp")
  await '^h3 ofd:w:0:0 ok$'
  "$LH" w3 "$EV" "$F2" ofdw:r:0:1 &
  wp=$!
  HELPERS+=("$wp")
  await '^w3 ofdw:r:0:1 start$'
  blocked "$wp" '^w3 ofdw:r:0:1 ok$'
  kill -USR1 "$wp"
  wait "$wp" || fail "waiter w3 failed"
  expect w3 ofdw:r:0:1 EINTR
  release
  wait "$hp" || fail "holder h3 failed"
}

part_c() {
  local hp
  log "(c) flock across mounts"
  # run by hand, flock(1) holds the lock while its command runs
  flock -x "$F1" -c "echo 'fl1 held ok' >>'$EV'; cat '$FIFO' >/dev/null" &
  hp=$!
  HELPERS+=("$hp")
  await '^fl1 held ok$'
  flock -n "$F2" true && fail "flock -n on mount 2 got the lock flock -x holds on mount 1"
  flock -n -s "$F2" true && fail "flock -n -s on mount 2 got a shared lock under flock -x"
  # flock is a whole-file lock for fcntl's locks of other owners
  "$LH" t3 "$EV" "$F2" lk:r:4096:1 close
  expect t3 lk:r:4096:1 EAGAIN
  release
  wait "$hp" || fail "flock -x on mount 1 failed"
  # flock(1) has exited, but its open's RELEASE (which drops a flock) is
  # sent by the kernel in the background: allow it to arrive
  until_flock_free "$F2" "flock -n on mount 2 still refused 30 s after mount 1's holder exited"
}

part_d() {
  local kp
  log "(d) SIGKILL releases the holder's locks"
  "$LH" k1 "$EV" "$F1" lk:w:0:0 hold &
  kp=$!
  HELPERS+=("$kp")
  await '^k1 hold start$'
  "$LH" t4 "$EV" "$F2" lk:w:0:1 close
  expect t4 lk:w:0:1 EAGAIN
  kill -KILL "$kp"
  wait "$kp" 2>/dev/null || true
  # the kernel's FLUSH at the killed process's close has unlocked it already
  "$LH" t5 "$EV" "$F2" lk:w:0:0 close
  expect t5 lk:w:0:0 ok
  "$LH" k2 "$EV" "$F1" fl:ex hold &
  kp=$!
  HELPERS+=("$kp")
  await '^k2 hold start$'
  flock -n "$F2" true && fail "flock -n on mount 2 got the lock a live holder has on mount 1"
  kill -KILL "$kp"
  wait "$kp" 2>/dev/null || true
  until_flock_free "$F2" "a flock of a killed holder was still held 30 s later"
}

part_e() {
  local hp wp rp
  log "(e) shared locks coexist across mounts"
  "$LH" s1 "$EV" "$F1" lk:r:0:0 wait:"$FIFO" &
  hp=$!
  HELPERS+=("$hp")
  await '^s1 lk:r:0:0 ok$'
  "$LH" s2 "$EV" "$F2" lk:r:0:0 get:w:0:0 close
  expect s2 lk:r:0:0 ok
  expect s2 get:w:0:0 "rdlck 0 0"
  "$LH" s3 "$EV" "$F2" lk:w:10:1 close
  expect s3 lk:w:10:1 EAGAIN
  release
  wait "$hp" || fail "holder s1 failed"
  flock -s "$F1" -c "echo 'fs1 held ok' >>'$EV'; cat '$FIFO' >/dev/null" &
  hp=$!
  HELPERS+=("$hp")
  await '^fs1 held ok$'
  flock -n -s "$F2" true || fail "flock -s on mount 2 refused beside flock -s on mount 1"
  flock -n -x "$F2" true && fail "flock -x on mount 2 granted beside flock -s on mount 1"
  release
  wait "$hp" || fail "flock -s on mount 1 failed"
}

part_f() {
  local hp wp rp
  log "(f) a lock drops the cached pages"
  printf 'AAAA' >"$F1"
  # r1 opens and reads the file on mount 2 (its pages are cached), then,
  # still open, locks it after mount 1 rewrote it (same size) under a lock
  "$LH" r1 "$EV" "$F2" rd:4 wait:"$FIFO" lk:r:0:0 rd:4 close &
  rp=$!
  HELPERS+=("$rp")
  await '^r1 rd:4 AAAA$'
  "$LH" w4 "$EV" "$F1" lkw:w:0:0 wr:BBBB lk:u:0:0 close
  expect w4 wr:BBBB ok
  release
  wait "$rp" || fail "reader r1 failed"
  expect r1 lk:r:0:0 ok
  expect r1 rd:4 BBBB
}

part_g() {
  local hp wp
  log "(g) flock conversions from shared to exclusive on both mounts"
  "$LH" c1 "$EV" "$F1" fl:sh wait:"$FIFO" fl:ex close &
  hp=$!
  HELPERS+=("$hp")
  await '^c1 fl:sh ok$'
  "$LH" c2 "$EV" "$F2" fl:sh fl:ex close &
  wp=$!
  HELPERS+=("$wp")
  await '^c2 fl:sh ok$'
  blocked "$wp" '^c2 fl:ex ok$'
  release # c1 converts too; one of the two gets it, then the other
  await '^c[12] fl:ex ok$'
  wait "$hp" || fail "c1 failed"
  wait "$wp" || fail "c2 failed"
  expect c1 fl:ex ok
  expect c2 fl:ex ok
}

part_h() {
  local hp n pids=() p
  log "(h) the ninth waiting F_SETLKW on one mount gets ENOLCK"
  "$LH" h4 "$EV" "$F1" lk:w:0:0 wait:"$FIFO" &
  hp=$!
  HELPERS+=("$hp")
  await '^h4 lk:w:0:0 ok$'
  for n in 1 2 3 4 5 6 7 8; do
    "$LH" q$n "$EV" "$F2" lkw:w:0:1 close &
    pids+=($!)
    HELPERS+=($!)
    await "^q$n lkw:w:0:1 start$"
    blocked "${pids[-1]}" "^q$n lkw:w:0:1 ok$"
  done
  "$LH" q9 "$EV" "$F2" lkw:w:0:1 close &
  pids+=($!)
  HELPERS+=($!)
  await '^q9 lkw:w:0:1 [A-Z]+$' # not "start": an answer
  expect q9 lkw:w:0:1 ENOLCK
  # the daemon still serves mount 2 (a new file: CREATE, WRITE, FLUSH)
  echo probe >"$MNT2/probe" || fail "mount 2 did not write a file while 8 locks waited"
  [ "$(cat "$EXPORT/probe")" = probe ] || fail "the probe file did not reach the server"
  release
  wait "$hp" || fail "holder h4 failed"
  for p in "${pids[@]}"; do
    wait "$p" || fail "a waiter failed"
  done
  expect q9 close ok
  for n in 1 2 3 4 5 6 7 8; do
    expect q$n lkw:w:0:1 ok
  done
}

part_i() {
  local hp
  log "(i) with writeback_cache, an unlock writes the cached data back first"
  unmount_fs2
  unmount_fs
  mount_fs -o writeback_cache,attr_timeout=30,entry_timeout=30
  mount_fs2 -o writeback_cache,attr_timeout=30,entry_timeout=30
  printf 'AAAA' >"$F1"
  # wb1 keeps the file open after the unlock: no close to flush at
  "$LH" wb1 "$EV" "$F1" lkw:w:0:0 wr:CCCC lk:u:0:0 wait:"$FIFO" close &
  hp=$!
  HELPERS+=("$hp")
  await '^wb1 wait:.* start$'
  [ "$(cat "$EXPORT/lockfile")" = CCCC ] ||
    fail "after the unlock the server has '$(cat "$EXPORT/lockfile")', not the locked write"
  "$LH" wb2 "$EV" "$F2" lkw:r:0:0 rd:4 close
  expect wb2 rd:4 CCCC
  release
  wait "$hp" || fail "wb1 failed"
}

part_j() {
  local hp
  log "(j) closing another descriptor of the file releases a POSIX lock"
  "$LH" p1 "$EV" "$F1" lk:w:0:0 open2 wait:"$FIFO" close2 wait:"$FIFO" close &
  hp=$!
  HELPERS+=("$hp")
  await '^p1 wait:.* start$'
  expect p1 open2 ok
  "$LH" t6 "$EV" "$F2" lk:w:0:1 close
  expect t6 lk:w:0:1 EAGAIN
  release
  await '^p1 close2 ok$'
  "$LH" t7 "$EV" "$F2" lk:w:0:0 close
  expect t7 lk:w:0:0 ok
  release
  wait "$hp" || fail "p1 failed"
}

# LOCKS_PARTS: the parts to run (all by default; one at a time shows that
# each trips on its own when locks are local to the mount)
part_k() {
  local ap bp
  log "(k) a deadlock between two mounts is refused (EDEADLK), not waited out"
  "$LH" kb "$EV" "$F2" lk:w:1:1 wait:"$FIFO" lkw:w:0:1 close &
  bp=$!
  HELPERS+=("$bp")
  await '^kb lk:w:1:1 ok$'
  "$LH" ka "$EV" "$F1" lk:w:0:1 lkw:w:1:1 close &
  ap=$!
  HELPERS+=("$ap")
  await '^ka lkw:w:1:1 start$'
  blocked "$ap" '^ka lkw:w:1:1 ok$'
  release # kb now waits for ka's byte while ka waits for kb's
  wait "$bp" || fail "kb failed"
  wait "$ap" || fail "ka failed"
  # which of the two closes the cycle depends on which LOCK reached the
  # server's queue first: exactly one is refused, the other gets its lock
  local a b
  a=$(grep -E '^ka lkw:w:1:1 ' "$EV" | grep -v ' start$' | cut -d' ' -f3)
  b=$(grep -E '^kb lkw:w:0:1 ' "$EV" | grep -v ' start$' | cut -d' ' -f3)
  [ "$a $b" = "ok EDEADLK" ] || [ "$a $b" = "EDEADLK ok" ] ||
    fail "expected one EDEADLK and one ok, got ka=$a kb=$b"
}

for p in ${LOCKS_PARTS:-a b c d e f g h i j k}; do
  "part_$p"
done
pass
