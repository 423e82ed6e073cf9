#!/usr/bin/env python3
"""The benchmark commands' own behaviour (not their speed):

  allreduce   `mpirun -n 3 catlip bench allreduce`: the rank and host line, the gradient's
              float count for a model (the layout's parameter count, as `bench step` prints it)
              and for --floats, the bucket count grad_sync makes, the sums checked on every
              rank, the machine-readable line; bad options are one-line errors (exit 2)
  step_micro  `catlip bench step --micro-batch M`: a step of B images in ceil(B/M)
              micro-batches gives the losses of the unsplit step (within 1e-5 relative), and
              the result line names M
  objective   `mpirun -n N catlip bench objective --objective catlip|clip` (tiny towers): the
              JSON line parses; each objective's losses at 1, 2 and 3 ranks and with --overlap
              are the same global batch's (the first within 1e-6 relative, those after updates
              within 1e-4: the inputs follow the global sample index and clip's loss spans the
              gathered batch); the phases each objective
              has are timed (> 0) and the others are 0; the phases add up to the step (exactly
              at 1 rank, at most the slowest rank's step at more); the similarity's flops
              (12 G^2 E) and gather bytes (2 G E 4); bad options are one-line errors. G = 13:
              uneven slices at 2 and 3 ranks (the gathered buffers must hold the largest)

  bench_test.py --catlip build/catlip allreduce|step_micro|objective
"""
import argparse
import math
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runtime_test as rt  # noqa: E402


def result_line(out):
    m = re.search(r"^result: (.*)$", out, re.M)
    return dict(kv.split("=", 1) for kv in m.group(1).split()) if m else None


def test_allreduce(catlip):
    def bench(ranks, args):
        p = subprocess.run(["mpirun", "--oversubscribe", "-n", str(ranks), catlip, "bench",
                            "allreduce"] + args, env=rt.ENV, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
        return p.returncode, p.stdout

    # A model's gradient: vit_tiny at 32 px with 100 classes, as `bench step` counts it.
    rc, out = bench(3, ["--image-size", "32", "--classes", "100", "--iters", "3",
                        "--bucket-mb", "0.5"])
    r = result_line(out)
    rt.check(rc == 0 and r is not None, f"3 ranks, vit_tiny/32 gradient: exit 0 and a result line "
             f"(exit {rc})")
    if r is None:
        print(out[-2000:])
        return
    step = subprocess.run([catlip, "bench", "step", "--image-size", "32", "--classes", "100",
                           "--batch", "2", "--steps", "1", "--warmup", "0", "--threads", "1"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    params = re.search(r"(\d+) parameters", step.stdout)
    rt.check(params is not None and r["grad_floats"] == params.group(1),
             f"gradient floats {r['grad_floats']} = the model's parameters "
             f"({params.group(1) if params else '?'})")
    rt.check(r["ranks"] == "3" and r["hosts"] == "1", "ranks=3 hosts=1 in the result line")
    rt.check(re.search(r"^ranks +3 on 1 host: \S+ \(3\)$", out, re.M) is not None,
             "the host line names this host with its 3 ranks")
    rt.check("check      every reduced float on every rank equals the ranks' sum" in out,
             "the sums were checked on every rank")
    sweep = re.findall(r"^ +(\d+) +([\d.]+) +([\d.]+) +([\d.]+)$", out, re.M)
    sizes = [int(s[0]) for s in sweep]
    want = []
    n = 1
    while True:
        n = min(n, int(r["grad_floats"]))
        want.append(4 * n)
        if n == int(r["grad_floats"]):
            break
        n *= 4
    rt.check(sizes == want, f"sweep sizes 4 B x4 up to the gradient ({len(sizes)} rows)")
    rt.check(all(float(s[1]) > 0 for s in sweep) and float(r["grad_ms_median"]) > 0 and
             float(r["latency_us"]) > 0, "times are positive")
    # Bus bandwidth = 2(n-1)/n x bytes / time at 3 ranks.
    bus = 4 / 3 * 4 * int(r["grad_floats"]) / (float(r["grad_ms_median"]) * 1e-3) / 1e6
    rt.check(math.isclose(bus, float(r["grad_busbw_mbps"]), rel_tol=1e-2),
             f"bus bandwidth {r['grad_busbw_mbps']} MB/s = 4/3 x bytes / time ({bus:.2f})")

    # --floats: buckets of 0.25 MiB (65,536 floats) cut from the end: 200,000 floats -> 4.
    rc, out = bench(2, ["--floats", "200000", "--bucket-mb", "0.25", "--no-sweep", "--iters", "2"])
    r = result_line(out)
    rt.check(rc == 0 and r is not None and r["grad_floats"] == "200000" and r["buckets"] == "4",
             f"--floats 200000 in 0.25 MiB buckets: 4 buckets (got {r and r.get('buckets')})")
    rt.check(re.search(r"^ +\d+ +[\d.]+", out, re.M) is None, "--no-sweep prints no sweep")

    # The training job's communication settings: bf16 on the wire (sums checked against
    # ring_allreduce.h's bound at 3 ranks), hierarchical (one host: leader, then back), Open
    # MPI's collectives instead of our ring.
    for args, comm, hier, what in [(["--grad-comm", "bf16"], "bf16", "0", "bf16 ring, flat"),
                                   (["--allreduce", "hierarchical"], "fp32", "1",
                                    "fp32 ring, hierarchical"),
                                   (["--grad-comm", "bf16", "--allreduce", "hierarchical"],
                                    "bf16", "1", "bf16 ring, hierarchical"),
                                   (["--collectives", "mpi"], "fp32", "0", "fp32 MPI, flat")]:
        rc, out = bench(3, ["--floats", "100003", "--bucket-mb", "0.1", "--no-sweep", "--iters",
                            "2"] + args)
        r = result_line(out)
        rt.check(rc == 0 and r is not None and r["grad_comm"] == comm and
                 r["hierarchical"] == hier and f"allreduce  {what}" in out and
                 "check      every reduced float" in out,
                 f"{' '.join(args)}: reduced as '{what}', sums checked (exit {rc})")

    for args, what in [(["--iters", "0"], "--iters must be between"),
                       (["--floats", "-3"], "--floats must be a count"),
                       (["--model", "vit_nope"], "model.name"),
                       (["--bucket-mb", "0"], "train.bucket_mb"),
                       (["--grad-comm", "fp16"], "train.grad_comm"),
                       (["stray"], "unexpected argument 'stray'")]:
        p = subprocess.run([catlip, "bench", "allreduce"] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("catlip: error")]
        rt.check(p.returncode == 2 and len(lines) == 1 and what in lines[0],
                 f"{' '.join(args)}: exit 2 and one error line naming {what!r} "
                 f"(exit {p.returncode}: {lines})")


def test_step_micro(catlip):
    def losses(micro):
        p = subprocess.run([catlip, "bench", "step", "--image-size", "64", "--classes", "300",
                            "--batch", "8", "--steps", "3", "--warmup", "0", "--threads", "1",
                            "--micro-batch", str(micro)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=300)
        rt.check(p.returncode == 0, f"bench step --micro-batch {micro}: exit 0")
        r = result_line(p.stdout)
        rt.check(r is not None and r.get("micro_batch") == str(min(micro, 8)),
                 f"result line says micro_batch={min(micro, 8)}")
        parts = re.search(r"^batch +8 images a step in (\d+) micro-batch", p.stdout, re.M)
        rt.check(parts is not None and int(parts.group(1)) == -(-8 // micro),
                 f"--micro-batch {micro}: {-(-8 // micro)} micro-batches a step")
        return [float(x) for x in re.findall(r"^step \d+ .* loss ([\d.]+)", p.stdout, re.M)]

    whole = losses(8)
    for micro in (3, 1):
        split = losses(micro)
        worst = max(abs(a - b) / abs(a) for a, b in zip(whole, split)) if split else math.inf
        rt.check(len(split) == 3 and worst < 1e-5,
                 f"micro-batch {micro} vs whole: 3 steps' losses within 1e-5 relative "
                 f"(worst {worst:.2e})")


def test_objective(catlip):
    import json
    tiny = ["--image-size", "32", "--patch-size", "8", "--classes", "100", "--set",
            "model.text=text_tiny", "--set", "model.embed_dim=64", "--text-vocab", "500",
            "--batch", "13", "--steps", "2", "--warmup", "1", "--no-peak"]

    def bench(ranks, objective, extra=()):
        p = subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "-n", str(ranks),
                            catlip, "bench", "objective", "--objective", objective] + tiny +
                           list(extra), env=rt.ENV, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
        last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        try:
            r = json.loads(last)
        except ValueError:
            r = None
        rt.check(p.returncode == 0 and r is not None,
                 f"{objective}, {ranks} rank(s) {' '.join(extra)}: exit 0 and a JSON last line "
                 f"(exit {p.returncode})")
        if r is None:
            print(p.stdout[-2000:])
            return None, []
        steps = [float(x) for x in re.findall(r"^step +-?\d+ +[\d.]+ s +loss ([-\d.]+)", p.stdout,
                                               re.M)]
        return r, steps

    timed = {"catlip": {"image_forward", "loss", "image_backward", "optimizer"},
             "clip": {"image_forward", "text_forward", "gather", "loss", "scatter",
                      "text_backward", "image_backward", "optimizer"}}
    for objective in ("catlip", "clip"):
        base = None
        for ranks, extra in ((1, ()), (2, ()), (3, ()), (2, ("--overlap",))):
            r, steps = bench(ranks, objective, extra)
            if r is None:
                continue
            what = f"{objective}, {ranks} rank(s){' overlapped' if extra else ''}"
            rt.check(r["objective"] == objective and r["ranks"] == ranks and
                     r["global_batch"] == 13 and r["overlap"] == bool(extra),
                     f"{what}: the JSON names the objective, ranks, batch and overlap")
            rt.check(len(steps) == 3, f"{what}: a loss line for the warm-up and 2 timed steps")
            if base is None:
                base = steps
            elif steps and base:
                # The first loss (before any update) differs only in float summation order;
                # after AdamW's first, sign-like step a gradient near 0 may round either way.
                first = abs(base[0] - steps[0]) / abs(base[0])
                later = max((abs(a - b) / abs(a) for a, b in zip(base[1:], steps[1:])),
                            default=math.inf)
                rt.check(len(steps) == len(base) and first < 1e-6 and later < 1e-4,
                         f"{what}: the 1-rank losses, first within 1e-6 relative ({first:.1e}), "
                         f"after updates within 1e-4 ({later:.1e})")
            ph = r["phases_ms"]
            want = timed[objective] | ({"allreduce"} if ranks > 1 else set())
            rt.check(all(ph[k] > 0 for k in want) and
                     all(ph[k] == 0 for k in ph if k not in want | {"other"}),
                     f"{what}: phases {sorted(want)} timed, the rest 0 ({ph})")
            total = sum(ph.values())
            ok = (abs(total - r["step_ms"]) <= 0.01 * r["step_ms"] if ranks == 1
                  else total <= r["step_ms"] * 1.001 + 0.01)
            rt.check(ok, f"{what}: phases sum to {total:.2f} ms against the step's "
                     f"{r['step_ms']:.2f} ms")
            E = 64 if objective == "clip" else 0
            rt.check(math.isclose(r["gflop_similarity"], 12 * 13 * 13 * E * 1e-9, rel_tol=1e-3,
                                  abs_tol=1e-6) and r["gather_bytes"] == 2 * 13 * E * 4,
                     f"{what}: similarity flops 12 G^2 E and gather bytes 2 G E 4")
    for args, what in [(["--objective", "nope"], "model.objective"),
                       (["--objective", "clip", "--text-vocab", "3"], "--text-vocab"),
                       (["--objective", "clip", "--set", "model.text=text_huge"], "text_huge"),
                       (["--batch", "0"], "train.global_batch"),
                       (["stray"], "unexpected argument 'stray'")]:
        p = subprocess.run([catlip, "bench", "objective"] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("catlip: error")]
        rt.check(p.returncode == 2 and len(lines) == 1 and what in lines[0],
                 f"{' '.join(args)}: exit 2 and one error line naming {what!r} "
                 f"(exit {p.returncode}: {lines})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--catlip", required=True)
    ap.add_argument("test", choices=["allreduce", "step_micro", "objective"])
    a = ap.parse_args()
    globals()["test_" + a.test](os.path.abspath(a.catlip))
    print(f"{a.test}: {len(rt.failures)} failure(s)")
    sys.exit(1 if rt.failures else 0)


if __name__ == "__main__":
    main()
