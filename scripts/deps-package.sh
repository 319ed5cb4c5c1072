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

# shellcheck source=scripts/apt_install.sh
. "$(dirname "$0")/apt_install.sh"
# shellcheck disable=SC2086
cep_apt_install $PKGS
