# store/pagestore.cmake: the page store (RocksDB and in-memory backends behind pagestore.h).
add_library(shoal_pagestore STATIC
    ${CMAKE_CURRENT_SOURCE_DIR}/pagestore.c)
target_include_directories(shoal_pagestore PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(shoal_pagestore PUBLIC shoal_proto PkgConfig::ROCKSDB PkgConfig::SODIUM
    Threads::Threads)
