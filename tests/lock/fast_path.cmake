# lock_fast_path_test (docs/DESIGN.md, section 4, invariant 1) reads the machine code of the
# lock fast paths from its own binary. The probes are those fast paths compiled
# out of line; they must be optimized as a user's code would be, whatever the
# build type, so they get -O2 (after the build type's flags, so it wins).
# Included from tests/lock/CMakeLists.txt.
if(TARGET lock_fast_path_test)
  set(fast_path_probe ${CMAKE_CURRENT_LIST_DIR}/fast_path_probe.cpp)
  target_sources(lock_fast_path_test PRIVATE ${fast_path_probe})
  set_source_files_properties(${fast_path_probe} TARGET_DIRECTORY lock_fast_path_test PROPERTIES COMPILE_OPTIONS -O2)
endif()
# aarch64: the same probes twice more, as code built for LSE atomics and as
# code built without outline atomics, so the test checks both machine forms
# of "one read-modify-write" whatever the build's own default is.
if(TARGET lock_fast_path_test AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(fast_path_lse ${CMAKE_CURRENT_LIST_DIR}/fast_path_probe_lse.cpp)
  set(fast_path_llsc ${CMAKE_CURRENT_LIST_DIR}/fast_path_probe_llsc.cpp)
  target_sources(lock_fast_path_test PRIVATE ${fast_path_lse} ${fast_path_llsc})
  set_source_files_properties(${fast_path_lse} TARGET_DIRECTORY lock_fast_path_test PROPERTIES
    COMPILE_OPTIONS "-O2;-march=armv8.1-a;-mno-outline-atomics")
  set_source_files_properties(${fast_path_llsc} TARGET_DIRECTORY lock_fast_path_test PROPERTIES
    COMPILE_OPTIONS "-O2;-march=armv8-a;-mno-outline-atomics")
  target_compile_definitions(lock_fast_path_test PRIVATE PANICSTOP_FAST_PATH_AARCH64_VARIANTS=1)
endif()
# The disassembler for the test's own architecture (a cross build's objdump).
if(TARGET lock_fast_path_test)
  target_compile_definitions(lock_fast_path_test PRIVATE PANICSTOP_OBJDUMP="${CMAKE_OBJDUMP}")
endif()
