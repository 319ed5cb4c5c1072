#!/bin/bash
# completion_test.sh COMPLETION CEPCTL: the bash completion offers every
# command and flag cepctl's usage text names, the --output values and
# every fault type of lib/model/exp_schema.c for --faults.
set -u
comp=$1
cepctl=$2
src=$(cd "$(dirname "$comp")/../.." && pwd)

if [ -r /usr/share/bash-completion/bash_completion ]; then
	. /usr/share/bash-completion/bash_completion
else
	# the two bash-completion helpers the script uses, reduced to what
	# this test needs (no file names are completed here); the variables
	# are the completion function's
	# shellcheck disable=SC2034
	_init_completion() {
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	}
	_filedir() { :; }
	compopt() { :; }
fi
# shellcheck source=appliance/bash-completion/cepctl
. "$comp"

fail=0
# complete WORD... : COMPREPLY for the line "cepctl WORD...", the last
# word being the one completed
complete_line() {
	COMP_WORDS=(cepctl "$@")
	COMP_CWORD=$#
	COMPREPLY=()
	_cepctl
	printf '%s\n' "${COMPREPLY[@]}"
}
expect() { # expect WORD LINE...: WORD among the completions of LINE
	local want=$1
	shift
	complete_line "$@" | grep -qx -- "$want" ||
		{ echo "completion: \"cepctl $*\" does not offer $want" >&2; fail=1; }
}

usage=$("$cepctl" --help)
cmds=$(printf '%s\n' "$usage" | sed -n 's/^  \([a-z][a-z]*\)\( .*\)\{0,1\}$/\1/p')
[ "$(printf '%s\n' "$cmds" | wc -l)" -ge 12 ] || { echo "completion: parsed only: $cmds" >&2; exit 1; }
for c in $cmds; do
	expect "$c" ""
done
for f in --home --output --quiet --help; do
	expect "$f" -
done
# every --flag of the usage text, offered by the command it belongs to
all=""
for c in $cmds; do
	all="$all $(complete_line "$c" - | tr "\n" " ")"
done
for f in $(printf '%s\n' "$usage" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
	case " $all --help " in
	*" $f "*) ;;
	*) echo "completion: no command offers $f" >&2; fail=1 ;;
	esac
done
for v in text json junit; do
	expect "$v" --output ""
done
expect runs ru
expect --follow logs r-0123456789abcdef --f
expect both rbac prod --who ""
faults=$(sed -n '/fault_names\[\] = {/,/};/p' "$src/lib/model/exp_schema.c" |
	grep -o '"[a-z-]*"' | tr -d '"')
[ -n "$faults" ] || { echo "completion: no fault names in lib/model/exp_schema.c" >&2; exit 1; }
for t in $faults; do
	expect "$t" rbac prod --faults ""
done
expect cpu-hog,pod-delete check prod --faults cpu-hog,pod-d
[ $fail -eq 0 ] && echo "completion: $(echo $cmds | wc -w) commands, their flags, --output values, $(echo $faults | wc -w) fault types"
exit $fail
