#!/bin/sh
# scripts/format.sh [FILE...]: formats cep's C with the .clang-format at
# the top (the tracked *.c/*.h, or the files named). CLANG_FORMAT names
# the binary (default: clang-format-14, the version .clang-format was
# tuned with, else clang-format). scripts/checksrc.sh checks the result.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. ./scripts/format_files.sh
if [ $# -gt 0 ]; then
	"$cf" -i "$@"
else
	cep_format_files | xargs "$cf" -i
fi
