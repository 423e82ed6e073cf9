#!/usr/bin/python3
"""A stand-in for catlip_refdump, in float32 PyTorch, with the same command line and output.

It lets check_reference.py be tested on its own: a float32 dump must pass the float64 check
(this is what a correct float32 implementation looks like), and a dump with one deliberately
wrong number (--corrupt WHAT) must fail it. WHAT is one of: grad, logits, loss, step-loss,
lr, grad-norm, ema, param (one number changed by 1e-3 of its tensor's scale, in runs of more
than one step only), or step-size: every AdamW step 1e-5 too large (while the lrs written are
right), as when (1 - beta2) is rounded to float32 but the bias correction is not.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import vit_ref  # noqa: E402

OPTIM = {"lr": 1e-3, "min_lr": 1e-5, "warmup_steps": 3, "warmup_init_lr": 1e-6,
         "weight_decay": 0.2, "betas": [0.9, 0.999], "eps": 1e-8, "grad_clip": 1.0, "ema": 0.1}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--image-size", type=int, required=True)
    ap.add_argument("--patch-size", type=int, required=True)
    ap.add_argument("--classes", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--dim", type=int)
    ap.add_argument("--depth", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--corrupt", default=os.environ.get("FAKE_REFDUMP_CORRUPT"))
    a = ap.parse_args()

    isa = os.environ.get("CATLIP_ISA", "")
    if isa == os.environ.get("FAKE_REFDUMP_LACKS", "-"):
        # The words of common/nn/isa.c, which check_reference.py looks for.
        print(f"catlip: error: CATLIP_ISA={isa}: this CPU does not support it (choices: scalar, avx2, avx512)",
              file=sys.stderr)
        return 2

    cfg = vit_ref.model_config(a.model, a.image_size, a.patch_size, a.classes, a.dim, a.depth, a.heads)
    torch.manual_seed(a.seed)
    model = vit_ref.build_model(cfg, torch.float32)
    S, V, B = a.image_size, a.classes, a.batch
    images = torch.randn(B, 3, S, S)
    targets = (torch.rand(B, V) < 5.0 / V).float()
    os.makedirs(a.out, exist_ok=True)

    init = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    safetensors_io.write(os.path.join(a.out, "init.safetensors"), init)
    safetensors_io.write(os.path.join(a.out, "batch.safetensors"),
                         {"images": images.numpy(), "targets": targets.numpy()})

    logits, loss, grads = vit_ref.gradients_at(model, images, targets)
    step0 = {"logits": logits.numpy(), "loss": np.array([loss], dtype=np.float64)}
    step0.update({"grad." + n: g.numpy() for n, g in grads.items()})

    optim = dict(OPTIM)
    if a.corrupt == "step-size":
        for k in ("lr", "min_lr", "warmup_init_lr"):
            optim[k] = OPTIM[k] * (1 + 1e-5)
    r = vit_ref.train(model, images, targets, optim, a.steps)
    if a.corrupt == "step-size":
        r["lrs"] = [vit_ref.lr_at(t, OPTIM, a.steps) for t in range(a.steps)]
    train = {"losses": np.array(r["losses"], dtype=np.float64),
             "lrs": np.array(r["lrs"], dtype=np.float64),
             "grad_norms": np.array(r["grad_norms"], dtype=np.float64)}
    train.update({"ema." + n: t.numpy() for n, t in r["ema"].items()})
    train.update({"param." + n: t.numpy() for n, t in r["param"].items()})

    # One wrong number, well above the tolerance, to prove the check can fail.
    c = a.corrupt if a.steps > 1 else None
    if c == "step-size":
        pass
    elif c == "grad":
        step0["grad.blocks.0.attn.qkv.weight"].flat[7] += 1e-3 * np.abs(step0["grad.blocks.0.attn.qkv.weight"]).max()
    elif c == "logits":
        step0["logits"].flat[0] += 1e-3 * np.abs(step0["logits"]).max()
    elif c == "loss":
        step0["loss"][0] *= 1 + 1e-3
    elif c == "step-loss":
        train["losses"][-1] *= 1 + 1e-3
    elif c == "lr":
        train["lrs"][1] *= 1 + 1e-3
    elif c == "grad-norm":
        train["grad_norms"][2] *= 1 + 1e-3
    elif c == "ema":
        train["ema.pos_embed"].flat[3] += 1e-3 * np.abs(train["ema.pos_embed"]).max()
    elif c == "param":
        train["param.head.bias"].flat[0] += 1e-3 * np.abs(train["param.head.bias"]).max()
    elif c:
        print(f"fake_refdump: error: unknown --corrupt '{c}'", file=sys.stderr)
        return 2

    safetensors_io.write(os.path.join(a.out, "step0.safetensors"), step0)
    safetensors_io.write(os.path.join(a.out, "train.safetensors"), train)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump({"model": cfg, "batch": B, "steps": a.steps, "optim": OPTIM,
                   "gemm": os.environ.get("CATLIP_GEMM") or "torch"}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
