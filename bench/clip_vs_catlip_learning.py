#!/usr/bin/python3
"""CatLIP and CLIP pre-trained for the same wall-clock budget on Open Clip Art (issue 16).

    flock /work/bench.lock nice -n -10 bench/clip_vs_catlip_learning.py train [--budget 300]
    bench/clip_vs_catlip_learning.py eval
    (both: [--catlip build/catlip] [--work runs/clip_vs_catlip] [--seed 0])

The data are the full quickstart's (deploy/quickstart.sh: deploy/prepare_openclipart.py at 96 px,
6,495 captioned training drawings, a validation split, 1,381 held-out drawings labelled with 11
top-level categories). Both objectives train the same image tower with the quickstart's
settings (vit_tiny with 4 blocks at 64 px, patch 16, global batch 64, AdamW lr 2e-3 with 50
warmup steps and cosine decay, weight decay 0.05) on 2 workers + a coordinator (mpirun -n 3);
CLIP adds a word tokenizer built from the training captions (words in at least 40 of them)
and the text_tiny tower with 64-wide embeddings. Equal budget: a 20-step probe measures each objective's step time, the run
gets budget / step-time steps (so its learning-rate schedule completes), and SIGTERM stops it
at the budget if it runs over (it then checkpoints at the next step and exits). `train` runs
both objectives one after the other (under one flock of the bench lock at nice -10, so the two
budgets see the same machine); `eval` (no lock needed) trains the controls and evaluates.
Reported per objective, beside the control (the same model, 1 step at learning rate 0: its
random initialisation) and the prior (the majority class):

  zero-shot    catlip eval zeroshot on the 1,381 labelled drawings: CatLIP's Transfer Init head
               (the default head building, standardised on the validation split, as the
               quickstart), CLIP's prompt ensemble ("{}", "a {} icon", "a picture of a {}")
  linear probe catlip embed's pooled features (the image tower's CLS after its final LayerNorm,
               192 wide for both objectives) of the same drawings, split by a hash of the path
               into 2/3 train and 1/3 test; multinomial logistic regression on standardised
               features (float64 PyTorch, L-BFGS), its L2 weight picked by 3-fold
               cross-validation on the training part; top-1 and mean per-class on the test part

Writes WORK/learning_result.json and prints a markdown table.
"""
import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPTS = ["{}", "a {} icon", "a picture of a {}"]
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl_vader_single_copy_mechanism="none")
PROBE_STEPS = 20
# Words in fewer captions are <unk>: 155 words, 68% of the caption words, every class name. With
# rare words (titles) kept, CLIP matches drawings to their own captions by them and its
# zero-shot suffers (README, "CLIP objective").
TOKENIZER_MIN_COUNT = 40


def sh(args, **kw):
    print("+ " + " ".join(args), flush=True)
    return subprocess.run(args, check=True, env=MPI_ENV, **kw)


def prepare(catlip, data):
    if os.path.exists(os.path.join(data, "tokenizer.tsv")):
        print(f"using the prepared data in {data}")
        return
    sh(["/usr/bin/python3", os.path.join(REPO, "deploy", "prepare_openclipart.py"), data, "--max-side", "96"])
    for split, extra in (("train", []), ("val", []), ("zeroshot", ["--cls"])):
        sh([catlip, "shards", "make", "--tsv", os.path.join(data, f"{split}.tsv")] + extra +
           ["-o", os.path.join(data, f"shards-{split}"), "--samples-per-shard", "1000", "--max-side", "96"],
           stdout=subprocess.DEVNULL)
    train = os.path.join(data, "shards-train", "*.tar")
    sh([catlip, "vocab", "build", "--data", train, "--min-count", "10", "-o", os.path.join(data, "vocab.tsv"),
        "--quiet"])
    sh([catlip, "tokenizer", "build", "--data", train, "--min-count", str(TOKENIZER_MIN_COUNT), "-o",
        os.path.join(data, "tokenizer.tsv"), "--quiet"])


def model_settings(objective, data):
    s = [f"data.train={data}/shards-train/*.tar", "model.name=vit_tiny", "model.image_size=64",
         "model.patch_size=16", "model.depth=4", "train.global_batch=64", "optim.weight_decay=0.05"]
    if objective == "clip":
        s += ["model.objective=clip", f"data.tokenizer={data}/tokenizer.tsv", "model.text=text_tiny",
              "model.embed_dim=64"]
    else:
        s += [f"data.vocab={data}/vocab.tsv", "model.num_classes=0"]
    return s


def sets(settings):
    return [a for s in settings for a in ("--set", s)]


def train_command(catlip, run_dir, settings):
    return ["mpirun", "--oversubscribe", "-n", "3", catlip, "train", "--set", f"run_dir={run_dir}"] + sets(settings)


def step_seconds(run_dir, skip=5):
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    rows = [r for r in rows if r["step"] > skip]
    return (rows[-1]["time"] - rows[0]["time"]) / (rows[-1]["step"] - rows[0]["step"])


def pretrain(catlip, work, data, objective, budget, seed):
    base = model_settings(objective, data) + ["optim.lr=0.002", "optim.warmup_steps=50", f"seed={seed}",
                                               "log.every_steps=1"]
    probe = os.path.join(work, f"probe_{objective}")
    sh(["rm", "-rf", probe])
    sh(train_command(catlip, probe, base + [f"train.steps={PROBE_STEPS}", "checkpoint.every_steps=0"]),
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    per_step = step_seconds(probe)
    steps = int(budget / per_step)
    print(f"{objective}: {per_step:.3f} s a step in the probe -> {steps} steps for {budget:.0f} s", flush=True)
    run_dir = os.path.join(work, f"run_{objective}")
    sh(["rm", "-rf", run_dir])
    cmd = train_command(catlip, run_dir, base[:-1] + ["log.every_steps=20", f"train.steps={steps}",
                                                            "checkpoint.every_steps=100000"])
    print("+ " + " ".join(cmd), flush=True)
    log = open(os.path.join(work, f"train_{objective}.log"), "w")
    start = time.time()
    p = subprocess.Popen(cmd, env=MPI_ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stopped = False
    # mpirun's start is not the budget: the clock starts at the run's first metrics line.
    first = None
    while p.poll() is None:
        time.sleep(1)
        m = os.path.join(run_dir, "metrics.jsonl")
        if first is None and os.path.exists(m) and os.path.getsize(m) > 0:
            first = time.time()
        if first is not None and not stopped and time.time() - first > budget * 1.02 + 30:
            os.killpg(p.pid, signal.SIGTERM)  # checkpoint at the next step boundary, exit 0
            stopped = True
    if p.returncode != 0 and not stopped:
        raise SystemExit(f"{objective} training failed (see {log.name})")
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    return {"probe_step_s": per_step, "steps_planned": steps, "steps": rows[-1]["step"],
            "train_s": rows[-1]["time"] - rows[0]["time"] + per_step * rows[0]["step"],
            "wall_s": time.time() - start, "stopped_at_budget": stopped, "final_loss": rows[-1]["loss"],
            "run_dir": run_dir}


def control(catlip, work, data, objective):
    d = os.path.join(work, f"control_{objective}")
    sh(["rm", "-rf", d])
    sh([catlip, "train", "--set", f"run_dir={d}"] + sets(model_settings(objective, data) + [
        "train.steps=1", "optim.lr=0", "optim.min_lr=0", "optim.warmup_init_lr=0", "optim.warmup_steps=0",
        "log.every_steps=1", "checkpoint.every_steps=0"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return d


def zeroshot(catlip, data, objective, run_dir, out):
    cmd = [catlip, "eval", "zeroshot", "--checkpoint", run_dir, "--classes", os.path.join(data, "classes.txt"),
           "--data", os.path.join(data, "shards-zeroshot", "*.tar"), "--json", out, "--quiet"]
    if objective == "clip":
        for p in PROMPTS:
            cmd += ["--prompts", p]
    else:
        cmd += ["--calibrate-on", os.path.join(data, "shards-val", "*.tar")]
    sh(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.load(open(out))


def labelled(data):
    rows = [line.rstrip("\n").split("\t") for line in open(os.path.join(data, "zeroshot.tsv"))]
    paths = [os.path.join(data, r[0]) for r in rows]
    labels = np.array([int(r[1]) for r in rows])
    test = np.array([int(hashlib.sha1(r[0].encode()).hexdigest(), 16) % 3 == 0 for r in rows])
    return paths, labels, test


def features(catlip, work, run_dir, paths, name):
    lst, out = os.path.join(work, "probe_images.txt"), os.path.join(work, f"features_{name}.npy")
    with open(lst, "w") as f:
        f.write("\n".join(paths) + "\n")
    sh([catlip, "embed", "--checkpoint", run_dir, "--list", lst, "-o", out], stderr=subprocess.DEVNULL)
    return np.load(out).astype(np.float64)


def fit_logistic(x, y, K, l2):
    """Multinomial logistic regression: mean cross-entropy + l2 * |W|^2, L-BFGS to convergence."""
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    w = torch.zeros(x.shape[1], K, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(K, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=500, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def accuracy(pred, y, K):
    top1 = float((pred == y).mean())
    per = [float((pred[y == k] == k).mean()) for k in range(K) if (y == k).any()]
    return top1, sum(per) / len(per)


def linear_probe(feat, labels, test, K):
    xtr, ytr, xte, yte = feat[~test], labels[~test], feat[test], labels[test]
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    folds = np.arange(len(ytr)) % 3
    best = None
    for l2 in (1e-4, 1e-3, 1e-2, 1e-1):
        accs = []
        for f in range(3):
            w, b = fit_logistic(xtr[folds != f], ytr[folds != f], K, l2)
            pred = (torch.from_numpy(xtr[folds == f]) @ w + b).argmax(1).numpy()
            accs.append(float((pred == ytr[folds == f]).mean()))
        if best is None or np.mean(accs) > best[1]:
            best = (l2, float(np.mean(accs)))
    w, b = fit_logistic(xtr, ytr, K, best[0])
    pred = (torch.from_numpy(xte) @ w + b).argmax(1).numpy()
    top1, mpc = accuracy(pred, yte, K)
    return {"top1": top1, "mean_per_class": mpc, "l2": best[0], "cv_top1": best[1],
            "train_images": int(len(ytr)), "test_images": int(len(yte))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("phase", choices=("train", "eval"))
    ap.add_argument("--catlip", default=os.path.join(REPO, "build", "catlip"))
    ap.add_argument("--work", default=os.path.join(REPO, "runs", "clip_vs_catlip"))
    ap.add_argument("--budget", type=float, default=300, help="training seconds per objective")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    catlip = os.path.abspath(a.catlip)
    work = os.path.abspath(a.work)
    data = os.path.join(work, "data")
    os.makedirs(work, exist_ok=True)
    result_path = os.path.join(work, "learning_result.json")
    if a.phase == "train":
        prepare(catlip, data)
        result = {"budget_s": a.budget, "seed": a.seed, "prompts": PROMPTS}
        for objective in ("catlip", "clip"):
            result[objective] = {"train": pretrain(catlip, work, data, objective, a.budget, a.seed)}
            with open(result_path, "w") as f:
                json.dump(result, f, indent=2)
        return 0
    result = json.load(open(result_path))
    paths, labels, test = labelled(data)
    K = int(labels.max()) + 1
    for objective in ("catlip", "clip"):
        r = result[objective]
        ctl = control(catlip, work, data, objective)
        for name, d in (("trained", r["train"]["run_dir"]), ("control", ctl)):
            z = zeroshot(catlip, data, objective, d, os.path.join(work, f"zeroshot_{objective}_{name}.json"))
            lp = linear_probe(features(catlip, work, d, paths, f"{objective}_{name}"), labels, test, K)
            r[name] = {"zeroshot_top1": z["top1"], "zeroshot_mean_per_class": z["mean_per_class"],
                       "zeroshot_per_class": z["per_class"], "probe": lp}
            r["majority"] = z["majority"]
    y = labels[test]
    result["probe_majority"] = float((y == np.bincount(labels[~test]).argmax()).mean())
    with open(result_path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"\n| {result['budget_s']:.0f} s budget, 2 workers | steps | train s | zero-shot top-1 | "
          f"mean per-class | probe top-1 | probe mean per-class |")
    print("|---|---|---|---|---|---|---|")
    print(f"| prior (majority class) | | | {result['catlip']['majority']:.3f} | {1 / K:.3f} | "
          f"{result['probe_majority']:.3f} | {1 / K:.3f} |")
    for objective in ("catlip", "clip"):
        r = result[objective]
        for name in ("control", "trained"):
            x = r[name]
            steps = f"{r['train']['steps']}" if name == "trained" else "1 (lr 0)"
            secs = f"{r['train']['train_s']:.0f}" if name == "trained" else ""
            print(f"| {objective} {name} | {steps} | {secs} | {x['zeroshot_top1']:.3f} | "
                  f"{x['zeroshot_mean_per_class']:.3f} | {x['probe']['top1']:.3f} | "
                  f"{x['probe']['mean_per_class']:.3f} |")
    print(f"\nwritten to {result_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
