# Integration tests of the distributed runtime under mpirun (tests/integration/runtime_test.py).
foreach(case workers kill signals elastic errors shards classify)
  add_test(NAME integration.${case}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/runtime_test.py
            --catlip $<TARGET_FILE:catlip> ${case})
  set_tests_properties(integration.${case} PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE)
endforeach()
