#!/usr/bin/python3
"""A second zero-shot category set from the quickstart data: the openclipart sub-folders.

The quickstart's 11 categories are the top-level openclipart folders. This makes a finer set
from the second-level folders (images/<top>/<sub>/...) with at least --min images among the
zero-shot split, the class name being the folder name with '_' and '-' as spaces (no names
chosen by hand), writes OUT/classes.txt, OUT/zeroshot.tsv and OUT/shards-zeroshot (.cls
labels), and runs `catlip eval zeroshot` with the old and the new head building.

    bench/zeroshot_subfolders.py --catlip build/catlip --data /tmp/qs_full/data \
        --checkpoint RUN --out /tmp/qs_sub
"""
import argparse
import collections
import json
import os
import subprocess

ap = argparse.ArgumentParser()
ap.add_argument("--catlip", required=True)
ap.add_argument("--data", required=True, help="the quickstart's data directory")
ap.add_argument("--checkpoint", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--min", type=int, default=8)
ap.add_argument("--max-side", type=int, default=96)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(a.data, "zeroshot.tsv"))]
sub = lambda p: p.split("/")[2] if len(p.split("/")) > 3 else None
counts = collections.Counter(sub(r[0]) for r in rows if sub(r[0]))
names = sorted(s for s, n in counts.items() if n >= a.min)
index = {s: i for i, s in enumerate(names)}
with open(os.path.join(a.out, "classes.txt"), "w") as f:
    for s in names:
        f.write(s.replace("_", " ").replace("-", " ") + "\n")
with open(os.path.join(a.out, "zeroshot.tsv"), "w") as f:
    for r in rows:
        if sub(r[0]) in index:
            f.write("%s\t%d\n" % (os.path.join(a.data, r[0]), index[sub(r[0])]))
shards = os.path.join(a.out, "shards-zeroshot")
if not os.path.isdir(shards):
    subprocess.run([a.catlip, "shards", "make", "--tsv", os.path.join(a.out, "zeroshot.tsv"), "--cls",
                    "-o", shards, "--samples-per-shard", "1000", "--max-side", str(a.max_side)],
                   check=True, stdout=subprocess.DEVNULL)
out = os.path.join(a.out, "zeroshot.json")
subprocess.run([a.catlip, "eval", "zeroshot", "--checkpoint", a.checkpoint, "--classes",
                os.path.join(a.out, "classes.txt"), "--data", os.path.join(shards, "*.tar"),
                "--calibrate-on", os.path.join(a.data, "shards-val", "*.tar"), "--json", out],
               check=True)
j = json.load(open(out))
print("second category set: %d classes, %d images" % (j["classes"], j["images"]))
print("  first-sense head: top-1 %.4f, mean per-class %.4f, classes at 0: %d" % (
    j["first_sense"]["top1"], j["first_sense"]["mean_per_class"],
    sum(1 for x in j["first_sense"]["per_class"] if x == 0)))
print("  new head (%s): top-1 %.4f, mean per-class %.4f, classes at 0: %d" % (
    " ".join("%s=%s" % kv for kv in j["head"].items()), j["top1"], j["mean_per_class"],
    sum(1 for x in j["per_class"] if x == 0)))
