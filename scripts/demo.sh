#!/usr/bin/env bash
# demo.sh — the README's first command: install, build, and show dafs working.
#
# Installs the dependencies (scripts/deps.sh), builds into build/, starts a
# dafsd on 127.0.0.1 (a free port) exporting a fresh scratch directory, and
# drives it with the `dafs` command-line client, printing each step: put a
# 64 MiB random file, list, stat, get it back and compare checksums, cat a
# small text file, df, rm.  The server is stopped by PID and everything is
# cleaned up on exit.  Exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

export FI_TCP_IFACE=lo  # keep all traffic on loopback
# The provider: DAFS_PROVIDER or FI_PROVIDER if the caller set one, else TCP.
if [ -z "${DAFS_PROVIDER:-}" ] && [ -z "${FI_PROVIDER:-}" ]; then
  export FI_PROVIDER="tcp;ofi_rxm"
fi

step() { printf '\n==> %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "Installing dependencies (scripts/deps.sh)"
./scripts/deps.sh

step "Building (cmake -S . -B build && cmake --build build -j2)"
cmake -S . -B build >/dev/null
cmake --build build -j2 >/dev/null
bin=$PWD/build/bin

work=$(mktemp -d /tmp/dafs-demo.XXXXXX)
server_pid=
cleanup() {
  local rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  if [ "$rc" -eq 0 ]; then echo; echo "demo: all steps succeeded"; else echo "demo: FAILED (exit $rc)" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
mkdir -p "$work/export" "$work/local"
mkdir -m 700 "$work/state" # dafsd refuses a state dir others can read

step "Starting dafsd on 127.0.0.1 (free port), exporting $work/export (provider ${DAFS_PROVIDER:-$FI_PROVIDER})"
# The client runs as the same user on the same machine, so its uid is not
# squashed (dafsd maps root to nobody by default).
printf '$ %s\n' "dafsd --export $work/export --listen 127.0.0.1:0 --state-dir $work/state --ready-file $work/ready --no-root-squash &"
"$bin/dafsd" --export "$work/export" --listen 127.0.0.1:0 --state-dir "$work/state" \
  --ready-file "$work/ready" --no-root-squash >"$work/dafsd.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  [ -s "$work/ready" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/dafsd.log" >&2; echo "demo: dafsd exited early" >&2; exit 1; }
  sleep 0.1
done
[ -s "$work/ready" ] || { cat "$work/dafsd.log" >&2; echo "demo: dafsd not ready after 10 s" >&2; exit 1; }
port=$(head -n1 "$work/ready")
url="dafs://127.0.0.1:$port"
echo "dafsd is serving at $url (pid $server_pid)"

dafs() { printf '$ dafs %s\n' "$*"; "$bin/dafs" "$@"; }

step "Creating a 64 MiB random file and putting it on the server"
head -c $((64 << 20)) /dev/urandom >"$work/local/random.bin"
dafs put "$work/local/random.bin" "$url/random.bin"
printf 'Hello from dafs!\nThis text went over libfabric.\n' >"$work/local/hello.txt"
dafs put "$work/local/hello.txt" "$url/hello.txt"
dafs mkdir "$url/subdir"

step "Listing the export"
dafs ls -l "$url/"

step "Attributes of the big file"
dafs stat "$url/random.bin"

step "Getting it back and comparing checksums"
dafs get "$url/random.bin" "$work/local/random.back"
sum_put=$(sha256sum <"$work/local/random.bin" | cut -d' ' -f1)
sum_get=$(sha256sum <"$work/local/random.back" | cut -d' ' -f1)
echo "sent:     $sum_put"
echo "received: $sum_get"
[ "$sum_put" = "$sum_get" ] || { echo "demo: checksums differ" >&2; exit 1; }
echo "checksums match"

step "Reading a small text file"
dafs cat "$url/hello.txt"

step "Free space on the export"
dafs df "$url/"

step "Removing what we made"
dafs rm "$url/random.bin"
dafs rm "$url/hello.txt"
dafs rmdir "$url/subdir"
dafs ls "$url/"
[ -z "$(ls -A "$work/export")" ] || { echo "demo: export not empty after rm" >&2; exit 1; }
echo "export directory is empty again"

step "Stopping dafsd (pid $server_pid)"
kill -TERM "$server_pid"
wait "$server_pid"
server_pid=
