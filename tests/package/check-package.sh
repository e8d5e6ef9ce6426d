#!/usr/bin/env bash
# Installs the build tree into a scratch prefix and builds a consumer with
# find_package(panicstop) and with pkg-config, then runs both; and abi.cpp,
# every inline path of the headers linked against the shared library, with
# and without WITNESS in the headers.
# Usage: check-package.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
cmake -S "$src/tests/package/consumer" -B "$scratch/consumer" -G Ninja \
      -DCMAKE_PREFIX_PATH="$scratch/prefix" -DPANICSTOP_EXPECTED_VERSION="$version" >/dev/null
# A link error here is most often a symbol the headers need that the shared
# library does not export (consumer_abi*): show it.
cmake --build "$scratch/consumer" >"$scratch/consumer.log" 2>&1 || { cat "$scratch/consumer.log" >&2; exit 1; }
LD_LIBRARY_PATH="$scratch/prefix/lib:$scratch/prefix/lib64" "$scratch/consumer/consumer_cmake"
"$scratch/consumer/consumer_cmake_static"
LD_LIBRARY_PATH="$scratch/prefix/lib:$scratch/prefix/lib64" "$scratch/consumer/consumer_abi"
LD_LIBRARY_PATH="$scratch/prefix/lib:$scratch/prefix/lib64" "$scratch/consumer/consumer_abi_witness"
libdir=$(ls -d "$scratch"/prefix/lib*/pkgconfig | head -1)
export PKG_CONFIG_PATH=$libdir
# The .pc file names the configured prefix; point it at the scratch copy.
sed -i "s|^prefix=.*|prefix=$scratch/prefix|" "$libdir/panicstop.pc"
c++ "$src/tests/package/consumer/main.cpp" -o "$scratch/consumer_pc" $(pkg-config --cflags --libs panicstop)
LD_LIBRARY_PATH="$(dirname "$libdir")" "$scratch/consumer_pc"
[[ "$(pkg-config --modversion panicstop)" == "$version" ]] || { echo "package: panicstop.pc says $(pkg-config --modversion panicstop), not $version" >&2; exit 1; }

# As a subproject: panicstop's tests, benchmarks, examples and tools stay out
# unless the including project asks for them (configure only: the targets are
# what matters, and building the library again here would double the cost).
cmake -S "$src/tests/package/superproject" -B "$scratch/super" -G Ninja -DPANICSTOP_SOURCE_DIR="$src" >/dev/null
targets=$(ninja -C "$scratch/super" -t targets all)
for unwanted in panicstop_test_support example_crash_demo panicstop_cli locks_bench; do
  if grep -q "^$unwanted:" <<<"$targets"; then
    echo "package: a subproject build defines $unwanted" >&2
    exit 1
  fi
done
grep -q '^uses_panicstop:' <<<"$targets" || { echo "package: the subproject's own target is missing" >&2; exit 1; }
echo "package: CMake package and pkg-config consumers built and ran; a subproject gets only the libraries"
