# tools/bench_codec.cmake: bench_codec, our msgpack writer against msgpack-c's packer (see
# proto/README.md, "Choices").
add_executable(bench_codec ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_codec.c)
target_link_libraries(bench_codec PRIVATE shoal_proto PkgConfig::MSGPACK)
set_target_properties(bench_codec PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tools/bench)
