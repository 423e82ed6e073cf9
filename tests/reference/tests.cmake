# Reference tests: catlip's ViT step held to an independent float64 PyTorch run
# (tests/reference/check_reference.py). Needs /usr/bin/python3 with python3-torch and python3-numpy.

# --- catlip_refdump target (lead) ---
add_executable(catlip_refdump ${CMAKE_CURRENT_LIST_DIR}/catlip_refdump.c)
target_link_libraries(catlip_refdump PRIVATE catlip_common)
# --- end ---

# The checker checked: a float32 PyTorch stand-in for catlip_refdump must pass, and each kind of
# deliberately wrong number in its dump must fail. Runs without the C target.
add_test(NAME reference.selfcheck
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/reference/selfcheck.py)
set_tests_properties(reference.selfcheck PROPERTIES TIMEOUT 120)

if(TARGET catlip_refdump)
  add_test(NAME reference.small
    COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/reference/check_reference.py
            --refdump $<TARGET_FILE:catlip_refdump> --shape small)
  add_test(NAME reference.vit_tiny
    COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/reference/check_reference.py
            --refdump $<TARGET_FILE:catlip_refdump> --shape vit_tiny)
  set_tests_properties(reference.small PROPERTIES TIMEOUT 120)
  set_tests_properties(reference.vit_tiny PROPERTIES TIMEOUT 300)
endif()
