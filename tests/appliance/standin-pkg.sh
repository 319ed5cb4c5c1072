#!/bin/sh
# FALLBACK ONLY: used by the appliance test when scripts/package is absent
# (before the packaging work of issue 9 lands). It is NOT how cep is
# packaged; scripts/package is. It builds a stand-in .deb and .rpm from
# the current tree so the appliance harness has something to install:
#   standin-pkg.sh OUTDIR     -> OUTDIR/cep_<v>_<arch>.deb, OUTDIR/cep-<v>.<arch>.rpm
# Contents: `cmake --install --prefix /usr` of a release build, the unit,
# sysusers and tmpfiles files of appliance/systemd/, and maintainer
# scripts that do what packaging/cep.spec does today (users, tmpfiles,
# `cepctl init` at install time, units enabled).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
bld=$out/build
stage=$out/stage
ver=$(sed -n 's/^project(cep VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
arch=$(dpkg --print-architecture)

cmake -S "$top" -B "$bld" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCEP_TESTS=OFF \
	-DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$bld" -j"$(nproc)" >/dev/null
rm -rf "$stage"
DESTDIR=$stage cmake --install "$bld" --prefix /usr >/dev/null
install -d "$stage/usr/lib/systemd/system" "$stage/usr/lib/sysusers.d" \
	"$stage/usr/lib/tmpfiles.d"
for u in "$top"/appliance/systemd/*.service "$top"/appliance/systemd/*.socket \
	"$top"/appliance/systemd/*.timer; do
	[ -e "$u" ] && install -m0644 "$u" "$stage/usr/lib/systemd/system/"
done
install -m0644 "$top/appliance/systemd/cep.sysusers" "$stage/usr/lib/sysusers.d/cep.conf"
install -m0644 "$top/appliance/systemd/cep.tmpfiles" "$stage/usr/lib/tmpfiles.d/cep.conf"
units=$(cd "$stage/usr/lib/systemd/system" && ls | tr '\n' ' ')

# the shared libraries the binaries load, as Debian package names
deps=$(for b in "$stage"/usr/bin/*; do ldd "$b"; done | awk '/=> \//{print $3}' |
	sort -u | while read -r f; do
		dpkg -S "$f" 2>/dev/null || dpkg -S "$(readlink -f "$f")" 2>/dev/null || :
	done | cut -d: -f1 | sort -u | tr '\n' ',' | sed 's/,$//; s/,/, /g')

# what the spec's %pre/%post do today: users, folders, CA, enabled units
cat >"$out/postinst" <<POST
#!/bin/sh
set -e
systemd-sysusers cep.conf
systemd-tmpfiles --create cep.conf || :
[ -e /var/lib/cep/pki/ca.key ] || /usr/bin/cepctl init >/dev/null || :
systemctl enable $units >/dev/null 2>&1 || :
POST

# .deb
rm -rf "$out/deb"
cp -a "$stage" "$out/deb"
install -d "$out/deb/DEBIAN"
cat >"$out/deb/DEBIAN/control" <<CTL
Package: cep
Version: $ver
Architecture: $arch
Maintainer: cep stand-in <cep@localhost>
Depends: $deps, systemd, nftables, iproute2
Description: cep stand-in package for the appliance test (not a release)
CTL
install -m0755 "$out/postinst" "$out/deb/DEBIAN/postinst"
rm -f "$out"/cep_*.deb
dpkg-deb --root-owner-group -Zgzip --build "$out/deb" "$out/cep_${ver}_${arch}.deb" >/dev/null

# .rpm (Debian's rpmbuild): the same files, prebuilt
rm -f "$out"/cep-*.rpm
files=$(cd "$stage" && find . -type f | sed 's/^\.//')
cat >"$out/cep.spec" <<SPEC
Name: cep
Version: $ver
Release: 0.standin
Summary: cep stand-in package for the appliance test (not a release)
License: Apache-2.0
AutoReqProv: no
%define _build_id_links none
%define debug_package %{nil}
%define __strip /bin/true
%description
Stand-in built by tests/appliance/standin-pkg.sh.
%install
cp -a $stage/. %{buildroot}/
%post
$(sed 1,2d "$out/postinst")
%files
$files
SPEC
rpmbuild -bb --quiet --define "_topdir $out/rpmbuild" --define "_rpmdir $out" \
	--define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
	"$out/cep.spec" >/dev/null
ls "$out"/cep_*.deb "$out"/cep-*.rpm
