#!/usr/bin/env bash
# bigdir.sh — a directory of 100,000 entries is listed completely, every name
# exactly once (READDIR cookies across many replies).
. "$(dirname "$0")/lib.sh"
count=100000
mkdir "$EXPORT/many"
(
  cd "$EXPORT/many" || exit 1
  for ((i = 0; i < count; i++)); do
    : >"entry-$i"
  done
)
start_server
t0=$SECONDS
dafs ls "$URL/many" >"$WORK/listing" || fail "ls of a 100,000-entry directory failed"
log "listed in $((SECONDS - t0)) s"
n=$(wc -l <"$WORK/listing")
[ "$n" -eq "$count" ] || fail "ls printed $n lines, expected $count"
sort "$WORK/listing" >"$WORK/got"
find "$EXPORT/many" -mindepth 1 -printf '%f\n' | sort >"$WORK/want"
cmp -s "$WORK/got" "$WORK/want" || fail "listing differs from the directory: $(diff "$WORK/want" "$WORK/got" | head -5)"
stop_server
pass
