#!/bin/sh
# The aarch64 proof: a crash, a panic with a lock held and a live dump of an
# aarch64 program under qemu-user, each core read back by the host's x86-64
# `panicstop show` and by gdb-multiarch: every thread, every function named,
# no frame repeated.
#   read_back_cores.sh AARCH64_PROGRAM HOST_PANICSTOP EMULATOR [EMULATOR ARGS...]
# The program is tests/aarch64/proof_program.cpp: 6 threads, 2 in pause(), 2
# in nanosleep(), 1 blocked on a panicstop::Mutex main holds, and main.
set -eu
program=$1 tool=$2
shift 2
sysroot=${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL ($mode): $*" >&2; exit 1; }
command -v gdb-multiarch >/dev/null || { echo "FAIL: gdb-multiarch is missing (scripts/deps.sh aarch64)" >&2; exit 1; }

# No function twice in a row within one thread: the repeated top frame the
# issue was about. stdin: frame lines reduced to "THREAD-START" or a function.
no_repeats() {
  awk '$0 == "THREAD-START" {prev=""; next}
       {if ($0 != "??" && $0 == prev) {print "repeated frame: " $0; bad=1} prev=$0}
       END {exit bad}'
}

for mode in crash panic live; do
  out=$dir/$mode
  mkdir "$out"
  status=0
  PANICSTOP_DUMP_DIR=$out PANICSTOP_CORE_LIMIT=ignore timeout 60 "$@" "$program" "$mode" >"$out/run.log" 2>&1 || status=$?
  [ "$mode" != live ] || [ "$status" = 0 ] || { cat "$out/run.log"; fail "the live dump failed (exit $status)"; }
  core=$(ls "$out"/*.core 2>/dev/null | head -n 1)
  [ -n "$core" ] || { cat "$out/run.log"; fail "no core written"; }

  case $mode in
    crash) main_fn=crash_on_main ;;
    panic) main_fn=panic_on_main ;;
    live) main_fn=live_dump_on_main ;;
  esac

  # The host's show.
  timeout 60 "$tool" show "$core" >"$out/show.txt" 2>&1 || { cat "$out/show.txt"; fail "show failed"; }
  echo "== $mode: panicstop show"
  cat "$out/show.txt"
  grep -q ', 6 threads$' "$out/show.txt" || fail "the core does not hold 6 threads"
  [ "$(grep -c '^thread ' "$out/show.txt")" = 6 ] || fail "show does not list 6 threads"
  grep -q "executable $program" "$out/show.txt" || fail "the executable is not the program (qemu's?)"
  for fn in "::$main_fn(" ' main+' ' pause+' ' clock_nanosleep+' '::parked_in_pause()' \
            '::parked_in_nanosleep()' '::waiter_on_lock()' 'Mutex::lock'; do
    grep -qF "$fn" "$out/show.txt" || fail "show names no frame $fn"
  done
  [ "$(grep -c ' pause+.*libc' "$out/show.txt")" = 2 ] || fail "show has not 2 threads in pause"
  # "  #N 0xPC FUNCTION+0xOFF (/MODULE...)"
  awk '/^thread /{print "THREAD-START"} /^  #[0-9]+ /{fn=$0; sub(/^  #[0-9]+ 0x[0-9a-f]+ /, "", fn);
       sub(/ \(\/.*$/, "", fn); sub(/\+0x[0-9a-f]+$/, "", fn); print fn}' "$out/show.txt" | no_repeats ||
    fail "show repeats a frame"

  # gdb-multiarch.
  timeout 120 gdb-multiarch -batch -nx -ex "set sysroot $sysroot" -ex "file $program" -ex "core-file $core" \
    -ex 'thread apply all bt' >"$out/gdb.txt" 2>&1 || { cat "$out/gdb.txt"; fail "gdb-multiarch failed"; }
  echo "== $mode: gdb-multiarch"
  cat "$out/gdb.txt"
  [ "$(grep -c '^Thread [0-9]' "$out/gdb.txt")" = 6 ] || fail "gdb-multiarch does not list 6 threads"
  for fn in "$main_fn" ' main ' ' pause ' ' clock_nanosleep ' 'parked_in_pause' 'parked_in_nanosleep' \
            'waiter_on_lock'; do
    grep -qF "$fn" "$out/gdb.txt" || fail "gdb-multiarch names no frame $fn"
  done
  # "#N  0xPC in FUNCTION (ARGS) at FILE:LINE" or "#0  FUNCTION (ARGS) ..."
  awk '/^Thread [0-9]/{print "THREAD-START"} /^#[0-9]+ /{fn=$0; sub(/^#[0-9]+ +/, "", fn);
       sub(/^0x[0-9a-f]+ in /, "", fn); sub(/ \(.*$/, "", fn); print fn}' "$out/gdb.txt" | no_repeats ||
    fail "gdb-multiarch repeats a frame"
done
echo "PASS"
