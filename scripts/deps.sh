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
  fio stress-ng sqlite3 git tar # workloads the FUSE mount tests run (tests/fuse)
  # --- dafs-bench --plot
  gnuplot-nox
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages already installed"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "deps: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Two copies of the suite starting at once must not fail on apt's locks: wait
# for them (up to 10 minutes) instead.
apt=(apt-get -q -o DPkg::Lock::Timeout=600)
if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >"$log" 2>&1 ||
   ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
       "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
  cat "$log" >&2
  echo "deps: apt-get failed (output above)" >&2
  exit 1
fi
echo "deps: done"
