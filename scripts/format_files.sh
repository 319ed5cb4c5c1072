# sourced by scripts/format.sh and scripts/checksrc.sh: $cf, the
# clang-format to use, and cep_format_files, the files it formats (the
# tracked C; generated code is built under the build directory, never
# tracked; fuzz corpora are not C).
cf=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || echo clang-format)}
cep_format_files() {
	git ls-files '*.c' '*.h'
}
