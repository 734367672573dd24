# Page-store tests: the conformance suite runs against both backends; test_pagestore_rocksdb
# covers what only RocksDB has (disk usage, restart, corruption, full disk, mapped gets);
# test_pagestore_mmap the mappings and the SIGBUS guard alone.
shoal_unit_test(test_pagestore shoal_pagestore)
shoal_unit_test(test_pagestore_rocksdb shoal_pagestore)
shoal_unit_test(test_pagestore_mmap shoal_pagestore)
