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
