#!/usr/bin/env bash
# Builds panicstop and runs the main job: the crash drill (`panicstop drill`,
# tools/drill_command.cpp). It crashes a multithreaded workload whose logger
# holds the "log" lock while a worker faults; panicstop stops every thread,
# the PreDump hook still gets the log lock, and the dumps are written. The
# drill reads them back and prints a summary: crash and thread, threads
# captured out of threads alive, the hook, dump files and sizes, time to dump,
# and gdb's count of threads in the core. Installs the Debian packages it
# needs first. Extra arguments go to the drill (e.g. --compare 10, --crash
# overflow, --no-stop; see `build/main/tools/panicstop help drill`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh main
cmake -S . -B build/main -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPANICSTOP_BUILD_TESTS=OFF >/dev/null
cmake --build build/main -j "$(nproc)"
exec build/main/tools/panicstop drill "$@"
