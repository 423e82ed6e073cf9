# fuzz: one libFuzzer target per parser of outside input (tests/fuzz/fuzz_<target>.c), each
# calling the real library function. For every target, ctest replays the seed corpus (written
# by make_seeds.py) and tests/fuzz/regressions/<target>/ (inputs that once broke something),
# then fuzzes for CATLIP_FUZZ_SECONDS from there.
#
# libFuzzer needs clang. When the project's compiler is clang, the targets are built here from
# catlip_common (configure with -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link,address,undefined so
# that the library is instrumented too; the gcc build below does exactly that). Otherwise, with
# -DCATLIP_FUZZ=ON (the default), a second build of this source tree with clang is made under
# ${CMAKE_BINARY_DIR}/tests/fuzz/clang by the test fuzz.build (not by `all`: it compiles the
# library a second time). When no clang is found, the fuzz tests are still registered and fail
# saying so: they must never pass silently.
option(CATLIP_FUZZ "Build and run the libFuzzer targets (tests/fuzz) with clang" ON)
set(CATLIP_FUZZ_SECONDS 10 CACHE STRING "Seconds of fresh fuzzing per target in ctest")
set(CATLIP_FUZZ_TARGETS tar shard_index image text vocab tokenizer config framing checkpoint safetensors)
set(CATLIP_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
# The layer libraries each target reaches, and only those: the clang build below compiles
# nothing else (not nn/'s AVX-512 kernels and GEMM, not the roles), which is most of its time.
set(CATLIP_FUZZ_LIBS_tar catlip_data)
set(CATLIP_FUZZ_LIBS_shard_index catlip_data)
set(CATLIP_FUZZ_LIBS_image catlip_data)
set(CATLIP_FUZZ_LIBS_text catlip_data catlip_text)
set(CATLIP_FUZZ_LIBS_vocab catlip_text)
set(CATLIP_FUZZ_LIBS_tokenizer catlip_text)
set(CATLIP_FUZZ_LIBS_config catlip_core)
set(CATLIP_FUZZ_LIBS_framing catlip_io)
set(CATLIP_FUZZ_LIBS_checkpoint catlip_io)
set(CATLIP_FUZZ_LIBS_safetensors catlip_io)

if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
  foreach(target ${CATLIP_FUZZ_TARGETS})
    add_executable(fuzz_${target} ${CATLIP_FUZZ_DIR}/fuzz_${target}.c)
    target_compile_options(fuzz_${target} PRIVATE -fsanitize=fuzzer,address,undefined
                           -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    target_link_options(fuzz_${target} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_${target} PRIVATE ${CATLIP_FUZZ_LIBS_${target}})
    target_include_directories(fuzz_${target} PRIVATE ${CMAKE_SOURCE_DIR})  # tests/fuzz/*.h
  endforeach()
  add_custom_target(catlip_fuzzers)
  foreach(target ${CATLIP_FUZZ_TARGETS})
    add_dependencies(catlip_fuzzers fuzz_${target})
  endforeach()
  set(CATLIP_FUZZ_BIN ${CMAKE_BINARY_DIR})
  set(CATLIP_FUZZ_BUILD_COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target catlip_fuzzers)
elseif(CATLIP_FUZZ)
  find_program(CATLIP_FUZZ_CLANG NAMES clang clang-14)
  set(CATLIP_FUZZ_RUNTIME "")
  if(CATLIP_FUZZ_CLANG AND EXISTS ${CATLIP_FUZZ_CLANG})
    # libFuzzer's runtime comes in a separate package (libclang-rt-14-dev on Debian 12).
    execute_process(COMMAND ${CATLIP_FUZZ_CLANG} -print-file-name=libclang_rt.fuzzer-x86_64.a
                    OUTPUT_VARIABLE CATLIP_FUZZ_RUNTIME OUTPUT_STRIP_TRAILING_WHITESPACE)
  endif()
  if(IS_ABSOLUTE "${CATLIP_FUZZ_RUNTIME}" AND EXISTS "${CATLIP_FUZZ_RUNTIME}")
    include(ExternalProject)
    include(ProcessorCount)
    ProcessorCount(CATLIP_FUZZ_JOBS)
    if(CATLIP_FUZZ_JOBS EQUAL 0)
      set(CATLIP_FUZZ_JOBS 2)
    endif()
    set(CATLIP_FUZZ_BIN ${CMAKE_BINARY_DIR}/tests/fuzz/clang)
    ExternalProject_Add(catlip_fuzz_build
      SOURCE_DIR ${CMAKE_SOURCE_DIR}
      BINARY_DIR ${CATLIP_FUZZ_BIN}
      CMAKE_ARGS -DCMAKE_C_COMPILER=${CATLIP_FUZZ_CLANG} -DCMAKE_BUILD_TYPE=RelWithDebInfo
                 "-DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
                 "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g" -DCATLIP_SIMD_O0=ON
      BUILD_COMMAND ${CMAKE_COMMAND} --build ${CATLIP_FUZZ_BIN} --target catlip_fuzzers
                    --parallel ${CATLIP_FUZZ_JOBS}
      INSTALL_COMMAND ""
      BUILD_ALWAYS ON
      EXCLUDE_FROM_ALL ON)
    set(CATLIP_FUZZ_BUILD_COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target catlip_fuzz_build)
  else()
    set(CATLIP_FUZZ_BUILD_COMMAND sh -c
        "echo 'fuzz tests need clang and libFuzzer (clang: ${CATLIP_FUZZ_CLANG}): apt-get install clang libclang-rt-14-dev, or configure with -DCATLIP_FUZZ=OFF' >&2 && exit 1")
    message(WARNING "clang with libFuzzer not found: the fuzz tests will fail (apt-get install clang "
                    "libclang-rt-14-dev, or configure with -DCATLIP_FUZZ=OFF)")
  endif()
endif()

# Small real checkpoints for the checkpoint target's seeds (built with the project compiler).
add_executable(fuzz_ckpt_seed ${CATLIP_FUZZ_DIR}/ckpt_seed.c)
target_link_libraries(fuzz_ckpt_seed PRIVATE catlip_io)

if(CATLIP_FUZZ_BUILD_COMMAND)
  add_test(NAME fuzz.build COMMAND ${CATLIP_FUZZ_BUILD_COMMAND})
  set_tests_properties(fuzz.build PROPERTIES TIMEOUT 1200 FIXTURES_SETUP catlip_fuzz_bin)
  add_test(NAME fuzz.seeds
    COMMAND /usr/bin/python3 ${CATLIP_FUZZ_DIR}/make_seeds.py --out ${CMAKE_BINARY_DIR}/tests/fuzz/seeds
            --ckpt-seed $<TARGET_FILE:fuzz_ckpt_seed>)
  set_tests_properties(fuzz.seeds PROPERTIES TIMEOUT 120 FIXTURES_SETUP catlip_fuzz_seeds)
  foreach(target ${CATLIP_FUZZ_TARGETS})
    add_test(NAME fuzz.${target}
      COMMAND sh ${CATLIP_FUZZ_DIR}/run_fuzz.sh ${CATLIP_FUZZ_BIN}/tests/fuzz_${target}
              ${CMAKE_BINARY_DIR}/tests/fuzz/seeds/${target} ${CATLIP_FUZZ_DIR}/regressions/${target}
              ${CMAKE_BINARY_DIR}/tests/fuzz/work/${target} ${CATLIP_FUZZ_SECONDS})
    set_tests_properties(fuzz.${target} PROPERTIES TIMEOUT 120
      FIXTURES_REQUIRED "catlip_fuzz_bin;catlip_fuzz_seeds")
  endforeach()
endif()
