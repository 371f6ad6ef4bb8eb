#!/usr/bin/env bash
# big.sh — one 1 GiB file put and got back bit-exact (labelled "slow").
. "$(dirname "$0")/lib.sh"
start_server
t0=$SECONDS
make_file "$LOCAL/big" $((1 << 30))
want=$(sha "$LOCAL/big")
t1=$SECONDS
dafs put "$LOCAL/big" "$URL/big" || fail "put of 1 GiB failed"
t2=$SECONDS
[ "$(sha "$EXPORT/big")" = "$want" ] || fail "server copy of the 1 GiB file differs"
rm -f "$LOCAL/big" # keep at most two copies on disk
t3=$SECONDS
dafs get "$URL/big" "$LOCAL/big.back" || fail "get of 1 GiB failed"
t4=$SECONDS
cmp -s "$LOCAL/big.back" "$EXPORT/big" || fail "1 GiB file got back differs"
[ "$(sha "$LOCAL/big.back")" = "$want" ] || fail "1 GiB file got back has the wrong checksum"
log "generate $((t1 - t0))s, put $((t2 - t1))s, get $((t4 - t3))s"
stop_server
pass
