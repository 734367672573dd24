# tests/cluster.cmake: real shoald processes forming a cluster on loopback (test_cluster over
# nginx, test_cold over origin.py), and the network-namespace test (test_cluster_netns.sh,
# root only; skips otherwise).
if(TARGET shoald)
    shoal_unit_test(test_cluster shoal_shared shoal_proto shoal_hrw shoal_testsupport
        PkgConfig::JANSSON PkgConfig::ZMQ PkgConfig::SODIUM)
    add_dependencies(test_cluster shoald)
endif()
if(TARGET shoald AND TARGET shoal_cli)
    add_test(NAME test_cluster_netns COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_cluster_netns.sh)
    set_tests_properties(test_cluster_netns PROPERTIES TIMEOUT 180 SKIP_RETURN_CODE 77
        ENVIRONMENT "SHOAL_BUILD_DIR=${PROJECT_BINARY_DIR}")
endif()
# test_cold: the cold path end to end, 1 and 3 nodes over origin.py (counts origin requests).
if(TARGET shoald)
    shoal_unit_test(test_cold shoal_shared shoal_proto shoal_testsupport
        PkgConfig::ZMQ PkgConfig::SODIUM)
    add_dependencies(test_cold shoald)
endif()
# test_hostid: three real nodes advertise the host id and (fake) local socket paths in the
# view; a fourth with --host-id of another host is not listed as local (issue 11).
if(TARGET shoald)
    shoal_unit_test(test_hostid shoal_client shoal_testsupport PkgConfig::JANSSON)
    target_include_directories(test_hostid PRIVATE ${PROJECT_SOURCE_DIR}/client)
    add_dependencies(test_hostid shoald)
endif()
