#!/usr/bin/env bash
# enospc.sh — a put that runs out of space on the server fails with one
# "No space left on device" line, leaves no partial file and no temporary
# file behind, and leaves an existing file of that name as it was.  The
# export is a 1 MiB tmpfs, so this needs root (skipped otherwise, status 77).
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" -ne 0 ]; then
  log "SKIP: mounting a 1 MiB tmpfs for the export needs root"
  exit 77
fi
if ! mount -t tmpfs -o size=1m,mode=0755 dafs-enospc "$EXPORT" 2>"$WORK/mount.err"; then
  log "SKIP: cannot mount a tmpfs: $(cat "$WORK/mount.err")"
  exit 77
fi
# Unmount (lazily: the server may still hold it) before lib.sh cleans up.
trap 'rc=$?; umount -l "$EXPORT" 2>/dev/null || true; (exit $rc); _cleanup' EXIT
start_server
e=$WORK/e

make_file "$LOCAL/big" $((4 << 20))
expect_error "$e" dafs put "$LOCAL/big" "$URL/big"
grep -q "^dafs: put $URL/big: No space left on device" "$e.err" || fail "put onto a full file system said: $(cat "$e.err")"
[ ! -e "$EXPORT/big" ] || fail "a put that ran out of space left a partial file ($(stat -c %s "$EXPORT/big") bytes)"
[ -z "$(ls -A "$EXPORT")" ] || fail "a put that ran out of space left files behind: $(ls -A "$EXPORT")"

# Over an existing file: the old contents survive a failed put.
printf 'old contents\n' >"$LOCAL/old"
dafs put "$LOCAL/old" "$URL/kept" || fail "a small put onto the tmpfs failed"
expect_error "$e" dafs put "$LOCAL/big" "$URL/kept"
[ "$(cat "$EXPORT/kept")" = "old contents" ] || fail "a put that ran out of space changed the existing file"
[ "$(ls -A "$EXPORT")" = "kept" ] || fail "a put that ran out of space left files behind: $(ls -A "$EXPORT")"

# The space is back: a file that fits goes through.
make_file "$LOCAL/fits" $((256 << 10))
dafs put "$LOCAL/fits" "$URL/fits" || fail "put of a file that fits failed after ENOSPC"
[ "$(sha "$EXPORT/fits")" = "$(sha "$LOCAL/fits")" ] || fail "the file that fits arrived damaged"
stop_server
pass
