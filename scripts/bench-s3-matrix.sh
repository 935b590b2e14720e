#!/usr/bin/env bash
# The S3 benchmark matrix of docs/bench/s3.md: a fresh `shale dev` cluster
# (6 nodes, 3 zones, 4+2), then `shale bench s3` for 1 MiB and 16 MiB PUT and
# GET at concurrency 1, 8 and 32, and 4 KiB PUT at 32; finally the gateway's
# peak RSS (VmHWM). Usage: scripts/bench-s3-matrix.sh [DURATION] (default 10s).
# SHALE_BENCH_DIR=dir puts the cluster's data there (default $TMPDIR or /tmp).
# SHALE_BIN=/abs/path runs that binary instead of building bin/shale (to compare
# builds side by side); SHALE_PPROF=127.0.0.1:0 makes every process serve
# net/http/pprof (see `shale gateway --pprof`).
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}
bin=${SHALE_BIN:-}
if [ -z "$bin" ]; then
	make -s build
	bin=bin/shale
fi
data=$(mktemp -d -p "${SHALE_BENCH_DIR:-${TMPDIR:-/tmp}}")
port=$((20000 + RANDOM % 20000))
"$bin" dev --data "$data" --s3 127.0.0.1:$port >"$data/dev.out" 2>&1 &
dev=$!
trap 'kill $dev 2>/dev/null; wait $dev 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 120); do grep -q "cluster ready" "$data/dev.out" 2>/dev/null && break; sleep 0.5; done
grep -q "cluster ready" "$data/dev.out" || { cat "$data/dev.out"; exit 1; }
ak=$(sed -n 's/.*"access_key": *"\([^"]*\)".*/\1/p' "$data/credentials.json")
sk=$(sed -n 's/.*"secret_key": *"\([^"]*\)".*/\1/p' "$data/credentials.json")
gw=$(sed -n 's/.*"gateway_pid": *\([0-9]*\).*/\1/p' "$data/cluster.json")
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
run() {
	"$bin" bench s3 --endpoint "http://127.0.0.1:$port" --access "$ak" --secret "$sk" \
		--op "$1" --size "$2" --concurrency "$3" --duration "$dur" --quiet --json
}
printf '%-4s %-6s %4s %10s %10s %9s %9s %7s\n' op size conc MB/s ops/s p50_ms p99_ms errors
for spec in "put 1MiB 1" "put 1MiB 8" "put 1MiB 32" "get 1MiB 1" "get 1MiB 8" "get 1MiB 32" \
	"put 16MiB 1" "put 16MiB 8" "put 16MiB 32" "get 16MiB 1" "get 16MiB 8" "get 16MiB 32" "put 4KiB 32"; do
	set -- $spec
	run "$1" "$2" "$3" | python3 -c '
import json,sys
r=json.load(sys.stdin)
print("%-4s %-6s %4d %10.1f %10.1f %9.1f %9.1f %7d" % (r["op"], sys.argv[1], r["concurrency"], r["mbps"], r["ops_per_s"], r["p50_ms"], r["p99_ms"], r.get("errors_total", 0)))' "$2"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "gateway peak RSS: $(grep VmHWM /proc/$gw/status | awk '{printf "%.1f MiB", $2/1024}')"
