# shellcheck shell=sh
# sourced by scripts/deps.sh and scripts/deps-package.sh (and through it
# scripts/deps-image.sh): cep_apt_install PKG..., the one idempotent apt
# install: installs only the packages dpkg does not list as installed,
# as root or through sudo, quietly; returns at once when none is missing.
cep_apt_install() {
	missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0

	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	echo "cep: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
