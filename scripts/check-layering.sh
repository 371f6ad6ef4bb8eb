#!/bin/sh
# check-layering.sh — dafsd's request pipeline has one direction (see
# src/server/opctx.h):
#
#   dispatch.c ──► fastpath.c, worker.c ──► ops*.c (through opctx.h)
#
# Fails (exit 1, naming the file and the include) when a file reaches back:
#   - an operation file or the op interface (ops*.c, batch.c, ops.h, opctx.h) includes
#     dispatch.h, worker.h or fastpath.h;
#   - the worker pool or the fast path includes dispatch.h, or one of them
#     includes the other's header, or ops.h (the ops' internals);
#   - anything but dispatch.c and main.c includes dispatch.h.
# Usage: check-layering.sh [SOURCE_DIR]   (default: the repository root)
root=${1:-$(dirname "$0")/..}
dir=$root/src/server
[ -f "$dir/opctx.h" ] || { echo "check-layering: no $dir/opctx.h" >&2; exit 2; }
bad=0

# includes FILE HEADER...: report FILE's #include of each HEADER
forbid() {
    f=$1
    shift
    [ -f "$f" ] || return 0
    for h in "$@"; do
        if grep -Eq "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"$h\"" "$f"; then
            echo "check-layering: $(basename "$f") includes $h" >&2
            bad=1
        fi
    done
}

for f in "$dir"/ops*.c "$dir"/batch.c "$dir"/ops.h "$dir"/opctx.h; do
    forbid "$f" dispatch.h worker.h fastpath.h
done
forbid "$dir/worker.c" dispatch.h fastpath.h ops.h
forbid "$dir/worker.h" dispatch.h fastpath.h ops.h
forbid "$dir/fastpath.c" dispatch.h worker.h ops.h
forbid "$dir/fastpath.h" dispatch.h worker.h ops.h
for f in "$dir"/*.c "$dir"/*.h; do
    case $(basename "$f") in
    dispatch.c | dispatch.h | main.c) ;;
    *) forbid "$f" dispatch.h ;;
    esac
done
[ $bad -eq 0 ] && echo "check-layering: ok"
exit $bad
