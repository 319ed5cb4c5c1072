# Reproducible builds: no path of this checkout or of this build directory
# in any binary. -ffile-prefix-map rewrites __FILE__, assertion texts and
# debug info (DW_AT_name, DW_AT_comp_dir). gcc tries the map given last
# first, so the build directory (often inside the source tree) comes last.
# Everything else in a binary is a function of the sources and the
# toolchain (ar is deterministic on Debian and Fedora; no timestamps are
# compiled in). tests/packaging/reproducible.sh checks it.
add_compile_options(
  "-ffile-prefix-map=${CMAKE_SOURCE_DIR}=."
  "-ffile-prefix-map=${CMAKE_BINARY_DIR}=.")
