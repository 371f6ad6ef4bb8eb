#!/usr/bin/env bash
# deps.sh — install everything dafs needs to build and test, on Debian 12.
#
# Idempotent: if every package is already installed it does nothing (and needs no
# network); otherwise it runs apt-get update once and installs what is missing.
# Runs as root, or through sudo when not root. Quiet on success, loud on failure.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config clang libclang-rt-14-dev
  # libraries dafs links against
  libfabric-dev liburing-dev libfuse3-dev fuse3 libsodium-dev liblmdb-dev
  libcmocka-dev libinih-dev
  # tools the scripts and tests use
  libfabric-bin procps xxd coreutils python3 openssl
  # dafs-bench --plot
  gnuplot-nox
  # workloads the FUSE mount tests run (tests/fuse)
  fio stress-ng sqlite3 git tar util-linux
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
if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1 ||
   ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
       apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
  cat "$log" >&2
  echo "deps: apt-get failed (output above)" >&2
  exit 1
fi
echo "deps: done"
