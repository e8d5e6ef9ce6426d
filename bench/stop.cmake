# Stop latency: soft stop and restart of N idle or busy threads, and the cost of
# one signal round trip (the floor). A plain program, not Google Benchmark.
add_executable(stop_latency ${CMAKE_CURRENT_LIST_DIR}/stop_latency.cpp)
target_include_directories(stop_latency PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(stop_latency PRIVATE panicstop_static Threads::Threads)
