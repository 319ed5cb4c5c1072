#!/bin/sh
# scripts/bench.sh [BUILD_DIR] [N...]: every benchmark of docs/performance.md,
# one after the other, with the machine they ran on. BUILD_DIR (default
# build-rel) should be a release build:
#   nice -n 10 ./scripts/build.sh build-rel -DCMAKE_BUILD_TYPE=Release
# N: the bench_relay sizes (default 100 500 1000). Prints figures; never
# fails on speed (a bench that cannot complete exits non-zero, after the
# others have run).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build-rel}
[ $# -gt 0 ] && shift
sizes=${*:-100 500 1000}
bin=$(cd "$dir/bin" && pwd)
for b in bench_rpc bench_relay bench_upstream cep-runner; do
	if [ ! -x "$bin/$b" ]; then
		echo "bench.sh: no $bin/$b; build first (see the top of $0)" >&2
		exit 2
	fi
done
echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
	"$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r)"
echo "== load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== build: $dir ($(grep -m1 CMAKE_BUILD_TYPE: "$dir/CMakeCache.txt" | cut -d= -f2))," \
	"commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "== bench_rpc (the bus alone)"
"$bin/bench_rpc"
if [ -x "$bin/bench_grpc" ]; then
	echo "== gRPC side by side (bench_grpc: the same calls over cep's bus and gRPC C++)"
	"$bin/bench_grpc"
else
	echo "== gRPC side by side: skipped (no bench_grpc: it needs gRPC's C++ packages, scripts/deps.sh)"
fi
failed=""
for n in $sizes; do
	echo "== bench_relay -n $n (real relay + delegate, $n simulated runners)," \
		"load average $(cut -d' ' -f1-3 /proc/loadavg)"
	# a size that cannot complete a phase says so; the others still run
	"$bin/bench_relay" -n "$n" || failed="$failed $n"
done
echo "== runner footprint (a host run, real cep-runner)"
CEP_BIN_DIR=$bin python3 "$top/tests/bench/runner_footprint.py" 5
if [ "$(id -u)" = 0 ] && command -v kubectl >/dev/null; then
	echo "== runner footprint in a Pod of the Kubernetes API test server"
	CEP_BIN_DIR=$bin python3 "$top/tests/bench/runner_footprint.py" --kube 3
else
	echo "== runner footprint in a Pod: skipped (needs root and kubectl)"
fi
if [ "$(id -u)" = 0 ] && [ -x "$bin/bench_kube" ]; then
	echo "== bench_kube (delegate launches: 10 Kubernetes API test servers)"
	"$bin/bench_kube"
else
	echo "== bench_kube: skipped (needs root)"
fi
echo "== bench_upstream (relay -> reference control plane)"
"$bin/bench_upstream"
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$failed" ]; then
	echo "== bench_relay FAILED at N =$failed (see above)" >&2
	exit 1
fi
