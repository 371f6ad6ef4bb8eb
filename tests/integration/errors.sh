#!/usr/bin/env bash
# errors.sh — failures are reported, not hidden, and nothing escapes the
# export: missing files, missing directories, rm of a directory, '..' and
# symlinks that point outside the export, bad URLs, no server at all.  Every
# failure must exit non-zero with exactly one "dafs: ..." line on stderr.
. "$(dirname "$0")/lib.sh"
export DAFS_CLI_TIMEOUT=60
start_server
e=$WORK/e

# A secret outside the export that no request may reveal or touch.
token="secret-$RANDOM$RANDOM"
echo "$token" >"$WORK/secret"
mkdir -p "$EXPORT/sub"
printf 'small\n' >"$LOCAL/small"

# Missing file: the error names the URL.
expect_error "$e" dafs get "$URL/missing" "$LOCAL/out"
grep -qF "$URL/missing" "$e.err" || fail "error for a missing file does not name the URL: $(cat "$e.err")"
expect_error "$e" dafs cat "$URL/missing"
expect_error "$e" dafs stat "$URL/missing"
expect_error "$e" dafs rm "$URL/missing"

# Put into a directory that does not exist.
expect_error "$e" dafs put "$LOCAL/small" "$URL/nodir/x"
[ ! -e "$EXPORT/nodir" ] || fail "put to a missing directory created it"
# Put of a local file that does not exist.
expect_error "$e" dafs put "$LOCAL/does-not-exist" "$URL/x"

# rm of a directory fails and leaves it; rmdir of a non-empty one too.
expect_error "$e" dafs rm "$URL/sub"
[ -d "$EXPORT/sub" ] || fail "rm removed a directory"
: >"$EXPORT/sub/keep"
expect_error "$e" dafs rmdir "$URL/sub"
[ -e "$EXPORT/sub/keep" ] || fail "rmdir of a non-empty directory removed its contents"
expect_error "$e" dafs mkdir "$URL/sub"

# '..' may not climb out of the export, whatever the client sends.
for path in "/../etc/passwd" "/sub/../../etc/passwd" "/../secret" "/sub/../../secret" "/.." "/../"; do
  rc=0
  dafs cat "$URL$path" >"$e.out" 2>"$e.err" || rc=$?
  ! grep -q '^root:' "$e.out" || fail "cat $URL$path printed /etc/passwd"
  ! grep -qF "$token" "$e.out" || fail "cat $URL$path printed a file outside the export"
  case $path in
    */passwd | */secret) [ "$rc" -ne 0 ] || fail "cat $URL$path succeeded" ;;
  esac
  log "cat $URL$path: exit $rc, nothing outside the export shown"
done
rc=0
dafs ls "$URL/.." >"$e.out" 2>"$e.err" || rc=$?
! grep -qx "$(basename "$EXPORT")" "$e.out" || fail "ls $URL/.. listed the export's parent"

# Symlinks inside the export are never followed by the server.
ln -s /etc/passwd "$EXPORT/passwd-link"
ln -s "$WORK/secret" "$EXPORT/secret-link"
ln -s "$WORK" "$EXPORT/dir-link"
ln -s "$WORK/outside" "$EXPORT/dangling-link"
for path in passwd-link secret-link dir-link/secret; do
  expect_error "$e" dafs cat "$URL/$path"
  ! grep -q '^root:' "$e.out" || fail "cat $path printed /etc/passwd"
  ! grep -qF "$token" "$e.out" || fail "cat $path printed a file outside the export"
  expect_error "$e" dafs get "$URL/$path" "$LOCAL/got"
  [ ! -s "$LOCAL/got" ] || ! grep -qE "^root:|$token" "$LOCAL/got" || fail "get $path fetched a file outside the export"
  rm -f "$LOCAL/got"
done
expect_error "$e" dafs put "$LOCAL/small" "$URL/dir-link/planted"
[ ! -e "$WORK/planted" ] || fail "put through a symlinked directory wrote outside the export"
rc=0
dafs put "$LOCAL/small" "$URL/dangling-link" >/dev/null 2>&1 || rc=$?
[ ! -e "$WORK/outside" ] || fail "put to a dangling symlink created a file outside the export"
[ "$(cat "$WORK/secret")" = "$token" ] || fail "the secret outside the export was modified"
dafs put "$LOCAL/small" "$URL/secret-link" >/dev/null 2>&1 || true
[ "$(cat "$WORK/secret")" = "$token" ] || fail "put to a symlink overwrote a file outside the export"

# Bad URLs: the one line says which part is wrong.
while IFS='|' read -r bad says; do
  expect_error "$e" dafs cat "$bad"
  grep -q "Malformed dafs:// URL: .*" "$e.err" && grep -qF "$says" "$e.err" || fail "cat '$bad' did not say '$says': $(cat "$e.err")"
done <<EOF
http://127.0.0.1:$PORT/x|the scheme must be dafs://
127.0.0.1:$PORT/x|missing scheme
dafs://|empty host
dafs://:$PORT/x|empty host
dafs://127.0.0.1:notaport/x|bad port
dafs://127.0.0.1:99999/x|bad port
dafs://[::1:$PORT/x|closing ']'
dafs://::1/x|needs brackets
dafs://127.0.0.1:$PORT/x?y|not supported
|empty URL
EOF
# No command / unknown command: non-zero.
rc=0; "$DAFS" >/dev/null 2>&1 || rc=$?; [ "$rc" -ne 0 ] || fail "dafs with no arguments exited 0"
rc=0; "$DAFS" frobnicate "$URL/x" >/dev/null 2>&1 || rc=$?; [ "$rc" -ne 0 ] || fail "dafs frobnicate exited 0"

# The server survived all of that.
out=$(dafs ls "$URL/sub") || fail "server stopped answering after the error cases"
[ "$out" = "keep" ] || fail "ls after the error cases printed '$out'"

# No server: a clear error within a few seconds, no hang.
stop_server
t0=$(date +%s%N)
DAFS_CLI_TIMEOUT=30 expect_error "$e" dafs ls "$URL/"
ms=$((($(date +%s%N) - t0) / 1000000))
log "no server: failed after $ms ms"
[ "$ms" -lt 10000 ] || fail "with no server the client took $ms ms to fail (limit 10 s)"

# Root squashed (dafsd's default): root's "Permission denied" says why.
if [ "$(id -u)" -eq 0 ]; then
  start_server --root-squash
  expect_error "$e" dafs put "$LOCAL/small" "$URL/squashed"
  grep -q "Permission denied (root is mapped to the anonymous user unless dafsd runs with --no-root-squash)" "$e.err" ||
    fail "root's EACCES under root squash does not mention it: $(cat "$e.err")"
  [ ! -e "$EXPORT/squashed" ] || fail "a squashed root created a file in a 0755 root directory"
  stop_server
else
  log "not root: root squash message not checked"
fi
pass
