# Status server tests (coordinator/status_*.c, coordinator/http_status.c, cli/status.c).
#   status.live / status.robust / status.single / status.errors: a real training under mpirun, probed over
#     127.0.0.1 (tests/status/status_test.py); status.live keeps its Chromium screenshot of
#     the dashboard in ${CMAKE_BINARY_DIR}/tests/status/dashboard.png.
#   unit.test_status_*: the request handling without sockets (the unit loop builds them; the
#     status sources are added here because they belong to the executable, not catlip_common).
#   status.fuzz_*: libFuzzer (clang) on the protobuf framing + ClientMessage path and on the
#     HTTP request path, a bounded time each.
foreach(case live robust single errors)
  add_test(NAME status.${case}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/status_test.py --catlip $<TARGET_FILE:catlip>
            --source ${CMAKE_SOURCE_DIR} --artifacts ${CMAKE_BINARY_DIR}/tests/status ${case})
  set_tests_properties(status.${case} PROPERTIES TIMEOUT 300 RUN_SERIAL TRUE)
endforeach()

set(CATLIP_STATUS_SOURCES ${CMAKE_SOURCE_DIR}/coordinator/status_protocol.c
    ${CMAKE_SOURCE_DIR}/coordinator/http_status.c ${CMAKE_SOURCE_DIR}/coordinator/status_render.c)
foreach(name test_status_protocol test_status_http test_status_render)
  if(TARGET ${name})
    target_sources(${name} PRIVATE ${CATLIP_STATUS_SOURCES})
    target_link_libraries(${name} PRIVATE ${HTTP_PARSER_LIBRARY})
  endif()
endforeach()

find_program(CLANG_FOR_FUZZ NAMES clang clang-14)
if(CLANG_FOR_FUZZ)
  foreach(target protobuf http)
    add_test(NAME status.fuzz_${target}
      COMMAND ${CMAKE_CURRENT_LIST_DIR}/fuzz.sh ${CLANG_FOR_FUZZ} ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}
              ${target} 8)
    set_tests_properties(status.fuzz_${target} PROPERTIES TIMEOUT 300)
  endforeach()
else()
  foreach(target protobuf http)
    catlip_missing_test(status.fuzz_${target} "clang not found (apt-get install clang libclang-rt-14-dev)")
  endforeach()
endif()
