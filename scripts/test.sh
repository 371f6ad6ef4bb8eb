#!/usr/bin/env bash
# test.sh — the README's second command (and what CI runs): install, build,
# run the whole test suite.
#
# Phases:
#   1. scripts/deps.sh (idempotent)
#   2. normal build in build/, then ctest
#   3. ASan+UBSan build in build-asan/ (-DDAFS_SANITIZE=ON), then ctest with
#      leak detection and halt-on-UB
#   4. libFuzzer build of fuzz_decode in build-fuzz/ (clang, -DDAFS_FUZZ=ON),
#      run for DAFS_FUZZ_SECONDS (default 60) over fuzz/corpus
# Every phase runs even if an earlier one failed.  The last line printed is
# "N passed, N failed" (all ctest tests of both passes, plus the fuzz run as
# one test; a build that fails counts as one failed test; skipped tests are
# reported on the line before and counted in neither).  Exit status is
# non-zero if anything failed.
#
# Environment knobs: DAFS_TEST_JOBS (default 2), DAFS_FUZZ_SECONDS (60),
# DAFS_TEST_TIMEOUT (per-test timeout in seconds, default 600),
# DAFS_CTEST_ARGS (extra ctest arguments, e.g. "-LE slow").
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD

export FI_TCP_IFACE=lo
jobs=${DAFS_TEST_JOBS:-2}
fuzz_seconds=${DAFS_FUZZ_SECONDS:-60}
test_timeout=${DAFS_TEST_TIMEOUT:-600}
read -r -a extra_ctest_args <<<"${DAFS_CTEST_ARGS:-}"

passed=0
failed=0
skipped=0
timings=()

phase_start() { phase_name=$1; phase_t0=$SECONDS; printf '\n===== %s =====\n' "$1"; }
phase_end() { timings+=("$(printf '%-28s %4ds' "$phase_name" $((SECONDS - phase_t0)))"); }

# Run ctest in build dir $1 and add its counts to the totals.
run_ctest() {
  local dir=$1 log
  log=$(mktemp)
  ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout "$test_timeout" \
    "${extra_ctest_args[@]}" 2>&1 | tee "$log"
  local summary total nfail nskip
  summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1)
  if [ -n "$summary" ]; then
    nfail=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$summary")
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$summary")
    # ctest counts skipped tests (SKIP_RETURN_CODE) as passed; we do not.
    nskip=$(grep -cE '^[[:space:]]*[0-9]+ - .* \(Skipped\)$' "$log" || true)
    passed=$((passed + total - nfail - nskip))
    failed=$((failed + nfail))
    skipped=$((skipped + nskip))
  elif grep -q 'No tests were found' "$log"; then
    echo "test.sh: no tests in $dir"
  else
    echo "test.sh: ctest in $dir produced no summary; counting one failure"
    failed=$((failed + 1))
  fi
  rm -f "$log"
}

# Configure and build: build_tree DIR [cmake args...]; returns non-zero on failure.
build_tree() {
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j"$jobs"
}

phase_start "dependencies"
if ! ./scripts/deps.sh; then
  echo "test.sh: dependency installation failed"
  echo "0 passed, 1 failed"
  exit 1
fi
phase_end

# Pass 1: the normal build.
phase_start "build (normal)"
build_tree build
build_ok=$?
phase_end
phase_start "ctest (normal)"
if [ $build_ok -eq 0 ]; then run_ctest build; else echo "test.sh: normal build FAILED"; failed=$((failed + 1)); fi
phase_end

# Pass 2: AddressSanitizer + UndefinedBehaviorSanitizer.  gcc (the compiler
# the normal build uses, so -Werror sees the same warnings) when it can link
# the sanitizers; clang (libclang-rt-14-dev) otherwise.
sanitize_cc=
for cc in gcc clang; do
  if command -v "$cc" >/dev/null 2>&1 &&
     echo 'int main(void){return 0;}' |
       "$cc" -x c -fsanitize=address,undefined -o /dev/null - 2>/dev/null; then
    sanitize_cc=$cc
    break
  fi
done
phase_start "build (asan+ubsan, ${sanitize_cc:-none})"
build_ok=1
[ -n "$sanitize_cc" ] && build_tree build-asan -DDAFS_SANITIZE=ON -DCMAKE_C_COMPILER="$sanitize_cc" &&
  build_ok=0
phase_end
phase_start "ctest (asan+ubsan)"
if [ $build_ok -eq 0 ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:${ASAN_OPTIONS:-} \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-} \
  LSAN_OPTIONS=suppressions=$root/scripts/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-} \
    run_ctest build-asan
else
  echo "test.sh: sanitizer build FAILED"
  failed=$((failed + 1))
fi
phase_end

# Pass 3: the libFuzzer target over the codec, for a bounded time.  New
# inputs go to build-fuzz/corpus; the checked-in fuzz/corpus is only read.
phase_start "fuzz (fuzz_decode, ${fuzz_seconds}s)"
fuzz_ok=1
if cmake -S "$root" -B build-fuzz -DDAFS_FUZZ=ON -DCMAKE_C_COMPILER=clang >/dev/null &&
   cmake --build build-fuzz -j"$jobs" --target fuzz_decode; then
  fuzzer=$(find build-fuzz -type f -name fuzz_decode -perm -u+x | head -n1)
  mkdir -p build-fuzz/corpus
  seeds=()
  [ -d fuzz/corpus ] && seeds=(fuzz/corpus)
  if [ -n "$fuzzer" ] &&
     "$fuzzer" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix=build-fuzz/ build-fuzz/corpus "${seeds[@]}" >build-fuzz/fuzz.log 2>&1; then
    tail -n 12 build-fuzz/fuzz.log
    fuzz_ok=0
  else
    tail -n 60 build-fuzz/fuzz.log 2>/dev/null
    echo "test.sh: fuzz_decode FAILED (log: build-fuzz/fuzz.log${fuzzer:+, crash inputs: build-fuzz/crash-*})"
  fi
else
  echo "test.sh: fuzz build FAILED"
fi
if [ $fuzz_ok -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
phase_end

printf '\n===== timings =====\n'
printf '%s\n' "${timings[@]}"
printf 'total %ds\n\n' "$SECONDS"
[ "$skipped" -eq 0 ] || echo "($skipped skipped, counted in neither number; see the ctest output)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
