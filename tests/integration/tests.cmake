# Integration tests of the distributed runtime under mpirun (tests/integration/runtime_test.py).
foreach(case workers kill signals elastic errors shards classify)
  add_test(NAME integration.${case}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/runtime_test.py
            --catlip $<TARGET_FILE:catlip> ${case})
  set_tests_properties(integration.${case} PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE)
endforeach()

# Gradient accumulation (train.micro_batch): tests/integration/accum_test.py.
foreach(case equivalence resume skips memory timeout)
  add_test(NAME integration.accum_${case}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/accum_test.py
            --catlip $<TARGET_FILE:catlip> ${case})
  set_tests_properties(integration.accum_${case} PROPERTIES TIMEOUT 300 RUN_SERIAL TRUE)
endforeach()

# The benchmark commands' behaviour (bench allreduce under mpirun, bench step --micro-batch):
# tests/integration/bench_test.py.
foreach(case allreduce step_micro)
  add_test(NAME integration.bench_${case}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/bench_test.py
            --catlip $<TARGET_FILE:catlip> ${case})
  set_tests_properties(integration.bench_${case} PROPERTIES TIMEOUT 300 RUN_SERIAL TRUE)
endforeach()

# Gradient communication (train.grad_comm, train.allreduce): tests/integration/comm_test.py.
foreach(case bf16 hierarchical)
  add_test(NAME integration.comm_${case}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/comm_test.py
            --catlip $<TARGET_FILE:catlip> ${case})
  set_tests_properties(integration.comm_${case} PROPERTIES TIMEOUT 300 RUN_SERIAL TRUE)
endforeach()
