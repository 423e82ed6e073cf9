#!/usr/bin/env python3
"""The sharded optimizer under mpirun (train.shard_optimizer, ZeRO stage 1): it trains the
same numbers as the unsharded optimizer, repeats bit for bit, survives SIGKILL, and its
checkpoints move between sharded and unsharded runs and worker counts.

  shard_test.py --catlip build/catlip equivalence|kill|resume|clip

What is promised (worker/optim_shard.h, README): at 2 workers sharded equals unsharded bit for
bit (each gradient is a sum of two terms, which has one result in any order; the gradient
norm's block sums are folded in the same order; AdamW and EMA are elementwise). At 3 or more
workers the reduce-scatter adds the terms in another order than the allreduce (our ring,
train.collectives ring: each sum starts at the rank after the slice's owner, where the
allreduce's even chunks start theirs at the chunk's index; the slices are not the chunks):
losses within 1e-6 relative, reported.

The runs and helpers are runtime_test.py's and comm_test.py's (small model, synthetic data).
"""
import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import comm_test as ct  # noqa: E402
import runtime_test as rt  # noqa: E402
from runtime_test import check, digests, losses  # noqa: E402

SHARD = ["train.shard_optimizer=true"]
RESUME_STEPS = ["train.steps=24", "checkpoint.every_steps=12"]
TOLERANCE = 1e-6  # 3+ workers: the order of the gradient sums may differ (docstring)


def grad_norms(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return {r["step"]: r["grad_norm"] for r in map(json.loads, f)}


def test_equivalence(catlip, tmp):
    for workers in (2, 3):
        plain, plain_digest, _ = ct.trained(catlip, tmp, f"plain_{workers}w", workers, [])
        name = f"sharded_{workers}w"
        sharded, digest, log = ct.trained(catlip, tmp, name, workers, SHARD)
        check("fp32 ring, flat reduce-scatter (sharded optimizer)" in log, f"{name}: logs the reduce-scatter")
        check(log.count("sharded optimizer: parameters") == workers,
              f"{name}: every worker reports its slice")
        w = ct.worst_rel(sharded, plain)
        same = digest == plain_digest
        print(f"      {name}: worst relative loss difference to unsharded {w:.2e}, "
              f"final weights {'identical' if same else 'different'} ({digest} vs {plain_digest})")
        norms_same = grad_norms(os.path.join(tmp, name)) == grad_norms(os.path.join(tmp, f"plain_{workers}w"))
        if workers == 2:
            check(w == 0.0 and same and norms_same,
                  f"{name}: bit-identical to unsharded (losses, grad norms, final weights)")
        else:
            check(w < TOLERANCE, f"{name}: losses within {TOLERANCE} relative of unsharded ({w:.2e})")
        _, again, _ = ct.trained(catlip, tmp, name + "_again", workers, SHARD)
        check(again == digest, f"{name} twice: identical weights ({again} vs {digest})")
        if workers == 2:
            _, blocking, _ = ct.trained(catlip, tmp, name + "_no_overlap", workers,
                                        SHARD + ["train.overlap=false"])
            check(blocking == digest, f"{name} without overlap: identical weights")
    # bf16 on the wire: the ring's reduce-scatter half; held to comm_test's bf16 tolerance.
    fp32 = losses(os.path.join(tmp, "plain_2w"))
    for workers in (2, 3):
        name = f"sharded_bf16_{workers}w"
        ls, digest, log = ct.trained(catlip, tmp, name, workers, SHARD + ["train.grad_comm=bf16"])
        check("bf16 ring, flat reduce-scatter (sharded optimizer)" in log, f"{name}: logs the bf16 ring")
        w = ct.worst_rel(ls, fp32)
        print(f"      {name}: worst relative loss difference to 2 workers fp32 unsharded {w:.2e}")
        check(w < 1e-4, f"{name}: losses within 1e-4 relative of fp32 communication ({w:.2e})")
        _, again, _ = ct.trained(catlip, tmp, name + "_again", workers,
                                 SHARD + ["train.grad_comm=bf16"])
        check(again == digest, f"{name} twice: identical weights")
    rc, out = ct.run(catlip, 0, os.path.join(tmp, "bad"), ["train.shard_optimizer=maybe"])
    check(rc != 0 and "train.shard_optimizer must be true or false" in out and
          len(out.strip().splitlines()) == 1, "train.shard_optimizer=maybe is a one-line error")
    rc, out = ct.run(catlip, 0, os.path.join(tmp, "bad2"), SHARD + ["train.allreduce=hierarchical"])
    check(rc != 0 and "needs train.allreduce flat or auto" in out and
          len(out.strip().splitlines()) == 1, "sharded with hierarchical allreduce is a one-line error")


def test_kill(catlip, tmp):
    extra = ["train.steps=400", "checkpoint.every_steps=5", "checkpoint.keep=2",
             "model.num_classes=4000"] + SHARD
    rt.kill_and_compare(catlip, tmp, "kill_sharded", extra)


def checkpoint_at(catlip, tmp, name, workers, extra, step):
    """A run of 24 steps checkpointing every 12; returns (run dir, its step checkpoint)."""
    d = os.path.join(tmp, name)
    rc, _ = rt.run(catlip, workers, d, RESUME_STEPS + extra)
    check(rc == 0, f"{name}: completes")
    return d, os.path.join(d, "checkpoints", f"ckpt-{step:010d}.pb")


def resumed(catlip, tmp, name, ckpt, workers, extra):
    """Continues from ckpt to step 24; returns (losses of steps 13..24, final digest)."""
    d = os.path.join(tmp, name)
    rc, log = rt.run(catlip, workers, d, RESUME_STEPS + extra, ckpt)
    dg = digests(log)
    ls = losses(d) if rc == 0 else {}
    check(rc == 0 and sorted(ls) == list(range(13, 25)) and len({x[2] for x in dg}) == 1,
          f"{name}: resumes at step 13, ends at 24 with identical workers")
    return ls, dg[0][2] if dg else None


def ema_tensors(catlip, tmp, ckpt, name):
    """The EMA weights of a checkpoint as bytes (catlip export --ema, the safetensors data
    after its header, whose metadata names the file)."""
    out = os.path.join(tmp, name + ".safetensors")
    p = subprocess.run([catlip, "export", "--checkpoint", ckpt, "-o", out, "--ema"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(p.returncode == 0, f"export --ema of {name}")
    if p.returncode != 0:
        return None
    with open(out, "rb") as f:
        raw = f.read()
    return raw[8 + struct.unpack("<Q", raw[:8])[0]:]


def test_resume(catlip, tmp):
    # A sharded checkpoint is complete: at 2 workers it is the unsharded one (the EMA, gathered
    # from the slices, included), so continuing it unsharded on 3 workers gives the same bits
    # as continuing the unsharded one (the moments, gathered too, included).
    _, sharded2 = checkpoint_at(catlip, tmp, "s2", 2, SHARD, 12)
    _, plain2 = checkpoint_at(catlip, tmp, "p2", 2, [], 12)
    ema = ema_tensors(catlip, tmp, sharded2, "s2_ema")
    check(ema is not None and ema == ema_tensors(catlip, tmp, plain2, "p2_ema"),
          "sharded 2 workers: the checkpoint's EMA equals the unsharded one, bit for bit")
    want, want_digest = resumed(catlip, tmp, "p2_to_p3", plain2, 3, [])
    got, got_digest = resumed(catlip, tmp, "s2_to_p3", sharded2, 3, [])
    check(got == want and got_digest == want_digest,
          "sharded 2 workers -> unsharded 3 workers: the unsharded checkpoint's losses and "
          "weights, bit for bit")
    # Unsharded checkpoint continued sharded, on another worker count.
    got, _ = resumed(catlip, tmp, "p2_to_s3", plain2, 3, SHARD)
    w = ct.worst_rel(got, want)
    check(w < TOLERANCE, f"unsharded 2 workers -> sharded 3 workers: losses within {TOLERANCE} "
          f"of unsharded 3 workers ({w:.2e})")
    # 3 -> 2 workers, sharded -> unsharded and sharded -> sharded: the 2-worker run's samples,
    # so its losses (within the elastic test's 1e-3: another worker count sums in another
    # order) and, between the two, the same bits (sharded = unsharded at 2 workers).
    d3, sharded3 = checkpoint_at(catlip, tmp, "s3", 3, SHARD, 12)
    ref = losses(os.path.join(tmp, "p2"))
    to_plain, plain_digest = resumed(catlip, tmp, "s3_to_p2", sharded3, 2, [])
    to_sharded, sharded_digest = resumed(catlip, tmp, "s3_to_s2", sharded3, 2, SHARD)
    for name, ls in (("sharded 3 -> unsharded 2", to_plain), ("sharded 3 -> sharded 2", to_sharded)):
        w = max(abs(ls[s] - ref[s]) / abs(ref[s]) for s in ls) if ls else float("inf")
        check(w < 1e-3, f"{name} workers: the 2-worker run's losses (worst rel {w:.2e})")
    check(to_plain == to_sharded and plain_digest == sharded_digest,
          "sharded 3 -> 2 workers: sharded and unsharded continuations identical")
    # The full run of the sharded 3 workers is the same as its own resume on 3 (complete state).
    again, _ = resumed(catlip, tmp, "s3_to_s3", sharded3, 3, SHARD)
    full = losses(d3)
    check(all(again[s] == full[s] for s in again) and again,
          "sharded 3 workers resumed on 3: the uninterrupted run's losses, bit for bit")


def test_clip(catlip, tmp):
    # model.objective clip: the same reduce-scatter and slices over both towers' parameters.
    import clip_test
    data, _ = clip_test.make_data(catlip, tmp)
    steps = data + ["train.steps=10", "checkpoint.every_steps=0"]
    got = {}
    for name, extra in (("clip_plain", []), ("clip_sharded", SHARD)):
        d = os.path.join(tmp, name)
        rc, log = rt.run(catlip, 2, d, steps + extra)
        dg = digests(log)
        check(rc == 0 and len({x[2] for x in dg}) == 1 and len(dg) == 2,
              f"{name}: 2 workers complete with identical weights")
        got[name] = (losses(d) if rc == 0 else None, dg[0][2] if dg else None)
    check(got["clip_sharded"] == got["clip_plain"] and got["clip_plain"][0],
          "CLIP sharded at 2 workers: the unsharded losses and weights, bit for bit")


if __name__ == "__main__":
    rt.main_for(globals(), "catlip_shard_")
