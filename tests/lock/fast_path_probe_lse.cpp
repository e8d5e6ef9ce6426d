// aarch64: the probes again, compiled with LSE atomics (-march=armv8.1-a): each read-modify-write is one cas/casa/casl/casal or other LSE instruction.
// Flags in fast_path.cmake.
#define PANICSTOP_PROBE_SUFFIX _lse
#include "fast_path_probe.cpp"  // NOLINT(bugprone-suspicious-include)
