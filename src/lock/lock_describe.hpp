// Decoding a lock word for dumps: who owns the lock, as the word says.
#pragma once

#include <cstdint>

#include "panicstop/lock_object.hpp"

namespace panicstop::detail {

// Decodes `word`, a copy of the lock word of a lock of the given kind.
// Mutex and SpinMutex: the word is the owner's slot address plus flag bits;
// *owner_tid is that thread's tid (0 if unowned or the owner has no slot) and
// *readers is 0. RwLock and SxLock (one layout, panicstop/rwlock.hpp): the
// write owner's tid, or the number of shared holders. Other kinds: both 0
// (unknown). Never dereferences anything but slot memory.
void describe_lock_word(LockKind kind, uintptr_t word, int* owner_tid, uint32_t* readers) noexcept;

}  // namespace panicstop::detail
