# tools/bench: C helpers of the read benchmark (tools/bench/bench_read.py runs them).
# zmq_pump: the raw ZeroMQ throughput ceiling on loopback (no shoal code but proto's clock).
add_executable(zmq_pump bench/zmq_pump.c)
target_link_libraries(zmq_pump PRIVATE shoal_proto PkgConfig::ZMQ Threads::Threads)
set_target_properties(zmq_pump PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tools/bench)

# bench_pread: sequential and random reads through libshoal (loaded with dlopen at run time).
add_executable(bench_pread bench/bench_pread.c)
target_include_directories(bench_pread PRIVATE ${PROJECT_SOURCE_DIR}/client/include
                           ${PROJECT_SOURCE_DIR}/proto)
target_link_libraries(bench_pread PRIVATE shoal_proto Threads::Threads ${CMAKE_DL_LIBS})
set_target_properties(bench_pread PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tools/bench)
