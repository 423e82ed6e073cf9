# Evaluation, Transfer Init, inference and export (issue 7). Unit tests of Transfer Init are
# tests/unit/test_eval_transfer.c; these are the cross-checks and end-to-end runs.
add_executable(eval_tool ${CMAKE_CURRENT_LIST_DIR}/eval_tool.c)
target_link_libraries(eval_tool PRIVATE catlip_common)

# mAP, precision@k, top-k accuracy vs numpy on random scores (ties included).
add_test(NAME eval.metrics
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/eval/check_metrics.py $<TARGET_FILE:eval_tool>)
# Path similarity vs NLTK (python3-nltk) over Debian's WordNet.
add_test(NAME eval.path_similarity
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/eval/check_path_similarity.py $<TARGET_FILE:eval_tool>)
# Train a tiny model, then predict/embed/export/transfer/eval: exported safetensors loaded by
# PyTorch give catlip predict's logits; bad inputs give one-line errors.
add_test(NAME eval.commands
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/eval/check_commands.py $<TARGET_FILE:catlip>)
# CLIP checkpoints (issue 16): eval zeroshot by prompt ensembles against a float64 PyTorch CLIP
# loaded from catlip export's OpenCLIP names (tokens, class rows, image embeddings, scores and
# the reported accuracies), embed --projected, and one-line errors for what needs a CatLIP head.
add_test(NAME eval.clip_zeroshot
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/eval/check_clip_zeroshot.py $<TARGET_FILE:catlip>)
set_tests_properties(eval.clip_zeroshot PROPERTIES TIMEOUT 300)
# The quickstart, short: openclipart shards, vocabulary, 2 workers + coordinator, and a control
# (the same model at learning rate 0); deploy/quickstart_check.py: the model beats control and
# label-frequency prior on mAP, and majority class and 1/K on zero-shot.
add_test(NAME eval.quickstart
  COMMAND ${CMAKE_SOURCE_DIR}/deploy/quickstart.sh --ci --build-dir ${CMAKE_BINARY_DIR}
          --work ${CMAKE_BINARY_DIR}/quickstart-ci)
# On eval.quickstart's outputs: the checker fails the control's results given as the trained
# model's (and passes the real ones); the control's weights are the random initialisation.
add_test(NAME eval.quickstart_check_control
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/eval/check_quickstart_control.py $<TARGET_FILE:catlip>
          ${CMAKE_BINARY_DIR}/quickstart-ci)
# The same for model.objective clip (deploy/quickstart.sh --objective clip): a word tokenizer,
# text_tiny, zero-shot by prompt ensembles; passes only if top-1 beats the majority class and the
# control, and mean per-class beats 1/K and the control.
add_test(NAME eval.quickstart_clip
  COMMAND ${CMAKE_SOURCE_DIR}/deploy/quickstart.sh --ci --objective clip --build-dir ${CMAKE_BINARY_DIR}
          --work ${CMAKE_BINARY_DIR}/quickstart-clip-ci)
set_tests_properties(eval.quickstart_clip PROPERTIES TIMEOUT 900)
set_tests_properties(eval.quickstart PROPERTIES FIXTURES_SETUP quickstart_ci)
set_tests_properties(eval.quickstart_check_control PROPERTIES FIXTURES_REQUIRED quickstart_ci TIMEOUT 300)
set_tests_properties(eval.metrics eval.path_similarity PROPERTIES TIMEOUT 120)
set_tests_properties(eval.commands PROPERTIES TIMEOUT 300)
set_tests_properties(eval.quickstart PROPERTIES TIMEOUT 900)
