# ufs_cloud: the s3:// and az:// connectors. Unit tests of the I/O-free parts (no server).
if(TARGET shoal_ufs)
    shoal_unit_test(test_ufs_cloud_unit shoal_ufs PkgConfig::SODIUM)
else()
    # Until store/ufs.cmake provides shoal_ufs: build the I/O-free part straight in.
    shoal_unit_test(test_ufs_cloud_unit shoal_proto PkgConfig::XML2 PkgConfig::SODIUM
                    PkgConfig::CURL)
    target_sources(test_ufs_cloud_unit PRIVATE ${PROJECT_SOURCE_DIR}/store/ufs_xml.c)
endif()
target_include_directories(test_ufs_cloud_unit PRIVATE ${PROJECT_SOURCE_DIR}/store)
