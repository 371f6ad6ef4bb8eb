#!/usr/bin/env bash
# interrupt.sh — a transfer that does not finish leaves nothing that looks
# finished: SIGINT or SIGTERM in the middle of a get or a put, and a server
# killed in the middle of a get.  Each must end the client with one
# "dafs: ..." line (and 130 for SIGINT, 143 for SIGTERM), leave no file at
# the destination, and no temporary ".NAME.dafs-*" file on either side.
. "$(dirname "$0")/lib.sh"
limit=90 # seconds for a client to end after the event

# Sparse sources: reading them costs no disk.  Big enough that no provider
# finishes them before the signal, small enough that a client that ignored
# it would not fill the disk.
truncate -s 8G "$EXPORT/huge"
truncate -s 8G "$LOCAL/huge-local"

# wait_for_temp DIR NAME: wait until the transfer's temporary file
# DIR/.NAME.dafs-* exists and has grown between two looks (so data is
# flowing); fail if the client ends first or after 30 s.
wait_for_temp() {
  local dir=$1 name=$2 f size last=-1 i
  for i in $(seq 300); do
    kill -0 "$client" 2>/dev/null || fail "the client ended before its transfer was under way: $(cat "$WORK/client.err")"
    f=$(find "$dir" -maxdepth 1 -name ".$name.dafs-*" | head -n1)
    if [ -n "$f" ]; then
      size=$(stat -c %s "$f" 2>/dev/null || echo -1)
      if [ "$last" -gt 0 ] && [ "$size" -gt "$last" ]; then
        log "transfer under way: $f has $size bytes"
        return 0
      fi
      last=$size
    fi
    sleep 0.1
  done
  fail "no growing temporary file .$name.dafs-* in $dir after 30 s"
}

# wait_client: wait (up to $limit s) for the client to end; sets rc.
wait_client() {
  local i
  for i in $(seq $((limit * 10))); do
    kill -0 "$client" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$client" 2>/dev/null && fail "the client is still running $limit s later"
  rc=0
  wait "$client" || rc=$?
}

# no_leftovers DIR NAME: neither NAME nor a temporary file for it in DIR.
no_leftovers() {
  [ ! -e "$1/$2" ] || fail "$1/$2 exists after a transfer that did not finish ($(stat -c %s "$1/$2") bytes)"
  [ -z "$(find "$1" -maxdepth 1 -name ".$2.dafs-*")" ] || fail "temporary file left in $1: $(ls -a "$1")"
}

# one_line PATTERN: the client's stderr is exactly one line matching PATTERN.
one_line() {
  [ "$(wc -l <"$WORK/client.err")" -eq 1 ] || fail "expected one line on stderr, got: $(cat "$WORK/client.err")"
  grep -Eq "$1" "$WORK/client.err" || fail "stderr '$(cat "$WORK/client.err")' does not match '$1'"
  log "as expected: $(cat "$WORK/client.err")"
}

# signal_mid_transfer get|put SIGNAL STATUS WORD
signal_mid_transfer() {
  local what=$1 sig=$2 want=$3 word=$4
  case $what in
    get) "$DAFS" get "$URL/huge" "$LOCAL/got" 2>"$WORK/client.err" & ;;
    put) "$DAFS" put "$LOCAL/huge-local" "$URL/upload" 2>"$WORK/client.err" & ;;
  esac
  client=$!
  track_pid "$client"
  case $what in
    get) wait_for_temp "$LOCAL" got ;;
    put) wait_for_temp "$EXPORT" upload ;;
  esac
  kill -s "$sig" "$client"
  wait_client
  log "$what: SIG$sig -> exit $rc"
  [ "$rc" -eq "$want" ] || fail "$what: SIG$sig made the client exit $rc, expected $want: $(cat "$WORK/client.err")"
  case $what in
    get) one_line "^dafs: get $URL/huge: $word\$"; no_leftovers "$LOCAL" got ;;
    put) one_line "^dafs: put $URL/upload: $word\$"; no_leftovers "$EXPORT" upload ;;
  esac
}

start_server
signal_mid_transfer get INT 130 interrupted
signal_mid_transfer put INT 130 interrupted
signal_mid_transfer get TERM 143 terminated
signal_mid_transfer put TERM 143 terminated

# An existing destination is left as it was by an interrupted put.
printf 'old contents\n' >"$EXPORT/upload"
"$DAFS" put "$LOCAL/huge-local" "$URL/upload" 2>"$WORK/client.err" &
client=$!
track_pid "$client"
wait_for_temp "$EXPORT" upload
kill -INT "$client"
wait_client
[ "$rc" -eq 130 ] || fail "put over an existing file: SIGINT made the client exit $rc"
[ "$(cat "$EXPORT/upload")" = "old contents" ] || fail "an interrupted put changed the existing file"
rm -f "$EXPORT/upload"

# On a terminal (script(1) gives one): the progress line is ended before the
# message, so the message starts a line of its own.  dafs is the session
# leader there, which once made it exit 0.
if command -v script >/dev/null 2>&1; then
  truncate -s 16G "$EXPORT/huger"
  script -qfec "exec '$DAFS' get '$URL/huger' '$LOCAL/got'" /dev/null >"$WORK/tty.out" 2>&1 &
  script_pid=$!
  track_pid "$script_pid"
  client=
  for i in $(seq 300); do
    client=$(pgrep -P "$script_pid" -x dafs || true)
    [ -n "$client" ] && grep -q 'MB/s' "$WORK/tty.out" && break
    kill -0 "$script_pid" 2>/dev/null || fail "script(1) ended before a progress line: $(cat "$WORK/tty.out")"
    sleep 0.1
  done
  grep -q 'MB/s' "$WORK/tty.out" || fail "no progress line on the terminal after 30 s: $(cat "$WORK/tty.out")"
  track_pid "$client"
  kill -INT "$client"
  for i in $(seq $((limit * 10))); do
    kill -0 "$script_pid" 2>/dev/null || break
    sleep 0.1
  done
  rc=0
  wait "$script_pid" || rc=$?
  [ "$rc" -eq 130 ] || fail "on a terminal SIGINT made the client exit $rc, expected 130: $(cat "$WORK/tty.out")"
  tr -d '\r' <"$WORK/tty.out" | grep -qx "dafs: get $URL/huger: interrupted" ||
    fail "on a terminal the message does not start its own line: $(cat -v "$WORK/tty.out" | tail -c 300)"
  log "terminal: progress line ended, then: $(tail -n1 "$WORK/tty.out" | tr -d '\r')"
  no_leftovers "$LOCAL" got
  rm -f "$EXPORT/huger"
else
  log "no script(1): progress line on a terminal not checked"
fi

# The server dies in the middle of a get: an error line, and no partial file.
"$DAFS" get "$URL/huge" "$LOCAL/got" 2>"$WORK/client.err" &
client=$!
track_pid "$client"
wait_for_temp "$LOCAL" got
kill_server
wait_client
log "get: server killed -> exit $rc"
[ "$rc" -ne 0 ] || fail "a get whose server was killed exited 0"
one_line "^dafs: get $URL/huge: "
no_leftovers "$LOCAL" got
pass
