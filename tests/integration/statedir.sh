#!/usr/bin/env bash
# statedir.sh — dafsd refuses a --state-dir that would give the handle key
# away: inside the export (any client could read or delete the key), equal
# to it, reached through a symlink or "..", or through a bind mount of the
# export; and a state dir or key file readable or writable by group or
# others.  Each refusal is one "dafsd: ..." line saying why, exit status 2,
# and nothing created.  A safe state dir (new, 0700, 0711, containing the
# export) starts.
. "$(dirname "$0")/lib.sh"

# refused WHAT GREP ARGS...: dafsd ARGS must exit 2 at once with one line
# matching GREP.
refused() {
  local what=$1 pattern=$2 rc=0
  shift 2
  timeout -k 5 30 "$DAFSD" --export "$EXPORT" --listen 127.0.0.1:0 "$@" >"$WORK/r.out" 2>"$WORK/r.err" || rc=$?
  [ "$rc" -eq 2 ] || fail "$what: dafsd exited $rc, expected 2 (stderr: $(cat "$WORK/r.err"))"
  [ "$(wc -l <"$WORK/r.err")" -eq 1 ] || fail "$what: expected one line on stderr: $(cat "$WORK/r.err")"
  grep -q "^dafsd: .*$pattern" "$WORK/r.err" || fail "$what: message '$(cat "$WORK/r.err")' does not match '$pattern'"
  log "$what refused: $(cat "$WORK/r.err")"
}

# starts WHAT ARGS...: dafsd ARGS serves (ready file written), then stops.
starts() {
  local what=$1 ready=$WORK/ready i
  shift
  rm -f "$ready"
  "$DAFSD" --export "$EXPORT" --listen 127.0.0.1:0 --ready-file "$ready" "$@" >"$WORK/s.out" 2>"$WORK/s.err" &
  SERVER_PID=$!
  for i in $(seq 150); do
    [ -s "$ready" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { wait "$SERVER_PID" || true; SERVER_PID=; fail "$what: dafsd did not start: $(cat "$WORK/s.err")"; }
    sleep 0.1
  done
  [ -s "$ready" ] || fail "$what: dafsd not ready after 15 s"
  stop_server
  log "$what: starts"
}

# Inside the export, new or existing, by any path.
refused "state dir inside the export (new)" "inside the export" --state-dir "$EXPORT/.dafs"
[ ! -e "$EXPORT/.dafs" ] || fail "the refused state dir was created in the export"
mkdir -m 700 "$EXPORT/state"
refused "state dir inside the export (existing)" "is inside the export" --state-dir "$EXPORT/state"
[ ! -e "$EXPORT/state/handle.key" ] || fail "a handle key was written into the export"
refused "state dir equal to the export" "is the export" --state-dir "$EXPORT"
refused "state dir = export/" "is the export" --state-dir "$EXPORT/"
refused "state dir via .." "inside" --state-dir "$EXPORT/../export/state"
mkdir -m 700 "$WORK/deep"
ln -s "$EXPORT" "$WORK/deep/link"
refused "state dir through a symlink" "inside" --state-dir "$WORK/deep/link/state"
refused "new state dir through a symlink" "inside" --state-dir "$WORK/deep/link/new/state"
(cd "$EXPORT" && refused "relative state dir" "inside" --state-dir state2)
(cd "$EXPORT" && refused "state dir ." "is the export" --state-dir .)
# A bind mount of the export elsewhere (needs root and mount; skipped without).
mkdir "$WORK/bind"
if mount --bind "$EXPORT" "$WORK/bind" 2>/dev/null; then
  rc=0
  (refused "state dir in a bind mount of the export" "inside" --state-dir "$WORK/bind/state") || rc=$?
  umount "$WORK/bind" || umount -l "$WORK/bind"
  [ "$rc" -eq 0 ] || exit "$rc"
else
  log "bind mount not possible here: that case is not checked"
fi

# Modes: group/others must not read or write the state dir or the key.
mkdir -m 700 "$WORK/st"
starts "new key in a 0700 state dir" --state-dir "$WORK/st"
[ "$(stat -c %a "$WORK/st/handle.key")" = 600 ] || fail "handle.key created with mode $(stat -c %a "$WORK/st/handle.key")"
chmod 755 "$WORK/st"
refused "state dir 0755" "readable by group or others" --state-dir "$WORK/st"
chmod 770 "$WORK/st"
refused "state dir 0770" "writable by group or others" --state-dir "$WORK/st"
chmod 702 "$WORK/st"
refused "state dir 0702" "writable by group or others" --state-dir "$WORK/st"
chmod 711 "$WORK/st"
starts "state dir 0711" --state-dir "$WORK/st"
chmod 700 "$WORK/st"
chmod 644 "$WORK/st/handle.key"
refused "key 0644" "handle.key is accessible to group or others" --state-dir "$WORK/st"
chmod 620 "$WORK/st/handle.key"
refused "key 0620" "handle.key is accessible to group or others" --state-dir "$WORK/st"
chmod 600 "$WORK/st/handle.key"
starts "key 0600" --state-dir "$WORK/st"

# A state dir that contains the export is out of the clients' reach: fine.
# (The export is $WORK/export; $WORK itself is the mktemp dir, mode 0700.)
chmod 700 "$WORK"
starts "state dir containing the export" --state-dir "$WORK"
pass
