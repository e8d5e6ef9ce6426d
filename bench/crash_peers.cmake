# bench/crash_peers: the drill workload (tools/drill_workload.cpp) built once
# per crash handler that users pick today, each with its adapter from
# bench/crash_peers/. The panicstop build is the drill's own workload
# (tools/panicstop-drill-workload). A peer is built only where its Debian
# package is found. The harness, bench/crash_peers.py, is copied beside the
# binaries as bench/crash_peers. Included from bench/CMakeLists.txt.
set(crash_peers_dir ${CMAKE_CURRENT_LIST_DIR}/crash_peers)
set(crash_peers_built "")

function(add_crash_peer name adapter)
  add_executable(crash_peers_${name} ${PROJECT_SOURCE_DIR}/tools/drill_workload.cpp ${crash_peers_dir}/${adapter})
  target_include_directories(crash_peers_${name} PRIVATE ${PROJECT_SOURCE_DIR}/tools)
  target_link_libraries(crash_peers_${name} PRIVATE panicstop_static Threads::Threads ${ARGN})
  set(crash_peers_built ${crash_peers_built} crash_peers_${name} PARENT_SCOPE)
endfunction()

add_crash_peer(kernel_core handler_kernel_core.cpp)

if(TARGET absl::failure_signal_handler)
  add_crash_peer(absl handler_absl.cpp absl::failure_signal_handler)
else()
  message(STATUS "crash_peers: abseil's failure signal handler not found (libabsl-dev): no absl peer")
endif()

find_package(glog CONFIG QUIET)
if(TARGET glog::glog)
  add_crash_peer(glog handler_glog.cpp glog::glog)
else()
  message(STATUS "crash_peers: glog not found (libgoogle-glog-dev): no glog peer")
endif()

find_path(CRASH_PEERS_BACKWARD_INCLUDE backward.hpp)
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(CRASH_PEERS_LIBDW QUIET IMPORTED_TARGET libdw)
endif()
if(CRASH_PEERS_BACKWARD_INCLUDE AND TARGET PkgConfig::CRASH_PEERS_LIBDW)
  add_crash_peer(backward handler_backward.cpp PkgConfig::CRASH_PEERS_LIBDW)
  target_include_directories(crash_peers_backward PRIVATE ${CRASH_PEERS_BACKWARD_INCLUDE})
else()
  message(STATUS "crash_peers: backward.hpp or libdw not found (libbackward-cpp-dev, libdw-dev): no backward-cpp peer")
endif()

configure_file(${CMAKE_CURRENT_LIST_DIR}/crash_peers.py ${CMAKE_CURRENT_BINARY_DIR}/crash_peers COPYONLY)
# One target that builds everything the harness runs.
add_custom_target(crash_peers DEPENDS ${crash_peers_built} panicstop_cli panicstop_drill_workload)

# A smoke test of seconds: the harness runs, panicstop's trials are complete,
# peers are built and run. Not in the sanitizer runs (they build no bench).
find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
  add_test(NAME crash_peers_smoke
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_BINARY_DIR}/crash_peers --build ${PROJECT_BINARY_DIR}
                   --trials 2 --peer-trials 1 --kinds segv,abort --handlers panicstop,backward-cpp,kernel-core)
  set_tests_properties(crash_peers_smoke PROPERTIES LABELS "bench;crash" TIMEOUT 120)
endif()
