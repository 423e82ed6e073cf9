#!/usr/bin/env python3
"""CatLIP's step against CLIP's on a farm: bench/scaling_model.py's model with CLIP's terms.

CatLIP's step is bench/scaling_model.py's prediction as it stands (its functions and measured
constants, imported, not copied). CLIP's step is the same prediction for a model that is the
image tower plus CLIP's text tower, plus what only CLIP does:

  towers      per image: the ViT (its 512-wide projection instead of the synset head) and one
              caption through the text tower (text_base: 512 wide, 12 layers, context 32,
              49,408-token vocabulary), as measured ratios to CatLIP's image (below), times
              scaling_model's measured seconds per CatLIP image (fp32 and bf16: the same
              ratio assumed for bf16, whose text-tower time was not measured);
  parameters  the image tower + projection + text tower + logit scale (their gradient is what
              the allreduce sums; scaling_model overlaps it with backward as for CatLIP);
  similarity  each worker's b = G / N rows against all G columns, both directions, forward and
              backward: b G t_pair on one core (t_pair measured at G = 4096, embedding 512;
              split over the worker's cores with scaling_model's thread efficiency);
  gather      all-gather of the normalised image and text embeddings, 2 G E 4 bytes in all,
              and the reduce-scatter of their gradients, the same bytes: each a ring among the
              N = H W workers, (N - 1) / N x bytes / L + (N - 1) a, with L and a
              scaling_model's (link rate x libnbc's measured efficiency: the gather is
              MPI_Iallgatherv, the scatter MPI_Ireduce_scatter; per-hop latency). Neither can
              overlap anything: backward needs the gradients the reduce-scatter returns.
  GradCache   CLIP's loss spans the global batch, so a worker cannot split its slice into
              independent micro-batches as CatLIP does: it either holds the activations of its
              whole slice (vit_base: ~150 MB an image in fp32 here; the "one pass" column) or
              runs GradCache (train.micro_batch with clip: one more forward of both towers,
              +1/3 of their compute, the "GradCache" column, micro-batches of 64).

Measured constants come from bench/catlip_vs_clip.py's JSON (1 worker, 1 thread, vit_base/16
at 224) and bench/scaling_constants.json.

  bench/clip_scaling.py table --measured bench/results/catlip_vs_clip.json
  bench/clip_scaling.py predict --measured ... --hosts 64 --link 10gbit
"""
import argparse
import copy
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import catlip_vs_clip as cvc  # noqa: E402
import scaling_model as sm  # noqa: E402

EMBED = 512
GRADCACHE = 4 / 3  # tower compute with GradCache's extra forward (forward ~ 1/3 of fwd + bwd)


def clip_constants(constants, measured, model="vit_base"):
    """scaling_model's constants with a "<model>_clip" model, and CLIP's own terms."""
    with open(measured) as f:
        data = json.load(f)
    med = cvc.medians(data["runs"])
    cat = med.get(("towers", model, "catlip", 1, next(
        (k[4] for k in med if k[:4] == ("towers", model, "catlip", 1)), None)))
    if cat is None:
        raise SystemExit(f"{measured} has no 1-worker {model} CatLIP record "
                         f"(bench/catlip_vs_clip.py measure)")
    clip = med[("towers", model, "clip", 1, cat["global_batch"])]
    c_cat, c_clip = cvc.costs(cat), cvc.costs(clip)
    pairs = cvc.pair_costs(med, 1)
    c = copy.deepcopy(constants)
    m = dict(c["models"][model])
    r_img, r_text = c_clip["image"] / c_cat["image"], c_clip["text"] / c_cat["image"]
    m["params"] = clip["params"]
    m["gflop_per_image"] = (clip["gflop_image"] + clip["gflop_text"]) / clip["global_batch"]
    for p in ("fp32", "bf16"):
        m[f"s_per_image_{p}"] = constants["models"][model][f"s_per_image_{p}"] * (r_img + r_text)
    c["models"][model + "_clip"] = m
    extra = {"r_img": r_img, "r_text": r_text, "t_pair": pairs["per_pair"],
             "pairs_from_G": pairs["from_G"], "params_catlip": cat["params"],
             "params_clip": clip["params"], "measured_G": cat["global_batch"],
             "activation_bytes_per_image": None}
    return c, extra


def clip_terms(c, extra, model, hosts, W, cores, link_bps, G, latency_s, cpu_share=1.0):
    """CLIP's own seconds a step beyond its towers: similarity, gather + reduce-scatter."""
    net = c.get("network", {})
    a = latency_s if latency_s is not None else net.get("hop_latency_s", 30e-6)
    eff = (sm.link_efficiency(net, "fp32", "mpi") if hasattr(sm, "link_efficiency")
           else net.get("mpi_efficiency", 0.8))
    N = hosts * W
    b = G / N
    cpw = cores / W * cpu_share
    e = 1.0 if cpw <= 1 else c["thread_efficiency"]
    similarity = b * G * extra["t_pair"] / (cpw * e)
    nbytes = 2.0 * G * EMBED * 4
    L = link_bps / 8 * eff if hosts > 1 else net.get("shm_bytes_per_s", 2e9)
    ring = 0.0 if N <= 1 else (N - 1) / N * nbytes / L + (N - 1) * a
    return {"similarity_s": similarity, "gather_s": ring, "scatter_s": ring,
            "gather_bytes": nbytes}


GRID = [(W, gc, sh, bk) for W in (1, 2, 4) for gc in ("fp32", "bf16") for sh in (False, True)
        for bk in (4.0, 25.0, 100.0)]


def best_catlip(c, model, hosts, cores, link, G, precision, latency_s):
    options = []
    for W, gc, sh, bk in GRID:
        for micro in (32, 64, 128):
            if micro > G / (hosts * W):
                continue
            p = sm.predict(c, model, hosts, W, cores, link, G, micro, grad_comm=gc, shard=sh,
                           precision=precision, bucket_mb=bk, latency_s=latency_s)
            options.append((p["step_s"], (W, gc, sh, bk, micro), p))
    return min(options, key=lambda o: o[0])


def best_clip(c, extra, model, hosts, cores, link, G, precision, latency_s, gradcache):
    """The fastest setting for CLIP: the slice in one pass (micro-batch = slice: the overlap
    window is the whole slice's backward), or GradCache (its extra forward; overlap as one
    micro-batch of 64)."""
    options = []
    for W, gc, sh, bk in GRID:
        micro = 64 if gradcache else 0
        p = sm.predict(c, model + "_clip", hosts, W, cores, link, G, micro, grad_comm=gc,
                       shard=sh, precision=precision, bucket_mb=bk, latency_s=latency_s)
        t = clip_terms(c, extra, model, hosts, W, cores, link, G, latency_s)
        towers = p["compute_s"] * (GRADCACHE if gradcache else 1.0)
        step = p["step_s"] - p["compute_s"] + towers + t["similarity_s"] + t["gather_s"] + \
            t["scatter_s"]
        options.append((step, (W, gc, sh, bk, micro), dict(p, **t, towers_s=towers)))
    return min(options, key=lambda o: o[0])


def settings(s):
    W, gc, sh, bk, micro = s
    return f"{W}, {gc}, {'yes' if sh else 'no'}, {bk:g}, {micro or 'slice'}"


def cmd_table(a):
    c0 = sm.load(a.constants)
    c, extra = clip_constants(c0, a.measured, a.model)
    lat = a.hop_latency_us * 1e-6
    print(f"{a.model}/16 at 224, global batch {a.global_batch}, hosts of {a.cores} cores, "
          f"{a.precision} compute; CLIP: text_base tower, embedding {EMBED}")
    print(f"measured on this machine (1 worker, 1 thread, {a.model} at global batch "
          f"{extra['measured_G']}): CLIP's image tower {extra['r_img']:.3f}x CatLIP's image "
          f"(head and loss included), a caption through the text tower {extra['r_text']:.3f}x "
          f"a CatLIP image; similarity {extra['t_pair'] * 1e9:.1f} ns a pair on one core (at "
          f"G = {extra['pairs_from_G']}); gradient {extra['params_catlip'] / 1e6:.1f} M floats "
          f"(CatLIP) vs {extra['params_clip'] / 1e6:.1f} M (CLIP)")
    print("| hosts | link | CatLIP step | CLIP step | CLIP/CatLIP | CLIP with GradCache | ratio "
          "| CLIP's extra: text tower | similarity | gather + reduce-scatter | allreduce exposed "
          "(CatLIP / CLIP) | settings CatLIP / CLIP (workers/host, grad_comm, shard, bucket MiB, "
          "micro-batch) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for hosts in (64, 256, 1024):
        for rate in ("10gbit", "25gbit", "100gbit"):
            link = sm.bits(rate)
            s1, set1, p1 = best_catlip(c, a.model, hosts, a.cores, link, a.global_batch,
                                       a.precision, lat)
            s2, set2, p2 = best_clip(c, extra, a.model, hosts, a.cores, link, a.global_batch,
                                     a.precision, lat, False)
            s3, _, _ = best_clip(c, extra, a.model, hosts, a.cores, link, a.global_batch,
                                 a.precision, lat, True)
            text = p2["towers_s"] * extra["r_text"] / (extra["r_img"] + extra["r_text"])
            rows.append({"hosts": hosts, "link": rate, "catlip_s": s1, "clip_s": s2,
                         "clip_gradcache_s": s3, "ratio": s2 / s1, "ratio_gradcache": s3 / s1})
            print(f"| {hosts} | {rate} | {s1:.2f} s | {s2:.2f} s | {s2 / s1:.2f}x | {s3:.2f} s | "
                  f"{s3 / s1:.2f}x | {text:.2f} s | {p2['similarity_s'] * 1e3:.0f} ms | "
                  f"{(p2['gather_s'] + p2['scatter_s']) * 1e3:.0f} ms | "
                  f"{p1['exposed_s'] * 1e3:.0f} / {p2['exposed_s'] * 1e3:.0f} ms | "
                  f"{settings(set1)} / {settings(set2)} |")
    lo = min(r["ratio"] for r in rows)
    hi = max(r["ratio_gradcache"] for r in rows)
    print(f"predicted CLIP/CatLIP step-time ratio: {lo:.2f}x .. {hi:.2f}x (the paper: 2.7x)")
    if a.speedup:
        # What the same farm looks like if compute were `speedup` x faster (an accelerator):
        # the communication terms stay, so CLIP's fixed extra weighs more.
        cf = copy.deepcopy(c)
        for m in cf["models"].values():
            for p in ("fp32", "bf16"):
                m[f"s_per_image_{p}"] /= a.speedup
            m["optimizer_s_per_param"] /= a.speedup
        ef = dict(extra, t_pair=extra["t_pair"] / a.speedup)
        print(f"with compute {a.speedup:g}x faster (communication as above):")
        for hosts in (64, 1024):
            for rate in ("10gbit", "100gbit"):
                link = sm.bits(rate)
                s1, _, _ = best_catlip(cf, a.model, hosts, a.cores, link, a.global_batch,
                                       a.precision, lat)
                s2, _, _ = best_clip(cf, ef, a.model, hosts, a.cores, link, a.global_batch,
                                     a.precision, lat, False)
                print(f"  {hosts} hosts, {rate}: CatLIP {s1:.3f} s, CLIP {s2:.3f} s, "
                      f"{s2 / s1:.2f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"extra": extra, "rows": rows}, f, indent=1)


def cmd_predict(a):
    c0 = sm.load(a.constants)
    c, extra = clip_constants(c0, a.measured, a.model)
    link = sm.bits(a.link)
    lat = a.hop_latency_us * 1e-6
    s1, set1, p1 = best_catlip(c, a.model, a.hosts, a.cores, link, a.global_batch, a.precision,
                               lat)
    s2, set2, p2 = best_clip(c, extra, a.model, a.hosts, a.cores, link, a.global_batch,
                             a.precision, lat, a.gradcache)
    print(f"catlip  {s1:.3f} s/step ({settings(set1)})")
    print(f"clip    {s2:.3f} s/step ({settings(set2)}): towers {p2['towers_s']:.3f} s, "
          f"similarity {p2['similarity_s']:.3f} s, gather {p2['gather_s']:.3f} s, "
          f"reduce-scatter {p2['scatter_s']:.3f} s, allreduce exposed {p2['exposed_s']:.3f} s, "
          f"optimizer {p2['optimizer_s']:.3f} s")
    print(f"ratio   {s2 / s1:.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--constants", default=sm.DEFAULT_CONSTANTS)
    ap.add_argument("--measured", required=True, help="bench/catlip_vs_clip.py measure's JSON")
    ap.add_argument("--model", default="vit_base")
    ap.add_argument("--global-batch", type=int, default=65536)
    ap.add_argument("--cores", type=int, default=32)
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    ap.add_argument("--hop-latency-us", type=float, default=30.0)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table")
    t.add_argument("--speedup", type=float, default=0.0,
                   help="also print the ratio with compute this many times faster")
    t.add_argument("--json", help="write the rows as JSON")
    p = sub.add_parser("predict")
    p.add_argument("--hosts", type=int, default=64)
    p.add_argument("--link", default="10gbit")
    p.add_argument("--gradcache", action="store_true")
    a = ap.parse_args()
    {"table": cmd_table, "predict": cmd_predict}[a.cmd](a)


if __name__ == "__main__":
    main()
