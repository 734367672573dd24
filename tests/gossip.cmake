# gossip: placement, SWIM core on the fake network, wire codec, view, real ZeroMQ transport.
shoal_unit_test(test_hrw shoal_hrw)
