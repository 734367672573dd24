# tests/node.cmake: shoald's tests. test_node_mount is pure (mount normalisation, config
# parsing); test_node_flight tests range buffers and their pool; test_node_fetch the fetch pool's wake-ups; test_node starts the real shoald binary against file:// and nginx origins.
shoal_unit_test(test_node_mount shoal_node)
shoal_unit_test(test_node_flight shoal_node)
shoal_unit_test(test_node_fetch shoal_node PkgConfig::ZMQ)
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_node.c)
    shoal_unit_test(test_node shoal_proto shoal_testsupport PkgConfig::ZMQ)
    add_dependencies(test_node shoald)
endif()
# test_node_cold: the cold path's origin requests, counted by tests/support/origin.py.
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_node_cold.c)
    shoal_unit_test(test_node_cold shoal_proto shoal_testsupport PkgConfig::ZMQ)
    add_dependencies(test_node_cold shoald)
endif()
# test_node_local: the short-circuit local read socket (node/local.c) of a real shoald, by hand
# over SOCK_SEQPACKET; links shoal_pagestore for xxhash (the chunk sums are checked).
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_node_local.c)
    shoal_unit_test(test_node_local shoal_proto shoal_pagestore shoal_testsupport PkgConfig::ZMQ)
    add_dependencies(test_node_local shoald)
endif()
