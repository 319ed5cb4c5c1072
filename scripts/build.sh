#!/bin/sh
# scripts/build.sh DIR [cmake options...]: configure and build cep in DIR.
set -eu
dir=$1
shift
cmake -S "$(dirname "$0")/.." -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
