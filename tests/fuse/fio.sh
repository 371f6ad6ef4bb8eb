#!/usr/bin/env bash
# fio.sh — random writes through the mount, then read back and verify every
# block's crc32c (fio's own verification), plus a verify-only second pass
# after a remount (data really on the server, not only in this mount's cache).
source "$(dirname "$0")/lib.sh"
need fio
start_server
mount_fs
cd "$MNT"
job=(--name=v --directory="$MNT" --filename=fio.dat --size=32m --bs=4k --rw=randwrite
     --ioengine=psync --direct=0 --verify=crc32c --verify_fatal=1 --do_verify=1
     --randrepeat=1 --numjobs=1)
fio "${job[@]}" >"$WORK/fio1.out" 2>&1 || { cat "$WORK/fio1.out"; fail "fio write+verify failed"; }
grep -q "err= 0" "$WORK/fio1.out" || { cat "$WORK/fio1.out"; fail "fio reported errors"; }
[ "$(stat -c %s "$EXPORT/fio.dat")" -eq $((32 << 20)) ] || fail "server copy has the wrong size"
unmount_fs
mount_fs
fio "${job[@]}" --verify_only >"$WORK/fio2.out" 2>&1 || { cat "$WORK/fio2.out"; fail "fio verify after remount failed"; }
# Corruption must be caught: flip a byte on the server and verify again.
printf 'X' | dd of="$EXPORT/fio.dat" bs=1 seek=5000 conv=notrunc status=none
if fio "${job[@]}" --verify_only >"$WORK/fio3.out" 2>&1; then
  fail "fio verify passed on a corrupted file (test cannot fail?)"
fi
log "corruption on the server was detected through the mount, as it must be"
unmount_fs
pass
