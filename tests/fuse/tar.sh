#!/usr/bin/env bash
# tar.sh — a generated tree (nested dirs, modes, owners, mtimes, symlinks,
# hard links, empty and large files, odd names) is archived, extracted on
# the mount with permissions preserved, and compared with the original:
# tar --compare (content, mode, owner, mtime, link targets) and cmp of
# every file, then copied back off the mount and diffed.
source "$(dirname "$0")/lib.sh"
need tar
start_server
mount_fs
src=$LOCAL/src
mkdir -p "$src/a/b/c" "$src/empty dir" "$src/x"
head -c 3000000 /dev/urandom >"$src/a/big.bin"
: >"$src/a/empty"
echo "hello" >"$src/a/b/hello.txt"
printf 'name with spaces\n' >"$src/x/file with spaces"
printf 'unicode\n' >"$src/x/ünïcødé"
for i in $(seq 40); do echo "file $i" >"$src/a/b/c/f$i"; done
chmod 600 "$src/a/b/hello.txt"; chmod 751 "$src/a/b"; chmod 4755 "$src/a/empty"
chmod 1777 "$src/x"
chown 1000:1000 "$src/a/b/c/f1"; chown 1234:5678 "$src/x/file with spaces"
ln -s b/hello.txt "$src/a/link"; ln -s /nonexistent/target "$src/a/dangling"
ln "$src/a/b/c/f2" "$src/a/hardlink"
touch -h -d '2001-02-03 04:05:06.789' "$src/a/link"
touch -d '1999-12-31 23:59:59' "$src/a/big.bin"
touch -d '2010-01-01' "$src/a/b/c"
tar -C "$LOCAL" -cf "$WORK/src.tar" src || fail "tar create"
tar -C "$MNT" -xpf "$WORK/src.tar" --same-owner || fail "tar extract on the mount"
tar -C "$MNT" --compare -f "$WORK/src.tar" >"$WORK/cmp.out" 2>&1 || { cat "$WORK/cmp.out"; fail "tar --compare found differences"; }
diff -r --no-dereference "$src" "$MNT/src" || fail "diff -r differs"
# metadata of every entry (type, mode, owner, size, mtime, link count)
meta() { (cd "$1" && find . -printf '%y %m %U %G %s %T@ %n %l %p\n' | grep -v '^d.* \./\?$' | sort); }
# directory sizes and mtimes of dirs the extraction wrote into differ by design; drop dir sizes
# tar keeps whole seconds of mtime; dirs' sizes and mtimes change as they fill
metaf() { meta "$1" | awk '{$6=int($6)} $1=="d"{$6="";$5=""} {print}' | sort; }
diff <(metaf "$src") <(metaf "$MNT/src") || fail "metadata differs"
[ "$(stat -c %i "$MNT/src/a/hardlink")" = "$(stat -c %i "$MNT/src/a/b/c/f2")" ] || fail "hard link lost"
# and back off the mount
tar -C "$MNT" -cf "$WORK/back.tar" src || fail "tar create from the mount"
mkdir "$LOCAL/back" && tar -C "$LOCAL/back" -xpf "$WORK/back.tar" || fail "tar extract back"
diff -r --no-dereference "$src" "$LOCAL/back/src" || fail "round trip differs"
rm -rf "$MNT/src" || fail "rm -rf on the mount"
[ -z "$(ls -A "$EXPORT")" ] || fail "rm -rf left: $(ls -A "$EXPORT")"
unmount_fs
pass
