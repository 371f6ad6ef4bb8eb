#!/usr/bin/env bash
# versions.sh — one version everywhere: every program's --version prints
# "NAME (dafs) VERSION" with the version of project() in CMakeLists.txt
# (CTest passes it as DAFS_VERSION), exits 0 and writes nothing on stderr;
# every man page's footer says "dafs VERSION".
. "$(dirname "$0")/lib.sh"
: "${DAFS_VERSION:?set DAFS_VERSION to the project version}"
: "${DAFS_MAN_DIR:?set DAFS_MAN_DIR to docs/man}"

for prog in dafs dafsd dafsctl dafs-fuse mount.dafs dafs-bench; do
  [ -x "$DAFS_BIN/$prog" ] || fail "no $prog in $DAFS_BIN"
  for opt in --version -V; do
    rc=0
    out=$("$DAFS_BIN/$prog" $opt 2>"$WORK/err") || rc=$?
    [ "$rc" -eq 0 ] || fail "$prog $opt exited $rc: $(cat "$WORK/err")"
    [ ! -s "$WORK/err" ] || fail "$prog $opt wrote on stderr: $(cat "$WORK/err")"
    [ "$out" = "$prog (dafs) $DAFS_VERSION" ] || fail "$prog $opt printed '$out', expected '$prog (dafs) $DAFS_VERSION'"
  done
  log "$prog: $out"
done

n=0
for page in "$DAFS_MAN_DIR"/*.[0-9]; do
  th=$(grep -m1 '^\.TH ' "$page") || fail "$page has no .TH line"
  footer=$(sed -E 's/^\.TH +[^ ]+ +[0-9] +"[^"]*" +"([^"]*)".*/\1/' <<<"$th")
  [ "$footer" = "dafs $DAFS_VERSION" ] || fail "$(basename "$page") footer says '$footer', expected 'dafs $DAFS_VERSION': $th"
  n=$((n + 1))
done
[ "$n" -ge 5 ] || fail "only $n man pages in $DAFS_MAN_DIR"
log "$n man pages say dafs $DAFS_VERSION"
pass
