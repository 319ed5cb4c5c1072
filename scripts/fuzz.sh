#!/bin/sh
# scripts/fuzz.sh SECONDS: builds the libFuzzer targets with clang and runs
# each for SECONDS, seeded from tests/fuzz/corpus/<target>/ when present.
# A crash, leak or timeout fails the run and leaves the input in build-fuzz/.
set -eu
secs=${1:-10}
top=$(cd "$(dirname "$0")/.." && pwd)
CC=clang "$top/scripts/build.sh" "$top/build-fuzz" -DCEP_FUZZ=ON -DCEP_TESTS=ON
cd "$top/build-fuzz"
for f in bin/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	work="corpus-$name"
	mkdir -p "$work"
	seeds="$top/tests/fuzz/corpus/$name"
	[ -d "$seeds" ] || seeds=""
	echo "fuzz: $name for ${secs}s"
	"$f" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=0 "$work" $seeds >"$name.log" 2>&1 || {
		tail -40 "$name.log" >&2
		echo "fuzz: $name FAILED (log: build-fuzz/$name.log)" >&2
		exit 1
	}
done
echo "fuzz: all targets ran clean"
