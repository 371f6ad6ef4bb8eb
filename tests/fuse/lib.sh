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
  [ -z "${MOUNTED_PID:-}" ] || kill -KILL "$MOUNTED_PID" 2>/dev/null || true # a mount that failed
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

# _mount DIR LOG [-o opts]: dafs-fuse in the foreground (background job) on
# DIR, its output appended to LOG; sets MOUNTED_PID.  Waits up to 60 s for
# the mount (a deadline for a hang, not a speed limit).
_mount() {
  local dir=$1 log=$2 i
  shift 2
  "$DAFS_FUSE" "$URL" "$dir" -f -o allow_other "$@" >>"$log" 2>&1 &
  MOUNTED_PID=$!
  for i in $(seq 600); do
    mountpoint -q "$dir" && break
    kill -0 "$MOUNTED_PID" 2>/dev/null || fail "dafs-fuse on $dir exited before mounting"
    sleep 0.1
  done
  mountpoint -q "$dir" || fail "$dir not mounted after 60 s"
  log "dafs-fuse pid $MOUNTED_PID mounted $URL on $dir"
}

# mount_fs [-o opts]: the mount on $MNT.
mount_fs() {
  _mount "$MNT" "$WORK/fuse.log" "$@"
  FUSE_PID=$MOUNTED_PID
  MOUNTED_PID=
}

# mount_fs2 [-o opts]: a second mount of the same server on $MNT2 (another
# client: its own session and kernel caches), for coherence tests.
mount_fs2() {
  _mount "$MNT2" "$WORK/fuse2.log" "$@"
  FUSE2_PID=$MOUNTED_PID
  MOUNTED_PID=
}

# _unmount DIR PID: unmount DIR; its dafs-fuse (PID) must then exit 0 within 10 s.
_unmount() {
  local dir=$1 pid=$2 i rc=0
  cd /
  umount "$dir" || fail "umount $dir failed"
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "dafs-fuse on $dir still running 10 s after umount"
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || fail "dafs-fuse on $dir exited $rc after umount"
}

unmount_fs() {
  _unmount "$MNT" "$FUSE_PID"
  FUSE_PID=
}

unmount_fs2() {
  _unmount "$MNT2" "$FUSE2_PID"
  FUSE2_PID=
}

need() { command -v "$1" >/dev/null 2>&1 || skip "$1 not installed (scripts/deps.sh)"; }
