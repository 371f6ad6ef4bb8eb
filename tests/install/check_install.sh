#!/usr/bin/env bash
# check_install.sh BUILD_DIR CONFIGURED_PREFIX VERSION CC RUN_WITH_SERVER EXAMPLE_C [CFLAGS...]
#
# `cmake --install` gives working programs wherever it installs:
#  1. --prefix P (a scratch directory): every file lands under P and where it
#     belongs (programs, mount.dafs as a relative link to dafs-fuse, library,
#     header, dafs.pc, every man page); the installed dafs and dafsd run and
#     find P's libdafs.so.0 without LD_LIBRARY_PATH; dafs.pc names P; the man
#     page's example program builds with `pkg-config --cflags --libs dafs`
#     (PKG_CONFIG_PATH=P/lib/pkgconfig) and runs against the installed dafsd.
#  2. DESTDIR=S with the configured prefix (as packagers install): everything
#     lands under S/CONFIGURED_PREFIX, nothing elsewhere, dafs.pc names the
#     configured prefix, and the staged programs still run.
# CFLAGS are added when compiling the example (the sanitizer flags of an
# ASan build, whose libdafs needs them).  (No `cmd | grep -q` here: with
# pipefail, grep leaving early fails the pipeline when cmd gets SIGPIPE.)
set -euo pipefail
build=$1 configured_prefix=$2 version=$3 cc=$4 run_with_server=$5 example_c=$6
shift 6
cflags=("$@")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dafs-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "[install] $*"; }
unset LD_LIBRARY_PATH

# check_tree ROOT PREFIX_AS_WRITTEN RUNPATH: the installed files under ROOT.
# RUNPATH "required": the programs must find ROOT's library by themselves;
# "if-any": configured for a system library directory (no RUNPATH), so the
# staged programs are run with LD_LIBRARY_PATH.
check_tree() {
  local root=$1 written_prefix=$2 runpath=$3 libdir f
  libdir=$(cd "$root" && dirname "$(find . -name libdafs.so.0 -print -quit)")
  libdir=${libdir#./}
  [ -n "$libdir" ] && [ "$libdir" != . ] || fail "no libdafs.so.0 under $root"
  for f in bin/dafs bin/dafs-fuse bin/dafs-bench sbin/dafsd sbin/dafsctl; do
    [ -f "$root/$f" ] && [ -x "$root/$f" ] || fail "$root/$f missing or not executable"
  done
  [ -L "$root/sbin/mount.dafs" ] || fail "$root/sbin/mount.dafs is not a symlink"
  [[ "$(readlink "$root/sbin/mount.dafs")" != /* ]] ||
    fail "mount.dafs links to an absolute path: $(readlink "$root/sbin/mount.dafs")"
  [ "$(readlink -f "$root/sbin/mount.dafs")" = "$(readlink -f "$root/bin/dafs-fuse")" ] ||
    fail "mount.dafs resolves to $(readlink -f "$root/sbin/mount.dafs"), not dafs-fuse"
  for f in "$libdir/libdafs.so" "$libdir/libdafs.a" "$libdir/pkgconfig/dafs.pc" include/dafs/dafs.h \
           share/man/man1/dafs.1 share/man/man1/dafs-bench.1 share/man/man3/libdafs.3 \
           share/man/man8/dafsd.8 share/man/man8/dafsctl.8 share/man/man8/dafs-fuse.8 \
           share/man/man8/mount.dafs.8; do
    [ -e "$root/$f" ] || fail "$root/$f missing"
  done
  grep -qx '\.so man8/dafs-fuse\.8' "$root/share/man/man8/mount.dafs.8" ||
    fail "mount.dafs.8 is not a link to dafs-fuse.8: $(cat "$root/share/man/man8/mount.dafs.8")"
  grep -qx "prefix=$written_prefix" "$root/$libdir/pkgconfig/dafs.pc" ||
    fail "dafs.pc does not say prefix=$written_prefix: $(head -n1 "$root/$libdir/pkgconfig/dafs.pc")"
  # the programs run, and take libdafs from this tree, not the build tree
  if [[ "$(readelf -d "$root/bin/dafs")" != *"RUNPATH"*'$ORIGIN'* ]]; then
    [ "$runpath" = if-any ] || fail "$root/bin/dafs has no \$ORIGIN RUNPATH: $(readelf -d "$root/bin/dafs" | grep -i path || echo none)"
    export LD_LIBRARY_PATH=$root/$libdir
  fi
  for f in bin/dafs bin/dafs-fuse bin/dafs-bench; do
    [[ "$(ldd "$root/$f")" == *"libdafs.so.0 => $root/"* ]] ||
      fail "$root/$f does not find $root's libdafs.so.0: $(ldd "$root/$f" | grep libdafs || echo none)"
  done
  [[ "$("$root/bin/dafs" --version)" == "dafs "* ]] || fail "$root/bin/dafs --version failed"
  [[ "$("$root/sbin/dafsd" --version)" == "dafsd "* ]] || fail "$root/sbin/dafsd --version failed"
  log "$root: files in place, dafs and dafsd run ($("$root/bin/dafs" --version | head -n1))"
  unset LD_LIBRARY_PATH
}

# check_manifest ROOT: every file the install wrote is under ROOT.
check_manifest() {
  local outside
  outside=$(grep -v "^$1/" "$build/install_manifest.txt" || true)
  [ -z "$outside" ] || fail "installed outside $1: $outside"
}

# 1. --prefix
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "cmake --install --prefix $prefix failed"; }
check_manifest "$prefix"
check_tree "$prefix" "$prefix" required

pcdir=$(dirname "$(find "$prefix" -name dafs.pc -print -quit)")
export PKG_CONFIG_PATH=$pcdir
[ "$(pkg-config --modversion dafs)" = "$version" ] || fail "pkg-config --modversion dafs: $(pkg-config --modversion dafs)"
read -r -a pc_flags <<<"$(pkg-config --cflags --libs dafs)" || fail "pkg-config --cflags --libs dafs failed"
log "pkg-config --cflags --libs dafs: ${pc_flags[*]}"
"$cc" "${cflags[@]}" -o "$tmp/example" "$example_c" "${pc_flags[@]}" ||
  fail "the example does not build against the installed library"
ldd_line=$(LD_LIBRARY_PATH=$(pkg-config --variable=libdir dafs) ldd "$tmp/example" | grep libdafs || true)
[[ "$ldd_line" == *"=> $prefix/"* ]] || fail "the example does not load the installed libdafs: $ldd_line"
LD_LIBRARY_PATH=$(pkg-config --variable=libdir dafs) \
  "$run_with_server" "$prefix/sbin/dafsd" "$tmp/example" >"$tmp/example.out" 2>&1 ||
  { cat "$tmp/example.out" >&2; fail "the example built against the installed library failed against the installed dafsd"; }
log "example built with pkg-config ran against the installed dafsd"

# 2. DESTDIR, configured prefix
stage=$tmp/stage
DESTDIR=$stage cmake --install "$build" >"$tmp/install2.log" 2>&1 ||
  { cat "$tmp/install2.log" >&2; fail "DESTDIR=$stage cmake --install failed"; }
check_manifest "$configured_prefix" # the manifest leaves DESTDIR out
outside=$(cd "$stage" && find . ! -type d | grep -v "^\.$configured_prefix/" || true)
[ -z "$outside" ] || fail "DESTDIR install wrote outside the prefix: $outside"
check_tree "$stage$configured_prefix" "$configured_prefix" if-any
echo "install ok"
