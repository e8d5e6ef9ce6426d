# The cost of `panicstop run` to each program it starts (docs/BENCHMARKS.md).
add_executable(program_start program_start.cpp)
