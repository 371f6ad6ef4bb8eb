#!/usr/bin/env bash
# deps.sh — install everything dafs needs to build and test, on Debian 12.
#
# Idempotent: if every package is already installed it does nothing (and needs no
# network); otherwise it runs apt-get update once and installs what is missing.
# Runs as root, or through sudo when not root. Quiet on success, loud on failure.
set -euo pipefail

# Every package, and what needs it.  Building only the library and programs
# (cmake -DDAFS_BUILD_TESTS=OFF) needs the first two groups; the rest is for
# the tests, the fuzzer and dafs-bench --plot.
packages=(
  # --- to build: compiler, make, cmake, pkg-config (finds the libraries below);
  #     dpkg-dev is in build-essential, named because `cpack -G DEB` runs its
  #     dpkg-shlibdeps to compute the package's dependencies
  build-essential cmake pkg-config dpkg-dev
  # --- libraries the code links against
  libfabric-dev # libfabric: the transport of every program (providers in libfabric1)
  liburing-dev  # io_uring: dafsd's file I/O
  libsodium-dev # dafsd: the key that makes file handles unforgeable
  liblmdb-dev   # dafsd: lock state (PERSIST locks) that survives a restart
  libfuse3-dev  # dafs-fuse / mount.dafs
  libmicrohttpd-dev # dafsd --metrics-listen (optional: without it dafsd builds without metrics)
  fuse3         # fusermount3: dafs-fuse mounting as a non-root user, `fusermount3 -u`
  # --- tests (scripts/test.sh, ctest)
  libcmocka-dev       # the unit tests (tests/unit); skipped, with a warning, without it
  clang               # the libFuzzer target (build-fuzz); sanitizer build if gcc cannot
  libclang-rt-14-dev  # clang's libFuzzer and sanitizer runtimes
  python3             # checks dafs-bench's JSON (tests/bench)
  openssl             # fast random data for the 1 GiB end-to-end files (tests/integration)
  coreutils util-linux # timeout, sha256sum, mktemp; mountpoint, setpriv, unshare
  fio stress-ng sqlite3 git tar # workloads the FUSE mount tests run (tests/fuse);
                                # fio also runs the dafs fio engine (tests/fio)
  strace # tests/integration/durable.sh watches dafsd's fsyncs
  # --- dafs-bench --plot
  gnuplot-nox
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done

# fio's engine API headers, for the dafs fio engine (src/fio, libdafs_fio.so),
# come only from Debian's fio source package of the installed fio's version:
# `apt-get source` (which needs a deb-src entry, added below if there is none)
# into $fio_cache, outside the git tree, then fio's ./configure there, which
# writes the config-host.h those headers need.  CMake looks for them there
# (DAFS_FIO_SOURCE_DIR).  Failing to get them is not fatal: the build then
# skips the engine and says why.
fio_cache=${DAFS_FIO_CACHE:-/var/cache/dafs/fio-src}

sudo=()
need_root() {
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "deps: need root (or sudo) to $1" >&2
    return 1
  fi
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Two copies of the suite starting at once must not fail on apt's locks: wait
# for them (up to 10 minutes) instead.
apt=(apt-get -q -o DPkg::Lock::Timeout=600)
apt_run() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" "$@"; }

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages already installed"
else
  need_root "install: ${missing[*]}" || exit 1
  echo "deps: installing ${missing[*]}"
  if ! apt_run update >"$log" 2>&1 ||
     ! apt_run install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    cat "$log" >&2
    echo "deps: apt-get failed (output above)" >&2
    exit 1
  fi
  echo "deps: done"
fi

# fio_source: fetch and configure the source of the installed fio, unless
# $fio_cache already holds it (a stamp records the Debian version).
fio_source() {
  local pkg ver upstream dir tmp src
  pkg=$(dpkg-query -W -f='${source:Package}' fio) || return 1
  ver=$(dpkg-query -W -f='${source:Version}' fio) || return 1
  upstream=${ver#*:}
  upstream=${upstream%-*}
  dir=$fio_cache/fio-$upstream
  if [ "$(cat "$dir/.dafs-source-version" 2>/dev/null)" = "$pkg=$ver" ] &&
     [ -f "$dir/config-host.h" ] && [ -f "$dir/ioengines.h" ]; then
    return 0
  fi
  need_root "fetch fio's source into $fio_cache" || return 1
  # A deb-src twin of Debian 12's deb822 sources, if no deb-src entry exists.
  if ! grep -qsE '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
       /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
    [ -f /etc/apt/sources.list.d/debian.sources ] || {
      echo "deps: no deb-src entry and no /etc/apt/sources.list.d/debian.sources to derive one from"
      return 1
    }
    sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
      "${sudo[@]}" tee /etc/apt/sources.list.d/dafs-deb-src.sources >/dev/null || return 1
    echo "deps: added /etc/apt/sources.list.d/dafs-deb-src.sources (deb-src for fio's source)"
  fi
  if ! apt-cache showsrc "$pkg=$ver" 2>/dev/null | grep -q '^Package:'; then
    apt_run update >>"$log" 2>&1 || return 1
  fi
  "${sudo[@]}" mkdir -p "$fio_cache" || return 1
  # One fetch at a time (two copies of the suite may start together).
  (
    flock -w 600 9 || exit 1
    if [ "$(cat "$dir/.dafs-source-version" 2>/dev/null)" = "$pkg=$ver" ] &&
       [ -f "$dir/config-host.h" ]; then
      exit 0
    fi
    tmp=$("${sudo[@]}" mktemp -d "$fio_cache/fetch.XXXXXX") || exit 1
    trap '"${sudo[@]}" rm -rf "$tmp"' EXIT
    # apt-get source checks the .dsc's signature and checksums, unpacks, and
    # applies Debian's patches.  fio's configure takes a few seconds with the
    # optional libraries off; only config-host.h matters here.  Debian's build
    # has some of them on (libaio, rdma, rbd, ...): those CONFIG_* only change
    # engine code and the last member of struct io_u (a union), never a field
    # the dafs engine uses, and fio checks FIO_IOOPS_VERSION when it loads it.
    (cd "$tmp" && "${sudo[@]}" "${apt[@]}" -o APT::Sandbox::User=root source "$pkg=$ver") \
      >>"$log" 2>&1 || exit 1
    src=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'fio-*' | head -n1)
    [ -n "$src" ] && [ -f "$src/ioengines.h" ] || exit 1
    (cd "$src" && "${sudo[@]}" ./configure --disable-native --disable-numa --disable-rdma \
       --disable-rados --disable-rbd --disable-http --disable-gfapi --disable-pmem \
       --disable-xnvme --disable-libzbc --disable-tcmalloc --disable-dfs --disable-libnfs \
       --disable-lex) >>"$log" 2>&1 || exit 1
    [ -f "$src/config-host.h" ] || exit 1
    echo "$pkg=$ver" | "${sudo[@]}" tee "$src/.dafs-source-version" >/dev/null || exit 1
    "${sudo[@]}" rm -rf "$dir" && "${sudo[@]}" mv "$src" "$dir"
  ) 9<"$fio_cache" || return 1
  echo "deps: fio $ver source (engine headers) in $dir"
}

if ! fio_source; then
  cat "$log" >&2
  echo "deps: WARNING: could not get fio's source (output above); the fio engine will not be built" >&2
fi
