#!/bin/bash
# PUT and GET of 16 MiB through two `shale dev` clusters, one plain and one
# with --internal-tls, interleaved (ROUNDS rounds, default 3), each run 20 s
# at concurrency 4. Appends one line per run to $OUT/results: the CPU ticks
# (1/100 s) the cluster processes (meta, gateway, nodes; from /proc) used in
# the window [6 s, 16 s) of the run, then the `shale bench s3 --json` report.
# Usage: make build && scripts/bench-internal-tls.sh
set -u
BIN=${BIN:-bin/shale}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-/tmp/shale-bench-internal-tls}
rm -rf $OUT; mkdir -p $OUT
start() { # name port extra...
  local name=$1 port=$2; shift 2
  $BIN dev --data $OUT/$name --s3 127.0.0.1:$port "$@" > $OUT/$name.log 2>&1 &
  echo $! > $OUT/$name.pid
  for i in $(seq 1 120); do grep -q "cluster ready" $OUT/$name.log && return 0; sleep 0.5; done
  echo "dev $name not ready"; cat $OUT/$name.log; return 1
}
pids() { python3 -c "
import json,sys
f=json.load(open('$OUT/$1/cluster.json'))
print(' '.join(str(p) for p in [f['meta_pid'],f['gateway_pid']]+[n['pid'] for n in f['nodes']]))"; }
cpu() { local t=0; for p in $(pids $1); do set -- $(cut -d' ' -f14,15 /proc/$p/stat); t=$((t+$1+$2)); done; echo $t; }
start plain 19100 || exit 1
start tls 19200 --internal-tls || exit 1
for name in plain tls; do
  port=19100; [ $name = tls ] && port=19200
  eval "$(python3 -c "import json;c=json.load(open('$OUT/$name/credentials.json'));print('AK=%s SK=%s'%(c['access_key'],c['secret_key']))")"
  echo "$name $port $AK $SK" >> $OUT/creds
done
for r in $(seq 1 $ROUNDS); do
  for op in put get; do
    for name in plain tls; do
      read n port AK SK < <(grep "^$name " $OUT/creds)
      # CPU of the cluster's processes over the window [6 s, 16 s) of a
      # 20 s run (after get's uploads, before the tail).
      $BIN bench s3 --endpoint http://127.0.0.1:$port --access $AK --secret $SK --op $op --size 16MiB --concurrency 4 --keys 8 --duration 20s --checksum when_required --json --quiet > $OUT/$name-$op-$r.json &
      bp=$!
      sleep 6; c0=$(cpu $name); sleep 10; c1=$(cpu $name)
      wait $bp
      echo "$name $op $r cputicks10s=$((c1-c0)) $(cat $OUT/$name-$op-$r.json)" >> $OUT/results
    done
  done
done
for name in plain tls; do kill -INT $(cat $OUT/$name.pid); done
wait
# Medians per op and configuration; CPU-s per GiB over the sampled window.
python3 - "$OUT/results" <<'PY'
import re, json, statistics, collections, sys
txt = open(sys.argv[1]).read()
rows = collections.defaultdict(list)
for m in re.finditer(r'^(\w+) (\w+) (\d+) cputicks10s=(\d+) (\{.*?\n\})', txt, re.M | re.S):
    name, op, _, ticks, js = m.groups()
    j = json.loads(js)
    gib = j['mbps'] * 1e6 * 10 / 2**30
    rows[(op, name)].append((j['mbps'], j['p50_ms'], j['p99_ms'], int(ticks) / 100 / gib))
for (op, name), v in sorted(rows.items()):
    med = lambda i: statistics.median(x[i] for x in v)
    print(f"{op} {name}: {len(v)} runs, median {med(0):.0f} MB/s, p50 {med(1):.0f} ms, p99 {med(2):.0f} ms, {med(3):.2f} CPU-s/GiB")
PY
