#!/bin/sh
# check_ldd.sh BIN_DIR: the daemons that parse hostile input link no
# netfilter library (docs/privsep.md, "Link separation"): cep-delegate,
# cep-relay, cepctl and cep-launcher must not list libnftables, libnftnl,
# libmnl or libnetfilter_queue in ldd; cep-runner, which injects the
# faults, must (else this check would pass on a broken ldd).
set -u
bin=${1:?usage: check_ldd.sh BIN_DIR}
fail=0
for b in cep-delegate cep-relay cepctl cep-launcher; do
	if [ ! -x "$bin/$b" ]; then
		echo "FAIL: $bin/$b missing"
		fail=1
		continue
	fi
	libs=$(ldd "$bin/$b" | grep -E 'nftables|nftnl|libmnl|netfilter')
	if [ -n "$libs" ]; then
		echo "FAIL: $b links a netfilter library:"
		echo "$libs"
		fail=1
	else
		echo "ok: $b links no nftables, nftnl, mnl or netfilter library"
	fi
done
if ! ldd "$bin/cep-runner" | grep -q nftables; then
	echo "FAIL: cep-runner does not list libnftables: is ldd working?"
	fail=1
fi
exit $fail
