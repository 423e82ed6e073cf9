#!/usr/bin/python3
"""Training-step speed of catlip against PyTorch (float32, CPU), same model, same machine, same run.

For each thread count and each of --runs runs, it starts, one after the other (alternating, so
that both see the same machine state):
  (a) catlip bench step --model M --image-size S --patch-size P --batch B --classes V
                        --threads T --steps N --warmup 1
      whose last stdout line is
      result: images_per_second=F gflops=F sgemm_gflops=F sgemm_share=F peak_rss_mb=F
  (b) a fresh Python process running the same training step in PyTorch: forward, CatLIP BCE
      loss, backward, grad-norm clip, AdamW step, EMA update; torch.set_num_threads(T); one
      warm-up step, then N timed steps.
Peak RSS is each child's own ru_maxrss (os.wait4), so every run is measured on its own.
Prints the medians per thread count, the catlip/PyTorch ratio, and PyTorch's achieved GFLOP/s
as a share of catlip's measured sgemm rate (FLOPs counted the same way for both).

  bench/step_vs_pytorch.py --catlip build/catlip            # vit_tiny/16, 224, batch 32, 24320 classes
  bench/step_vs_pytorch.py --no-catlip --threads 1 --runs 1  # the PyTorch half alone
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))

RESULT_KEYS = ("images_per_second", "gflops", "sgemm_gflops", "sgemm_share", "peak_rss_mb")


def train_flops_per_image(dim, depth, heads, image_size, patch_size, classes):
    """3 x the forward matmul FLOPs of one image (the usual forward + 2 x backward count):
    patch embedding, per block qkv / scores / attention x values / proj / fc1 / fc2, and the
    head on the CLS token. Softmax, LayerNorm, GELU and the optimiser are not counted."""
    n = (image_size // patch_size) ** 2
    t = n + 1
    c, hidden = dim, 4 * dim
    fwd = 2 * n * (3 * patch_size * patch_size) * c
    per_block = (2 * t * c * 3 * c      # qkv
                 + 2 * t * t * c        # q k^T over all heads
                 + 2 * t * t * c        # probs v
                 + 2 * t * c * c        # proj
                 + 2 * t * c * hidden   # fc1
                 + 2 * t * hidden * c)  # fc2
    fwd += depth * per_block + 2 * c * classes
    return 3 * fwd


def parse_result_line(text):
    """The values of catlip's last 'result:' line, or raise ValueError naming what is wrong."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if not lines or not lines[-1].startswith("result:"):
        last = lines[-1] if lines else "(no output)"
        raise ValueError(f"last stdout line is not 'result: ...': {last!r}")
    values = {}
    for field in lines[-1][len("result:"):].split():
        key, sep, value = field.partition("=")
        if not sep:
            raise ValueError(f"'{field}' in the result line is not key=value")
        try:
            values[key] = float(value)
        except ValueError:
            raise ValueError(f"'{key}={value}' in the result line is not a number")
    missing = [k for k in RESULT_KEYS if k not in values]
    if missing:
        raise ValueError(f"result line lacks {', '.join(missing)}")
    return values


def run_child(args, env):
    """Runs a child with stdout/stderr to temp files; returns (rc, stdout, stderr, peak RSS MB, s)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.time()
        p = subprocess.Popen(args, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        secs = time.time() - t0
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read(), usage.ru_maxrss / 1024.0, secs


def torch_worker(a):
    """One PyTorch run, in its own process; prints a result line like catlip's."""
    import torch
    import vit_ref

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = vit_ref.model_config(a.model, a.image_size, a.patch_size, a.classes)
    model = vit_ref.build_model(cfg, torch.float32)
    images = torch.randn(a.batch, 3, a.image_size, a.image_size)
    targets = (torch.rand(a.batch, a.classes) < 10.0 / a.classes).float()
    optim = {"lr": 1e-3, "min_lr": 1e-5, "warmup_steps": 0, "warmup_init_lr": 1e-6, "weight_decay": 0.2,
             "betas": [0.9, 0.999], "eps": 1e-8, "grad_clip": 1.0, "ema": 0.0005}
    params = list(model.parameters())
    # foreach=True: PyTorch's multi-tensor AdamW, its fastest CPU path in this version.
    opt = torch.optim.AdamW(vit_ref.param_groups(model, optim["weight_decay"]), lr=optim["lr"],
                            betas=tuple(optim["betas"]), eps=optim["eps"], foreach=True)
    ema = [p.detach().clone() for p in params]
    total = a.warmup + a.steps

    def step(t):
        for g in opt.param_groups:
            g["lr"] = vit_ref.lr_at(t, optim, total)
        opt.zero_grad(set_to_none=True)
        loss = vit_ref.catlip_loss(model(images), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, optim["grad_clip"])
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(ema, 1.0 - optim["ema"])
            torch._foreach_add_(ema, params, alpha=optim["ema"])
        return float(loss)

    for t in range(a.warmup):
        step(t)
    t0 = time.perf_counter()
    for t in range(a.warmup, total):
        step(t)
    secs = time.perf_counter() - t0
    ips = a.batch * a.steps / secs
    flops = train_flops_per_image(cfg["dim"], cfg["depth"], cfg["heads"], a.image_size, a.patch_size, a.classes)
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"result: images_per_second={ips:.4f} gflops={ips * flops / 1e9:.4f} peak_rss_mb={rss:.1f} "
          f"torch_threads={torch.get_num_threads()}")
    return 0


def catlip_args(a, threads):
    return [a.catlip, "bench", "step", "--model", a.model, "--image-size", str(a.image_size),
            "--patch-size", str(a.patch_size), "--batch", str(a.batch), "--classes", str(a.classes),
            "--threads", str(threads), "--steps", str(a.steps), "--warmup", "1"]


def torch_args(a, threads):
    return [sys.executable, os.path.abspath(__file__), "--torch-worker", "--model", a.model,
            "--image-size", str(a.image_size), "--patch-size", str(a.patch_size), "--batch", str(a.batch),
            "--classes", str(a.classes), "--threads", str(threads), "--steps", str(a.steps), "--warmup", "1"]


def describe_worker(a):
    """Prints, as one JSON line, what the parent needs from torch, so that the parent never
    imports torch: a child forked from a parent holding torch would start with its RSS."""
    import torch
    import vit_ref

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    lines = [f"machine: {cpu}, {os.cpu_count()} logical CPUs, {len(os.sched_getaffinity(0))} usable",
             f"torch {torch.__version__}"]
    info = [l.strip() for l in torch.__config__.parallel_info().splitlines() if l.strip()]
    lines += ["  " + l for l in info[:6]]
    for field in torch.__config__.show().replace(",", "\n").splitlines():
        if "BLAS_INFO" in field:
            lines.append("  " + field.strip() + " (libblas.so.3: the same OpenBLAS as catlip's where "
                         "Debian's alternative points there)")
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if k in os.environ:
            lines.append(f"  {k}={os.environ[k]}")
    print(json.dumps({"lines": lines, "presets": vit_ref.PRESETS}))
    return 0


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catlip", default=os.path.join(REPO, "build", "catlip"), help="catlip executable")
    ap.add_argument("--no-catlip", action="store_true", help="time PyTorch only")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--runs", type=int, default=3, help="runs per thread count and side (default 3)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per run (default 3)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--classes", type=int, default=24320)
    ap.add_argument("--model", default="vit_tiny")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--patch-size", type=int, default=16)
    ap.add_argument("--torch-omp-wait", default="PASSIVE", metavar="POLICY",
                    help="OMP_WAIT_POLICY for the PyTorch runs (default PASSIVE; '' leaves it unset)")
    ap.add_argument("--json", metavar="FILE", help="also write every run's numbers to FILE")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--describe", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=int, default=1, help=argparse.SUPPRESS)
    a = ap.parse_args()

    try:
        threads = [int(t) for t in a.threads.split(",") if t.strip()]
    except ValueError:
        print(f"step_vs_pytorch: error: --threads '{a.threads}' is not a comma-separated list of integers",
              file=sys.stderr)
        return 2
    if a.torch_worker:
        a.threads = threads[0]
        return torch_worker(a)
    if a.describe:
        return describe_worker(a)
    for name, v in (("--runs", a.runs), ("--steps", a.steps), ("--batch", a.batch), ("--classes", a.classes)):
        if v < 1:
            print(f"step_vs_pytorch: error: {name} must be at least 1, got {v}", file=sys.stderr)
            return 2
    if not threads or min(threads) < 1:
        print(f"step_vs_pytorch: error: --threads '{a.threads}' needs counts of at least 1", file=sys.stderr)
        return 2
    if not a.no_catlip and not (os.path.isfile(a.catlip) and os.access(a.catlip, os.X_OK)):
        print(f"step_vs_pytorch: error: catlip executable '{a.catlip}' not found "
              "(build it, pass --catlip PATH, or --no-catlip)", file=sys.stderr)
        return 2

    rc, out, err, _, _ = run_child([sys.executable, os.path.abspath(__file__), "--describe"], dict(os.environ))
    if rc != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        print(f"step_vs_pytorch: error: cannot start PyTorch: {last}", file=sys.stderr)
        return 2
    described = json.loads(out.strip().splitlines()[-1])
    print("\n".join(described["lines"]))
    if a.model not in described["presets"]:
        print(f"step_vs_pytorch: error: unknown --model '{a.model}' ({', '.join(described['presets'])})",
              file=sys.stderr)
        return 2
    dim, depth, heads = described["presets"][a.model]
    flops_img = train_flops_per_image(dim, depth, heads, a.image_size, a.patch_size, a.classes)
    print(f"config: {a.model}/{a.patch_size} image {a.image_size} batch {a.batch} classes {a.classes}, "
          f"{a.runs} run(s) x (1 warm-up + {a.steps} timed steps) per side and thread count")
    print(f"PyTorch runs: OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = threads, "
          f"OMP_WAIT_POLICY={a.torch_omp_wait or '(unset)'}; catlip runs: environment as given")
    print(f"FLOPs per image per training step (3 x forward matmuls): {flops_img / 1e9:.3f} GFLOP")
    print("load average before: %.2f %.2f %.2f (other work on the machine skews every number)" % os.getloadavg())

    runs = {t: {"catlip": [], "torch": []} for t in threads}
    failed = False
    for t in threads:
        # catlip is left to size its own pool and OpenBLAS (that is part of what is measured).
        # PyTorch calls the system libblas.so.3 (OpenBLAS, pthreads), whose threads
        # torch.set_num_threads does not govern: give both pools T threads, as a PyTorch
        # user would, or OpenMP and OpenBLAS threads fight over the cores.
        # OMP_WAIT_POLICY=PASSIVE (default --torch-omp-wait): idle OpenMP threads sleep instead
        # of spinning while OpenBLAS's own threads run the matmuls; with spinning they take the
        # cores from OpenBLAS and PyTorch at 2 threads measured up to 7x slower on this box.
        envs = {"catlip": dict(os.environ),
                "torch": dict(os.environ, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t))}
        if a.torch_omp_wait:
            envs["torch"]["OMP_WAIT_POLICY"] = a.torch_omp_wait
        for r in range(a.runs):
            sides = [] if a.no_catlip else [("catlip", catlip_args(a, t))]
            sides.append(("torch", torch_args(a, t)))
            for side, args in sides:
                env = envs[side]
                rc, out, err, rss, secs = run_child(args, env)
                if rc != 0:
                    last = (err.strip().splitlines() or out.strip().splitlines() or ["no output"])[-1]
                    print(f"threads {t} run {r + 1} {side}: FAILED (exit {rc}): {last}")
                    failed = True
                    continue
                try:
                    v = parse_result_line(out) if side == "catlip" else _torch_result(out)
                except ValueError as e:
                    print(f"threads {t} run {r + 1} {side}: FAILED: {e}")
                    failed = True
                    continue
                v["rss_mb"] = rss
                v["wall_s"] = secs
                runs[t][side].append(v)
                extra = (f" gflops {v['gflops']:.1f} sgemm {v['sgemm_gflops']:.1f} GFLOP/s"
                         f" (share {v['sgemm_share']:.2f}), own peak RSS {v['peak_rss_mb']:.0f} MB"
                         if side == "catlip" else f" gflops {v['gflops']:.1f}")
                print(f"threads {t} run {r + 1} {side:<6}: {v['images_per_second']:8.2f} img/s,"
                      f" peak RSS {rss:7.0f} MB, {secs:5.1f} s wall;{extra}", flush=True)

    print()
    print(f"{'threads':>7} {'catlip img/s':>12} {'torch img/s':>11} {'ratio':>6} {'catlip MB':>9} "
          f"{'torch MB':>8} {'sgemm share':>11} {'catlip GFLOP/s':>14} {'torch GFLOP/s':>13} {'of catlip sgemm':>15}")
    for t in threads:
        c, p = runs[t]["catlip"], runs[t]["torch"]
        c_ips = median([v["images_per_second"] for v in c])
        p_ips = median([v["images_per_second"] for v in p])
        # FLOPs per image: catlip's own count if it gave one (gflops / img/s), else ours.
        c_flops = median([v["gflops"] * 1e9 / v["images_per_second"] for v in c if v["images_per_second"] > 0])
        f_img = c_flops if c else flops_img
        p_gflops = p_ips * f_img / 1e9
        sg = median([v["sgemm_gflops"] for v in c])
        print(f"{t:>7} {c_ips:>12.2f} {p_ips:>11.2f} {c_ips / p_ips:>6.2f} "
              f"{median([v['rss_mb'] for v in c]):>9.0f} {median([v['rss_mb'] for v in p]):>8.0f} "
              f"{median([v['sgemm_share'] for v in c]):>11.2f} {median([v['gflops'] for v in c]):>14.1f} "
              f"{p_gflops:>13.1f} {p_gflops / sg:>15.2f}")
    if any(runs[t]["catlip"] for t in threads):
        c_all = [v["gflops"] * 1e9 / v["images_per_second"] for t in threads for v in runs[t]["catlip"]
                 if v["images_per_second"] > 0]
        print(f"\nFLOPs/image: catlip counts {median(c_all) / 1e9:.3f} GFLOP, this script {flops_img / 1e9:.3f} GFLOP")
    print("img/s and MB are medians over runs (MB: each child's peak RSS); ratio = catlip / PyTorch img/s;\n"
          "sgemm share = catlip's step GFLOP/s over the sgemm GFLOP/s it measured on this machine with the same "
          "threads;\n'of catlip sgemm' = PyTorch's step GFLOP/s (same FLOP count) over that same sgemm rate.")
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"config": vars(a), "flops_per_image": flops_img,
                       "runs": {str(t): v for t, v in runs.items()}}, f, indent=1)
    return 1 if failed else 0


def _torch_result(out):
    lines = [l for l in out.splitlines() if l.startswith("result:")]
    if not lines:
        raise ValueError("PyTorch worker printed no result line")
    values = {}
    for field in lines[-1][len("result:"):].split():
        k, _, v = field.partition("=")
        values[k] = float(v)
    return values


if __name__ == "__main__":
    sys.exit(main())
