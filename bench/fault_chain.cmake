# The cost of a runtime's own faults with and without panicstop's handler in
# front of the program's: one source, built without and with the library.
add_executable(fault_chain_plain fault_chain.cpp)
add_executable(fault_chain_panicstop fault_chain.cpp)
target_compile_definitions(fault_chain_panicstop PRIVATE FAULT_CHAIN_WITH_PANICSTOP)
target_link_libraries(fault_chain_panicstop PRIVATE panicstop_static)
