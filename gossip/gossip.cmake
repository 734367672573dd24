# gossip: placement (shoal_hrw, what the client links) and membership (shoal_gossip).
add_library(shoal_hrw STATIC hrw.c)
target_include_directories(shoal_hrw PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(shoal_hrw PUBLIC PkgConfig::SODIUM m)

add_library(shoal_gossip STATIC swim.c swim_probe.c swim_members.c swim_proto.c swim_ev.c view.c
            swim_fake.c)
target_include_directories(shoal_gossip PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(shoal_gossip PUBLIC shoal_hrw shoal_proto PkgConfig::MSGPACK
                      PkgConfig::SODIUM Threads::Threads m)
