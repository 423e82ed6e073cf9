#!/usr/bin/env python3
"""Integration tests of `catlip train` under mpirun: data parallelism, determinism,
kill/resume, signals, and resuming on a different worker count.

  runtime_test.py --catlip build/catlip workers|kill|signals|elastic|errors

Every run uses a small model on built-in synthetic data so that a step takes milliseconds
and the tests exercise the runtime, not the math (the math has its own reference test).
"""
import argparse
import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SMALL = [
    "model.name=vit_tiny", "model.image_size=32", "model.patch_size=8", "model.dim=48",
    "model.depth=2", "model.heads=3", "model.num_classes=40", "data.train=synthetic",
    "train.global_batch=12", "train.threads=1", "optim.lr=0.002", "optim.warmup_steps=3",
    "optim.weight_decay=0.05", "log.every_steps=1", "seed=3",
]

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl_vader_single_copy_mechanism="none")
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)


def command(catlip, workers, run_dir, extra, resume=None):
    args = [catlip, "train", "--set", f"run_dir={run_dir}"]
    for s in SMALL + extra:
        args += ["--set", s]
    if resume:
        args += ["--resume", resume]
    if workers == 0:  # single process, no launcher
        return args
    return ["mpirun", "--oversubscribe", "-n", str(workers + 1)] + args


def run(catlip, workers, run_dir, extra, resume=None, timeout=300):
    p = subprocess.run(command(catlip, workers, run_dir, extra, resume), env=ENV,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout


def digests(log):
    return re.findall(r"worker (\d+): step (\d+), weights digest ([0-9a-f]{16})", log)


def losses(run_dir):
    out = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            out[rec["step"]] = rec["loss"]
    return out


def test_workers(catlip, tmp):
    steps = ["train.steps=30", "checkpoint.every_steps=0"]
    results = {}
    for n in (1, 2, 3):
        d = os.path.join(tmp, f"w{n}")
        rc, log = run(catlip, n, d, steps)
        check(rc == 0, f"{n} worker(s): exit status 0 (got {rc})")
        dg = digests(log)
        check(len(dg) == n, f"{n} worker(s): every worker reported its final weights ({len(dg)})")
        check(len({x[2] for x in dg}) == 1, f"{n} worker(s): all workers hold identical weights")
        ls = losses(d)
        first = sum(ls[s] for s in (1, 2, 3)) / 3
        last = sum(ls[s] for s in (28, 29, 30)) / 3
        check(last < 0.5 * first, f"{n} worker(s): loss falls ({first:.3f} -> {last:.3f})")
        check(os.path.exists(os.path.join(d, "checkpoints", "ckpt-0000000030.pb")),
              f"{n} worker(s): final checkpoint written")
        results[n] = ls
    # Same global batch, same samples: 2 and 3 workers compute the 1-worker step up to the
    # order of float sums (the split of the batch and the allreduce).
    for n in (2, 3):
        worst = max(abs(results[n][s] - results[1][s]) / abs(results[1][s]) for s in results[1])
        check(worst < 1e-3, f"{n} workers follow the 1-worker loss curve (worst rel diff {worst:.2e})")
    rc, log = run(catlip, 0, os.path.join(tmp, "single"), steps)
    dg = digests(log)
    check(rc == 0 and len(dg) == 1, "single process (no launcher) trains")
    s1 = losses(os.path.join(tmp, "single"))
    check(all(abs(s1[s] - results[1][s]) == 0 for s in s1),
          "single process equals mpirun with 1 worker, loss for loss")


def reference_digest(catlip, tmp, workers, extra, name):
    rc, log = run(catlip, workers, os.path.join(tmp, name), extra)
    dg = digests(log)
    check(rc == 0 and dg, f"uninterrupted {workers}-worker run ({name}) completes")
    return dg[0][2] if dg else None


def kill_tree(p):
    """SIGKILL the launcher and every catlip process it started."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()
    subprocess.run(["pkill", "-KILL", "-f", "catlip train --set run_dir=" + p.run_dir], env=ENV)


def kill_until_done(catlip, workers, d, extra, rng, kills_wanted, window, wait_for_write=False):
    """Runs with --resume auto, SIGKILLing the job kills_wanted times (each a random time in
    window seconds after its start; with wait_for_write every other kill lands as soon as a
    checkpoint is being written), then lets a run finish. Returns (kills, kills during a write,
    the finished run's weights digest or None, its output)."""
    kills = during_write = 0
    for attempt in range(kills_wanted + 34):
        p = subprocess.Popen(command(catlip, workers, d, extra, "auto"), env=ENV, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
        p.run_dir = d
        if kills < kills_wanted:
            deadline = time.time() + rng.uniform(*window)
            want_write = wait_for_write and kills % 2 == 0
            while time.time() < deadline and p.poll() is None:
                if want_write and glob.glob(os.path.join(d, "checkpoints", "*.tmp")):
                    during_write += 1
                    break
                time.sleep(0.002)
            if p.poll() is None:
                kill_tree(p)
                kills += 1
                continue
        out = p.communicate(timeout=300)[0]
        dg = digests(out)
        if p.returncode == 0 and dg:
            return kills, during_write, dg[0][2], out
    return kills, during_write, None, ""


def test_kill(catlip, tmp):
    total = 400
    extra = [f"train.steps={total}", "checkpoint.every_steps=5", "checkpoint.keep=2",
             "model.num_classes=4000"]  # a bigger head: checkpoints take long enough to hit
    kill_and_compare(catlip, tmp, "kill", extra)


def kill_and_compare(catlip, tmp, name, extra):
    """2 workers SIGKILLed 6 times (half of them during checkpoint writes), resumed each time:
    the run must end bit-identical to an uninterrupted one (shard_test.py's kill test too)."""
    want = reference_digest(catlip, tmp, 2, extra, name + "_ref")
    d = os.path.join(tmp, name)
    kills, during_write, final, _ = kill_until_done(catlip, 2, d, extra, random.Random(11), 6,
                                                     (1.0, 3.0), wait_for_write=True)
    check(kills >= 5, f"killed with SIGKILL {kills} times ({during_write} during a checkpoint write)")
    check(during_write >= 1, "at least one kill landed while a checkpoint was being written")
    check(final == want, f"resumed run ends bit-identical to the uninterrupted one ({final} vs {want})")


def test_signals(catlip, tmp):
    total = 1000  # ~2-3 ms a step: 200 steps left the signal a window of ~0.4 s, which a loaded machine missed once (a fresh-clone run, 2026-12-02)
    extra = [f"train.steps={total}", "checkpoint.every_steps=0", "model.num_classes=2000"]
    for workers, how in ((0, "SIGTERM to the process"), (2, "SIGTERM to every rank"),
                         (2, "SIGUSR1 to mpirun")):
        name = f"sig{workers}_{how.split()[0]}"
        want = reference_digest(catlip, tmp, workers, extra, name + "_ref")
        d = os.path.join(tmp, name)
        p = subprocess.Popen(command(catlip, workers, d, extra), env=ENV, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
        # Wait until training is under way (a few steps logged), then signal.
        metrics = os.path.join(d, "metrics.jsonl")
        deadline = time.time() + 60
        while time.time() < deadline and (not os.path.exists(metrics) or
                                          sum(1 for _ in open(metrics)) < 5):
            time.sleep(0.01)
        if how.startswith("SIGUSR1"):
            os.kill(p.pid, signal.SIGUSR1)
        else:
            # The ranks only (as SLURM signals tasks), not mpirun, whose own command line
            # also names catlip.
            subprocess.run(["pkill", "-TERM", "-f", "^" + catlip + " train --set run_dir=" + d + " "])
        out = p.communicate(timeout=120)[0]
        check(p.returncode == 0, f"{how}: exit status 0 (got {p.returncode})")
        ckpts = sorted(glob.glob(os.path.join(d, "checkpoints", "ckpt-*.pb")))
        step = int(re.search(r"ckpt-(\d+)", ckpts[-1]).group(1)) if ckpts else -1
        check(0 < step < total, f"{how}: checkpointed mid-run (step {step} of {total})")
        rc, log = run(catlip, workers, d, extra, "auto")
        dg = digests(log)
        check(rc == 0 and dg and dg[0][2] == want,
              f"{how}: resume ends bit-identical to an uninterrupted run")


def test_elastic(catlip, tmp):
    extra = ["train.steps=24", "checkpoint.every_steps=12"]
    ref = os.path.join(tmp, "el_ref")
    rc, _ = run(catlip, 2, ref, extra)
    check(rc == 0, "2-worker reference run completes")
    ref_losses = losses(ref)
    # Take the step-12 checkpoint of a 2-worker run and continue from it to step 24 on 1 and on
    # 3 workers; the losses must be those of the 2-worker run (same samples, same schedule).
    for n in (1, 3):
        d = os.path.join(tmp, f"el{n}")
        rc, _ = run(catlip, 2, d, extra)
        ck = os.path.join(d, "checkpoints", "ckpt-0000000012.pb")
        check(os.path.exists(ck), f"checkpoint at step 12 of the 2-worker run exists")
        os.remove(os.path.join(d, "metrics.jsonl"))
        rc, log = run(catlip, n, d, extra, ck)
        check(rc == 0, f"resume on {n} worker(s) from a 2-worker checkpoint: exit 0")
        check("written by 2 workers, now %d" % n in log, f"resume on {n}: logged the worker change")
        ls = losses(d)
        worst = max(abs(ls[s] - ref_losses[s]) / abs(ref_losses[s]) for s in range(13, 25))
        check(sorted(ls) == list(range(13, 25)), f"resume on {n}: continues at step 13 and ends at 24")
        check(worst < 1e-3, f"resume on {n}: same samples, same losses as 2 workers (worst rel {worst:.2e})")


def test_errors(catlip, tmp):
    rc, out = run(catlip, 2, os.path.join(tmp, "e1"), ["model.patch_size=5"])
    check(rc != 0 and out.count("must divide") == 1, "bad config under mpirun: one error line, non-zero exit")
    d = os.path.join(tmp, "e2")
    rc, _ = run(catlip, 0, d, ["train.steps=4"])
    rc, out = run(catlip, 0, d, ["train.steps=8", "model.dim=96"], "auto")
    check(rc != 0 and "different model" in out, "resume with a different model: clear error")
    rc, out = run(catlip, 0, d, ["train.steps=8"], os.path.join(d, "nonexistent.pb"))
    check(rc != 0 and "nonexistent.pb" in out, "resume from a missing file: error naming it")
    # A worker that dies: the job must end (non-zero) and name the rank, not hang.
    d = os.path.join(tmp, "e3")
    p = subprocess.Popen(command(catlip, 2, d, ["train.steps=100000", "model.num_classes=2000"]),
                         env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    time.sleep(3)
    pids = subprocess.run(["pgrep", "-f", "^" + catlip + " train --set run_dir=" + d + " "],
                          stdout=subprocess.PIPE, text=True).stdout.split()
    if len(pids) >= 3:
        os.kill(int(sorted(pids, key=int)[-1]), signal.SIGKILL)
    try:
        out = p.communicate(timeout=60)[0]
        check(p.returncode != 0, f"a killed worker ends the job with a non-zero status ({p.returncode})")
        check(re.search(r"rank \d", out) is not None, "the job's output names the rank that died")
    except subprocess.TimeoutExpired:
        kill_tree(p)
        check(False, "a killed worker ends the job instead of hanging")


def test_shards(catlip, tmp):
    """Real data end to end: images -> shards -> vocabulary -> 2-worker training."""
    here = os.path.dirname(os.path.abspath(__file__))
    ds = os.path.join(tmp, "ds")
    subprocess.run([sys.executable, os.path.join(here, "make_dataset.py"), ds, "--count", "300",
                    "--broken", "2"], check=True, stdout=subprocess.DEVNULL)
    p = subprocess.run([catlip, "shards", "make", "--tsv", os.path.join(ds, "list.tsv"), "-o",
                        os.path.join(ds, "shards"), "--samples-per-shard", "100"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(p.returncode == 0, "shards make writes the collection")
    pattern = os.path.join(ds, "shards", "{00000..00003}.tar")
    vocab = os.path.join(ds, "vocab.tsv")
    p = subprocess.run([catlip, "vocab", "build", "--data", pattern, "--min-count", "5", "-o", vocab,
                        "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(p.returncode == 0, "vocab build writes the vocabulary")
    data = [f"data.train={pattern}", f"data.vocab={vocab}", "model.num_classes=0",
            "model.image_size=32", "train.global_batch=24", "train.epochs=6", "log.every_steps=1",
            "optim.lr=0.003"]
    d = os.path.join(tmp, "shards_run")
    rc, log = run(catlip, 2, d, data)
    check(rc == 0, f"2 workers train on shards (exit {rc})")
    ls = losses(d)
    steps = sorted(ls)
    first = sum(ls[s] for s in steps[:3]) / 3
    last = sum(ls[s] for s in steps[-3:]) / 3
    check(last < 0.7 * first, f"loss falls on real data ({first:.3f} -> {last:.3f})")
    last_rec = json.loads(open(os.path.join(d, "metrics.jsonl")).read().splitlines()[-1])
    check(last_rec.get("skipped", {}).get("no_synset", 0) > 0,
          f"captions without synsets are skipped and counted ({last_rec.get('skipped')})")
    check("skipped no_synset=" in log, "the progress line shows the skipped samples")
    dg = digests(log)
    check(len({x[2] for x in dg}) == 1 and len(dg) == 2, "both workers end with identical weights")
    # The same run resumed against another vocabulary must refuse.
    other = os.path.join(ds, "vocab_other.tsv")
    subprocess.run([catlip, "vocab", "build", "--data", pattern, "--min-count", "60", "-o", other,
                    "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rc, out = run(catlip, 0, d, data[:1] + [f"data.vocab={other}"] + data[2:], "auto")
    check(rc != 0 and "different model" in out,
          "resuming with a vocabulary of another size is a clear error")
    # Same size, other synset order: only the vocabulary hash tells them apart.
    rows = open(vocab).read().splitlines()
    rows[1], rows[2] = rows[2], rows[1]
    swapped = os.path.join(ds, "vocab_swapped.tsv")
    open(swapped, "w").write("\n".join(rows) + "\n")
    rc, out = run(catlip, 0, d, data[:1] + [f"data.vocab={swapped}"] + data[2:], "auto")
    check(rc != 0 and "different vocabulary" in out,
          "resuming with a reordered vocabulary is a clear error")


def test_classify(catlip, tmp):
    """Fine-tuning and linear probing from a pre-trained checkpoint on .cls shards."""
    here = os.path.dirname(os.path.abspath(__file__))
    ds = os.path.join(tmp, "ds")
    subprocess.run([sys.executable, os.path.join(here, "make_dataset.py"), ds, "--count", "240",
                    "--classes"], check=True, stdout=subprocess.DEVNULL)
    for tsv, out, flags in (("list.tsv", "cap", []), ("classes.tsv", "cls", ["--cls"])):
        subprocess.run([catlip, "shards", "make", "--tsv", os.path.join(ds, tsv), "-o",
                        os.path.join(ds, out), "--samples-per-shard", "120"] + flags, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cap = os.path.join(ds, "cap", "{00000..00001}.tar")
    cls = os.path.join(ds, "cls", "{00000..00001}.tar")
    vocab = os.path.join(ds, "vocab.tsv")
    subprocess.run([catlip, "vocab", "build", "--data", cap, "--min-count", "5", "-o", vocab,
                    "--quiet"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pre = os.path.join(tmp, "pre")
    rc, _ = run(catlip, 0, pre, [f"data.train={cap}", f"data.vocab={vocab}", "model.num_classes=0",
                                 "train.epochs=20", "train.global_batch=24"])
    check(rc == 0, "pre-training run for the fine-tuning test")
    ckpt = sorted(glob.glob(os.path.join(pre, "checkpoints", "ckpt-*.pb")))[-1]
    base = ["task=classify", f"data.train={cls}", "model.num_classes=12", f"model.init_from={ckpt}",
            "train.epochs=20", "train.global_batch=24", "optim.lr=0.005"]
    for name, extra in (("linear probe", ["train.freeze_backbone=true"]), ("fine-tuning", [])):
        d = os.path.join(tmp, name.replace(" ", "_"))
        rc, log = run(catlip, 2, d, base + extra)
        check(rc == 0 and "initialised from" in log, f"{name} on 2 workers from a pre-trained checkpoint")
        ls = losses(d)
        steps = sorted(ls)
        first = sum(ls[s] for s in steps[:3]) / 3
        last = sum(ls[s] for s in steps[-3:]) / 3
        check(first > 2.0 and last < 0.8 * first,
              f"{name}: cross-entropy over 12 classes falls from ~ln 12 ({first:.3f} -> {last:.3f})")
    # Transfer Init: the head starts from the pre-trained synset rows of the class names, so the
    # very first step already beats a random head (whose loss is ~ln 12).
    head = os.path.join(tmp, "head.safetensors")
    p = subprocess.run([catlip, "transfer", "--checkpoint", ckpt, "--vocab", vocab, "--classes",
                        os.path.join(ds, "class_names.txt"), "-o", head],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(p.returncode == 0, "catlip transfer writes a head for the 12 class names")
    d = os.path.join(tmp, "transfer_probe")
    rc, log = run(catlip, 2, d, base + ["train.freeze_backbone=true", "model.head_init=transfer",
                                        f"model.head_file={head}", "train.epochs=1"])
    ls = losses(d)
    random_first = losses(os.path.join(tmp, "linear_probe"))[1]
    check(rc == 0 and ls[1] < random_first - 0.2,
          f"Transfer Init head starts below a random head ({ls.get(1, 0):.3f} vs {random_first:.3f})")
    rc, out = run(catlip, 0, os.path.join(tmp, "bad"), base + ["model.dim=96"])
    check(rc != 0 and "different backbone" in out, "init_from with another backbone: clear error")


def main_for(cases, prefix):
    """The command line every integration script shares: --catlip BINARY CASE runs
    cases["test_" + CASE](catlip, tmp) in a fresh temporary directory, exit 1 on a failure."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--catlip", required=True)
    ap.add_argument("test", choices=[k[5:] for k in cases if k.startswith("test_")])
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        cases["test_" + a.test](os.path.abspath(a.catlip), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{a.test}: {len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main_for(globals(), "catlip_rt_")
