# A multi-host test bed on this machine (tests/hosts/bed.sh: hosts as network + UTS + mount
# namespaces on a bridge, tbf-limited links), as root; each test brings the bed up and down.
foreach(case bed mpirun)
  add_test(NAME hosts.${case}
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/${case}_test.sh $<TARGET_FILE:catlip> ${CMAKE_SOURCE_DIR})
endforeach()
set_tests_properties(hosts.bed PROPERTIES TIMEOUT 120 RUN_SERIAL TRUE)
set_tests_properties(hosts.mpirun PROPERTIES TIMEOUT 240 RUN_SERIAL TRUE)
