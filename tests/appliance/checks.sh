#!/bin/bash
# checks.sh - the appliance test's checks, run INSIDE a booted root by
# cep-apptest.service (a oneshot ordered after multi-user.target) with no
# manual step. The host (tests/appliance/appliance_test.py) installs this
# file and /etc/cep-apptest/mode ("main", "rpm" or "cp"), boots the root
# with systemd-nspawn -b and reads, after the container powered off:
#   /var/lib/cep-apptest/results   one line per check: "PASS name[: detail]"
#                                   or "FAIL name: why"
#   /var/lib/cep-apptest/data      key=value facts for host-side checks
#   /var/lib/cep-apptest/log       this script's trace and the units' journal
# The checks are written for the target design of issue 9 (privilege
# separation, signer, launcher, first boot, credentials); on a tree without
# it they fail with the reason, they are never skipped.
set -u
OUT=/var/lib/cep-apptest
mkdir -p "$OUT"
RES=$OUT/results
DATA=$OUT/data
: >"$RES"
: >"$DATA"
exec >"$OUT/log" 2>&1
MODE=$(cat /etc/cep-apptest/mode 2>/dev/null || echo main)
NS=apptest
WORK=$OUT/work # the experiments and cepctl outputs, kept for the host
rm -rf "$WORK"
mkdir -p "$WORK"
DAEMONS="cep-relay cep-delegate cep-signer cep-launcher"

pass() { echo "PASS $1${2:+: $2}" >>"$RES"; echo "== PASS $1 ${2:-}"; }
fail() { echo "FAIL $1: $2" >>"$RES"; echo "== FAIL $1: $2"; }
fact() { echo "$1=$2" >>"$DATA"; }
now() { date +%s; }

# wait_active TIMEOUT UNIT...: 0 once every unit is active
wait_active() {
	local end=$(($(now) + $1)) u
	shift
	while :; do
		local ok=1
		for u in "$@"; do
			# a unit that does not exist or gave up will not come
			case $(systemctl show -p LoadState --value "$u")/$(systemctl show -p ActiveState --value "$u") in
			loaded/active | not-found/* | */failed) ;;
			*) ok=0 ;;
			esac
		done
		[ $ok = 1 ] && break
		[ "$(now)" -ge $end ] && return 1
		sleep 0.5
	done
	for u in "$@"; do
		systemctl is-active -q "$u" || return 1
	done
}

# lastlog UNIT: the unit's own last word (its processes', not systemd's)
lastlog() {
	journalctl -b "_SYSTEMD_UNIT=${1%.service}.service" -n 1 -o cat --no-pager 2>/dev/null | cut -c1-200
}

# why UNIT: its state in a few words, for a FAIL line
why() {
	if [ "$(systemctl show -p LoadState --value "$1")" = not-found ]; then
		echo "no such unit"
		return
	fi
	local last
	last=$(lastlog "$1")
	echo "$(systemctl show -p ActiveState --value "$1")/$(systemctl show -p SubState --value "$1"), result $(systemctl show -p Result --value "$1")${last:+, last log: $last}"
}

# firstboot_ok: cep-firstboot.service ran once, successfully, this boot
firstboot_ok() {
	local s
	s=$(systemctl show -p LoadState,ActiveState,Result,ExecMainStartTimestampMonotonic \
		cep-firstboot.service)
	echo "$s" | grep -qx LoadState=loaded &&
		echo "$s" | grep -qx Result=success &&
		! echo "$s" | grep -qx ActiveState=failed &&
		! echo "$s" | grep -qx ExecMainStartTimestampMonotonic=0
}

# services NAME: every daemon active, first boot done, within 90 s of boot
check_services() {
	local name=$1 bad="" u
	wait_active 90 $DAEMONS
	for u in $DAEMONS; do
		systemctl is-active -q "$u" || bad="$bad $u not active ($(why "$u"));"
	done
	if ! firstboot_ok; then
		local fb=cep-firstboot.service
		if [ "$(systemctl show -p LoadState --value $fb)" = not-found ]; then
			bad="$bad $fb: no such unit;"
		else
			bad="$bad $fb did not succeed this boot ($(why $fb), ran: $(systemctl show -p ExecMainStartTimestamp --value $fb | sed 's/^$/no/'), condition: $(systemctl show -p ConditionResult --value $fb));"
		fi
	fi
	if [ -z "$bad" ]; then
		pass "$name" "$DAEMONS active, cep-firstboot succeeded"
	else
		bad=${bad# }; fail "$name" "${bad%;}"
	fi
}

check_status() {
	if timeout 20 cepctl status >"$WORK/status" 2>&1; then
		pass status "cepctl status exit 0"
	else
		local rc=$?
		fail status "cepctl status exit $rc: $(brief "$WORK/status" $rc)"
	fi
}

# experiment NAME DURATION FAULT_SECONDS: a host run with a network-loss
# fault on the namespace $NS and a cpu-hog, to stdout
experiment() {
	cat <<EOF
apiVersion: cep.io/v1
kind: Experiment
metadata:
  name: $1
spec:
  target:
    kind: host
  duration: $2
  faults:
    - name: lossy
      type: network-loss
      netns: $NS
      percent: 30
      direction: egress
      cidrs: ["10.0.0.0/8"]
      duration: $3
    - name: burn
      type: cpu-hog
      workers: 1
      load: 50%
      duration: $3
  probes:
    - name: netns-alive
      type: cmd
      mode: end-of-test
      command: ["ip", "netns", "exec", "$NS", "true"]
EOF
}

capeff() { # capeff UNIT: CapEff of its main process, or why there is none
	local pid
	pid=$(systemctl show -p MainPID --value "$1")
	if [ -z "$pid" ] || [ "$pid" = 0 ]; then echo not-running; return; fi
	awk '/^CapEff:/{print $2}' "/proc/$pid/status" 2>/dev/null || echo unreadable
}
cep_tables() { ip netns exec $NS nft list tables 2>/dev/null | grep ' cep_' || :; }
runners() { # pids of cep-runner processes
	local p
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = cep-runner ] && echo "${p#/proc/}"
	done
}
# brief FILE [EXIT]: why a cepctl command failed, in one line: the report's
# verdict and reason, else the end of its output
brief() {
	local r
	r="$(grep -o 'verdict: [A-Za-z]*' "$1" 2>/dev/null | tail -n1) $(grep -o 'reason: .*' "$1" 2>/dev/null | tail -n1)"
	[ "$r" != " " ] || r=$(tail -c 300 "$1" 2>/dev/null | tr '\n' ' ')
	[ -n "$r" ] || r="no output"
	[ "${2:-}" != 124 ] || r="timed out; $r; cep-delegate's last log: $(lastlog cep-delegate)"
	echo "${r% } (${1#"$OUT"/})"
}
run_id_of() { sed -n 's/.*run \([^ ]*\) submitted.*/\1/p' "$1" 2>/dev/null | head -n1; }

# host-run + capeff: the run passes, its rule is seen in the namespace, and
# relay and delegate have CapEff 0 in every sample taken while it runs
check_host_run() {
	experiment apptest-host 15s 10s >"$WORK/host.yaml"
	timeout 90 cepctl run "$WORK/host.yaml" >"$WORK/host.out" 2>&1 &
	local pid=$! seen_rule=no n=0 bad="" c u
	while kill -0 $pid 2>/dev/null; do
		[ -n "$(cep_tables)" ] && seen_rule=yes
		for u in cep-relay cep-delegate; do
			c=$(capeff $u)
			[ "$c" = 0000000000000000 ] || bad="$bad $u=$c"
		done
		n=$((n + 1))
		sleep 0.5
	done
	wait $pid
	local rc=$?
	fact host_run_id "$(run_id_of "$WORK/host.out")"
	if [ $rc = 0 ] && [ $seen_rule = yes ]; then
		pass host-run "cepctl run exit 0, network-loss table seen in netns $NS"
	else
		fail host-run "cepctl run exit $rc, rule seen in netns $NS: $seen_rule; $(brief "$WORK/host.out" $rc)"
	fi
	if [ $n -lt 3 ]; then
		fail capeff "only $n samples during the run"
	elif [ -n "$bad" ]; then
		bad=$(echo "$bad" | tr ' ' '\n' | sort -u | tr '\n' ' ')
		fail capeff "CapEff not 0 in $n samples during the run:${bad% }"
	else
		pass capeff "cep-relay and cep-delegate CapEff 0 in $n samples during the run"
	fi
}

check_security() {
	local u e all="" bad=""
	for u in cep-relay cep-delegate; do
		e=$(systemd-analyze security --no-pager $u.service 2>&1 |
			sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
		[ -n "$e" ] || e=unknown
		all="$all $u.service $e,"
		if [ "$e" = unknown ] || awk -v e="$e" 'BEGIN{exit !(e > 2.0)}'; then
			bad=yes
		fi
	done
	all="exposure${all%,} (limit 2.0)"
	if [ -z "$bad" ]; then pass security "$all"; else fail security "$all"; fi
}

# ca-key: the CA key exists, root reads it, the relay's user cannot, and
# neither can the delegate's once a signer user holds it
check_ca_key() {
	local keys="" k users=cep-relay u bad="" note=""
	for k in /var/lib/cep-signer/ca.key /var/lib/cep-signer/pki/ca.key /var/lib/cep/pki/ca.key; do
		[ -f "$k" ] && keys="$keys $k"
	done
	if [ -z "$keys" ]; then
		fail ca-key "no CA key found (/var/lib/cep-signer/ca.key, /var/lib/cep/pki/ca.key)"
		return
	fi
	if getent passwd cep-signer >/dev/null; then
		users="cep-relay cep-delegate"
	else
		note=" (no cep-signer user: cep-delegate not checked)"
	fi
	for k in $keys; do
		cat "$k" >/dev/null 2>&1 || bad="$bad root cannot read $k;"
		for u in $users; do
			# the daemon's user with all its groups (cep), no capabilities
			if setpriv --reuid "$u" --regid "$(id -g "$u")" --init-groups \
				cat "$k" >/dev/null 2>&1; then
				bad="$bad $u can read $k;"
			fi
		done
	done
	if [ -z "$bad" ]; then
		pass ca-key "$users cannot open$keys$note"
	else
		bad=${bad# }; fail ca-key "${bad%;}$note"
	fi
}

# stop-during-run: `systemctl stop cep-delegate` while a run holds a rule
# in $NS and a runner: afterwards no table, no runner, no identity
check_stop_during_run() {
	experiment apptest-stop 120s 110s >"$WORK/stop.yaml"
	timeout 150 cepctl run "$WORK/stop.yaml" >"$WORK/stop.out" 2>&1 &
	local pid=$! end=$(($(now) + 40)) run=""
	while [ "$(now)" -lt $end ]; do
		run=$(run_id_of "$WORK/stop.out")
		[ -n "$run" ] && [ -n "$(cep_tables)" ] && [ -n "$(runners)" ] && break
		sleep 0.5
	done
	fact stop_run_id "$run"
	if [ -z "$run" ] || [ -z "$(cep_tables)" ] || [ -z "$(runners)" ]; then
		local t r
		t=$(cep_tables | tr '\n' ' ')
		r=$(runners | tr '\n' ' ')
		fail stop-during-run "the run never got going in 40 s (run id '${run}', tables in $NS: ${t:-none}, cep-runner pids: ${r:-none}): $(brief "$WORK/stop.out")"
		kill $pid 2>/dev/null
		wait $pid 2>/dev/null
		return
	fi
	sleep 2
	local t0 left
	t0=$(now)
	timeout 90 systemctl stop cep-delegate || echo "systemctl stop: exit $?"
	# what the stop left behind, polled for 20 s more (a cleanup may be
	# asynchronous to the stop; it must be done by then)
	end=$(($(now) + 20))
	while :; do
		left=""
		[ -z "$(cep_tables)" ] || left="$left tables in $NS: $(cep_tables | tr '\n' ' ');"
		[ -z "$(runners)" ] || left="$left cep-runner pids: $(runners | tr '\n' ' ');"
		local ids
		ids=$(find /run /var/lib -path "*$run*" \( -name identity -o -name runner.key \) 2>/dev/null | tr '\n' ' ')
		[ -z "$ids" ] || left="$left identity files: $ids;"
		[ -z "$left" ] || [ "$(now)" -ge $end ] && break
		sleep 1
	done
	kill $pid 2>/dev/null
	wait $pid 2>/dev/null
	if [ -z "$left" ]; then
		pass stop-during-run "run $run: stop took $(($(now) - t0))s, no table, runner or identity left"
	else
		fail stop-during-run "run $run, after systemctl stop cep-delegate:${left%;}"
	fi
}

check_restart() {
	local bad=""
	timeout 60 systemctl start cep-relay cep-delegate || bad="$bad systemctl start exit $?;"
	wait_active 30 cep-relay cep-delegate ||
		bad="$bad not active: $(why cep-relay) / $(why cep-delegate);"
	timeout 20 cepctl status >"$WORK/status2" 2>&1 || bad="$bad cepctl status exit $?;"
	experiment apptest-restart 6s 3s >"$WORK/short.yaml"
	timeout 60 cepctl run "$WORK/short.yaml" >"$WORK/short.out" 2>&1
	local rc=$?
	[ $rc = 0 ] || bad="$bad short run exit $rc: $(brief "$WORK/short.out" $rc);"
	if [ -z "$bad" ]; then
		pass restart "both active again, cepctl status answers, run $(run_id_of "$WORK/short.out") passed"
	else
		bad=${bad# }; fail restart "${bad%;}"
	fi
}

check_ldd() {
	local b libs bad=""
	for b in /usr/bin/cep-delegate /usr/bin/cep-relay; do
		libs=$(ldd "$b" 2>&1 | grep -Eio 'lib[a-z_0-9-]*(nftables|nftnl|mnl|netfilter)[a-z_0-9.-]*' | sort -u | tr '\n' ' ')
		[ -z "$libs" ] || bad="$bad $(basename "$b") links ${libs% };"
	done
	if [ -z "$bad" ]; then
		pass ldd "cep-delegate and cep-relay link no nftables/nftnl/mnl/netfilter library"
	else
		bad=${bad# }; fail ldd "${bad%;}"
	fi
}

main_checks() {
	check_services services
	check_status
	ip netns add $NS || echo "ip netns add $NS failed"
	check_host_run
	check_security
	check_ca_key
	check_stop_during_run
	check_restart
	check_ldd
	ip netns del $NS
}

# control plane (root "cp", host network): configure the plane the host
# started (/etc/cep-apptest/cp/{url,ca.crt,token,ports}) as docs/install.md
# tells an operator: `cepctl init --control-plane ...` on the installed
# appliance copies the token and the plane's CA root-only into
# /etc/cep/credentials (which the units load as each daemon's own systemd
# credential) and adds the settings to /etc/cep/cep.yaml. This root shares
# the host's network: the relay and metrics ports are ones the host found
# free, instead of the defaults.
CRED=/etc/cep/credentials
cp_configure() {
	local rp rm dm
	read -r rp rm dm </etc/cep-apptest/cp/ports
	timeout 30 cepctl init --control-plane "$(cat /etc/cep-apptest/cp/url)" \
		--control-plane-ca /etc/cep-apptest/cp/ca.crt \
		--control-plane-token /etc/cep-apptest/cp/token \
		--relay-listen "tls+tcp://127.0.0.1:$rp" --relay-advertise "tls+tcp://127.0.0.1:$rp" \
		--relay-metrics "127.0.0.1:$rm" --delegate-metrics "127.0.0.1:$dm" \
		--replace-config-keys >"$WORK/cp-init.out" 2>&1
	fact cp_init_exit $?
	# the boot's attempts (default ports) may have hit the start limit
	systemctl reset-failed cep-relay cep-delegate
	timeout 60 systemctl restart cep-relay cep-delegate
}

# cp-daemons: with the plane configured both run, and each holds the token
# as its own credential (owned by its user) while neither user can open
# the file itself
check_cp_daemons() {
	local bad="" u pid dir c hp
	[ "$(sed -n 's/^cp_init_exit=//p' "$DATA")" = 0 ] ||
		bad="$bad cepctl init --control-plane failed: $(brief "$WORK/cp-init.out");"
	[ -f $CRED/cp-token ] || bad="$bad no $CRED/cp-token after cepctl init;"
	# the plane listens on the host's loopback, which this root shares
	hp=$(sed 's|^https://||; s|/.*||' /etc/cep-apptest/cp/url)
	timeout 5 bash -c "exec 3<>/dev/tcp/${hp%:*}/${hp##*:}" 2>/dev/null ||
		bad="$bad the plane at $hp is unreachable from this root;"
	wait_active 30 cep-relay cep-delegate
	sleep 3 # a daemon that cannot read its token exits at once (Restart=)
	for u in cep-relay cep-delegate; do
		systemctl is-active -q $u || { bad="$bad $u not active ($(why $u));"; continue; }
		pid=$(systemctl show -p MainPID --value $u)
		dir=$(tr '\0' '\n' <"/proc/$pid/environ" | sed -n 's/^CREDENTIALS_DIRECTORY=//p')
		c=$(ls -d "$dir"/*_cp-token 2>/dev/null | head -n1)
		if [ -z "$dir" ] || [ -z "$c" ]; then
			bad="$bad $u has no cp-token credential (CREDENTIALS_DIRECTORY '${dir}');"
		elif [ "$(stat -c %U "$c")" != "$u" ]; then
			bad="$bad $u's credential $c is owned by $(stat -c %U "$c");"
		fi
		setpriv --reuid $u --regid "$(id -g $u)" --init-groups cat $CRED/cp-token \
			>/dev/null 2>&1 && bad="$bad $u can read $CRED/cp-token itself;"
	done
	if [ -z "$bad" ]; then
		pass cp-daemons "cep-relay and cep-delegate active with the plane configured, each with its own cp-token credential"
	else
		bad=${bad# }; fail cp-daemons "${bad%;}"
	fi
}

cp_checks() {
	wait_active 90 cep-relay cep-delegate
	cp_configure
	check_cp_daemons
	cat >"$WORK/cp.yaml" <<EOF
apiVersion: cep.io/v1
kind: Experiment
metadata:
  name: apptest-cp
spec:
  target:
    kind: host
  duration: 4s
  faults:
    - name: burn
      type: cpu-hog
      workers: 1
      load: 30%
EOF
	timeout 60 cepctl run "$WORK/cp.yaml" >"$WORK/cp.out" 2>&1
	local rc=$?
	if [ $rc = 0 ]; then
		pass cp-run "run $(run_id_of "$WORK/cp.out") passed"
	else
		fail cp-run "cepctl run exit $rc: $(brief "$WORK/cp.out" $rc)"
	fi
	# the name the delegate registered with, as it says (cep.yaml may
	# leave it to the host name)
	fact appliance "$(timeout 10 cepctl status 2>/dev/null | sed -n 's/^appliance *\([^ ]*\).*/\1/p' | head -n1)"
	fact cp_run_id "$(run_id_of "$WORK/cp.out")"
	# stay up while the host looks for the run's events at the plane
	local end=$(($(now) + 60))
	while [ ! -e "$OUT/host-done" ] && [ "$(now)" -lt $end ]; do
		sleep 0.5
	done
}

case $MODE in
main) main_checks ;;
rpm)
	check_services rpm-root
	;;
cp) cp_checks ;;
*) fail mode "unknown mode $MODE" ;;
esac

journalctl -b --no-pager -o short-monotonic -u 'cep-*' >"$OUT/journal" 2>&1
echo "done" >>"$DATA"
exit 0
