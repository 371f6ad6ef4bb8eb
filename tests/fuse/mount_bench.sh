#!/usr/bin/env bash
# mount_bench.sh — smoke test of scripts/mount-bench.sh: with --quick (tiny
# sizes) over tcp;ofi_rxm it must run every workload on every target and
# print the table with ratios.  Checks the table's shape, not timings.
source "$(dirname "$0")/lib.sh"
need fio
need git
need python3
repo=$WORK/repo
git init -q "$repo"
echo hello >"$repo/README"
git -C "$repo" add README
git -C "$repo" -c user.name=t -c user.email=t@t commit -qm init
out=$WORK/table
bash "$(dirname "$0")/../../scripts/mount-bench.sh" --quick --bin "$DAFS_BIN" \
  --providers "tcp;ofi_rxm" --repo "$repo" --out "$out" >"$WORK/bench.log" 2>&1 ||
  { cat "$WORK/bench.log" >&2; fail "mount-bench.sh failed"; }
cat "$out"
head -n1 "$out" | grep -q "| workload .* local .* dafs_tcp" || fail "no table header"
for w in "tar -xf tree" "ls -lR" "grep -r" "stat (cached)" "git clone" "git status" "rm -rf" \
  "1MiB seq write" "1MiB seq read" "4KiB rand read" "4KiB rand write" "4KiB create+fsync"; do
  grep -q "^| $w " "$out" || fail "no row for $w"
done
if [ -x "$DAFS_BIN/passthrough_ll" ]; then
  grep -q "^| tar -xf tree .*[0-9]x |$" "$out" || fail "no ratio to passthrough_ll"
fi
pass
