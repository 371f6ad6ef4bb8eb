#!/usr/bin/env bash
# kill.sh — the server dies (SIGKILL) in the middle of a transfer: the client
# must exit non-zero with one error line, not hang (timeout(1) enforces
# that); and a new server on the same export and state directory serves the
# same files.  With shm, also: a SIGKILLed client's region is reclaimed.

# shm: every dafs shm endpoint that opens reclaims the stale regions it finds,
# so with another dafs (another copy of this suite) on the machine, the region
# this test leaves behind on purpose could be reclaimed by someone else before
# the test looks.  As root, run the whole test in a private mount namespace
# with its own tmpfs on /dev/shm, which only this test's processes see.
if [ "${FI_PROVIDER:-}" = shm ] && [ -z "${DAFS_TEST_PRIVATE_SHM:-}" ] &&
   [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1; then
  export DAFS_TEST_PRIVATE_SHM=no
  exec unshare --mount --propagation private -- sh -c '
    mount -t tmpfs -o mode=1777,size=256m dafs-test-shm /dev/shm && DAFS_TEST_PRIVATE_SHM=yes
    exec bash "$@"' sh "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
limit=90 # seconds; the library's request timeout is 30 s

# kill_mid_transfer read|write: start the server, start a dafs transfer far
# too long to finish in half a second, SIGKILL the server, and check how the
# client ended.
kill_mid_transfer() {
  local what=$1 rc=0 client t0
  start_server
  case $what in
    read) set -- cat "$URL/huge" ;;
    write) set -- put "$LOCAL/huge-local" "$URL/upload" ;;
  esac
  rm -f "$WORK/first"
  # the first byte read lands in $WORK/first, the rest is discarded
  timeout -k 5 "$limit" "$DAFS" "$@" 2>"$WORK/$what.err" \
    > >(head -c 1 >"$WORK/first"; exec cat >/dev/null) &
  client=$!
  track_pid "$client"
  # Wait until data is moving: the client printed a byte (read), or the
  # server has data in a new file (write; whatever the file is called).
  transfer_under_way() {
    case $what in
      read) [ -s "$WORK/first" ] ;;
      write) [ -n "$(find "$EXPORT" -type f ! -name huge ! -name small -size +0c -print -quit)" ] ;;
    esac && return 0
    kill -0 "$client" 2>/dev/null ||
      fail "$what: the transfer ended before data moved; cannot kill the server mid-transfer: $(cat "$WORK/$what.err")"
    return 1
  }
  wait_until 30 "$what: data moving" transfer_under_way
  t0=$SECONDS
  kill_server
  wait "$client" || rc=$?
  log "$what: client exited $rc $((SECONDS - t0)) s after the kill: $(cat "$WORK/$what.err")"
  [ "$rc" -ne 0 ] || fail "$what: client of a killed server exited 0"
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "$what: client of a killed server hung until timeout(1) killed it"
  [ "$(wc -l <"$WORK/$what.err")" -eq 1 ] && grep -q '^dafs: ' "$WORK/$what.err" ||
    fail "$what: client of a killed server did not print one 'dafs: ' line: $(cat "$WORK/$what.err")"
}

# Sparse files: reading or sending them costs no disk on this side.
truncate -s 32G "$EXPORT/huge"
truncate -s 8G "$LOCAL/huge-local"
printf 'still here\n' >"$EXPORT/small"

kill_mid_transfer read
kill_mid_transfer write
rm -f "$EXPORT/upload" "$LOCAL/huge-local"

# shm: a SIGKILLed client leaves its region (16 MiB of /dev/shm) behind; the
# next dafs process to open an endpoint removes it.  (Regions once took the
# client's pid as their name, so a stale one broke the next process that got
# the same pid.)  The region is the one this client claimed, found through
# the "dafs_shm_c<hex>.lock" file it holds open (/proc/PID/fd), not by
# listing /dev/shm.
if [ "${FI_PROVIDER:-}" = shm ]; then
  start_server
  rm -f "$WORK/first"
  "$DAFS" cat "$URL/huge" 2>"$WORK/shm.err" > >(head -c 1 >"$WORK/first"; exec cat >/dev/null) &
  client=$!
  track_pid "$client"
  shm_client_reading() {
    [ -s "$WORK/first" ] && return 0
    kill -0 "$client" 2>/dev/null || fail "shm client ended early: $(cat "$WORK/shm.err")"
    return 1
  }
  wait_until 30 "shm client: data moving" shm_client_reading
  lock=
  for fd in /proc/"$client"/fd/*; do
    target=$(readlink "$fd" 2>/dev/null) || continue
    case $target in /dev/shm/dafs_shm_c*.lock) lock=${target#/dev/shm/}; break ;; esac
  done
  [ -n "$lock" ] || fail "shm client (pid $client) holds no dafs_shm_c*.lock: $(ls -l /proc/"$client"/fd/)"
  region=${lock%.lock}
  [ -e "/dev/shm/$region" ] || fail "shm client: its region $region does not exist while it runs"
  kill -KILL "$client"
  wait "$client" 2>/dev/null || true
  if [ -e "/dev/shm/$region" ]; then
    dafs cat "$URL/small" >/dev/null || fail "a new client after a killed one failed"
    [ ! -e "/dev/shm/$region" ] && [ ! -e "/dev/shm/$lock" ] ||
      fail "shm client: the killed client's region $region was not reclaimed"
    log "shm: killed client's region $region reclaimed by the next client"
  elif [ "${DAFS_TEST_PRIVATE_SHM:-}" = yes ]; then
    fail "shm client: region $region gone before any other client ran (private /dev/shm)"
  else
    # shared /dev/shm: another dafs process on the machine was first
    [ ! -e "/dev/shm/$lock" ] || fail "shm client: region $region gone but its lock file left"
    dafs cat "$URL/small" >/dev/null || fail "a new client after a killed one failed"
    log "shm: killed client's region $region reclaimed (by another dafs process on this machine)"
  fi
  stop_server
fi

# A server started again after SIGKILL, same export and state, works.
start_server
out=$(dafs cat "$URL/small") || fail "restarted server does not serve the export"
[ "$out" = "still here" ] || fail "restarted server returned '$out'"
stop_server
pass
