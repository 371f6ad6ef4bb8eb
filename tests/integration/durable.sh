#!/usr/bin/env bash
# durable.sh — names become durable at the next commit (src/server/durable.h):
#  - namespace operations alone (mkdir, create) fsync no directory;
#  - a COMMIT (here: the fsync of `dafs put`) fsyncs every directory changed
#    before it, before the client's call returns: the new file's directory,
#    the directory above it and the export root (mkdir of both);
#  - `dafs put` commits again after its RENAME, so the final name is durable.
# Observed with strace on the real dafsd (fsync of directory fds, -y names them).
. "$(dirname "$0")/lib.sh"
command -v strace >/dev/null 2>&1 || { echo "strace not installed (scripts/deps.sh)"; exit 77; }

start_server
strace -f -qq -y -e trace=fsync,fdatasync,syncfs -p "$SERVER_PID" -o "$WORK/trace" 2>"$WORK/strace.err" &
STRACE_PID=$!
track_pid "$STRACE_PID"
# attached once the server's threads show up in /proc as traced
traced() { grep -q "^TracerPid:[[:space:]]*$STRACE_PID\$" "/proc/$SERVER_PID/status"; }
wait_until 30 "strace attached to dafsd" traced

exp=$(realpath "$EXPORT")
dir_synced() { grep -q "fsync([0-9]*<$1>)" "$WORK/trace"; }

dafs mkdir "$URL/d1" || fail "mkdir d1"
dafs mkdir "$URL/d1/sub" || fail "mkdir d1/sub"
dafs stat "$URL/d1/sub" >/dev/null || fail "stat d1/sub"
if dir_synced "$exp/d1" || dir_synced "$exp/d1/sub" || dir_synced "$exp"; then
  fail "a directory was fsynced without a commit: $(cat "$WORK/trace")"
fi

make_file "$WORK/src.bin" 100000
dafs put "$WORK/src.bin" "$URL/d1/sub/f" || fail "put"
[ "$(sha "$EXPORT/d1/sub/f")" = "$(sha "$WORK/src.bin")" ] || fail "put: content differs"
# the fsyncs happened before put's commits were answered; strace may write
# its lines a moment later
wait_until 10 "fsync of d1/sub after the commit" dir_synced "$exp/d1/sub"
wait_until 10 "fsync of d1 (mkdir sub) after the commit" dir_synced "$exp/d1"
wait_until 10 "fsync of the export root (mkdir d1) after the commit" dir_synced "$exp"
kill "$STRACE_PID" 2>/dev/null || true
wait "$STRACE_PID" 2>/dev/null || true
log "directory fsyncs: $(grep -c 'fsync(' "$WORK/trace")"
pass
