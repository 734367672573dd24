shoal_unit_test(test_err shoal_proto)
