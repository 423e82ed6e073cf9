#!/usr/bin/python3
"""Holds catlip's ViT forward, backward and training step to an independent float64 PyTorch run.

For each shape and each instruction-set path (CATLIP_ISA=scalar, avx2, avx512), it runs
catlip_refdump, which writes catlip's initial weights, a batch, the logits / loss / gradients
at those weights, and the result of K optimiser steps on that batch. It then loads the same
weights and batch into vit_ref.py in float64 and compares:
  - logits, and every parameter gradient: max|diff| / max|ref| per tensor < 1e-4
  - the loss, each step's loss and pre-clip grad norm: |diff| / |ref| < 1e-4
  - each step's learning rate: |diff| / |ref| < 1e-9 (both sides compute it in double)
  - the final EMA weights and final weights: max|diff| / max|ref| per tensor < 1e-4
  - a second run with one step, the optimiser alone: catlip's weights and EMA after that step
    against one float64 AdamW step taken from catlip's own step-0 gradient, < 1e-6 per tensor
    (a few float32 ulps: each element is a handful of float32 operations on the same inputs)
The matmul backend is whatever CATLIP_GEMM selects (ctest runs the check with the default and
with CATLIP_GEMM=openblas); config.json must name the backend asked for.
With --precision bf16 it checks catlip's train.precision bf16 instead, on the same weights and
batch, against PyTorch's own bf16 mixed precision (a float32 model whose forward runs under
torch.autocast("cpu", dtype=torch.bfloat16), float32 loss and AdamW: vit_ref.forward_logits)
and against catlip's own fp32 run, with the same bounds for both (BF16_TOLS):
  - logits and every gradient: max|diff| / max|ref| per tensor < 2e-2. bf16 keeps 8
    significant bits, so each matmul input is off by up to u = 2^-9 = 1.95e-3 of itself. The
    sides round in different places (autocast also rounds every matmul's output, the GELU and
    softmax inputs and outputs, and bias adds to bf16; catlip keeps those in fp32; fp32 rounds
    nothing), and the differences add up through the blocks forward and back again: measured
    worst 5e-3 (logits) and 7.5e-3 (gradients) on `small`, 8.7e-3 and 1.1e-2 on vit_tiny's 12
    blocks; 2e-2 is ~10u.
  - the loss, each step's loss and pre-clip grad norm: |diff| / |ref| < 5e-3 (sums over many
    terms, whose rounding errors average; measured <= 6e-4 on `small`, 2e-3 on vit_tiny).
  - learning rates: 1e-9 as in fp32 (double on every side).
  - after the 10 steps, weights and EMA per tensor: ||got - ref|| / ||ref - init|| < 0.1, i.e.
    where training took them relative to how far it took them. AdamW divides each gradient
    element by its own running RMS, so an element whose gradient is rounding-sized moves by up
    to lr in a direction the rounding picks, whatever its size: a max-of-tensor ratio of the
    weights measures that noise (up to 0.15 on `small` between bf16 and fp32), the
    displacement ratio whether training went the same way (measured <= 3.1e-2 on `small`,
    5.3e-2 on vit_tiny).
  - the optimiser alone (one step from catlip's own bf16 gradient): TOL_STEP as in fp32,
    since the optimiser is fp32 in both precisions.
  - and the bf16 run did round: its logits differ from the fp32 run's by more than TOL_TENSOR
    (a run that quietly stayed in fp32 would pass every bound above).
--bf16-path avx512_bf16 needs the VDPBF16PS kernel (skipped, exit 77, on a CPU without it);
--bf16-path emulated forces the fp32 emulation (CATLIP_CPU_DISABLE=avx512_bf16).
A path whose run says the CPU lacks it (the message common/nn/isa.c prints, CPU_LACKS below) is
skipped. Prints one line per failing value and a summary table; exits 1 on any failure, 2 on a
usage error, 77 (ctest's SKIP_RETURN_CODE) when every path asked for was skipped.

  check_reference.py --refdump build/tests/catlip_refdump --shape small --shape vit_tiny
"""
import argparse
import hashlib
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import vit_ref  # noqa: E402

TOL_TENSOR = 1e-4   # max|diff| / max|ref| per tensor
TOL_SCALAR = 1e-4   # |diff| / |ref|
TOL_LR = 1e-9

# What catlip prints (common/nn/isa.c, through catlip_die) when CATLIP_ISA names an instruction
# set the CPU lacks or CATLIP_CPU_DISABLE masks: "CATLIP_ISA=avx512: this CPU does not support it".
CPU_LACKS = "this CPU does not support it"
EXIT_SKIPPED = 77
TOL_STEP = 1e-6     # one optimiser step from catlip's own gradient, ~16 float32 ulps
# train.precision bf16 (--precision bf16), against PyTorch's bf16 autocast and against catlip's
# fp32 run. See the module docstring for why these values.
BF16_TOLS = {"tensor": 2e-2, "scalar": 5e-3, "weights": 1e-1}

# name: refdump arguments. "small" covers every code path in seconds (T = 17 tokens and V = 37
# classes, neither a multiple of any SIMD width; head dim 16); "vit_tiny" is the real preset at
# its real image size.
SHAPES = {
    "small": {"model": "vit_tiny", "image-size": 32, "patch-size": 8, "dim": 48, "depth": 2,
              "heads": 3, "classes": 37, "batch": 3, "steps": 10, "seed": 1234},
    "vit_tiny": {"model": "vit_tiny", "image-size": 224, "patch-size": 16, "classes": 3000,
                 "batch": 4, "steps": 10, "seed": 1234},
}
ISAS = ("scalar", "avx2", "avx512")
# What a dump with the wrong structure raises while it is read; reported as a failure.
MALFORMED = (KeyError, ValueError, TypeError, AttributeError, IndexError)


class Report:
    """Collects every comparison: failures are printed as they happen, worst ratios per
    category go into the summary table."""

    def __init__(self, label):
        self.label = label
        self.worst = {}     # category -> (ratio, what, tol, count)
        self.failures = 0

    def check(self, category, what, ratio, tol):
        ok = ratio < tol    # False for NaN too
        prev = self.worst.get(category)
        count = (prev[3] if prev else 0) + 1
        if prev is None or not (prev[0] >= ratio):   # NaN wins, so it shows up in the table
            self.worst[category] = (ratio, what, tol, count)
        else:
            self.worst[category] = prev[:3] + (count,)
        if not ok:
            self.failures += 1
            print(f"FAIL {self.label} {category} {what}: ratio {ratio:.3e} >= tol {tol:.0e}")
        return ok

    def fail(self, category, message):
        self.failures += 1
        self.worst.setdefault(category, (math.inf, message, 0.0, 0))
        print(f"FAIL {self.label} {category}: {message}")


def tensor_ratio(got, ref):
    """max|got - ref| / max|ref|, in float64; absolute when ref is all zeros."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    diff = np.max(np.abs(got - ref)) if got.size else 0.0
    scale = np.max(np.abs(ref)) if ref.size else 0.0
    if not np.isfinite(diff):
        return math.nan
    return float(diff / scale) if scale > 0 else float(diff)


def scalar_ratio(got, ref):
    if not (math.isfinite(got) and math.isfinite(ref)):
        return math.nan
    return abs(got - ref) / abs(ref) if ref != 0 else abs(got - ref)


BF16_PATH = None  # --bf16-path


def run_refdump(refdump, shape, isa, out_dir):
    args = [refdump] if not refdump.endswith(".py") else [sys.executable, refdump]
    args += ["--out", out_dir]
    for k, v in shape.items():
        args += [f"--{k}", str(v)]
    env = dict(os.environ, CATLIP_ISA=isa)
    if BF16_PATH == "emulated":
        masked = env.get("CATLIP_CPU_DISABLE", "")
        env["CATLIP_CPU_DISABLE"] = (masked + "," if masked else "") + "avx512_bf16"
    t0 = time.time()
    p = subprocess.run(args, env=env, capture_output=True, text=True)
    return p, time.time() - t0, args


def load_dump(d):
    with open(os.path.join(d, "config.json")) as f:
        config = json.load(f)
    init, _ = safetensors_io.read(os.path.join(d, "init.safetensors"))
    batch, _ = safetensors_io.read(os.path.join(d, "batch.safetensors"))
    step0, _ = safetensors_io.read(os.path.join(d, "step0.safetensors"))
    train, _ = safetensors_io.read(os.path.join(d, "train.safetensors"))
    return config, init, batch, step0, train


def dump_key(d):
    """Identifies the inputs of the reference computation, so that paths that made the same
    weights and batch (they should: the RNG does not depend on the ISA) share one float64 run."""
    h = hashlib.sha256()
    with open(os.path.join(d, "config.json")) as f:
        config = json.load(f)
    used = {k: config.get(k) for k in ("model", "batch", "steps", "optim")}
    h.update(json.dumps(used, sort_keys=True).encode())
    for name in ("init.safetensors", "batch.safetensors"):
        with open(os.path.join(d, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


# --cache-dir: float64 references kept on disk, so that the per-path ctest tests (one process
# each) compute each shape's reference once. The key covers catlip's inputs (dump_key) and the
# reference code itself, so a changed vit_ref.py or checker never reads an old result.
CACHE_DIR = None


def _cache_path(key):
    h = hashlib.sha256(key.encode())
    for name in ("vit_ref.py", os.path.basename(__file__)):
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name), "rb") as f:
            h.update(f.read())
    h.update(torch.__version__.encode())
    return os.path.join(CACHE_DIR, h.hexdigest() + ".pkl")


def load_cached_reference(key):
    if CACHE_DIR is None:
        return None
    try:
        with open(_cache_path(key), "rb") as f:
            return pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError):
        return None


def store_cached_reference(key, ref):
    if CACHE_DIR is None:
        return
    os.makedirs(CACHE_DIR, exist_ok=True)
    path = _cache_path(key)
    fd, tmp = tempfile.mkstemp(dir=CACHE_DIR, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        pickle.dump(ref, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)  # a concurrent reader sees the old file or the whole new one


def reference(config, init, batch):
    """The float64 PyTorch run on catlip's weights and batch."""
    model = vit_ref.build_model(config["model"], torch.float64)
    vit_ref.load_weights(model, init)
    images = torch.from_numpy(batch["images"]).to(torch.float64)
    targets = torch.from_numpy(batch["targets"]).to(torch.float64)
    logits, loss, grads = vit_ref.gradients_at(model, images, targets)
    trained = vit_ref.train(model, images, targets, config["optim"], int(config["steps"]))
    return {"logits": logits.numpy(), "loss": loss,
            "grads": {n: g.numpy() for n, g in grads.items()},
            "losses": trained["losses"], "lrs": trained["lrs"], "grad_norms": trained["grad_norms"],
            "ema": {n: t.numpy() for n, t in trained["ema"].items()},
            "param": {n: t.numpy() for n, t in trained["param"].items()}}


def autocast_reference(config, init, batch):
    """PyTorch's own bf16 mixed precision on catlip's weights and batch: a float32 model whose
    forward runs under torch.autocast("cpu", bfloat16) (vit_ref.forward_logits), float32 loss,
    float32 AdamW — what train.precision bf16 follows."""
    model = vit_ref.build_model(config["model"], torch.float32)
    vit_ref.load_weights(model, init)
    images = torch.from_numpy(batch["images"]).to(torch.float32)
    targets = torch.from_numpy(batch["targets"]).to(torch.float32)
    logits, loss, grads = vit_ref.gradients_at(model, images, targets, autocast=True)
    trained = vit_ref.train(model, images, targets, config["optim"], int(config["steps"]),
                            autocast=True)
    return {"logits": logits.numpy(), "loss": loss,
            "grads": {n: g.numpy() for n, g in grads.items()},
            "losses": trained["losses"], "lrs": trained["lrs"], "grad_norms": trained["grad_norms"],
            "ema": {n: t.numpy() for n, t in trained["ema"].items()},
            "param": {n: t.numpy() for n, t in trained["param"].items()}}


def dump_as_reference(dump, names):
    """catlip's own fp32 run, in the shape of reference()'s result."""
    config, init, batch, step0, train = dump
    return {"logits": step0["logits"], "loss": float(step0["loss"].reshape(-1)[0]),
            "grads": {n: step0["grad." + n] for n in names},
            "losses": list(train["losses"]), "lrs": list(train["lrs"]),
            "grad_norms": list(train["grad_norms"]),
            "ema": {n: train["ema." + n] for n in names},
            "param": {n: train["param." + n] for n in names}}


def check_config(rep, config, shape, isa, init, batch):
    """catlip must have built what was asked for; otherwise every later number is moot."""
    m = config["model"]
    if "kernels" in config and config["kernels"] != isa:
        rep.fail("config", f"CATLIP_ISA={isa} but config.json says kernels {config['kernels']}")
        return False
    gemm = os.environ.get("CATLIP_GEMM", "")
    if gemm and config.get("gemm") != gemm:
        rep.fail("config", f"CATLIP_GEMM={gemm} but config.json says gemm {config.get('gemm')}")
        return False
    want = {"image_size": shape["image-size"], "patch_size": shape["patch-size"],
            "num_classes": shape["classes"]}
    preset = vit_ref.PRESETS[shape["model"]]
    want.update({"dim": shape.get("dim", preset[0]), "depth": shape.get("depth", preset[1]),
                 "heads": shape.get("heads", preset[2])})
    ok = True
    for k, v in want.items():
        if int(m.get(k, -1)) != int(v):
            rep.fail("config", f"config.json model.{k} = {m.get(k)}, asked for {v}")
            ok = False
    for k, v in (("batch", shape["batch"]), ("steps", shape["steps"])):
        if int(config.get(k, -1)) != int(v):
            rep.fail("config", f"config.json {k} = {config.get(k)}, asked for {v}")
            ok = False
    B, S, V = shape["batch"], shape["image-size"], shape["classes"]
    for name, want_shape in (("images", (B, 3, S, S)), ("targets", (B, V))):
        if name not in batch or tuple(batch[name].shape) != want_shape:
            got = tuple(batch[name].shape) if name in batch else "missing"
            rep.fail("config", f"batch.safetensors {name}: shape {got}, want {want_shape}")
            ok = False
    if ok:
        t = batch["targets"]
        if not np.all((t == 0) | (t == 1)) or t.sum() == 0:
            rep.fail("config", "batch targets are not multi-hot 0/1 with at least one positive")
            ok = False
    return ok


def compare_tensors(rep, category, got_dict, prefix, ref_dict, key_bias=None, tol=None):
    """Per tensor max|diff| / max|ref|. With key_bias = (sum of the run's lrs, its category),
    the key third of every attn.qkv.bias is held to a drift bound instead (see below)."""
    for name, ref in ref_dict.items():
        key = prefix + name
        if key not in got_dict:
            rep.fail(category, f"{key} missing from the dump")
            continue
        got = got_dict[key]
        if tuple(got.shape) != tuple(ref.shape):
            rep.fail(category, f"{key}: shape {tuple(got.shape)}, reference {tuple(ref.shape)}")
            continue
        tol_tensor = TOL_TENSOR if tol is None else tol
        if key_bias is None or not name.endswith("attn.qkv.bias"):
            rep.check(category, key, tensor_ratio(got, ref), tol_tensor)
            continue
        # The key bias adds q.b_k to every score of a query row, which softmax cancels: its
        # exact gradient is zero, and what either side computes is rounding noise (about
        # 1e-17 in float64, 1e-9 in float32). AdamW normalises the gradient, so that noise
        # becomes steps of up to about lr, differently on each side. There is nothing to
        # compare there; its gradient is still checked against ~0 in "gradients". The query
        # and value thirds are compared as usual, scaled by the whole tensor's max|ref|.
        C = ref.shape[0] // 3
        g = np.asarray(got, np.float64)
        r = np.asarray(ref, np.float64)
        qv = np.concatenate([g[:C] - r[:C], g[2 * C:] - r[2 * C:]])
        scale = np.max(np.abs(r))
        diff = np.max(np.abs(qv))
        rep.check(category, key + " (query, value)",
                  float(diff / scale) if scale > 0 else (float(diff) if np.isfinite(diff) else math.nan),
                  tol_tensor)
        # What can still be checked: no step moved it more than AdamW's largest possible step,
        # lr * (1 - b1) / sqrt(1 - b2), which is what a bounded update means.
        lr_sum, bound_factor, bias_category = key_bias
        drift = float(np.max(np.abs(g[C:2 * C] - r[C:2 * C])))
        rep.check(bias_category, key + " (key) |diff| / (bound * sum lr)",
                  drift / (bound_factor * lr_sum) if lr_sum > 0 else drift, 1.0)


def compare_series(rep, category, got, ref, tol):
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    if got.shape[0] != len(ref):
        rep.fail(category, f"{got.shape[0]} values in the dump, {len(ref)} steps in the reference")
        return
    for t, (g, r) in enumerate(zip(got, ref)):
        rep.check(category, f"step {t} ({g:.9g} vs {r:.9g})", scalar_ratio(float(g), float(r)), tol)


def compare(rep, dump, ref, tols=None):
    """tols: None for the float32-vs-float64 tolerances above, else BF16_TOLS."""
    t = tols or {"tensor": TOL_TENSOR, "scalar": TOL_SCALAR, "weights": TOL_TENSOR}
    config, init, batch, step0, train = dump
    compare_tensors(rep, "logits", step0, "", {"logits": ref["logits"]}, tol=t["tensor"])
    if "loss" in step0 and step0["loss"].size == 1:
        got = float(step0["loss"].reshape(-1)[0])
        rep.check("loss", f"step0 loss ({got:.9g} vs {ref['loss']:.9g})", scalar_ratio(got, ref["loss"]), t["scalar"])
    else:
        rep.fail("loss", "step0.safetensors has no scalar 'loss'")
    compare_tensors(rep, "gradients", step0, "grad.", ref["grads"], tol=t["tensor"])
    for key, cat, tol in (("losses", "step losses", t["scalar"]), ("lrs", "learning rates", TOL_LR),
                          ("grad_norms", "grad norms", t["scalar"])):
        if key not in train:
            rep.fail(cat, f"train.safetensors has no '{key}'")
        else:
            compare_series(rep, cat, train[key], ref[key], tol)
    b1, b2 = (float(b) for b in config["optim"]["betas"])
    key_bias = (float(sum(ref["lrs"])), (1 - b1) / math.sqrt(1 - b2), "key bias bound")
    if tols is None:
        compare_tensors(rep, "EMA weights", train, "ema.", ref["ema"], key_bias)
        compare_tensors(rep, "final weights", train, "param.", ref["param"], key_bias)
        return
    rep.worst.setdefault("key bias bound", (0.0, "-", 1.0, 0))
    compare_displacement(rep, "EMA weights", train, "ema.", ref["ema"], init, key_bias, t["weights"])
    compare_displacement(rep, "final weights", train, "param.", ref["param"], init, key_bias,
                         t["weights"])


def compare_displacement(rep, category, got_dict, prefix, ref_dict, init, key_bias, tol):
    """bf16: where the 10 steps took each tensor, relative to how far they took it:
    ||got - ref|| / ||ref - init|| per tensor (L2). AdamW divides every gradient element by its
    own running RMS, so an element whose gradient is rounding-sized moves by up to lr either
    way on both sides whatever its size: the max-of-tensor ratio of the weights measures that
    noise, the displacement ratio measures whether training went the same way. The key third of
    attn.qkv.bias (exact gradient zero, see compare_tensors) is held to its drift bound only."""
    for name, ref in ref_dict.items():
        key = prefix + name
        if key not in got_dict or name not in init:
            rep.fail(category, f"{key} missing from the dump")
            continue
        g = np.asarray(got_dict[key], np.float64).reshape(-1)
        r = np.asarray(ref, np.float64).reshape(-1)
        z = np.asarray(init[name], np.float64).reshape(-1)
        if g.shape != r.shape or z.shape != r.shape:
            rep.fail(category, f"{key}: shape {got_dict[key].shape}, reference {ref.shape}")
            continue
        what = key
        if name.endswith("attn.qkv.bias"):
            C = r.shape[0] // 3
            lr_sum, bound_factor, bias_category = key_bias
            drift = float(np.max(np.abs(g[C:2 * C] - r[C:2 * C])))
            rep.check(bias_category, key + " (key) |diff| / (bound * sum lr)",
                      drift / (bound_factor * lr_sum) if lr_sum > 0 else drift, 1.0)
            keep = np.r_[0:C, 2 * C:3 * C]
            g, r, z, what = g[keep], r[keep], z[keep], key + " (query, value)"
        moved = float(np.linalg.norm(r - z))
        apart = float(np.linalg.norm(g - r))
        if not np.isfinite(apart):
            ratio = math.nan
        else:
            ratio = apart / moved if moved > 0 else apart
        rep.check(category, what + " ||diff|| / ||moved||", ratio, tol)


def one_step_reference(config, init, step0):
    """One AdamW step (clip, decay, moments, EMA) in float64 from catlip's own step-0 gradient,
    so that the optimiser is checked apart from the forward/backward rounding."""
    model = vit_ref.build_model(config["model"], torch.float64)
    vit_ref.load_weights(model, init)
    for n, p in model.named_parameters():
        p.grad = torch.from_numpy(np.asarray(step0["grad." + n], dtype=np.float64)).clone()
    tr = vit_ref.Trainer(model, config["optim"], 1)
    lr = vit_ref.lr_at(0, config["optim"], 1)
    for g in tr.opt.param_groups:
        g["lr"] = lr
    norm = float(torch.nn.utils.clip_grad_norm_(tr.params, tr.grad_clip)) if tr.grad_clip > 0 else math.nan
    tr.opt.step()
    with torch.no_grad():
        for n, p in model.named_parameters():
            tr.ema[n].mul_(1.0 - tr.ema_m).add_(p, alpha=tr.ema_m)
    return {"lr": lr, "grad_norm": norm,
            "param": {n: p.detach().numpy() for n, p in model.named_parameters()},
            "ema": {n: e.numpy() for n, e in tr.ema.items()}}


def compare_one_step(rep, dump):
    """catlip's weights after one step against one float64 AdamW step on catlip's gradient.
    Each element is a few float32 operations from the same inputs, so the tolerance is a few
    float32 ulps of the tensor's largest value (2^-24 = 6e-8): TOL_STEP."""
    config, init, batch, step0, train = dump
    ref = one_step_reference(config, init, step0)
    if "grad_norms" in train and train["grad_norms"].size == 1 and not math.isnan(ref["grad_norm"]):
        got = float(train["grad_norms"][0])
        rep.check("1-step norm", f"({got:.9g} vs {ref['grad_norm']:.9g})",
                  scalar_ratio(got, ref["grad_norm"]), TOL_STEP)
    for prefix, refs in (("param.", ref["param"]), ("ema.", ref["ema"])):
        for name, r in refs.items():
            key = prefix + name
            if key not in train or tuple(train[key].shape) != tuple(r.shape):
                rep.fail("1-step weights", f"{key} missing or misshapen in the 1-step dump")
                continue
            rep.check("1-step weights", key, tensor_ratio(train[key], r), TOL_STEP)


def check_path_bf16(refdump, shape_name, isa, work, cache):
    """train.precision bf16 on one (shape, instruction set): catlip's bf16 run against PyTorch's
    bf16 autocast and against catlip's own fp32 run on the same weights and batch, at
    BF16_TOLS; its optimiser step alone at TOL_STEP. Returns two Reports, or None if skipped."""
    shape = SHAPES[shape_name]
    out = os.path.join(work, f"{shape_name}_{isa}_bf16")
    out32 = os.path.join(work, f"{shape_name}_{isa}_fp32")
    for d in (out, out32):
        shutil.rmtree(d, ignore_errors=True)
    p, secs, args = run_refdump(refdump, dict(shape, precision="bf16"), isa, out)
    if p.returncode != 0 and CPU_LACKS in (p.stderr + p.stdout):
        print(f"{shape_name}/{isa}/bf16: skipped ({(p.stderr.strip().splitlines() or [''])[-1]})")
        return None
    vs_torch, vs_fp32 = Report(f"{shape_name}/{isa}/bf16~autocast"), Report(f"{shape_name}/{isa}/bf16~fp32")
    dump = read_run(vs_torch, p, args, out)
    if dump is None:
        return vs_torch, vs_fp32
    config, init, batch = dump[0], dump[1], dump[2]
    try:
        if not check_config(vs_torch, config, shape, isa, init, batch):
            return vs_torch, vs_fp32
    except MALFORMED as e:
        vs_torch.fail("refdump", f"malformed config.json or batch in {out}: {e!r}")
        return vs_torch, vs_fp32
    if BF16_PATH == "avx512_bf16" and config.get("gemm_bf16") == "emulated":
        print(f"{shape_name}/{isa}/bf16: skipped (the CPU lacks AVX512-BF16, or "
              f"CATLIP_CPU_DISABLE masks it)")
        return None
    want_path = BF16_PATH
    if config.get("precision") != "bf16" or (want_path and config.get("gemm_bf16") != want_path):
        vs_torch.fail("config", f"config.json says precision {config.get('precision')}, "
                      f"gemm_bf16 {config.get('gemm_bf16')}; asked for bf16 {want_path or ''}")
        return vs_torch, vs_fp32
    t0 = time.time()
    key = dump_key(out) + ":autocast"
    if key not in cache:
        cache[key] = load_cached_reference(key)
    if cache[key] is None:
        try:
            cache[key] = autocast_reference(config, init, batch)
        except MALFORMED as e:
            vs_torch.fail("refdump", f"weights do not fit the model: {e}")
            return vs_torch, vs_fp32
        store_cached_reference(key, cache[key])
    t_ref = time.time() - t0
    try:
        compare(vs_torch, dump, cache[key], BF16_TOLS)
    except MALFORMED as e:
        vs_torch.fail("refdump", f"malformed dump in {out}: {e!r}")
    p, secs32, args = run_refdump(refdump, shape, isa, out32)
    dump32 = read_run(vs_fp32, p, args, out32)
    if dump32 is not None:
        if not same_inputs(out, out32):
            vs_fp32.fail("config", "the fp32 run made other weights or another batch than the bf16 run")
        else:
            try:
                compare(vs_fp32, dump, dump_as_reference(dump32, list(cache[key]["grads"])), BF16_TOLS)
                # And bf16 really rounded: its logits are further from fp32's than fp32
                # rounding (TOL_TENSOR) could take them — a run that quietly stayed fp32 fails.
                apart = tensor_ratio(dump[3]["logits"], dump32[3]["logits"])
                vs_fp32.check("bf16 rounding", f"logits differ from fp32 by {apart:.2e} (need > "
                              f"{TOL_TENSOR:.0e})", TOL_TENSOR / apart if apart > 0 else math.inf, 1.0)
            except MALFORMED as e:
                vs_fp32.fail("refdump", f"malformed dump in {out32}: {e!r}")
    # The optimiser alone: one step from catlip's own bf16 gradient, as in fp32.
    out1 = out + "_1step"
    shutil.rmtree(out1, ignore_errors=True)
    p, secs1, args = run_refdump(refdump, dict(shape, steps=1, precision="bf16"), isa, out1)
    dump1 = read_run(vs_torch, p, args, out1)
    if dump1 is not None:
        try:
            compare_one_step(vs_torch, dump1)
        except MALFORMED as e:
            vs_torch.fail("refdump", f"malformed dump in {out1}: {e!r}")
    print(f"{shape_name}/{isa}/bf16 ({config.get('gemm_bf16')}): refdump {secs:.1f} + {secs32:.1f} + "
          f"{secs1:.1f} s, torch autocast {t_ref:.1f} s, {vs_torch.failures + vs_fp32.failures} failure(s)")
    return vs_torch, vs_fp32


def check_path(refdump, shape_name, isa, work, cache):
    """Runs and checks one (shape, instruction set). Returns its Report, or None if skipped.
    cache maps dump_key -> float64 reference, shared by the paths of one shape."""
    shape = SHAPES[shape_name]
    label = f"{shape_name}/{isa}"
    out = os.path.join(work, f"{shape_name}_{isa}")
    shutil.rmtree(out, ignore_errors=True)
    p, secs, args = run_refdump(refdump, shape, isa, out)
    if p.returncode != 0 and CPU_LACKS in (p.stderr + p.stdout):
        print(f"{label}: skipped ({(p.stderr.strip().splitlines() or [''])[-1]})")
        return None
    rep = Report(label)
    dump = read_run(rep, p, args, out)
    if dump is None:
        return rep
    config, init, batch = dump[0], dump[1], dump[2]
    try:
        if not check_config(rep, config, shape, isa, init, batch):
            return rep
    except MALFORMED as e:
        rep.fail("refdump", f"malformed config.json or batch in {out}: {e!r}")
        return rep
    key = dump_key(out)
    t0 = time.time()
    if key not in cache:
        cache[key] = load_cached_reference(key)
    if cache[key] is None:
        try:
            cache[key] = reference(config, init, batch)
        except MALFORMED as e:
            rep.fail("refdump", f"weights do not fit the model: {e}")
            return rep
        store_cached_reference(key, cache[key])
    try:
        compare(rep, dump, cache[key])
    except MALFORMED as e:
        rep.fail("refdump", f"malformed dump in {out}: {e!r}")
        return rep
    t_ref = time.time() - t0

    # The same again with one step: the optimiser on its own, at a tight tolerance.
    out1 = out + "_1step"
    shutil.rmtree(out1, ignore_errors=True)
    p, secs1, args = run_refdump(refdump, dict(shape, steps=1), isa, out1)
    dump1 = read_run(rep, p, args, out1)
    if dump1 is not None:
        if not same_inputs(out, out1):
            rep.fail("1-step weights", "the 1-step run made other weights or another batch than the 10-step run")
        else:
            try:
                compare_one_step(rep, dump1)
            except MALFORMED as e:
                rep.fail("refdump", f"malformed dump in {out1}: {e!r}")
    print(f"{label}: refdump {secs:.1f} + {secs1:.1f} s, torch float64 {t_ref:.1f} s, "
          f"{rep.failures} failure(s)")
    return rep


def same_inputs(d1, d2):
    for name in ("init.safetensors", "batch.safetensors"):
        with open(os.path.join(d1, name), "rb") as f1, open(os.path.join(d2, name), "rb") as f2:
            if f1.read() != f2.read():
                return False
    return True


def read_run(rep, p, args, out):
    """The dump of a finished refdump run, or None after recording why not."""
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or p.stdout.strip().splitlines() or ["no output"])[-1]
        rep.fail("refdump", f"exit {p.returncode}: {last}  (ran: {' '.join(args)})")
        return None
    try:
        return load_dump(out)
    except (OSError, ValueError, KeyError) as e:
        rep.fail("refdump", f"cannot read its output in {out}: {e}")
        return None


def print_table(rows):
    print()
    width = max([7] + [len(isa) for _, isa, _ in rows])
    print(f"{'shape':<9} {'isa':<{width}} {'category':<15} {'n':>4} {'worst ratio':>12} {'tol':>6}  "
          f"{'status':<6} worst at")
    for shape, isa, rep in rows:
        if rep is None:
            print(f"{shape:<9} {isa:<{width}} {'-':<15} {'':>4} {'':>12} {'':>6}  skipped (CPU lacks it)")
            continue
        for cat, (ratio, what, tol, n) in rep.worst.items():
            status = "ok" if ratio < tol else "FAIL"
            print(f"{shape:<9} {isa:<{width}} {cat:<15} {n:>4} {ratio:>12.3e} {tol:>6.0e}  {status:<6} {what}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--refdump", default=os.environ.get("CATLIP_REFDUMP"),
                    help="path of catlip_refdump (default: $CATLIP_REFDUMP)")
    ap.add_argument("--shape", action="append", choices=sorted(SHAPES) + ["all"],
                    help="shape to check; repeatable (default: small)")
    ap.add_argument("--isa", action="append", choices=ISAS,
                    help="instruction-set path; repeatable (default: all three)")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="bf16: catlip's train.precision bf16 against PyTorch bf16 autocast and "
                         "against catlip fp32, at BF16_TOLS (default: fp32 against float64)")
    ap.add_argument("--bf16-path", choices=("avx512_bf16", "emulated"),
                    help="with --precision bf16: the bf16 matmul path that must run (default: "
                         "whichever the CPU picks)")
    ap.add_argument("--cache-dir", metavar="DIR",
                    help="keep float64 references here, keyed by inputs and reference code (default: none)")
    ap.add_argument("--keep", metavar="DIR", help="keep the dumps under DIR instead of a temp dir")
    ap.add_argument("--torch-threads", type=int, default=0,
                    help="torch.set_num_threads for the float64 run (default: torch's own)")
    a = ap.parse_args(argv)

    if not a.refdump:
        print("check_reference: error: give --refdump PATH or set CATLIP_REFDUMP", file=sys.stderr)
        return 2
    if not (os.path.isfile(a.refdump) and os.access(a.refdump, os.X_OK | os.R_OK)):
        print(f"check_reference: error: refdump '{a.refdump}' is not an executable file", file=sys.stderr)
        return 2
    shapes = a.shape or ["small"]
    if "all" in shapes:
        shapes = list(SHAPES)
    isas = a.isa or list(ISAS)
    global CACHE_DIR, BF16_PATH
    CACHE_DIR = a.cache_dir
    BF16_PATH = a.bf16_path
    if a.torch_threads > 0:
        torch.set_num_threads(a.torch_threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); refdump {a.refdump}")

    work = a.keep or tempfile.mkdtemp(prefix="catlip_ref_")
    os.makedirs(work, exist_ok=True)
    rows = []
    failures = 0
    try:
        for shape_name in shapes:
            cache = {}
            for isa in isas:
                if a.precision == "bf16":
                    reps = check_path_bf16(a.refdump, shape_name, isa, work, cache)
                    if reps is None:
                        rows.append((shape_name, isa + "/bf16", None))
                        continue
                    rows.append((shape_name, isa + "/bf16~autocast", reps[0]))
                    rows.append((shape_name, isa + "/bf16~fp32", reps[1]))
                    failures += reps[0].failures + reps[1].failures
                    continue
                rep = check_path(a.refdump, shape_name, isa, work, cache)
                rows.append((shape_name, isa, rep))
                failures += rep.failures if rep else 0
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    print_table(rows)
    checked = sum(1 for r in rows if r[2] is not None)
    if checked == 0:
        print(f"\nSKIPPED: no instruction-set path asked for ({', '.join(isas)}) runs on this CPU")
        return EXIT_SKIPPED
    print(f"\n{'FAIL' if failures else 'PASS'}: {failures} failure(s) over {checked} run(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
