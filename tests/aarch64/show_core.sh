#!/bin/sh
# An x86-64 `panicstop show` reading an aarch64 core written under qemu-user:
# every thread, every function named, no frame repeated.
#   show_core.sh AARCH64_PROGRAM HOST_PANICSTOP EMULATOR [EMULATOR ARGS...]
# The program is tests/aarch64/parked_crash.cpp: 5 threads, 2 in pause(), 2
# in nanosleep(), main in crash_on_main().
set -eu
program=$1 tool=$2
shift 2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
PANICSTOP_DUMP_DIR=$dir PANICSTOP_CORE_LIMIT=ignore timeout 60 "$@" "$program" >"$dir/run.log" 2>&1 || true
core=$(ls "$dir"/*.core 2>/dev/null | head -n 1)
[ -n "$core" ] || { cat "$dir/run.log"; echo "FAIL: no core written" >&2; exit 1; }
timeout 60 "$tool" show "$core" >"$dir/show.txt" 2>&1 || { cat "$dir/show.txt"; echo "FAIL: show failed" >&2; exit 1; }
cat "$dir/show.txt"
fail() { echo "FAIL: $*" >&2; exit 1; }
grep -q ', 5 threads$' "$dir/show.txt" || fail "the core does not hold 5 threads"
[ "$(grep -c '^thread ' "$dir/show.txt")" = 5 ] || fail "show does not list 5 threads"
grep -q "executable $program" "$dir/show.txt" || fail "the executable is not the program (qemu's?)"
for fn in '::crash_on_main(' ' main+' ' pause+' ' clock_nanosleep+' '::parked_in_pause()' '::parked_in_nanosleep()'; do
  grep -qF "$fn" "$dir/show.txt" || fail "no frame names $fn"
done
[ "$(grep -c ' pause+.*libc' "$dir/show.txt")" = 2 ] || fail "not 2 threads in pause"
# Frame lines are "  #N 0xPC FUNCTION+0xOFF (/MODULE...)": the same function twice in
# a row within one thread is the repeated top frame the issue was about.
awk '/^thread /{prev=""} /^  #[0-9]+ /{fn=$0; sub(/^  #[0-9]+ 0x[0-9a-f]+ /, "", fn);
     sub(/ \(\/.*$/, "", fn); sub(/\+0x[0-9a-f]+$/, "", fn);
     if (fn != "??" && fn == prev) {print "repeated frame: " $0; bad=1} prev=fn}
     END{exit bad}' "$dir/show.txt" || fail "a frame is repeated"
echo "PASS"
