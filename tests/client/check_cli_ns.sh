#!/bin/sh
# check_cli_ns.sh DAFS URL — the CLI's cp, mv, ln -s and chmod against a live
# server (run through run_with_server, which appends URL).  Everything is
# checked through the CLI itself: cat, stat, ls.
set -u
dafs=$1 url=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # DESCRIPTION COMMAND... : the command must succeed
  what=$1; shift
  if ! "$@" >"$tmp/out" 2>"$tmp/err"; then
    echo "FAIL $what: $(cat "$tmp/err")"; fails=$((fails + 1))
  fi
}
check_fails() { # DESCRIPTION EXPECTED-STATUS COMMAND...
  what=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; got=$?
  if [ "$got" -ne "$want" ] || [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
    echo "FAIL $what: status $got (want $want), stderr: $(cat "$tmp/err")"; fails=$((fails + 1))
  fi
}

head -c 2500000 /dev/urandom >"$tmp/src"
check "put" "$dafs" put "$tmp/src" "$url/orig"
check "cp" "$dafs" cp "$url/orig" "$url/copy"
check "get copy" "$dafs" get "$url/copy" "$tmp/copy"
cmp -s "$tmp/src" "$tmp/copy" || { echo "FAIL cp: content differs"; fails=$((fails + 1)); }
check "mkdir" "$dafs" mkdir "$url/dir"
check "cp into dir" "$dafs" cp "$url/orig" "$url/dir"
check "mv into dir (bare path)" "$dafs" mv "$url/copy" /dir
check "ls dir" "$dafs" ls "$url/dir"
[ "$(sort "$tmp/out" | tr '\n' ' ')" = "copy orig " ] ||
  { echo "FAIL ls dir after cp/mv: $(cat "$tmp/out")"; fails=$((fails + 1)); }
check "mv rename (URL)" "$dafs" mv "$url/dir/copy" "$url/renamed"
check "ln -s" "$dafs" ln -s dir/orig "$url/link"
check "cat through link" "$dafs" get "$url/link" "$tmp/vialink"
cmp -s "$tmp/src" "$tmp/vialink" || { echo "FAIL ln -s: content differs"; fails=$((fails + 1)); }
check "chmod" "$dafs" chmod 640 "$url/renamed"
check "stat" "$dafs" stat "$url/renamed"
grep -q "0640\|rw-r-----" "$tmp/out" || { echo "FAIL chmod: $(cat "$tmp/out")"; fails=$((fails + 1)); }
check_fails "mv missing" 1 "$dafs" mv "$url/missing" /x
check_fails "cp a directory" 1 "$dafs" cp "$url/dir" /x
check_fails "mv to another server" 1 "$dafs" mv "$url/renamed" "dafs://192.0.2.1:1/x"
check_fails "chmod bad mode" 2 "$dafs" chmod 9z "$url/renamed"
check_fails "ln without -s" 2 "$dafs" ln "$url/renamed" "$url/h"
check_fails "cp usage" 2 "$dafs" cp "$url/renamed"
[ "$fails" -eq 0 ] && echo "cli namespace commands ok"
exit "$fails"
