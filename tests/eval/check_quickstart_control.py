#!/usr/bin/python3
"""The quickstart's control and verdict, checked on the outputs of eval.quickstart (fixture).

  check_quickstart_control.py CATLIP WORK

WORK is the quickstart --ci work directory (run/, control/, eval_*.json, control_*.json).
- deploy/quickstart_check.py passes on the genuine results and FAILS (exit 1) when handed the
  control's results as the trained model's (against the control, and against the trained model
  as the control), and refuses (exit 2) results on different data;
- the zero-shot mean per-class accuracy is the mean of the printed per-class accuracies;
- the control is the random initialisation: its raw and EMA weights equal those after 3 steps of
  the same run at learning rate 0 (with weight decay and EMA on), equal each other, and differ
  from the trained model's.
Exits non-zero when any check fails.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

catlip, work = sys.argv[1], os.path.abspath(sys.argv[2])
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
checker = os.path.join(repo, "deploy", "quickstart_check.py")
failures = 0


def check(ok, what):
    global failures
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures += 1


def verdict(trained, control, out):
    p = subprocess.run(["/usr/bin/python3", checker, "--trained", *trained, "--control", *control,
                        "--json", out], capture_output=True, text=True)
    print(p.stdout + p.stderr, end="")
    return p


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    arrays = {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], dtype=np.float32).reshape(v["shape"])
              for k, v in header.items()}
    return arrays, meta


trained = [os.path.join(work, "eval_multilabel.json"), os.path.join(work, "eval_zeroshot.json")]
control = [os.path.join(work, "control_multilabel.json"), os.path.join(work, "control_zeroshot.json")]
for path in trained + control:
    if not os.path.exists(path):
        sys.exit(f"check_quickstart_control: {path} is missing (run eval.quickstart first)")

with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "result.json")
    p = verdict(trained, control, out)
    result = json.load(open(out))
    check(p.returncode == 0 and "PASS" in p.stdout and result["pass"] and
          all(c["pass"] for c in result["checks"]), "the checker passes the trained model against the control")
    check(len(result["checks"]) == 4 and result["control"]["multilabel"] == json.load(open(control[0])),
          "the combined JSON holds the four checks and the control's numbers")

    for name, as_control in (("the control", control), ("the trained model", trained)):
        p = verdict(control, as_control, out)
        result = json.load(open(out))
        macro = next(c for c in result["checks"] if c["metric"] == "map_macro")
        check(p.returncode == 1 and "FAIL" in p.stdout and not result["pass"] and not macro["pass"],
              f"the checker fails the control's results given as the trained model's, against {name} "
              f"(exit {p.returncode}, macro mAP {macro['trained']:.4f} vs threshold {macro['threshold']:.4f})")

    # Results on other data are refused, not compared.
    other = json.load(open(control[0]))
    other["images"] += 1
    moved = os.path.join(tmp, "other_multilabel.json")
    json.dump(other, open(moved, "w"))
    p = verdict(trained, [moved, control[1]], out)
    check(p.returncode == 2 and "not on the same data" in p.stderr, "the checker refuses results on other data")

    # mean_per_class is the mean of the printed per-class top-1 column (the trained model's
    # classes are not all at 0, unlike eval.commands' tiny model).
    zs = json.load(open(trained[1]))
    # The table is "class images first top-1": the first-sense head's column, then the new
    # head's (the one the JSON reports), built with the quickstart's calibration set.
    p = subprocess.run([catlip, "eval", "zeroshot", "--checkpoint", os.path.join(work, "run"), "--quiet",
                        "--classes", os.path.join(work, "data", "classes.txt"), "--data", zs["data"],
                        "--calibrate-on", os.path.join(work, "data", "shards-val", "*.tar")],
                       capture_output=True, text=True)
    rows = [l.split() for l in p.stdout.splitlines() if l.startswith("  ") and len(l.split()) >= 4]
    rows = [float(r[-1]) for r in rows if r[-3].isdigit() and r[-1] != "-" and int(r[-3]) > 0]
    want = sum(rows) / len(rows) if rows else -1
    check(p.returncode == 0 and len(rows) == zs["classes_present"] and abs(zs["mean_per_class"] - want) < 1e-3
          and len(set(rows)) > 2, f"zero-shot mean per-class {zs['mean_per_class']:.4f} is the mean of the "
          f"per-class column ({want:.4f} over {len(rows)} classes)")

    # The control's weights are the random initialisation: 3 steps at learning rate 0 (same
    # config: weight decay 0.05, EMA on, real gradients) leave them where 1 step did.
    config = os.path.join(work, "control", "config.yaml")
    cfg = open(config).read()
    check("optim.lr: 0\n" in cfg and "optim.weight_decay: 0.05" in cfg and "optim.ema: 0.0005" in cfg,
          "the control ran at learning rate 0 with weight decay and EMA on")
    three = os.path.join(tmp, "three")
    p = subprocess.run([catlip, "train", "-c", config, "--set", f"run_dir={three}", "--set", "train.steps=3"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stderr)
    logged = [json.loads(l) for l in open(os.path.join(three, "metrics.jsonl"))] if p.returncode == 0 else []
    check([m["step"] for m in logged] == [1, 2, 3] and all(m["lr"] == 0 and m["grad_norm"] > 0 for m in logged),
          "3 steps of the control's run at learning rate 0, with non-zero gradients")
    exported = {}
    for name, run_dir in (("control", os.path.join(work, "control")), ("three", three),
                          ("trained", os.path.join(work, "run"))):
        for ema in (False, True):
            path = os.path.join(tmp, f"{name}{'_ema' if ema else ''}.safetensors")
            q = subprocess.run([catlip, "export", "--checkpoint", run_dir, "-o", path] + (["--ema"] if ema else []),
                               capture_output=True, text=True)
            if q.returncode != 0:
                print(q.stderr)
                sys.exit("check_quickstart_control: catlip export failed")
            exported[name, ema] = read_safetensors(path)
    c, _ = exported["control", False]
    same = lambda a, b: a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    check(exported["three", False][1]["step"] == "3" and exported["control", False][1]["step"] == "1",
          "exported the control at step 1 and the learning-rate-0 run at step 3")
    check(same(c, exported["three", False][0]), "raw weights after 1 and 3 steps at learning rate 0 are equal")
    check(same(c, exported["control", True][0]) and same(c, exported["three", True][0]),
          "EMA weights at learning rate 0 equal the raw ones (after 1 and 3 steps)")
    t, _ = exported["trained", False]
    check(c.keys() == t.keys() and all(c[k].shape == t[k].shape for k in c) and
          sum(not np.array_equal(c[k], t[k]) for k in c) == len(c),
          f"the control has the trained model's {len(c)} tensors and shapes, every one with other values")

print("check_quickstart_control:", "all checks passed" if failures == 0 else f"{failures} check(s) failed")
sys.exit(1 if failures else 0)
