#!/usr/bin/env python3
"""A model of catlip's data-parallel step on a farm, built from measured constants.

  measure   runs `catlip bench step` (per model and precision, one thread, --profile; and
            vit_tiny at 2 threads) and stores the constants in a JSON file:
            parameters, GFLOP per image, seconds per image on one core, the thread efficiency
            of a second core, the optimizer's time per parameter (AdamW + EMA + grad norm)
  predict   step time, images/s and scaling efficiency for one setting
  validate  predictions against bench/hosts_comm.py's measurements on the test bed (--json),
            with the error of each point
  table     the README table: ViT-B/16, the paper's global batch 65,536, on 16-1,024 hosts of
            32 cores at 10, 25 and 100 Gbit/s, each with the settings the model recommends

The model (every term a measured constant or stated assumption):
  workers per host W, cores per host C: each worker computes with c = C / W cores at
      t_img(c) = t_img(1) / (c * e), e = the measured efficiency of the second core (assumed
      to hold at every core count: optimistic for 32 cores);
  a step: each worker does G / (H W) images in micro-batches of m;
      compute = G / (H W) * t_img(c);
  gradient bytes S = 4 P (fp32) or 2 P (grad_comm bf16); buckets k = ceil(4 P / bucket);
  allreduce among N ranks over a link of L bytes/s with per-message latency a:
      ring:   T(N) = k * 2 (N - 1) * a + 2 (N - 1) / N * S / L
      flat with W > 1: N = H W ranks in a ring ordered by host (one inter-host hop per host);
      hierarchical: reduce and broadcast inside the host through shared memory
      (2 x 4 P / shm_bw: the host stages move fp32) and the ring among H leaders;
      L = link rate x the algorithm's efficiency measured on the bed (bus bandwidth / link
      rate at 1 Gbit/s, per-step latency included): our ring (train.collectives ring, fp32 or
      bf16) or Open MPI's libnbc (collectives mpi);
  overlap: the allreduce runs under the last micro-batch's backward (2/3 of its compute), but
      a reduction advances only while its worker is inside MPI (each layer's grad_sync_ready),
      so only a share f of that window hides it (f per algorithm, measured on the bed); the
      last bucket (the embeddings, reported last) never hides:
      exposed = max(T - f window, T * min(1, bucket / 4P)) (+ the bed's skew between workers,
      0 on a farm);
  optimizer: P * t_param, or with train.shard_optimizer P * t_param / N plus an allgather of
      the new fp32 weights ((N - 1) / N * 4 P / L, after the update: exposed);
  step = compute + exposed + optimizer; scaling efficiency = the step without communication
      (compute + optimizer) / the step.

  bench/scaling_model.py measure --catlip build/catlip [--out bench/scaling_constants.json]
  bench/scaling_model.py predict --hosts 64 --link 10gbit --model vit_base --global-batch 65536
  bench/scaling_model.py validate --bed bed.json
  bench/scaling_model.py table
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONSTANTS = os.path.join(HERE, "scaling_constants.json")
MODELS = {"vit_tiny": 16, "vit_base": 4, "vit_large": 2}  # model -> batch for measuring


def bits(rate):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(k|m|g)bit", rate.lower())
    if not m:
        raise SystemExit(f"cannot read link rate '{rate}' (e.g. 100mbit, 10gbit)")
    return float(m.group(1)) * {"k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]


# ---- measure -----------------------------------------------------------------------------

class BenchStepFailed(SystemExit):
    """bench_step's failure: a SystemExit (uncaught, the message ends the script, as before)
    that measure catches to go on with the other models."""


def bench_step(catlip, model, batch, threads, precision):
    cmd = [catlip, "bench", "step", "--model", model, "--batch", str(batch), "--threads",
           str(threads), "--steps", "3", "--warmup", "1", "--precision", precision, "--profile"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = p.stdout
    res = re.search(r"^result: (.*)$", out, re.M)
    params = re.search(r"(\d+) parameters", out)
    gf = re.search(r"\(([\d.]+) GFLOP/step\)", out)
    if not (res and params and gf):
        # A negative code is the signal that ended it (-9: the kernel's OOM killer, or a
        # timeout's kill); say which model, so that one failure does not hide the others.
        raise BenchStepFailed(f"bench step {model} {precision} (batch {batch}, {threads} "
                              f"thread(s)) failed, exit {p.returncode}:\n" + out[-1500:])
    r = dict(kv.split("=", 1) for kv in res.group(1).split())
    # Optimizer: AdamW + EMA and the gradient norm regions of the profile (ms per step).
    opt_ms = sum(float(m.group(1)) for m in
                 re.finditer(r"^\s+(?:adamw_worker|norm_worker)\s+\d+\s+([\d.]+)", out, re.M))
    step_s = float(r["step_ms_median"]) / 1e3
    return {"params": int(params.group(1)), "gflop_per_image": float(gf.group(1)) / batch,
            "s_per_image": (step_s - opt_ms / 1e3) / batch, "optimizer_s": opt_ms / 1e3,
            "fma_peak_gflops": float(r["fma_peak_gflops"])}


def cmd_measure(a):
    catlip = os.path.abspath(a.catlip)
    old = {}
    if os.path.exists(a.out):
        with open(a.out) as f:
            old = json.load(f)
    c = {"machine": subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"],
                                   stdout=subprocess.PIPE, text=True).stdout.strip(),
         "models": dict(old.get("models", {}))}
    failed = []
    for model in a.models.split(","):
        if model not in MODELS:
            raise SystemExit(f"unknown model {model!r} (known: {', '.join(MODELS)})")
    for model in a.models.split(","):
        batch = MODELS[model]
        got = {}
        try:
            for precision in ("fp32", "bf16"):
                m = bench_step(catlip, model, batch, 1, precision)
                got.setdefault("params", m["params"])
                got.setdefault("gflop_per_image", m["gflop_per_image"])
                got[f"s_per_image_{precision}"] = m["s_per_image"]
                got["optimizer_s_per_param"] = m["optimizer_s"] / m["params"]
                print(f"{model} {precision}: {m['s_per_image']:.3f} s/image on one core, "
                      f"optimizer {m['optimizer_s'] * 1e3:.1f} ms ({m['params']} parameters)",
                      flush=True)
            c["models"][model] = got
        except BenchStepFailed as e:
            failed.append(model)
            print(f"{e}\n{model}: kept the previous constants" if model in c["models"]
                  else f"{e}\n{model}: no constants", flush=True)
    if not a.no_threads:
        one = bench_step(catlip, "vit_tiny", 32, 1, "fp32")
        two = bench_step(catlip, "vit_tiny", 32, 2, "fp32")
        c["thread_efficiency"] = one["s_per_image"] / two["s_per_image"] / 2
        print(f"second core: {one['s_per_image'] / two['s_per_image']:.2f}x "
              f"(efficiency {c['thread_efficiency']:.2f})")
    else:
        c["thread_efficiency"] = old.get("thread_efficiency", 1.0)
    c["network"] = old.get("network", {})  # from `validate --bed` (bench/hosts_comm.py)
    with open(a.out, "w") as f:
        json.dump(c, f, indent=1)
    print(f"wrote {a.out}" + (f" ({', '.join(failed)} failed)" if failed else ""))
    if failed:
        sys.exit(1)


# ---- the model ---------------------------------------------------------------------------

def predict(c, model, hosts, workers_per_host, cores, link_bps, global_batch, micro_batch,
            grad_comm="fp32", allreduce="auto", shard=False, overlap=True, precision="fp32",
            bucket_mb=4.0, latency_s=None, mpi_eff=None, shm_bw=None, cpu_share=1.0,
            collectives="ring", overlap_eff=None, skew_s=0.0):
    m = c["models"][model]
    net = c.get("network", {})
    a = latency_s if latency_s is not None else net.get("hop_latency_s", 30e-6)
    eff = mpi_eff if mpi_eff is not None else link_efficiency(net, grad_comm, collectives)
    shm = shm_bw if shm_bw is not None else net.get("shm_bytes_per_s", 2e9)
    H, W = hosts, workers_per_host
    N = H * W
    per_worker = global_batch / N
    micro = min(micro_batch or per_worker, per_worker)
    cpw = cores / W * cpu_share
    e = 1.0 if cpw <= 1 else c["thread_efficiency"]
    t_img = m[f"s_per_image_{precision}"] / (cpw * e)
    compute = per_worker * t_img
    P = m["params"]
    S = P * (2 if grad_comm == "bf16" else 4)
    k = max(1, math.ceil(4 * P / (bucket_mb * 1048576)))
    L = link_bps / 8 * eff
    if allreduce == "auto":
        allreduce = "hierarchical" if W > 1 and H > 1 else "flat"

    def ring(n, nbytes, bw):
        return 0.0 if n <= 1 else k * 2 * (n - 1) * a + 2 * (n - 1) / n * nbytes / bw

    sharded = shard and N > 1
    if sharded:
        # ZeRO-1: the gradients are only reduce-scattered (half a ring), flat over all workers;
        # the new fp32 weights come back in one allgather after the optimizer (below).
        comm = k * (N - 1) * a + (N - 1) / N * S / (L if H > 1 else shm)
    elif allreduce == "hierarchical" and W > 1:
        comm = 2 * 4 * P / shm + ring(H, S, L)  # the host stages move fp32
    elif H == 1:
        comm = ring(N, S, shm)
    else:
        comm = ring(N, S, L)
    # Communication progresses only while a worker is inside MPI: in backward at each layer's
    # grad_sync_ready, so only a share f of the window hides it (measured on the bed, per
    # algorithm: libnbc needs a test for each of its many rounds, our ring one per step).
    f = overlap_eff if overlap_eff is not None else overlap_efficiency(net, grad_comm, collectives)
    window = f * 2 / 3 * micro * t_img if overlap else 0.0
    exposed = max(comm - window, comm * min(1.0, bucket_mb * 1048576 / (4 * P)))
    if not overlap:
        exposed = comm
    # skew_s: waiting for the slowest worker's backward (the bed's workers take turns on shared
    # cores; 0 on a farm of equal hosts).
    exposed += skew_s
    t_param = m["optimizer_s_per_param"] / (cpw * e) if cpw > 1 else m["optimizer_s_per_param"] / cpw
    gather = 0.0
    if sharded:
        # The weights' allgather: fp32 whatever train.grad_comm says, one ring of N-1 steps,
        # nothing left to hide it (the worker counts it as blocked communication too).
        L32 = link_bps / 8 * (mpi_eff if mpi_eff is not None else link_efficiency(net, "fp32", collectives))
        gather = (N - 1) * a + (N - 1) / N * 4 * P / (L32 if H > 1 else shm)
        opt = P * t_param / N + gather
    else:
        opt = P * t_param
    step = compute + exposed + opt
    ideal = compute + (P * t_param / N if sharded else P * t_param)
    return {"step_s": step, "images_per_s": global_batch / step, "compute_s": compute,
            "comm_s": comm + gather, "exposed_s": exposed + gather, "optimizer_s": opt,
            "efficiency": ideal / step, "allreduce": allreduce, "micro_batch": micro}


def link_efficiency(net, grad_comm, collectives="ring"):
    """The share of the link rate an allreduce reaches, per algorithm: our ring (fp32 or bf16
    payload) or Open MPI's libnbc (fp32 MPI_Iallreduce; bf16 with collectives mpi is its MPI_Op,
    not modelled apart)."""
    if grad_comm == "bf16":
        return net.get("ring_efficiency", 0.8)
    if collectives == "mpi":
        return net.get("mpi_efficiency", 0.3)
    return net.get("ring_fp32_efficiency", net.get("ring_efficiency", 0.8))


def overlap_efficiency(net, grad_comm, collectives="ring"):
    """The share of backward during which a bucket's reduction advances (bed-calibrated)."""
    if grad_comm == "fp32" and collectives == "mpi":
        return net.get("overlap_efficiency_mpi", 1.0)
    return net.get("overlap_efficiency_ring", net.get("overlap_efficiency", 1.0))


def cmd_predict(a):
    c = load(a.constants)
    p = predict(c, a.model, a.hosts, a.workers_per_host, a.cores, bits(a.link), a.global_batch,
                a.micro_batch, a.grad_comm, a.allreduce, a.shard, not a.no_overlap, a.precision,
                a.bucket_mb, collectives=a.collectives)
    for k, v in p.items():
        print(f"{k:14s} {v:.4g}" if isinstance(v, float) else f"{k:14s} {v}")


def load(path):
    if not os.path.exists(path):
        raise SystemExit(f"{path} not found: run `bench/scaling_model.py measure` first")
    with open(path) as f:
        return json.load(f)


# ---- validate ----------------------------------------------------------------------------

def merged_bed(paths):
    """bench/hosts_comm.py --json files merged: rows of the same rate joined. Files from before
    the fp32 ring (no "wires" key) measured fp32 through libnbc: their "fp32" is "fp32-mpi"."""
    bed = None
    for path in paths:
        with open(path) as f:
            b = json.load(f)
        if "wires" not in b:
            for row in b["rows"]:
                if "fp32" in row["allreduce"]:
                    row["allreduce"]["fp32-mpi"] = row["allreduce"].pop("fp32")
            for name, (w, i, settings) in list(b["variants"].items()):
                if "train.grad_comm=bf16" not in settings:
                    b["variants"][name] = [w, i, settings + ["train.collectives=mpi"]]
        if bed is None:
            bed = b
            continue
        bed["variants"].update(b["variants"])
        for row in b["rows"]:
            same = next((r for r in bed["rows"] if r["rate"] == row["rate"]), None)
            if same:
                same["train"].update(row["train"])
                for k, v in row["allreduce"].items():
                    same["allreduce"].setdefault(k, v)
            else:
                bed["rows"].append(row)
    return bed


def wire_of(settings):
    """The `bench allreduce` run that matches a variant's settings: fp32 (our ring), fp32-mpi
    (libnbc) or bf16 (our ring)."""
    kv = dict(x.split("=", 1) for x in settings)
    if kv.get("train.grad_comm", "fp32") == "bf16":
        return "bf16"
    return "fp32-mpi" if kv.get("train.collectives", "ring") == "mpi" else "fp32"


def cmd_validate(a):
    """Bed measurements (bench/hosts_comm.py --json): 3 hosts, vit_tiny/224, every variant the
    files hold, all ranks on this machine's cores. The network constants come from the bed's
    `bench allreduce` runs at 1 Gbit/s (or the first limited rate) alone: per algorithm (fp32
    ring, fp32 libnbc, bf16 ring) the share of the link rate it reaches. Two training steps
    calibrate what the bed's shared cores do, and are left out of the errors: the unlimited
    fp32 step without overlap (nothing hides: the CPU factor of compute) and the 1 Gbit/s fp32
    overlapped step (the share of backward that hides communication). Every other step is a
    prediction."""
    c = load(a.constants)
    bed = merged_bed(a.bed)
    ncores = os.cpu_count()
    N = bed["hosts"]
    limited = [r for r in bed["rows"] if r["rate"] != "unlimited"]
    ref = next((r for r in limited if r["rate"] == "1gbit"), limited[0])
    any_ar = next(iter(ref["allreduce"].values()))
    S = 4 * any_ar["grad_floats"]
    hop = any_ar["latency_us"] * 1e-6 / (2 * math.ceil(math.log2(N)))  # recursive doubling
    net = c.setdefault("network", {})
    net.update({"hop_latency_s": hop, "calibrated_on": f"bed {ref['rate']} ({bed['date']})"})
    rate_bytes = bits(ref["rate"]) / 8
    for wire, key in (("fp32", "ring_fp32_efficiency"), ("fp32-mpi", "mpi_efficiency"),
                      ("bf16", "ring_efficiency")):
        m = ref["allreduce"].get(wire)
        if not m:
            continue
        # Per-step latency included: the bed's one-float allreduce (~2 ms a hop, ranks taking
        # turns on shared cores) says little about a ring step's.
        nbytes = S / 2 if wire == "bf16" else S
        net[key] = 2 * (N - 1) / N * nbytes / (m["grad_ms_median"] * 1e-3) / rate_bytes
        print(f"{wire}: {net[key]:.2f} of the link rate ({m['grad_ms_median']:.0f} ms for the "
              f"gradient at {ref['rate']})")

    # Within a bed host the workers talk over TCP through the loopback (btl tcp,self), on the
    # same shared cores: their "shared memory" bandwidth is what the unlimited-rate ring got.
    unl = next((r for r in bed["rows"] if r["rate"] == "unlimited"), None)
    shm = None
    if unl and "fp32" in unl["allreduce"]:
        shm = unl["allreduce"]["fp32"]["grad_busbw_mbps"] * 1e6
        print(f"bed hosts' internal bandwidth: {shm / 1e6:.0f} MB/s (the unlimited-rate fp32 ring)")

    def point(r, v, cpu_factor, skew_s=0.0, overlap_eff=None):
        W, per_worker, settings = bed["variants"][v]
        kv = dict(x.split("=", 1) for x in settings)
        wire = wire_of(settings)
        if r["rate"] == "unlimited":
            # No tbf: the link is what the bed's allreduce of this algorithm got.
            m = r["allreduce"][wire]
            nbytes = S / 2 if wire == "bf16" else S
            link = 8 * 2 * (N - 1) / N * nbytes / (m["grad_ms_median"] * 1e-3)
            lat, eff = 0.0, 1.0
        else:
            link, lat, eff = bits(r["rate"]), 0.0, None  # latency: in the efficiency
        return predict(c, bed["model"], N, W, W, link, N * W * per_worker, 0,
                       kv.get("train.grad_comm", "fp32"), kv.get("train.allreduce", "auto"),
                       kv.get("train.shard_optimizer") == "true",
                       kv.get("train.overlap", "true") == "true", "fp32",
                       latency_s=lat, mpi_eff=eff, cpu_share=ncores / (N * W) / cpu_factor,
                       collectives=kv.get("train.collectives", "ring"), overlap_eff=overlap_eff,
                       skew_s=skew_s, shm_bw=shm)

    # Calibration, left out of the errors (measured exposed = the share of the step the
    # workers spent blocked on gradient communication):
    # - from the 1 Gbit/s fp32 step without overlap: the bed's CPU (its hosts share this
    #   machine's cores with MPI progress and the kernel's network stack), the factor its
    #   compute (the step less its exposed time) takes beyond the core-share prediction; and
    #   skew, what it waits beyond the allreduce `bench allreduce` timed (the workers'
    #   backwards end at different times);
    # - overlap, per algorithm: the share f of backward that hides communication, from the
    #   1 Gbit/s fp32 overlapped steps (our ring, and libnbc where measured):
    #   exposed = max(T - f * window, the last bucket) + skew.
    cpu_factor, skew, calibration = 1.0, 0.0, set()
    if "fp32-no-overlap" in ref["train"]:
        p1 = point(ref, "fp32-no-overlap", 1.0)
        step, share = ref["train"]["fp32-no-overlap"]
        cpu_factor = step * (1 - share) / (p1["step_s"] - p1["exposed_s"])
        skew = max(0.0, step * share - p1["comm_s"])
        calibration.add((ref["rate"], "fp32-no-overlap"))
    net["bed_cpu_factor"], net["bed_skew_s"] = cpu_factor, skew
    for v, key in (("fp32", "overlap_efficiency_ring"), ("fp32-mpi", "overlap_efficiency_mpi")):
        if v not in ref["train"]:
            continue
        p2 = point(ref, v, cpu_factor, 0.0, 1.0)
        step, share = ref["train"][v]
        full = 2 / 3 * p2["compute_s"]  # the window at f = 1 (one micro-batch: all of it)
        net[key] = min(1.0, max(0.0, (p2["comm_s"] - (share * step - skew)) / full))
        calibration.add((ref["rate"], v))
    print(f"bed calibration: compute {cpu_factor:.2f}x the core-share prediction; skew "
          f"{skew * 1e3:.0f} ms a step; overlap hides communication during "
          f"{100 * net.get('overlap_efficiency_ring', 1.0):.0f}% of backward with our ring, "
          f"{100 * net.get('overlap_efficiency_mpi', 1.0):.0f}% with libnbc")
    net.pop("overlap_efficiency", None)

    def point_cal(r, v):
        return point(r, v, cpu_factor, skew)

    worst = 0.0
    print("| link | variant | measured step | predicted | error | measured exposed | predicted |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in bed["rows"]:
        for v, (meas_step, meas_exp) in r["train"].items():
            p = point_cal(r, v)
            err = p["step_s"] / meas_step - 1
            cal = (r["rate"], v) in calibration
            if not cal:
                worst = max(worst, abs(err))
            print(f"| {r['rate']} | {v}{' (calibration)' if cal else ''} | "
                  f"{meas_step:.2f} s | {p['step_s']:.2f} s | "
                  f"{100 * err:+.0f}% | {100 * meas_exp:.1f}% | "
                  f"{100 * p['exposed_s'] / p['step_s']:.1f}% |")
    print(f"worst step-time error {100 * worst:.0f}% ({'within' if worst <= 0.25 else 'OUTSIDE'} "
          f"25%)")
    if a.save:
        with open(a.constants, "w") as f:
            json.dump(c, f, indent=1)
        print(f"network constants saved to {a.constants}")
    sys.exit(0 if worst <= 0.25 else 1)


# ---- table -------------------------------------------------------------------------------

def best(c, model, hosts, link, G, cores, precision, latency_s):
    """The fastest of the settings the model knows, for one farm point."""
    options = []
    for W in (1, 2, 4):
        for grad_comm in ("fp32", "bf16"):
            for shard in (False, True):
                for bucket in (4.0, 25.0, 100.0):
                    per_worker = G / (hosts * W)
                    for micro in (32, 64, 128):
                        if micro > per_worker:
                            continue
                        p = predict(c, model, hosts, W, cores, link, G, micro, grad_comm,
                                    "auto", shard, True, precision, bucket, latency_s=latency_s)
                        options.append((p["step_s"], W, grad_comm, shard, bucket, micro, p))
    return min(options, key=lambda o: o[0])


def cmd_table(a):
    c = load(a.constants)
    print(f"ViT-B/16 at 224, global batch {a.global_batch}, hosts of {a.cores} cores, "
          f"{a.precision} compute (constants measured on {c['machine']}; link efficiencies "
          f"calibrated on {c.get('network', {}).get('calibrated_on', 'defaults')}; per-hop "
          f"latency {a.hop_latency_us:g} us assumed, the bed's is inflated by its shared cores; "
          f"train.collectives ring; overlap hides communication during "
          f"{100 * overlap_efficiency(c.get('network', {}), 'fp32'):.0f}% of backward, as on "
          f"the bed)")
    print("| hosts | link | step | images/s | scaling efficiency | exposed comm | settings "
          "(workers/host, grad_comm, shard, bucket MiB, micro-batch) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for hosts in (16, 64, 256, 1024):
        for rate in ("10gbit", "25gbit", "100gbit"):
            s, W, gc, sh, bk, mb, p = best(c, "vit_base", hosts, bits(rate), a.global_batch,
                                           a.cores, a.precision, a.hop_latency_us * 1e-6)
            print(f"| {hosts} | {rate} | {s:.2f} s | {p['images_per_s']:.0f} | "
                  f"{100 * p['efficiency']:.0f}% | {1e3 * p['exposed_s']:.0f} ms | {W}, {gc}, "
                  f"{'yes' if sh else 'no'}, {bk:g}, {mb} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--constants", default=DEFAULT_CONSTANTS)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--catlip", required=True)
    m.add_argument("--out", default=DEFAULT_CONSTANTS)
    m.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated, of: " + ", ".join(MODELS) + " (others keep their "
                   "constants)")
    m.add_argument("--no-threads", action="store_true",
                   help="keep the stored thread efficiency (skip the 1- and 2-thread runs)")
    p = sub.add_parser("predict")
    p.add_argument("--model", default="vit_base", choices=list(MODELS))
    p.add_argument("--hosts", type=int, default=16)
    p.add_argument("--workers-per-host", type=int, default=1)
    p.add_argument("--cores", type=int, default=32)
    p.add_argument("--link", default="10gbit")
    p.add_argument("--global-batch", type=int, default=65536)
    p.add_argument("--micro-batch", type=int, default=64)
    p.add_argument("--grad-comm", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--allreduce", default="auto", choices=["auto", "flat", "hierarchical"])
    p.add_argument("--shard", action="store_true")
    p.add_argument("--no-overlap", action="store_true")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--bucket-mb", type=float, default=4.0)
    p.add_argument("--collectives", default="ring", choices=["ring", "mpi"])
    v = sub.add_parser("validate")
    v.add_argument("--bed", required=True, action="append",
                   help="bench/hosts_comm.py --json output (repeat to merge runs)")
    v.add_argument("--save", action="store_true", help="store the calibrated network constants")
    t = sub.add_parser("table")
    t.add_argument("--global-batch", type=int, default=65536)
    t.add_argument("--cores", type=int, default=32)
    t.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    t.add_argument("--hop-latency-us", type=float, default=30.0)
    a = ap.parse_args()
    if a.cmd == "measure" and not hasattr(a, "out"):
        a.out = a.constants
    {"measure": cmd_measure, "predict": cmd_predict, "validate": cmd_validate,
     "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    main()
