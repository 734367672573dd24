shoal_unit_test(test_err shoal_proto)
shoal_unit_test(test_proto shoal_proto PkgConfig::MSGPACK)
shoal_unit_test(test_proto_alloc shoal_proto)
target_link_options(test_proto_alloc PRIVATE -Wl,--wrap=malloc)
