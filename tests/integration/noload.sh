#!/usr/bin/env bash
# noload.sh — libfabric is loaded only when a fabric endpoint is opened.
# Linking it cost every program ~0.2 s before main() (the constructors of
# libpsm2 and libpsm_infinipath that Debian's libfabric pulls in), even
# `dafs --version`.  Checks: no program or libdafs has a DT_NEEDED on
# libfabric; --version and --help of dafs and dafsd never open it; they work
# when libfabric.so.1 is a broken file; and a command that needs the fabric
# then fails with one clear line instead of crashing.
. "$(dirname "$0")/lib.sh"

LIBDAFS=$DAFS_BIN/../lib/libdafs.so.0
[ -e "$LIBDAFS" ] || fail "no libdafs at $LIBDAFS"
for f in "$LIBDAFS" "$DAFS" "$DAFSD"; do
  ! readelf -d "$f" | grep -q 'NEEDED.*libfabric' || fail "$f has a DT_NEEDED on libfabric"
done
log "no DT_NEEDED on libfabric in libdafs, dafs, dafsd"

# The dynamic loader's own trace: libfabric must not be opened.
for cmd in "$DAFS --version" "$DAFS --help" "$DAFSD --version" "$DAFSD --help"; do
  LD_DEBUG=files $cmd >"$WORK/out" 2>"$WORK/ld" || fail "$cmd failed"
  ! grep -q libfabric "$WORK/ld" || fail "$cmd loaded libfabric: $(grep libfabric "$WORK/ld" | head -n 2)"
  [ -s "$WORK/out" ] || fail "$cmd printed nothing"
done
log "--version and --help do not load libfabric"

# A libfabric.so.1 that is not a library at all, found first.
mkdir "$WORK/broken"
echo "this is not an ELF file" >"$WORK/broken/libfabric.so.1"
export LD_LIBRARY_PATH=$WORK/broken${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
v=$("$DAFS" --version) || fail "dafs --version fails when libfabric is broken"
[[ "$v" == "dafs "* ]] || fail "dafs --version printed '$v'"
"$DAFSD" --version >/dev/null || fail "dafsd --version fails when libfabric is broken"
expect_error "$WORK/e" dafs ls "dafs://127.0.0.1:1/"
grep -qi "shared library" "$WORK/e.err" || fail "a broken libfabric is not named: $(cat "$WORK/e.err")"
rc=0
"$DAFSD" --export "$EXPORT" --listen 127.0.0.1:0 --state-dir "$WORK/state" >"$WORK/d.out" 2>"$WORK/d.err" || rc=$?
[ "$rc" -eq 1 ] || fail "dafsd with a broken libfabric exited $rc, expected 1"
grep -q "libfabric.so.1" "$WORK/d.err" || fail "dafsd does not name libfabric: $(cat "$WORK/d.err")"
log "broken libfabric: '$(cat "$WORK/e.err")' / '$(cat "$WORK/d.err")'"
pass
