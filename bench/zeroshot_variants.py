#!/usr/bin/python3
"""Every zero-shot head variant on the quickstart's categories and on the sub-folder set, one table.

Runs `catlip eval zeroshot` with each scoring variant (score linear|noisy-or x calibrate, pooling,
EMA weights) on two category sets built from the same quickstart data: the 11 top-level
categories (DATA/classes.txt, DATA/shards-zeroshot) and the sub-folder set that
bench/zeroshot_subfolders.py writes (SUB/classes.txt, SUB/shards-zeroshot; run it first).
Reference images for center/standardize: the validation split (DATA/shards-val). Prints top-1,
mean per-class accuracy and the classes never right, per set; writes everything as JSON.

    bench/zeroshot_variants.py --catlip build/catlip --data runs/openclipart/data \\
        --checkpoint runs/openclipart/run --sub /tmp/qs_sub [--json variants.json]
"""
import argparse
import json
import os
import subprocess
import tempfile

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
