#!/usr/bin/env python3
"""Gradient communication across hosts (a benchmark, not a test; as root).

On the multi-host test bed (tests/hosts/bed.sh: three hosts as network namespaces, Open MPI
over TCP between them, every link tbf-limited), for each link rate:
  - `catlip bench allreduce` with one rank per host, fp32 through our ring (train.collectives
    ring, the default), fp32 through Open MPI's MPI_Iallreduce (libnbc: "fp32-mpi") and bf16
    (our ring) on the wire: vit_tiny/16/224's gradient (24,320 classes, 40.9 MB) reduced
    through the workers' own bucketed path, nothing overlapping, every sum checked;
  - `catlip train`, vit_tiny/224, synthetic data, one compute thread per worker, in variants:
      fp32 / fp32-no-overlap / bf16: 3 workers (one per host; the coordinator beside worker 0),
          32 images per worker (global batch 96), the allreduce overlapped with backward
          (train.overlap=true) or after it;
      2/host flat / 2/host hier / 2/host hier bf16: 6 workers (two per host), 16 images per
          worker (global batch 96), train.allreduce flat or hierarchical;
      shard / shard-bf16: 3 workers with train.shard_optimizer=true;
      every fp32 variant X also as X-mpi: the same with train.collectives=mpi (libnbc);
    reporting step time and the share of it the workers spent blocked on gradient
    communication (the coordinator's per-worker summary, each worker's first step left out):
    the exposed communication.
Medians over --runs runs; the variants take turns within each run (A/B interleaved). The three hosts share this machine's cores, so compute per step is
slower than on three real hosts, and ranks that busy-wait compete with the compute: read the
exposed shares as this bed's, not a farm's (bench/scaling_model.py models a farm).

  sudo /usr/bin/python3 bench/hosts_comm.py --catlip build/catlip \\
      [--rates 100mbit,1gbit,unlimited] [--variants fp32,fp32-no-overlap] [--runs 1] \\
      [--steps 4] [--json out.json]
"""
import argparse
import fcntl
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BED = os.path.join(HERE, "..", "tests", "hosts", "bed.sh")
NET = "10.77.31.0/24"
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl="tcp,self", OMPI_MCA_pml="ob1", OMPI_MCA_btl_tcp_if_include=NET,
           OMPI_MCA_oob_tcp_if_include=NET, CATLIP_BED="/var/tmp/catlip-bed")

# name -> (workers per host, images per worker, settings)
VARIANTS = {
    "fp32": (1, 32, ["train.overlap=true"]),
    "fp32-no-overlap": (1, 32, ["train.overlap=false"]),
    "bf16": (1, 32, ["train.grad_comm=bf16"]),
    "2/host-flat": (2, 16, ["train.allreduce=flat"]),
    "2/host-hier": (2, 16, ["train.allreduce=hierarchical"]),
    "2/host-hier-bf16": (2, 16, ["train.allreduce=hierarchical", "train.grad_comm=bf16"]),
    "shard": (1, 32, ["train.shard_optimizer=true"]),
    "shard-bf16": (1, 32, ["train.shard_optimizer=true", "train.grad_comm=bf16"]),
}
for _name in ("fp32", "fp32-no-overlap", "2/host-flat", "2/host-hier", "shard"):
    _w, _i, _s = VARIANTS[_name]
    VARIANTS[_name + "-mpi"] = (_w, _i, _s + ["train.collectives=mpi"])
# bench allreduce runs: name -> (train.grad_comm, train.collectives)
WIRES = {"fp32": ("fp32", "ring"), "fp32-mpi": ("fp32", "mpi"), "bf16": ("bf16", "ring")}


def bed(*args, check=True, timeout=1800):
    p = subprocess.run([BED] + list(args), env=ENV, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check and p.returncode != 0:
        sys.exit(f"bed.sh {' '.join(args)} failed:\n{p.stdout[-3000:]}")
    return p.stdout


def mpirun(hosts, n, args):
    return ["mpirun", "--oversubscribe", "--bind-to", "none", "--mca", "plm_rsh_agent",
            ENV["CATLIP_BED"] + "/rsh", "--host", hosts, "-n", str(n)] + args


def bench_allreduce(catlip, wire):
    grad_comm, collectives = WIRES[wire]
    out = bed("exec", "node1", *mpirun("node1:1,node2:1,node3:1", 3,
                                       [catlip, "bench", "allreduce", "--no-sweep", "--iters",
                                        "5", "--grad-comm", grad_comm, "--collectives",
                                        collectives]))
    m = re.search(r"^result: (.*)$", out, re.M)
    if not m:
        sys.exit("bench allreduce failed:\n" + out[-3000:])
    r = dict(kv.split("=") for kv in m.group(1).split())
    return {k: float(v) for k, v in r.items() if k not in ("grad_comm", "collectives")}


def train(catlip, steps, variant, tmp):
    per_host, per_worker, settings = VARIANTS[variant]
    workers = 3 * per_host
    run_dir = tempfile.mkdtemp(dir=tmp)
    args = [catlip, "train", "--set", f"run_dir={run_dir}", "--set", "model.name=vit_tiny",
            "--set", "model.num_classes=24320", "--set", "data.train=synthetic",
            "--set", f"train.global_batch={workers * per_worker}", "--set", f"train.steps={steps}",
            "--set", "train.threads=1", "--set", "checkpoint.every_steps=0",
            "--set", "log.every_steps=1"]
    for s in settings:
        args += ["--set", s]
    hosts = f"node1:{per_host + 1},node2:{per_host},node3:{per_host}"
    out = bed("exec", "node1", *mpirun(hosts, workers + 1, args), check=False)
    rows = re.findall(r"worker (\d+) summary: \d+ steps, ([\d.]+) s/step, [\d.]+ img/s, "
                      r"data wait ([\d.]+)%, compute ([\d.]+)%, allreduce wait ([\d.]+)%", out)
    if len(rows) != workers:
        print(f"{variant}: catlip train failed:\n" + out[-2000:], flush=True)
        return None
    step = statistics.median(float(r[1]) for r in rows)
    exposed = statistics.median(float(r[4]) for r in rows) / 100
    return step, exposed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--catlip", required=True)
    ap.add_argument("--rates", default="100mbit,1gbit,unlimited")
    ap.add_argument("--variants", default="fp32,fp32-no-overlap",
                    help="comma-separated, of: " + ", ".join(VARIANTS))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--json", help="also write the measurements here (for "
                    "bench/scaling_model.py validate --bed)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("hosts_comm.py: must run as root (the bed makes namespaces)")
    variants = a.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            sys.exit(f"unknown variant {v!r} (known: {', '.join(VARIANTS)})")
    rates = a.rates.split(",")
    tmp = tempfile.mkdtemp(prefix="catlip-hosts-bench.", dir="/var/tmp")
    os.chmod(tmp, 0o755)
    # A private copy of the binary (on the shared file system): a rebuild while the benchmark
    # runs must not swap it.
    catlip = os.path.join(tmp, "catlip")
    subprocess.run(["cp", os.path.abspath(a.catlip), catlip], check=True)
    # One bed at a time on this machine: the tests' lock.
    os.makedirs("/run/lock", exist_ok=True)
    lock = open("/run/lock/catlip-bed.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    rows = []
    try:
        bed("up", "--hosts", "3", "--rate", rates[0])
        for rate in rates:
            bed("rate", rate)
            row = {"rate": rate, "allreduce": {}, "train": {}}
            ar = {wire: [] for wire in WIRES}
            for _ in range(a.runs):
                for wire in WIRES:
                    ar[wire].append(bench_allreduce(catlip, wire))
            for wire, got in ar.items():
                row["allreduce"][wire] = {k: statistics.median(r[k] for r in got)
                                          for k in got[0]}
            got = {v: [] for v in variants}
            for _ in range(a.runs):
                for v in variants:
                    x = train(catlip, a.steps, v, tmp)
                    if x:
                        got[v].append(x)
            for v in variants:
                if got[v]:
                    row["train"][v] = [statistics.median(s for s, _ in got[v]),
                                       statistics.median(e for _, e in got[v])]
            rows.append(row)
            f32, mpi, b16 = (row["allreduce"][w] for w in ("fp32", "fp32-mpi", "bf16"))
            print(f"{rate}: allreduce fp32 ring {f32['grad_ms_median']:.0f} ms "
                  f"({f32['grad_busbw_mbps']:.0f} MB/s bus, latency {f32['latency_us']:.0f} us), "
                  f"fp32 mpi {mpi['grad_ms_median']:.0f} ms ({mpi['grad_busbw_mbps']:.0f} MB/s), "
                  f"bf16 {b16['grad_ms_median']:.0f} ms; " +
                  "; ".join(f"{v} {s:.2f} s/step {100 * e:.1f}% exposed"
                            for v, (s, e) in row["train"].items()), flush=True)
    finally:
        bed("down", check=False)
        subprocess.run(["rm", "-rf", tmp])
        lock.close()
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "hosts": 3,
                       "model": "vit_tiny", "steps": a.steps, "runs": a.runs,
                       "variants": {v: VARIANTS[v] for v in variants}, "wires": WIRES,
                       "rows": rows}, f,
                      indent=1)
    print()
    print("| link | fp32 ring (40.9 MB, 3 hosts) | bus bandwidth | fp32 mpi (libnbc) | bus "
          "bandwidth | latency | bf16 ring |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        f32, mpi, b16 = (r["allreduce"][w] for w in ("fp32", "fp32-mpi", "bf16"))
        print(f"| {r['rate']} | {f32['grad_ms_median']:.0f} ms | {f32['grad_busbw_mbps']:.0f} MB/s "
              f"| {mpi['grad_ms_median']:.0f} ms | {mpi['grad_busbw_mbps']:.0f} MB/s "
              f"| {f32['latency_us']:.0f} us | {b16['grad_ms_median']:.0f} ms |")
    print()
    print("| link | variant | workers | step | exposed communication |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        for v, (s, e) in r["train"].items():
            print(f"| {r['rate']} | {v} | {3 * VARIANTS[v][0]} x {VARIANTS[v][1]} images | "
                  f"{s:.2f} s | {100 * e:.1f}% |")


if __name__ == "__main__":
    main()
