#!/usr/bin/env bash
# roundtrip.sh — put then get files of sizes around the interesting
# boundaries (empty, one byte, a page either side, not a multiple of anything,
# large enough to be split into several direct transfers), each verified by
# sha256 on the server's disk and after the trip back.
. "$(dirname "$0")/lib.sh"
start_server

for size in 0 1 4095 4096 4097 $((1048576 + 3)) $((64 << 20)); do
  roundtrip "file-$size" "$size"
  log "round trip of $size bytes ok"
done

# Overwriting a longer file with a shorter one leaves exactly the new data.
make_file "$LOCAL/short" 1000
dafs put "$LOCAL/short" "$URL/file-$((1048576 + 3))" || fail "overwriting put failed"
[ "$(sha "$EXPORT/file-$((1048576 + 3))")" = "$(sha "$LOCAL/short")" ] || fail "overwrite left stale data"

stop_server
pass
