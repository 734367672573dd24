# client/client.cmake: libshoal. shoal_client is the static library (the tests link it to reach
# the private parts); libshoal.so (target shoal_shared, output name "shoal") carries the same
# objects plus proto, hrw and ufs inside it and exports only the shoal_* functions.
set(SHOAL_CLIENT_SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/client.c
    ${CMAKE_CURRENT_SOURCE_DIR}/session.c
    ${CMAKE_CURRENT_SOURCE_DIR}/view.c
    ${CMAKE_CURRENT_SOURCE_DIR}/range.c
    ${CMAKE_CURRENT_SOURCE_DIR}/meta.c
    ${CMAKE_CURRENT_SOURCE_DIR}/list.c
    ${CMAKE_CURRENT_SOURCE_DIR}/health.c
    ${CMAKE_CURRENT_SOURCE_DIR}/counters.c
    ${CMAKE_CURRENT_SOURCE_DIR}/read.c
    ${CMAKE_CURRENT_SOURCE_DIR}/admin.c
    ${CMAKE_CURRENT_SOURCE_DIR}/fallback.c
    ${CMAKE_CURRENT_SOURCE_DIR}/local.c)
# XXH3 (Debian's libxxhash, with run-time dispatch) checks short-circuit pages (local.c).
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)

add_library(shoal_client STATIC ${SHOAL_CLIENT_SOURCES})
target_include_directories(shoal_client PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(shoal_client PUBLIC shoal_proto shoal_hrw shoal_ufs PkgConfig::ZMQ
    PkgConfig::SODIUM PkgConfig::JANSSON PkgConfig::XXHASH Threads::Threads)

# The shared library: the client objects compiled again with hidden visibility, and the
# static dependencies linked whole-archive-free (only what is referenced); the version script
# keeps every symbol but shoal_* local, so the embedded proto/ufs/hrw code cannot clash with
# a program that links its own copies.
add_library(shoal_shared SHARED ${SHOAL_CLIENT_SOURCES})
set_target_properties(shoal_shared PROPERTIES
    OUTPUT_NAME shoal
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR}
    C_VISIBILITY_PRESET hidden
    LINK_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/libshoal.map)
target_compile_definitions(shoal_shared PRIVATE SHOAL_BUILDING_SHARED=1)
# shoal.h includes shoal_err.h (proto/): the public headers are those two files.
target_include_directories(shoal_shared PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
    ${PROJECT_SOURCE_DIR}/proto PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(shoal_shared PRIVATE shoal_proto shoal_hrw shoal_ufs PkgConfig::ZMQ
    PkgConfig::SODIUM PkgConfig::JANSSON PkgConfig::XXHASH Threads::Threads
    -Wl,--version-script=${CMAKE_CURRENT_SOURCE_DIR}/libshoal.map)
# Every symbol resolved inside the library, except under the sanitizers, whose runtime the
# executable provides.
if(NOT SHOAL_SANITIZE)
    target_link_options(shoal_shared PRIVATE -Wl,--no-undefined)
endif()
