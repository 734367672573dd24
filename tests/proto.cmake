shoal_unit_test(test_err shoal_proto)
shoal_unit_test(test_proto shoal_proto PkgConfig::MSGPACK)
