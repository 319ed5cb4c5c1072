#!/bin/sh
# Installs what the VM appliance image (scripts/vm-image.sh) and its boot
# test (tests/image/) need on Debian 12: debootstrap and systemd-nspawn
# for the root, systemd-repart (systemd), dosfstools and mtools for the
# ESP and the seed drive, e2fsprogs, qemu-img; qemu-system-x86 and ovmf
# (UEFI firmware) to boot it. Idempotent: installs only what is missing.
set -eu
exec "$(dirname "$0")/deps-package.sh" debootstrap systemd-container dosfstools mtools \
	e2fsprogs qemu-utils qemu-system-x86 ovmf openssl python3
