# node/node.cmake: the daemon. shoal_node holds everything but main.c, so tests link it.
add_library(shoal_node STATIC
    ${CMAKE_CURRENT_SOURCE_DIR}/config.c
    ${CMAKE_CURRENT_SOURCE_DIR}/fetch.c
    ${CMAKE_CURRENT_SOURCE_DIR}/flight.c
    ${CMAKE_CURRENT_SOURCE_DIR}/identity.c
    ${CMAKE_CURRENT_SOURCE_DIR}/local.c
    ${CMAKE_CURRENT_SOURCE_DIR}/log.c
    ${CMAKE_CURRENT_SOURCE_DIR}/meta.c
    ${CMAKE_CURRENT_SOURCE_DIR}/metadisk.c
    ${CMAKE_CURRENT_SOURCE_DIR}/mount.c
    ${CMAKE_CURRENT_SOURCE_DIR}/node.c
    ${CMAKE_CURRENT_SOURCE_DIR}/ops.c
    ${CMAKE_CURRENT_SOURCE_DIR}/read.c
    ${CMAKE_CURRENT_SOURCE_DIR}/reply.c
    ${CMAKE_CURRENT_SOURCE_DIR}/reval.c
    ${CMAKE_CURRENT_SOURCE_DIR}/server.c
    ${CMAKE_CURRENT_SOURCE_DIR}/stats.c
    ${CMAKE_CURRENT_SOURCE_DIR}/storeq.c
    ${CMAKE_CURRENT_SOURCE_DIR}/cluster.c
    ${CMAKE_CURRENT_SOURCE_DIR}/forward.c
    ${CMAKE_CURRENT_SOURCE_DIR}/membership.c)
target_include_directories(shoal_node PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(shoal_node PUBLIC shoal_proto shoal_pagestore shoal_ufs shoal_gossip_agent
    PkgConfig::ZMQ PkgConfig::SODIUM Threads::Threads m)

add_executable(shoald ${CMAKE_CURRENT_SOURCE_DIR}/main.c)
target_link_libraries(shoald PRIVATE shoal_node)
