#!/bin/sh
# Refuses functions that have no place in cep's C (curl's checksrc habit):
# unbounded string functions, atoi/sscanf without error checks, and
# shelling out. Generated code and tests' Python are not checked.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
banned='\b(sprintf|vsprintf|strcpy|strcat|strtok|strtok_r|atoi|atol|sscanf|gets|system|popen)[[:space:]]*\('
hits=$(git ls-files '*.c' '*.h' | xargs grep -nE "$banned" | grep -vE '^\S+:[0-9]+:\s*(/?\*|//)' || true)
if [ -n "$hits" ]; then
	echo "checksrc: banned functions:" >&2
	echo "$hits" >&2
	exit 1
fi
# Only the node layer enters namespaces and writes nftables rules
# (lib/target/netns.c, target.c; lib/node/nft_spec.c): the rest of the
# product hands it typed specs (docs/internals.md, "Modules").
nodebad=$(git ls-files '*.c' '*.h' | grep -vE '^(lib/target|lib/node|tests)/' |
	xargs grep -nE '\bsetns[[:space:]]*\(|"(add|insert|delete|flush) (rule|table|chain) (inet|ip6?|bridge|netdev|arp) ' |
	grep -vE '^\S+:[0-9]+:\s*(/?\*|//)' || true)
if [ -n "$nodebad" ]; then
	echo "checksrc: setns or nft rule text outside lib/target, lib/node:" >&2
	echo "$nodebad" >&2
	exit 1
fi
# lib/http is the only libcurl setup (connections and TLS sessions kept per
# endpoint, one place for proxies, tokens and TLS options): no product file
# elsewhere includes <curl/curl.h>. Tests may drive libcurl themselves.
curlbad=$(git ls-files '*.c' '*.h' | grep -vE '^(lib/http|tests)/' |
	xargs grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<curl/' || true)
if [ -n "$curlbad" ]; then
	echo "checksrc: <curl/...> outside lib/http (use its client, http.h):" >&2
	echo "$curlbad" >&2
	exit 1
fi
# A module's *_int.h is its inside: only files of its own folder include
# it, and its tests (tests/<folder>/, tests/fuzz/ reach decoders inside).
intbad=$(git ls-files '*.c' '*.h' | xargs grep -nE '^#include "[a-z0-9_]+_int\.h"' |
	while IFS=: read -r file line text; do
		hdr=$(echo "$text" | sed 's/.*"\(.*\)".*/\1/')
		home=$(git ls-files "*/$hdr" "$hdr" | head -n 1)
		[ -n "$home" ] || continue
		dir=$(dirname "$home")
		case $(dirname "$file") in
		"$dir" | "tests/$dir" | tests/fuzz) ;;
		*) echo "$file:$line: $hdr belongs to $dir/" ;;
		esac
	done)
if [ -n "$intbad" ]; then
	echo "checksrc: another folder's internal header:" >&2
	echo "$intbad" >&2
	exit 1
fi
# The layout of .clang-format (scripts/format.sh applies it), checked with
# the version it was tuned with (clang-format-14, which scripts/deps.sh
# installs): another version lays some lines out differently.
# CEP_CHECK_FORMAT=0 skips it (and says so).
if [ "${CEP_CHECK_FORMAT:-1}" = 0 ]; then
	echo "checksrc: layout NOT checked (CEP_CHECK_FORMAT=0)" >&2
else
	if ! command -v clang-format-14 >/dev/null; then
		echo "checksrc: no clang-format-14 to check the layout (scripts/deps.sh installs it)" >&2
		exit 1
	fi
	CLANG_FORMAT=clang-format-14
	. ./scripts/format_files.sh
	if ! cep_format_files | xargs "$cf" --dry-run --Werror 2>/dev/null; then
		cep_format_files | xargs "$cf" --dry-run 2>&1 |
			grep -E '^[^ ]+:[0-9]+:[0-9]+: ' | cut -d: -f1,2 | head -n 50 >&2
		echo "checksrc: not formatted as .clang-format says (scripts/format.sh)" >&2
		exit 1
	fi
fi
echo "checksrc: ok ($(git ls-files '*.c' '*.h' | wc -l) files)"
