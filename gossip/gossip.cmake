# gossip: placement (shoal_hrw, what the client links), membership (shoal_gossip: core, codec,
# view, libzmq transport) and the running member (shoal_gossip_agent: the only part on czmq).
add_library(shoal_hrw STATIC hrw.c)
target_include_directories(shoal_hrw PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(shoal_hrw PUBLIC PkgConfig::SODIUM m)

add_library(shoal_gossip STATIC swim.c swim_probe.c swim_members.c swim_proto.c swim_ev.c view.c
            swim_zmq.c)
target_include_directories(shoal_gossip PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(shoal_gossip PUBLIC shoal_hrw shoal_proto
                      PkgConfig::SODIUM PkgConfig::ZMQ Threads::Threads m)

# The agent is a czmq actor; czmq stays out of everything else (libshoal above all: it runs
# inside Python and across fork). GLOBAL so that node/ and tests/ can name the target too.
pkg_check_modules(CZMQ REQUIRED IMPORTED_TARGET GLOBAL libczmq)
add_library(shoal_gossip_agent STATIC gossip_agent.c)
target_link_libraries(shoal_gossip_agent PUBLIC shoal_gossip PkgConfig::CZMQ)

# The fake network and virtual clock: linked by the tests and tools/swimsim, never by shoald.
add_library(shoal_gossip_fake STATIC swim_fake.c)
target_link_libraries(shoal_gossip_fake PUBLIC shoal_gossip)
