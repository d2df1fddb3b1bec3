# Locate Debian's BoringSSL (android-libboringssl-dev). It ships no
# pkg-config file: headers live under include/android and the libraries under
# lib/<triplet>/android, outside the default search path, so we set the rpath.
# OpenSSL 3 must never be linked beside it (tests/integration/test_no_openssl.sh).
if(NOT CMAKE_LIBRARY_ARCHITECTURE)
  set(CMAKE_LIBRARY_ARCHITECTURE x86_64-linux-gnu)
endif()
find_path(BORINGSSL_INCLUDE_DIR openssl/base.h
  PATHS /usr/include/android NO_DEFAULT_PATH REQUIRED)
find_library(BORINGSSL_SSL_LIB NAMES ssl
  PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/android NO_DEFAULT_PATH REQUIRED)
find_library(BORINGSSL_CRYPTO_LIB NAMES crypto
  PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/android NO_DEFAULT_PATH REQUIRED)
get_filename_component(BORINGSSL_LIB_DIR ${BORINGSSL_CRYPTO_LIB} DIRECTORY)

add_library(boringssl_crypto SHARED IMPORTED)
set_target_properties(boringssl_crypto PROPERTIES
  IMPORTED_LOCATION ${BORINGSSL_CRYPTO_LIB}
  IMPORTED_NO_SONAME OFF
  INTERFACE_INCLUDE_DIRECTORIES ${BORINGSSL_INCLUDE_DIR})
add_library(boringssl_ssl SHARED IMPORTED)
set_target_properties(boringssl_ssl PROPERTIES
  IMPORTED_LOCATION ${BORINGSSL_SSL_LIB}
  INTERFACE_INCLUDE_DIRECTORIES ${BORINGSSL_INCLUDE_DIR}
  INTERFACE_LINK_LIBRARIES boringssl_crypto)

set(CMAKE_BUILD_RPATH ${BORINGSSL_LIB_DIR})
set(CMAKE_INSTALL_RPATH ${BORINGSSL_LIB_DIR})
message(STATUS "BoringSSL: ${BORINGSSL_INCLUDE_DIR} ${BORINGSSL_LIB_DIR}")
