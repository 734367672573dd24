# tests/ufs.cmake: the UFS core and connector tests, and shoal_testsupport (tests/support/), the
# process/port/server helpers every integration test links.
add_library(shoal_testsupport STATIC ${CMAKE_CURRENT_SOURCE_DIR}/support/testproc.c)
target_include_directories(shoal_testsupport PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/support)
target_link_libraries(shoal_testsupport PUBLIC shoal_proto)
target_compile_definitions(shoal_testsupport PRIVATE
    TP_SUPPORT_DIR="${CMAKE_CURRENT_SOURCE_DIR}/support")

shoal_unit_test(test_ufs_core shoal_ufs)
shoal_unit_test(test_ufs_http shoal_ufs shoal_testsupport)
foreach(extra test_ufs_file test_ufs_hf)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${extra}.c)
        shoal_unit_test(${extra} shoal_ufs shoal_testsupport PkgConfig::URING)
    endif()
endforeach()
