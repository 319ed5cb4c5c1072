#!/bin/sh
# man_test.sh MANDIR: every man page is valid mdoc without warnings
# (mandoc -Tlint; groff's checks where mandoc is missing), and names
# itself in its .Dt line as its file name says.
set -eu
dir=$1
fail=0
n=0
for page in "$dir"/*.[1-8]; do
	n=$((n + 1))
	name=$(basename "$page")
	sec=${name##*.}
	title=$(echo "${name%.*}" | tr '[:lower:]' '[:upper:]')
	if ! grep -q "^\.Dt $title $sec\$" "$page"; then
		echo "man: $name: .Dt is not \"$title $sec\"" >&2
		fail=1
	fi
	if command -v mandoc >/dev/null; then
		out=$(mandoc -Tlint -Wwarning "$page" 2>&1) || true
	else
		out=$(groff -mandoc -z -ww "$page" 2>&1) || true
	fi
	if [ -n "$out" ]; then
		echo "$out" >&2
		fail=1
	fi
done
[ "$n" -ge 7 ] || { echo "man: only $n pages in $dir" >&2; exit 1; }
[ $fail -eq 0 ] && echo "man: $n pages clean"
exit $fail
