# build.layers: every #include "layer/..." against the layer table of CMakeLists.txt (the
# per-layer include roots already make the compiler refuse an upward include; this names
# every offender at once). See docs/architecture.md.
add_test(NAME build.layers
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/check_layers.py ${CMAKE_SOURCE_DIR})
set_tests_properties(build.layers PROPERTIES TIMEOUT 60)
