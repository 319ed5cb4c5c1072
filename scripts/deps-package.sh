#!/bin/sh
# Installs what ./scripts/package needs beyond ./scripts/deps.sh on Debian
# 12: debhelper and dpkg-dev for the .deb, Debian's rpm (rpmbuild) for the
# RPM (debugedit, elfutils: its debuginfo), rpmlint and lintian to check
# both, mandoc to check the man pages.
# Idempotent: installs only what is missing. With arguments: those
# packages instead (scripts/deps-image.sh).
set -eu

PKGS="debhelper dpkg-dev fakeroot rpm rpmlint lintian mandoc debugedit elfutils
      git xz-utils"
[ $# -eq 0 ] || PKGS="$*"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "cep: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
