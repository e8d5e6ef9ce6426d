#include "panicstop/lock_object.hpp"

#include "panicstop/panic.hpp"

namespace panicstop::detail {

const char* lock_kind_name(LockKind kind) noexcept {
  switch (kind) {
    case LockKind::kMutex: return "mutex";
    case LockKind::kSpinMutex: return "spin mutex";
    case LockKind::kRwLock: return "rwlock";
    case LockKind::kSxLock: return "sx lock";
    case LockKind::kCondVar: return "condvar";
  }
  return "lock";
}

void lock_misuse(const LockObject* lo, const char* what) noexcept {
  panic("%s \"%s\" (%p): %s", lock_kind_name(lo->kind), lo->name, static_cast<const void*>(lo), what);
}

}  // namespace panicstop::detail
