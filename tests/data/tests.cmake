# Data tests beyond the unit programs (tests/unit/test_data_*.c, which make their own fixtures
# with tests/data/make_fixtures.py): the shards make round trip through the catlip executable,
# read back with Python's tarfile, PIL and GNU tar. Needs /usr/bin/python3 with python3-pil.
add_test(NAME data.shards_roundtrip
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_shards_roundtrip.py $<TARGET_FILE:catlip>)
set_tests_properties(data.shards_roundtrip PROPERTIES TIMEOUT 120
                     ENVIRONMENT "CATLIP_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
foreach(name test_data_tar test_data_jpeg test_data_transform test_data_pipeline test_data_order test_data_shardlist)
  if(TEST unit.${name})
    set_tests_properties(unit.${name} PROPERTIES TIMEOUT 120)
  endif()
endforeach()

# The resampling kernels have an AVX2 path (picked at run time) and a baseline one: hold the
# baseline to the same tests.
if(TEST unit.test_data_transform)
  add_test(NAME unit.test_data_transform.scalar COMMAND test_data_transform)
  set_tests_properties(unit.test_data_transform.scalar PROPERTIES TIMEOUT 120 ENVIRONMENT "CATLIP_ISA=scalar")
  # On an AVX-512 machine the default run takes the AVX-512 resampler; hold the AVX2 one too.
  add_test(NAME unit.test_data_transform.avx2 COMMAND test_data_transform)
  set_tests_properties(unit.test_data_transform.avx2 PROPERTIES TIMEOUT 120 ENVIRONMENT "CATLIP_ISA=avx2")
endif()
