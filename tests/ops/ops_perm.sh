#!/usr/bin/env bash
# ops_perm.sh — the admin socket is for root only: uid 1000 (setpriv) is
# refused by the file mode (dafsctl says "permission denied"), and, with the
# mode opened up on purpose, by dafsd's SO_PEERCRED check (an ERR line
# naming the uid, exit 1, and a log line).  Root is needed to switch users:
# skipped (77) otherwise.
. "$(dirname "$0")/../integration/lib.sh"
[ "$(id -u)" -eq 0 ] || { log "SKIP: needs root to run dafsctl as uid 1000"; exit 77; }
command -v setpriv >/dev/null || { log "SKIP: no setpriv"; exit 77; }
DAFSCTL=$DAFS_BIN/dafsctl
[ -x "$DAFSCTL" ] || fail "$DAFSCTL not built"
SOCK=$WORK/state/admin.sock
as_user() { timeout -k 5 30 setpriv --reuid=1000 --regid=1000 --clear-groups "$@"; }

start_server
"$DAFSCTL" --socket "$SOCK" version >/dev/null || fail "root cannot use the admin socket"
# the scratch dir and the binaries must be reachable by uid 1000
chmod 755 "$WORK"
rc=0
as_user "$DAFSCTL" --socket "$SOCK" version >"$WORK/out" 2>"$WORK/err" || rc=$?
[ "$rc" -ne 0 ] || fail "uid 1000 was let in: $(cat "$WORK/out")"
grep -q "permission denied" "$WORK/err" || fail "uid 1000: $(cat "$WORK/err")"
log "uid 1000, socket mode 0600: $(cat "$WORK/err")"

# Open the file mode up: dafsd's peer-credential check must still refuse.
chmod 755 "$WORK/state"
chmod 666 "$SOCK"
rc=0
as_user "$DAFSCTL" --socket "$SOCK" sessions list >"$WORK/out" 2>"$WORK/err" || rc=$?
[ "$rc" -eq 1 ] || fail "uid 1000 through an open socket: exit $rc, $(cat "$WORK/out" "$WORK/err")"
grep -q "permission denied: the dafsd admin socket is for root only (you are uid 1000)" "$WORK/err" ||
  fail "uid 1000 through an open socket: $(cat "$WORK/err")"
[ ! -s "$WORK/out" ] || fail "uid 1000 got output: $(cat "$WORK/out")"
wait_until 30 "dafsd logs the refusal" grep -q "admin socket: refused uid 1000" "$WORK/dafsd.log"
"$DAFSCTL" --socket "$SOCK" version >/dev/null || fail "root refused after the refusal"
log "uid 1000 through an open socket: $(cat "$WORK/err")"
stop_server
pass
