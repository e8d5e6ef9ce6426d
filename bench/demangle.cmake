# sys::demangle's throughput next to abi::__cxa_demangle, on libstdc++'s own
# symbols.
add_executable(demangle_bench ${CMAKE_CURRENT_LIST_DIR}/demangle_bench.cpp)
target_include_directories(demangle_bench PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(demangle_bench PRIVATE panicstop_static benchmark::benchmark)
