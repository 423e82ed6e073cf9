# Skips that show: with CATLIP_CPU_DISABLE masking AVX-512 and SSE4.2, ctest must list exactly
# the tests of those paths as Skipped (tests/skips/check_skips.py runs ctest on build/tests).
add_test(NAME tests.skips_show
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/check_skips.py ${CMAKE_BINARY_DIR})
set_tests_properties(tests.skips_show PROPERTIES TIMEOUT 300)
