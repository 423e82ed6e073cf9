#!/usr/bin/python3
"""Transfer Init as CatLIP uses it: fine-tune a pre-trained checkpoint on labelled categories.

Splits the quickstart's labelled zero-shot images (zeroshot.tsv: path, class) into train (2 of
every 3 lines) and test (every 3rd line), then fine-tunes the same checkpoint for the same
steps with three heads:
  (a) random         model.head_init=random
  (b) first senses   catlip transfer --senses first --pool none --calibrate none (the old rule)
  (c) this issue's   catlip transfer with the defaults (vocabulary senses, hyponym pooling,
                     standardised on the validation split)
and reports test top-1 and mean per-class accuracy after --early steps and at the end (plus the
heads before any step, i.e. zero-shot on the test split). Single process, a few minutes.

    bench/transfer_finetune.py --catlip build/catlip --data /tmp/qs_full/data \
        --checkpoint RUN/checkpoints/ckpt-NNNNNNNNNN.pb --out /tmp/qs_ft [--steps 120 --early 10]
"""
import argparse
import glob
import json
import os
import struct
import subprocess

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--catlip", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--checkpoint", required=True, help="pre-trained checkpoint file (.pb)")
ap.add_argument("--out", required=True)
ap.add_argument("--steps", type=int, default=120)
ap.add_argument("--early", type=int, default=10)
ap.add_argument("--lr", type=float, default=5e-4)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--model", default="model.name=vit_tiny,model.image_size=64,model.patch_size=16,model.depth=4")
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
run = lambda *cmd, **kw: subprocess.run([str(c) for c in cmd], check=True, **kw)
quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(a.data, "zeroshot.tsv"))]
split = {"train": [r for i, r in enumerate(rows) if i % 3], "test": [r for i, r in enumerate(rows) if not i % 3]}
for name, rs in split.items():
    tsv = os.path.join(a.out, name + ".tsv")
    with open(tsv, "w") as f:
        for p, c in rs:
            f.write("%s\t%s\n" % (os.path.join(a.data, p), c))
    if not os.path.isdir(os.path.join(a.out, "shards-" + name)):
        run(a.catlip, "shards", "make", "--tsv", tsv, "--cls", "-o", os.path.join(a.out, "shards-" + name),
            "--samples-per-shard", "1000", "--max-side", "96", **quiet)
test_list = os.path.join(a.out, "test.list")
with open(test_list, "w") as f:
    for p, _ in split["test"]:
        f.write(os.path.join(a.data, p) + "\n")
truth = np.array([int(c) for _, c in split["test"]])
classes = os.path.join(a.data, "classes.txt")
K = sum(1 for l in open(classes) if l.strip() and not l.startswith("#"))


def safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                             dtype=np.float32).reshape(v["shape"]) for k, v in h.items() if k != "__metadata__"}


def accuracy(ckpt, head=None):
    """Test top-1 and mean per-class of a checkpoint with its own head (or a head file)."""
    feats = os.path.join(a.out, "feat.npy")
    # embed skips nothing: an unreadable image fails the run (the quickstart's are all fine)
    run(a.catlip, "embed", "--checkpoint", ckpt, "-o", feats, "--threads", a.threads, "--list", test_list, **quiet)
    f = np.load(feats)
    if head is None:
        st = os.path.join(a.out, "ft.safetensors")
        run(a.catlip, "export", "--checkpoint", ckpt, "-o", st, **quiet)
        t = safetensors(st)
    else:
        t = safetensors(head)
    pred = (f @ t["head.weight"].T + t["head.bias"]).argmax(1)
    per = [float((pred[truth == k] == k).mean()) for k in range(K) if (truth == k).any()]
    return float((pred == truth).mean()), float(np.mean(per)), per


heads = {
    "a_random": None,
    "b_first_senses": ["--senses", "first", "--pool", "none", "--calibrate", "none"],
    "c_vocab_pool_std": ["--calibrate-on", os.path.join(a.data, "shards-val", "*.tar")],
}
results = {}
for name, opts in heads.items():
    cfg = ["task=classify", "data.train=" + os.path.join(a.out, "shards-train", "*.tar"), "data.vocab=",
           "model.num_classes=%d" % K, "model.init_from=" + a.checkpoint, "train.steps=%d" % a.steps,
           "train.global_batch=%d" % a.batch, "train.threads=%d" % a.threads, "optim.lr=%g" % a.lr,
           "optim.warmup_steps=%d" % min(10, a.steps // 10), "checkpoint.every_steps=%d" % a.early,
           "checkpoint.keep=1000", "log.every_steps=%d" % a.early, "data.decode_threads=1"] + a.model.split(",")
    res = {}
    if opts is not None:
        head = os.path.join(a.out, name + ".safetensors")
        run(a.catlip, "transfer", "--checkpoint", a.checkpoint, "--classes", classes, "-o", head, *opts, **quiet)
        cfg += ["model.head_init=transfer", "model.head_file=" + head]
        res["step_0"] = accuracy(a.checkpoint, head)
    rd = os.path.join(a.out, "run_" + name)
    subprocess.run(["rm", "-rf", rd])
    args = [a.catlip, "train", "--set", "run_dir=" + rd]
    for c in cfg:
        args += ["--set", c]
    with open(os.path.join(a.out, name + ".log"), "w") as log:
        run(*args, stdout=log, stderr=subprocess.STDOUT)
    ckpts = sorted(glob.glob(os.path.join(rd, "checkpoints", "ckpt-*.pb")))
    by_step = {int(os.path.basename(c)[5:15]): c for c in ckpts}
    for step in (a.early, a.steps):
        if step in by_step:
            res["step_%d" % step] = accuracy(by_step[step])
    results[name] = res
    print(name, {k: "top-1 %.4f mean/class %.4f" % v[:2] for k, v in res.items()}, flush=True)

print("\n%-18s %18s %18s %18s" % ("head", "step 0", "step %d" % a.early, "step %d" % a.steps))
for name, res in results.items():
    cell = lambda k: "%.3f / %.3f" % res[k][:2] if k in res else "-"
    print("%-18s %18s %18s %18s" % (name, cell("step_0"), cell("step_%d" % a.early), cell("step_%d" % a.steps)))
print("(cells: test top-1 / mean per-class; %d train, %d test images)" % (len(split["train"]), len(split["test"])))
with open(os.path.join(a.out, "finetune.json"), "w") as f:
    json.dump({"steps": a.steps, "early": a.early, "lr": a.lr, "batch": a.batch, "results": results}, f, indent=2)
