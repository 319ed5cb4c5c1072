#!/bin/sh
# scripts/fuzz.sh SECONDS: builds the libFuzzer targets with clang and runs
# each for SECONDS, seeded from tests/fuzz/corpus/<target>/ and the
# regression inputs tests/fuzz/regressions/<target>/ when present.
# A crash, leak or timeout fails the run and leaves the input in build-fuzz/.
#
# scripts/fuzz.sh --long [SECONDS_MAX]: the campaign (docs/testing.md).
# Each target runs until it has made CEP_FUZZ_MIN_EXECS executions
# (default 10000000) and its coverage (cov or ft) has not grown for
# CEP_FUZZ_PLATEAU seconds (default 300), at most SECONDS_MAX (default
# 600); two targets at a time (CEP_FUZZ_TARGETS: only these, by name). A crash is kept under
# tests/fuzz/regressions/<target>/ and the target goes on for the time
# left. At the end the new inputs are merged (-merge=1) into
# tests/fuzz/corpus/<target>/ and a line per target is printed:
# executions, cov, ft, crashes. Work files: build-fuzz/long/.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
opts="-max_len=65536 -timeout=10 -rss_limit_mb=2048"

short() {
	secs=$1
	cd "$top/build-fuzz"
	for f in bin/fuzz_*; do
		[ -x "$f" ] || continue
		name=$(basename "$f")
		work="corpus-$name"
		mkdir -p "$work"
		seeds=""
		for d in "$top/tests/fuzz/corpus/$name" \
		    "$top/tests/fuzz/regressions/$name"; do
			[ -d "$d" ] && seeds="$seeds $d"
		done
		echo "fuzz: $name for ${secs}s"
		# shellcheck disable=SC2086
		"$f" -max_total_time="$secs" $opts -print_final_stats=0 \
			"$work" $seeds >"$name.log" 2>&1 || {
			tail -40 "$name.log" >&2
			echo "fuzz: $name FAILED (log: build-fuzz/$name.log)" >&2
			exit 1
		}
	done
	echo "fuzz: all targets ran clean"
}

# "#1234	NEW    cov: 5 ft: 9 corp: ... exec/s: 77 ..." -> "1234 5 9 77"
last_status() {
	grep -a '^#[0-9]' "$1" 2>/dev/null | tail -1 | sed -n \
	    's/^#\([0-9]*\).*cov: \([0-9]*\) ft: \([0-9]*\).*exec\/s: \([0-9]*\).*/\1 \2 \3 \4/p'
}

final_execs() {
	sed -n 's/^stat::number_of_executed_units: *//p' "$1" | tail -1
}

# One libFuzzer run of target $1 for at most $2 s, logged in $3; stops it
# (SIGINT: it prints its final stats) once the executions so far (the
# last status line plus its rate since) reach $4 and coverage has not
# grown for the plateau. $5: the regression inputs too (not after a
# crash: the new one is among them). Prints "stopped" or "ended".
run_once() {
	name=$1 left=$2 log=$3 need=$4
	d="$top/build-fuzz/long/$name"
	seeds=""
	[ -d "$top/tests/fuzz/corpus/$name" ] &&
		seeds="$top/tests/fuzz/corpus/$name"
	[ "$5" = yes ] && [ -d "$top/tests/fuzz/regressions/$name" ] &&
		seeds="$seeds $top/tests/fuzz/regressions/$name"
	# shellcheck disable=SC2086
	nice -n "${CEP_FUZZ_NICE:-0}" "$top/build-fuzz/bin/$name" \
		-max_total_time="$left" $opts -print_final_stats=1 \
		-artifact_prefix="$d/artifacts/" "$d/corpus" $seeds \
		>"$log" 2>&1 &
	pid=$!
	start=$(date +%s) grown=$(date +%s) seen="" cov=0 ft=0 at=$start
	while kill -0 "$pid" 2>/dev/null; do
		sleep 5
		now=$(date +%s)
		st=$(last_status "$log")
		[ -n "$st" ] || continue
		# shellcheck disable=SC2086 # the four numbers
		set -- $st
		if [ "$1" != "$seen" ]; then
			seen=$1 at=$now
		fi
		if [ "$2" -gt "$cov" ] || [ "$3" -gt "$ft" ]; then
			cov=$2 ft=$3 grown=$now
		fi
		est=$(( $1 + $4 * (now - at) ))
		if [ "$est" -ge "$need" ] && [ $((now - grown)) -ge "$plateau" ]; then
			kill -INT "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			echo stopped
			return
		fi
	done
	wait "$pid" 2>/dev/null || true
	echo ended
}

# A target's campaign: runs until stopped or out of time, restarting
# after each crash; keeps the crash inputs; writes its summary line.
campaign() {
	name=$1
	d="$top/build-fuzz/long/$name"
	rm -rf "$d"
	mkdir -p "$d/corpus" "$d/artifacts"
	t0=$(date +%s) execs=0 n=0 why=time
	while :; do
		left=$((secs_max - ($(date +%s) - t0)))
		[ "$left" -ge 5 ] || break
		n=$((n + 1))
		regr=no
		[ "$n" -eq 1 ] && regr=yes
		how=$(run_once "$name" "$left" "$d/run$n.log" \
		    $((min_execs - execs)) "$regr")
		e=$(final_execs "$d/run$n.log")
		execs=$((execs + ${e:-0}))
		[ "$how" = stopped ] && { why=plateau; break; }
		crashed=""
		for a in "$d/artifacts"/*; do   # a crash: keep it, go on
			[ -e "$a" ] || continue
			crashed=1
			mkdir -p "$top/tests/fuzz/regressions/$name"
			mv "$a" "$top/tests/fuzz/regressions/$name/"
			echo "$a" >>"$d/crashes"
		done
		[ -n "$crashed" ] || break   # time is up
	done
	st=$(last_status "$d/run$n.log")
	# shellcheck disable=SC2086 # the four numbers
	set -- ${st:-0 0 0 0}
	crashes=0
	[ -f "$d/crashes" ] && crashes=$(sort -u "$d/crashes" | wc -l)
	printf '%-22s %12s %7s %8s %8s %6ss %s\n' "$name" "$execs" "$2" "$3" \
	    "$crashes" "$(($(date +%s) - t0))" "$why" >"$d/summary"
}

long() {
	secs_max=$1
	min_execs=${CEP_FUZZ_MIN_EXECS:-10000000}
	plateau=${CEP_FUZZ_PLATEAU:-300}
	cd "$top/build-fuzz"
	rm -rf long
	targets=${CEP_FUZZ_TARGETS:-$(for f in bin/fuzz_*; do
		[ -x "$f" ] && basename "$f"; done)}
	# two lanes, one per core: every other target each
	lane() {
		i=0
		for name in $targets; do
			[ $((i % 2)) -eq "$1" ] && campaign "$name"
			i=$((i + 1))
		done
	}
	lane 0 & l0=$!
	lane 1 & l1=$!
	wait "$l0" "$l1"
	for name in $targets; do   # new inputs into the checked-in corpus
		mkdir -p "$top/tests/fuzz/corpus/$name"
		# shellcheck disable=SC2086
		"bin/$name" -merge=1 $opts "$top/tests/fuzz/corpus/$name" \
			"long/$name/corpus" >"long/$name/merge.log" 2>&1 ||
			echo "fuzz: merging $name failed (long/$name/merge.log)" >&2
	done
	printf '%-22s %12s %7s %8s %8s %7s %s\n' target executions cov ft \
	    crashes time stop
	cat long/*/summary | tee long/summary.txt
	! grep -q . long/*/crashes 2>/dev/null
}

# CEP_FUZZ_BUILT=1: the targets in build-fuzz/ are current, skip the build
[ "${CEP_FUZZ_BUILT:-}" = 1 ] ||
	CC=clang "$top/scripts/build.sh" "$top/build-fuzz" -DCEP_FUZZ=ON -DCEP_TESTS=ON
if [ "${1:-}" = "--long" ]; then
	long "${2:-600}"
else
	short "${1:-10}"
fi
