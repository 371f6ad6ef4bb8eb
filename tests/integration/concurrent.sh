#!/usr/bin/env bash
# concurrent.sh — eight client processes at once, each putting and getting
# its own file (different sizes, some inline-sized, most split into direct
# transfers), every copy verified on the server's disk and on the way back.
. "$(dirname "$0")/lib.sh"
start_server

clients=8
pids=()
for i in $(seq 1 "$clients"); do
  size=$(((i * 3 << 20) + i * 4097))
  [ "$i" -eq 1 ] && size=700 # one small, inline-sized transfer among the big ones
  make_file "$LOCAL/c$i" "$size"
  (
    dafs put "$LOCAL/c$i" "$URL/c$i" || { echo "client $i: put failed" >&2; exit 1; }
    dafs get "$URL/c$i" "$LOCAL/c$i.back" || { echo "client $i: get failed" >&2; exit 1; }
    # a second round on the same session-less CLI, to overlap with the others' puts
    dafs cat "$URL/c$i" >"$LOCAL/c$i.cat" || { echo "client $i: cat failed" >&2; exit 1; }
  ) &
  pids+=($!)
  track_pid "$!"
done

failures=0
for i in $(seq 1 "$clients"); do
  wait "${pids[$((i - 1))]}" || failures=$((failures + 1))
done
[ "$failures" -eq 0 ] || fail "$failures of $clients concurrent clients failed"

for i in $(seq 1 "$clients"); do
  want=$(sha "$LOCAL/c$i")
  [ "$(sha "$EXPORT/c$i")" = "$want" ] || fail "client $i: server copy differs"
  [ "$(sha "$LOCAL/c$i.back")" = "$want" ] || fail "client $i: get returned different data"
  [ "$(sha "$LOCAL/c$i.cat")" = "$want" ] || fail "client $i: cat returned different data"
done
log "$clients concurrent clients verified"
stop_server
pass
