#!/usr/bin/env bash
# check_deb.sh BUILD_DIR VERSION — `cpack -G DEB` makes a package whose
# contents are all under /usr (mount.dafs a relative link to dafs-fuse, every
# man page, dafs.pc saying prefix=/usr) and whose Depends name the shared
# libraries the programs use (dpkg-shlibdeps).  Installing it is checked by
# hand (README), not here: a test does not install into the machine.
set -euo pipefail
build=$1 version=$2
command -v dpkg-deb >/dev/null 2>&1 && command -v dpkg-shlibdeps >/dev/null 2>&1 ||
  { echo "SKIP: dpkg-deb/dpkg-shlibdeps not installed (dpkg-dev)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dafs-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cpack --config "$build/CPackConfig.cmake" -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log" >&2; fail "cpack -G DEB failed"; }
deb=$(find "$tmp/out" -maxdepth 1 -name 'dafs_*.deb' -print -quit)
[ -n "$deb" ] || { cat "$tmp/cpack.log" >&2; fail "cpack made no dafs_*.deb"; }
echo "built $(basename "$deb")"

[ "$(dpkg-deb -f "$deb" Package)" = dafs ] || fail "Package: $(dpkg-deb -f "$deb" Package)"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "Version: $(dpkg-deb -f "$deb" Version)"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for lib in libc6 libfabric1 libfuse3-3 liburing2 libsodium23; do
  [[ "$depends" == *"$lib "* || "$depends" == *"$lib," || "$depends" == *"$lib" ]] ||
    fail "Depends does not name $lib: $depends"
done

dpkg-deb -c "$deb" >"$tmp/contents"
outside=$(awk '{print $6}' "$tmp/contents" | grep -v -e '^\./usr/' -e '^\./$' -e '^\./usr/$' || true)
[ -z "$outside" ] || fail "files outside /usr: $outside"
for f in usr/bin/dafs usr/bin/dafs-fuse usr/bin/dafs-bench usr/sbin/dafsd usr/include/dafs/dafs.h \
         usr/share/man/man1/dafs.1 usr/share/man/man1/dafs-bench.1 usr/share/man/man3/libdafs.3 \
         usr/share/man/man8/dafsd.8 usr/share/man/man8/dafs-fuse.8 usr/share/man/man8/mount.dafs.8; do
  grep -q " \./$f\$" "$tmp/contents" || fail "$f not in the package"
done
grep -q ' \./usr/sbin/mount\.dafs -> \.\./bin/dafs-fuse$' "$tmp/contents" ||
  fail "no usr/sbin/mount.dafs -> ../bin/dafs-fuse: $(grep mount.dafs "$tmp/contents")"
grep -qE ' \./usr/lib/([a-z0-9_-]+/)?libdafs\.so\.0 -> ' "$tmp/contents" || fail "no libdafs.so.0 in usr/lib"

dpkg-deb -x "$deb" "$tmp/root"
pc=$(find "$tmp/root" -name dafs.pc -print -quit)
[ -n "$pc" ] && grep -qx 'prefix=/usr' "$pc" || fail "dafs.pc missing or not prefix=/usr: ${pc:+$(head -n1 "$pc")}"
echo "deb ok"
