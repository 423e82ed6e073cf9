# Reference tests: catlip's ViT step held to an independent float64 PyTorch run
# (tests/reference/check_reference.py). Needs /usr/bin/python3 with python3-torch and python3-numpy.

# --- catlip_refdump target (lead) ---
add_executable(catlip_refdump ${CMAKE_CURRENT_LIST_DIR}/catlip_refdump.c)
target_link_libraries(catlip_refdump PRIVATE catlip_common)
# --- end ---

# CLIP's text tower and contrastive loss (issue 16) against float64 PyTorch, on 1 and 3 MPI ranks
# (tests/reference/check_clip.py). Links the worker layer for the MPI gather/scatter.
add_executable(clip_refdump ${CMAKE_CURRENT_LIST_DIR}/clip_refdump.c)
target_link_libraries(clip_refdump PRIVATE catlip_all)

# The checker checked: a float32 PyTorch stand-in for catlip_refdump must pass, and each kind of
# deliberately wrong number in its dump must fail. Runs without the C target.
add_test(NAME reference.selfcheck
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/reference/selfcheck.py)
set_tests_properties(reference.selfcheck PROPERTIES TIMEOUT 120)

# One test per shape and instruction-set path, so that a path this CPU lacks (or that
# CATLIP_CPU_DISABLE masks) shows as Skipped (exit 77) without hiding the paths that ran; and
# each shape once more as a CPU without AVX-512 runs it: AVX2 kernels, OpenBLAS matmuls.
foreach(shape small vit_tiny)
  if(shape STREQUAL "small")
    set(timeout 120)
  else()
    set(timeout 300)
  endif()
  foreach(isa scalar avx2 avx512)
    add_test(NAME reference.${shape}.${isa}
      COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/reference/check_reference.py
              --refdump $<TARGET_FILE:catlip_refdump> --shape ${shape} --isa ${isa}
              --cache-dir ${CMAKE_BINARY_DIR}/tests/reference-cache)
    set_tests_properties(reference.${shape}.${isa} PROPERTIES TIMEOUT ${timeout}
                         SKIP_RETURN_CODE ${CATLIP_SKIP_CODE})
  endforeach()
  add_test(NAME reference.${shape}.openblas
    COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/reference/check_reference.py
            --refdump $<TARGET_FILE:catlip_refdump> --shape ${shape} --isa avx2
            --cache-dir ${CMAKE_BINARY_DIR}/tests/reference-cache)
  set_tests_properties(reference.${shape}.openblas PROPERTIES TIMEOUT ${timeout}
                       ENVIRONMENT "CATLIP_GEMM=openblas" SKIP_RETURN_CODE ${CATLIP_SKIP_CODE})
endforeach()

# train.precision bf16 against PyTorch's bf16 autocast and against catlip fp32 (tolerances in
# check_reference.py): the VDPBF16PS kernel (Skipped without AVX512-BF16) and the emulation.
foreach(shape small vit_tiny)
  if(shape STREQUAL "small")
    set(timeout 120)
  else()
    set(timeout 300)
  endif()
  foreach(path avx512_bf16 emulated)
    add_test(NAME reference.${shape}.bf16.${path}
      COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/reference/check_reference.py
              --refdump $<TARGET_FILE:catlip_refdump> --shape ${shape} --isa avx2
              --precision bf16 --bf16-path ${path}
              --cache-dir ${CMAKE_BINARY_DIR}/tests/reference-cache)
    set_tests_properties(reference.${shape}.bf16.${path} PROPERTIES TIMEOUT ${timeout}
                         SKIP_RETURN_CODE ${CATLIP_SKIP_CODE})
  endforeach()
endforeach()

# CLIP (issue 16): the text tower forward/backward and the symmetric contrastive loss with its
# gradients, equal to one process's whole-batch float64 PyTorch run within 1e-4 of each tensor's
# largest value: one rank; three ranks (an uneven 2/2/3 split of the global batch, gathered);
# three ranks for two rows (a rank with none); train.precision bf16 on three ranks (against the
# reference with bf16-rounded matmul inputs, within 2e-2); the log-scale above its clamp (no
# gradient); and the scalar kernels with OpenBLAS matmuls. Each dump is made twice and must
# repeat bit for bit.
foreach(case one three empty_worker bf16 clamp scalar)
  add_test(NAME reference.clip.${case}
    COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/reference/check_clip.py
            --refdump $<TARGET_FILE:clip_refdump> --case ${case})
  set_tests_properties(reference.clip.${case} PROPERTIES TIMEOUT 180 SKIP_RETURN_CODE ${CATLIP_SKIP_CODE})
endforeach()
