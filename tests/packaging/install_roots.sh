#!/bin/sh
# install_roots.sh ROOT DIST WORK: installs the packages ./scripts/package
# left in DIST into two copies of ROOT, a debootstrapped Debian 12 root
# (ROOT itself is never changed), without booting them, and checks what
# installation must leave: the users, the folders with their owners and
# modes, the units enabled, /etc/cep/cep.yaml as a config file, no CA.
#   WORK/deb: `apt-get install ./cep_*.deb` inside systemd-nspawn (network
#             of the host, for the libraries)
#   WORK/rpm: `rpm --root -i --nodeps` from the host (docs/packaging.md
#             says why --nodeps and why /proc is bind-mounted)
# Root, systemd-nspawn and rpm needed. Not a ctest: it needs a root and the
# network; CI runs it after ./scripts/package.
set -eu
root=$1
dist=$(cd "$2" && pwd)
work=$3
[ "$(id -u)" -eq 0 ] || { echo "install_roots: needs root" >&2; exit 2; }
deb=$(ls "$dist"/cep_*_*.deb | head -n 1)
rpm=""
for f in "$dist"/cep-[0-9]*.rpm; do
	case $f in *.src.rpm) ;; *) rpm=$f ;; esac
done
[ -e "$rpm" ] || { echo "install_roots: no RPM in $dist" >&2; exit 2; }
rm -rf "$work"
mkdir -p "$work"
fail=0
bad() { echo "install_roots: $*" >&2; fail=1; }

in_root() { # in_root DIR CMD: a shell command inside DIR, not booted;
	# --pipe: no terminal, so no CRs in what it prints
	systemd-nspawn -q --pipe -D "$1" --register=no --keep-unit \
		--bind-ro="$dist:/dist" sh -c "$2"
}

check() { # check DIR KIND
	r=$1
	k=$2
	in_root "$r" 'id -nG cep-relay; id -nG cep-delegate' >"$work/$k.ids" 2>/dev/null ||
		bad "$k: users missing: $(cat "$work/$k.ids")"
	grep -q '^cep-relay cep$' "$work/$k.ids" || bad "$k: cep-relay not in group cep"
	grep -q '^cep-delegate cep$' "$work/$k.ids" || bad "$k: cep-delegate not in group cep"
	for d in "/etc/cep/relay 750 root cep" "/var/lib/cep 700 cep-delegate cep" \
	    "/var/lib/cep/pki 700 cep-delegate cep"; do
		path=${d%% *}
		want=${d#* }
		got=$(in_root "$r" "stat -c '%a %U %G' $path" 2>/dev/null || echo missing)
		[ "$got" = "$want" ] || bad "$k: $path is $got, expected $want"
	done
	for u in cep-relay cep-delegate; do
		[ -L "$r/etc/systemd/system/multi-user.target.wants/$u.service" ] ||
			bad "$k: $u.service is not enabled"
	done
	[ -s "$r/etc/cep/cep.yaml" ] || bad "$k: no /etc/cep/cep.yaml"
	[ ! -e "$r/var/lib/cep/pki/ca.key" ] || bad "$k: a CA was created at install time"
	[ ! -e "$r/etc/cep/relay/relay.key" ] || bad "$k: a relay key was created at install time"
}

echo "install_roots: $deb with apt into $work/deb" >&2
cp -a "$root" "$work/deb"
in_root "$work/deb" "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q /dist/$(basename "$deb")" >"$work/deb.log" 2>&1 ||
	{ tail -n 20 "$work/deb.log" >&2; bad "deb: apt-get install failed"; }
grep -qx /etc/cep/cep.yaml "$work/deb/var/lib/dpkg/info/cep.conffiles" ||
	bad "deb: /etc/cep/cep.yaml is not a conffile"
check "$work/deb" deb

echo "install_roots: $rpm with rpm --root into $work/rpm" >&2
cp -a "$root" "$work/rpm"
# the libraries the RPM links, from Debian (its Requires are RPM names)
in_root "$work/rpm" "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends \$(dpkg-deb -f /dist/$(basename "$deb") Depends |
	tr ',' '\n' | sed 's/(.*)//; s/|.*//' | tr -d ' ')" >"$work/rpm-libs.log" 2>&1 ||
	{ tail -n 20 "$work/rpm-libs.log" >&2; bad "rpm: the libraries could not be installed"; }
mount --bind /proc "$work/rpm/proc"
rpm --root "$(cd "$work/rpm" && pwd)" -i --nodeps "$rpm" >"$work/rpm.log" 2>&1 ||
	{ tail -n 20 "$work/rpm.log" >&2; bad "rpm: rpm -i failed"; }
umount "$work/rpm/proc"
rpm --root "$(cd "$work/rpm" && pwd)" -qc cep 2>/dev/null | grep -qx /etc/cep/cep.yaml ||
	bad "rpm: /etc/cep/cep.yaml is not a config file"
check "$work/rpm" rpm
in_root "$work/rpm" 'ldd /usr/bin/cep-delegate /usr/bin/cep-relay /usr/bin/cep-runner /usr/bin/cepctl' \
	>"$work/rpm.ldd" 2>&1
! grep -q 'not found' "$work/rpm.ldd" || bad "rpm: $(grep 'not found' "$work/rpm.ldd")"

[ $fail -eq 0 ] && echo "install_roots: .deb (apt) and RPM (rpm --root) install cleanly: users, folders, units enabled, config file, no CA"
exit $fail
