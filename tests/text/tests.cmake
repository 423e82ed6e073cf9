# Text area (common/text, cli/vocab.c): labeller quality on the hand-labelled captions, a
# cross-check of the WordNet tables against NLTK, and the MPI vocabulary build.
add_executable(text_eval_captions ${CMAKE_CURRENT_LIST_DIR}/eval_captions.c)
target_link_libraries(text_eval_captions PRIVATE catlip_common)
add_executable(text_tool ${CMAKE_CURRENT_LIST_DIR}/text_tool.c)
target_link_libraries(text_tool PRIVATE catlip_common)

# Precision and recall of the noun labeller on >= 200 hand-labelled alt-text captions.
add_test(NAME text.captions COMMAND text_eval_captions ${CMAKE_CURRENT_LIST_DIR}/captions.tsv
         --min-precision 0.9 --min-recall 0.9)
# The same on 60 captions written after the rules were fixed (never used for tuning).
add_test(NAME text.captions_heldout COMMAND text_eval_captions ${CMAKE_CURRENT_LIST_DIR}/captions_heldout.tsv
         --min-precision 0.9 --min-recall 0.9 --min-captions 50)
# The expected ids of captions.tsv are the first NLTK synsets of the hand-written lemmas.
add_test(NAME text.expected_ids COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/expected_ids.py
         ${CMAKE_CURRENT_LIST_DIR}/captions.tsv --check)
add_test(NAME text.expected_ids_heldout COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/expected_ids.py
         ${CMAKE_CURRENT_LIST_DIR}/captions_heldout.tsv --check)
# First synsets, morphology and the CoreNet rule agree with NLTK's independent WordNet reader.
add_test(NAME text.nltk_crosscheck COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/nltk_crosscheck.py
         $<TARGET_FILE:text_tool> ${CMAKE_CURRENT_LIST_DIR}/captions.tsv)
# vocab build: 1 process and mpirun -n 3 write identical files.
add_test(NAME text.vocab_build_mpi COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/vocab_build_mpi.sh $<TARGET_FILE:catlip>)
set_tests_properties(text.vocab_build_mpi PROPERTIES TIMEOUT 120)
# catlip tokenizer build|encode (the CLIP text tower's tokenizer) end to end, errors included.
add_test(NAME text.tokenizer_cli COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/tokenizer_cli_test.py
         $<TARGET_FILE:catlip>)
set_tests_properties(text.tokenizer_cli PROPERTIES TIMEOUT 120)
# Speed (not a ctest: timings on shared CI machines are noise). Run:
#   build/tests/text_bench_labeler tests/text/captions.tsv 3 1
add_executable(text_bench_labeler ${CMAKE_CURRENT_LIST_DIR}/bench_labeler.c)
target_link_libraries(text_bench_labeler PRIVATE catlip_common)
