# Gradient communication (worker/grad_sync.c, worker/ring_allreduce.c) under mpirun at 2-5
# ranks: fp32 and bf16 wires, our ring and Open MPI's collectives, flat and hierarchical (split
# into test hosts), against an fp64 sum with the error bounds stated in test_grad_comm.c, and
# the fp32 ring's stated summation order bit for bit. The same program times the variants:
#   mpirun -n P build/tests/test_grad_comm --bench FLOATS REPEATS
add_executable(test_grad_comm ${CMAKE_CURRENT_LIST_DIR}/test_grad_comm.c)
target_link_libraries(test_grad_comm PRIVATE catlip_all m)
foreach(ranks 2 3 4 5)
  add_test(NAME comm.grad_sync.${ranks}
    COMMAND mpirun --oversubscribe -n ${ranks} $<TARGET_FILE:test_grad_comm>)
  set_tests_properties(comm.grad_sync.${ranks} PROPERTIES TIMEOUT 300 RUN_SERIAL TRUE
    ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_btl_vader_single_copy_mechanism=none")
endforeach()
