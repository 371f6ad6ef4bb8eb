#!/usr/bin/env bash
# readahead.sh — the mount's kernel read-ahead and close without FLUSH:
#  - by default the mount's backing device reads ahead 4096 KiB (the kernel's
#    128 KiB cost one round trip per 128 KiB of a sequential read);
#    -o read_ahead_kb=N sets N, 0 leaves the kernel's, a bad value is refused;
#  - a sequential read through it returns exactly the file's bytes;
#  - with -o local_locks, close() of a file opened through the mount sends no
#    FLUSH to the daemon (every write is on the server already), unless
#    -o writeback_cache; without it, close() sends FLUSH (the kernel releases
#    the closer's POSIX locks, which the server holds, with it).
source "$(dirname "$0")/lib.sh"

ra_of() { cat "/sys/class/bdi/$(mountpoint -d "$1")/read_ahead_kb"; }
flushes() { grep -c 'opcode: FLUSH' "$1" || true; }

start_server
head -c $((24 << 20)) /dev/urandom >"$EXPORT/big"
want=$(sha256sum <"$EXPORT/big")

mount_fs -d -o local_locks
got=$(ra_of "$MNT")
[ "$got" = 4096 ] || fail "default read_ahead_kb: expected 4096, got $got"
[ "$(sha256sum <"$MNT/big")" = "$want" ] || fail "sequential read through the mount differs"
before=$(flushes "$WORK/fuse.log")
for i in 1 2 3 4 5; do cat "$MNT/big" >/dev/null; done
echo data >"$MNT/small" && cat "$MNT/small" >/dev/null
after=$(flushes "$WORK/fuse.log")
[ "$after" = "$before" ] || fail "close sent FLUSH $((after - before)) times (expected none)"
unmount_fs

mount_fs -d
before=$(flushes "$WORK/fuse.log")
echo data >"$MNT/small1"
after=$(flushes "$WORK/fuse.log")
[ "$after" -gt "$before" ] || fail "without local_locks close must FLUSH (locks)"
unmount_fs

mount_fs -o read_ahead_kb=512
got=$(ra_of "$MNT")
[ "$got" = 512 ] || fail "read_ahead_kb=512: got $got"
unmount_fs

mount_fs -o read_ahead_kb=0
got=$(ra_of "$MNT")
[ "$got" -le 1024 ] || fail "read_ahead_kb=0 should leave the kernel's (128 KiB), got $got"
unmount_fs

mount_fs -d -o writeback_cache
before=$(flushes "$WORK/fuse.log")
echo data >"$MNT/small2"
after=$(flushes "$WORK/fuse.log")
[ "$after" -gt "$before" ] || fail "with writeback_cache close must FLUSH (dirty pages)"
unmount_fs

if "$DAFS_FUSE" "$URL" "$MNT" -f -o read_ahead_kb=lots >"$WORK/bad.log" 2>&1; then
  fail "read_ahead_kb=lots accepted"
fi
grep -q "bad read_ahead_kb" "$WORK/bad.log" || fail "no message for a bad read_ahead_kb: $(cat "$WORK/bad.log")"
pass
