# swimsim: the SWIM simulator on the fake network (gossip/swim_fake.c) and virtual clock.
add_executable(swimsim swimsim.c)
target_link_libraries(swimsim PRIVATE shoal_gossip_fake)
