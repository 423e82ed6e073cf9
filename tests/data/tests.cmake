# Data tests beyond the unit programs (tests/unit/test_data_*.c, which make their own fixtures
# with tests/data/make_fixtures.py): the shards make round trip through the catlip executable,
# read back with Python's tarfile, PIL and GNU tar. Needs /usr/bin/python3 with python3-pil.
add_test(NAME data.shards_roundtrip
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_shards_roundtrip.py $<TARGET_FILE:catlip>)
set_tests_properties(data.shards_roundtrip PROPERTIES TIMEOUT 120
                     ENVIRONMENT "CATLIP_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
foreach(name test_data_tar test_data_jpeg test_data_pipeline test_data_order test_data_shardlist)
  if(TEST unit.${name})
    set_tests_properties(unit.${name} PROPERTIES TIMEOUT 120)
  endif()
endforeach()

# The resampler's paths (scalar, AVX2, AVX-512) each run the whole of test_data_transform:
# unit.test_data_transform.<path>, registered in tests/CMakeLists.txt.
foreach(path scalar avx2 avx512)
  set_tests_properties(unit.test_data_transform.${path} PROPERTIES TIMEOUT 120)
endforeach()
