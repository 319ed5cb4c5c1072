#!/bin/bash
# tests/appliance/dev-boot.sh BUILD_DIR ROOT - a developer's proof of the
# units under a real systemd (not the CI appliance test): installs the
# binaries, units, sysusers.d and tmpfiles.d files of BUILD_DIR into ROOT
# (a Debian 12 root with systemd, the runtime libraries installed, that
# may be changed: a copy), configures a control plane (the reference plane,
# run here on the host: nspawn shares the network) whose token reaches the
# daemons as systemd credentials, boots ROOT with systemd-nspawn -b and
# runs tests/appliance/dev-checks.sh inside as a oneshot unit that writes
# /result.txt and powers off. Prints the result. Needs root.
set -eu
build=$(realpath "$1")
root=$(realpath "$2")
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/cep-devboot.XXXXXX)
plane_pid=
cleanup() {
	[ -n "$plane_pid" ] && kill "$plane_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

in_root() { systemd-nspawn -q -D "$root" --register=no --keep-unit "$@"; }

# --- the reference control plane on the host, token auth -----------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -days 2 -subj /CN=cp -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$work/cp.key" -out "$work/cp.crt" 2>/dev/null
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
cp "$work/token" "$work/tokens"
/usr/bin/python3 "$src/controlplane/cep_cp.py" --listen 127.0.0.1:0 \
    --port-file "$work/port" --cert "$work/cp.crt" --key "$work/cp.key" \
    --tokens "$work/tokens" --state "$work/state" --admin 127.0.0.1:0 \
    --admin-port-file "$work/admin-port" >"$work/plane.log" 2>&1 &
plane_pid=$!
for _ in $(seq 100); do [ -s "$work/admin-port" ] && break; sleep 0.1; done
port=$(cat "$work/port")

# --- install what a package installs --------------------------------------
install -m 0755 "$build"/bin/cep-relay "$build"/bin/cep-delegate \
    "$build"/bin/cep-runner "$build"/bin/cepctl "$root/usr/bin/"
install -m 0644 "$src"/appliance/systemd/*.service "$root/usr/lib/systemd/system/"
install -m 0644 "$src/appliance/systemd/cep.sysusers" "$root/usr/lib/sysusers.d/cep.conf"
install -m 0644 "$src/appliance/systemd/cep.tmpfiles" "$root/usr/lib/tmpfiles.d/cep.conf"
install -m 0644 "$src/examples/cmd-probe.yaml" "$root/root/cmd-probe.yaml"
install -m 0755 "$src/tests/appliance/dev-checks.sh" "$root/usr/local/bin/cep-dev-checks"
# the operator's copies, as they would bring them
install -m 0644 "$work/cp.crt" "$root/root/cp-ca.crt"
install -m 0600 "$work/token" "$root/root/cp-token"
in_root systemd-sysusers
in_root systemd-tmpfiles --create --exclude-prefix=/dev --exclude-prefix=/proc \
    --exclude-prefix=/sys /usr/lib/tmpfiles.d/cep.conf
in_root cepctl init --relay-metrics "" --delegate-metrics "" \
    --control-plane "https://127.0.0.1:$port/" \
    --control-plane-ca /root/cp-ca.crt --control-plane-token /root/cp-token
rm -f "$root/root/cp-token"
for u in cep-relay cep-delegate; do
	ln -sf "/usr/lib/systemd/system/$u.service" \
	    "$root/etc/systemd/system/multi-user.target.wants/$u.service"
done
cat >"$root/etc/systemd/system/cep-dev-checks.service" <<'EOF'
[Unit]
Description=cep: developer checks of the units, then power off
After=multi-user.target cep-relay.service cep-delegate.service
[Service]
Type=oneshot
ExecStart=/usr/local/bin/cep-dev-checks
ExecStopPost=/usr/bin/systemctl --no-block poweroff
[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/cep-dev-checks.service \
    "$root/etc/systemd/system/multi-user.target.wants/cep-dev-checks.service"
rm -f "$root/result.txt"

# --- boot -------------------------------------------------------------------
timeout 170 systemd-nspawn -D "$root" --register=no --keep-unit -b \
    >"$work/boot.log" 2>&1 || echo "boot: exit $?"
cat "$root/result.txt" 2>/dev/null || { echo "no /result.txt"; tail -40 "$work/boot.log"; exit 1; }
echo "== events of the run at the reference plane"
run=$(sed -n 's/^RUN_ID //p' "$root/result.txt")
[ -n "$run" ] && /usr/bin/python3 "$src/controlplane/cep_cp.py" events \
    --admin "http://127.0.0.1:$(cat "$work/admin-port")" "$run" | head -5
grep -q '^RESULT pass$' "$root/result.txt"
