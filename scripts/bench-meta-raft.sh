#!/bin/bash
# PUT 4 KiB at concurrency 32, PUT 1 MiB at concurrency 8 and GET 4 KiB at
# concurrency 32 (a linearizable meta read each) through three
# `shale dev` clusters side by side, interleaved (ROUNDS rounds, default 3,
# each run 15 s): "single" is BEFORE (a shale binary from before meta
# replication: one meta process, no raft), "raft1" and "raft3" are BIN with
# --meta-replicas 1 and 3. Appends one line per run to $OUT/results: the CPU
# ticks (1/100 s) every process of that cluster used in the window [4 s, 14 s)
# of the run, then the `shale bench s3 --json` report; prints medians.
# Usage: make build && BEFORE=/path/to/old/shale scripts/bench-meta-raft.sh
set -u
BIN=${BIN:-bin/shale}
BEFORE=${BEFORE:?set BEFORE to a shale binary built before meta replication (git worktree add /tmp/old 3bfe62b && cd /tmp/old && go build -o /tmp/shale-before ./cmd/shale)}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-/tmp/shale-bench-meta-raft}
rm -rf $OUT; mkdir -p $OUT
declare -A EXE=([single]=$BEFORE [raft1]=$BIN [raft3]=$BIN)
declare -A PORT=([single]=19300 [raft1]=19400 [raft3]=19500)
declare -A EXTRA=([single]="" [raft1]="--meta-replicas 1" [raft3]="--meta-replicas 3")
NAMES="single raft1 raft3"
start() { # name
  local name=$1
  ${EXE[$name]} dev --data $OUT/$name --s3 127.0.0.1:${PORT[$name]} ${EXTRA[$name]} > $OUT/$name.log 2>&1 &
  echo $! > $OUT/$name.pid
  for i in $(seq 1 120); do grep -q "cluster ready" $OUT/$name.log && return 0; sleep 0.5; done
  echo "dev $name not ready"; cat $OUT/$name.log; return 1
}
pids() { python3 -c "
import json
f=json.load(open('$OUT/$1/cluster.json'))
ps=[f['gateway_pid']]+[n['pid'] for n in f['nodes']]
ps+=[m['pid'] for m in f.get('metas') or []] or [f['meta_pid']]
print(' '.join(str(p) for p in ps))"; }
cpu() { local t=0; for p in $(pids $1); do set -- $(cut -d' ' -f14,15 /proc/$p/stat); t=$((t+$1+$2)); done; echo $t; }
for name in $NAMES; do start $name || exit 1; done
for r in $(seq 1 $ROUNDS); do
  for load in "put 4KiB 32" "put 1MiB 8" "get 4KiB 32"; do
    set -- $load; op=$1; size=$2; conc=$3
    for name in $NAMES; do
      eval "$(python3 -c "import json;c=json.load(open('$OUT/$name/credentials.json'));print('AK=%s SK=%s'%(c['access_key'],c['secret_key']))")"
      $BIN bench s3 --endpoint http://127.0.0.1:${PORT[$name]} --access $AK --secret $SK --op $op --size $size --concurrency $conc --keys 64 --duration 15s --checksum when_required --json --quiet > $OUT/$name-$op-$size-$r.json &
      bp=$!
      sleep 4; c0=$(cpu $name); sleep 10; c1=$(cpu $name)
      wait $bp
      echo "$name $op-$size $r cputicks10s=$((c1-c0)) $(cat $OUT/$name-$op-$size-$r.json)" >> $OUT/results
    done
  done
done
for name in $NAMES; do kill -INT $(cat $OUT/$name.pid); done
wait
python3 - "$OUT/results" <<'PY'
import re, json, statistics, collections, sys
txt = open(sys.argv[1]).read()
rows = collections.defaultdict(list)
for m in re.finditer(r'^(\w+) ([\w-]+) (\d+) cputicks10s=(\d+) (\{.*?\n\})', txt, re.M | re.S):
    name, size, _, ticks, js = m.groups()
    j = json.loads(js)
    cpu = int(ticks) / 100
    gib = j['mbps'] * 1e6 * 10 / 2**30
    rows[(size, name)].append((j['mbps'], j['ops_per_s'], j['p50_ms'], j['p99_ms'], cpu / gib, cpu * 1000 / (j['ops_per_s'] * 10), j['errors_total']))
print("load       cluster  runs  MB/s  ops/s  p50 ms  p99 ms  CPU-s/GiB  CPU-ms/op  errors")
for (size, name), v in sorted(rows.items()):
    med = lambda i: statistics.median(x[i] for x in v)
    print(f"{size:10} {name:7} {len(v):5} {med(0):5.1f} {med(1):6.0f} {med(2):7.1f} {med(3):7.1f} {med(4):10.1f} {med(5):10.2f} {sum(x[6] for x in v):7}")
PY
