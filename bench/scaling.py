#!/usr/bin/env python3
"""Data-parallel scaling of `catlip train` on this machine (a benchmark, not a test).

For vit_tiny/16 at 224, global batch 32, 24,320 synsets, synthetic data, it runs
  - 1 worker  with 1 compute thread  (one core)
  - 2 workers with 1 compute thread each, gradient allreduce overlapped with backward
  - 2 workers with 1 compute thread each, allreduce after backward (train.overlap=false)
each under `mpirun --bind-to none` (catlip places each worker's thread on its own core),
and prints per-worker images/s, the share of step time blocked on the allreduce, the scaling
efficiency, and the coordinator's CPU use (over the whole run, and while coordinating, i.e.
without MPI start-up and the final checkpoint write). Medians over --runs runs.

  bench/scaling.py --catlip build/catlip [--runs 3] [--steps 8]
"""
import argparse
import os
import re
import statistics
import subprocess
import tempfile

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def one_run(catlip, workers, overlap, steps, extra):
    with tempfile.TemporaryDirectory() as d:
        cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-n", str(workers + 1), catlip,
               "train", "--set", f"run_dir={d}", "--set", "model.name=vit_tiny",
               "--set", "model.num_classes=24320", "--set", "train.global_batch=32",
               "--set", f"train.steps={steps}", "--set", "train.threads=1",
               "--set", f"train.overlap={'true' if overlap else 'false'}",
               "--set", "checkpoint.every_steps=0", "--set", "log.every_steps=1"] + extra
        out = subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True).stdout
    rows = re.findall(r"worker (\d+) summary: \d+ steps, ([\d.]+) s/step, ([\d.]+) img/s, "
                      r"data wait ([\d.]+)%, compute ([\d.]+)%, allreduce wait ([\d.]+)%", out)
    coord = re.search(r"coordinator: [\d.]+ s of CPU over [\d.]+ s \(([\d.]+)% of a core\).*"
                      r"coordinating \(([\d.]+)% of a core\)", out)
    if not rows or not coord:
        raise SystemExit("catlip run failed:\n" + out[-3000:])
    ips = [float(r[2]) for r in rows]
    wait = [float(r[5]) for r in rows]
    return (sum(ips) / len(ips), max(wait), float(coord.group(1)), float(coord.group(2)),
            float(rows[0][1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--catlip", default="build/catlip")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    a = ap.parse_args()
    catlip = os.path.abspath(a.catlip)
    configs = [("1 worker x 1 thread", 1, True), ("2 workers x 1 thread, overlap", 2, True),
               ("2 workers x 1 thread, no overlap", 2, False)]
    results = {}
    for name, workers, overlap in configs:
        runs = [one_run(catlip, workers, overlap, a.steps, []) for _ in range(a.runs)]
        results[name] = [statistics.median(x) for x in zip(*runs)]
        ips, wait, coord, steady, sps = results[name]
        print(f"{name:34s} {ips:7.2f} img/s per worker  {sps:6.2f} s/step  allreduce wait "
              f"{wait:5.1f}%  coordinator CPU {coord:5.2f}% of a core over the run, "
              f"{steady:5.2f}% while coordinating (start-up and checkpoint writing excluded)",
              flush=True)
    one = results[configs[0][0]][0]
    for name, workers, _ in configs[1:]:
        eff = results[name][0] / one
        print(f"scaling efficiency ({name}): {eff * 100:.0f}% "
              f"({results[name][0] * workers:.2f} img/s total vs {one:.2f} x {workers})")


if __name__ == "__main__":
    main()
