# gossip: placement (shoal_hrw, what the client links) and membership (shoal_gossip).
add_library(shoal_hrw STATIC hrw.c)
target_include_directories(shoal_hrw PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(shoal_hrw PUBLIC PkgConfig::SODIUM m)
