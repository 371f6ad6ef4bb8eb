#!/usr/bin/env bash
# fileops.sh — the operations issue 8 item 7 found missing, through the
# mount, each compared with the same call on a local directory of the same
# file system as the export ($LOCAL):
#  - fallocate: mode 0, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE (the modes the
#    kernel's FUSE passes on), checked with the size, the blocks allocated
#    and the data;
#  - lseek SEEK_DATA / SEEK_HOLE on a sparse file (ENXIO past the end);
#  - copy_file_range: the data, and that it ran on the server (the FUSE
#    debug log shows COPY_FILE_RANGE and no READ while it ran);
#  - extended attributes: set/get/list/remove, ENODATA, ERANGE for a small
#    buffer, EEXIST / ENODATA with XATTR_CREATE / XATTR_REPLACE, a non-owner
#    refused; a POSIX ACL granting one other user read access;
#  - ls -a shows "." and ".."; ls -l of a fresh directory needs no LOOKUP
#    (readdirplus gives the kernel handles and attributes).
source "$(dirname "$0")/lib.sh"
need setpriv
: "${FSOPS_HELPER:?set FSOPS_HELPER to the fsops_helper binary}"
H=$FSOPS_HELPER
expect() { [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"; }
as1000() { setpriv --reuid=1000 --regid=1000 --clear-groups "$@"; }
as1001() { setpriv --reuid=1001 --regid=1001 --clear-groups "$@"; }
as1002() { setpriv --reuid=1002 --regid=1002 --clear-groups "$@"; }
count_ops() { grep -c "opcode: $1 " "$WORK/fuse.log" || true; }

start_server
mount_fs -d -o attr_timeout=30,entry_timeout=30

# ---- fallocate: every mode, as locally ----
# a 64 KiB file of data, then each mode on both sides.  The kernel's FUSE
# passes on only mode 0, KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE (it answers
# EOPNOTSUPP itself for COLLAPSE/INSERT/UNSHARE_RANGE, which libdafs's
# dafs_fallocate does offer: tests/server covers them).
head -c 65536 /dev/urandom >"$WORK/seed"
shape() { stat -c '%s %b' "$1"; }
for mode in 0 keep keep+punch zero zero+keep; do
  for d in "$MNT" "$LOCAL"; do cp "$WORK/seed" "$d/fa-$mode"; done
  case $mode in
    0) args="0 131072 65536" ;;            # grows the file
    keep) args="keep 131072 65536" ;;      # blocks past EOF, size kept
    collapse | insert) args="$mode 16384 8192" ;;
    *) args="$mode 8192 16384" ;;
  esac
  # shellcheck disable=SC2086
  local_out=$("$H" fallocate "$LOCAL/fa-$mode" $args)
  # shellcheck disable=SC2086
  mnt_out=$("$H" fallocate "$MNT/fa-$mode" $args)
  expect "fallocate $mode result" "$local_out" "$mnt_out"
  expect "fallocate $mode size/blocks (server)" "$(shape "$LOCAL/fa-$mode")" \
    "$(shape "$EXPORT/fa-$mode")"
  cmp -s "$LOCAL/fa-$mode" "$MNT/fa-$mode" || fail "fallocate $mode: data differs"
  log "fallocate $mode: $mnt_out, $(shape "$EXPORT/fa-$mode")"
done
expect "fallocate mode 0 size" 196608 "$(stat -c %s "$MNT/fa-0")"
for mode in collapse insert unshare; do
  expect "fallocate $mode (not passed on by FUSE)" EOPNOTSUPP \
    "$("$H" fallocate "$MNT/fa-0" $mode 16384 8192)"
done
expect "fallocate on a read-only file descriptor's user" EACCES \
  "$(chmod 644 "$MNT/fa-0" && as1000 "$H" fallocate "$MNT/fa-0" 0 0 4096)"

# ---- SEEK_DATA / SEEK_HOLE on a sparse file ----
for d in "$MNT" "$LOCAL"; do
  rm -f "$d/sparse"
  dd if=/dev/urandom of="$d/sparse" bs=4096 count=2 seek=256 conv=notrunc status=none
  dd if=/dev/urandom of="$d/sparse" bs=4096 count=1 seek=1024 conv=notrunc status=none
done
for q in "0 data" "0 hole" "1052672 data" "1052672 hole" "1060864 data" "4198400 hole" \
         "4198400 data" "9999999 data"; do
  # shellcheck disable=SC2086
  expect "lseek $q" "$("$H" seek "$LOCAL/sparse" $q)" "$("$H" seek "$MNT/sparse" $q)"
done
expect "SEEK_DATA from 0" "ok 1048576" "$("$H" seek "$MNT/sparse" 0 data)"
expect "SEEK_DATA past the end" ENXIO "$("$H" seek "$MNT/sparse" 9999999 data)"

# ---- copy_file_range on the server ----
head -c 3000000 /dev/urandom >"$MNT/src"
: >"$MNT/dst"
sync
reads_before=$(count_ops READ)
copies_before=$(count_ops COPY_FILE_RANGE)
expect "copy_file_range" "ok 3000000" "$("$H" copy "$MNT/src" 0 "$MNT/dst" 0 3000000)"
reads_after=$(count_ops READ)
copies_after=$(count_ops COPY_FILE_RANGE)
cmp -s "$EXPORT/src" "$EXPORT/dst" || fail "copy_file_range: the copy differs"
[ "$copies_after" -gt "$copies_before" ] || fail "no COPY_FILE_RANGE reached dafs-fuse"
expect "READs through the client during the copy" "$reads_before" "$reads_after"
expect "copy at offsets" "ok 1000" "$("$H" copy "$MNT/src" 5000 "$MNT/dst" 100 1000)"
cmp -s <(tail -c +5001 "$EXPORT/src" | head -c 1000) <(tail -c +101 "$EXPORT/dst" | head -c 1000) ||
  fail "copy at offsets: wrong data"

# ---- extended attributes ----
f=$MNT/xf
l=$LOCAL/xf
echo data >"$f"
echo data >"$l"
chmod 644 "$f" "$l"
for p in "$l" "$f"; do
  out=""
  out+="$("$H" setx "$p" user.color blue)|"
  out+="$("$H" getx "$p" user.color 100)|"
  out+="$("$H" getx "$p" user.color 0)|"
  out+="$("$H" getx "$p" user.color 2)|"
  out+="$("$H" getx "$p" user.missing 100)|"
  out+="$("$H" setx "$p" user.color red create)|"
  out+="$("$H" setx "$p" user.shape round replace)|"
  out+="$("$H" setx "$p" user.shape round create)|"
  out+="$("$H" setx "$p" user.shape square replace)|"
  out+="$("$H" listx "$p" 1000)|"
  out+="$("$H" listx "$p" 0)|"
  out+="$("$H" listx "$p" 5)|"
  out+="$("$H" rmx "$p" user.color)|"
  out+="$("$H" rmx "$p" user.color)|"
  out+="$("$H" getx "$p" user.shape 100)|"
  out+="$(as1000 "$H" setx "$p" user.color green)|"
  out+="$(as1000 "$H" getx "$p" user.shape 100)"
  if [ "$p" = "$l" ]; then want=$out; else got=$out; fi
done
expect "xattr sequence" "$want" "$got"
log "xattrs: $got"
expect "xattr on the server" square "$(getfattr --only-values -n user.shape "$EXPORT/xf" 2>/dev/null ||
  "$H" getx "$EXPORT/xf" user.shape 100 | sed 's/^ok //')"

# POSIX ACL: a 0600 file of uid 1000 that uid 1001 may read by ACL
mkdir "$MNT/acl" && chmod 1777 "$MNT/acl"
as1000 sh -c "echo secret > '$MNT/acl/f' && chmod 600 '$MNT/acl/f'"
expect "uid 1001 before the ACL" "" "$(as1001 cat "$MNT/acl/f" 2>/dev/null)"
expect "setting the ACL as the owner" "ok 0" "$(as1000 "$H" setacl "$MNT/acl/f" 1001)"
expect "uid 1001 reads by ACL" secret "$(as1001 cat "$MNT/acl/f")"
expect "uid 1002 still refused" "" "$(as1002 cat "$MNT/acl/f" 2>/dev/null)"
expect "ACL mask shows in the group bits" 660 "$(stat -c %a "$EXPORT/acl/f")"
expect "a non-owner cannot set an ACL" EPERM "$(as1001 "$H" setacl "$MNT/acl/f" 1002)"

# ---- readdir: "." and "..", and no LOOKUP per entry ----
mkdir "$MNT/dir"
for i in $(seq 20); do : >"$MNT/dir/f$i"; done
expect "ls -a" ". .. f1 f10" "$(ls -a "$MNT/dir" | head -4 | xargs)"
expect "ls -a count" 22 "$(ls -a "$MNT/dir" | wc -l)"
mkdir "$EXPORT/fresh"
for i in $(seq 20); do : >"$EXPORT/fresh/g$i"; done
lookups_before=$(count_ops LOOKUP)
ls -l "$MNT/fresh" >/dev/null
lookups_after=$(count_ops LOOKUP)
[ $((lookups_after - lookups_before)) -le 1 ] ||
  fail "ls -l of 20 entries took $((lookups_after - lookups_before)) LOOKUPs (readdirplus not used)"

# ---- fsync(2) of a directory: a COMMIT of it (it failed with EINVAL) ----
python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY|os.O_DIRECTORY); os.fsync(fd); os.close(fd)' \
  "$MNT/dir" || fail "fsync of a directory on the mount failed"

unmount_fs
pass
