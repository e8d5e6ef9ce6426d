# witness_bench: the cost of WITNESS per acquisition with 1, 4 and 16 locks
# held (bench/witness_bench.cpp). Meaningful in a build with
# -DPANICSTOP_WITNESS=ON; in a build without it, it measures the plain lock.
# Included from bench/CMakeLists.txt.
add_executable(witness_bench ${CMAKE_CURRENT_LIST_DIR}/witness_bench.cpp)
target_link_libraries(witness_bench PRIVATE panicstop_static benchmark::benchmark Threads::Threads)
# witness_pairs: N lock/unlock pairs with 4 locks held, no benchmark library,
# for instruction counts under callgrind (see its header).
add_executable(witness_pairs ${CMAKE_CURRENT_LIST_DIR}/witness_pairs.cpp)
target_link_libraries(witness_pairs PRIVATE panicstop_static Threads::Threads)
