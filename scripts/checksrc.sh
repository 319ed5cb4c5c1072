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
echo "checksrc: ok ($(git ls-files '*.c' '*.h' | wc -l) files)"
