#!/usr/bin/python3
"""Tests check_reference.py itself, with fake_refdump.py (float32 PyTorch) in catlip's place:
  - a correct float32 dump passes the float64 check on every path;
  - a dump with one wrong number of each kind fails, naming that number's category;
  - a path the CPU lacks is skipped, not failed; a missing refdump is a usage error.
Exits 1 if any of these does not hold.
"""
import contextlib
import io
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
FAKE = os.path.join(HERE, "fake_refdump.py")

# --corrupt kind -> the line check_reference.py must print
CORRUPTIONS = {
    "grad": "FAIL small/scalar gradients grad.blocks.0.attn.qkv.weight",
    "logits": "FAIL small/scalar logits logits",
    "loss": "FAIL small/scalar loss step0 loss",
    "step-loss": "FAIL small/scalar step losses step 9",
    "lr": "FAIL small/scalar learning rates step 1",
    "grad-norm": "FAIL small/scalar grad norms step 2",
    "ema": "FAIL small/scalar EMA weights ema.pos_embed",
    "param": "FAIL small/scalar final weights param.head.bias",
}
# kinds that may fail several values, all in one category
CORRUPTIONS_MANY = {
    "step-size": "FAIL small/scalar 1-step weights",
}


def run(extra_env, *args):
    """check_reference.main(args) in this process (saves a torch import per run), with
    extra_env seen by the fake refdump it starts. Returns (exit code, stdout + stderr)."""
    import check_reference

    saved = dict(os.environ)
    os.environ.pop("FAKE_REFDUMP_CORRUPT", None)
    os.environ.pop("FAKE_REFDUMP_LACKS", None)
    os.environ.update(extra_env)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            try:
                rc = check_reference.main(list(args))
            except SystemExit as e:
                rc = e.code
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return rc, buf.getvalue()


def check_model_pieces():
    """vit_ref's hand-written pieces against torch's own: attention against
    nn.MultiheadAttention (same [q; k; v] in_proj layout as timm's qkv), and the weight-decay
    split by name. Returns a list of problems."""
    import torch
    sys.path.insert(0, HERE)
    import vit_ref

    problems = []
    torch.manual_seed(0)
    C, H, B, T = 48, 3, 2, 17
    attn = vit_ref.Attention(C, H).double()
    for p in attn.parameters():
        torch.nn.init.normal_(p, std=0.3)
    mha = torch.nn.MultiheadAttention(C, H, bias=True, batch_first=True).double()
    with torch.no_grad():
        mha.in_proj_weight.copy_(attn.qkv.weight)
        mha.in_proj_bias.copy_(attn.qkv.bias)
        mha.out_proj.weight.copy_(attn.proj.weight)
        mha.out_proj.bias.copy_(attn.proj.bias)
    x = torch.randn(B, T, C, dtype=torch.float64)
    want, _ = mha(x, x, x, need_weights=False)
    err = (attn(x) - want).abs().max().item()
    if not err < 1e-12:
        problems.append(f"vit_ref attention differs from nn.MultiheadAttention by {err:.3e}")

    cfg = vit_ref.model_config("vit_tiny", 32, 8, 37, dim=48, depth=2, heads=3)
    model = vit_ref.build_model(cfg)
    no_decay = sorted(n for n, _ in model.named_parameters() if vit_ref.no_weight_decay(n))
    want_no_decay = sorted(["cls_token", "pos_embed", "patch_embed.proj.bias", "norm.weight", "norm.bias",
                            "head.bias"] + [f"blocks.{i}.{m}" for i in range(2) for m in (
                                "norm1.weight", "norm1.bias", "attn.qkv.bias", "attn.proj.bias",
                                "norm2.weight", "norm2.bias", "mlp.fc1.bias", "mlp.fc2.bias")])
    if no_decay != want_no_decay:
        problems.append(f"no-weight-decay set is {no_decay}, want {want_no_decay}")
    n_params = sum(p.numel() for p in model.parameters())
    # patch 3*64*48+48, cls 48, pos 17*48, per block 2*(2*48) + 48*144+144 + 48*48+48 +
    # 48*192+192 + 192*48+48, final norm 2*48, head 48*37+37
    want_params = 3 * 64 * 48 + 48 + 48 + 17 * 48 + 2 * (4 * 48 + 48 * 144 + 144 + 48 * 48 + 48
                                                        + 48 * 192 + 192 + 192 * 48 + 48) + 96 + 48 * 37 + 37
    if n_params != want_params:
        problems.append(f"small model has {n_params} parameters, want {want_params}")
    return problems


def main():
    problems = check_model_pieces()
    if not problems:
        print("ok: attention matches nn.MultiheadAttention; decay split and parameter count right")

    rc, out = run({"FAKE_REFDUMP_LACKS": "avx512"}, "--refdump", FAKE, "--shape", "small")
    if rc != 0 or "PASS: 0 failure(s) over 2 run(s)" not in out or "small/avx512: skipped" not in out:
        problems.append(f"clean float32 dump (avx512 lacking): rc {rc}, want 0, two runs, avx512 skipped\n{out}")

    for kind, line in CORRUPTIONS.items():
        rc, out = run({"FAKE_REFDUMP_CORRUPT": kind}, "--refdump", FAKE, "--shape", "small", "--isa", "scalar")
        fails = [l for l in out.splitlines() if l.startswith("FAIL small/")]
        if rc != 1 or len(fails) != 1 or not fails[0].startswith(line):
            problems.append(f"--corrupt {kind}: rc {rc}, want 1 and exactly one line '{line} ...'\n{out}")
        else:
            print(f"ok: --corrupt {kind} caught: {fails[0]}")
    for kind, line in CORRUPTIONS_MANY.items():
        rc, out = run({"FAKE_REFDUMP_CORRUPT": kind}, "--refdump", FAKE, "--shape", "small", "--isa", "scalar")
        fails = [l for l in out.splitlines() if l.startswith("FAIL small/")]
        if rc != 1 or not fails or not all(l.startswith(line) for l in fails):
            problems.append(f"--corrupt {kind}: rc {rc}, want 1 and only '{line} ...' lines\n{out}")
        else:
            print(f"ok: --corrupt {kind} caught: {len(fails)} values, e.g. {fails[0]}")

    rc, out = run({"FAKE_REFDUMP_LACKS": "scalar"}, "--refdump", FAKE, "--shape", "small", "--isa", "scalar")
    if rc != 77 or "SKIPPED: no instruction-set path" not in out:
        problems.append(f"every path skipped: rc {rc}, want 77 (ctest: Skipped)\n{out}")

    rc, out = run({}, "--refdump", os.path.join(HERE, "no_such_refdump"), "--shape", "small")
    if rc != 2 or "is not an executable file" not in out:
        problems.append(f"missing refdump: rc {rc}, want 2 and a one-line error\n{out}")

    for p in problems:
        print("SELFCHECK FAIL:", p)
    print("selfcheck:", "FAIL" if problems else "PASS")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
