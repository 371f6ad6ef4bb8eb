#!/usr/bin/env bash
# engine.sh — fio through the dafs engine (libdafs_fio.so) against a real
# dafsd: a random read/write job and a sequential 1 MiB write job, both with
# crc32c verification of everything written; then the data is checked where
# it landed (its size on the export, and fio's local verify of the same job
# there), a corrupted byte must make the engine's verify fail, and a job
# without a server URL must fail with a message.  CTest sets
# DAFS_FIO_ENGINE_SO (empty: the engine was not built, DAFS_FIO_WHY says why)
# and, under the sanitizers, DAFS_FIO_PRELOAD.
if [ -z "${DAFS_FIO_ENGINE_SO:-}" ]; then
  echo "[engine] SKIP: the fio engine was not built: ${DAFS_FIO_WHY:-unknown reason}"
  exit 77
fi
if [ "${DAFS_FIO_PRELOAD:-}" = none ]; then
  echo "[engine] SKIP: this compiler's sanitizer runtime cannot be preloaded into fio"
  exit 77
fi
. "$(dirname "$0")/../integration/lib.sh"
TEST_NAME=fio_engine
command -v fio >/dev/null || fail "no fio program"
ENGINE=$DAFS_FIO_ENGINE_SO
[ -f "$ENGINE" ] || fail "no engine at $ENGINE"

# Under the sanitizers fio runs with their runtime preloaded, its jobs as
# threads (--thread; a job process ends with _exit, which skips the leak
# check).  fio itself leaks a little at exit (its option strings, its file
# table): LeakSanitizer then only reports (exitcode=0), and check_leaks fails
# the test for a leak whose stack has a frame in libdafs or the engine.
sanitized=()
if [ -n "${DAFS_FIO_PRELOAD:-}" ]; then
  sanitized=(env LD_PRELOAD="$DAFS_FIO_PRELOAD" LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}exitcode=0")
fi
# Ours: a frame symbolized to a file of this tree's src/, or in a libdafs module.
SRC_DIR=$(cd "$(dirname "$0")/../../src" && pwd)/
check_leaks() {
  awk -v src="$SRC_DIR" '
       function ours(b) { return index(b, src) > 0 || b ~ /libdafs/ }
       /^(Direct|Indirect) leak/ { block = $0; inleak = 1; next }
       inleak && /^$/ { if (ours(block)) { print block; bad = 1 } inleak = 0; next }
       inleak { block = block "\n" $0 }
       END { if (inleak && ours(block)) { print block; bad = 1 } exit bad }' "$1" ||
    fail "$(basename "$1"): memory leaked in libdafs or the engine (above)"
}

# dfio OUT ARGS...: one fio job through the engine (engine options after
# --ioengine), output in $WORK/OUT; returns fio's status.
dfio() {
  local out=$WORK/$1 rc=0
  shift
  timeout -k 5 120 "${sanitized[@]}" fio --thread "$1" --ioengine=external:"$ENGINE" "${@:2}" >"$out" 2>&1 ||
    rc=$?
  check_leaks "$out"
  return "$rc"
}
# expect_ok OUT WHAT: fio's run in OUT succeeded, without an I/O or verify error.
expect_ok() {
  grep -q 'err= 0' "$WORK/$1" && ! grep -qiE 'verify: bad|verify failed|bad magic|fio: .*err' "$WORK/$1" ||
    { cat "$WORK/$1"; fail "$2: fio reported errors"; }
}

start_server
mkdir "$EXPORT/sub"
cd "$WORK" # fio leaves a verify state file in its directory when a verify fails

# 1. One fio run (each connection costs a second or two on a loaded
#    machine), two jobs at once:
#    - randrw: random 4 KiB reads and writes at iodepth 32, all verified; the
#      URL from the environment;
#    - seq: sequential 1 MiB writes then their verify, below a directory of
#      the export given in the URL option: 4 writes, 4 verify reads.
rand=(--name=randrw --filename=rand.dat --rw=randrw --bs=4k --size=4m --iodepth=32
      --verify=crc32c --do_verify=1 --verify_fatal=1)
seq=(--name=seq --filename=seq.dat --rw=write --bs=1m --size=4m --verify=crc32c --do_verify=1
     --verify_fatal=1)
DAFS_URL=$URL/ dfio both.out "${rand[@]}" "${seq[0]}" --ioengine=external:"$ENGINE" "${seq[@]:1}" \
  --dafs_url="$URL/sub" ||
  { cat "$WORK/both.out"; fail "the verify jobs failed"; }
expect_ok both.out "the verify jobs"
[ "$(grep -c 'err= 0' "$WORK/both.out")" -eq 2 ] || { cat "$WORK/both.out"; fail "expected two jobs without errors"; }
grep -q 'issued rwts: total=4,4,0,0' "$WORK/both.out" ||
  { cat "$WORK/both.out"; fail "sequential job: expected 4 writes and 4 verify reads"; }
grep -qE 'issued rwts: total=[1-9][0-9]{2,},[1-9][0-9]{2,},' "$WORK/both.out" ||
  { cat "$WORK/both.out"; fail "randrw job: expected hundreds of reads and writes"; }
[ "$(stat -c %s "$EXPORT/rand.dat")" -eq $((4 << 20)) ] ||
  fail "rand.dat on the export has $(stat -c %s "$EXPORT/rand.dat") bytes, expected 4 MiB"
[ "$(stat -c %s "$EXPORT/sub/seq.dat")" -eq $((4 << 20)) ] ||
  fail "sub/seq.dat on the export has $(stat -c %s "$EXPORT/sub/seq.dat") bytes, expected 4 MiB"
log "randrw 4k iodepth=32 and sequential 1m, verify=crc32c: ok ($(grep -o 'issued rwts: total=[0-9,]*' "$WORK/both.out" | tr '\n' ' '))"

# 2. The same verify, by fio on the server's own file: the data really is there.
timeout -k 5 120 fio --name=seq --filename="$EXPORT/sub/seq.dat" --rw=write --bs=1m --size=4m \
  --verify=crc32c --verify_only --verify_fatal=1 >"$WORK/local.out" 2>&1 ||
  { cat "$WORK/local.out"; fail "fio's local verify of the file the engine wrote failed"; }
log "the file the engine wrote passes fio's local verify on the export"

# 3. The engine's verify sees corruption: one byte changed on the server.
printf 'X' | dd of="$EXPORT/sub/seq.dat" bs=1 seek=$((2 << 20)) conv=notrunc status=none
if dfio bad.out "${seq[@]}" --dafs_url="$URL/sub" --verify_only; then
  cat "$WORK/bad.out"
  fail "verify through the engine passed on a corrupted file"
fi
grep -q 'verify: bad' "$WORK/bad.out" || { cat "$WORK/bad.out"; fail "corrupted file: failed, but not in verify"; }
log "a corrupted byte fails the engine's verify"

# 4. No server URL: a clear error, not a hang or a crash.
if (unset DAFS_URL; dfio nourl.out --name=nourl --filename=x --size=1m); then
  fail "a job without dafs_url or DAFS_URL succeeded"
fi
grep -q 'dafs: no server' "$WORK/nourl.out" || { cat "$WORK/nourl.out"; fail "no 'dafs: no server' message"; }
check_leaks "$WORK/nourl.out" # (its check in the subshell above could only fail the subshell)

stop_server
pass
