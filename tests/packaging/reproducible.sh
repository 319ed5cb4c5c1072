#!/bin/sh
# reproducible.sh SRC WORK: two release builds of the same tree, from two
# copies at different paths into two build directories at different paths,
# with the same SOURCE_DATE_EPOCH, must install byte-identical files, and
# no binary may contain any of those paths (cmake/reproducible.cmake).
# WORK is emptied and reused.
set -eu
src=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
: "${SOURCE_DATE_EPOCH:=$(git -C "$src" log -1 --format=%ct 2>/dev/null || echo 1700000000)}"
export SOURCE_DATE_EPOCH

# a copy of the files git tracks, as they are (uncommitted changes too)
copy() {
	mkdir -p "$2"
	(cd "$1" && git ls-files -z --cached |
		xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
		tar --null -T - -cf -) | tar -C "$2" -xf -
}

build() { # $1 source copy, $2 build dir, $3 install root
	cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCEP_TESTS=OFF \
		-DCMAKE_INSTALL_PREFIX=/usr >/dev/null
	nice -n 10 cmake --build "$2" -j2 >"$2.log" 2>&1 ||
		{ tail -n 30 "$2.log" >&2; exit 1; }
	DESTDIR=$3 cmake --install "$2" >/dev/null
}

copy "$src" "$work/one/src"
copy "$src" "$work/second-tree/cep-source"
build "$work/one/src" "$work/one/build" "$work/one/root"
build "$work/second-tree/cep-source" "$work/second-tree/b" "$work/second-tree/root"

fail=0
n=0
for f in $(cd "$work/one/root" && find . -type f | sort); do
	n=$((n + 1))
	if ! cmp -s "$work/one/root/$f" "$work/second-tree/root/$f"; then
		echo "reproducible: $f differs between the two builds" >&2
		fail=1
	fi
done
extra=$(cd "$work/second-tree/root" && find . -type f | sort |
	while read -r f; do [ -e "$work/one/root/$f" ] || echo "$f"; done)
[ -z "$extra" ] || { echo "reproducible: only in the second: $extra" >&2; fail=1; }
[ "$n" -gt 0 ] || { echo "reproducible: nothing installed" >&2; exit 1; }

# no path of either tree, either build, or the original checkout
for bin in "$work"/one/root/usr/bin/* "$work"/second-tree/root/usr/bin/*; do
	for p in "$work" "$src" /one/src /one/build second-tree/cep-source second-tree/b; do
		if grep -q -F -- "$p" "$bin"; then
			echo "reproducible: $bin contains the path $p" >&2
			fail=1
		fi
	done
done
[ $fail -eq 0 ] || exit 1
echo "reproducible: $n installed files identical, no build or source path in $(ls "$work/one/root/usr/bin" | wc -l) binaries"
rm -rf "$work"
