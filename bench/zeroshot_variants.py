#!/usr/bin/python3
"""Every zero-shot head variant on the quickstart's categories and on the sub-folder set, one table.

Runs `catlip eval zeroshot` with each scoring variant (score linear|noisy-or x calibrate, pooling,
EMA weights) on two category sets built from the same quickstart data: the 11 top-level
categories (DATA/classes.txt, DATA/shards-zeroshot) and the sub-folder set that
bench/zeroshot_subfolders.py writes (SUB/classes.txt, SUB/shards-zeroshot; run it first).
Reference images for center/standardize: the validation split (DATA/shards-val). Prints top-1,
mean per-class accuracy and the classes never right, per set; writes everything as JSON.

For scale, the last rows are not zero-shot: a supervised linear probe (softmax regression on the
same features, trained on 2 of every 3 labelled images and tested on the third, all three folds;
plain, and with class-balanced weights), what a linear head can get from these features with
the labels in hand.

    bench/zeroshot_variants.py --catlip build/catlip --data runs/openclipart/data \\
        --checkpoint runs/openclipart/run --sub /tmp/qs_sub [--json variants.json]
"""
import argparse
import json
import os
import subprocess
import tempfile

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--catlip", required=True)
ap.add_argument("--data", required=True, help="the quickstart's data directory")
ap.add_argument("--checkpoint", required=True)
ap.add_argument("--sub", required=True, help="bench/zeroshot_subfolders.py's --out directory")
ap.add_argument("--json")
a = ap.parse_args()

first = ["--senses", "first", "--pool", "none", "--calibrate", "none", "--score", "linear"]
VARIANTS = [("first sense, linear, none (the original rule)", first, False)]
for score in ("linear", "noisy-or"):
    for cal in ("none", "prior", "center", "standardize"):
        VARIANTS.append((f"vocab, hyponyms, {score}, {cal}", ["--score", score, "--calibrate", cal], False))
for score, cal in (("noisy-or", "prior"), ("noisy-or", "center")):
    VARIANTS.append((f"vocab, pool none, {score}, {cal}",
                     ["--pool", "none", "--score", score, "--calibrate", cal], False))
for score, cal in (("linear", "standardize"), ("noisy-or", "center"), ("noisy-or", "prior")):
    VARIANTS.append((f"EMA weights: vocab, hyponyms, {score}, {cal}",
                     ["--score", score, "--calibrate", cal], True))
SETS = [("quickstart (11)", os.path.join(a.data, "classes.txt"), os.path.join(a.data, "shards-zeroshot")),
        ("sub-folders", os.path.join(a.sub, "classes.txt"), os.path.join(a.sub, "shards-zeroshot"))]
ref = os.path.join(a.data, "shards-val", "*.tar")

results = []
with tempfile.TemporaryDirectory() as tmp:
    for name, opts, ema in VARIANTS:
        row = {"variant": name, "options": opts + (["--ema"] if ema else []), "sets": {}}
        for set_name, classes, shards in SETS:
            out = os.path.join(tmp, "zs.json")
            subprocess.run([a.catlip, "eval", "zeroshot", "--checkpoint", a.checkpoint, "--classes", classes,
                            "--data", os.path.join(shards, "*.tar"), "--calibrate-on", ref, "--json", out,
                            "--quiet"] + opts + (["--ema"] if ema else []),
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            j = json.load(open(out))
            row["sets"][set_name] = {"top1": j["top1"], "mean_per_class": j["mean_per_class"],
                                     "zero": sum(1 for x in j["per_class"] if x == 0),
                                     "classes": j["classes"], "images": j["images"],
                                     "per_class": j["per_class"], "class_names": j["class_names"]}
        results.append(row)
        cells = ["%.3f / %.3f / %d" % (s["top1"], s["mean_per_class"], s["zero"]) for s in row["sets"].values()]
        print("%-52s %22s %22s" % (name, *cells), flush=True)


def probe(features, truth, balanced, l2=1e-4, iters=2000, lr=0.5):
    """3-fold softmax regression on standardised features: top-1, mean per-class, never right."""
    K = int(truth.max()) + 1
    pred = np.zeros(len(truth), int)
    for fold in range(3):
        test = np.arange(len(truth)) % 3 == fold
        mu, sd = features[~test].mean(0), features[~test].std(0) + 1e-6
        x = (features - mu) / sd
        xt, y = x[~test], np.eye(K)[truth[~test]]
        per_class = 1.0 / np.maximum(y.sum(0), 1) if balanced else np.ones(K)
        w_sample = (y * per_class).sum(1)
        w_sample /= w_sample.sum()
        w, b = np.zeros((x.shape[1], K)), np.zeros(K)
        for _ in range(iters):
            z = xt @ w + b
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            g = (p - y) * w_sample[:, None]
            w -= lr * (xt.T @ g + l2 * w)
            b -= lr * g.sum(0)
        pred[test] = (x[test] @ w + b).argmax(1)
    per = [float((pred[truth == k] == k).mean()) for k in range(K) if (truth == k).any()]
    return {"top1": float((pred == truth).mean()), "mean_per_class": float(np.mean(per)),
            "zero": sum(1 for v in per if v == 0)}


with tempfile.TemporaryDirectory() as tmp:
    for balanced in (False, True):
        row = {"variant": "supervised linear probe, 3-fold%s (not zero-shot)" % (", balanced" if balanced else ""),
               "sets": {}}
        for (set_name, _, _), tsv in zip(SETS, (os.path.join(a.data, "zeroshot.tsv"), os.path.join(a.sub, "zeroshot.tsv"))):
            lines = [l.rstrip("\n").split("\t") for l in open(tsv)]
            paths = [p if os.path.isabs(p) else os.path.join(a.data, p) for p, _ in lines]
            lst, feats = os.path.join(tmp, "images.list"), os.path.join(tmp, "features.npy")
            with open(lst, "w") as f:
                f.write("\n".join(paths) + "\n")
            subprocess.run([a.catlip, "embed", "--checkpoint", a.checkpoint, "--list", lst, "-o", feats],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            row["sets"][set_name] = probe(np.load(feats), np.array([int(c) for _, c in lines]), balanced)
        results.append(row)

print("\n| senses, pool, score, calibrate | %s |" % " | ".join(
    "%s: top-1 / mean per-class / never right (%d classes, %d images)" % (n, s["classes"], s["images"])
    for n, s in results[0]["sets"].items()))
print("|---|" + "---|" * len(SETS))
for r in results:
    print("| %s | %s |" % (r["variant"], " | ".join("%.3f / %.3f / %d" % (s["top1"], s["mean_per_class"], s["zero"])
                                                  for s in r["sets"].values())))
if a.json:
    with open(a.json, "w") as f:
        json.dump(results, f, indent=1)
