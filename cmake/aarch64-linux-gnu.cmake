# Cross-build for 64-bit Arm with Debian's cross compiler (g++-aarch64-linux-gnu) against the arm64
# libraries of a multiarch install (libfmt-dev:arm64, ...; `make arm64-test` installs them). The
# binaries run here under qemu-user: CMAKE_CROSSCOMPILING_EMULATOR makes ctest and gtest discovery
# start them through it. They load the arm64 C library of the multiarch install (libc6:arm64, what
# /lib/ld-linux-aarch64.so.1 points to), not the cross toolchain's copy: `qemu-aarch64 -L
# /usr/aarch64-linux-gnu` mixes that copy's loader with the multiarch libraries, and threads then hang.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
