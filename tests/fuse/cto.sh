#!/usr/bin/env bash
# cto.sh — close-to-open between two mounts of one server, and page-cache
# keeping when nothing changed.
#  - mount 2 reads a small file (caching its size); mount 1 grows it and
#    closes; mount 2 opens it and reads without fstat (head -c, dd) and must
#    see the whole new length and content, every time, at once (no waiting
#    out the attribute timeout: attr_timeout is set long to make a stale
#    cache obvious).
#  - a rewrite that keeps the size must be seen too (mtime/ctime changed).
#  - a shrink (truncate from mount 1) must be seen at the next open.
#  - a name replaced by rename or removed on mount 1 is seen at the next
#    open on mount 2 (not the old file the cached name led to).
#  - an unchanged file keeps its cached pages across opens (fincore after an
#    open shows them resident), so grep -r does not reread everything.
source "$(dirname "$0")/lib.sh"
start_server
mount_fs -o attr_timeout=30,entry_timeout=30
mount_fs2 -o attr_timeout=30,entry_timeout=30
A=$MNT/f
B=$MNT2/f
for round in 1 2 3 4 5; do
  printf 'short\n' >"$A"
  [ "$(head -c 100000 "$B")" = short ] || fail "round $round: mount 2 did not read the short file"
  # grow it from mount 1 (one open, write, close)
  python3 -c "
import sys
with open(sys.argv[1], 'w') as f:
    f.write(''.join('line %05d of the grown file, round %s\n' % (i, sys.argv[2]) for i in range(100)))
" "$A" "$round"
  want=$(wc -c <"$EXPORT/f")
  got=$(head -c 100000 "$B" | wc -c)
  [ "$got" -eq "$want" ] || fail "round $round: head -c read $got bytes of $want after another mount grew the file"
  got=$(dd if="$B" bs=512 status=none | wc -c)
  [ "$got" -eq "$want" ] || fail "round $round: dd read $got bytes of $want"
  cmp -s "$B" "$EXPORT/f" || fail "round $round: content differs"
  # same size, new content
  python3 -c "
import sys
d = open(sys.argv[1], 'rb').read()
open(sys.argv[1], 'wb').write(d.replace(b'line', b'LINE'))
" "$A"
  head -c 100000 "$B" | grep -q LINE || fail "round $round: same-size rewrite not seen"
  cmp -s "$B" "$EXPORT/f" || fail "round $round: rewritten content differs"
  # shrink
  truncate -s 10 "$A"
  got=$(head -c 100000 "$B" | wc -c)
  [ "$got" -eq 10 ] || fail "round $round: read $got bytes after another mount truncated to 10"
done
log "close-to-open: 5 rounds of grow / rewrite / shrink seen at once"

# names: a file replaced by rename (an editor's atomic save) or removed on
# mount 1 while mount 2 has its name cached.  The old file keeps another
# link (a backup), so it still exists on the server: only the name tells.
for round in 1 2 3; do
  rm -f "$A" "$MNT/f.bak"
  echo "old $round" >"$A"
  [ "$(cat "$B")" = "old $round" ] || fail "round $round: mount 2 did not read the old file"
  ln "$A" "$MNT/f.bak"
  echo "new $round" >"$MNT/f.tmp"
  mv "$MNT/f.tmp" "$A"
  got=$(cat "$B" 2>&1) || true
  [ "$got" = "new $round" ] || fail "round $round: after rename over it, mount 2 read '$got'"
done
[ "$(cat "$B")" = "new 3" ] || fail "mount 2 did not read the new file"
rm "$A"
if got=$(cat "$B" 2>&1); then fail "mount 2 read a file removed by mount 1: '$got'"; fi
[[ "$got" == *"No such file"* ]] || fail "expected ENOENT for a removed file, got: $got"
log "close-to-open for names: rename over and remove seen at once"

# keep_cache: an unchanged file keeps its pages across opens
if command -v fincore >/dev/null 2>&1; then
  head -c $((1 << 20)) /dev/urandom >"$A"
  cat "$B" >/dev/null
  cat "$B" >/dev/null
  # fincore opens the file itself: its open must not drop the pages
  pages=$(fincore -nb -o PAGES "$B" | tr -d ' ')
  [ "${pages:-0}" -ge 200 ] || fail "an unchanged file lost its cached pages at open ($pages pages resident)"
  log "unchanged file kept $pages cached pages across open"
  # ... and a change from the other mount drops them
  printf 'x' | dd of="$A" bs=1 seek=100 conv=notrunc status=none
  cmp -s "$B" "$EXPORT/f" || fail "a one-byte change from mount 1 not seen through mount 2's cache"
else
  log "fincore not installed: page-cache keeping not checked"
fi
unmount_fs2
unmount_fs
pass
