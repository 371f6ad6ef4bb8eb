#!/usr/bin/env bash
# kill.sh — the server dies (SIGKILL) in the middle of a transfer: the client
# must exit non-zero with one error line, not hang (timeout(1) enforces
# that); and a new server on the same export and state directory serves the
# same files.
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
  timeout -k 5 "$limit" "$DAFS" "$@" >/dev/null 2>"$WORK/$what.err" &
  client=$!
  track_pid "$client"
  sleep 0.5
  kill -0 "$client" 2>/dev/null ||
    fail "$what: the transfer ended within 0.5 s; cannot kill the server mid-transfer: $(cat "$WORK/$what.err")"
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
# the same pid.)
if [ "${FI_PROVIDER:-}" = shm ]; then
  start_server
  before=$(ls /dev/shm | grep '^dafs_shm_c.*\.lock$' | sort || true)
  "$DAFS" cat "$URL/huge" >/dev/null 2>&1 &
  client=$!
  track_pid "$client"
  sleep 0.5
  mine=$(comm -13 <(echo "$before") <(ls /dev/shm | grep '^dafs_shm_c.*\.lock$' | sort) | head -n1)
  [ -n "$mine" ] || fail "shm client: no dafs_shm_c* region claimed"
  kill -KILL "$client"
  wait "$client" 2>/dev/null || true
  [ -e "/dev/shm/${mine%.lock}" ] || fail "shm client: region ${mine%.lock} missing before the sweep"
  dafs cat "$URL/small" >/dev/null || fail "a new client after a killed one failed"
  [ ! -e "/dev/shm/${mine%.lock}" ] && [ ! -e "/dev/shm/$mine" ] ||
    fail "shm client: the killed client's region ${mine%.lock} was not reclaimed"
  log "shm: killed client's region ${mine%.lock} reclaimed by the next client"
  stop_server
fi

# A server started again after SIGKILL, same export and state, works.
start_server
out=$(dafs cat "$URL/small") || fail "restarted server does not serve the export"
[ "$out" = "still here" ] || fail "restarted server returned '$out'"
stop_server
pass
