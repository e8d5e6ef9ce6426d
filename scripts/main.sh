#!/usr/bin/env bash
# Builds panicstop and runs the main job: the crash demo (examples/crash_demo.cpp),
# a multithreaded program whose logger holds the "log" lock while a worker
# dereferences a bad pointer. panicstop stops every thread, its PreDump hook
# still gets the log lock, and the dumps are written; then `panicstop show`
# reads the text report back. Installs the Debian packages it needs first.
# Extra arguments go to the demo (--no-stop shows the world before the patch).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh main
cmake -S . -B build/main -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPANICSTOP_BUILD_TESTS=OFF >/dev/null
cmake --build build/main -j "$(nproc)"

dumps=$(mktemp -d /tmp/panicstop-demo.XXXXXX)
echo "== crash demo (dumps go to $dumps)" >&2
set +e
PANICSTOP_DUMP_DIR=$dumps timeout 60 build/main/examples/example_crash_demo "$@"
status=$?
set -e
if [[ $status -eq 124 ]]; then
  echo "== the demo hung: no dump (this is what --no-stop shows)" >&2
  exit 1
fi
echo "== the demo ended with status $status ($( ((status > 128)) && kill -l $((status - 128)) ), as a plain crash would)" >&2
report=$(ls "$dumps"/*.txt 2>/dev/null | head -1 || true)
if [[ -z $report ]]; then
  echo "== no text report was written" >&2
  exit 1
fi
echo "== panicstop show $report" >&2
build/main/tools/panicstop show "$report"
echo "== files:" >&2
ls -l "$dumps" >&2
