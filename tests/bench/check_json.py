#!/usr/bin/env python3
"""check_json.py — validate dafs-bench --json output (tests/bench).

Checks the shape, not the speed: every workload has a dafs and a local row
(and a floor row where one exists), every rate and latency is positive, and
the targets list is present with a boolean verdict each.  No timing
assertions: CI machines are too noisy for those.
"""
import json
import math
import sys

WORKLOADS = ["read4k_qd1", "read4k_qd32", "write4k_qd1", "write4k_qd32",
             "seqread_1m", "seqwrite_1m", "create", "stat", "readdir", "unlink",
             "lock", "write4k_autorecover", "mp1", "mp2", "mp4", "mp8", "mp16"]
NO_FLOOR = {"readdir", "lock", "write4k_autorecover"}
ASYNC = ["read4k_async_qd32", "write4k_async_qd32"]
POSITIVE = ["ops_per_s", "mean_us", "p50_us", "p99_us", "client_cpu_us_per_op"]


def fail(msg):
    print("check_json: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        fail("usage: check_json.py FILE")
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    rows = {}
    for r in doc.get("results", []):
        rows[(r["workload"], r["system"])] = r
    for w in WORKLOADS:
        systems = ["dafs", "local"] + ([] if w in NO_FLOOR else ["floor"])
        for s in systems:
            r = rows.get((w, s))
            if r is None:
                fail("no %s row for %s" % (s, w))
            for key in POSITIVE:
                v = r.get(key)
                if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                    fail("%s/%s: %s = %r, want > 0" % (w, s, key, v))
            if r["size"] > 0 and not r["mb_per_s"] > 0:
                fail("%s/%s: mb_per_s not positive" % (w, s))
        d = rows[(w, "dafs")]
        if w not in NO_FLOOR and not (d["vs_floor"]["headline"] or 0) > 0:
            fail("%s: no ratio to the floor" % w)
        if not (d["vs_local"]["headline"] or 0) > 0:
            fail("%s: no ratio to local" % w)
    for w in ASYNC:  # one-thread async rows: dafs and floor only
        for s in ("dafs", "floor"):
            r = rows.get((w, s))
            if r is None:
                fail("no %s row for %s" % (s, w))
            for key in POSITIVE:
                v = r.get(key)
                if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                    fail("%s/%s: %s = %r, want > 0" % (w, s, key, v))
        if not (rows[(w, "dafs")]["vs_floor"]["headline"] or 0) > 0:
            fail("%s: no ratio to the floor" % w)
    targets = doc.get("targets")
    if not isinstance(targets, list) or len(targets) < 10:
        fail("targets missing or short: %r" % (targets,))
    for t in targets:
        if not isinstance(t.get("pass"), bool) or t.get("value") is None:
            fail("bad target %r" % (t,))
    print("check_json: %d rows, %d targets, all present and positive"
          % (len(rows), len(targets)))


if __name__ == "__main__":
    main()
