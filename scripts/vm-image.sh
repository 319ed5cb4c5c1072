#!/bin/sh
# scripts/vm-image.sh [--deb PATH] [--work DIR] [--out FILE]: the VM
# appliance image (docs/images.md), as `./scripts/package image` runs it:
# a UEFI-bootable GPT disk, qcow2, of Debian 12 with the cep .deb
# installed (default: the newest dist/cep_*.deb), hardened, into
# dist/cep-appliance.qcow2 (--out); prints its size, sha256 and the time
# the build took. Root (debootstrap, systemd-nspawn, systemd-repart's loop
# devices). Built with Debian's own tools: the appliance test's
# debootstrap root (packaging/image/mkroot.py, cached in --work, default
# build-image/), the files of packaging/image/rootfs, systemd-repart with
# packaging/image/repart.d (no hand-written partitioning), qemu-img.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
deb="" work=$top/build-image out=$top/dist/cep-appliance.qcow2
for a in "$@"; do
	case $a in
	--deb=*) deb=${a#--deb=} ;;
	--work=*) work=${a#--work=} ;;
	--out=*) out=${a#--out=} ;;
	-h | --help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "vm-image: unknown argument $a" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "vm-image: needs root (debootstrap, systemd-nspawn, loop devices)" >&2; exit 1; }
if [ -z "$deb" ]; then
	deb=$(ls -t "$top"/dist/cep_*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || { echo "vm-image: no dist/cep_*.deb: run ./scripts/package --deb first" >&2; exit 1; }
fi
"$top/scripts/deps-image.sh"
img=$top/packaging/image
t0=$(date +%s)
mkdir -p "$work" "$(dirname "$out")"
stage=$work/stage
rm -rf "$stage"
mkdir -p "$stage/esp/EFI/BOOT" "$stage/esp/loader/entries"

# 1. the root: debootstrap (cached) + the .deb
root=$(python3 "$img/mkroot.py" --work "$work" --deb "$deb" | tail -n 1)
[ -d "$root/usr/bin" ] || { echo "vm-image: no root from mkroot.py" >&2; exit 1; }
mv "$root" "$stage/root"
root=$stage/root

# 2. hardening and the image's own files (packaging/image/rootfs)
cp -a "$img/rootfs/." "$root/"
echo cep-appliance >"$root/etc/hostname"
# no password logins: root locked, no getty on any console (serial
# included), no debug shell, no first-boot prompts; sulogin refuses a
# locked root, so rescue and emergency mode give no shell either
chroot "$root" passwd -q -l root
systemctl --root="$root" mask getty@.service serial-getty@.service \
	console-getty.service autovt@.service container-getty@.service \
	debug-shell.service systemd-firstboot.service >/dev/null 2>&1
systemctl --root="$root" enable nftables.service systemd-networkd.service \
	systemd-resolved.service systemd-timesyncd.service cep-seed.service \
	cep-console.service ssh.service >/dev/null 2>&1
systemctl --root="$root" disable ssh.socket >/dev/null 2>&1 || :
# per instance, not per image: machine-id empty (systemd makes one on the
# first boot), no ssh host keys (ssh.service.d makes them), no seeds
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root/etc/ssh/ssh_host_"* \
	"$root/var/lib/systemd/random-seed" "$root/var/lib/systemd/credential.secret"
ln -sf /etc/machine-id "$root/var/lib/dbus/machine-id"
# small: no docs, man pages, translations, apt caches or logs
find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || :
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || :
rm -rf "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/lintian" \
	"$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
	"$root/var/lib/apt/lists/"* "$root/var/log/"*.log \
	"$root/var/cache/debconf/"*-old "$root/root/.bash_history"
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias \
	-exec rm -rf {} + 2>/dev/null || :

# drivers a headless VM never uses (the dpkg excludes keep them out of
# later kernels too), then the module index and initrd without them
excl=$img/rootfs/etc/dpkg/dpkg.cfg.d/01-cep-image
for d in $(sed -n 's|^path-exclude=/lib/modules/\*/kernel/\(.*\)/\*$|\1|p' "$excl"); do
	rm -rf "$root"/usr/lib/modules/*/kernel/"$d"
done
kver=$(basename "$(readlink -f "$root/vmlinuz")")
kver=${kver#vmlinuz-}
timeout 600 systemd-nspawn -q -D "$root" --register=no --keep-unit --private-network \
	sh -c "depmod -a $kver && update-initramfs -u -k $kver" >"$work/initramfs.log" 2>&1 ||
	{ tail -n 30 "$work/initramfs.log" >&2; exit 1; }

# 3. the ESP: systemd-boot, one entry, the kernel and initrd (no editor:
# the kernel command line cannot be changed at the boot prompt)
cp "$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$stage/esp/EFI/BOOT/BOOTX64.EFI"
cp "$(readlink -f "$root/vmlinuz")" "$stage/esp/vmlinuz"
cp "$(readlink -f "$root/initrd.img")" "$stage/esp/initrd.img"
cp "$img/loader.conf" "$stage/esp/loader/loader.conf"
cp "$img/cep.conf" "$stage/esp/loader/entries/cep.conf"

# 4. the disk: the two file systems made without mounting anything, then
# GPT and both partitions by systemd-repart (repart.d)
mkfs.vfat -C -n CEP-ESP "$stage/esp.img" $((160 * 1024)) >/dev/null
mcopy -s -i "$stage/esp.img" "$stage/esp/"* ::/
mkfs.ext4 -q -L cep-root -d "$root" "$stage/root.img" 1536M >"$work/mkfs.log" 2>&1 ||
	{ tail -n 30 "$work/mkfs.log" >&2; exit 1; }
raw=$work/cep-appliance.raw
rm -f "$raw"
systemd-repart --empty=create --size=auto --dry-run=no --seed=random \
	--definitions="$img/repart.d" --root="$stage" "$raw" >"$work/repart.log" 2>&1 ||
	{ tail -n 30 "$work/repart.log" >&2; exit 1; }
rm -f "$out"
qemu-img convert -c -O qcow2 "$raw" "$out"
rm -f "$raw"
rm -rf "$stage"
t1=$(date +%s)
size=$(stat -c %s "$out")
sum=$(sha256sum "$out" | cut -d' ' -f1)
printf '%s  %s bytes (%s MiB)  sha256 %s  built in %ss\n' "${out#"$top"/}" "$size" \
	$((size / 1048576)) "$sum" $((t1 - t0))
