#!/usr/bin/env bash
# Builds panicstop and runs the whole test suite (PANICSTOP_AARCH64=0 leaves
# out part 4):
#   1. the full suite, g++ Release (the build type most users pick; the tests
#      keep their own debug information), warnings as errors (benchmarks built,
#      not run);
#   2. the sys/thread/lock/witness/lockprof tests under ThreadSanitizer
#      (clang++), with WITNESS built in, so its order graph, per-thread held
#      lists and reports from many threads at once are checked for races too;
#      the lock tests then run once more with WITNESS switched off at run time
#      (PANICSTOP_WITNESS=-1), so its bookkeeping cannot hide a race in the
#      locks themselves;
#   3. the same under AddressSanitizer + UndefinedBehaviorSanitizer (g++), with
#      WITNESS built in, so the lock-order checker runs on every lock test too;
#   4. an aarch64 cross build (cmake/toolchains/aarch64-linux-gnu.cmake), its
#      tests of the layers a platform changes (sys, thread, lock, witness,
#      lockprof, stop, panic, snapshot, dump, kdb) run under qemu-user. It is
#      built and run in the background while parts 2 and 3 run, its output in
#      build/test-aarch64.log, and waited for at the end.
# The first build keeps WITNESS out, as a release build does, so the fast-path
# test checks the one-CAS lock and unlock that users get (the sanitizer builds
# skip that test: their instrumentation and WITNESS change the fast paths).
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

# Part 4 (see the top). Its package label holds only the export checks in a
# cross build (package.exports, package.an_unlisted_export_fails): they read
# the aarch64 libraries with the cross nm and run nothing under qemu.
aarch64_labels='^(sys|thread|lock|witness|lockprof|stop|panic|snapshot|dump|kdb|crash_path|package)$'
# Tests that fail under qemu-user only, grouped by the reason docs/aarch64.md
# ("Under qemu-user") gives; they are for real arm64.
aarch64_qemu_only=(
  # fork() in a threaded guest, and the debugger on panic: qemu 7.2 aborts
  # (qemu_plugin_vcpu_init_hook: assertion failed)
  'thread\.Fork\.AChild.*' 'thread\.SlotChurn\.AForkedChild.*'
  'lock\.ParkAfterFork\.AChildOfAProgramThatNeverInstalledWakesItsOwnSleepers'
  'kdb\.PanicDebugger\.DebuggerOnPanicServesOneConsoleThenTheDumpsFollow'
  # qemu runs a vfork() as a fork: the parent does not wait for the child,
  # and the child has memory of its own
  'panic\.Panic\.AStepNoSignalCanInterruptEndsTheProcessBySigkill' 'thread\.Vfork\..*'
  # re-executing /proc/self/exe needs binfmt_misc for aarch64
  'lockprof\.LockProf\.EnabledFromTheEnvironment' 'panic\.DiePolicy\.RestartRunsTheProgramAgainWithItsArguments'
  # the host's gdb, eu-stack and lldb read the aarch64 cores these tests write
  'dump\.ElfCore\.(GdbShowsEveryThread|FullCoreOpensInGdb|EuStackShowsEveryThread|LldbShowsEveryThread)'
  'dump\.ElfCore\.EveryToolShowsEveryThreadWhenAWorkerPanics' 'dump\.ElfCore\.APanicstopNoteOfAPrstatusSizeIsNoThreadToGdb'
  # /proc/TID/syscall shows qemu's host system calls, not the guest's
  'dump\.UnstoppedThread\.(Report|Core|Gdb).*' 'dump\.Minidump\.ThreadsThatDidNotStopKeepWhatTheKernelShowed'
  # qemu writes its own "uncaught target signal" line to stderr before it
  # dies, with a blocking write: a full stderr pipe holds it forever, and a
  # data file that is fd 2 (which panicstop leaves alone) gets the line
  'panic\.PanicStderr\..*'
  # speed: 8000 (and 20,000) thread creations, 16,500 live threads, and a thousand kdb
  # cycles with a hundred live dumps, outlast their deadlines under qemu on a loaded machine
  'snapshot\.CaptureChurn\.ModulesAndStacksAreCompleteWhileThreadsComeAndGo' 'kdb\.KdbSoak\..*'
  'thread\.SlotChurn\.ThreadsMadeOneAfterAnotherReuseAFewSlots' 'stop\.OverflowThreads\..*'
  # 100 forks of a threaded guest: 7 s under qemu on an idle machine, past
  # its 20 s deadline beside the sanitizer suites
  'thread\.ProgramSignals\.AChildForkedWhileAThreadChangesATakenSignalCanChangeItToo'
)
aarch64_excluded="^($(IFS='|'; echo "${aarch64_qemu_only[*]}"))\$"
run_aarch64() {
  scripts/deps.sh aarch64
  # The x86-64 command of part 1 reads a core of this build (dump.Aarch64.*).
  cmake -S . -B build/test-aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
        -DCMAKE_BUILD_TYPE=Release -DPANICSTOP_WERROR=ON -DPANICSTOP_BUILD_EXAMPLES=OFF \
        -DPANICSTOP_HOST_TOOL="$PWD/build/test-gcc/tools/panicstop" >/dev/null
  cmake --build build/test-aarch64 -j "$jobs"
  QEMU_LD_PREFIX=/usr/aarch64-linux-gnu \
    run_ctest build/test-aarch64 -L "$aarch64_labels" -E "$aarch64_excluded"
}

echo "== full suite (g++)" >&2
cmake -S . -B build/test-gcc -G Ninja -DCMAKE_BUILD_TYPE=Release -DPANICSTOP_WERROR=ON \
      -DPANICSTOP_BUILD_BENCH=ON >/dev/null
cmake --build build/test-gcc -j "$jobs"
run_ctest build/test-gcc

aarch64_pid=
if [[ ${PANICSTOP_AARCH64:-1} != 0 ]]; then
  echo "== aarch64 cross build, tests under qemu-user (in the background: build/test-aarch64.log)" >&2
  mkdir -p build
  run_aarch64 >build/test-aarch64.log 2>&1 &
  aarch64_pid=$!
fi

echo "== lock and witness tests under ThreadSanitizer (clang++), WITNESS built in" >&2
cmake -S . -B build/test-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPANICSTOP_WERROR=ON \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DPANICSTOP_SANITIZE=thread \
      -DPANICSTOP_LOCK_TESTS_ONLY=ON -DPANICSTOP_WITNESS=ON >/dev/null
cmake --build build/test-tsan -j "$jobs"
# TSan needs a memory layout without the kernel's widest mmap randomization.
run_tsan() {  # [ctest args...]
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" setarch "$(uname -m)" -R \
    ctest --test-dir build/test-tsan --output-on-failure --timeout 600 -j "$jobs" "$@"
}
run_tsan
# WITNESS's hooks read and write shared state of their own (lock classes, the
# order graph): an ordering they create between two threads could hide a race
# in a lock. Switched off, the hooks return before they touch any of it.
# The compile-only annotation tests and the skipped fast-path probe run no
# lock code: not again.
echo "== lock tests under ThreadSanitizer, WITNESS switched off (PANICSTOP_WITNESS=-1)" >&2
PANICSTOP_WITNESS=-1 run_tsan -L '^lock$' -E '^lock\.(ThreadSafetyAnnotations|FastPathTest)\.'

echo "== lock and witness tests under AddressSanitizer + UndefinedBehaviorSanitizer (g++), WITNESS built in" >&2
cmake -S . -B build/test-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPANICSTOP_WERROR=ON \
      -DPANICSTOP_SANITIZE=address -DPANICSTOP_LOCK_TESTS_ONLY=ON -DPANICSTOP_WITNESS=ON >/dev/null
cmake --build build/test-asan -j "$jobs"
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  run_ctest build/test-asan
if [[ -n $aarch64_pid ]]; then
  echo "== waiting for the aarch64 build and tests" >&2
  if ! wait "$aarch64_pid"; then
    tail -n 60 build/test-aarch64.log >&2
    echo "panicstop: the aarch64 suite failed (build/test-aarch64.log)" >&2
    exit 1
  fi
  tail -n 3 build/test-aarch64.log >&2
fi
echo "panicstop: all test suites passed" >&2
