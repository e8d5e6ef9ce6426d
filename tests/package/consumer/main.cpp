#include <panicstop/panicstop.hpp>

#include <cstdio>
#include <mutex>

int main() {
  panicstop::Mutex m{"consumer"};
  std::lock_guard<panicstop::Mutex> g(m);
  std::printf("%s owned=%d stopped=%d\n", m.name(), int(m.owned()), int(panicstop::scheduler_stopped()));
  return m.owned() ? 0 : 1;
}
