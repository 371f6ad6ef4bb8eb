#!/bin/sh
# check_man_example.sh LIBDAFS.3 EXAMPLE.C — the EXAMPLE section of the man
# page must be the tested example program, verbatim (roff's \e is a backslash).
set -eu
page=$1 example=$2
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
sed -n '/^\.SH EXAMPLE/,/^\.SH NOTES/p' "$page" | sed -n '/^\.EX$/,/^\.EE$/p' |
  sed '1d;$d' | sed 's/\\e/\\/g' >"$tmp"
if ! cmp -s "$tmp" "$example"; then
  echo "the man page's example differs from $example:" >&2
  diff -u "$example" "$tmp" >&2 || true
  exit 1
fi
echo "man page example matches $example"
