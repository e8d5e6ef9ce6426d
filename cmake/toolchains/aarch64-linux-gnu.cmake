# Cross build for aarch64 (arm64) Linux with Debian's cross compiler:
#   scripts/deps.sh aarch64      # g++-aarch64-linux-gnu, qemu-user, gdb-multiarch, googletest (root)
#   cmake -S . -B build/aarch64 -G Ninja \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
#   ninja -C build/aarch64 && ctest --test-dir build/aarch64
#
# The tests run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR), with the
# aarch64 C library from Debian's libc6-arm64-cross as the guest's root.
#
# Atomics: no -march is set, so the code is plain armv8-a and runs on every
# arm64 CPU. gcc (10 and later, Debian's 12 included) then defaults to
# -moutline-atomics: each lock and unlock is one call to a libgcc helper
# (__aarch64_cas8_acq, __aarch64_cas8_rel...) that uses the LSE instruction
# (cas, casa, casl, casal) where the CPU has it and an exclusive-load/store
# loop (ldaxr/stxr) where it does not, chosen once at start-up. That keeps
# one binary correct and fast on armv8.0 and armv8.1+ alike, which is also
# why Debian's own arm64 packages are built that way. A build for LSE-only
# machines may add -DCMAKE_CXX_FLAGS=-march=armv8.1-a to inline the cas.
# tests/lock/fast_path_test.cpp checks all three forms: the default, LSE
# inline, and armv8.0 without outline atomics.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(PANICSTOP_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${PANICSTOP_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${PANICSTOP_CROSS_TRIPLE}-g++)

# Debian's cross libraries live in /usr/aarch64-linux-gnu; multiarch arm64
# packages (libdw-dev:arm64), where installed, in /usr/lib/aarch64-linux-gnu.
set(CMAKE_FIND_ROOT_PATH /usr/${PANICSTOP_CROSS_TRIPLE})
set(CMAKE_LIBRARY_ARCHITECTURE ${PANICSTOP_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config must never hand the host's x86-64 libraries (libdw, libcurl) to
# the cross linker: it looks in the aarch64 directories only.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${PANICSTOP_CROSS_TRIPLE}/pkgconfig:/usr/${PANICSTOP_CROSS_TRIPLE}/lib/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

# ctest and gtest_discover_tests run the test programs under qemu-user.
find_program(PANICSTOP_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(PANICSTOP_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${PANICSTOP_QEMU_AARCH64} -L /usr/${PANICSTOP_CROSS_TRIPLE})
endif()
