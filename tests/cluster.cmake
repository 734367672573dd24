# tests/cluster.cmake: real shoald processes forming a cluster on loopback (test_cluster), and
# the network-namespace test (test_cluster_netns.sh, root only; skips otherwise).
if(TARGET shoald)
    shoal_unit_test(test_cluster shoal_shared shoal_proto shoal_hrw shoal_testsupport
        PkgConfig::JANSSON PkgConfig::ZMQ PkgConfig::SODIUM)
    add_dependencies(test_cluster shoald)
endif()
