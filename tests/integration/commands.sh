#!/usr/bin/env bash
# commands.sh — every CLI command once against a live server, checking both
# what the CLI prints and what happened in the exported directory.
. "$(dirname "$0")/lib.sh"
start_server

dafs mkdir "$URL/box" || fail "mkdir failed"
[ -d "$EXPORT/box" ] || fail "mkdir did not create the directory"
printf 'line one\nline two\n' >"$LOCAL/hello.txt"
dafs put "$LOCAL/hello.txt" "$URL/box/hello.txt" || fail "put failed"

out=$(dafs cat "$URL/box/hello.txt") || fail "cat failed"
[ "$out" = $'line one\nline two' ] || fail "cat printed '$out'"

out=$(dafs ls "$URL/box") || fail "ls failed"
[ "$out" = "hello.txt" ] || fail "ls printed '$out', expected 'hello.txt'"
out=$(dafs ls -l "$URL/box") || fail "ls -l failed"
grep -q 'hello.txt' <<<"$out" || fail "ls -l does not show hello.txt: $out"
grep -qw '18' <<<"$out" || fail "ls -l does not show the size 18: $out"
out=$(dafs ls "$URL/") || fail "ls of the root failed"
grep -qx "box" <<<"$out" || fail "ls of the root does not list box: $out"

out=$(dafs stat "$URL/box/hello.txt") || fail "stat failed"
grep -qw '18' <<<"$out" || fail "stat does not show the size 18: $out"
out=$(dafs stat "$URL/box") || fail "stat of a directory failed"
grep -Eqi "directory|drwx|40755" <<<"$out" || fail "stat of a directory does not say it is one: $out"

out=$(dafs df "$URL/") || fail "df failed"
[ -n "$out" ] || fail "df printed nothing"

dafs rm "$URL/box/hello.txt" || fail "rm failed"
[ ! -e "$EXPORT/box/hello.txt" ] || fail "rm left the file in place"
out=$(dafs ls "$URL/box") || fail "ls of an empty directory failed"
[ -z "$out" ] || fail "ls of an empty directory printed '$out'"
dafs rmdir "$URL/box" || fail "rmdir failed"
[ ! -e "$EXPORT/box" ] || fail "rmdir left the directory in place"

stop_server
pass
