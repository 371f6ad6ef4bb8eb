#!/usr/bin/env bash
# openstate.sh — an open file keeps the access its open was granted (issue 8,
# item 1), as on a local file system, for a non-root user (uid 1000):
#   - cp of a 0444 file, tar -x of an archive with a 0444 member and git add
#     (git writes its objects 0444) give complete files;
#   - open(O_CREAT|O_RDWR, 0) then write works;
#   - fchmod 0000 on an open fd, then pread and pwrite on it still work;
#   - unlink while open: read, write and fstat (nlink 0) through the fd keep
#     working, and no .dafs-fuse-hidden.* file appears.
# The server holds each open as protocol-v2 open state (a stateid).
source "$(dirname "$0")/lib.sh"
need setpriv
need git
need tar
PY=/usr/bin/python3 # a system python, reachable by uid 1000
[ -x "$PY" ] || skip "no /usr/bin/python3"
start_server
mount_fs
as1000() { setpriv --reuid=1000 --regid=1000 --clear-groups env HOME="$WORK/home" "$@"; }
mkdir -p "$WORK/home" && chown 1000:1000 "$WORK/home"
mkdir "$MNT/u" && chown 1000:1000 "$MNT/u" || fail "mkdir as root"
D=$MNT/u

# cp of a 0444 file
as1000 sh -c "printf 'read-only source\n' > '$D/src' && chmod 444 '$D/src'" || fail "make src"
as1000 cp "$D/src" "$D/copy" || fail "cp of a 0444 file"
[ "$(cat "$D/copy")" = "read-only source" ] || fail "cp left '$(cat "$D/copy")'"
[ "$(stat -c %a "$D/copy")" = 444 ] || fail "copy mode $(stat -c %a "$D/copy")"

# tar -x of an archive with a 0444 member
mkdir "$LOCAL/t" && printf 'member data\n' >"$LOCAL/t/ro" && chmod 444 "$LOCAL/t/ro"
tar -C "$LOCAL" -cf "$WORK/ro.tar" t && chmod 644 "$WORK/ro.tar"
as1000 tar -C "$D" -xf "$WORK/ro.tar" || fail "tar -x of a 0444 member"
[ "$(cat "$D/t/ro")" = "member data" ] || fail "tar member holds '$(cat "$D/t/ro")'"

# git add (objects are written 0444)
as1000 git init -q "$D/repo" || fail "git init"
as1000 sh -c "printf 'tracked\n' > '$D/repo/file'" || fail "write file"
as1000 git -C "$D/repo" add file || fail "git add"
as1000 git -C "$D/repo" -c user.name=t -c user.email=t@t commit -qm one || fail "git commit"
[ "$(as1000 git -C "$D/repo" show HEAD:file)" = tracked ] || fail "git show"
as1000 git -C "$D/repo" fsck --strict >/dev/null 2>&1 || fail "git fsck"

# fd-level cases
cat >"$WORK/fd.py" <<'EOF'
import os, sys
d, case = sys.argv[1], sys.argv[2]
def fresh(fd):  # drop clean cached pages, so reads go to the server
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
def mode0():  # open(O_CREAT|O_RDWR, 0) then write
    p = os.path.join(d, "mode0")
    fd = os.open(p, os.O_CREAT | os.O_RDWR | os.O_EXCL, 0)
    assert os.write(fd, b"written under mode 0") == 20, "write mode 0"
    fresh(fd)
    assert os.pread(fd, 64, 0) == b"written under mode 0", "read back mode 0"
    os.close(fd)
    assert os.stat(p).st_mode & 0o7777 == 0, "mode is 0"
def chmod0():  # fchmod 0000 on an open fd: pread, pwrite, ftruncate still work
    p = os.path.join(d, "chmod0")
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"before chmod")
    os.fchmod(fd, 0)
    fresh(fd)
    assert os.pread(fd, 64, 0) == b"before chmod", "pread after fchmod 0000"
    assert os.pwrite(fd, b"AFTER", 0) == 5, "pwrite after fchmod 0000"
    os.fsync(fd)
    os.ftruncate(fd, 8)
    fresh(fd)
    assert os.pread(fd, 64, 0) == b"AFTERe c", "ftruncate after fchmod 0000"
    os.close(fd)
def unlinked():  # unlink while open: read, write, fstat through the fd
    p = os.path.join(d, "gone")
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o600)
    os.write(fd, b"still here")
    os.unlink(p)
    assert not os.path.exists(p), "name still there"
    hidden = [n for n in os.listdir(d) if n.startswith(".dafs-fuse-hidden")]
    assert not hidden, "hidden files: %s" % hidden
    st = os.fstat(fd)
    assert st.st_nlink == 0, "fstat after unlink: nlink %d" % st.st_nlink
    fresh(fd)
    assert os.pread(fd, 64, 0) == b"still here", "read after unlink"
    assert os.pwrite(fd, b"STILL", 0) == 5, "write after unlink"
    os.fsync(fd)
    fresh(fd)
    assert os.pread(fd, 64, 0) == b"STILL here", "read back after unlink"
    assert os.fstat(fd).st_size == 10, "size after unlink"
    os.close(fd)
{"mode0": mode0, "chmod0": chmod0, "unlinked": unlinked}[case]()
EOF
chmod 644 "$WORK/fd.py"
for case in mode0 chmod0 unlinked; do
  out=$(as1000 "$PY" "$WORK/fd.py" "$D" "$case" 2>&1) || fail "$case: ${out##*Error: }"
done
ls -a "$D" | grep -q '^\.dafs-fuse-hidden' && fail "a .dafs-fuse-hidden file appeared"
[ ! -e "$EXPORT/u/gone" ] || fail "unlinked file still on the server"
# the last close released the server's open file: no dafsd fd names it any more
deadline=$((SECONDS + 10))
while ls -l "/proc/$SERVER_PID/fd" 2>/dev/null | grep -q '/u/gone'; do
  [ "$SECONDS" -lt "$deadline" ] || fail "dafsd still holds the unlinked file after close"
  sleep 0.1
done
unmount_fs
pass
