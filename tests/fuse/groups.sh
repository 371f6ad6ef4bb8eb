#!/usr/bin/env bash
# groups.sh — more than 32 supplementary groups through the mount (issue 8,
# item 7): a process of uid 1000 with 40 supplementary groups reads a 0640
# file whose group is its 40th, and writes a 0660 one; with the 40th group
# dropped it is refused.  dafs-fuse reads the whole list from /proc and the
# server runs the request with all of them (REGISTER_CRED carries any number
# the message size allows); before, both stopped at 32.
source "$(dirname "$0")/lib.sh"
: "${FSOPS_HELPER:?set FSOPS_HELPER to the fsops_helper binary}"
H=$FSOPS_HELPER
expect() { [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"; }
FIRST=61000 # group ids need no /etc/group entry for setgroups(2)
start_server
mount_fs
mkdir "$MNT/g" && chmod 755 "$MNT/g"
echo forty >"$MNT/g/r" && chown 0:$((FIRST + 39)) "$MNT/g/r" && chmod 640 "$MNT/g/r"
: >"$MNT/g/w" && chown 0:$((FIRST + 39)) "$MNT/g/w" && chmod 660 "$MNT/g/w"
with40() { "$H" asgroups 1000 1000 $FIRST 40 "$@"; }
with39() { "$H" asgroups 1000 1000 $FIRST 39 "$@"; }
[ "$(with40 id -G | wc -w)" -ge 41 ] || fail "the helper did not set 40 groups: $(with40 id -G)"
expect "read through the 40th group" forty "$(with40 cat "$MNT/g/r")"
expect "write through the 40th group" "ok 4" "$(with40 "$H" write "$MNT/g/w")"
expect "the data reached the server" data "$(cat "$EXPORT/g/w")"
if with39 cat "$MNT/g/r" >/dev/null 2>&1; then fail "read without the 40th group"; fi
expect "write without the 40th group" EACCES "$(with39 "$H" write "$MNT/g/w")"
# 200 groups, the file's group the last one
chown 0:$((FIRST + 199)) "$MNT/g/r"
expect "read through the 200th group" forty "$("$H" asgroups 1000 1000 $FIRST 200 cat "$MNT/g/r")"
unmount_fs
pass
