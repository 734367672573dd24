# tools/bench_store.cmake: bench_store, page-store gets vs pread (see tools/bench/README.md).
add_executable(bench_store ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_store.c)
target_link_libraries(bench_store PRIVATE shoal_pagestore shoal_proto)
