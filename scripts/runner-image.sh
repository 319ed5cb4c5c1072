#!/bin/sh
# scripts/runner-image.sh RUNNER OUT [TAG]: the runner's OCI image archive
# (OCI image layout in a tar, what `skopeo copy oci-archive:OUT ...` reads)
# from the cep-runner binary RUNNER; TAG (default: the project version) is
# the layout's org.opencontainers.image.ref.name. Prints the archive's
# size and the image digest (sha256 of the manifest). docs/kubernetes.md,
# "The runner image".
#
# Why it looks the way it does:
# - not static: Debian 12 ships no libnftables.a, libmnl.a nor
#   libnfnetlink.a, so the runner stays dynamic and the image holds it
#   plus exactly its shared-library closure (ldd) and libcurl's (which
#   it loads on first use, lib/http/curl_lazy.c), each library under the
#   path ldd resolved it to, and the dynamic loader at the binary's
#   PT_INTERP; the loader's built-in search path finds them (no
#   ld.so.cache). No shell, no package manager, no other program.
# - one data file: the CA bundle, because the runner's control-plane
#   client (lib/cp) falls back to libcurl's default bundle when the
#   connector gives no CA. glibc >= 2.34 has files+dns NSS built in and
#   the runner reads nothing else of the image (/etc/resolv.conf and
#   /etc/hosts come from the runtime).
# - Entrypoint = the runner, no Cmd: the Pod (delegate/kube_pod.c) sets
#   only `args`. User 65532:65532, the Pod's runAsUser (node-level runners
#   override it with 0).
# - reproducible: every mtime is SOURCE_DATE_EPOCH (default: the last
#   commit's time), owners 0, sorted entries; the same
#   binary gives the same digest.
# Built with umoci (Debian package), no container engine.
set -eu

[ $# -ge 2 ] || { echo "usage: runner-image.sh RUNNER OUT [TAG]" >&2; exit 2; }
runner=$1 out=$2
top=$(cd "$(dirname "$0")/.." && pwd)
tag=${3:-$(sed -n 's/^project(cep VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")}
[ -x "$runner" ] || { echo "runner-image: $runner: not an executable" >&2; exit 1; }
for t in umoci ldd readelf strip; do
	command -v $t >/dev/null ||
		{ echo "runner-image: $t missing (scripts/deps-package.sh)" >&2; exit 1; }
done
: "${SOURCE_DATE_EPOCH:=$(git -C "$top" log -1 --format=%ct 2>/dev/null || echo 0)}"
export SOURCE_DATE_EPOCH
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
cabundle=/etc/ssl/certs/ca-certificates.crt
[ -f "$cabundle" ] || { echo "runner-image: $cabundle missing (ca-certificates)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/cep-runner-image.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
root=$work/rootfs
umask 022

# put SRC DST: a regular file at DST in the rootfs (symlinks resolved)
put() {
	mkdir -p "$root$(dirname "$2")"
	cp -L "$1" "$root$2"
}

strip --strip-unneeded -o "$work/cep-runner" "$runner"
put "$work/cep-runner" /usr/bin/cep-runner
chmod 0755 "$root/usr/bin/cep-runner"
interp=$(readelf -l "$runner" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
[ -n "$interp" ] || { echo "runner-image: $runner has no PT_INTERP" >&2; exit 1; }
put "$interp" "$interp"
# "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)"; a library
# ldd cannot find fails the build rather than an image that cannot start
# ldconfig is in sbin, not on every user's PATH
ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
curl=$("$ldconfig" -p | awk '$1 == "libcurl.so.4" { print $NF; exit }')
[ -n "$curl" ] || { echo "runner-image: no libcurl.so.4 (ldconfig -p)" >&2; exit 1; }
{ ldd "$runner"; echo "	libcurl.so.4 => $curl (0x0)"; ldd "$curl"; } >"$work/ldd"
if grep -q 'not found' "$work/ldd"; then
	grep 'not found' "$work/ldd" >&2
	echo "runner-image: unresolved libraries" >&2
	exit 1
fi
sed -n 's/^[[:space:]]*[^ ]* => \(\/[^ ]*\) (0x[0-9a-f]*)$/\1/p' "$work/ldd" |
	sort -u | while read -r lib; do put "$lib" "$lib"; done
put "$cabundle" "$cabundle"
chmod 0644 "$root$cabundle"

# the layer: uncompressed here, umoci gzips it
find "$root" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$root" && find . -mindepth 1 | sed 's,^\./,,' | LC_ALL=C sort) >"$work/files"
tar --create --file="$work/layer.tar" --directory="$root" --no-recursion \
	--files-from="$work/files" --owner=0 --group=0 --numeric-owner \
	--mtime="@$SOURCE_DATE_EPOCH" --format=gnu

layout=$work/layout
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci raw add-layer --image "$layout:$tag" --history.created "$created" \
	--history.created_by "scripts/runner-image.sh" "$work/layer.tar"
umoci config --no-history --image "$layout:$tag" --created "$created" \
	--config.entrypoint /usr/bin/cep-runner --config.user 65532:65532 \
	--config.workingdir / \
	--config.label "org.opencontainers.image.title=cep-runner" \
	--config.label "org.opencontainers.image.version=$tag" \
	--config.label "org.opencontainers.image.created=$created"
umoci gc --layout "$layout"

mkdir -p "$(dirname "$out")"
find "$layout" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
tar --create --file="$out.tmp" --directory="$layout" --sort=name \
	--owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
	--mode=a+rX --format=gnu oci-layout index.json blobs
mv "$out.tmp" "$out"

digest=$(sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p' "$layout/index.json")
printf '%s\t%s bytes\t%s files (%s bytes unpacked)\timage digest %s\ttag %s\n' \
	"$out" "$(stat -c %s "$out")" "$(wc -l <"$work/files")" \
	"$(du -sb "$root" | cut -f1)" "$digest" "$tag"
