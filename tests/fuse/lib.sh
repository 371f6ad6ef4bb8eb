# lib.sh — shared helpers for the dafs-fuse mount tests (sourced, not run).
#
# Each test sources this file, calls start_server and mount_fs, runs a real
# program (fio, stress-ng, sqlite3, tar, git, ...) on $MNT, and calls pass.
# CTest provides DAFS_BIN (dafsd, dafs-fuse), FI_PROVIDER and FI_TCP_IFACE=lo.
# Needs root (FUSE mount, allow_other, --no-root-squash); without root or
# /dev/fuse the test is skipped (exit 77).  The EXIT trap unmounts and stops
# every process by PID, whether the test passes or fails.
set -euo pipefail

: "${DAFS_BIN:?set DAFS_BIN to the directory holding dafsd and dafs-fuse}"
export FI_TCP_IFACE=${FI_TCP_IFACE:-lo}
DAFSD=$DAFS_BIN/dafsd
DAFS_FUSE=$DAFS_BIN/dafs-fuse

TEST_NAME=$(basename "$0" .sh)
log() { printf '[%s] %s\n' "$TEST_NAME" "$*"; }
fail() {
  printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
  exit 1
}
skip() {
  log "SKIP: $*"
  exit 77
}
pass() {
  log "PASS"
  exit 0
}

[ "$(id -u)" -eq 0 ] || skip "needs root"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -x "$DAFSD" ] || fail "no dafsd at $DAFSD"
[ -x "$DAFS_FUSE" ] || fail "no dafs-fuse at $DAFS_FUSE"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dafs-fuse-$TEST_NAME.XXXXXX")
chmod 755 "$WORK"
EXPORT=$WORK/export
MNT=$WORK/mnt
MNT2=$WORK/mnt2
LOCAL=$WORK/local
mkdir -p "$EXPORT" "$MNT" "$MNT2" "$LOCAL"
mkdir -m 700 "$WORK/state" # dafsd refuses a state dir others can read
SERVER_PID=
FUSE_PID=
FUSE2_PID=
URL=

_cleanup() {
  local rc=$?
  cd /
  local m
  for m in "$MNT" "$MNT2"; do
    if mountpoint -q "$m" 2>/dev/null; then
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    fi
  done
  [ -z "$FUSE_PID" ] || kill -KILL "$FUSE_PID" 2>/dev/null || true
  [ -z "$FUSE2_PID" ] || kill -KILL "$FUSE2_PID" 2>/dev/null || true
  [ -z "$SERVER_PID" ] || kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    for f in dafsd.log fuse.log fuse2.log; do
      [ -s "$WORK/$f" ] && { echo "---- $f (last 30 lines) ----" >&2; tail -n 30 "$WORK/$f" >&2; }
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap _cleanup EXIT

# start_server [extra dafsd args...]: dafsd on 127.0.0.1, free port; sets URL.
start_server() {
  local ready=$WORK/ready i port
  rm -f "$ready"
  "$DAFSD" --export "$EXPORT" --listen 127.0.0.1:0 --state-dir "$WORK/state" \
    --ready-file "$ready" --no-root-squash "$@" >>"$WORK/dafsd.log" 2>&1 &
  SERVER_PID=$!
  for i in $(seq 600); do
    [ -s "$ready" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "dafsd exited before it was ready"
    sleep 0.1
  done
  port=$(head -n1 "$ready" 2>/dev/null || true)
  [[ "$port" =~ ^[1-9][0-9]*$ ]] || fail "dafsd not ready after 60 s"
  URL=dafs://127.0.0.1:$port/
  log "dafsd pid $SERVER_PID at $URL (provider ${FI_PROVIDER:-default})"
}

# mount_fs [-o opts]: dafs-fuse in the foreground (background job) on $MNT;
# waits up to 60 s for the mount (a deadline for a hang, not a speed limit).
mount_fs() {
  local i
  "$DAFS_FUSE" "$URL" "$MNT" -f -o allow_other "$@" >>"$WORK/fuse.log" 2>&1 &
  FUSE_PID=$!
  for i in $(seq 600); do
    mountpoint -q "$MNT" && break
    kill -0 "$FUSE_PID" 2>/dev/null || fail "dafs-fuse exited before mounting"
    sleep 0.1
  done
  mountpoint -q "$MNT" || fail "$MNT not mounted after 60 s"
  log "dafs-fuse pid $FUSE_PID mounted $URL on $MNT"
}

# mount_fs2 [-o opts]: a second mount of the same server on $MNT2 (another
# client: its own session and kernel caches), for coherence tests.
mount_fs2() {
  local i
  "$DAFS_FUSE" "$URL" "$MNT2" -f -o allow_other "$@" >>"$WORK/fuse2.log" 2>&1 &
  FUSE2_PID=$!
  for i in $(seq 100); do
    mountpoint -q "$MNT2" && break
    kill -0 "$FUSE2_PID" 2>/dev/null || fail "second dafs-fuse exited before mounting"
    sleep 0.1
  done
  mountpoint -q "$MNT2" || fail "$MNT2 not mounted after 10 s"
  log "dafs-fuse pid $FUSE2_PID mounted $URL on $MNT2"
}

# unmount_fs: unmount; dafs-fuse must then exit 0 within 10 s.
unmount_fs() {
  local i rc=0
  cd /
  umount "$MNT" || fail "umount $MNT failed"
  for i in $(seq 100); do
    kill -0 "$FUSE_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$FUSE_PID" 2>/dev/null && fail "dafs-fuse still running 10 s after umount"
  wait "$FUSE_PID" || rc=$?
  FUSE_PID=
  [ "$rc" -eq 0 ] || fail "dafs-fuse exited $rc after umount"
}

# unmount_fs2: the same for the second mount.
unmount_fs2() {
  local i rc=0
  cd /
  umount "$MNT2" || fail "umount $MNT2 failed"
  for i in $(seq 100); do
    kill -0 "$FUSE2_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$FUSE2_PID" 2>/dev/null && fail "second dafs-fuse still running 10 s after umount"
  wait "$FUSE2_PID" || rc=$?
  FUSE2_PID=
  [ "$rc" -eq 0 ] || fail "second dafs-fuse exited $rc after umount"
}

need() { command -v "$1" >/dev/null 2>&1 || skip "$1 not installed (scripts/deps.sh)"; }
