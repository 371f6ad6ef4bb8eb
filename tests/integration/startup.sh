#!/usr/bin/env bash
# startup.sh — what dafsd says when it starts, and that it leaves its command
# line alone.  Without -v dafsd prints exactly one line on stderr (nothing on
# stdout) once it serves: version, export, bound address (the real port when
# 0 was asked for), provider and squash mode.  /proc/PID/cmdline must be the
# arguments as given: parsing --listen once wrote NULs into argv, so ps showed
# "--listen 127.0.0.1" and a stray "0".
. "$(dirname "$0")/lib.sh"

# run_dafsd NAME ARGS...: start dafsd with exactly ARGS (plus --ready-file),
# wait until it serves; sets SERVER_PID and PORT, stdout/stderr in $WORK/NAME.*
run_dafsd() {
  local name=$1 ready=$WORK/$1.ready i
  shift
  "$DAFSD" "$@" --ready-file "$ready" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  SERVER_PID=$!
  for i in $(seq 150); do
    [ -s "$ready" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { wait "$SERVER_PID" || true; SERVER_PID=; fail "dafsd $* exited before it was ready: $(cat "$WORK/$name.err")"; }
    sleep 0.1
  done
  [ -s "$ready" ] || fail "dafsd not ready after 15 s"
  PORT=$(head -n1 "$ready")
}

# check_start_line NAME SQUASH: the one line dafsd printed for run NAME.
check_start_line() {
  local name=$1 squash=$2 want
  want="dafsd 0.1.0: exporting $EXPORT on 127.0.0.1:$PORT (${FI_PROVIDER}), $squash"
  [ ! -s "$WORK/$name.out" ] || fail "dafsd wrote to stdout: $(cat "$WORK/$name.out")"
  [ "$(wc -l <"$WORK/$name.err")" -eq 1 ] || fail "dafsd printed $(wc -l <"$WORK/$name.err") lines at start, expected 1: $(cat "$WORK/$name.err")"
  [ "$(cat "$WORK/$name.err")" = "$want" ] || fail "start line is '$(cat "$WORK/$name.err")', expected '$want'"
  log "start line: $want"
}

mkdir -m 700 "$WORK/state"
: "${FI_PROVIDER:?the start line names the provider: set FI_PROVIDER}"

# Default squash, port 0: the line names the bound port; argv untouched.
args=(--export "$EXPORT" --listen 127.0.0.1:0 --state-dir "$WORK/state" --provider "$FI_PROVIDER")
run_dafsd default "${args[@]}"
check_start_line default "root squashed to 65534:65534"
printf '%s\0' "$DAFSD" "${args[@]}" --ready-file "$WORK/default.ready" >"$WORK/want.cmdline"
cat "/proc/$SERVER_PID/cmdline" >"$WORK/got.cmdline" # cmp trusts st_size, 0 in /proc
cmp -s "$WORK/want.cmdline" "$WORK/got.cmdline" ||
  fail "/proc/$SERVER_PID/cmdline is '$(tr '\0' ' ' <"/proc/$SERVER_PID/cmdline")', expected '$(tr '\0' ' ' <"$WORK/want.cmdline")'"
log "cmdline unchanged: $(tr '\0' ' ' <"/proc/$SERVER_PID/cmdline")"
stop_server

# A bracketed address is not rewritten either.
args=(--export "$EXPORT" --listen "[127.0.0.1]:0" --state-dir "$WORK/state")
run_dafsd bracket "${args[@]}"
printf '%s\0' "$DAFSD" "${args[@]}" --ready-file "$WORK/bracket.ready" >"$WORK/want.cmdline"
cat "/proc/$SERVER_PID/cmdline" >"$WORK/got.cmdline" # cmp trusts st_size, 0 in /proc
cmp -s "$WORK/want.cmdline" "$WORK/got.cmdline" ||
  fail "/proc/$SERVER_PID/cmdline is '$(tr '\0' ' ' <"/proc/$SERVER_PID/cmdline")' for --listen [127.0.0.1]:0"
stop_server

run_dafsd nosquash --export "$EXPORT" --listen 127.0.0.1:0 --state-dir "$WORK/state" --no-root-squash
check_start_line nosquash "no root squash"
stop_server

run_dafsd allsquash --export "$EXPORT" --listen 127.0.0.1:0 --state-dir "$WORK/state" \
  --all-squash --anon-uid 1000 --anon-gid 1001 --read-only
check_start_line allsquash "all users squashed to 1000:1001, read-only"
stop_server

run_dafsd rootsquash --export "$EXPORT" --listen 127.0.0.1:0 --state-dir "$WORK/state" \
  --root-squash --anon-uid 4242 --anon-gid 4343
check_start_line rootsquash "root squashed to 4242:4343"
stop_server

# The version it prints at start is the one --version prints.
v=$("$DAFSD" --version) || fail "dafsd --version failed"
[ "$v" = "dafsd (dafs) 0.1.0" ] || fail "dafsd --version printed '$v'"
pass
