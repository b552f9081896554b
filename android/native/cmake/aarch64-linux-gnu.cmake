# Cross-build libbokeh, bokeh-native and the golden-vector test for arm64 Linux (aarch64, glibc)
# on a Debian/Ubuntu x86-64 machine, with Debian's cross gcc and multiarch arm64 libraries:
#
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross libstdc++6-arm64-cross qemu-user-static \
#                   libpng-dev:arm64 libjpeg62-turbo-dev:arm64 libcjson-dev:arm64
#   LITERT=$(android/native/fetch-litert-arm64 ~/.cache/bokehlite-arm64)
#   cmake -S android/native -B BUILD-arm64 -DCMAKE_TOOLCHAIN_FILE=android/native/cmake/aarch64-linux-gnu.cmake \
#         -DLITERT_DIR="$LITERT"
#   cmake --build BUILD-arm64
#   android/native/run-arm64 BUILD-arm64/bokeh-native --threads 1 ...     # under qemu-user
#
# Debian's cross gcc already searches the multiarch folders (/usr/include/aarch64-linux-gnu,
# /usr/lib/aarch64-linux-gnu), so libpng, libjpeg-turbo and cJSON for arm64 are found where
# apt put them; this file only has to keep CMake and pkg-config away from the x86-64 ones.
# On an arm64 machine itself no toolchain file is needed: the plain build of android/README.md.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(BOKEH_CROSS_TRIPLET aarch64-linux-gnu CACHE STRING "the cross compiler's prefix and the multiarch name")
set(CMAKE_C_COMPILER ${BOKEH_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${BOKEH_CROSS_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${BOKEH_CROSS_TRIPLET})

# Where find_library/find_path/find_package look: the cross glibc's folder and the host's root,
# whose multiarch folders (lib/aarch64-linux-gnu) hold the arm64 packages. Programs (the
# compiler, pkg-config) are host programs; libraries and headers are target ones only.
set(CMAKE_FIND_ROOT_PATH /usr/${BOKEH_CROSS_TRIPLET} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config (libcjson): the arm64 .pc files only, never the x86-64 ones in the default path.
# The paths in them are the host's real multiarch paths, so no sysroot is prefixed.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${BOKEH_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

# try_run cannot run arm64 programs here; CMake runs them under qemu-user where asked.
find_program(BOKEH_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(BOKEH_QEMU_AARCH64 AND NOT CMAKE_CROSSCOMPILING_EMULATOR)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${BOKEH_QEMU_AARCH64};-L;/usr/${BOKEH_CROSS_TRIPLET}")
endif()
