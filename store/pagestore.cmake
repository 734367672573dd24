# store/pagestore.cmake: the page store (pagestore.h) with its RocksDB and in-memory backends.
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
add_library(shoal_pagestore STATIC
    ${CMAKE_CURRENT_SOURCE_DIR}/pagestore.c
    ${CMAKE_CURRENT_SOURCE_DIR}/pagestore_memory.c
    ${CMAKE_CURRENT_SOURCE_DIR}/pagestore_mmap.c
    ${CMAKE_CURRENT_SOURCE_DIR}/pagestore_rocksdb.c)
target_include_directories(shoal_pagestore PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(shoal_pagestore PUBLIC shoal_proto PkgConfig::ROCKSDB PkgConfig::SODIUM
    PkgConfig::XXHASH Threads::Threads)
