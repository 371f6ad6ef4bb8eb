#!/usr/bin/env bash
# fio-bench.sh — the same fio job, 4 KiB random reads at iodepth 32, on a
# local file and through the dafs fio engine (libdafs_fio.so) on the same file
# served by a dafsd on 127.0.0.1, and the ratio of the two.
#
#   scripts/fio-bench.sh [--build DIR] [--provider NAME] [--size SIZE]
#                        [--runtime SECONDS] [--local-engine ENGINE] [--iodepth N]
#
#   --build DIR          the build tree holding bin/dafsd and lib/libdafs_fio.so
#                        (default: build)
#   --provider NAME      libfabric provider of server and engine (default: tcp;ofi_rxm)
#   --size SIZE          the file's size, a fio size (default: 64m)
#   --runtime SECONDS    each run's duration (default: 10)
#   --local-engine NAME  fio engine of the local run (default: io_uring)
#   --iodepth N          the job's iodepth (default: 32)
#
# The file lives in dafsd's export; it is written once (by fio, locally) and
# both runs read it from the page cache (invalidate=0): the local run through
# the kernel, the dafs run through dafsd.  Prints one line per run (IOPS, MiB/s,
# client CPU per I/O, from fio's JSON) and then
#   ratio dafs/local: IOPS X.XXx, client CPU per I/O X.XXx (provider P, load L)
# The engine is asynchronous by default (fio's iodepth in flight); built with
# -DDAFS_FIO_ASYNC=OFF it is synchronous and fio runs it at depth 1: the ratio line says so.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build provider="tcp;ofi_rxm" size=64m runtime=10 local_engine=io_uring iodepth=32
usage() { sed -n '4,15p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case $1 in
  --build) build=$2; shift 2 ;;
  --provider) provider=$2; shift 2 ;;
  --size) size=$2; shift 2 ;;
  --runtime) runtime=$2; shift 2 ;;
  --local-engine) local_engine=$2; shift 2 ;;
  --iodepth) iodepth=$2; shift 2 ;;
  -h | --help) usage 0 ;;
  *) echo "fio-bench: unknown argument '$1'" >&2; usage ;;
  esac
done
engine=$PWD/$build/lib/libdafs_fio.so
[ "${build#/}" = "$build" ] || engine=$build/lib/libdafs_fio.so
dafsd=${engine%/lib/libdafs_fio.so}/bin/dafsd
[ -f "$engine" ] || { echo "fio-bench: no $engine (configure with the fio headers: scripts/deps.sh, then cmake)" >&2; exit 1; }
[ -x "$dafsd" ] || { echo "fio-bench: no $dafsd" >&2; exit 1; }
command -v fio >/dev/null || { echo "fio-bench: no fio" >&2; exit 1; }
command -v python3 >/dev/null || { echo "fio-bench: no python3 (reads fio's JSON)" >&2; exit 1; }
export FI_TCP_IFACE=${FI_TCP_IFACE:-lo} FI_PROVIDER=$provider

work=$(mktemp -d "${TMPDIR:-/tmp}/dafs-fio-bench.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/export"
mkdir -m 700 "$work/state"
"$dafsd" --export "$work/export" --listen 127.0.0.1:0 --state-dir "$work/state" \
  --ready-file "$work/ready" --no-root-squash >"$work/dafsd.log" 2>&1 &
server_pid=$!
for _ in $(seq 600); do
  [ -s "$work/ready" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/dafsd.log" >&2; echo "fio-bench: dafsd exited" >&2; exit 1; }
  sleep 0.1
done
[ -s "$work/ready" ] || { echo "fio-bench: dafsd not ready after 60 s" >&2; exit 1; }
url=dafs://127.0.0.1:$(head -n1 "$work/ready")/

# One job file, two sections: only the engine (and so the file's name) differs.
cat >"$work/job.fio" <<EOF
[global]
size=$size
bs=4k
rw=randread
iodepth=$iodepth
time_based=1
runtime=$runtime
invalidate=0
randrepeat=0

[local]
ioengine=$local_engine
filename=$work/export/bench.dat

[dafs]
ioengine=external:$engine
dafs_url=$url
filename=bench.dat
EOF

fio --name=layout --filename="$work/export/bench.dat" --rw=write --bs=1m --size="$size" \
  >"$work/layout.out" 2>&1 || { cat "$work/layout.out" >&2; echo "fio-bench: writing the file failed" >&2; exit 1; }

run() { # run SECTION: one fio run of that section, its JSON in $work/SECTION.json
  fio --section="$1" --output-format=json --output="$work/$1.json" "$work/job.fio" \
    >"$work/$1.err" 2>&1 || { cat "$work/$1.err" "$work/$1.json" >&2; echo "fio-bench: the $1 run failed" >&2; exit 1; }
}
run local
run dafs
python3 - "$work/local.json" "$work/dafs.json" "$provider" "$(cut -d' ' -f1-3 /proc/loadavg)" "$iodepth" <<'EOF'
import json, sys

def load(path):
    text = open(path).read()
    job = json.loads(text[text.index("{"):])["jobs"][0]
    rd = job["read"]
    ios = rd["total_ios"] or 1
    # usr_cpu/sys_cpu: percent of one CPU over the job's runtime (ms)
    cpu_us = (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * job["job_runtime"] * 1000.0
    depth1 = float(job["iodepth_level"].get("1", 0)) >= 99.0 and sys.argv[5] != "1"
    return rd["iops"], rd["bw_bytes"] / 1048576.0, cpu_us / ios, rd["clat_ns"]["mean"] / 1000.0, depth1

local, dafs = load(sys.argv[1]), load(sys.argv[2])
for name, r in (("local", local), ("dafs", dafs)):
    print(f"{name:5s}: {r[0]:10.0f} IOPS {r[1]:8.1f} MiB/s  client CPU {r[2]:6.2f} us/IO  "
          f"mean latency {r[3]:8.1f} us")
print(f"ratio dafs/local: IOPS {dafs[0] / local[0]:.2f}x, client CPU per I/O "
      f"{dafs[2] / local[2]:.2f}x (4 KiB randread iodepth={sys.argv[5]}, provider {sys.argv[3]}, "
      f"load {sys.argv[4]})" + (" [dafs engine synchronous: fio ran it at depth 1]" if dafs[4] else ""))
EOF
