# tests/client.cmake: libshoal against a fake node (test_client) and against a real shoald
# (test_client_node, once node/ builds shoald), and the CLI (test_cli.sh).
shoal_unit_test(test_client shoal_client shoal_testsupport PkgConfig::JANSSON PkgConfig::ZMQ)
target_include_directories(test_client PRIVATE ${PROJECT_SOURCE_DIR}/client)
if(TARGET shoald)
    shoal_unit_test(test_client_node shoal_shared shoal_testsupport PkgConfig::JANSSON)
    add_dependencies(test_client_node shoald)
endif()
# test_local: short-circuit local reads against a real shoald (--local-socket).
if(TARGET shoald)
    shoal_unit_test(test_local shoal_shared shoal_testsupport PkgConfig::JANSSON)
    add_dependencies(test_local shoald)
endif()
if(TARGET shoald)
    add_test(NAME test_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.sh)
    set_tests_properties(test_cli PROPERTIES TIMEOUT 300
        ENVIRONMENT "SHOAL_BUILD_DIR=${PROJECT_BINARY_DIR}")
endif()
# test_local_quota: the quota and the store's learning under short-circuit reads (real shoald).
if(TARGET shoald)
    shoal_unit_test(test_local_quota shoal_shared shoal_testsupport PkgConfig::JANSSON)
    add_dependencies(test_local_quota shoald)
endif()
