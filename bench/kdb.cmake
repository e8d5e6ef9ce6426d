# Pause seen by a running process per live dump and per kdb cycle at 10, 100
# and 1,000 threads, next to gcore.
add_executable(kdb_pause ${CMAKE_CURRENT_LIST_DIR}/kdb_pause.cpp)
target_include_directories(kdb_pause PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(kdb_pause PRIVATE panicstop_static Threads::Threads)
