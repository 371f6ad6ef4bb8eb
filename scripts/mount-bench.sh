#!/usr/bin/env bash
# mount-bench.sh — everyday workloads on a local directory, on libfuse's own
# passthrough_ll over a local directory (the FUSE floor) and on dafs mounts
# (one per provider), printed as one table with ratios dafs / passthrough_ll.
#
#   scripts/mount-bench.sh [--bin DIR] [--tree DIR] [--repo DIR] [--quick]
#                          [--providers LIST] [--mount-opts OPTS] [--out FILE]
#                          [--targets LIST] [--fio-size SIZE] [--fio-time S]
#                          [--files N]
#
#   --bin DIR         dafsd, dafs-fuse, dafs-bench and passthrough_ll (build/bin)
#   --tree DIR        tree to untar, list, grep and remove (/usr/include)
#   --repo DIR        git repository to clone locally (this source tree's)
#   --quick           tiny sizes (a smoke test: checks the table, not timings)
#   --providers LIST  comma-separated libfabric providers ("tcp;ofi_rxm,shm")
#   --mount-opts OPTS extra dafs-fuse -o options (e.g. attr_timeout=1)
#   --out FILE        also write the table to FILE
#   --targets LIST    which of local,passthrough_ll,dafs to run (all)
#   --fio-size SIZE   fio file size (256M; --quick: 4M)
#   --fio-time S      seconds per fio job (5; --quick: 1)
#   --files N         small files to create and fsync (500; --quick: 20)
#
# Workloads, in order, on each target: tar -xf of the tree, ls -lR, grep -r
# (twice: the second run shows what the page cache keeps), a cached stat
# (µs per call, one file, in a loop), git clone --no-hardlinks of the repo and
# git status in the clone, rm -rf of both, fio (psync, one job) 1 MiB
# sequential write and read and 4 KiB random read and write on one file, and
# small files created with 4 KiB each and fsync'd.  Times are seconds (lower
# is better), the rest rates (higher is better); a ratio is dafs's number
# over passthrough_ll's in the row's unit.  The dafs server runs on this host,
# its export on the same file system as the local directory; libdafs's own
# 1 MiB sequential read (dafs-bench seqread_1m) is measured against the same
# server for comparison.  For the timed workloads the table also gives the
# daemons' CPU time (passthrough_ll; dafsd + dafs-fuse), which a loaded
# machine disturbs much less than elapsed time.  Needs root, /dev/fuse, fio,
# git and python3.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$HERE/../build/bin
TREE=/usr/include
REPO=$(git -C "$HERE/.." rev-parse --show-toplevel 2>/dev/null || echo "")
QUICK=0
PROVIDERS="tcp;ofi_rxm,shm"
MOUNT_OPTS=
OUT=
TARGETS=local,passthrough_ll,dafs
O_FIO_SIZE= O_FIO_TIME= O_NFILES=
while [ $# -gt 0 ]; do
  case $1 in
  --bin) BIN=$2; shift 2 ;;
  --tree) TREE=$2; shift 2 ;;
  --repo) REPO=$2; shift 2 ;;
  --quick) QUICK=1; shift ;;
  --providers) PROVIDERS=$2; shift 2 ;;
  --mount-opts) MOUNT_OPTS=$2; shift 2 ;;
  --out) OUT=$2; shift 2 ;;
  --targets) TARGETS=$2; shift 2 ;;
  --fio-size) O_FIO_SIZE=$2; shift 2 ;;
  --fio-time) O_FIO_TIME=$2; shift 2 ;;
  --files) O_NFILES=$2; shift 2 ;;
  -h | --help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "mount-bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
export FI_TCP_IFACE=${FI_TCP_IFACE:-lo}

die() { echo "mount-bench: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (FUSE mounts)"
[ -c /dev/fuse ] || die "no /dev/fuse"
for t in fio git python3 tar grep; do command -v $t >/dev/null || die "$t not installed"; done
for b in dafsd dafs-fuse; do [ -x "$BIN/$b" ] || die "no $BIN/$b"; done
[ -d "$TREE" ] || die "no tree $TREE"
[ -n "$REPO" ] && [ -d "$REPO" ] || die "no git repository (--repo)"

if [ "$QUICK" = 1 ]; then
  FIO_SIZE=4M FIO_TIME=1 NFILES=20 NSTAT=200
else
  FIO_SIZE=256M FIO_TIME=5 NFILES=500 NSTAT=20000
fi
FIO_SIZE=${O_FIO_SIZE:-$FIO_SIZE} FIO_TIME=${O_FIO_TIME:-$FIO_TIME} NFILES=${O_NFILES:-$NFILES}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dafs-mount-bench.XXXXXX")
chmod 755 "$WORK"
PIDS=()
MOUNTS=()
cleanup() {
  local rc=$? m p
  cd /
  for m in "${MOUNTS[@]}"; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
RESULTS=$WORK/results.tsv
: >"$RESULTS"

# the tree as a tarball, made once (on local storage)
if [ "$QUICK" = 1 ]; then
  mkdir -p "$WORK/src/tree/a/b"
  for i in $(seq 30); do echo "line $i of a small file" >"$WORK/src/tree/a/f$i"; done
  for i in $(seq 10); do seq 1000 >"$WORK/src/tree/a/b/g$i"; done
  tar -cf "$WORK/tree.tar" -C "$WORK/src" tree
else
  tar -cf "$WORK/tree.tar" -C "$(dirname "$TREE")" "$(basename "$TREE")"
fi
tar -tf "$WORK/tree.tar" >"$WORK/tree.list"
NAME=$(sed -n '1s,/.*,,p' "$WORK/tree.list")
STATFILE=$(grep -m1 -v '/$' "$WORK/tree.list")

now() { date +%s.%N; }
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
# CPU time (clock ticks) used so far by the file system daemons of the
# current target (DAEMONS: pids): on a loaded machine a steadier measure of
# the work a design does than elapsed time
DAEMONS=
daemon_ticks() {
  local p sum=0 f
  for p in $DAEMONS; do
    f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    f=${f##*) }
    set -- $f
    sum=$((sum + ${12} + ${13}))
  done
  echo $sum
}
timed() { # target workload command...
  local t=$1 w=$2 t0 t1 c0 c1
  shift 2
  c0=$(daemon_ticks)
  t0=$(now)
  "$@"
  t1=$(now)
  c1=$(daemon_ticks)
  record "$t" "$w" "$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')"
  [ -z "$DAEMONS" ] || record "$t" "cpu_$w" "$(awk -v a="$c1" -v b="$c0" -v hz="$(getconf CLK_TCK)" 'BEGIN { print (a - b) * 1000 / hz }')"
}
fio_run() { # target workload dir rw bs
  local out
  out=$(fio --name=mb --filename="$3/fio.dat" --size=$FIO_SIZE --rw=$4 --bs=$5 --ioengine=psync \
    --runtime=$FIO_TIME --time_based --output-format=json 2>/dev/null) || die "fio $2 failed on $1"
  record "$1" "$2" "$(python3 -c '
import json, sys
j = json.loads(sys.stdin.read())["jobs"][0]
side = j["read"] if j["read"]["io_bytes"] else j["write"]
print(side["iops"] if sys.argv[1] == "iops" else side["bw_bytes"] / 1e6)
' "$([ "$5" = 4k ] && echo iops || echo bw)" <<<"$out")"
}
grep_tree() { grep -r -c zzzq_no_such_string "$1" >/dev/null || true; }
stat_loop() { # target dir
  record "$1" stat "$(python3 -c '
import os, sys, time
p, n = sys.argv[1], int(sys.argv[2])
os.stat(p)
t = time.perf_counter()
for _ in range(n):
    os.stat(p)
print((time.perf_counter() - t) / n * 1e6)
' "$2/$STATFILE" $NSTAT)"
}
small_files() { # target dir
  mkdir "$2/small"
  record "$1" smallfiles "$(python3 -c '
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
buf = b"x" * 4096
t = time.perf_counter()
for i in range(n):
    fd = os.open("%s/f%d" % (d, i), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
    os.write(fd, buf)
    os.fsync(fd)
    os.close(fd)
print(n / (time.perf_counter() - t))
' "$2/small" $NFILES)"
  rm -rf "$2/small"
}

run_workloads() { # target dir
  local t=$1 d=$2
  echo "mount-bench: $t ($d)" >&2
  timed "$t" untar tar -xf "$WORK/tree.tar" -C "$d"
  timed "$t" lslR sh -c "ls -lR '$d/$NAME' >/dev/null"
  timed "$t" grep1 grep_tree "$d/$NAME"
  timed "$t" grep2 grep_tree "$d/$NAME"
  stat_loop "$t" "$d"
  timed "$t" gitclone git clone -q --no-hardlinks "$REPO" "$d/clone"
  timed "$t" gitstatus sh -c "git -C '$d/clone' status --porcelain >/dev/null"
  timed "$t" rmrf rm -rf "$d/$NAME" "$d/clone"
  fio_run "$t" seqwrite "$d" write 1M
  fio_run "$t" seqread "$d" read 1M
  fio_run "$t" randread "$d" randread 4k
  fio_run "$t" randwrite "$d" randwrite 4k
  rm -f "$d/fio.dat"
  small_files "$t" "$d"
}

wait_mounted() { # dir pid
  local i
  for i in $(seq 100); do
    mountpoint -q "$1" && return 0
    kill -0 "$2" 2>/dev/null || die "mount of $1 failed"
    sleep 0.1
  done
  die "$1 not mounted after 10 s"
}

want() { [[ ",$TARGETS," == *",$1,"* ]]; }

# 1. local directory
if want local; then
  mkdir -p "$WORK/local"
  run_workloads local "$WORK/local"
fi

# 2. passthrough_ll over a local directory
if ! want passthrough_ll; then
  :
elif [ -x "$BIN/passthrough_ll" ]; then
  mkdir -p "$WORK/ptsrc" "$WORK/ptmnt"
  "$BIN/passthrough_ll" -f -o source="$WORK/ptsrc" "$WORK/ptmnt" 2>"$WORK/pt.log" &
  PIDS+=($!)
  MOUNTS+=("$WORK/ptmnt")
  wait_mounted "$WORK/ptmnt" "${PIDS[-1]}"
  DAEMONS=${PIDS[-1]}
  run_workloads passthrough_ll "$WORK/ptmnt"
  DAEMONS=
  umount "$WORK/ptmnt"
else
  echo "mount-bench: no $BIN/passthrough_ll: no FUSE floor (ratios omitted)" >&2
fi

# 3. dafs, one server and one mount per provider
PROVS=()
want dafs && IFS=, read -r -a PROVS <<<"$PROVIDERS"
for p in "${PROVS[@]}"; do
  tag=dafs_${p%%;*}
  exp=$WORK/export-$tag mnt=$WORK/mnt-$tag state=$WORK/state-$tag ready=$WORK/ready-$tag
  mkdir -p "$exp" "$mnt"
  mkdir -m 700 "$state" # dafsd refuses a state dir others can read
  FI_PROVIDER=$p "$BIN/dafsd" --export "$exp" --listen 127.0.0.1:0 --state-dir "$state" \
    --ready-file "$ready" --no-root-squash >"$WORK/dafsd-$tag.log" 2>&1 &
  PIDS+=($!)
  for i in $(seq 150); do
    [ -s "$ready" ] && break
    kill -0 "${PIDS[-1]}" 2>/dev/null || die "dafsd ($p) exited: $(tail -n3 "$WORK/dafsd-$tag.log")"
    sleep 0.1
  done
  port=$(head -n1 "$ready")
  url=dafs://127.0.0.1:$port/
  FI_PROVIDER=$p "$BIN/dafs-fuse" "$url" "$mnt" -f -o "provider=$p${MOUNT_OPTS:+,$MOUNT_OPTS}" \
    2>"$WORK/fuse-$tag.log" &
  PIDS+=($!)
  MOUNTS+=("$mnt")
  wait_mounted "$mnt" "${PIDS[-1]}"
  DAEMONS="${PIDS[-2]} ${PIDS[-1]}"
  run_workloads "$tag" "$mnt"
  DAEMONS=
  umount "$mnt"
  # libdafs's own 1 MiB sequential read against the same server
  if [ -x "$BIN/dafs-bench" ]; then
    q=
    [ "$QUICK" = 1 ] && q=--quick
    if js=$(FI_PROVIDER=$p "$BIN/dafs-bench" --url "$url" --provider "$p" $q \
      --workloads seqread_1m --json 2>"$WORK/bench-$tag.log"); then
      v=$(python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
for r in j["results"]:
    if r["workload"] == "seqread_1m" and r["system"] == "dafs":
        print(r["mb_per_s"])
' <<<"$js" 2>/dev/null || true)
      [ -n "$v" ] && record "$tag" libdafs_seqread "$v"
    fi
  fi
done

python3 - "$RESULTS" "$FIO_SIZE" "$(cat /proc/loadavg)" "$MOUNT_OPTS" <<'PY' | tee "${OUT:-/dev/null}"
import sys
rows = [("untar", "tar -xf tree", "s"), ("lslR", "ls -lR", "s"),
        ("grep1", "grep -r", "s"), ("grep2", "grep -r again", "s"),
        ("stat", "stat (cached)", "us"), ("gitclone", "git clone", "s"),
        ("gitstatus", "git status", "s"), ("rmrf", "rm -rf", "s"),
        ("seqwrite", "1MiB seq write", "MB/s"), ("seqread", "1MiB seq read", "MB/s"),
        ("randread", "4KiB rand read", "IOPS"), ("randwrite", "4KiB rand write", "IOPS"),
        ("smallfiles", "4KiB create+fsync", "files/s"),
        ("libdafs_seqread", "libdafs 1MiB seq read", "MB/s")]
rows += [("cpu_" + w, "  daemon CPU: " + label, "ms") for w, label, unit in rows if unit == "s"]
vals, targets = {}, []
for line in open(sys.argv[1]):
    t, w, v = line.rstrip("\n").split("\t")
    vals[(t, w)] = float(v)
    if t not in targets:
        targets.append(t)
dafs = [t for t in targets if t.startswith("dafs_")]
cols = [t for t in targets]
ratio_cols = [d for d in dafs] if "passthrough_ll" in targets else []
def fmt(v):
    if v is None:
        return "-"
    return "%.3g" % v if v < 100 else "%.0f" % v
head = ["workload", "unit"] + cols + ["%s/pt" % d[5:] for d in ratio_cols]
out = [head]
for w, label, unit in rows:
    if not any((t, w) in vals for t in targets):
        continue
    r = [label, unit] + [fmt(vals.get((t, w))) for t in cols]
    for d in ratio_cols:
        a, b = vals.get((d, w)), vals.get(("passthrough_ll", w))
        r.append("%.2fx" % (a / b) if a is not None and b else "-")
    out.append(r)
width = [max(len(r[i]) for r in out) for i in range(len(head))]
print("| " + " | ".join(h.ljust(width[i]) for i, h in enumerate(head)) + " |")
print("|" + "|".join("-" * (x + 2) for x in width) + "|")
for r in out[1:]:
    print("| " + " | ".join(c.ljust(width[i]) if i < 2 else c.rjust(width[i])
                            for i, c in enumerate(r)) + " |")
print()
print("s, us, ms: lower is better; MB/s, IOPS, files/s: higher is better; ratio = dafs / passthrough_ll.")
print("daemon CPU: user+system time of passthrough_ll, or of dafsd + dafs-fuse, during the workload.")
print("fio file %s; load average at the end: %s%s" % (sys.argv[2], sys.argv[3],
      "; dafs-fuse -o " + sys.argv[4] if sys.argv[4] else ""))
PY
