// Tasks of a user-mode emulator (qemu-user) that share the program's thread
// group without ever running the program's code.
//
// Under qemu-user every guest thread is a host thread, but qemu also starts
// helper threads of its own before the program's first instruction (its RCU
// reclaimer, call_rcu). They are listed in /proc/self/task like any other
// thread, yet they block every signal qemu does not need, so a stop signal
// sent to them is never delivered: counted as threads of the program, each
// stop would wait its full timeout and the report would blame the program
// for a thread that "did not stop".
//
// Detection, at install time (note_emulator_tasks): the program runs under an
// emulator when proc_emulated() says so (stop/proc_dir.hpp: /proc/self/exe,
// which qemu rewrites to the guest program, differs from the same file read
// through the kept /proc descriptor, which it does not rewrite). Only then, each other task whose kernel signal mask
// (SigBlk in /proc/self/task/TID/status) blocks the stop signals is taken for
// an emulator task: a guest thread's host mask never blocks them, because
// qemu keeps the guest's signal mask to itself. Natively nothing is
// recorded and nothing is skipped.
#pragma once

namespace panicstop::detail {

// Setup only (reads /proc with the C library): records the emulator's tasks
// that exist now, and names the program's tasks that still carry the
// emulator's name (the kernel named the process after the emulator's binary,
// "qemu-aarch64") after the guest program, as the kernel would have named
// them natively; a task the program named itself is left alone. Idempotent;
// a no-op outside an emulator.
void note_emulator_tasks() noexcept;

// Crash-path safe (a lookup in a fixed array): true if tid is an emulator
// task recorded by note_emulator_tasks(). for_each_thread() skips them, so
// neither the stop nor the snapshot counts them as threads of the program.
bool is_emulator_task(int tid) noexcept;

// How many emulator tasks were recorded (0 natively).
int emulator_task_count() noexcept;

}  // namespace panicstop::detail
