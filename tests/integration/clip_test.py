#!/usr/bin/env python3
"""model.objective clip under mpirun: a tiny CLIP model (a 2-block ViT at 32 px, text_tiny,
32-wide embeddings) on captioned shards from make_dataset.py, with a tokenizer built from them.

  clip_test.py --catlip build/catlip learns|workers|kill|elastic|errors

learns   the contrastive loss falls on 1 and on 2 workers
workers  1, 2 and 3 workers at the same global batch follow the same losses (the loss is the
         whole batch's at any worker count; only float summation order differs: within 1e-5
         relative), a process without a launcher equals mpirun with 1 worker bit for bit, and
         every worker ends with the same weights
kill     SIGKILL mid-run, resume --resume auto, repeatedly: the end is bit-identical to an
         uninterrupted run
elastic  a 2-worker checkpoint continued on 1 and 3 workers gives the 2-worker losses (same
         samples, same order)
accum    train.micro_batch (GradCache's two passes): 1 and 2 workers in micro-batches of 8 and
         5 follow the unsplit run's losses within 1e-5 relative; a micro-batched run resumed
         from its step-10 checkpoint ends bit for bit where the uninterrupted one does
errors   bad settings and a resume with another tokenizer: one line, non-zero exit

The runs and helpers are runtime_test.py's.
"""
import json
import os
import random
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runtime_test as rt  # noqa: E402
from runtime_test import check, digests, losses, run  # noqa: E402

CLIP = ["model.objective=clip", "model.text=text_tiny", "model.embed_dim=32",
        "model.context_length=16", "optim.lr=0.001", "train.global_batch=24"]


def make_data(catlip, tmp):
    """Shards of 240 captioned images and a tokenizer built from them; the settings to use."""
    here = os.path.dirname(os.path.abspath(__file__))
    ds = os.path.join(tmp, "ds")
    subprocess.run([sys.executable, os.path.join(here, "make_dataset.py"), ds, "--count", "240"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([catlip, "shards", "make", "--tsv", os.path.join(ds, "list.tsv"), "-o",
                    os.path.join(ds, "shards"), "--samples-per-shard", "100"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pattern = os.path.join(ds, "shards", "{00000..00002}.tar")
    tok = os.path.join(ds, "tokenizer.tsv")
    subprocess.run([catlip, "tokenizer", "build", "--data", pattern, "-o", tok, "--quiet"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return CLIP + [f"data.train={pattern}", f"data.tokenizer={tok}"], tok


def worst_rel(a, b):
    return max(abs(a[s] - b[s]) / abs(b[s]) for s in b)


def test_learns(catlip, tmp):
    data, _ = make_data(catlip, tmp)
    for n in (1, 2):
        d = os.path.join(tmp, f"learn{n}")
        rc, log = run(catlip, n, d, data + ["train.steps=60", "checkpoint.every_steps=0"])
        check(rc == 0, f"{n} worker(s): a CLIP run completes (exit {rc})")
        ls = losses(d)
        first = sum(ls[s] for s in (1, 2, 3)) / 3
        last = sum(ls[s] for s in range(56, 61)) / 5
        # ln 24 = 3.18 is chance for a batch of 24; the collection has 12 objects, so captions
        # repeat within a batch and the loss cannot reach 0.
        check(last < 0.75 * first and last < 3.0,
              f"{n} worker(s): contrastive loss falls ({first:.3f} -> {last:.3f})")
        check("objective clip" in log, f"{n} worker(s): the run log names the objective")
        rec = json.loads(open(os.path.join(d, "metrics.jsonl")).read().splitlines()[-1])
        missing = [k for k in ("step", "epoch", "loss", "lr", "grad_norm", "images_per_second",
                               "samples", "time") if k not in rec]
        check(not missing, f"{n} worker(s): metrics.jsonl records every field (missing {missing})")
    # Export: both towers under OpenCLIP's names (timm image tower: visual.trunk.*).
    out = os.path.join(tmp, "clip.safetensors")
    p = subprocess.run([catlip, "export", "--checkpoint", os.path.join(tmp, "learn1"), "-o", out],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(p.returncode == 0, f"export of a CLIP checkpoint ({p.stdout.strip()})")
    if p.returncode == 0:
        with open(out, "rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        want = {"visual.trunk.cls_token": [1, 1, 48], "visual.trunk.blocks.1.mlp.fc2.bias": [48],
                "visual.head.proj.weight": [32, 48], "token_embedding.weight": None,
                "positional_embedding": [16, 64], "transformer.resblocks.1.attn.in_proj_weight":
                [192, 64], "ln_final.weight": [64], "text_projection.weight": [32, 64],
                "logit_scale": []}
        bad = [k for k, v in want.items() if k not in header or v not in (None, header[k]["shape"])]
        check(not bad and "head.weight" not in header and "visual.trunk.head.bias" not in header,
              f"exported names and shapes are OpenCLIP's (wrong or missing: {bad})")
        check(header["__metadata__"]["format"] == "catlip-clip", "export metadata says catlip-clip")
    # A CLIP checkpoint's image tower initialises a CatLIP run (its projection is no head).
    rc, log = run(catlip, 0, os.path.join(tmp, "from_clip"),
                  data + ["model.objective=catlip", "data.train=synthetic", "model.num_classes=32",
                          "train.steps=2", "model.init_from=" + os.path.join(tmp, "learn1",
                          "checkpoints", "ckpt-0000000060.pb")])
    check(rc == 0 and "new head" in log, f"model.init_from a CLIP checkpoint starts CatLIP (exit {rc})")
    p = subprocess.run([catlip, "predict", "--checkpoint", os.path.join(tmp, "learn1"), out],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(p.returncode != 0 and p.stdout.count("CLIP checkpoint") == 1,
          "a command that needs a CatLIP head refuses a CLIP checkpoint in one line")


def test_workers(catlip, tmp):
    data, _ = make_data(catlip, tmp)
    steps = data + ["train.steps=20", "checkpoint.every_steps=0"]
    results = {}
    for n in (1, 2, 3):
        d = os.path.join(tmp, f"w{n}")
        rc, log = run(catlip, n, d, steps)
        dg = digests(log)
        check(rc == 0 and len(dg) == n, f"{n} worker(s): completes, every worker reports")
        check(len({x[2] for x in dg}) == 1, f"{n} worker(s): all workers hold identical weights")
        results[n] = losses(d)
    check(sorted(results[1]) == list(range(1, 21)), "1 worker logged 20 steps")
    for n in (2, 3):
        w = worst_rel(results[n], results[1])
        check(sorted(results[n]) == sorted(results[1]) and w < 1e-5,
              f"{n} workers: same whole-batch losses as 1 worker within 1e-5 relative ({w:.2e})")
    rc, log = run(catlip, 0, os.path.join(tmp, "single"), steps)
    s = losses(os.path.join(tmp, "single"))
    check(rc == 0 and s == results[1], "a process without a launcher equals mpirun with 1 worker")


def test_kill(catlip, tmp):
    data, _ = make_data(catlip, tmp)
    extra = data + ["train.steps=150", "checkpoint.every_steps=5", "checkpoint.keep=2"]
    want = rt.reference_digest(catlip, tmp, 2, extra, "kill_ref")
    kills, _, final, out = rt.kill_until_done(catlip, 2, os.path.join(tmp, "kill"), extra,
                                              random.Random(5), 4, (1.5, 3.0))
    check("resuming from" in out, "the last attempt resumed from a checkpoint")
    check(kills >= 3, f"killed with SIGKILL {kills} times")
    check(final == want, f"resumed CLIP run ends bit-identical to the uninterrupted one "
                         f"({final} vs {want})")


def test_elastic(catlip, tmp):
    data, _ = make_data(catlip, tmp)
    extra = data + ["train.steps=24", "checkpoint.every_steps=12"]
    ref = os.path.join(tmp, "el_ref")
    rc, _ = run(catlip, 2, ref, extra)
    check(rc == 0, "2-worker reference run completes")
    ck = os.path.join(ref, "checkpoints", "ckpt-0000000012.pb")
    for n in (1, 3):
        d = os.path.join(tmp, f"el{n}")
        os.makedirs(d)
        rc, log = run(catlip, n, d, extra, ck)
        ls = losses(d)
        check(rc == 0 and sorted(ls) == list(range(13, 25)),
              f"resume on {n} worker(s) from a 2-worker checkpoint: steps 13..24")
        w = worst_rel(ls, {s: losses(ref)[s] for s in range(13, 25)}) if ls else 1
        check(w < 1e-5, f"resume on {n}: same samples, same losses as 2 workers ({w:.2e})")


def test_accum(catlip, tmp):
    data, _ = make_data(catlip, tmp)
    steps = data + ["train.steps=20", "checkpoint.every_steps=10"]
    ref = os.path.join(tmp, "acc_ref")
    rc, log = run(catlip, 1, ref, steps)
    check(rc == 0, "unsplit reference run completes")
    want = losses(ref)
    logs = {}
    for n, micro in ((1, 8), (1, 5), (2, 5)):
        d = os.path.join(tmp, f"acc{n}_{micro}")
        rc, log = run(catlip, n, d, steps + [f"train.micro_batch={micro}"])
        ls = losses(d)
        logs[n, micro] = log
        check(rc == 0 and "gradient accumulation" in log and sorted(ls) == sorted(want),
              f"{n} worker(s), micro-batches of {micro}: completes in micro-batches (exit {rc})")
        w = worst_rel(ls, want) if ls else 1
        check(w < 1e-5, f"{n} worker(s), micro-batches of {micro}: the unsplit run's losses "
                        f"within 1e-5 relative ({w:.2e})")
    # Resume: the micro-batched run from its own step-10 checkpoint, bit for bit.
    first = os.path.join(tmp, "acc2_5")
    d = os.path.join(tmp, "acc_resume")
    os.makedirs(d)
    rc, log = run(catlip, 2, d, steps + ["train.micro_batch=5"],
                  os.path.join(first, "checkpoints", "ckpt-0000000010.pb"))
    check(rc == 0 and digests(log) and digests(log) == digests(logs[2, 5]),
          "a micro-batched CLIP run resumed at step 10 ends bit-identical to an uninterrupted one")


def test_errors(catlip, tmp):
    data, tok = make_data(catlip, tmp)

    def one_line(extra, needle, what, workers=0, resume=None, d="e"):
        rc, out = run(catlip, workers, os.path.join(tmp, d), extra, resume)
        lines = [l for l in out.splitlines() if needle in l]
        check(rc != 0 and len(lines) == 1, f"{what}: one line naming {needle!r} (exit {rc})")

    one_line(data + ["model.objective=clipp"], "model.objective", "unknown objective")
    one_line(data + ["model.text=text_huge"], "model.text", "unknown text tower")
    one_line(data + ["data.tokenizer="], "data.tokenizer", "clip without a tokenizer")
    one_line(data + ["data.tokenizer=/nonexistent/tok.tsv"], "/nonexistent/tok.tsv",
             "a missing tokenizer file", workers=2)
    one_line(data + ["data.train=synthetic"], "captioned shards", "clip on synthetic data")
    one_line(data + ["model.text_heads=5"], "divisible", "text width not divisible by heads")
    # A run resumed with another tokenizer (same size, other order: only the hash differs).
    d = "tokrun"
    rc, _ = run(catlip, 0, os.path.join(tmp, d), data + ["train.steps=2"])
    check(rc == 0, "a 2-step CLIP run for the resume checks")
    rows = open(tok).read().splitlines()
    rows[1], rows[2] = rows[2], rows[1]
    other = os.path.join(tmp, "tokenizer_swapped.tsv")
    open(other, "w").write("\n".join(rows) + "\n")
    one_line(data + ["train.steps=4", f"data.tokenizer={other}"], "different tokenizer",
             "resume with a reordered tokenizer", resume="auto", d=d)
    # The same widths (32 classes = 32-wide embeddings): only the objective differs.
    one_line(data + ["train.steps=4", "model.objective=catlip", "data.train=synthetic",
                     "model.num_classes=32"],
             "different model", "resume a CLIP checkpoint as a CatLIP run", resume="auto", d=d)


if __name__ == "__main__":
    rt.main_for(globals(), "catlip_clip_")
