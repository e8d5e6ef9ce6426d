#!/usr/bin/env bash
# Installs the build tree into a scratch prefix and builds a consumer with
# find_package(panicstop) and with pkg-config, then runs both.
# Usage: check-package.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
cmake -S "$src/tests/package/consumer" -B "$scratch/consumer" -G Ninja \
      -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
LD_LIBRARY_PATH="$scratch/prefix/lib:$scratch/prefix/lib64" "$scratch/consumer/consumer_cmake"
"$scratch/consumer/consumer_cmake_static"
libdir=$(ls -d "$scratch"/prefix/lib*/pkgconfig | head -1)
export PKG_CONFIG_PATH=$libdir
# The .pc file names the configured prefix; point it at the scratch copy.
sed -i "s|^prefix=.*|prefix=$scratch/prefix|" "$libdir/panicstop.pc"
c++ "$src/tests/package/consumer/main.cpp" -o "$scratch/consumer_pc" $(pkg-config --cflags --libs panicstop)
LD_LIBRARY_PATH="$(dirname "$libdir")" "$scratch/consumer_pc"
echo "package: CMake package and pkg-config consumers built and ran"
