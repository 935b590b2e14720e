#!/usr/bin/env python3
"""Counts what one S3 PUT or GET costs inside a `shale dev` cluster: the HTTP
requests each role issues and serves, and its fsync-family calls and files
created, per op.

It starts a fresh cluster (3 meta replicas, 6 nodes, gateway), attaches
`strace -f -ttt` to every server process, records IDLE seconds with no load
(the background: heartbeats, raft, leader work), then runs `shale bench s3
--op OP --size SIZE --concurrency 1 --count N --keep` and counts the calls
made between the start of the run phase and the end of the run (for get,
after its uploads). Per op = (calls in the run - background rate x run
length) / N.

HTTP requests are counted from the socket writes that start one ("PUT
/path HTTP/1.1", the issuing process) and the ones that start a response
("HTTP/1.1 200", the serving process); the meta replicas' raft traffic is
not HTTP and shows only as their fsyncs. Internal TLS would hide the
requests: dev's default (plain) is what this counts.

Usage: scripts/count-s3-op.py [OP] [SIZE] [N]   (default: put 4KiB 200)
Environment: BIN (default bin/shale), IDLE=5, OUT=/tmp/shale-count-s3-op,
DEV_ARGS (extra `shale dev` flags). Needs strace and ptrace rights (root).
Strace slows the processes down; the counts, not the times, are the result.
"""
import collections
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_matrix", os.path.join(HERE, "bench-matrix.py"))
bm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bm)

SYNC = ("fsync", "fdatasync", "sync_file_range", "syncfs", "msync")
LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(\w+)\((.*)")
REQ = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) (/[^ "?]*)')
RESP = re.compile(r'"HTTP/1\.1 (\d{3})')


def path_class(path):
    """/v1/shards/abc123/7 -> /v1/shards/*: two segments name the call."""
    seg = [s for s in path.split("/") if s]
    return "/" + "/".join(seg[:2]) + ("/*" if len(seg) > 2 else "")


def main():
    op = sys.argv[1] if len(sys.argv) > 1 else "put"
    size = sys.argv[2] if len(sys.argv) > 2 else "4KiB"
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    idle = float(os.environ.get("IDLE", "5"))
    out = os.path.abspath(os.environ.get("OUT", "/tmp/shale-count-s3-op"))
    binary = os.environ.get("BIN") or os.path.join(os.path.dirname(HERE), "bin/shale")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    bm.OUT = out
    cl = bm.Cluster("count", os.path.abspath(binary), os.environ.get("DEV_ARGS", "").split())
    traces = []
    try:
        cl.start()
        time.sleep(2)
        for pid, role in cl.roles.items():
            traces.append(subprocess.Popen(
                ["strace", "-f", "-ttt", "-qq", "-s", "48", "-o", os.path.join(out, role + ".trace"),
                 "-e", "trace=" + ",".join(SYNC + ("write", "writev", "sendmsg", "sendto", "openat")),
                 "-p", str(pid)], stderr=subprocess.DEVNULL))
        time.sleep(1.5)  # attached
        i0 = time.time()
        time.sleep(idle)
        i1 = time.time()
        errp = os.path.join(out, "bench.stderr")
        args = [cl.bin, "bench", "s3", "--endpoint", f"http://127.0.0.1:{cl.port}", "--access", cl.ak,
                "--secret", cl.sk, "--op", op, "--size", size, "--concurrency", "1", "--count", str(n),
                "--duration", "10m", "--keys", "8", "--keep", "--checksum", "when_required", "--json"]
        with open(errp, "w") as ef, open(os.path.join(out, "bench.json"), "w") as of:
            b = subprocess.Popen(args, stdout=of, stderr=ef)
        t0 = time.time() if op == "put" else None
        while b.poll() is None:
            if t0 is None:
                with open(errp) as f:
                    if re.search(r"prepare: uploaded (\d+)/\1 objects.*\n", f.read()):
                        t0 = time.time()
            time.sleep(0.003)
        t1 = time.time()
        time.sleep(0.5)
    finally:
        for t in traces:
            t.terminate()
        for t in traces:
            t.wait()
        cl.stop()
    with open(os.path.join(out, "bench.json")) as f:
        res = json.load(f)
    ops = res["ops"]
    run = t1 - t0
    print(f"{op} {size}: {ops} ops at c=1 in {run:.1f} s under strace (errors {res.get('errors_total', 0)}); "
          f"background from {i1 - i0:.1f} s idle subtracted; per op:")
    total = collections.Counter()
    for role in sorted(cl.roles.values()):
        cnt = {"run": collections.Counter(), "idle": collections.Counter()}
        with open(os.path.join(out, role + ".trace"), errors="replace") as f:
            for line in f:
                m = LINE.match(line)
                if not m:
                    continue
                ts, call, rest = float(m.group(2)), m.group(3), m.group(4)
                w = "run" if t0 <= ts <= t1 else "idle" if i0 <= ts <= i1 else None
                if not w:
                    continue
                if call in SYNC:
                    cnt[w]["sync " + call] += 1
                elif call == "openat":
                    if "O_CREAT" in rest:
                        cnt[w]["open O_CREAT"] += 1
                else:
                    r = REQ.search(rest)
                    if r:
                        cnt[w][f"issues {r.group(1)} {path_class(r.group(2))}"] += 1
                    elif RESP.search(rest):
                        cnt[w]["serves (responses)"] += 1
        keys = sorted(set(cnt["run"]) | set(cnt["idle"]))
        rows = []
        for k in keys:
            per = (cnt["run"][k] - cnt["idle"][k] / (i1 - i0) * run) / ops
            if abs(per) >= 0.05:
                rows.append((k, per))
                total[k.split(" /")[0] if k.startswith("issues") else k] += per
        if rows:
            print(f"  {role}: " + "; ".join(f"{k} {v:.2f}" for k, v in rows))
    print("  all processes: " + "; ".join(f"{k} {v:.2f}" for k, v in sorted(total.items())))
    req = sum(v for k, v in total.items() if k.startswith("issues"))
    syncs = sum(v for k, v in total.items() if k in ("sync fsync", "sync fdatasync"))
    print(f"  => {req:.1f} internal HTTP requests and {syncs:.1f} fsync+fdatasync per {op}, "
          f"{total['sync sync_file_range']:.1f} sync_file_range (traces in {out})")


if __name__ == "__main__":
    main()
