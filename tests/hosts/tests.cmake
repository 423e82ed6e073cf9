# A multi-host test bed on this machine (tests/hosts/bed.sh: hosts as network + UTS + mount
# namespaces on a bridge, tbf-limited links), as root; each test brings the bed up and down.
foreach(case bed mpirun)
  add_test(NAME hosts.${case}
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/${case}_test.sh $<TARGET_FILE:catlip> ${CMAKE_SOURCE_DIR})
endforeach()
set_tests_properties(hosts.bed PROPERTIES TIMEOUT 120 RUN_SERIAL TRUE)
set_tests_properties(hosts.mpirun PROPERTIES TIMEOUT 240 RUN_SERIAL TRUE)

# deploy/slurm/catlip.sbatch on the bed's multi-node SLURM cluster (slurmctld on head, one
# slurmd per host): NODES=3 equals the one-host run; USR1 -> checkpoint -> requeue ->
# bit-identical resume; a host lost mid-run; NODES=2 elastic resume; SIGTERM while a peer is gone.
foreach(case slurm slurm_kill)
  add_test(NAME hosts.${case}
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/${case}_test.sh $<TARGET_FILE:catlip> ${CMAKE_SOURCE_DIR})
endforeach()
set_tests_properties(hosts.slurm PROPERTIES TIMEOUT 300 RUN_SERIAL TRUE)
set_tests_properties(hosts.slurm_kill PROPERTIES TIMEOUT 400 RUN_SERIAL TRUE)
