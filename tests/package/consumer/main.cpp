#include <panicstop/panicstop.hpp>

#include <cstdio>
#include <cstring>

#define CONSUMER_STR2(x) #x
#define CONSUMER_STR(x) CONSUMER_STR2(x)

panicstop::Mutex m{"consumer"};
int counter PANICSTOP_GUARDED_BY(m) = 0;

int main() {
  panicstop::MutexLock hold(m);
  ++counter;
  // The headers and the library it links with are one version.
  const char* headers = CONSUMER_STR(PANICSTOP_VERSION_MAJOR) "." CONSUMER_STR(PANICSTOP_VERSION_MINOR) "." CONSUMER_STR(
      PANICSTOP_VERSION_PATCH);
  std::printf("%s owned=%d stopped=%d version=%s\n", m.name(), int(m.owned()), int(panicstop::scheduler_stopped()),
              panicstop::version_string());
  return m.owned() && std::strcmp(headers, panicstop::version_string()) == 0 ? 0 : 1;
}
