#!/usr/bin/env bash
# Installs the Debian packages panicstop needs, by name, if any is missing.
# Usage: scripts/deps.sh [main|test|aarch64]   (test adds debuggers and sanitizer
# runtimes; aarch64 the cross compiler, qemu-user and gdb-multiarch that the
# aarch64 build and its tests under emulation need)
set -euo pipefail
profile=${1:-main}

packages=(cmake ninja-build g++ make pkg-config binutils libdw-dev libelf-dev gdb
          libcurl4-openssl-dev zlib1g-dev)  # panicstop upload
if [[ $profile == test ]]; then
  packages+=(clang libclang-rt-14-dev libgtest-dev libgmock-dev libbenchmark-dev libabsl-dev
             elfutils lldb python3 python3-drgn memcached
             libgoogle-glog-dev libbackward-cpp-dev  # crash handlers bench/crash_peers compares
             # real programs tests/realworld runs under `panicstop run`
             redis-server mariadb-server mariadb-client-core nginx nodejs openjdk-17-jdk-headless
             postgresql
             sbcl gnat ruby golang-go mono-runtime mono-mcs rustc)  # runtimes that take faults for themselves
  # npm brings Breakpad's prebuilt minidump tools (below). Some nodejs builds
  # ship their own npm, which Debian's package would conflict with.
  command -v npm >/dev/null || packages+=(npm)
fi

if [[ $profile == aarch64 ]]; then
  # GoogleTest is compiled from Debian's sources (googletest) with the cross
  # compiler; libc6-arm64-cross is the guest's C library for qemu (-L).
  packages=(cmake ninja-build pkg-config g++-aarch64-linux-gnu binutils-aarch64-linux-gnu
            libc6-arm64-cross libc6-dev-arm64-cross qemu-user gdb-multiarch googletest)
fi

# Breakpad's minidump_stackwalk, minidump_dump and dump_syms, prebuilt in the
# npm package `minidump`, for tests/dump/minidump_test.cpp. Its install
# scripts are not needed (the binaries are in the package).
install_breakpad_tools() {
  local prefix=build/deps/npm
  [[ -x $prefix/node_modules/minidump/bin/linux-x64/minidump_stackwalk ]] && return 0
  echo "panicstop: installing Breakpad's minidump tools (npm package minidump) into $prefix" >&2
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --ignore-scripts --no-audit --no-fund minidump@0.26.0 >/dev/null || {
    echo "panicstop: npm could not install the package minidump (tests/dump/minidump_test.cpp needs it)" >&2
    return 1
  }
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  if [[ $profile == test ]]; then
    (cd "$(dirname "$0")/.." && install_breakpad_tools)
  fi
  exit 0
fi

echo "panicstop: installing ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
  echo "panicstop: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [[ $profile == test ]]; then
  (cd "$(dirname "$0")/.." && install_breakpad_tools)
fi
exit 0
