// What `panicstop run` costs each program it starts: a build or a script
// under it starts thousands. Starts PROGRAM (default /bin/true) N times per
// configuration and round, rounds interleaved, and prints the mean time of
// one start (posix_spawn to waitpid) per configuration and round.
//
//   program_start N ROUNDS CONFIG... [-- PROGRAM ARGS...]
//
// CONFIG is a preload path ("" for none) optionally followed by
// |NAME=VALUE environment entries, e.g.
//   program_start 500 3 "" libpanicstop_preload.so "libpanicstop_preload.so|PANICSTOP_KDB_SOCKET=0"
// The programs get only LD_PRELOAD, PATH and those entries. Run it from the
// directory to start in: install() may read it (dump/stale_dumps.hpp).
#include <spawn.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

double now_s() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t from = 0;
  for (size_t at; (at = s.find(sep, from)) != std::string::npos; from = at + 1) out.push_back(s.substr(from, at - from));
  out.push_back(s.substr(from));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s N ROUNDS CONFIG... [-- PROGRAM ARGS...]\n", argv[0]);
    return 2;
  }
  int n = atoi(argv[1]), rounds = atoi(argv[2]);
  std::vector<std::string> configs;
  std::vector<char*> program = {const_cast<char*>("/bin/true")};
  int i = 3;
  for (; i < argc && strcmp(argv[i], "--") != 0; ++i) configs.push_back(argv[i]);
  if (i < argc && i + 1 < argc) program.assign(argv + i + 1, argv + argc);
  program.push_back(nullptr);
  for (int round = 0; round < rounds; ++round) {
    for (const std::string& config : configs) {
      std::vector<std::string> parts = split(config, '|');
      std::vector<std::string> env = {"LD_PRELOAD=" + parts[0], "PATH=/usr/bin:/bin"};
      env.insert(env.end(), parts.begin() + 1, parts.end());
      std::vector<char*> envp;
      for (std::string& e : env) envp.push_back(e.data());
      envp.push_back(nullptr);
      double start = now_s();
      for (int k = 0; k < n; ++k) {
        pid_t pid = 0;
        if (posix_spawn(&pid, program[0], nullptr, nullptr, program.data(), envp.data()) != 0) {
          perror("posix_spawn");
          return 1;
        }
        int status = 0;
        waitpid(pid, &status, 0);
      }
      printf("round %d  %-60s %8.0f us per start\n", round, config.empty() ? "(no preload)" : config.c_str(),
             (now_s() - start) / n * 1e6);
      fflush(stdout);
    }
  }
  return 0;
}
