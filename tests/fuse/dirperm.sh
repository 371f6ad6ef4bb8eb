#!/usr/bin/env bash
# dirperm.sh — search permission on a directory is checked even when the
# kernel has its children cached.  uid 1000 owns d/f and d/sub/g in root's
# 0755 directory d and uses them (so the kernel caches the names), then root
# takes the search permission away (chmod 0700 d), from the other mount and
# from the same one.  At once (names and attributes are cached for 30 s here)
# uid 1000 must get EACCES opening, chmodding, truncating and linking d/f,
# and (same mount) opening d/sub/g, exactly as on a local file system;
# from the other mount, d/sub/g within the 1 s window for directories above
# the parent.  A file chmodded 0600 on the other mount cannot be opened by
# uid 1000 at once.
source "$(dirname "$0")/lib.sh"
need setpriv
start_server
mount_fs -o attr_timeout=30,entry_timeout=30
mount_fs2 -o attr_timeout=30,entry_timeout=30
as1000() { setpriv --reuid=1000 --regid=1000 --clear-groups "$@"; }
mkdir -m 755 "$MNT/d" "$MNT/d/sub" "$MNT/own"
echo data >"$MNT/d/f"
echo data >"$MNT/d/sub/g"
chown 1000:1000 "$MNT/d/f" "$MNT/d/sub/g" "$MNT/own"

warm() {
  chmod 755 "$MNT/d"
  as1000 cat "$MNT/d/f" "$MNT/d/sub/g" >/dev/null || fail "uid 1000 cannot read its files in a 0755 dir"
  as1000 chmod 644 "$MNT/d/f" || fail "uid 1000 cannot chmod its file in a 0755 dir"
  as1000 stat "$MNT/d/f" "$MNT/d/sub/g" >/dev/null || fail "stat"
}
denied() { # what... command...
  local what=$1 out
  shift
  if out=$(as1000 "$@" 2>&1); then fail "$what: uid 1000 succeeded through a directory it may not search ($where)"; fi
  [[ "$out" == *"Permission denied"* ]] || fail "$what: expected EACCES ($where), got: $out"
}
for where in "other mount" "same mount"; do
  warm
  if [ "$where" = "other mount" ]; then chmod 700 "$MNT2/d"; else chmod 700 "$MNT/d"; fi
  denied "open" cat "$MNT/d/f"
  denied "open for write" sh -c "echo x >> '$MNT/d/f'"
  denied "chmod" chmod 600 "$MNT/d/f"
  denied "truncate" truncate -s 0 "$MNT/d/f"
  denied "link" ln "$MNT/d/f" "$MNT/own/l"
  if [ "$where" = "same mount" ]; then
    denied "open two levels down" cat "$MNT/d/sub/g"
  fi
  [ "$(cat "$EXPORT/d/f")" = data ] || fail "d/f changed on the server ($where)"
  [ ! -e "$EXPORT/own/l" ] || fail "link made on the server ($where)"
  log "$where: EACCES at once"
done
# a grandparent made unsearchable from the other mount: the names are cached
# for 30 s, but an open checks the directories above the parent again once
# they were last checked more than 1 s ago
warm
chmod 700 "$MNT2/d"
deadline=$((SECONDS + 5))
while as1000 cat "$MNT/d/sub/g" >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || fail "uid 1000 still opens d/sub/g 5 s after d lost search permission on the other mount"
  sleep 0.1
done
log "other mount, two levels down: EACCES within the 1 s window"
# a file's own mode changed on the other mount: no cached access decision
# survives it (the open sees the new ctime)
chmod 755 "$MNT2/d"
echo data >"$MNT/d/r"
chmod 644 "$MNT/d/r"
as1000 cat "$MNT/d/r" >/dev/null || fail "uid 1000 cannot read a 0644 file"
chmod 600 "$MNT2/d/r"
where="file mode changed on the other mount"
denied "open" cat "$MNT/d/r"
# what an open file allows stays allowed, as locally: uid 1000 holds d/f open
# read-write, d loses search permission, then fchmod, futimens and ftruncate
# through the open file still work
chmod 755 "$MNT/d"
# a python3 that uid 1000 may run (not one under root's home)
PY1000=/usr/bin/python3
as1000 "$PY1000" -c pass 2>/dev/null || skip "no python3 runnable by uid 1000"
code='
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
print("open", flush=True)
sys.stdin.readline()
os.fchmod(fd, 0o640)
os.utime(fd, (1, 1))
os.ftruncate(fd, 2)
print("ok", flush=True)
'
coproc HOLD { as1000 "$PY1000" -c "$code" "$MNT/d/f" 2>&1; }
read -r -t 10 line <&"${HOLD[0]}" || fail "holder did not open d/f"
[ "$line" = open ] || fail "holder: $line"
chmod 700 "$MNT/d"
echo go >&"${HOLD[1]}"
read -r -t 10 line <&"${HOLD[0]}" || line="no answer"
[ "$line" = ok ] || fail "fchmod/futimens/ftruncate through an open file failed after chmod 700 d: $line"
[ "$(stat -c %a:%s "$EXPORT/d/f")" = 640:2 ] || fail "the open file's changes did not reach the server"
log "an open file keeps fchmod/futimens/ftruncate after its directory lost search permission"
# and access comes back when the permission does
chmod 755 "$MNT2/d"
as1000 cat "$MNT/d/f" >/dev/null || fail "uid 1000 cannot read d/f after chmod 755 from the other mount"
as1000 truncate -s 0 "$MNT/d/f" || fail "uid 1000 cannot truncate its file again"
# a name the kernel got from a directory listing (readdirplus, no LOOKUP):
# its open checks the directory's search permission too
echo data >"$MNT2/d/listed"
chmod 644 "$MNT2/d/listed"
ls -l "$MNT/d" >/dev/null || fail "ls -l d"
chmod 700 "$MNT2/d"
where="name from a listing"
denied "open" cat "$MNT/d/listed"
chmod 755 "$MNT2/d"
as1000 cat "$MNT/d/listed" >/dev/null || fail "uid 1000 cannot read d/listed after chmod 755"
log "a name from a listing: EACCES at once"
unmount_fs2
unmount_fs
pass
