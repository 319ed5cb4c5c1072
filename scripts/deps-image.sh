#!/bin/sh
# Installs what the VM appliance image (scripts/vm-image.sh) and its boot
# test (tests/image/) need on Debian 12: debootstrap and systemd-nspawn
# for the root, systemd-repart (systemd), dosfstools and mtools for the
# ESP and the seed drive, e2fsprogs, qemu-img; qemu-system-x86 and ovmf
# (UEFI firmware) to boot it. Idempotent: installs only what is missing.
set -eu

PKGS="debootstrap systemd-container dosfstools mtools e2fsprogs qemu-utils
      qemu-system-x86 ovmf openssl python3"

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
