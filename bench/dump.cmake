# Dump latency and size at 10, 100 and 1,000 threads, next to gcore.
add_executable(dump_latency ${CMAKE_CURRENT_LIST_DIR}/dump_latency.cpp)
target_include_directories(dump_latency PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(dump_latency PRIVATE panicstop_static Threads::Threads)
