// New threads take an alternate signal stack as they start, so a stack
// overflow in a thread that never touches the library still reaches the panic
// path.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "panicstop/panic.hpp"
#include "support/child_process.hpp"
#include "thread/altstack.hpp"

namespace {

volatile int g_keep_recursing = 1;  // opaque to the compiler, so the recursion is not "infinite"

__attribute__((noinline)) int overflow_the_stack(int depth) {
  volatile char frame[1024];
  frame[0] = char(depth);
  if (!g_keep_recursing) return frame[0];
  return overflow_the_stack(depth + 1) + frame[0];
}

TEST(ThreadStart, OverflowInAThreadThatNeverUsesTheLibraryIsAPanic) {
  if (!panicstop::detail::thread_start_hook_active())
    GTEST_SKIP() << "pthread_create is not interposed in this build (sanitizer)";
  panicstop::testing::ChildOptions opts;
  opts.set_env = {{"PANICSTOP_DUMP", "none"}};
  auto r = panicstop::testing::run_in_child(
      [] {
        panicstop::install();
        // Created after install(), and it never calls the library.
        std::thread([] { overflow_the_stack(0); }).join();
      },
      opts);
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe();
  EXPECT_NE(r.output.find("panic: fatal signal SIGSEGV"), std::string::npos) << r.describe();
}

}  // namespace
