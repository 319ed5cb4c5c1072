#!/bin/sh
# install_test.sh BUILD SRC: `cmake --install` of the build tree puts into
# a DESTDIR what the packages are made of (cmake/install.cmake): every
# unit of appliance/systemd, the preset, sysusers.d and tmpfiles.d, the
# default cep.yaml (the built-in text), a man page per binary, the bash
# completion and the docs.
set -eu
build=$1
src=$2
root=$(mktemp -d "${TMPDIR:-/tmp}/cep-install-test.XXXXXX")
trap 'rm -rf "$root"' EXIT
DESTDIR=$root cmake --install "$build" >/dev/null

cache() { sed -n "s|^$1:[A-Z]*=||p" "$build/CMakeCache.txt"; }
prefix=$(cache CMAKE_INSTALL_PREFIX)
unitdir=$(cache CEP_SYSTEMD_UNITDIR)
presetdir=$(cache CEP_SYSTEMD_PRESETDIR)
sysusersdir=$(cache CEP_SYSUSERSDIR)
tmpfilesdir=$(cache CEP_TMPFILESDIR)
fail=0
bad() { echo "install: $*" >&2; fail=1; }
same() { cmp -s "$1" "$2" || bad "$2 is not $1"; }

for u in "$src"/appliance/systemd/*.service; do
	same "$u" "$root$unitdir/$(basename "$u")"
done
grep -qx 'enable cep-\*\.service' "$root$presetdir/80-cep.preset" ||
	bad "$presetdir/80-cep.preset does not enable cep-*.service"
same "$src/appliance/systemd/cep.sysusers" "$root$sysusersdir/cep.conf"
same "$src/appliance/systemd/cep.tmpfiles" "$root$tmpfilesdir/cep.conf"

# /etc for prefix /usr, else PREFIX/etc (GNUInstallDirs)
etc=$prefix/etc
[ "$prefix" = /usr ] && etc=/etc
"$build/bin/cepctl" _default-config >"$root/default.yaml"
grep -q '^# cep appliance configuration' "$root/default.yaml" ||
	bad "cepctl _default-config does not print the default configuration"
same "$root/default.yaml" "$root$etc/cep/cep.yaml"

n=0
for bin in "$root$prefix"/bin/*; do
	n=$((n + 1))
	b=$(basename "$bin")
	[ -x "$bin" ] || bad "$b is not executable"
	ls "$root$prefix/share/man/man1/$b.1" "$root$prefix/share/man/man8/$b.8" \
		>/dev/null 2>&1 || [ -e "$root$prefix/share/man/man1/$b.1" ] ||
		[ -e "$root$prefix/share/man/man8/$b.8" ] || bad "no man page for $b"
done
[ "$n" -ge 4 ] || bad "$n binaries installed, expected cep-relay, cep-delegate, cep-runner, cepctl at least"
[ -e "$root$prefix/share/man/man5/cep.yaml.5" ] || bad "no cep.yaml(5)"
[ -e "$root$prefix/share/bash-completion/completions/cepctl" ] || bad "no bash completion"
[ -e "$root$prefix/share/doc/cep/README.md" ] || bad "no README in the doc dir"
[ -e "$root$prefix/share/doc/cep/docs/configuration.md" ] || bad "no docs/ in the doc dir"
[ $fail -eq 0 ] && echo "install: $n binaries, units, preset, sysusers, tmpfiles, cep.yaml, man, completion, docs"
exit $fail
