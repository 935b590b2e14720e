#!/usr/bin/env python3
"""The S3 matrix of issue 13 with CPU accounting of every cluster process.

PUT and GET x 4 KiB, 1 MiB, 16 MiB x concurrency 1, 8, 32 through a `shale
dev` cluster (3 meta replicas, 6 nodes over 3 zones, 4+2, gateway) with
`shale bench s3 --checksum when_required --unsigned-payload` (UNSIGNED-PAYLOAD
PUTs, no checksums; BENCH_ARGS replaces --unsigned-payload: BENCH_ARGS= signs
the payload as the SDK does by default over http). For every cell it prints MB/s, ops/s, p50/p99 and the CPU
(user+system, /proc/PID/stat) of all the cluster's server processes -- every
meta replica, the gateway, every node -- per MiB and per op, and their peak
RSS (VmHWM, summed over the processes) beside the peak of the memory they
hold together (sampled every MEM_EVERY=0.1 s: every process's anonymous
pages plus the shale binary's file pages once, not once per process).

Accounting: the CPU is sampled over a fixed window of DURATION seconds that
starts WARMUP seconds after the run phase began (the load tool's GET uploads
come before, its cleanup after, both outside); the ops and bytes of the same
window come from the load tool's progress counters (every 500 ms), so a
cell's figures are CPU-seconds / (ops or MiB done in that window). The `shale
dev` supervisor and the load tool are not counted (their CPU is in the raw
results). Before each cell every process's VmHWM is reset (/proc/PID/clear_refs
5), so the peak RSS of a cell is that cell's, including the GET upload.

One binary: BIN (default: bin/shale, built with `make build`) runs alone.
Two: BEFORE=/path AFTER=/path start one cluster each, side by side, and the
cells alternate between them (the first of each pair alternates by round);
with ROUNDS > 1 the table shows medians and AFTER/BEFORE ratios. The load
tool is CLIENT (default AFTER, else BIN) for both, so only the servers differ.

Environment (all optional):
  DURATION=10      seconds of the accounted window (the run lasts
                   WARMUP + DURATION + 1 s)
  WARMUP=2         seconds of run before the window opens
  ROUNDS=1         rounds of the whole matrix
  CELLS="put:4KiB:32 get:16MiB:8"   a subset (default: all 18 cells)
  KEYS=32          objects each GET cell reads (uploaded by the cell)
  BENCH_ARGS="--unsigned-payload"   more `shale bench s3` flags (CLIENT's)
  DEV_ARGS=...     extra `shale dev` flags for every cluster (e.g.
                   "--meta-replicas 1"); BEFORE_DEV_ARGS / AFTER_DEV_ARGS
                   for one side only (compare two configs of one binary:
                   BEFORE=bin/shale AFTER=bin/shale AFTER_DEV_ARGS=...)
  OUT=/tmp/shale-bench-matrix   clusters' data, logs, results.jsonl
  KEEP=1           leave OUT's cluster data after the run

Before the first cell each cluster's CPU is sampled idle for DURATION s (the
background every cell also pays: heartbeats, raft, leader-only work). After
each cell the script waits (at most SETTLE_MAX=60 s) until the cluster's CPU
over one second is under twice that idle rate, so the work a cell leaves
behind (garbage collection of the keys its cleanup deleted, compactions) is
not charged to the next cell; results.jsonl keeps it as settle_s and
settle_cpu_s.

Usage: scripts/bench-matrix.py
       BEFORE=/tmp/shale-old AFTER=bin/shale ROUNDS=3 scripts/bench-matrix.py
Only the Python standard library; Linux (/proc) only.
"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL_CELLS = [(op, size, conc)
             for op in ("put", "get")
             for size in ("4KiB", "1MiB", "16MiB")
             for conc in (1, 8, 32)]
SIZES = {"4KiB": 4 << 10, "1MiB": 1 << 20, "16MiB": 16 << 20}
TICK = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20


def env_float(name, default):
    return float(os.environ.get(name, "").rstrip("s") or default)


DURATION = env_float("DURATION", 10)
WARMUP = env_float("WARMUP", 2)
ROUNDS = int(os.environ.get("ROUNDS", "1"))
KEYS = int(os.environ.get("KEYS", "32"))
MEM_EVERY = env_float("MEM_EVERY", 0.1)
BENCH_ARGS = os.environ.get("BENCH_ARGS", "--unsigned-payload").split()
OUT = os.path.abspath(os.environ.get("OUT", "/tmp/shale-bench-matrix"))
SETTLE_MAX = env_float("SETTLE_MAX", 60)
IDLE_RATE = {}  # cluster label -> idle CPU in cores
RUNNING = []  # the load tool under way, killed on interrupt


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_ticks(pid):
    """utime+stime of a process (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def mem_kib(pid):
    """RssAnon and RssFile of a process, in KiB."""
    anon = filed = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("RssAnon:", "RssShmem:")):
                    anon += int(line.split()[1])
                elif line.startswith("RssFile:"):
                    filed = int(line.split()[1])
    except OSError:
        pass
    return anon, filed


class MemSampler(threading.Thread):
    """Samples every MEM_EVERY s the memory of all processes together: the
    sum of their anonymous (and shared-memory) resident pages at one
    instant plus the largest one's file-backed resident pages -- the shale
    binary's text and data, the same file mapped by every process, counted
    once. Keeps the peak and each process's anonymous pages at that peak.
    (Summed VmHWM counts the ~23 MiB of binary once per process and adds
    peaks of different moments; Pss would split the binary with the load
    tool, which runs the same file.)"""

    def __init__(self, roles):
        super().__init__(daemon=True)
        self.roles, self.stop, self.peak, self.at_peak, self.samples = roles, threading.Event(), 0, {}, 0

    def run(self):
        while not self.stop.is_set():
            now = {role: mem_kib(pid) for pid, role in self.roles.items()}
            total = sum(v[0] for v in now.values()) + max((v[1] for v in now.values()), default=0)
            self.samples += 1
            if total > self.peak:
                self.peak, self.at_peak = total, {r: v[0] for r, v in now.items()}
                self.at_peak["binary (file pages, once)"] = max((v[1] for v in now.values()), default=0)
            self.stop.wait(MEM_EVERY)

    def finish(self):
        self.stop.set()
        self.join()
        return self.peak, self.at_peak


def reset_hwm(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError as e:
        print(f"warning: cannot reset VmHWM of {pid}: {e}", file=sys.stderr)


class Cluster:
    """One `shale dev` cluster: its supervisor and its server processes."""

    def __init__(self, label, binary, dev_args):
        self.label, self.bin, self.dev_args = label, binary, dev_args
        self.data = os.path.join(OUT, label)
        self.port = free_port()
        self.proc = None
        self.roles = {}  # pid -> role (meta-1, gateway, node-3, ...)

    def start(self):
        os.makedirs(self.data)
        log = open(os.path.join(OUT, self.label + ".dev.log"), "w")
        self.proc = subprocess.Popen(
            [self.bin, "dev", "--data", self.data, "--s3", f"127.0.0.1:{self.port}"] + self.dev_args,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(240):
            if self.proc.poll() is not None:
                break
            with open(log.name) as f:
                if "cluster ready" in f.read():
                    break
            time.sleep(0.25)
        else:
            raise SystemExit(f"{self.label}: cluster not ready after 60 s (see {log.name})")
        if self.proc.poll() is not None:
            raise SystemExit(f"{self.label}: shale dev exited (see {log.name})")
        with open(os.path.join(self.data, "cluster.json")) as f:
            c = json.load(f)
        metas = c.get("metas") or []
        if metas:
            for m in metas:
                self.roles[m["pid"]] = m["id"]
        else:  # a build from before meta replication
            self.roles[c["meta_pid"]] = "meta"
        self.roles[c["gateway_pid"]] = "gateway"
        for n in c["nodes"]:
            self.roles[n["pid"]] = n["id"]
        with open(os.path.join(self.data, "credentials.json")) as f:
            cred = json.load(f)
        self.ak, self.sk = cred["access_key"], cred["secret_key"]
        print(f"{self.label}: {self.bin} {' '.join(self.dev_args)}; S3 127.0.0.1:{self.port}; "
              + ", ".join(f"{r} {p}" for p, r in sorted(self.roles.items(), key=lambda x: x[1])))

    def check_alive(self):
        dead = [r for p, r in self.roles.items() if not os.path.exists(f"/proc/{p}")]
        if dead or self.proc.poll() is not None:
            raise SystemExit(f"{self.label}: processes gone: {dead or 'shale dev'}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def role_group(role):
    return "meta" if role.startswith("meta") else "node" if role.startswith("node") else role


PROGRESS = re.compile(r"run: ([\d.]+)s\s+(\d+) ops")


def last_progress(path):
    """(elapsed s, ops) of the load tool's latest run progress line."""
    with open(path, "rb") as f:
        txt = f.read().decode(errors="replace")
    m = PROGRESS.findall(txt)
    return (float(m[-1][0]), int(m[-1][1])) if m else None


def settle(cl):
    """Waits (up to SETTLE_MAX s) until the cluster's CPU over a second is
    back near its idle rate, so work a cell leaves behind (garbage
    collection of its deleted keys, compactions) is not charged to the next
    cell. Returns the seconds waited and the CPU-seconds spent meanwhile."""
    pids = list(cl.roles)
    limit = max(IDLE_RATE.get(cl.label, 0.1) * 2, 0.15)  # cores
    t0, total = time.monotonic(), 0.0
    while time.monotonic() - t0 < SETTLE_MAX:
        c0 = sum(cpu_ticks(p) for p in pids)
        time.sleep(1)
        used = (sum(cpu_ticks(p) for p in pids) - c0) / TICK
        total += used
        if used <= limit:
            break
    return round(time.monotonic() - t0, 1), round(total, 2)


def run_cell(cl, client, op, size, conc, rnd):
    cl.check_alive()
    pids = list(cl.roles)
    for p in pids:
        reset_hwm(p)
    mem = MemSampler(dict(cl.roles))
    mem.start()
    tag = f"{cl.label}-{op}-{size}-c{conc}-r{rnd}"
    errp = os.path.join(OUT, tag + ".stderr")
    outp = os.path.join(OUT, tag + ".json")
    secs = WARMUP + DURATION + 1
    with open(errp, "w") as ef, open(outp, "w") as of:
        bench = subprocess.Popen(
            [client, "bench", "s3", "--endpoint", f"http://127.0.0.1:{cl.port}",
             "--access", cl.ak, "--secret", cl.sk, "--op", op, "--size", size,
             "--concurrency", str(conc), "--keys", str(KEYS), "--duration", f"{secs}s",
             "--checksum", "when_required", "--json"] + BENCH_ARGS,
            stdout=of, stderr=ef)
    RUNNING[:] = [bench]
    # The run phase starts when the first progress line of it appears.
    while bench.poll() is None and last_progress(errp) is None:
        time.sleep(0.02)
    time.sleep(WARMUP)
    c0 = {p: cpu_ticks(p) for p in pids}
    g0, w0, pr0 = cpu_ticks(cl.proc.pid), time.monotonic(), last_progress(errp)
    cb0 = cpu_ticks(bench.pid)
    time.sleep(DURATION)
    c1 = {p: cpu_ticks(p) for p in pids}
    g1, w1, pr1 = cpu_ticks(cl.proc.pid), time.monotonic(), last_progress(errp)
    cb1 = cpu_ticks(bench.pid)
    hwm = {cl.roles[p]: vm_hwm_kib(p) for p in pids}
    bench.wait()
    mem_peak, mem_by = mem.finish()
    settle_s, settle_cpu = settle(cl)
    with open(outp) as f:
        res = json.load(f)
    # Ops of the window: the load tool's rate between the progress lines
    # nearest the window's edges, times the window's length.
    rate = (pr1[1] - pr0[1]) / (pr1[0] - pr0[0]) if pr1 and pr0 and pr1[0] > pr0[0] else res["ops_per_s"]
    window = w1 - w0
    ops = rate * window
    cpu = {}
    for p in pids:
        g = role_group(cl.roles[p])
        cpu[g] = cpu.get(g, 0) + (c1[p] - c0[p]) / TICK
    total = sum(cpu.values())
    rec = {
        "cluster": cl.label, "round": rnd, "op": op, "size": size, "conc": conc,
        "window_s": round(window, 3), "window_ops": round(ops, 1),
        "mbps": res["mbps"], "ops_per_s": res["ops_per_s"], "p50_ms": res["p50_ms"],
        "p99_ms": res["p99_ms"], "errors": res.get("errors_total", 0),
        "cpu_s": round(total, 2), "cpu_s_by_role": {k: round(v, 2) for k, v in cpu.items()},
        "cpu_ms_per_op": 1000 * total / ops if ops else None,
        "cpu_ms_per_mib": 1000 * total / (ops * SIZES[size] / MIB) if ops else None,
        "peak_rss_mib": sum(hwm.values()) / 1024, "peak_rss_kib_by_proc": hwm,
        "peak_mem_mib": mem_peak / 1024, "anon_kib_by_proc_at_peak": mem_by, "mem_samples": mem.samples,
        "settle_s": settle_s, "settle_cpu_s": settle_cpu,
        "dev_cpu_s": (g1 - g0) / TICK, "client_cpu_s": (cb1 - cb0) / TICK,
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }
    with open(os.path.join(OUT, "results.jsonl"), "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"  {cl.label:6} {op:3} {size:5} c={conc:<2} r{rnd}: {rec['mbps']:8.1f} MB/s {rec['ops_per_s']:8.1f} ops/s "
          f"p50 {rec['p50_ms']:7.1f} p99 {rec['p99_ms']:7.1f} ms  CPU {total:5.2f} s = "
          f"{rec['cpu_ms_per_mib']:7.2f} ms/MiB {rec['cpu_ms_per_op']:7.2f} ms/op  "
          f"({' '.join(f'{k} {v:.2f}' for k, v in sorted(cpu.items()))})  RSS {rec['peak_rss_mib']:.0f} MiB, together {rec['peak_mem_mib']:.0f} MiB"
          f"  settled {settle_s:.0f} s, {settle_cpu:.1f} CPU-s"
          f"{'  ERRORS ' + str(rec['errors']) if rec['errors'] else ''}", flush=True)
    return rec


def idle_cpu(cl):
    """CPU of the idle cluster over DURATION s: the floor under every cell."""
    pids = list(cl.roles)
    c0 = {p: cpu_ticks(p) for p in pids}
    w0 = time.monotonic()
    time.sleep(DURATION)
    c1 = {p: cpu_ticks(p) for p in pids}
    w = time.monotonic() - w0
    IDLE_RATE[cl.label] = sum((c1[p] - c0[p]) / TICK for p in pids) / w
    cpu = {}
    for p in pids:
        g = role_group(cl.roles[p])
        cpu[g] = cpu.get(g, 0) + (c1[p] - c0[p]) / TICK
    rec = {"cluster": cl.label, "op": "idle", "window_s": round(w, 3),
           "cpu_s": round(sum(cpu.values()), 2), "cpu_s_by_role": {k: round(v, 2) for k, v in cpu.items()},
           "loadavg": open("/proc/loadavg").read().split()[:3]}
    with open(os.path.join(OUT, "results.jsonl"), "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"  {cl.label:6} idle: {rec['cpu_s'] / w * 100:.1f}% of a core "
          f"({' '.join(f'{k} {v / w * 100:.1f}%' for k, v in sorted(cpu.items()))})", flush=True)


def summarize(recs, labels):
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    by = {}
    for r in recs:
        by.setdefault((r["op"], r["size"], r["conc"], r["cluster"]), []).append(r)
    print(f"\nmedians of {ROUNDS} round(s); CPU = user+system of all meta replicas, gateway and nodes "
          f"over a {DURATION:g} s window per run; RSS = sum of the processes' VmHWM in the cell; "
          f"mem = peak memory held together (anonymous pages of all + the binary once), sampled every {MEM_EVERY:g} s")
    hdr = f"{'op':3} {'size':5} {'c':>2} {'cluster':7} {'MB/s':>8} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} " \
          f"{'ms/MiB':>8} {'ms/op':>8} {'meta%':>5} {'gw%':>5} {'node%':>5} {'RSS MiB':>7} {'mem MiB':>7} {'err':>4}"
    print(hdr)
    for op, size, conc in ALL_CELLS:
        rows = {}
        for lab in labels:
            v = by.get((op, size, conc, lab))
            if not v:
                continue
            share = lambda g: 100 * med([x["cpu_s_by_role"].get(g, 0) / x["cpu_s"] for x in v if x["cpu_s"]])
            rows[lab] = row = {
                "mbps": med([x["mbps"] for x in v]), "ops": med([x["ops_per_s"] for x in v]),
                "p50": med([x["p50_ms"] for x in v]), "p99": med([x["p99_ms"] for x in v]),
                "mib": med([x["cpu_ms_per_mib"] for x in v]), "op": med([x["cpu_ms_per_op"] for x in v]),
                "rss": max(x["peak_rss_mib"] for x in v),
                "mem": max(x.get("peak_mem_mib", 0) for x in v), "err": sum(x["errors"] for x in v)}
            print(f"{op:3} {size:5} {conc:>2} {lab:7} {row['mbps']:8.1f} {row['ops']:8.1f} {row['p50']:8.1f} "
                  f"{row['p99']:8.1f} {row['mib']:8.2f} {row['op']:8.2f} {share('meta'):5.0f} {share('gateway'):5.0f} "
                  f"{share('node'):5.0f} {row['rss']:7.0f} {row['mem']:7.0f} {row['err']:4}")
        if len(labels) == 2 and all(l in rows for l in labels):
            b, a = rows[labels[0]], rows[labels[1]]
            ratio = lambda k: a[k] / b[k] if b[k] else float("nan")
            print(f"{'':12} after/before: MB/s x{ratio('mbps'):.2f}, p99 x{ratio('p99'):.2f}, "
                  f"CPU per unit x{ratio('mib'):.2f}")
    for lab in labels:
        v = [r for r in recs if r["cluster"] == lab]
        if v:
            top = max(v, key=lambda r: r["peak_rss_mib"])
            topp = max(v, key=lambda r: r.get("peak_mem_mib", 0))
            print(f"{lab}: summed VmHWM {top['peak_rss_mib']:.0f} MiB (in {top['op']} {top['size']} c={top['conc']}); "
                  f"peak memory of all processes together {topp.get('peak_mem_mib', 0):.0f} MiB "
                  f"(in {topp['op']} {topp['size']} c={topp['conc']}); errors {sum(r['errors'] for r in v)}")


def interrupted(signum, frame):
    raise KeyboardInterrupt


def main():
    # A script started in the background by a non-interactive shell inherits
    # SIGINT ignored: stop on SIGINT and SIGTERM alike, clusters included.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    before, after = os.environ.get("BEFORE"), os.environ.get("AFTER")
    base_args = os.environ.get("DEV_ARGS", "").split()
    if bool(before) != bool(after):
        raise SystemExit("set both BEFORE and AFTER, or neither (then BIN runs alone)")
    if before:
        clusters = [Cluster("before", os.path.abspath(before), base_args + os.environ.get("BEFORE_DEV_ARGS", "").split()),
                    Cluster("after", os.path.abspath(after), base_args + os.environ.get("AFTER_DEV_ARGS", "").split())]
    else:
        b = os.environ.get("BIN")
        if not b:
            subprocess.run(["make", "-s", "build"], cwd=ROOT, check=True)
            b = os.path.join(ROOT, "bin/shale")
        clusters = [Cluster("shale", os.path.abspath(b), base_args)]
    client = os.path.abspath(os.environ.get("CLIENT") or clusters[-1].bin)
    cells = ALL_CELLS
    if os.environ.get("CELLS"):
        want = [tuple(c.split(":")) for c in os.environ["CELLS"].split()]
        cells = [c for c in ALL_CELLS if (c[0], c[1], str(c[2])) in want]
        if len(cells) != len(want):
            raise SystemExit(f"CELLS: want op:size:conc from {[f'{o}:{s}:{c}' for o, s, c in ALL_CELLS]}")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; cpu {cpu_model}, {os.cpu_count()} cores; "
          f"load {' '.join(open('/proc/loadavg').read().split()[:3])}; window {DURATION:g} s after {WARMUP:g} s; "
          f"{ROUNDS} round(s); client {client}; results {OUT}/results.jsonl")
    recs = []
    try:
        for c in clusters:
            c.start()
        time.sleep(2)
        for c in clusters:  # the background (heartbeats, raft, leader work)
            idle_cpu(c)
        for rnd in range(1, ROUNDS + 1):
            for i, (op, size, conc) in enumerate(cells):
                order = clusters if (rnd + i) % 2 else clusters[::-1]
                for c in order:
                    recs.append(run_cell(c, client, op, size, conc, rnd))
    except KeyboardInterrupt:
        print("interrupted; summary of the cells done", file=sys.stderr)
    finally:
        for b in RUNNING:
            if b.poll() is None:
                b.kill()
                b.wait()
        for c in clusters:
            c.stop()
        if not os.environ.get("KEEP"):
            for c in clusters:
                shutil.rmtree(c.data, ignore_errors=True)
    print(f"load after: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    summarize(recs, [c.label for c in clusters])


if __name__ == "__main__":
    main()
