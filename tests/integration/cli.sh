#!/usr/bin/env bash
# cli.sh — the command line behaves as coreutils users expect: options after
# the command and combined (ls -la), several operands (rm, mkdir, get, put),
# rm -f and -r, mkdir -p, get into a directory, symbolic chmod modes, the
# set-user-ID/set-group-ID/sticky bits in ls -l and stat, and exit status 2
# (one line) for every usage error.
. "$(dirname "$0")/lib.sh"
umask 022 # the symbolic modes without u/g/o/a below depend on it
start_server
e=$WORK/e

# expect_usage CMD...: exit status 2 and one "dafs: " line.
expect_usage() {
  local rc=0
  "$@" >"$e.out" 2>"$e.err" || rc=$?
  [ "$rc" -eq 2 ] || fail "'$*' exited $rc, expected 2 (usage error): $(cat "$e.err")"
  [ "$(wc -l <"$e.err")" -eq 1 ] && grep -q '^dafs: ' "$e.err" ||
    fail "'$*' did not print one 'dafs: ' line: $(cat "$e.err")"
  log "usage error as expected: $(cat "$e.err")"
}

# ---- options anywhere, combined short options ----
mkdir "$EXPORT/d"
printf 'x\n' >"$EXPORT/d/visible"
printf 'y\n' >"$EXPORT/d/.hidden"
out=$(dafs ls "$URL/d") || fail "ls failed"
[ "$out" = "visible" ] || fail "ls without -a showed '$out' (names starting with '.' are hidden, as ls does)"
out=$(dafs ls -la "$URL/d") || fail "ls -la failed"
names() { awk '{print $NF}' <<<"$1" | LC_ALL=C sort | tr '\n' ' '; }
[ "$(names "$out")" = ". .. .hidden visible " ] || fail "ls -la does not show . .. .hidden visible: $out"
grep -q '^-rw' <<<"$out" || fail "ls -la is not a long listing: $out"
out=$(dafs ls "$URL/d" -l -A) || fail "ls URL -l -A (options after the operand) failed"
[ "$(names "$out")" = ".hidden visible " ] || fail "ls -A does not show just .hidden and visible: $out"
out=$(dafs ls "$URL/d" --provider "$FI_PROVIDER" -1) || fail "--provider after the command failed"
[ "$out" = "visible" ] || fail "ls with --provider after the command printed '$out'"
out=$(dafs ls -ld "$URL/d") || fail "ls -ld failed"
grep -q '^d.* d$' <<<"$out" || fail "ls -ld did not describe the directory itself: $out"
out=$(dafs ls -- "$URL/d") || fail "ls -- URL failed"

expect_usage dafs ls -z "$URL/d"
expect_usage dafs ls --symbolic "$URL/d" # another command's option
expect_usage dafs -l ls "$URL/d"         # a command option before the command
expect_usage dafs --bogus
expect_usage dafs ls "$URL/d" --provider
expect_usage dafs frobnicate "$URL/d"
expect_usage dafs
expect_usage dafs cp "$URL/d/visible"
expect_usage dafs ln "$URL/d/visible" "$URL/d/hard"
expect_usage dafs rm
rc=0; "$DAFS" ls --help >/dev/null || rc=$?; [ "$rc" -eq 0 ] || fail "ls --help exited $rc"

# ---- set-user-ID, set-group-ID and sticky bits are shown ----
: >"$EXPORT/suid"; chmod 4755 "$EXPORT/suid"
: >"$EXPORT/sgid-nox"; chmod 2644 "$EXPORT/sgid-nox"
mkdir "$EXPORT/sticky"; chmod 1777 "$EXPORT/sticky"
mkdir "$EXPORT/sticky-nox"; chmod 1770 "$EXPORT/sticky-nox"
out=$(dafs ls -l "$URL/suid" "$URL/sgid-nox" "$URL/sticky" "$URL/sticky-nox" -d) || fail "ls -ld of special modes failed"
grep -q '^-rwsr-xr-x .* suid$' <<<"$out" || fail "ls -l lost the set-user-ID bit: $out"
grep -q '^-rw-r-Sr-- .* sgid-nox$' <<<"$out" || fail "ls -l lost the set-group-ID bit: $out"
grep -q '^drwxrwxrwt .* sticky$' <<<"$out" || fail "ls -l lost the sticky bit: $out"
grep -q '^drwxrwx--T .* sticky-nox$' <<<"$out" || fail "ls -l lost the sticky bit (no x): $out"
out=$(dafs stat "$URL/suid") || fail "stat failed"
grep -q '^mode: 4755 (-rwsr-xr-x)$' <<<"$out" || fail "stat lost the set-user-ID bit: $out"

# ---- chmod: octal and symbolic modes, several URLs ----
: >"$EXPORT/m1"; : >"$EXPORT/m2"; chmod 0644 "$EXPORT/m1" "$EXPORT/m2"
mode() { stat -c %a "$EXPORT/$1"; }
dafs chmod u+x,go-r "$URL/m1" "$URL/m2" || fail "chmod u+x,go-r failed"
[ "$(mode m1)" = 700 ] && [ "$(mode m2)" = 700 ] || fail "chmod u+x,go-r gave $(mode m1) $(mode m2), expected 700"
dafs chmod a=r "$URL/m1" || fail "chmod a=r failed"
[ "$(mode m1)" = 444 ] || fail "chmod a=r gave $(mode m1)"
dafs chmod g=u,o+w "$URL/m2" || fail "chmod g=u,o+w failed"
[ "$(mode m2)" = 772 ] || fail "chmod g=u,o+w gave $(mode m2), expected 772"
dafs chmod -w "$URL/m2" || fail "chmod -w (a mode that looks like an option) failed"
[ "$(mode m2)" = 572 ] || fail "chmod -w gave $(mode m2), expected 572 (umask 022 keeps g+w and o+w, as chmod(1))"
dafs chmod u+s,o+t "$URL/m2" || fail "chmod u+s,o+t failed"
[ "$(mode m2)" = 5572 ] || fail "chmod u+s,o+t gave $(mode m2), expected 5572"
dafs chmod a-x+X "$URL/sticky" || fail "chmod a-x+X on a directory failed"
[ "$(mode sticky)" = 1777 ] || fail "chmod a-x+X on a directory gave $(mode sticky), expected 1777"
dafs chmod 640 "$URL/m1" || fail "chmod 640 failed"
[ "$(mode m1)" = 640 ] || fail "chmod 640 gave $(mode m1)"
for bad in 9z u+q 'x' 888 '+r,' 'a=r,,g+w' 77777 ''; do
  expect_usage dafs chmod "$bad" "$URL/m1"
  grep -q "invalid mode" "$e.err" || fail "chmod '$bad' did not say the mode is invalid: $(cat "$e.err")"
done
[ "$(mode m1)" = 640 ] || fail "a chmod with a bad mode changed the mode to $(mode m1)"
expect_error "$e" dafs chmod 600 "$URL/missing"

# ---- rm: many, -f, -r ----
: >"$EXPORT/r1"; : >"$EXPORT/r2"; : >"$EXPORT/r3"
dafs rm "$URL/r1" "$URL/r2" || fail "rm of two files failed"
[ ! -e "$EXPORT/r1" ] && [ ! -e "$EXPORT/r2" ] || fail "rm of two files left one"
: >"$EXPORT/r1"
expect_error "$e" dafs rm "$URL/r1" "$URL/missing" "$URL/r3"
grep -qF "$URL/missing" "$e.err" || fail "rm did not name the missing file: $(cat "$e.err")"
[ ! -e "$EXPORT/r1" ] && [ ! -e "$EXPORT/r3" ] || fail "rm stopped at the missing file instead of going on"
dafs rm -f "$URL/missing" "$URL/also-missing" || fail "rm -f of missing files failed"
dafs rm -f || fail "rm -f without operands failed"
mkdir -p "$EXPORT/tree/a/b" "$EXPORT/tree/c"
: >"$EXPORT/tree/a/b/f"; : >"$EXPORT/tree/a/.g"; : >"$EXPORT/tree/c/h"
expect_error "$e" dafs rm "$URL/tree"
[ -d "$EXPORT/tree" ] || fail "rm without -r removed a directory"
dafs rm -rf "$URL/tree" "$URL/no-such-tree" || fail "rm -rf failed"
[ ! -e "$EXPORT/tree" ] || fail "rm -r left $(find "$EXPORT/tree")"

# ---- mkdir -p, mkdir and rmdir of many ----
dafs mkdir -p "$URL/p/q/r" || fail "mkdir -p failed"
[ -d "$EXPORT/p/q/r" ] || fail "mkdir -p did not make p/q/r"
dafs mkdir -p "$URL/p/q" || fail "mkdir -p of an existing directory failed"
dafs mkdir --provider "$FI_PROVIDER" -p "$URL/p/s/t" || fail "mkdir --provider NAME -p failed"
[ -d "$EXPORT/p/s/t" ] || fail "mkdir --provider NAME -p did not make p/s/t"
dafs mkdir "$URL/m-a" "$URL/m-b" || fail "mkdir of two directories failed"
[ -d "$EXPORT/m-a" ] && [ -d "$EXPORT/m-b" ] || fail "mkdir of two made $(ls "$EXPORT")"
dafs rmdir "$URL/m-a" "$URL/m-b" || fail "rmdir of two failed"
[ ! -e "$EXPORT/m-a" ] && [ ! -e "$EXPORT/m-b" ] || fail "rmdir of two left one"
expect_error "$e" dafs mkdir "$URL/p"

# ---- cat of many, get into a directory, get of many, put of many ----
printf 'one\n' >"$EXPORT/g1"; printf 'two\n' >"$EXPORT/g2"
rc=0
out=$(dafs cat "$URL/g1" "$URL/missing" "$URL/g2" 2>"$e.err") || rc=$?
[ "$rc" -eq 1 ] && [ "$out" = $'one\ntwo' ] && [ "$(wc -l <"$e.err")" -eq 1 ] ||
  fail "cat of three URLs, one missing: exit $rc, printed '$out', stderr $(cat "$e.err")"
mkdir "$LOCAL/into"
dafs get "$URL/g1" "$LOCAL/into" || fail "get into an existing directory failed"
[ "$(cat "$LOCAL/into/g1")" = one ] || fail "get into a directory did not write into/g1"
dafs get "$URL/g1" "$URL/g2" "$LOCAL/into/" || fail "get of two files into a directory failed"
[ "$(cat "$LOCAL/into/g2")" = two ] || fail "get of two files did not write into/g2"
expect_error "$e" dafs get "$URL/g1" "$URL/g2" "$LOCAL/into/g1"
(cd "$LOCAL" && "$DAFS" get "$URL/g2") || fail "get without a local name failed"
[ "$(cat "$LOCAL/g2")" = two ] || fail "get without a local name did not write ./g2"
printf 'keep mode\n' >"$LOCAL/g1"; chmod 600 "$LOCAL/g1"
dafs get "$URL/g1" "$LOCAL/g1" || fail "get over an existing file failed"
[ "$(cat "$LOCAL/g1")" = one ] && [ "$(stat -c %a "$LOCAL/g1")" = 600 ] ||
  fail "get over an existing file: '$(cat "$LOCAL/g1")' mode $(stat -c %a "$LOCAL/g1"), expected 'one' mode 600"
dafs get "$URL/g1" /dev/null || fail "get to /dev/null failed"
# As cp: no replacing a local file we may not write (run as nobody; not
# over shm, whose regions belong to root).
if [ "$(id -u)" -eq 0 ] && [ "${FI_PROVIDER:-}" != shm ] && command -v setpriv >/dev/null 2>&1; then
  chmod 755 "$WORK" "$LOCAL"
  printf 'not yours\n' >"$LOCAL/ro"; chmod 644 "$LOCAL/ro"
  rc=0
  setpriv --reuid=65534 --regid=65534 --clear-groups "$DAFS" get "$URL/g1" "$LOCAL/ro" >"$e.out" 2>"$e.err" || rc=$?
  [ "$rc" -eq 1 ] && [ "$(wc -l <"$e.err")" -eq 1 ] && grep -q "^dafs: get $LOCAL/ro: Permission denied" "$e.err" ||
    fail "get over a file nobody may not write: exit $rc, $(cat "$e.err")"
  [ "$(cat "$LOCAL/ro")" = "not yours" ] || fail "get replaced a file the user may not write"
  chmod 700 "$WORK"
fi
[ -c /dev/null ] || fail "get replaced /dev/null"
[ -z "$(find "$LOCAL" -name '.*.dafs-*')" ] || fail "temporary files left: $(find "$LOCAL" -name '.*.dafs-*')"
mkdir "$EXPORT/up"
dafs put "$LOCAL/into/g1" "$LOCAL/into/g2" "$URL/up" || fail "put of two files into a directory failed"
[ "$(cat "$EXPORT/up/g1")" = one ] && [ "$(cat "$EXPORT/up/g2")" = two ] || fail "put of two files: $(ls "$EXPORT/up")"
expect_error "$e" dafs put "$LOCAL/into/g1" "$LOCAL/into/g2" "$URL/g1"
[ -z "$(find "$EXPORT" -name '.*.dafs-*')" ] || fail "temporary files left on the server: $(find "$EXPORT" -name '.*.dafs-*')"

stop_server
pass
