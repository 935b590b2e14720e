#!/usr/bin/env bash
# Profiles one S3 workload on a fresh `shale dev` cluster (6 nodes, 3 zones,
# 4+2, 3 meta replicas): every process serves net/http/pprof on loopback
# (SHALE_PPROF), and while `shale bench s3` runs, a CPU profile of the
# gateway and of node-1 and, afterwards, their block, mutex, heap and
# goroutine profiles are saved to OUT; with ALL_NODES=1 every node's CPU
# profile too (OUT/node-N.cpu; `go tool pprof -top OUT/node-*.cpu` merges
# them, six times node-1's samples). The meta leader is profiled through its
# pprof (OUT/meta-leader.cpu), or, a build whose meta serves none, sampled
# with `perf record -g` into OUT/meta-leader.perf.data when perf is there.
# Usage: scripts/profile-s3.sh OUT OP SIZE CONCURRENCY [DURATION] (OUT: an
# absolute directory outside the repository)
#   e.g. scripts/profile-s3.sh /tmp/prof put 1MiB 1 10s
# SHALE_BENCH_DIR=dir puts the cluster's data there (default $TMPDIR or /tmp).
# SHALE_BIN=/abs/path uses that binary instead of building bin/shale.
# SHALE_BENCH_ARGS adds `shale bench s3` flags (e.g. "--checksum when_required
# --keys 64").
# Read with: go tool pprof -top OUT/gateway.cpu; perf report -i
# OUT/meta-leader.perf.data --stdio --no-children --sort sym -g none
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1 op=$2 size=$3 conc=$4 dur=${5:-10s}
secs=${dur%s}
mkdir -p "$out"
bin=${SHALE_BIN:-}
if [ -z "$bin" ]; then
	make -s build
	bin=bin/shale
fi
data=$(mktemp -d -p "${SHALE_BENCH_DIR:-${TMPDIR:-/tmp}}")
port=$((20000 + RANDOM % 20000))
SHALE_PPROF=127.0.0.1:0 "$bin" dev --data "$data" --s3 127.0.0.1:$port >"$data/dev.out" 2>&1 &
dev=$!
trap 'kill $dev 2>/dev/null; wait $dev 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 120); do grep -q "cluster ready" "$data/dev.out" 2>/dev/null && break; sleep 0.5; done
grep -q "cluster ready" "$data/dev.out" || { cat "$data/dev.out"; exit 1; }
ak=$(sed -n 's/.*"access_key": *"\([^"]*\)".*/\1/p' "$data/credentials.json")
sk=$(sed -n 's/.*"secret_key": *"\([^"]*\)".*/\1/p' "$data/credentials.json")
addr() { sed -n 's/.*pprof listening on \([0-9.:]*\).*/\1/p' "$data/logs/$1.log" | tail -1; }
gwp=$(addr gateway) n1p=$(addr node-1)
leader=$("$bin" admin meta status --data "$data" --json | python3 -c '
import json,sys
print(" ".join(str(r.get(k, "")) for r in json.load(sys.stdin) if r.get("state") == "leader" for k in ("id", "pid")))')
mid= mpid= mp=
read -r mid mpid <<<"$leader" || true
[ -z "$mid" ] || mp=$(addr "$mid")
echo "load $(cut -d' ' -f1-3 /proc/loadavg); gateway pprof $gwp, node-1 pprof $n1p, meta leader $mid pid $mpid ${mp:+pprof $mp}"
"$bin" bench s3 --endpoint "http://127.0.0.1:$port" --access "$ak" --secret "$sk" \
	--op "$op" --size "$size" --concurrency "$conc" --duration "$dur" --json ${SHALE_BENCH_ARGS:-} >"$out/bench.json" 2>"$out/bench.stderr" &
bench=$!
# Profiles start 1 s into the run phase (get's uploads come before it).
until grep -aq "run:" "$out/bench.stderr" 2>/dev/null || ! kill -0 $bench 2>/dev/null; do sleep 0.05; done
sleep 1
prof=$((secs > 3 ? secs - 2 : 1))
curl -s -o "$out/gateway.cpu" "http://$gwp/debug/pprof/profile?seconds=$prof" &
c1=$!
curl -s -o "$out/node1.cpu" "http://$n1p/debug/pprof/profile?seconds=$prof" &
c2=$!
nodes=()
if [ -n "${ALL_NODES:-}" ]; then
	for l in "$data"/logs/node-*.log; do
		n=$(basename "$l" .log)
		[ "$n" != node-1 ] || continue # node1.cpu below; one CPU profile at a time per process
		curl -s -o "$out/$n.cpu" "http://$(addr "$n")/debug/pprof/profile?seconds=$prof" &
		nodes+=($!)
	done
fi
c3=
if [ -n "$mp" ]; then
	curl -s -o "$out/meta-leader.cpu" "http://$mp/debug/pprof/profile?seconds=$prof" &
	c3=$!
elif [ -n "$mpid" ] && command -v perf >/dev/null; then
	perf record -q -F 499 -g -p "$mpid" -o "$out/meta-leader.perf.data" -- sleep "$prof" 2>/dev/null &
	c3=$!
fi
wait $bench $c1 $c2 $c3 "${nodes[@]}"
[ -z "${ALL_NODES:-}" ] || cp "$out/node1.cpu" "$out/node-1.cpu"
for p in block mutex goroutine heap; do
	curl -s -o "$out/gateway.$p" "http://$gwp/debug/pprof/$p"
	curl -s -o "$out/node1.$p" "http://$n1p/debug/pprof/$p"
done
cat "$out/bench.json"; echo
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
