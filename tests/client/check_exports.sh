#!/bin/sh
# check_exports.sh LIBDAFS.so DAFS.H — the shared library must export exactly
# the functions declared in the public header, nothing more (no codec or
# transport symbols), nothing less.
set -eu
lib=$1 header=$2
want=$(sed -n 's/^[a-z0-9_ ]*[ *]\(dafs_[a-z_]*\)(.*/\1/p' "$header" | sort -u)
got=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TtWw]$/ {print $3}' | sed 's/@.*//' | sort -u)
if [ "$want" != "$got" ]; then
  echo "exported symbols differ from dafs.h:" >&2
  tmp=$(mktemp -d)
  printf '%s\n' "$want" >"$tmp/want"
  printf '%s\n' "$got" >"$tmp/got"
  diff -u "$tmp/want" "$tmp/got" >&2 || true
  rm -rf "$tmp"
  exit 1
fi
echo "exports ok: $(printf '%s\n' "$got" | wc -l) functions"
