# GEMM tools that are not tests (kept out of ctest). The test is tests/unit/test_gemm.c.
#   cmake --build build --target gemm_bench
#   build/tests/gemm_bench [seconds_per_run] [runs]   ours vs OpenBLAS GFLOP/s on vit_tiny shapes
add_executable(gemm_bench ${CMAKE_SOURCE_DIR}/bench/gemm_bench.c)
target_link_libraries(gemm_bench PRIVATE catlip_common)
#   cmake --build build --target attention_bench
#   build/tests/attention_bench [sequences] [reps]   the bf16 attention's us/head, cold and hot
add_executable(attention_bench ${CMAKE_SOURCE_DIR}/bench/attention_bench.c)
target_link_libraries(attention_bench PRIVATE catlip_common)
#   cmake --build build --target pool_wake_bench
#   build/tests/pool_wake_bench [regions] [gap_ms]   a region's cost with the waiting thread polling or asleep
add_executable(pool_wake_bench ${CMAKE_SOURCE_DIR}/bench/pool_wake_bench.c)
target_link_libraries(pool_wake_bench PRIVATE catlip_common)
