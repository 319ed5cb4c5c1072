#!/bin/bash
# tests/appliance/dev-checks.sh - runs inside the booted root of
# dev-boot.sh (a oneshot unit) and writes /result.txt: the units active,
# Type=notify with STATUS= and watchdog pings, a hung daemon restarted,
# systemd-analyze security <= 2.0, no capabilities, secrets only through
# credentials, /run/cep independent of start order, one run's journal
# lines across relay, delegate and runner.
exec >/result.txt 2>&1
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
expect() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
denied() { ! "$@" 2>/dev/null; }
quiet() { "$@" >/dev/null; }
as() { local u=$1; shift; setpriv --reuid "$u" --regid cep --init-groups "$@"; }
prop() { systemctl show -P "$2" "$1"; }

echo "== $(systemctl --version | head -1)"
for u in cep-relay cep-delegate; do
	expect "$u active" systemctl is-active -q "$u"
	echo "   $(systemctl show -p Type -p NotifyAccess -p WatchdogUSec -p Restart "$u" | tr '\n' ' ')"
	echo "   StatusText=$(prop "$u" StatusText)"
	expect "$u sent STATUS=" test -n "$(prop "$u" StatusText)"
	pid=$(prop "$u" MainPID)
	capeff=$(awk '/^CapEff/ {print $2}' "/proc/$pid/status")
	expect "$u CapEff $capeff is 0" test "$capeff" = 0000000000000000
done

echo "== systemd-analyze security"
for u in cep-relay cep-delegate; do
	systemd-analyze security --no-pager "$u.service" | sed 's/^/   /'
	score=$(systemd-analyze security --no-pager "$u.service" |
	    sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
	expect "$u exposure $score <= 2.0" awk -v s="$score" 'BEGIN {exit !(s != "" && s <= 2.0)}'
done

echo "== secrets: root-only files, each unit its own copy"
ls -la /etc/cep/credentials /etc/cep/relay /run/credentials/cep-relay.service \
    /run/credentials/cep-delegate.service | sed 's/^/   /'
grep -A4 controlPlane /etc/cep/cep.yaml | sed 's/^/   /'
expect "cp-token is root:root 0600" test "$(stat -c '%U:%G %a' /etc/cep/credentials/cp-token)" = "root:root 600"
expect "relay.key is root:root 0600" test "$(stat -c '%U:%G %a' /etc/cep/relay/relay.key)" = "root:root 600"
expect "cep-relay can read cep.yaml (setpriv works)" quiet as cep-relay cat /etc/cep/cep.yaml
expect "cep-relay cannot open the token file" denied as cep-relay cat /etc/cep/credentials/cp-token
expect "cep-delegate cannot open the token file" denied as cep-delegate cat /etc/cep/credentials/cp-token
expect "cep-delegate cannot open relay.key" denied as cep-delegate cat /etc/cep/relay/relay.key
expect "cep-delegate cannot open the relay's credentials" denied as cep-delegate cat /run/credentials/cep-relay.service/cep_relay.key
expect "relay's credential copy of the token is its own" test "$(stat -c '%U %a' /run/credentials/cep-relay.service/cep-shared_cp-token)" = "cep-relay 400"
expect "delegate's credential copy of the token is its own" test "$(stat -c '%U %a' /run/credentials/cep-delegate.service/cep-shared_cp-token)" = "cep-delegate 400"
expect "the delegate got no relay.key" test ! -e /run/credentials/cep-delegate.service/cep_relay.key
expect "same token in both copies" cmp -s /run/credentials/cep-relay.service/cep-shared_cp-token /run/credentials/cep-delegate.service/cep-shared_cp-token

echo "== /run/cep"
ls -la /run/cep | sed 's/^/   /'
expect "cep-delegate cannot remove relay.sock (sticky)" denied as cep-delegate rm -f /run/cep/relay.sock
expect "cepctl status answers" cepctl status
cepctl status | sed 's/^/   /'
systemctl stop cep-delegate cep-relay
systemctl start --job-mode=ignore-dependencies cep-delegate
sleep 1
systemctl start cep-relay
sleep 2
expect "delegate first, then relay: both active" systemctl is-active -q cep-relay cep-delegate
expect "relay.sock and admin.sock exist" test -S /run/cep/relay.sock -a -S /run/cep/admin.sock
echo "   StatusText=$(prop cep-delegate StatusText)"

echo "== a run, its journal lines"
cepctl run /root/cmd-probe.yaml >/tmp/run.txt 2>&1
sed 's/^/   /' /tmp/run.txt
run=$(sed -n 's/^run \(r-[^ ]*\) submitted.*/\1/p' /tmp/run.txt)
echo "RUN_ID $run"
sleep 2

comps=$(journalctl -q --no-pager CEP_RUN_ID="$run" -o json | grep -o '"CEP_COMPONENT":"[a-z]*"' | sort -u | tr '\n' ' ')
echo "   components with CEP_RUN_ID=$run: $comps"
for c in relay delegate runner; do
	expect "journalctl CEP_RUN_ID=$run has $c lines" grep -q "\"$c\"" <<<"$comps"
done
expect "no line with an empty CEP_RUN_ID" test -z "$(journalctl -q --no-pager CEP_RUN_ID= -o cat)"
journalctl -q --no-pager CEP_RUN_ID="$run" -o cat | head -12 | sed 's/^/   /'

echo "== watchdog: pings, and a hung delegate restarted"
w0=$(prop cep-relay WatchdogTimestampMonotonic)
n0=$(prop cep-delegate NRestarts)
kill -STOP "$(prop cep-delegate MainPID)"
sleep 45
w1=$(prop cep-relay WatchdogTimestampMonotonic)
expect "relay pinged the watchdog ($w0 -> $w1)" test "$w1" -gt "$w0"
expect "stopped delegate restarted by the watchdog (NRestarts $n0 -> $(prop cep-delegate NRestarts))" test "$(prop cep-delegate NRestarts)" -gt "$n0"
journalctl -q --no-pager -u cep-delegate -o cat | grep -i watchdog | head -3 | sed 's/^/   /'
sleep 3
expect "delegate active again" systemctl is-active -q cep-delegate

for u in cep-relay cep-delegate; do echo "   $u StatusText=$(prop $u StatusText)"; done
echo "RESULT $([ $fails = 0 ] && echo pass || echo "fail ($fails)")"
