# lib.sh — shared helpers for dafs's end-to-end tests (sourced, not run).
#
# Each test script sources this file, calls start_server, drives the real
# `dafs` CLI against it, and calls pass at the end.  CTest provides:
#   DAFS_BIN      directory holding dafsd and dafs
#   FI_PROVIDER   the libfabric provider under test ("tcp;ofi_rxm" or "shm")
#   FI_TCP_IFACE  lo, so TCP traffic stays on loopback
# Every process a test starts is stopped by PID from the EXIT trap, and the
# scratch directory is removed, whether the test passes or fails.
set -euo pipefail

: "${DAFS_BIN:?set DAFS_BIN to the directory holding dafsd and dafs}"
export FI_TCP_IFACE=${FI_TCP_IFACE:-lo}
DAFSD=$DAFS_BIN/dafsd
DAFS=$DAFS_BIN/dafs

TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dafs-it-$TEST_NAME.XXXXXX")
EXPORT=$WORK/export # what the server exports
LOCAL=$WORK/local   # the client's local files
mkdir -p "$EXPORT" "$LOCAL"

SERVER_PID=
PORT=
URL=
_extra_pids=()

log() { printf '[%s] %s\n' "$TEST_NAME" "$*"; }

fail() {
  printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
  exit 1
}

pass() {
  log "PASS"
  exit 0
}

# Remember a background process so the EXIT trap stops it.
track_pid() { _extra_pids+=("$1"); }

_cleanup() {
  local rc=$?
  local pid
  for pid in "${_extra_pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "$SERVER_PID" ]; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -s "$WORK/dafsd.log" ]; then
    echo "---- dafsd log (last 30 lines) ----" >&2
    tail -n 30 "$WORK/dafsd.log" >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap _cleanup EXIT

# start_server [extra dafsd args...]: start dafsd on 127.0.0.1, a free port,
# exporting $EXPORT; wait (up to 60 s) until it is serving; set PORT and URL.
# The tests run as root on both ends and check data paths, not permissions
# (tests/server and tests/client cover those), so root is not squashed.
start_server() {
  local ready=$WORK/ready i
  rm -f "$ready"
  mkdir -p -m 700 "$WORK/state" # dafsd refuses a state dir others can read
  "$DAFSD" --export "$EXPORT" --listen 127.0.0.1:0 --state-dir "$WORK/state" \
    --ready-file "$ready" --no-root-squash "$@" >>"$WORK/dafsd.log" 2>&1 &
  SERVER_PID=$!
  for i in $(seq 600); do
    [ -s "$ready" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { wait "$SERVER_PID" || true; SERVER_PID=; fail "dafsd exited before it was ready"; }
    sleep 0.1
  done
  [ -s "$ready" ] || fail "dafsd not ready after 60 s"
  PORT=$(head -n1 "$ready")
  [[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -gt 0 ] || fail "ready file holds '$PORT', not a port"
  URL=dafs://127.0.0.1:$PORT
  log "dafsd pid $SERVER_PID serving $URL (provider ${FI_PROVIDER:-default})"
}

# stop_server: SIGTERM, which must make dafsd exit 0 within 10 s.
stop_server() {
  local pid=$SERVER_PID i rc=0
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || fail "dafsd (pid $pid) was not running at stop"
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "dafsd (pid $pid) still running 10 s after SIGTERM"
  wait "$pid" || rc=$?
  SERVER_PID=
  [ "$rc" -eq 0 ] || fail "dafsd exited with status $rc after SIGTERM, expected 0"
}

# kill_server: SIGKILL, no questions asked.
kill_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# dafs ARGS...: the CLI under a timeout (DAFS_CLI_TIMEOUT, default 120 s), so a
# hang fails the test instead of stalling CTest.
dafs() { timeout -k 5 "${DAFS_CLI_TIMEOUT:-120}" "$DAFS" "$@"; }

sha() { sha256sum <"$1" | cut -d' ' -f1; }

# wait_until SECONDS WHAT CMD...: run CMD every 50 ms until it succeeds; fail
# the test ("WHAT: not within SECONDS s") if it has not after SECONDS.  Tests
# wait for the event they check this way, never for a fixed time.
wait_until() {
  local limit=$1 what=$2 t0=$SECONDS
  shift 2
  until "$@"; do
    [ $((SECONDS - t0)) -lt "$limit" ] || fail "$what: not within $limit s"
    sleep 0.05
  done
}

# make_file PATH SIZE: SIZE bytes of random data (AES-CTR keystream from
# openssl for big files, which is several times faster than /dev/urandom).
make_file() {
  if [ "$2" -ge $((64 << 20)) ] && command -v openssl >/dev/null 2>&1; then
    openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$RANDOM$RANDOM$$" </dev/zero 2>/dev/null |
      head -c "$2" >"$1" || true # head closing the pipe makes openssl fail
    [ "$(stat -c %s "$1")" -eq "$2" ] || fail "could not generate $2 bytes into $1"
  else
    head -c "$2" /dev/urandom >"$1"
  fi
}

# roundtrip NAME SIZE: put a random file of SIZE bytes, check the copy on the
# server's disk, get it back, check that too.
roundtrip() {
  local name=$1 size=$2 src=$LOCAL/$1 back=$LOCAL/$1.back
  make_file "$src" "$size"
  dafs put "$src" "$URL/$name" || fail "put $name ($size bytes) failed"
  [ -f "$EXPORT/$name" ] || fail "put $name exited 0 but left no file on the server"
  [ "$(stat -c %s "$EXPORT/$name")" -eq "$size" ] || fail "$name: server copy has $(stat -c %s "$EXPORT/$name") bytes, expected $size"
  [ "$(sha "$EXPORT/$name")" = "$(sha "$src")" ] || fail "$name: server copy differs from what was put"
  dafs get "$URL/$name" "$back" || fail "get $name ($size bytes) failed"
  [ -f "$back" ] || fail "get $name exited 0 but wrote no local file"
  [ "$(stat -c %s "$back")" -eq "$size" ] || fail "$name: got $(stat -c %s "$back") bytes, expected $size"
  [ "$(sha "$back")" = "$(sha "$src")" ] || fail "$name: data got back differs from what was put"
  rm -f "$back"
}

# expect_error OUTFILE CMD...: CMD must fail (non-zero, not killed by the
# timeout) and print exactly one line on stderr starting with "dafs: ".
# The stderr line is left in $OUTFILE.err, stdout in $OUTFILE.out.
expect_error() {
  local out=$1 rc=0
  shift
  "$@" >"$out.out" 2>"$out.err" || rc=$?
  [ "$rc" -ne 0 ] || fail "'$*' succeeded, expected failure"
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "'$*' timed out (hung) instead of failing"
  [ "$(wc -l <"$out.err")" -eq 1 ] || fail "'$*' printed $(wc -l <"$out.err") lines on stderr, expected 1: $(cat "$out.err")"
  grep -q '^dafs: ' "$out.err" || fail "'$*' stderr does not start with 'dafs: ': $(cat "$out.err")"
  log "as expected: $(cat "$out.err")"
}

[ -x "$DAFSD" ] || fail "no dafsd at $DAFSD (not built?)"
[ -x "$DAFS" ] || fail "no dafs CLI at $DAFS (not built?)"
