#!/usr/bin/env bash
# stress.sh — stress-ng file-system stressors (with their own verification
# where they have it) run on the mount for a bounded time each.
source "$(dirname "$0")/lib.sh"
need stress-ng
start_server
mount_fs
cd "$MNT"
run() {
  log "stress-ng $*"
  stress-ng --temp-path "$MNT" --timeout 3s --metrics-brief "$@" >"$WORK/stress.out" 2>&1 ||
    { tail -n 30 "$WORK/stress.out"; fail "stress-ng $* failed"; }
  grep -q "successful run completed" "$WORK/stress.out" || { tail -n 30 "$WORK/stress.out"; fail "stress-ng $*: no successful completion"; }
}
run --hdd 2 --hdd-bytes 4m --hdd-opts wr-rnd,rd-rnd --verify
run --hdd 1 --hdd-bytes 4m --hdd-opts wr-seq,rd-seq,fsync --verify
run --dir 2 --dir-dirs 256
run --rename 2
run --symlink 2
run --link 2
run --chmod 2
run --dentry 2 --dentries 512
[ -z "$(ls -A "$MNT")" ] || log "note: left behind: $(ls -A "$MNT" | head)"
unmount_fs
pass
