# gossip: placement (shoal_hrw, what the client links) and membership (shoal_gossip).
add_library(shoal_hrw STATIC hrw.c)
target_include_directories(shoal_hrw PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(shoal_hrw PUBLIC PkgConfig::SODIUM m)

add_library(shoal_gossip STATIC swim.c swim_probe.c swim_members.c swim_proto.c swim_ev.c view.c
            swim_zmq.c gossip_agent.c)
target_include_directories(shoal_gossip PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(shoal_gossip PUBLIC shoal_hrw shoal_proto
                      PkgConfig::SODIUM PkgConfig::ZMQ Threads::Threads m)

# The fake network and virtual clock: linked by the tests and tools/swimsim, never by shoald.
add_library(shoal_gossip_fake STATIC swim_fake.c)
target_link_libraries(shoal_gossip_fake PUBLIC shoal_gossip)
