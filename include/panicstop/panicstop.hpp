// panicstop: FreeBSD's "stop the scheduler on panic" for multithreaded programs.
// Include this one header; see each included header for its contract.
#pragma once

#include "panicstop/version.hpp"
#include "panicstop/thread_annotations.hpp"
#include "panicstop/thread.hpp"
#include "panicstop/lock_object.hpp"
#include "panicstop/mutex.hpp"
#include "panicstop/spin_mutex.hpp"
#include "panicstop/rwlock.hpp"
#include "panicstop/sx_lock.hpp"
#include "panicstop/condvar.hpp"
#include "panicstop/lock_guard.hpp"
#include "panicstop/panic.hpp"
#include "panicstop/kdb.hpp"
#include "panicstop/witness.hpp"
#include "panicstop/lockprof.hpp"
