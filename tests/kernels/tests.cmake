# Kernel tools that are not tests (kept out of ctest): throughput and accuracy printouts.
#   cmake --build build --target kernels_bench kernels_accuracy
#   build/tests/kernels_bench        per-kernel ms and GB/s, scalar vs avx2 vs avx512
#   build/tests/kernels_accuracy     ulp errors of the vectorised exp/erf/log1p vs libm
add_executable(kernels_bench ${CMAKE_SOURCE_DIR}/bench/kernels_bench.c)
target_link_libraries(kernels_bench PRIVATE catlip_common)
add_executable(kernels_accuracy ${CMAKE_SOURCE_DIR}/bench/kernels_accuracy.c)
target_include_directories(kernels_accuracy PRIVATE ${CMAKE_SOURCE_DIR}/common)
target_compile_options(kernels_accuracy PRIVATE -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma)
target_link_libraries(kernels_accuracy PRIVATE m)
# The bf16 step's optimizer phase, its rounding separate vs fused (bench/NOTES.md, issue 12):
#   cmake --build build --target optim_bench && build/tests/optim_bench [reps] [threads]
add_executable(optim_bench ${CMAKE_SOURCE_DIR}/bench/optim_bench.c)
target_link_libraries(optim_bench PRIVATE catlip_common)
