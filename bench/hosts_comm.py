#!/usr/bin/env python3
"""Gradient communication across hosts (a benchmark, not a test; as root).

On the multi-host test bed (tests/hosts/bed.sh: three hosts as network namespaces, Open MPI
over TCP between them, every link tbf-limited), for each link rate:
  - `catlip bench allreduce` with one rank per host: vit_tiny/16/224's gradient (24,320
    classes, 40.9 MB) reduced through the workers' own bucketed path, nothing overlapping;
  - `catlip train` with 3 workers (one per host; the coordinator beside worker 0 on node1),
    vit_tiny/224, 32 images per worker (global batch 96), synthetic data, one compute thread
    each, with the allreduce overlapped with backward (train.overlap=true) and after it
    (false): step time and the share of it the workers spent blocked on the allreduce
    (the coordinator's per-worker summary; each worker's first step left out) — the exposed
    communication.
Medians over --runs runs. The three hosts share this machine's cores, so compute per step is
slower than on three real hosts: the exposed share here is a lower bound of a real farm's
with the same link (more compute to hide behind), and the allreduce times are the link's.

  sudo /usr/bin/python3 bench/hosts_comm.py --catlip build/catlip \
      [--rates 100mbit,1gbit,unlimited] [--runs 1] [--steps 6]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BED = os.path.join(HERE, "..", "tests", "hosts", "bed.sh")
NET = "10.77.31.0/24"
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl="tcp,self", OMPI_MCA_pml="ob1", OMPI_MCA_btl_tcp_if_include=NET,
           OMPI_MCA_oob_tcp_if_include=NET, CATLIP_BED="/var/tmp/catlip-bed")


def bed(*args, check=True, timeout=900):
    p = subprocess.run([BED] + list(args), env=ENV, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check and p.returncode != 0:
        sys.exit(f"bed.sh {' '.join(args)} failed:\n{p.stdout[-3000:]}")
    return p.stdout


def mpirun(hosts, n, args):
    return ["mpirun", "--oversubscribe", "--bind-to", "none", "--mca", "plm_rsh_agent",
            ENV["CATLIP_BED"] + "/rsh", "--host", hosts, "-n", str(n)] + args


def bench_allreduce(catlip):
    out = bed("exec", "node1", *mpirun("node1:1,node2:1,node3:1", 3,
                                       [catlip, "bench", "allreduce", "--no-sweep", "--iters",
                                        "5"]))
    m = re.search(r"^result: (.*)$", out, re.M)
    if not m:
        sys.exit("bench allreduce failed:\n" + out[-3000:])
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def train(catlip, steps, overlap, tmp):
    run_dir = tempfile.mkdtemp(dir=tmp)
    args = [catlip, "train", "--set", f"run_dir={run_dir}", "--set", "model.name=vit_tiny",
            "--set", "model.num_classes=24320", "--set", "data.train=synthetic",
            "--set", "train.global_batch=96", "--set", f"train.steps={steps}",
            "--set", "train.threads=1", "--set", f"train.overlap={str(overlap).lower()}",
            "--set", "checkpoint.every_steps=0", "--set", "log.every_steps=1"]
    out = bed("exec", "node1", *mpirun("node1:2,node2:1,node3:1", 4, args), timeout=3600)
    rows = re.findall(r"worker (\d+) summary: \d+ steps, ([\d.]+) s/step, [\d.]+ img/s, "
                      r"data wait ([\d.]+)%, compute ([\d.]+)%, allreduce wait ([\d.]+)%", out)
    if len(rows) != 3:
        sys.exit("catlip train failed:\n" + out[-3000:])
    step = statistics.median(float(r[1]) for r in rows)
    exposed = statistics.median(float(r[4]) for r in rows) / 100
    return step, exposed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--catlip", required=True)
    ap.add_argument("--rates", default="100mbit,1gbit,unlimited")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--json", help="also write the measurements here (for "
                    "bench/scaling_model.py validate --bed)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("hosts_comm.py: must run as root (the bed makes namespaces)")
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
    import fcntl
    fcntl.flock(lock, fcntl.LOCK_EX)
    rows = []
    try:
        bed("up", "--hosts", "3", "--rate", rates[0])
        for rate in rates:
            bed("rate", rate)
            ar, st = [], {True: [], False: []}
            for _ in range(a.runs):
                ar.append(bench_allreduce(catlip))
                for overlap in (True, False):
                    st[overlap].append(train(catlip, a.steps, overlap, tmp))
            grad_ms = statistics.median(r["grad_ms_median"] for r in ar)
            busbw = statistics.median(r["grad_busbw_mbps"] for r in ar)
            lat = statistics.median(r["latency_us"] for r in ar)
            row = {"rate": rate, "grad_ms": grad_ms, "busbw": busbw, "lat": lat,
                   "buckets": int(ar[0]["buckets"]), "grad_floats": int(ar[0]["grad_floats"])}
            for overlap in (True, False):
                row[overlap] = (statistics.median(s for s, _ in st[overlap]),
                                statistics.median(e for _, e in st[overlap]))
            rows.append(row)
            print(f"{rate}: allreduce {grad_ms:.0f} ms ({busbw:.0f} MB/s bus, latency "
                  f"{lat:.0f} us); step overlapped {row[True][0]:.2f} s with "
                  f"{100 * row[True][1]:.1f}% exposed, after backward {row[False][0]:.2f} s with "
                  f"{100 * row[False][1]:.1f}% exposed", flush=True)
    finally:
        bed("down", check=False)
        subprocess.run(["rm", "-rf", tmp])
        lock.close()
    if a.json:
        import time
        with open(a.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "hosts": 3,
                       "model": "vit_tiny", "global_batch": 96, "steps": a.steps,
                       "runs": a.runs, "grad_floats": rows[0]["grad_floats"],
                       "rows": [{"rate": r["rate"], "grad_ms": r["grad_ms"],
                                 "busbw_mbps": r["busbw"], "latency_us": r["lat"],
                                 "buckets": r["buckets"], "overlap": list(r[True]),
                                 "no_overlap": list(r[False])} for r in rows]}, f, indent=1)
    print()
    print("| link | allreduce of vit_tiny's gradient (40.9 MB, 3 hosts) | bus bandwidth | latency "
          "| step, overlapped | exposed comm, overlapped | step, after backward | exposed comm, "
          "after backward |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['rate']} | {r['grad_ms']:.0f} ms | {r['busbw']:.0f} MB/s | {r['lat']:.0f} us "
              f"| {r[True][0]:.2f} s | {100 * r[True][1]:.1f}% | {r[False][0]:.2f} s "
              f"| {100 * r[False][1]:.1f}% |")


if __name__ == "__main__":
    main()
