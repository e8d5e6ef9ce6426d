#!/usr/bin/env bash
# Builds panicstop and runs the whole test suite:
#   1. the full suite, g++ Release (the build type most users pick; the tests
#      keep their own debug information), warnings as errors (benchmarks built,
#      not run);
#   2. the sys/thread/lock/witness/lockprof tests under ThreadSanitizer (clang++);
#   3. the same under AddressSanitizer + UndefinedBehaviorSanitizer (g++), with
#      WITNESS built in, so the lock-order checker runs on every lock test too.
# The first build keeps WITNESS out, as a release build does, so the fast-path
# test checks the one-CAS lock and unlock that users get.
# Installs the Debian packages it needs first. Build trees go to build/test-*.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

jobs=$(nproc)
run_ctest() {  # DIR [ctest args...]
  local dir=$1
  shift
  ctest --test-dir "$dir" --output-on-failure --timeout 300 -j "$jobs" "$@"
}

echo "== full suite (g++)" >&2
cmake -S . -B build/test-gcc -G Ninja -DCMAKE_BUILD_TYPE=Release -DPANICSTOP_WERROR=ON \
      -DPANICSTOP_BUILD_BENCH=ON >/dev/null
cmake --build build/test-gcc -j "$jobs"
run_ctest build/test-gcc

echo "== lock and witness tests under ThreadSanitizer (clang++)" >&2
cmake -S . -B build/test-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPANICSTOP_WERROR=ON \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DPANICSTOP_SANITIZE=thread \
      -DPANICSTOP_LOCK_TESTS_ONLY=ON >/dev/null
cmake --build build/test-tsan -j "$jobs"
# TSan needs a memory layout without the kernel's widest mmap randomization.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" setarch "$(uname -m)" -R \
  ctest --test-dir build/test-tsan --output-on-failure --timeout 600 -j "$jobs"

echo "== lock and witness tests under AddressSanitizer + UndefinedBehaviorSanitizer (g++), WITNESS built in" >&2
cmake -S . -B build/test-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPANICSTOP_WERROR=ON \
      -DPANICSTOP_SANITIZE=address -DPANICSTOP_LOCK_TESTS_ONLY=ON -DPANICSTOP_WITNESS=ON >/dev/null
cmake --build build/test-asan -j "$jobs"
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  run_ctest build/test-asan
echo "panicstop: all test suites passed" >&2
