# tests/ufs_cloud.cmake: the s3:// and az:// connectors. test_ufs_cloud_unit needs no server;
# test_ufs_s3 starts moto_server and test_ufs_az starts Azurite, both on loopback.
shoal_unit_test(test_ufs_cloud_unit shoal_ufs PkgConfig::SODIUM)
foreach(cloud test_ufs_s3 test_ufs_az)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${cloud}.c)
        shoal_unit_test(${cloud} shoal_ufs shoal_testsupport PkgConfig::SODIUM)
    endif()
endforeach()
