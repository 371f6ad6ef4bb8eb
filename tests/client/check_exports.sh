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
  diff -u "$(printf '%s\n' "$want" >/tmp/want.$$ && echo /tmp/want.$$)" \
          "$(printf '%s\n' "$got" >/tmp/got.$$ && echo /tmp/got.$$)" >&2 || true
  rm -f /tmp/want.$$ /tmp/got.$$
  exit 1
fi
echo "exports ok: $(printf '%s\n' "$got" | wc -l) functions"
