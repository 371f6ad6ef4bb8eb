#!/usr/bin/env bash
# stack.sh — mounting where dafs is mounted already is refused with one line
# (it used to stack a second dafs-fuse silently), -o nonempty overrides it,
# and the help texts say what -f means: foreground for dafs-fuse, "fake"
# for mount.dafs (as mount(8) passes it).
. "$(dirname "$0")/lib.sh"

out=$("$DAFS_BIN/mount.dafs" --help) || fail "mount.dafs --help failed"
grep -Eq '^ +-f +fake' <<<"$out" || fail "mount.dafs --help does not describe -f as fake: $out"
! grep -qi 'foreground' <<<"$out" || fail "mount.dafs --help mentions a foreground option it does not have: $out"
out=$("$DAFS_FUSE" --help) || fail "dafs-fuse --help failed"
grep -Eq '^ +-f +stay in the foreground' <<<"$out" || fail "dafs-fuse --help does not describe -f: $out"

start_server
mount_fs
count_mounts() { awk -v m="$MNT" '$5 == m' /proc/self/mountinfo | wc -l; }
[ "$(count_mounts)" -eq 1 ] || fail "expected one mount on $MNT, found $(count_mounts)"

# A second mount on the same point: refused at once, nothing stacked.
rc=0
timeout 30 "$DAFS_FUSE" "$URL" "$MNT" -f >"$WORK/second.out" 2>"$WORK/second.err" || rc=$?
[ "$rc" -eq 1 ] || fail "a second mount on $MNT exited $rc, expected 1: $(cat "$WORK/second.err")"
[ "$(wc -l <"$WORK/second.err")" -eq 1 ] && grep -q "already mounted (fuse.dafs" "$WORK/second.err" ||
  fail "a second mount did not say the point is mounted already: $(cat "$WORK/second.err")"
log "as expected: $(cat "$WORK/second.err")"
rc=0
timeout 30 "$DAFS_BIN/mount.dafs" "$URL" "$MNT" -f 2>"$WORK/second.err" || rc=$?
[ "$rc" -ne 0 ] || fail "mount.dafs -f (fake) on a mounted point succeeded"
[ "$(count_mounts)" -eq 1 ] || fail "a refused mount stacked anyway: $(count_mounts) mounts on $MNT"

# -o nonempty: mounts over it, on purpose.
"$DAFS_FUSE" "$URL" "$MNT" -f -o nonempty,allow_other >>"$WORK/fuse2.log" 2>&1 &
second=$!
for i in $(seq 100); do
  [ "$(count_mounts)" -eq 2 ] && break
  kill -0 "$second" 2>/dev/null || fail "dafs-fuse -o nonempty exited: $(cat "$WORK/fuse2.log")"
  sleep 0.1
done
[ "$(count_mounts)" -eq 2 ] || fail "dafs-fuse -o nonempty did not mount over $MNT"
umount "$MNT" || fail "umount of the upper mount failed"
for i in $(seq 100); do kill -0 "$second" 2>/dev/null || break; sleep 0.1; done
kill -0 "$second" 2>/dev/null && { kill -KILL "$second"; fail "the upper dafs-fuse still runs 10 s after umount"; }
wait "$second" || fail "the upper dafs-fuse exited non-zero after umount"
[ "$(count_mounts)" -eq 1 ] || fail "after unmounting the upper mount: $(count_mounts) mounts on $MNT"
unmount_fs
pass
