#!/usr/bin/env bash
# ops.sh — dafsctl, the admin socket, the statistics and the Prometheus
# endpoint of a real dafsd:
#  - the socket is STATE_DIR/admin.sock, mode 0600; dafsctl version names the
#    metrics URL;
#  - sessions list shows a raw-protocol client (ops_client) and a libdafs one
#    (session_holder) by id and client name, and the raw one's open file;
#  - stats counts exactly the requests a known sequence made (per operation,
#    errors too; READ_DIRECT's bytes include the data);
#  - /metrics, scraped while the client works, is Prometheus text (every
#    sample's family has a # TYPE line first) and its counters grow; other
#    paths get 404, POST 405;
#  - sessions evict: the client's next request gets BADSESSION (libdafs:
#    "Session unknown to the server"), the session leaves the list; an
#    unknown id is an error (exit 1);
#  - bad admin requests (unknown, empty, too long, binary, silent, hang-up)
#    get an ERR line, and dafsd keeps serving;
#  - SIGTERM removes the socket; after SIGKILL a restart replaces the stale one.
. "$(dirname "$0")/../integration/lib.sh"
DAFSCTL=$DAFS_BIN/dafsctl
OPS_CLIENT=$DAFS_BIN/ops_client
HOLDER=$DAFS_BIN/session_holder
for p in "$DAFSCTL" "$OPS_CLIENT" "$HOLDER"; do
  [ -x "$p" ] || fail "$p not built"
done
SOCK=$WORK/state/admin.sock
ctl() { timeout -k 5 30 "$DAFSCTL" --state-dir "$WORK/state" "$@"; }

# A dafsd built without libmicrohttpd must refuse --metrics-listen clearly
# (usage error); the metrics checks are then skipped, the rest still runs.
HAVE_METRICS=true
if "$DAFSD" --help | grep -q "not in this build"; then
  HAVE_METRICS=false
  rc=0
  "$DAFSD" --export "$EXPORT" --metrics-listen 127.0.0.1:0 2>"$WORK/err" || rc=$?
  [ "$rc" -eq 2 ] && grep -q "built without libmicrohttpd" "$WORK/err" ||
    fail "--metrics-listen without libmicrohttpd: rc $rc, $(cat "$WORK/err")"
  log "SKIP metrics checks: dafsd built without libmicrohttpd (and says so)"
  start_server
else
  start_server --metrics-listen 127.0.0.1:0
fi
[ -S "$SOCK" ] || fail "no admin socket at $SOCK"
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "admin socket mode $(stat -c %a "$SOCK"), expected 600"
ctl version >"$WORK/version" || fail "dafsctl version failed"
grep -q "^dafsd " "$WORK/version" || fail "version: no dafsd line: $(cat "$WORK/version")"
METRICS=$(awk '$1 == "metrics" {print $2}' "$WORK/version")
if $HAVE_METRICS; then
  [[ "$METRICS" =~ ^http://127\.0\.0\.1:[0-9]+/metrics$ ]] || fail "version names metrics '$METRICS'"
  log "metrics at $METRICS"
fi

# ---- a raw client holding a session -------------------------------------
coproc CL { "$OPS_CLIENT" "$PORT"; }
track_pid "$CL_PID"
cl() { # cl COMMAND: send it, expect "ok..." back; prints the answer
  local answer
  echo "$1" >&"${CL[1]}"
  read -r -t 60 answer <&"${CL[0]}" || fail "ops_client: no answer to '$1'"
  echo "$answer"
}
cl_ok() { local a; a=$(cl "$1"); [[ "$a" == ok* ]] || fail "ops_client '$1': $a"; echo "${a#ok }"; }

SID=$(cl_ok "connect ops-raw-client")
[[ "$SID" =~ ^[0-9a-f]{16}$ ]] || fail "session id '$SID'"
ctl sessions list >"$WORK/list" || fail "sessions list failed"
grep -q "^$SID  *ops-raw-client " "$WORK/list" || fail "sessions list lacks $SID: $(cat "$WORK/list")"
ctl sessions --json >"$WORK/list.json" || fail "sessions --json failed"
python3 - "$WORK/list.json" "$SID" <<'EOF' || fail "sessions --json does not list the session"
import json, sys
d = json.load(open(sys.argv[1]))
s = [x for x in d["sessions"] if x["id"] == sys.argv[2]]
assert len(s) == 1 and s[0]["client"] == "ops-raw-client" and d["total"] >= 1, d
assert s[0]["credits"] >= 1 and s[0]["in_use"] == 0, s
EOF
log "sessions list shows $SID"

# ---- exact counts ----------------------------------------------------------
cl_ok getroot >/dev/null
cl_ok "open counted" >/dev/null
ctl sessions --json >"$WORK/list.json" || fail "sessions --json failed"
python3 - "$WORK/list.json" "$SID" <<'EOF' || fail "sessions list does not show the open file"
import json, sys
s = [x for x in json.load(open(sys.argv[1]))["sessions"] if x["id"] == sys.argv[2]]
assert s[0]["opens"] == 1, s
EOF
ctl stats --json >"$WORK/before.json" || fail "stats --json failed"
scrape() { $HAVE_METRICS || { touch "$1"; echo 200; return; }; curl -sS --max-time 30 -o "$1" -w '%{http_code}' "$METRICS"; }
[ "$(scrape "$WORK/m1")" = 200 ] || fail "metrics scrape failed"
cl_ok "getattr 5" >/dev/null
a=$(cl "badfh 2") # stops at the first failure: one request
[[ "$a" == err* ]] || fail "forged handle accepted: $a"
a=$(cl "badfh 1")
[[ "$a" == err* ]] || fail "forged handle accepted: $a"
cl_ok "write 3 8000" >/dev/null
cl_ok "read 4 100" >/dev/null
cl_ok "readd 2 16384" >/dev/null
cl_ok "null 7" >/dev/null
[ "$(scrape "$WORK/m2")" = 200 ] || fail "metrics scrape failed"
ctl stats --json >"$WORK/after.json" || fail "stats --json failed"
ctl stats >"$WORK/after.txt" || fail "stats failed"
grep -q "^GETATTR " "$WORK/after.txt" || fail "stats text lacks GETATTR: $(cat "$WORK/after.txt")"
python3 - "$WORK/before.json" "$WORK/after.json" <<'EOF' || fail "stats do not count the requests made"
import json, sys
b, a = (json.load(open(p)) for p in sys.argv[1:3])
def d(op, field):
    return a["ops"].get(op, {}).get(field, 0) - b["ops"].get(op, {}).get(field, 0)
want = {"GETATTR": (7, 2), "WRITE_INLINE": (3, 0), "READ_INLINE": (4, 0),
        "READ_DIRECT": (2, 0), "NULL": (7, 0), "GETROOT": (0, 0), "OPEN": (0, 0)}
bad = []
for op, (n, e) in want.items():
    if d(op, "requests") != n or d(op, "errors") != e:
        bad.append("%s: %d requests, %d errors (expected %d, %d)" % (op, d(op, "requests"), d(op, "errors"), n, e))
if not (2 * 16384 <= d("READ_DIRECT", "bytes_out") < 2 * 16384 + 2 * 512):
    bad.append("READ_DIRECT bytes_out grew by %d" % d("READ_DIRECT", "bytes_out"))
if not (3 * 8000 <= d("WRITE_INLINE", "bytes_in") < 3 * 8000 + 3 * 512):
    bad.append("WRITE_INLINE bytes_in grew by %d" % d("WRITE_INLINE", "bytes_in"))
lat = a["ops"]["GETATTR"]["latency_ns"]
if not (0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"]):
    bad.append("GETATTR percentiles %r" % lat)
if a["sessions"] < 1 or a["credits_granted"] < 1:
    bad.append("gauges %r" % {k: a[k] for k in ("sessions", "credits_granted")})
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
EOF
log "stats counted the sequence exactly"

# ---- the Prometheus text ---------------------------------------------------
! $HAVE_METRICS || python3 - "$WORK/m1" "$WORK/m2" <<'EOF' || fail "metrics are not valid Prometheus text, or did not grow"
import re, sys
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$')
def parse(path):
    types, values = {}, {}
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "summary", "histogram", "untyped"), line
            assert name not in types, "two TYPE lines for " + name
            types[name] = kind
            continue
        if line.startswith("# HELP ") or line == "":
            continue
        m = sample.match(line)
        assert m, "not a sample line: %r" % line
        name = m.group(1)
        family = re.sub(r'_(sum|count)$', '', name) if name not in types else name
        assert family in types, "sample before its # TYPE: %r" % line
        if types[family] == "counter":
            assert name.endswith("_total"), name
        values[name + (m.group(2) or "")] = float(m.group(5))
    return types, values
t1, v1 = parse(sys.argv[1])
t2, v2 = parse(sys.argv[2])
for k in ('dafs_requests_total{op="GETATTR"}', 'dafs_requests_total{op="NULL"}'):
    assert v2.get(k, 0) > v1.get(k, 0), "%s: %s -> %s" % (k, v1.get(k), v2.get(k))
assert v2['dafs_requests_total{op="GETATTR"}'] - v1.get('dafs_requests_total{op="GETATTR"}', 0) == 7
assert v2['dafs_sessions'] >= 1
assert any(k.startswith('dafs_request_latency_seconds{op="GETATTR",quantile="0.99"}') for k in v2)
EOF
if $HAVE_METRICS; then
  [ "$(curl -sS -o /dev/null -w '%{http_code}' "${METRICS%/metrics}/nothing")" = 404 ] || fail "/nothing is not 404"
  [ "$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$METRICS")" = 405 ] || fail "POST is not 405"
  log "metrics: valid exposition format, counters grew"
fi

# ---- a libdafs client, then eviction -----------------------------------------
mkfifo "$WORK/h.in" "$WORK/h.out" # (bash runs one coproc at a time)
"$HOLDER" "$URL/" <"$WORK/h.in" >"$WORK/h.out" &
track_pid $!
exec {HIN}>"$WORK/h.in" {HOUT}<"$WORK/h.out"
read -r -t 60 word HSID <&"$HOUT" || fail "session_holder did not connect"
[ "$word" = session ] || fail "session_holder said '$word $HSID'"
echo >&"$HIN"
read -r -t 60 a <&"$HOUT" || fail "session_holder: no answer"
[ "$a" = ok ] || fail "session_holder before eviction: $a"
ctl sessions list >"$WORK/list" || fail "sessions list failed"
grep -q "^$HSID " "$WORK/list" || fail "sessions list lacks the libdafs session $HSID"

ctl sessions evict "$SID" >"$WORK/evict" || fail "evict $SID failed"
grep -q "evicted session $SID" "$WORK/evict" || fail "evict said: $(cat "$WORK/evict")"
a=$(cl "null 1")
[ "$a" = "err 10001" ] || fail "after eviction the raw client got '$a', expected BADSESSION (10001)"
ctl evict 2>/dev/null && fail "dafsctl accepted 'evict' without 'sessions'"
ctl sessions evict "$HSID" >/dev/null || fail "evict $HSID failed"
echo >&"$HIN"
read -r -t 60 a <&"$HOUT" || fail "session_holder: no answer after eviction"
[[ "$a" == "error: Session unknown to the server" ]] || fail "libdafs after eviction: '$a'"
ctl sessions list >"$WORK/list" || fail "sessions list failed"
! grep -q "^$SID " "$WORK/list" || fail "evicted session $SID still listed"
! grep -q "^$HSID " "$WORK/list" || fail "evicted session $HSID still listed"
rc=0
ctl sessions evict "$SID" 2>"$WORK/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "no open session $SID" "$WORK/err" || fail "evicting twice: rc $rc, $(cat "$WORK/err")"
log "eviction: BADSESSION for the raw client, '$a' for libdafs, gone from the list"

# ---- bad admin requests -------------------------------------------------------
python3 - "$SOCK" <<'EOF' || fail "bad admin requests"
import socket, sys, time
path = sys.argv[1]
def ask(data, close_write=False):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    if data:
        s.sendall(data)
    if close_write:
        s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    s.close()
    return out.decode("ascii", "replace")
cases = [
    (b"bogus\n", "ERR unknown command"),
    (b"\n", "ERR empty request"),
    (b"sessions evict zz\n", "ERR invalid session id"),
    (b"sessions frobnicate\n", "ERR usage: sessions"),
    (b"stats extra\n", "ERR usage: stats"),
    (b"a b c d e f g h i j\n", "ERR too many words"),
    (b"x" * 5000, "ERR request too long"),
    (b"ver\x00sion\n", "ERR request is not a line of text"),
    (b"\x01\x02\x03\n", "ERR request is not a line of text"),
]
for data, want in cases:
    got = ask(data)
    assert got.startswith(want), "%r -> %r (expected %r)" % (data[:40], got, want)
assert ask(b"", close_write=True) == "", "hang-up got an answer"
t0 = time.time()
got = ask(b"stats")  # no newline, and then silence
assert got.startswith("ERR timed out"), got
assert time.time() - t0 < 20
assert ask(b"version", close_write=True).startswith("OK\ndafsd "), "last line without newline"
assert ask(b"stats --json\n").startswith('OK\n{"sessions":')
EOF
kill -0 "$SERVER_PID" || fail "dafsd died from a bad admin request"
ctl version >/dev/null || fail "dafsctl version after bad requests"
rc=0
ctl frobnicate 2>"$WORK/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "unknown command 'frobnicate'" "$WORK/err" || fail "unknown command: rc $rc, $(cat "$WORK/err")"
log "bad admin requests: each got an ERR line; dafsd serves on"

# ---- socket life cycle ----------------------------------------------------------
echo quit >&"${CL[1]}" 2>/dev/null || true
exec {HIN}>&- {HOUT}<&-
stop_server
[ ! -e "$SOCK" ] || fail "the admin socket outlived dafsd's SIGTERM"
start_server
kill_server
[ -S "$SOCK" ] || fail "no socket left after SIGKILL (cannot test the stale case)"
start_server
ctl version >/dev/null || fail "restart over a stale socket: dafsctl cannot talk to it"
stop_server
pass
