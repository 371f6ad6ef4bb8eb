#!/usr/bin/env bash
# append.sh — O_APPEND from two mounts: 8 writers (4 per mount) each append
# 500 records of 1..9000 bytes with one write() each, so most records cross a
# page boundary.  Every record must land whole and contiguous: the file must
# parse as 4000 intact records, each writer's in order.
source "$(dirname "$0")/lib.sh"
need python3
start_server
mount_fs
mount_fs2
: >"$MNT/log"
writer='
import os, random, sys
path, wid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(wid)
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
for seq in range(n):
    size = rnd.randint(1, 9000)
    body = (b"%d" % wid) * size
    rec = b"<%d:%d:%d:" % (wid, seq, size) + body + b">\n"
    if os.write(fd, rec) != len(rec):
        sys.exit("short write")
os.close(fd)
'
pids=()
for w in 0 1 2 3 4 5 6 7; do
  m=$MNT
  [ $((w % 2)) -eq 1 ] && m=$MNT2
  python3 -c "$writer" "$m/log" "$w" 500 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "writer $p failed"; done
python3 - "$EXPORT/log" <<'PY' || fail "torn records (see above)"
import re, sys
data = open(sys.argv[1], 'rb').read()
pat = re.compile(rb'<(\d):(\d+):(\d+):([0-9]*)>\n')
pos, good, torn, nxt = 0, 0, 0, [0] * 8
while pos < len(data):
    m = pat.match(data, pos)
    ok = False
    if m:
        w, seq, size, body = int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
        ok = len(body) == size and body == (b"%d" % w) * size and seq == nxt[w]
    if not ok:
        torn += 1
        nl = data.find(b'\n', pos)
        pos = len(data) if nl < 0 else nl + 1
        continue
    nxt[w] += 1
    good += 1
    pos = m.end()
print("records intact: %d, damaged: %d, per writer: %s" % (good, torn, nxt))
sys.exit(0 if good == 4000 and torn == 0 else 1)
PY
log "4000 records from 8 appenders on two mounts, all intact"
unmount_fs2
unmount_fs
pass
