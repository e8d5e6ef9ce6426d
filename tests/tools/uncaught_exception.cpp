// A C++ program built without panicstop whose exception nobody catches, for
// `panicstop run`: the shim carries its own hidden copy of the C++ runtime,
// and must still make the program's std::terminate a panic that names the
// exception. Usage: uncaught_exception main|thread|int
#include <cstring>
#include <stdexcept>
#include <thread>

namespace {

struct DiskOnFire : std::runtime_error {
  DiskOnFire() : std::runtime_error("the disk is on fire") {}
};

[[noreturn]] void fail() { throw DiskOnFire(); }

}  // namespace

int main(int argc, char** argv) {
  const char* where = argc > 1 ? argv[1] : "main";
  if (strcmp(where, "int") == 0) throw 42;
  if (strcmp(where, "thread") == 0) {
    std::thread worker(fail);  // leaves the thread's noexcept start routine: std::terminate
    worker.join();
  }
  fail();
}
