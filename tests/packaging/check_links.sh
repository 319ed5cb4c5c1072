#!/bin/sh
# check_links.sh SRC_DIR SCRATCH_DIR BIN_DIR: the programs link what they
# declare, checked on the declarations and on the binaries (issue 10,
# docs/internals.md "Modules"). ldd alone (check_ldd.sh) sees only what
# the linker kept with --as-needed; here the build's declared link graph
# (CMake's --graphviz of a configure in SCRATCH_DIR: what a
# -Wl,--no-as-needed link would carry) must not reach, from
#   cep-relay:    an nftables/nftnl/mnl/netfilter library, kube or node;
#   cep-delegate, cepctl, cep-launcher: a netfilter library or node;
# the daemons built there with -Wl,--no-as-needed must need no netfilter
# library (ldd); and nm on the binaries must find no Kubernetes client (cep_kube_) in
# cep-relay and no node symbol (cep_nft_, cep_tc_, cep_diskfill_) in
# cepctl, cep-relay, cep-delegate and cep-launcher. cep-runner must reach
# node and nftables, and contain cep_nft_ (else the check could not fail).
set -u
src=${1:?usage: check_links.sh SRC_DIR SCRATCH_DIR BIN_DIR}
scratch=${2:?}
bin=${3:?}
mkdir -p "$scratch"
if ! cmake -S "$src" -B "$scratch/build" -DCEP_TESTS=OFF \
	-DCMAKE_BUILD_TYPE=Release "-DCMAKE_EXE_LINKER_FLAGS=-Wl,--no-as-needed" \
	--graphviz="$scratch/cep.dot" >"$scratch/cmake.log" 2>&1; then
	cat "$scratch/cmake.log"
	exit 1
fi
fail=0
edges=$(sed -n 's|.*// \(.*\) -> \(.*\)$|\1 \2|p' "$scratch/cep.dot" | sort -u)
if [ -z "$edges" ]; then
	echo "FAIL: no edge in $scratch/cep.dot"
	exit 1
fi
# reach TARGET: every target and library TARGET links, transitively
reach() {
	echo "$edges" | awk -v start="$1" '
		{ adj[$1] = adj[$1] " " $2 }
		END {
			todo[1] = start; n = 1; seen[start] = 1
			while (n > 0) {
				t = todo[n--]
				k = split(adj[t], a, " ")
				for (i = 1; i <= k; i++)
					if (!(a[i] in seen)) { seen[a[i]] = 1; todo[++n] = a[i]; print a[i] }
			}
		}' | sort
}
refuse() {   # PROGRAM REGEX WHAT
	hits=$(reach "$1" | grep -iE "$2")
	if [ -n "$hits" ]; then
		echo "FAIL: $1 declares a link to $3:" $hits
		fail=1
	else
		echo "ok: $1 declares no link to $3"
	fi
}
netfilter='nftables|nftnl|mnl|NFQUEUE|netfilter'
refuse cep-relay "$netfilter" "a netfilter library"
refuse cep-relay '^cep_(kube|node|connector|undo)$' "kube or node"
for p in cep-delegate cepctl cep-launcher; do
	refuse $p "$netfilter" "a netfilter library"
	refuse $p '^cep_node$' "node"
done
if ! reach cep-runner | grep -q '^cep_node$' ||
	! reach cep-runner | grep -qi 'nftables'; then
	echo "FAIL: cep-runner does not reach node and nftables: is the graph read right?"
	fail=1
fi

# The same, seen by the loader: the daemons linked with -Wl,--no-as-needed
# (every declared library kept, used or not) need no netfilter library.
daemons="cep-relay cep-delegate cepctl cep-launcher"
if ! cmake --build "$scratch/build" -j2 --target $daemons cep-runner \
	>"$scratch/build.log" 2>&1; then
	tail -n 30 "$scratch/build.log"
	echo "FAIL: the --no-as-needed build of $daemons"
	exit 1
fi
for p in $daemons; do
	hits=$(ldd "$scratch/build/bin/$p" | grep -iE "$netfilter")
	if [ -n "$hits" ]; then
		echo "FAIL: $p linked --no-as-needed needs a netfilter library:" $hits
		fail=1
	else
		echo "ok: $p linked --no-as-needed needs no netfilter library"
	fi
done
if ! ldd "$scratch/build/bin/cep-runner" | grep -qi nftables; then
	echo "FAIL: cep-runner linked --no-as-needed needs no nftables: is ldd read right?"
	fail=1
fi

nmrefuse() {   # PROGRAM REGEX WHAT
	if [ ! -x "$bin/$1" ]; then
		echo "FAIL: $bin/$1 missing"
		fail=1
		return
	fi
	hits=$(nm "$bin/$1" | awk '{ print $NF }' | grep -E "$2" | head -n 5)
	if [ -n "$hits" ]; then
		echo "FAIL: $1 contains $3:" $hits
		fail=1
	else
		echo "ok: $1 contains no $3"
	fi
}
nodesym='^cep_(nft|tc|diskfill)_'
nmrefuse cep-relay '^cep_kube_' "Kubernetes client symbol (cep_kube_)"
for p in cepctl cep-relay cep-delegate cep-launcher; do
	nmrefuse $p "$nodesym" "node symbol (cep_nft_, cep_tc_, cep_diskfill_)"
done
if ! nm "$bin/cep-runner" | awk '{ print $NF }' | grep -qE '^cep_nft_'; then
	echo "FAIL: no cep_nft_ symbol in cep-runner: is nm working?"
	fail=1
fi
exit $fail
