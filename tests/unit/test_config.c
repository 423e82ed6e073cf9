// Run configuration: defaults, YAML files, --set overrides, and one-line errors.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "core/config.h"

static char tmp_path[64];

static const char *write_yaml(const char *text) {
    strcpy(tmp_path, "/tmp/catlip_test_config_XXXXXX");
    int fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return tmp_path;
}

static void defaults_are_the_reference_recipe(void **state) {
    struct config c;
    config_defaults(&c);
    assert_string_equal(c.model.name, "vit_tiny");
    assert_int_equal(c.model.image_size, 224);
    assert_true(c.optim.lr == 0.001 && c.optim.min_lr == 0.00001);
    assert_true(c.optim.betas[0] == 0.9 && c.optim.betas[1] == 0.999);
    assert_true(c.optim.weight_decay == 0.2 && c.optim.grad_clip == 1.0);
    assert_true(c.data.mean[0] == 0.485 && c.data.std[2] == 0.225);
    assert_string_equal(c.train.grad_comm, "fp32");
    assert_string_equal(c.train.allreduce, "auto");
    assert_string_equal(c.train.collectives, "ring");
    assert_int_equal(config_validate(&c), 0);
}

static void nested_file_and_overrides(void **state) {
    struct config c;
    config_defaults(&c);
    const char *p = write_yaml("model:\n  name: vit_small\n  image_size: 128\noptim:\n"
                               "  betas: [0.8, 0.95]\n  lr: 3e-4\ndata:\n  skip_missing_shards: yes\n");
    assert_int_equal(config_load_file(&c, p), 0);
    unlink(p);
    assert_string_equal(c.model.name, "vit_small");
    assert_int_equal(c.model.image_size, 128);
    assert_true(c.optim.betas[0] == 0.8 && c.optim.betas[1] == 0.95);
    assert_true(c.optim.lr == 3e-4);
    assert_true(c.data.skip_missing_shards);
    assert_int_equal(config_set(&c, "optim.lr=0.01"), 0);
    assert_true(c.optim.lr == 0.01);
    assert_int_equal(config_set(&c, "optim.betas=[0.9, 0.99]"), 0);
    assert_true(c.optim.betas[1] == 0.99);
    assert_int_equal(config_set(&c, "data.val="), 0);
    assert_string_equal(c.data.val, "");
}

static void round_trip_through_yaml(void **state) {
    struct config a, b;
    config_defaults(&a);
    assert_int_equal(config_set(&a, "run_dir=/tmp/x y"), 0);
    assert_int_equal(config_set(&a, "optim.lr=0.000123456789"), 0);
    char *text = config_to_yaml(&a);
    config_defaults(&b);
    const char *p = write_yaml(text);
    free(text);
    assert_int_equal(config_load_file(&b, p), 0);
    unlink(p);
    assert_memory_equal(&a, &b, sizeof a);
}

static void expect_error(const char *yaml_or_set, int is_set, const char *needle) {
    struct config c;
    config_defaults(&c);
    int rc;
    if (is_set) {
        rc = config_set(&c, yaml_or_set);
    } else {
        const char *p = write_yaml(yaml_or_set);
        rc = config_load_file(&c, p);
        unlink(p);
    }
    if (rc == 0) rc = config_validate(&c);
    assert_int_equal(rc, -1);
    if (!strstr(catlip_error(), needle)) fail_msg("error '%s' lacks '%s'", catlip_error(), needle);
    assert_null(strchr(catlip_error(), '\n'));
}

static void bad_values_are_one_line_errors(void **state) {
    expect_error("optim:\n  lrr: 0.1\n", 0, "unknown setting 'optim.lrr'");
    expect_error("optim:\n  lr: fast\n", 0, "optim.lr must be a number");
    expect_error("optim:\n  lr: -1\n", 0, "out of range");
    expect_error("model:\n  image_size: 22.5\n", 0, "must be an integer");
    expect_error("optim:\n  betas: [0.9]\n", 0, "must have 2 numbers");
    expect_error("model: [1, 2\n", 0, "YAML syntax error");
    expect_error("- a\n- b\n", 0, "must be a mapping");
    expect_error("model.patch_size=15", 1, "must divide");
    expect_error("nosuch=1", 1, "unknown setting 'nosuch'");
    expect_error("optim.lr", 1, "key=value");
    expect_error("data.skip_missing_shards=maybe", 1, "true or false");
    expect_error("optim.min_lr=0.1", 1, "above optim.lr");
    expect_error("train.precision=fp16", 1, "train.precision must be fp32 or bf16, got 'fp16'");
    expect_error("train:\n  precision: bfloat16\n", 0, "train.precision");
    expect_error("train.grad_comm=fp16", 1, "train.grad_comm must be fp32 or bf16, got 'fp16'");
    expect_error("train:\n  grad_comm: int8\n", 0, "train.grad_comm");
    expect_error("train.allreduce=tree", 1,
                 "train.allreduce must be auto, flat or hierarchical, got 'tree'");
    expect_error("train.collectives=nccl", 1, "train.collectives must be ring or mpi, got 'nccl'");
    struct config c;
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, "/nonexistent/run.yaml"), -1);
    assert_non_null(strstr(catlip_error(), "/nonexistent/run.yaml"));
}

// model.objective clip: its settings' defaults and one-line errors (set on top of a valid
// CLIP configuration, so each error is the one named).
static void expect_clip_error(const char *assignment, const char *needle) {
    struct config c;
    config_defaults(&c);
    assert_int_equal(config_set(&c, "model.objective=clip"), 0);
    assert_int_equal(config_set(&c, "data.train=shards/{0..1}.tar"), 0);
    assert_int_equal(config_set(&c, "data.tokenizer=tokenizer.tsv"), 0);
    assert_int_equal(config_validate(&c), 0);
    int rc = config_set(&c, assignment);
    if (rc == 0) rc = config_validate(&c);
    assert_int_equal(rc, -1);
    if (!strstr(catlip_error(), needle)) fail_msg("error '%s' lacks '%s'", catlip_error(), needle);
    assert_null(strchr(catlip_error(), '\n'));
}

static void clip_settings(void **state) {
    struct config c;
    config_defaults(&c);
    assert_string_equal(c.model.objective, "catlip");
    assert_string_equal(c.model.text, "text_base");
    assert_int_equal(c.model.context_length, 32);
    assert_int_equal(c.model.embed_dim, 512);
    assert_string_equal(c.data.tokenizer, "");
    expect_error("model.objective=siglip", 1, "model.objective must be catlip or clip, got 'siglip'");
    expect_clip_error("model.text=text_huge", "model.text must be text_base or text_tiny");
    expect_clip_error("data.tokenizer=", "needs data.tokenizer");
    expect_clip_error("data.train=synthetic", "captioned shards");
    // train.micro_batch works with clip (GradCache, worker/grad_cache.h)
    assert_int_equal(config_set(&c, "model.objective=clip"), 0);
    assert_int_equal(config_set(&c, "data.train=shards/{0..1}.tar"), 0);
    assert_int_equal(config_set(&c, "data.tokenizer=tokenizer.tsv"), 0);
    assert_int_equal(config_set(&c, "train.micro_batch=8"), 0);
    assert_int_equal(config_validate(&c), 0);
    config_defaults(&c);
    expect_clip_error("task=classify", "task: pretrain");
    expect_clip_error("model.init_from=x.pb", "from scratch");
    expect_clip_error("model.context_length=1", "out of range");
    expect_clip_error("model.embed_dim=0", "out of range");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_the_reference_recipe),
        cmocka_unit_test(nested_file_and_overrides),
        cmocka_unit_test(round_trip_through_yaml),
        cmocka_unit_test(bad_values_are_one_line_errors),
        cmocka_unit_test(clip_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
