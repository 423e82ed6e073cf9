# A real one-node SLURM cluster (munged, slurmctld, slurmd started by the test, as root) running
# deploy/slurm/catlip.sbatch: a whole run, then SIGUSR1 -> checkpoint -> requeue -> resume.
add_test(NAME slurm.cluster
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/slurm_test.sh $<TARGET_FILE:catlip> ${CMAKE_SOURCE_DIR})
set_tests_properties(slurm.cluster PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE)

# deploy/mpirun.sh: the mpirun command it builds, and a short 2-worker run through it.
add_test(NAME deploy.mpirun
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/mpirun_test.sh $<TARGET_FILE:catlip> ${CMAKE_SOURCE_DIR})
set_tests_properties(deploy.mpirun PROPERTIES TIMEOUT 120 RUN_SERIAL TRUE)
