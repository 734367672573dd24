# store/ufs_cloud.cmake: the part of shoal_ufs shared by the s3:// and az:// connectors
# (ufs_xml.c: listing XML; ufs_time.c: time parsing; ufs_aws_cred.c: AWS credentials;
# ufs_az_sign.c: Shared Key signing; ufs_cloud.c: stat, list and read over HTTP). store/ufs.cmake
# defines shoal_ufs and adds ufs_s3.c / ufs_az.c; this file (included after it, the parts being
# sorted) adds their helpers.
if(TARGET shoal_ufs AND (EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/ufs_s3.c OR
                         EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/ufs_az.c))
    target_sources(shoal_ufs PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/ufs_xml.c
                                     ${CMAKE_CURRENT_SOURCE_DIR}/ufs_time.c
                                     ${CMAKE_CURRENT_SOURCE_DIR}/ufs_aws_cred.c
                                     ${CMAKE_CURRENT_SOURCE_DIR}/ufs_az_sign.c
                                     ${CMAKE_CURRENT_SOURCE_DIR}/ufs_cloud.c)
endif()
