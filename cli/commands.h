// Subcommands of the `catlip` executable. Each takes the arguments after its own name
// (argv[0] is the subcommand name) and returns the process exit status.
#pragma once

int cmd_train(int argc, char **argv);
int cmd_bench_step(int argc, char **argv);
int cmd_bench_allreduce(int argc, char **argv);
int cmd_bench_objective(int argc, char **argv);
int cmd_vocab_build(int argc, char **argv);
int cmd_vocab_label(int argc, char **argv);
int cmd_tokenizer_build(int argc, char **argv);
int cmd_tokenizer_encode(int argc, char **argv);
int cmd_shards_make(int argc, char **argv);
int cmd_shards_index(int argc, char **argv);
int cmd_bench_data(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_eval_multilabel(int argc, char **argv);
int cmd_eval_zeroshot(int argc, char **argv);
int cmd_transfer(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_export(int argc, char **argv);
