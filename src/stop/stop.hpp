// Stopping every other thread of the process: FreeBSD's stop_cpus() and
// stop_cpus_hard(), with threads for CPUs and signals for IPIs.
//
// The stopper lists /proc/self/task with raw getdents64, sends the stop signal
// to each thread with tgkill, and rescans until a pass finds no new thread (a
// thread can only be created by a thread that has not stopped yet, so once all
// known threads acknowledged, one more scan is exact). Each thread, in the stop
// signal's handler, saves its own registers, FP state and siginfo into its slot
// (claiming one if it never used the library), acknowledges, wakes the stopper
// and parks on a futex: forever after a hard stop, until restart_stopped_threads()
// after a soft one.
//
// Hard stop: the hard-stop signal, which the library never blocks (the panic's
// NMI). Soft stop: the soft-stop signal (kdb, live dumps), blocked in critical
// sections and deferred by the handler inside a SpinMutex's spinlock section:
// a thread inside one acknowledges when it leaves.
//
// Everything here is async-signal-safe and allocation-free once
// reserve_stop_memory() has run; stop_other_threads() reserves on first use
// with a raw mmap if install() did not.
#pragma once

#include <cerrno>
#include <cstdint>

namespace panicstop::detail {

enum class StopKind : uint32_t { kSoft = 1, kHard = 2 };

inline constexpr uint32_t kMaxNotStoppedListed = 256;

struct StopResult {
  bool ok = false;            // every thread found acknowledged before the deadline
  bool busy = false;          // another thread is the stopper (soft stop only)
  uint32_t stopped = 0;       // threads that acknowledged (parked now)
  uint32_t exited = 0;        // threads that exited before they could acknowledge
                              // (a zombie thread group leader among them)
  uint32_t kernel_workers = 0;  // the kernel's own threads in the group (io_uring's,
                                // vhost's): they run no program code; not waited for
  uint32_t not_stopped = 0;   // threads still running at the deadline
  // Of those, the ones the stop signal could not be sent to (a seccomp filter
  // or a security module refused tgkill/rt_tgsigqueueinfo, or the signal
  // queue stayed full), and the first errno a send failed with. The stop
  // does not wait for refused threads: they would never answer. A send that
  // found the user's queue full (EAGAIN, RLIMIT_SIGPENDING) is sent again
  // while the stop lasts, as each stopped thread frees an entry, and while
  // the queue stays full a kill() of the process (delivered even then, to
  // one thread that has not stopped) stops one more thread each time (the
  // first 64 such threads); only one still unstopped at the end counts here.
  uint32_t refused = 0;
  int refused_errno = 0;
  uint32_t scans = 0;         // passes over /proc/self/task
  // /proc/self/task could not be read: only the threads the slot registry
  // knows were stopped (see for_each_thread()).
  bool from_registry = false;
  int64_t start_ns = 0;       // CLOCK_MONOTONIC when the stop began
  int64_t end_ns = 0;         // when the last acknowledgement arrived (or the deadline)
  // The first kMaxNotStoppedListed of the threads that did not stop. Points
  // into reserved memory, valid until the next stop.
  const int* not_stopped_tids = nullptr;
  // Not null when the stop signal's handler had been replaced behind the
  // interposer's back (a raw sigaction): what had replaced it. panicstop's
  // handler was put back before the stop.
  const void* reclaimed_from = nullptr;
};

// Why a send of the stop signal failed with errno `err`, for reports: the
// likely cause in words, and the errno's name.
inline const char* stop_refusal_reason(int err) noexcept {
  switch (err) {
    case EPERM: return "not permitted (EPERM): a seccomp filter or a security module refuses it";
    case EAGAIN: return "the signal queue is full (EAGAIN): RLIMIT_SIGPENDING";
    case ENOSYS: return "no such system call (ENOSYS): a seccomp filter hides it";
    default: return "refused by the kernel";
  }
}

// Reserves the stopper's tables (idempotent; install calls it).
bool reserve_stop_memory() noexcept;

// The stop's timeout counts from the last acknowledgement, not from the
// start: every thread that answers starts the wait for the rest over, up to
// this many timeouts in all. A process with thousands of threads answers for
// longer than one timeout while every one of them is stopping (16,500 threads
// took 0.4 to 2.2 s on a loaded 2-CPU machine against the default 1 s), and
// would be reported with threads "not stopped" that were only slow. A thread
// that cannot stop still costs one timeout after the last progress, and the
// whole stop stays bounded.
inline constexpr int64_t kMaxStopTimeouts = 10;

// Stops every thread of the process but the caller. It waits for
// acknowledgements until timeout_ns has passed with none arriving (each one
// starts the wait for the others over), and never longer than
// kMaxStopTimeouts timeouts in all; the threads still silent then are not
// stopped. Only one thread stops the others at a time: a soft
// stop while another thread holds the stopper role returns busy; a hard stop
// takes the role over (a panic must not wait for kdb). After a hard stop the
// stopped threads never run again: restart_stopped_threads() does nothing.
// A hard stop by the thread whose soft stop is in force and caught every
// thread (a panic inside kdb) signals nobody: it makes that stop permanent and
// reports its count.
StopResult stop_other_threads(StopKind kind, int64_t timeout_ns) noexcept;

// Did thread tid acknowledge the stop in force, and so sit parked in the stop
// handler? False when no stop is in force (restarted, or none began). True also for a thread that saved no registers
// because it had no slot of its own (more live threads than kMaxThreads share
// the registry's overflow slot): the snapshot uses it to tell such a thread,
// which did stop, from one that kept running. One hash lookup, no system call.
bool stop_acknowledged(int tid) noexcept;

// Resumes the threads of the caller's soft stop and gives up the stopper role.
// Threads whose slot was claimed by the stop handler release it as they resume.
void restart_stopped_threads() noexcept;

// Installs the hard- and soft-stop signal handlers (setup; stop_setup.cpp).
// Returns false if sigaction fails. Until it succeeded, stop_other_threads()
// and save_own_context_via_signal() do nothing: the stop signals' default
// action would end the process.
bool install_stop_handlers() noexcept;
bool stop_handlers_installed() noexcept;

// Sends the stop signal to every existing thread with no stop in progress: the
// handler then only gives the thread an alternate signal stack
// (thread/altstack.hpp). install() calls it once.
void broadcast_altstack_setup() noexcept;

// The panicking thread asks for its own context to be saved into its slot: it
// raises the hard-stop signal at itself, and the handler, seeing this flag for
// this thread, saves the interrupted context (a real kernel-built ucontext with
// the full FP state) and returns instead of parking.
void save_own_context_via_signal() noexcept;

// Saves a context given by a signal handler (siginfo and ucontext of a fault)
// into slot->context, copying the FP state the ucontext points at. slot may
// be the overflow slot (thread/slot.hpp) only for the thread saving its own
// context as the panicking or capturing thread; it then records the tid.
struct ThreadSlot;
void save_context(ThreadSlot* slot, const void* siginfo, const void* ucontext) noexcept;

// In the child of fork(): forgets a stop the parent had in progress (its
// stopper and stopped threads are not in the child). Async-signal-safe.
void reset_stop_after_fork() noexcept;

// Where for_each_thread() found the threads.
enum class ThreadSource : uint8_t {
  kProc,      // /proc/self/task: every thread of the process
  kRegistry,  // /proc unreadable: panicstop's slots, i.e. only the threads that
              // used the library or were stopped by it before, and those beyond
              // kMaxThreads that it lists by tid (thread/slot.hpp)
  kNone,      // neither
};

// Calls fn(tid, arg) for every thread in /proc/self/task but an emulator's
// own (stop/emulator.hpp; none natively), read through the
// descriptor of stop/proc_dir.hpp). When that cannot be read it falls back to
// the threads of the slot registry that still exist, and says so in *source.
// Returns the count, or -1 if neither could be read. Raw system calls only.
int for_each_thread(void (*fn)(int tid, void* arg) noexcept, void* arg, ThreadSource* source = nullptr) noexcept;

// What a thread of this process that has not answered the stop is:
// kExited when gone, or a zombie (a thread group leader that returned through
// pthread_exit() stays one until the process ends, and never answers a
// signal); kKernelWorker for the kernel's own threads in the group
// (stop/proc_dir.hpp, TaskStat), which never answer either; kLive otherwise,
// and whenever /proc cannot tell, including when no procfs was found: then a
// thread that is slow to answer is waited for, never taken for gone.
enum class TaskKind : uint8_t { kLive, kExited, kKernelWorker };
TaskKind task_kind(int tid) noexcept;

}  // namespace panicstop::detail
