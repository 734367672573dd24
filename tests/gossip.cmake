# gossip: placement, SWIM core on the fake network, wire codec, view, real ZeroMQ transport,
# the agent actor (test_gossip_agent).
shoal_unit_test(test_hrw shoal_hrw)
shoal_unit_test(test_swim shoal_gossip_fake)
shoal_unit_test(test_swim_proto shoal_gossip PkgConfig::MSGPACK)
shoal_unit_test(test_view shoal_gossip_fake)
shoal_unit_test(test_swim_zmq shoal_gossip_agent)
shoal_unit_test(test_gossip_agent shoal_gossip_agent)
