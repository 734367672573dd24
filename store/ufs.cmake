# store/ufs.cmake: shoal_ufs, the under-storage connectors (file, http(s), hf, and s3/az once
# their sources exist on this branch) over the shared libcurl layer in ufs_curl.c,
# with URL redaction (ufs_redact.c) and URI splitting and percent coding (ufs_uri.c).
set(SHOAL_UFS_SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/ufs.c
    ${CMAKE_CURRENT_SOURCE_DIR}/ufs_curl.c
    ${CMAKE_CURRENT_SOURCE_DIR}/ufs_redact.c
    ${CMAKE_CURRENT_SOURCE_DIR}/ufs_uri.c
    ${CMAKE_CURRENT_SOURCE_DIR}/ufs_http.c
    ${CMAKE_CURRENT_SOURCE_DIR}/ufs_hf.c
    ${CMAKE_CURRENT_SOURCE_DIR}/ufs_file.c)
set(SHOAL_UFS_DEFINITIONS "")
# s3:// and az:// are written on the ufs-cloud branch; ufs.c registers them only when present.
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/ufs_s3.c)
    list(APPEND SHOAL_UFS_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/ufs_s3.c)
    list(APPEND SHOAL_UFS_DEFINITIONS SHOAL_HAVE_S3=1)
endif()
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/ufs_az.c)
    list(APPEND SHOAL_UFS_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/ufs_az.c)
    list(APPEND SHOAL_UFS_DEFINITIONS SHOAL_HAVE_AZ=1)
endif()
add_library(shoal_ufs STATIC ${SHOAL_UFS_SOURCES})
target_compile_definitions(shoal_ufs PRIVATE ${SHOAL_UFS_DEFINITIONS})
target_include_directories(shoal_ufs PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(shoal_ufs PUBLIC shoal_proto PkgConfig::CURL
    PRIVATE PkgConfig::XML2 PkgConfig::JANSSON PkgConfig::URING PkgConfig::SODIUM Threads::Threads)
