# Integration tests under mpirun: each script takes --catlip BINARY CASE;
# integration_tests(SCRIPT NAME_PREFIX TIMEOUT CASE...) registers integration.<prefix><case>.
function(integration_tests script prefix timeout)
  foreach(case ${ARGN})
    add_test(NAME integration.${prefix}${case}
      COMMAND /usr/bin/python3 ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${script}
              --catlip $<TARGET_FILE:catlip> ${case})
    set_tests_properties(integration.${prefix}${case} PROPERTIES TIMEOUT ${timeout} RUN_SERIAL TRUE)
  endforeach()
endfunction()

# The distributed runtime: data parallelism, determinism, kill/resume, signals, elastic resume.
integration_tests(runtime_test.py "" 600 workers kill signals elastic errors shards classify)
# Gradient accumulation (train.micro_batch).
integration_tests(accum_test.py accum_ 300 equivalence resume skips memory timeout)
# The benchmark commands' behaviour (bench allreduce under mpirun, bench step --micro-batch,
# bench objective's phases and losses).
integration_tests(bench_test.py bench_ 300 allreduce step_micro objective)
# Gradient communication (train.grad_comm, train.allreduce, train.collectives).
integration_tests(comm_test.py comm_ 300 bf16 hierarchical collectives)
# model.objective clip end to end (tiny towers on captioned shards).
integration_tests(clip_test.py clip_ 600 learns workers kill elastic accum errors)
# The sharded optimizer (train.shard_optimizer).
integration_tests(shard_test.py shard_ 600 equivalence kill resume clip)
