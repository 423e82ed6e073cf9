#!/usr/bin/env python3
"""CLIP's text tower and contrastive loss (issue 16) held to an independent float64 PyTorch run.

clip_refdump (tests/reference/clip_refdump.c) runs catlip's text tower (common/nn/text_tower.c)
forward over a global batch of token ids, the symmetric contrastive loss against raw image
embeddings through the MPI gather / reduce-scatter (worker/contrastive_sync.c), and the tower
backward, on 1 or 3 ranks, and dumps the inputs, the parameters, the text features, the loss and
every gradient (the tower's parameters summed over ranks; the image embeddings', the text
features' and the log-scale's). This script recomputes all of it in one process over the whole
batch, in float64, with plain torch ops written from CLIP's definition (not from catlip's code):

  x = token_embedding[ids] + positional_embedding
  x = x + out_proj(causal_attention(ln_1(x)));  x = x + c_proj(gelu(c_fc(ln_2(x))))   (per block)
  features = ln_final(x[b, first <eot>]) @ text_projection.weight.T
  I, T = normalize(image), normalize(features);  s = exp(min(t, ln 100))
  loss = (cross_entropy(s I T^T, arange) + cross_entropy(s T I^T, arange)) / 2

and asks, per tensor, max |catlip - torch| <= 1e-4 * max |torch| (the loss: relative 1e-5). A
gradient that must be zero (the log-scale's above the clamp) must be exactly zero. The dump is
made twice and must repeat bit for bit.

Cases: one (1 rank), three (mpirun -n 3, rows split 2/2/3), empty_worker (3 ranks, 2 rows: one
rank has none and still takes part), bf16 (train.precision bf16 on 3 ranks against the reference with
every matmul input rounded to bfloat16, as autocast: within 2e-2 of each tensor's largest
value, the loss within 5e-3), clamp (log-scale 5 > ln 100),
scalar (CATLIP_ISA=scalar, OpenBLAS matmuls). Exit 0 pass, 1 fail.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

LAYERNORM_EPS = 1e-6  # catlip's (common/nn/kernels.h), for both towers
TOLERANCE = 1e-4      # of each tensor's largest magnitude
LOSS_TOLERANCE = 1e-5  # relative
# train.precision bf16 (matmul inputs rounded to 8 bits: 2^-9 = 2e-3 each) against the float64
# run with the same roundings (autocast's rule): the ViT's bf16 bounds (README, "The model and
# the math").
BF16_TOLERANCE = 2e-2
BF16_LOSS_TOLERANCE = 5e-3

MPI_ENV = dict(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl_vader_single_copy_mechanism="none")

CASES = {
    # name: (ranks, extra refdump arguments, environment)
    "one": (1, ["--batch", "7", "--seed", "1"], {}),
    "three": (3, ["--batch", "7", "--seed", "1"], {}),
    "empty_worker": (3, ["--batch", "2", "--seed", "4"], {}),
    "clamp": (1, ["--batch", "5", "--seed", "2", "--log-scale", "5"], {}),
    "bf16": (3, ["--batch", "7", "--seed", "5", "--precision", "bf16"], {}),
    "scalar": (1, ["--batch", "6", "--seed", "3", "--context", "11", "--width", "24",
                   "--heads", "3", "--embed", "8"], {"CATLIP_ISA": "scalar", "CATLIP_GEMM": "openblas"}),
}


def text_tower(p, ids, cfg, bf16=False):
    """CLIP's text transformer (OpenCLIP names), float64, written out op by op. bf16: every
    matmul's inputs rounded to bfloat16 first (PyTorch CPU autocast's rule, which catlip's
    train.precision bf16 follows; autograd rounds the gradients that flow back through the
    casts too), the rest float64."""
    B, T = ids.shape
    C, H, L = cfg["width"], cfg["heads"], cfg["depth"]
    hd = C // H
    r = (lambda t: t.to(torch.bfloat16).to(torch.float64)) if bf16 else (lambda t: t)
    x = p["token_embedding.weight"][ids.long()] + p["positional_embedding"]
    causal = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(L):
        q = lambda name: p["transformer.resblocks.%d.%s" % (i, name)]  # noqa: E731
        h = F.layer_norm(x, (C,), q("ln_1.weight"), q("ln_1.bias"), LAYERNORM_EPS)
        qkv = r(h) @ r(q("attn.in_proj_weight")).T + q("attn.in_proj_bias")
        qh, kh, vh = (t.reshape(B, T, H, hd).transpose(1, 2) for t in qkv.split(C, dim=-1))
        att = torch.softmax(r(qh) @ r(kh).transpose(-2, -1) / math.sqrt(hd) + causal, dim=-1)
        y = (r(att) @ r(vh)).transpose(1, 2).reshape(B, T, C)
        x = x + r(y) @ r(q("attn.out_proj.weight")).T + q("attn.out_proj.bias")
        h = F.layer_norm(x, (C,), q("ln_2.weight"), q("ln_2.bias"), LAYERNORM_EPS)
        h = F.gelu(r(h) @ r(q("mlp.c_fc.weight")).T + q("mlp.c_fc.bias"))  # exact erf GELU
        x = x + r(h) @ r(q("mlp.c_proj.weight")).T + q("mlp.c_proj.bias")
    is_eot = ids == cfg["eot"]
    eot = torch.where(is_eot.any(dim=1), is_eot.int().argmax(dim=1), torch.full((B,), T - 1))
    pooled = x[torch.arange(B), eot]
    pooled = F.layer_norm(pooled, (C,), p["ln_final.weight"], p["ln_final.bias"], LAYERNORM_EPS)
    return r(pooled) @ r(p["text_projection.weight"]).T


def clip_loss(image, text, log_scale):
    image, text = F.normalize(image, dim=-1), F.normalize(text, dim=-1)
    scale = log_scale.clamp(max=math.log(100.0)).exp()
    logits = scale * image @ text.T
    labels = torch.arange(image.shape[0])
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def reference(d, bf16=False):
    cfg = d["config"]
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in d["init"].items()}
    ids = torch.tensor(d["batch"]["ids"])
    image = torch.tensor(d["batch"]["image"], dtype=torch.float64, requires_grad=True)
    log_scale = torch.tensor(float(d["batch"]["log_scale"][0]), dtype=torch.float64, requires_grad=True)
    features = text_tower(params, ids, cfg, bf16)
    features.retain_grad()
    loss = clip_loss(image, features, log_scale)
    loss.backward()
    ref = {"features": features.detach(), "loss": loss.detach().reshape(1),
           "grad.image": image.grad, "grad.features": features.grad,
           "grad.log_scale": log_scale.grad.reshape(1)}
    for k, v in params.items():
        ref["grad." + k] = v.grad
    return ref


def compare(got, ref, tol, loss_tol):
    failures, lines = [], []
    for name in sorted(ref):
        r = ref[name].numpy()
        g = got[name].astype("float64").reshape(r.shape)
        err = float(abs(g - r).max())
        scale = float(abs(r).max())
        if name == "loss":
            ok = err <= loss_tol * scale
            what = "relative %.2e" % (err / scale)
        elif scale == 0.0:
            ok = err == 0.0
            what = "must be exactly 0, max |catlip| %.3g" % err
        else:
            ok = err <= tol * scale
            what = "%.2e of max %.3g" % (err / scale, scale)
        lines.append("%s %-45s %s" % ("ok  " if ok else "FAIL", name, what))
        if not ok:
            failures.append(name)
    return failures, lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--refdump", required=True)
    ap.add_argument("--case", choices=sorted(CASES), required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ranks, extra, env = CASES[args.case]
    with tempfile.TemporaryDirectory(prefix="catlip_clip_") as work:
        # Twice: the same ranks and threads must give the same bits.
        for out in (os.path.join(work, "dump"), os.path.join(work, "again")):
            cmd = [args.refdump, "--out", out] + extra
            if ranks > 1:
                cmd = ["mpirun", "--oversubscribe", "-n", str(ranks)] + cmd
            run_env = dict(os.environ, **MPI_ENV, **env)
            res = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=150)
            sys.stderr.write(res.stderr)
            if res.returncode != 0:
                print("FAIL: %s exited %d" % (" ".join(cmd), res.returncode))
                return 1
        out = os.path.join(work, "dump")
        for part in ("init", "batch", "out"):
            name = part + ".safetensors"
            with open(os.path.join(out, name), "rb") as a, open(os.path.join(work, "again", name), "rb") as b:
                if a.read() != b.read():
                    print("FAIL: two runs wrote different %s (results must repeat bit for bit)" % name)
                    return 1
        with open(os.path.join(out, "config.json")) as f:
            config = json.load(f)
        d = {"config": config}
        for part in ("init", "batch", "out"):
            d[part] = safetensors_io.read(os.path.join(out, part + ".safetensors"))[0]
    if config["workers"] != ranks:
        print("FAIL: the dump ran on %d rank(s), expected %d" % (config["workers"], ranks))
        return 1
    bf16 = config["precision"] == "bf16"
    ref = reference(d, bf16)
    tol, loss_tol = (BF16_TOLERANCE, BF16_LOSS_TOLERANCE) if bf16 else (TOLERANCE, LOSS_TOLERANCE)
    failures, lines = compare(d["out"], ref, tol, loss_tol)
    print("\n".join(lines))
    print("case %s: %d rank(s), batch %d, context %d, width %d, depth %d, heads %d, embed %d, "
          "kernels %s, gemm %s, %s" % (args.case, ranks, config["batch"], config["context"],
                                       config["width"], config["depth"], config["heads"],
                                       config["embed"], config["kernels"], config["gemm"],
                                       config["precision"]))
    if failures:
        print("FAIL: %d tensor(s) off: %s" % (len(failures), ", ".join(failures)))
        return 1
    print("ok: %d tensors within %.0e of their largest value (loss within %.0e); two runs "
          "bit-identical" % (len(lines), tol, loss_tol))
    return 0


if __name__ == "__main__":
    sys.exit(main())
