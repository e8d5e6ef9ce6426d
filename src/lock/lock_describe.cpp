#include "lock/lock_describe.hpp"

#include "thread/slot.hpp"
#if __has_include("panicstop/rwlock.hpp")
#include "panicstop/rwlock.hpp"
#define PANICSTOP_HAVE_RWLOCK_WORD 1
#endif

namespace panicstop::detail {

void describe_lock_word(LockKind kind, uintptr_t word, int* owner_tid, uint32_t* readers) noexcept {
  *owner_tid = 0;
  *readers = 0;
  switch (kind) {
    case LockKind::kMutex:
    case LockKind::kSpinMutex:
      *owner_tid = tid_of_owner(word & ~kLockFlagMask);
      return;
#ifdef PANICSTOP_HAVE_RWLOCK_WORD
    case LockKind::kRwLock:
    case LockKind::kSxLock:
      // SxLock shares RwLock's word layout (rwlock.hpp).
      *owner_tid = tid_of_owner(shared_lock_owner(word));
      *readers = shared_lock_readers(word);
      return;
#endif
    default:
      return;
  }
}

}  // namespace panicstop::detail
