#!/usr/bin/env bash
# perms.sh — with allow_other, other users reach the mount and the server
# checks permissions as them: uid 1000 cannot create in a root-owned 0755
# directory (EACCES) nor read a 0600 root file, but what it creates in its own
# directory is owned by 1000 on the server; chown by non-root is refused;
# root (not squashed here) can do everything.
source "$(dirname "$0")/lib.sh"
need setpriv
start_server
mount_fs
as1000() { setpriv --reuid=1000 --regid=1000 --clear-groups "$@"; }
mkdir "$MNT/rootdir" && chmod 755 "$MNT/rootdir" || fail "mkdir as root"
mkdir "$MNT/userdir" && chown 1000:1000 "$MNT/userdir" || fail "chown as root"
echo secret >"$MNT/secret" && chmod 600 "$MNT/secret" || fail "secret"
as1000 ls "$MNT/rootdir" >/dev/null || fail "uid 1000 cannot list a 0755 dir"
if out=$(as1000 touch "$MNT/rootdir/f" 2>&1); then fail "uid 1000 created a file in root's 0755 dir"; fi
[[ "$out" == *"Permission denied"* ]] || fail "expected EACCES, got: $out"
[ ! -e "$EXPORT/rootdir/f" ] || fail "file exists on the server anyway"
if out=$(as1000 cat "$MNT/secret" 2>&1); then fail "uid 1000 read a 0600 root file"; fi
[[ "$out" == *"Permission denied"* ]] || fail "expected EACCES on read, got: $out"
as1000 touch "$MNT/userdir/mine" || fail "uid 1000 cannot create in its own dir"
as1000 mkdir "$MNT/userdir/sub" || fail "uid 1000 mkdir in its own dir"
[ "$(stat -c %u:%g "$EXPORT/userdir/mine")" = 1000:1000 ] || fail "server file owned by $(stat -c %u:%g "$EXPORT/userdir/mine"), expected 1000:1000"
[ "$(stat -c %u:%g "$MNT/userdir/sub")" = 1000:1000 ] || fail "dir not owned by 1000 through the mount"
if as1000 chown 0 "$MNT/userdir/mine" 2>/dev/null; then fail "uid 1000 gave a file to root"; fi
as1000 chmod 640 "$MNT/userdir/mine" || fail "owner chmod"
[ "$(stat -c %a "$EXPORT/userdir/mine")" = 640 ] || fail "chmod did not reach the server"
if as1000 rm "$MNT/secret" 2>/dev/null; then fail "uid 1000 removed root's file"; fi
as1000 sh -c "echo data > '$MNT/userdir/mine'" || fail "owner write"
setpriv --reuid=1001 --regid=1001 --clear-groups cat "$MNT/userdir/mine" 2>/dev/null &&
  fail "uid 1001 read a 0640 file of 1000:1000"
cat "$MNT/userdir/mine" >/dev/null || fail "root cannot read"
unmount_fs
pass
