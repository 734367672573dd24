# tools/cli.cmake: the `shoal` command. It links libshoal.so (the public API only), so it also
# proves that the shared library exports everything a program needs.
add_executable(shoal_cli ${CMAKE_CURRENT_SOURCE_DIR}/shoal_cli.c)
set_target_properties(shoal_cli PROPERTIES OUTPUT_NAME shoal)
# shoal_proto (static) gives it the base layer's clock, hex and size/duration grammar, which
# libshoal.so keeps hidden.
target_link_libraries(shoal_cli PRIVATE shoal_shared shoal_proto PkgConfig::JANSSON
    PkgConfig::SODIUM Threads::Threads)
