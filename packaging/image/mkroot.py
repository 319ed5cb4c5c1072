#!/usr/bin/env python3
"""mkroot.py - the VM image's root: Debian 12 with the cep .deb installed.

    mkroot.py --work DIR --deb CEP_DEB

Prints the root's path. The debootstrap root comes from the appliance
test's cache (tests/appliance/appliance_test.py: base_tar, fresh_root,
install_deb), with the packages a bootable machine needs on top of what
the test's roots have; cached as DIR/base-<key>.tar, so a second image
build skips debootstrap. scripts/vm-image.sh does the rest (docs/images.md).
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "appliance"))
import appliance_test as at  # noqa: E402

# a kernel and its initramfs, the UEFI boot loader, udev for devices,
# DHCP and DNS (networkd is systemd's own), time for apt's signatures,
# automatic security updates, and sshd (off unless the seed asks for it)
IMAGE_PKGS = ["linux-image-amd64", "initramfs-tools", "zstd", "udev", "kmod",
              "systemd-boot-efi", "systemd-resolved", "systemd-timesyncd",
              "unattended-upgrades", "openssh-server", "ca-certificates"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--deb", required=True)
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    try:
        tar = at.base_tar(work, args.deb, IMAGE_PKGS)
        root = at.fresh_root(work, "image", tar)
        at.install_deb(root, os.path.abspath(args.deb))
    except RuntimeError as e:
        print("mkroot: %s" % e, file=sys.stderr)
        return 1
    print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
