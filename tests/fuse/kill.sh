#!/usr/bin/env bash
# kill.sh — a dead server shows up as errors, not hangs: after SIGKILL of
# dafsd, stat on the mount fails (EIO/ENOTCONN) within 15 s.  Then SIGTERM
# to dafs-fuse unmounts cleanly.  Also: mount.dafs (the mount(8) helper form)
# mounts and umount unmounts; a bad URL or unreachable server fails the mount.
source "$(dirname "$0")/lib.sh"
start_server
mount_fs
echo x >"$MNT/f" || fail "write before kill"
kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
start=$(date +%s)
rc=0
out=$(timeout -k 5 30 stat "$MNT/g" 2>&1) || rc=$?
took=$(( $(date +%s) - start ))
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "stat hung (timeout) after the server died"
[ "$rc" -ne 0 ] || fail "stat succeeded with the server dead"
[[ "$out" == *"Input/output error"* || "$out" == *"not connected"* ]] || fail "unexpected error: $out"
[ "$took" -le 15 ] || fail "stat took ${took}s to fail"
log "stat failed after ${took}s: $out"
kill -TERM "$FUSE_PID"
for i in $(seq 100); do kill -0 "$FUSE_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$FUSE_PID" 2>/dev/null && fail "dafs-fuse still running 10 s after SIGTERM"
wait "$FUSE_PID" || true
FUSE_PID=
mountpoint -q "$MNT" && fail "still mounted after SIGTERM"

# mount(8) helper form: daemonizes, returns once mounted.
start_server
"$DAFS_BIN/mount.dafs" "$URL" "$MNT" -o rw,allow_other,attr_timeout=0.5,_netdev 2>>"$WORK/fuse.log" ||
  fail "mount.dafs failed"
mountpoint -q "$MNT" || fail "mount.dafs returned 0 but nothing is mounted"
grep -q " $MNT fuse.dafs " /proc/mounts || fail "not listed as fuse.dafs"
echo y >"$MNT/h" && [ "$(cat "$EXPORT/h")" = y ] || fail "write through mount.dafs mount"
umount "$MNT" || fail "umount"
# failures: bad URL, nobody listening, bad option
if "$DAFS_FUSE" "http://x/" "$MNT" 2>/dev/null; then fail "bad URL accepted"; fi
if "$DAFS_BIN/mount.dafs" "dafs://127.0.0.1:1/" "$MNT" -o timeout=2000 2>/dev/null; then fail "mounted with no server"; fi
if "$DAFS_FUSE" "$URL" "$MNT" -o attr_timeout=abc 2>/dev/null; then fail "bad attr_timeout accepted"; fi
mountpoint -q "$MNT" && fail "something is mounted after failed mounts"
pass
