// aarch64: the probes again, compiled with plain armv8-a without outline atomics: each read-modify-write is an inline exclusive-load/store loop (ldaxr/stlxr).
// Flags in fast_path.cmake.
#define PANICSTOP_PROBE_SUFFIX _llsc
#include "fast_path_probe.cpp"  // NOLINT(bugprone-suspicious-include)
