#!/usr/bin/env python3
"""CatLIP's step against CLIP's on the same image tower, on this machine (a benchmark).

  measure  runs `mpirun -n N catlip bench objective` for both objectives, interleaved, at
           1..3 workers (one rank a worker, one compute thread each, --oversubscribe: 3 ranks
           on a 2-core machine share the cores), --runs times, and stores every run's JSON:
             towers  vit_tiny/16 and vit_base/16 at 224 with CLIP's smallest text tower
                     (text_base: 512 wide, 12 layers, context 32, a 49,408-token vocabulary,
                     embedding 512) at the global batches that fit a few minutes (--tiny-batch,
                     --base-batch);
             pairs   the similarity/loss and the gather/reduce-scatter alone at large global
                     batches (--pair-batches; 1-block towers on 32 px images and 32-token
                     captions, embedding 512): their per-pair and per-byte costs, which small
                     batches cannot resolve.
  table    medians over the runs (of each run's median over its timed steps), the measured
           rows, and rows derived for the global batches 256, 1024 and 4096 from the measured
           per-image, per-caption, per-pair and per-byte costs (the towers' phases scale with
           the worker's images; the similarity with its rows x the global batch; gather and
           reduce-scatter with the gathered bytes; allreduce and optimizer do not depend on the
           batch). Prints the CatLIP/CLIP step-time ratio and the share of the cores' measured
           fp32 FMA peak for each.

  flock /work/bench.lock nice -n -10 bench/catlip_vs_clip.py measure --catlip build/catlip \\
      --what towers --models vit_tiny --out bench/results/catlip_vs_clip.json
  bench/catlip_vs_clip.py table --json bench/results/catlip_vs_clip.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
PHASES = ["image_forward", "text_forward", "loss", "gather", "scatter", "text_backward",
          "image_backward", "allreduce", "optimizer", "other"]
CLIP_ARGS = ["--set", "model.text=text_base", "--set", "model.embed_dim=512",
             "--set", "model.context_length=32", "--text-vocab", "49408"]
# The similarity alone: towers of one block on 32 px images (5 tokens) and 32-token captions.
PAIR_ARGS = ["--model", "vit_tiny", "--image-size", "32", "--patch-size", "16",
             "--set", "model.depth=1", "--set", "model.text=text_tiny", "--set",
             "model.text_depth=1", "--set", "model.embed_dim=512", "--text-vocab", "1000"]
TARGET_BATCHES = (256, 1024, 4096)


def bench(catlip, workers, objective, args, steps, warmup):
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-n", str(workers), catlip, "bench",
           "objective", "--objective", objective, "--steps", str(steps), "--warmup",
           str(warmup)] + args
    t0 = time.time()
    p = subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = p.stdout.strip().splitlines()
    try:
        r = json.loads(lines[-1])
    except (ValueError, IndexError):
        raise SystemExit(f"{' '.join(cmd)} failed (exit {p.returncode}):\n{p.stdout[-3000:]}")
    r["wall_s"] = time.time() - t0
    r["command"] = " ".join(cmd[cmd.index(catlip):])
    return r


def cmd_measure(a):
    catlip = os.path.abspath(a.catlip)
    out = {"runs": []}
    if os.path.exists(a.out) and not a.fresh:
        with open(a.out) as f:
            out = json.load(f)
    out.setdefault("machine", subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"],
                                             stdout=subprocess.PIPE, text=True).stdout.strip())
    out.setdefault("cores", os.cpu_count())
    plan = []
    if a.what == "towers":
        for model in a.models.split(","):
            G = a.tiny_batch if model == "vit_tiny" else a.base_batch
            for w in map(int, a.workers.split(",")):
                plan.append(("towers", model, w, G, ["--model", model, "--batch", str(G)]))
    else:
        for G in map(int, a.pair_batches.split(",")):
            for w in map(int, a.workers.split(",")):
                plan.append(("pairs", "pairs", w, G, PAIR_ARGS + ["--batch", str(G)]))
    for run in range(a.runs):
        for kind, model, w, G, args in plan:
            for objective in ("catlip", "clip") if kind == "towers" else ("clip",):
                extra = CLIP_ARGS if objective == "clip" and kind == "towers" else []
                r = bench(catlip, w, objective, args + extra, a.steps, a.warmup)
                r.update(kind=kind, run=run, date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
                out["runs"].append(r)
                print(f"run {run} {kind} {r['model']} {objective} {w} worker(s) G {G}: step "
                      f"{r['step_ms']:.0f} ms ({r['wall_s']:.0f} s wall)", flush=True)
                with open(a.out, "w") as f:
                    json.dump(out, f, indent=1)
    print(f"wrote {a.out}")


# ---- analysis ------------------------------------------------------------------------------

def medians(runs):
    """One record per (kind, model, objective, workers, G): the median over runs of each
    figure."""
    groups = {}
    for r in runs:
        key = (r["kind"], r["model"], r["objective"], r["ranks"], r["global_batch"])
        groups.setdefault(key, []).append(r)
    out = {}
    for key, rs in groups.items():
        m = dict(rs[0])
        m["n_runs"] = len(rs)
        m["step_ms"] = statistics.median(r["step_ms"] for r in rs)
        m["phases_ms"] = {p: statistics.median(r["phases_ms"][p] for r in rs) for p in PHASES}
        cpu = [r for r in rs if "phases_cpu_ms" in r]
        m["n_cpu"] = len(cpu)
        m["phases_cpu_ms"] = ({p: statistics.median(r["phases_cpu_ms"][p] for r in cpu)
                               for p in PHASES} if cpu else None)
        m["fma_peak_gflops_per_core"] = statistics.median(r["fma_peak_gflops_per_core"] for r in rs)
        out[key] = m
    return out


def local_rows(G, N):
    """The largest slice a worker holds (the slowest worker's)."""
    return -(-G // N)


def costs(m, cpu=True):
    """Per-unit costs of one measured record (seconds): per image of the worker's slice and per
    caption, and the fixed ones. The towers' costs are their CPU time where the record has it
    (one compute thread a rank: the work, whatever else shared the cores), else wall time;
    allreduce and optimizer are wall time."""
    ph = {k: v / 1e3 for k, v in m["phases_ms"].items()}
    work = {k: v / 1e3 for k, v in m["phases_cpu_ms"].items()} if cpu and m.get(
        "phases_cpu_ms") else ph
    b = local_rows(m["global_batch"], m["ranks"])
    return {"image": (work["image_forward"] + work["image_backward"] +
                      (work["loss"] if m["objective"] == "catlip" else 0.0)) / b,
            "text": (work["text_forward"] + work["text_backward"]) / b,
            "other": ph["other"], "allreduce": ph["allreduce"], "optimizer": ph["optimizer"],
            "cpu": work is not ph}


def pair_costs(med, N):
    """The similarity's seconds per pair (row x column, both directions, forward and backward)
    on one core: CPU time of the 1-worker record at the largest G (with no MPI in it, the
    process's CPU time is the loss's work); gather + reduce-scatter wall seconds per gathered
    byte from the N-worker record at that G."""
    def largest(n):
        recs = [m for k, m in med.items() if k[0] == "pairs" and k[3] == n]
        return max(recs, key=lambda m: m["global_batch"]) if recs else None

    one, big = largest(1), largest(N)
    if one is None or big is None:
        return None
    G1 = one["global_batch"]
    work = one["phases_cpu_ms"] or one["phases_ms"]
    # The 1-worker loss phase's CPU time is normalisation + similarity (no collectives).
    per_pair = work["loss"] / 1e3 / (G1 * G1)
    comm = (big["phases_ms"]["gather"] + big["phases_ms"]["scatter"]) / 1e3
    return {"per_pair": per_pair, "comm_per_byte": comm / big["gather_bytes"] if N > 1 else 0.0,
            "from_G": G1, "E": big["embed_dim"], "comm_s": comm}


def derive(m_cat, m_clip, pairs, G):
    """Step seconds of both objectives at global batch G from the records measured at G0 (same
    model and workers): the towers per image, the similarity per pair, the gather per byte."""
    N = m_cat["ranks"]
    b = local_rows(G, N)
    c, k = costs(m_cat), costs(m_clip)
    cat = b * c["image"] + c["other"] + c["allreduce"] + c["optimizer"]
    E = m_clip["embed_dim"]
    gather_bytes = 2.0 * G * E * 4
    sim = b * G * pairs["per_pair"]  # at the pairs records' E (512, as the towers')
    comm = gather_bytes * pairs["comm_per_byte"] if N > 1 else 0.0
    towers = b * (k["image"] + k["text"])
    clip = towers + sim + comm + k["other"] + k["allreduce"] + k["optimizer"]
    flop_cat = m_cat["gflop_image"] / m_cat["global_batch"] * G
    flop_clip = ((m_clip["gflop_image"] + m_clip["gflop_text"]) / m_clip["global_batch"] * G +
                 12.0 * G * G * E * 1e-9)
    return {"catlip_s": cat, "clip_s": clip, "gflop_catlip": flop_cat, "gflop_clip": flop_clip,
            "clip_parts": {"towers": towers, "text": b * k["text"], "similarity": sim,
                           "gather_scatter": comm, "allreduce": k["allreduce"],
                           "optimizer": k["optimizer"]}}


def cmd_table(a):
    with open(a.json) as f:
        data = json.load(f)
    med = medians(data["runs"])
    cores = data.get("cores", 2)
    dates = sorted({r["date"] for r in data["runs"]})
    print(f"CatLIP vs CLIP step on {data.get('machine', '?')} ({cores} cores), "
          f"{dates[0]} .. {dates[-1]}; one compute thread a worker; medians over runs "
          f"(n in each row) of each run's median step")
    print()
    # The machine's FMA peak: the highest per-core measurement in the file (each run measures
    # it under whatever else shares the cores; the least disturbed one is the hardware's).
    hw_peak = max(r["fma_peak_gflops_per_core"] for r in data["runs"])

    def run_ratio(k):
        """Median over runs of each run's CLIP/CatLIP step ratio (the two objectives of a run
        are measured back to back, so slow drift of the machine's load cancels)."""
        by_run = {}
        for r in data["runs"]:
            if (r["kind"], r["model"], r["ranks"], r["global_batch"]) == (k[0], k[1], k[3], k[4]):
                by_run.setdefault(r["run"], {})[r["objective"]] = r["step_ms"]
        ratios = [v["clip"] / v["catlip"] for v in by_run.values() if len(v) == 2]
        return statistics.median(ratios), min(ratios), max(ratios)
    print("Measured (towers): ms per step, phases of the CLIP step: image tower (fwd+bwd), text "
          "tower (fwd+bwd), gather + similarity/loss + reduce-scatter, gradient allreduce, "
          "optimizer")
    print(f"(FMA peak: {hw_peak:.0f} GFLOP/s a core, the highest of the runs' measurements; "
          f"CLIP/CatLIP: median over runs of each run's ratio, range in brackets)")
    print("| image tower | workers | global batch | runs | CatLIP step | CLIP step | CLIP/CatLIP "
          "| CLIP: image | text | gather+sim+scatter | allreduce (CatLIP / CLIP) | optimizer "
          "(CatLIP / CLIP) | FMA peak share (CatLIP / CLIP) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    towers = sorted((k for k in med if k[0] == "towers" and k[2] == "catlip"),
                    key=lambda k: (k[1] != "vit_tiny", k[3], k[4]))
    for k in towers:
        cat = med[k]
        clip = med.get(("towers", k[1], "clip", k[3], k[4]))
        if not clip:
            continue
        p, q = clip["phases_ms"], cat["phases_ms"]
        used = min(cat["ranks"] * cat["threads"], cores)
        share = [m["gflop_per_step"] / (m["step_ms"] / 1e3) / (hw_peak * used) for m in (cat, clip)]
        ratio, lo, hi = run_ratio(k)
        print(f"| {k[1]}/16 | {k[3]} | {k[4]} | {min(cat['n_runs'], clip['n_runs'])} | "
              f"{cat['step_ms']:.0f} | {clip['step_ms']:.0f} | "
              f"{ratio:.2f}x ({lo:.2f}-{hi:.2f}) | "
              f"{p['image_forward'] + p['image_backward']:.0f} | "
              f"{p['text_forward'] + p['text_backward']:.0f} | "
              f"{p['gather'] + p['loss'] + p['scatter']:.1f} | "
              f"{q['allreduce']:.0f} / {p['allreduce']:.0f} | "
              f"{q['optimizer']:.0f} / {p['optimizer']:.0f} | "
              f"{100 * share[0]:.0f}% / {100 * share[1]:.0f}% |")
    pairs = {N: pair_costs(med, N) for N in sorted({k[3] for k in med})}
    pr = sorted((k for k in med if k[0] == "pairs"), key=lambda k: (k[3], k[4]))
    if pr:
        print()
        print("Measured (the similarity alone, 1-block towers, embedding 512): ms per step")
        print("| workers | global batch | runs | gather | similarity + loss (both directions, "
              "fwd+bwd) | reduce-scatter | ns per pair | gathered MB |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for k in pr:
            m = med[k]
            ph = m["phases_ms"]
            b = local_rows(k[4], k[3])
            print(f"| {k[3]} | {k[4]} | {m['n_runs']} | {ph['gather']:.1f} | {ph['loss']:.1f} | "
                  f"{ph['scatter']:.1f} | {ph['loss'] * 1e6 / (b * k[4]):.2f} | "
                  f"{m['gather_bytes'] / 1e6:.1f} |")
    print()
    print("Derived: step seconds at larger global batches, each worker on a core of its own: "
          "the towers' CPU time per image and caption, the similarity's per pair (1 worker), "
          "gather + reduce-scatter per byte, allreduce and optimizer as measured (same workers)")
    print("| image tower | workers | global batch | derived from G | CatLIP step | CLIP step | "
          "CLIP/CatLIP | CLIP: text share | similarity share | gather+scatter share | FMA peak "
          "share (CatLIP / CLIP) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    derived = []
    for k in towers:
        cat, clip = med[k], med.get(("towers", k[1], "clip", k[3], k[4]))
        if not clip or not pairs.get(k[3]):
            continue
        peak = hw_peak * cat["ranks"] * cat["threads"]
        for G in (k[4],) + TARGET_BATCHES:
            d = derive(cat, clip, pairs[k[3]], G)
            parts = d["clip_parts"]
            derived.append({"model": k[1], "workers": k[3], "G": G, **d})
            print(f"| {k[1]}/16 | {k[3]} | {G} | {k[4]} | {d['catlip_s']:.2f} s | "
                  f"{d['clip_s']:.2f} s | {d['clip_s'] / d['catlip_s']:.2f}x | "
                  f"{100 * parts['text'] / d['clip_s']:.0f}% | "
                  f"{100 * parts['similarity'] / d['clip_s']:.1f}% | "
                  f"{100 * parts['gather_scatter'] / d['clip_s']:.1f}% | "
                  f"{100 * d['gflop_catlip'] / d['catlip_s'] / peak:.0f}% / "
                  f"{100 * d['gflop_clip'] / d['clip_s'] / peak:.0f}% |")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"measured": [dict(m, key=list(k)) for k, m in med.items()],
                       "pairs": pairs, "derived": derived}, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--catlip", default="build/catlip")
    m.add_argument("--what", choices=["towers", "pairs"], default="towers")
    m.add_argument("--models", default="vit_tiny,vit_base")
    m.add_argument("--workers", default="1,2,3")
    m.add_argument("--tiny-batch", type=int, default=48)
    m.add_argument("--base-batch", type=int, default=12)
    m.add_argument("--pair-batches", default="1024,4096")
    m.add_argument("--runs", type=int, default=3)
    m.add_argument("--steps", type=int, default=2)
    m.add_argument("--warmup", type=int, default=1)
    m.add_argument("--out", required=True, help="JSON of every run (appended to)")
    m.add_argument("--fresh", action="store_true", help="start the JSON anew")
    t = sub.add_parser("table")
    t.add_argument("--json", required=True)
    t.add_argument("--out", help="write the medians and derived rows as JSON")
    a = ap.parse_args()
    {"measure": cmd_measure, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
