#!/usr/bin/env bash
# Builds panicstop and runs the main job: the crash demo (examples/crash_demo.cpp).
# A multithreaded program whose logger holds a lock while a worker crashes:
# panicstop stops every thread, its PreDump hook still gets the log lock, and
# the dumps are written. Installs the Debian packages it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh main
cmake -S . -B build/main -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPANICSTOP_BUILD_TESTS=OFF >/dev/null
cmake --build build/main -j "$(nproc)"
exec build/main/examples/example_crash_demo "$@"
