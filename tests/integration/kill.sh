#!/usr/bin/env bash
# kill.sh — the server dies (SIGKILL) in the middle of a transfer: the client
# must exit non-zero with one error line, not hang (timeout(1) enforces
# that); and a new server on the same export and state directory serves the
# same files.
. "$(dirname "$0")/lib.sh"
limit=90 # seconds; the library's request timeout is 30 s
start_server

# A sparse 32 GiB file: reading it costs no disk, and takes far longer than
# the moment we wait before killing the server.
truncate -s 32G "$EXPORT/huge"
printf 'still here\n' >"$EXPORT/small"

# Reading: the client streams the file to /dev/null while the server dies.
timeout -k 5 "$limit" "$DAFS" cat "$URL/huge" >/dev/null 2>"$WORK/read.err" &
client=$!
track_pid "$client"
sleep 0.5
kill -0 "$client" 2>/dev/null || fail "the 32 GiB read finished (or failed) within 0.5 s; cannot test a kill mid-transfer"
t0=$SECONDS
kill_server
rc=0
wait "$client" || rc=$?
log "read: client exited $rc $((SECONDS - t0)) s after the kill: $(cat "$WORK/read.err")"
[ "$rc" -ne 0 ] || fail "client reading from a killed server exited 0"
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "client reading from a killed server hung until timeout(1) killed it"
[ "$(wc -l <"$WORK/read.err")" -eq 1 ] && grep -q '^dafs: ' "$WORK/read.err" ||
  fail "client reading from a killed server did not print one 'dafs: ' line: $(cat "$WORK/read.err")"

# Writing: put a large local file while the server dies.
start_server
truncate -s 8G "$LOCAL/huge-local"
timeout -k 5 "$limit" "$DAFS" put "$LOCAL/huge-local" "$URL/upload" 2>"$WORK/write.err" &
client=$!
track_pid "$client"
sleep 0.5
kill -0 "$client" 2>/dev/null || fail "the 8 GiB write finished (or failed) within 0.5 s; cannot test a kill mid-transfer"
t0=$SECONDS
kill_server
rc=0
wait "$client" || rc=$?
log "write: client exited $rc $((SECONDS - t0)) s after the kill: $(cat "$WORK/write.err")"
rm -f "$EXPORT/upload" "$LOCAL/huge-local"
[ "$rc" -ne 0 ] || fail "client writing to a killed server exited 0"
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "client writing to a killed server hung until timeout(1) killed it"
[ "$(wc -l <"$WORK/write.err")" -eq 1 ] && grep -q '^dafs: ' "$WORK/write.err" ||
  fail "client writing to a killed server did not print one 'dafs: ' line: $(cat "$WORK/write.err")"

# A server started again after SIGKILL, same export and state, works.
start_server
out=$(dafs cat "$URL/small") || fail "restarted server does not serve the export"
[ "$out" = "still here" ] || fail "restarted server returned '$out'"
stop_server
pass
