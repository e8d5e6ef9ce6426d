// Finding the C library's definitions of the interposed functions, and taking
// signals over. Setup only: dlsym and sigaction.
#include <dlfcn.h>

#include <atomic>

#include "thread/libc_next.hpp"
#include "thread/program_signals.hpp"
#include "thread/rseq.hpp"

extern "C" int __sigaction(int, const struct sigaction*, struct sigaction*);

namespace panicstop::detail {

namespace {

LibcNext g_next{};
std::atomic<bool> g_resolved{false};

template <typename Fn>
void find(Fn* slot, const char* name) {
#if PANICSTOP_INTERPOSE
  *slot = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
#else
  (void)slot;
  (void)name;
#endif
}

// Before main() and before the preload's install(): a program may call
// sigaction() from its own constructors.
__attribute__((constructor(101))) void resolve_at_load() { resolve_libc_next(); }

}  // namespace

const LibcNext& libc_next() noexcept { return g_next; }

void resolve_libc_next() noexcept {
  if (g_resolved.load(std::memory_order_acquire)) return;
#if PANICSTOP_INTERPOSE
  find(&g_next.sigaction, "sigaction");
  // A static program has no next definition: glibc's own name for it then.
  if (g_next.sigaction == nullptr) g_next.sigaction = __sigaction;
  find(&g_next.signal, "signal");
  find(&g_next.sysv_signal, "sysv_signal");
  find(&g_next.pthread_sigmask, "pthread_sigmask");
  find(&g_next.sigprocmask, "sigprocmask");
  find(&g_next.sigsuspend, "sigsuspend");
  find(&g_next.sigwait, "sigwait");
  find(&g_next.sigwaitinfo, "sigwaitinfo");
  find(&g_next.sigtimedwait, "sigtimedwait");
  find(&g_next.signalfd, "signalfd");
  find(&g_next.pselect, "pselect");
  find(&g_next.ppoll, "ppoll");
  find(&g_next.epoll_pwait, "epoll_pwait");
  find(&g_next.epoll_pwait2, "epoll_pwait2");
  find(&g_next.pthread_attr_setsigmask_np, "pthread_attr_setsigmask_np");
  find(&g_next.longjmp, "longjmp");
  find(&g_next._longjmp, "_longjmp");
  find(&g_next.siglongjmp, "siglongjmp");
  find(&g_next.__longjmp_chk, "__longjmp_chk");
  find(&g_next.exit, "exit");
  find(&g_next._exit, "_exit");
  find(&g_next._Exit, "_Exit");
#else
  g_next.sigaction = ::sigaction;
  g_next.pthread_sigmask = ::pthread_sigmask;
  g_next.sigprocmask = ::sigprocmask;
#endif
  find_rseq_layout();
  g_resolved.store(true, std::memory_order_release);
}

int libc_sigaction(int sig, const struct sigaction* act, struct sigaction* old) noexcept {
  resolve_libc_next();
  return g_next.sigaction(sig, act, old);
}

}  // namespace panicstop::detail
