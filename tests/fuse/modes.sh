#!/usr/bin/env bash
# modes.sh — modes and permission bits through the mount, as on a local file
# system (issue 8, items 2, 3 and the FIFO part of 4):
#  - dafsd started with umask 022 still creates exactly the mode asked for
#    (the client's umask is applied by the client): mkdir with umask 0 gives
#    0777, open(O_CREAT, 0620) gives 0620, mkfifo 0666; a client umask of 027
#    still applies.
#  - a non-owner's write to a set-user-ID / set-group-ID file succeeds and
#    clears both bits (the kernel's rule for an unprivileged writer).
#  - a 0000 FIFO (and a 0000 file) cannot be opened by a non-root user, not
#    even O_RDWR|O_NONBLOCK; root (not squashed here) can.
source "$(dirname "$0")/lib.sh"
need setpriv
: "${FSOPS_HELPER:?set FSOPS_HELPER to the fsops_helper binary}"
H=$FSOPS_HELPER
as1000() { setpriv --reuid=1000 --regid=1000 --clear-groups "$@"; }
as1001() { setpriv --reuid=1001 --regid=1001 --clear-groups "$@"; }
expect() { # expect WHAT WANT GOT
  [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}

umask 022
start_server
mount_fs
umask 000

# ---- item 2: the server's umask is not applied ----
mkdir "$MNT/d777"
expect "mkdir 0777 under umask 0" 777 "$(stat -c %a "$MNT/d777")"
expect "mkdir 0777 on the server" 777 "$(stat -c %a "$EXPORT/d777")"
expect "open(O_CREAT, 0620)" "ok 0" "$("$H" create "$MNT/f620" 0620)"
expect "open(O_CREAT, 0620) mode" 620 "$(stat -c %a "$EXPORT/f620")"
mkfifo -m 0666 "$MNT/fifo666"
expect "mkfifo 0666" 666 "$(stat -c %a "$EXPORT/fifo666")"
(umask 027 && mkdir "$MNT/d750")
expect "client umask 027 still applies" 750 "$(stat -c %a "$EXPORT/d750")"
umask 022

# ---- item 3: a non-owner's write clears set-user-ID and set-group-ID ----
mkdir "$MNT/shared" && chmod 1777 "$MNT/shared"
as1000 sh -c "echo old > '$MNT/shared/suid' && chmod 6777 '$MNT/shared/suid'" ||
  fail "uid 1000 cannot make its set-id file"
expect "set-id file mode" 6777 "$(stat -c %a "$EXPORT/shared/suid")"
expect "non-owner write to a set-id file" "ok 4" "$(as1001 "$H" write "$MNT/shared/suid")"
expect "set-id bits after the write (server)" 777 "$(stat -c %a "$EXPORT/shared/suid")"
# the mount shows it too once its attribute cache (1 s) has expired
for i in $(seq 50); do
  [ "$(stat -c %a "$MNT/shared/suid")" = 777 ] && break
  sleep 0.1
done
expect "set-id bits after the write (mount)" 777 "$(stat -c %a "$MNT/shared/suid")"
# the owner's own write clears them too (no CAP_FSETID); root's does not
as1000 chmod 2775 "$MNT/shared/suid"
expect "owner write to a set-gid file" "ok 4" "$(as1000 "$H" write "$MNT/shared/suid")"
expect "set-gid bit after the owner's write" 775 "$(stat -c %a "$EXPORT/shared/suid")"

# ---- item 4: a FIFO's mode is checked at open ----
mkfifo -m 0000 "$MNT/shared/fifo0"
expect "0000 FIFO, O_RDWR, uid 1000" EACCES "$(as1000 "$H" open "$MNT/shared/fifo0" rdwr)"
expect "0000 FIFO, O_RDONLY, uid 1000" EACCES "$(as1000 "$H" open "$MNT/shared/fifo0" rdonly)"
expect "0000 FIFO, O_RDWR, root" "ok 0" "$("$H" open "$MNT/shared/fifo0" rdwr)"
mkfifo -m 0666 "$MNT/shared/fifo666"
expect "0666 FIFO, O_RDWR, uid 1000" "ok 0" "$(as1000 "$H" open "$MNT/shared/fifo666" rdwr)"
as1000 "$H" create "$MNT/shared/file0" 0 >/dev/null
expect "0000 file, O_RDONLY, uid 1001" EACCES "$(as1001 "$H" open "$MNT/shared/file0" rdonly)"

unmount_fs
pass
