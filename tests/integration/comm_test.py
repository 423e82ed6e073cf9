#!/usr/bin/env python3
"""Gradient communication options under mpirun (train.grad_comm, train.allreduce,
train.collectives): training with bf16 on the wire follows fp32 communication within a stated
tolerance and repeats bit for bit; hierarchical allreduce (on one machine split into test hosts
with CATLIP_TEST_HOSTS) follows flat within float rounding; our fp32 ring and Open MPI's
collectives train the same numbers (bit for bit at 2 workers, where a sum has one order).

  comm_test.py --catlip build/catlip bf16|hierarchical|collectives

The runs and helpers are runtime_test.py's (small model, synthetic data, metrics.jsonl).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runtime_test as rt  # noqa: E402
from runtime_test import check, digests, losses  # noqa: E402

STEPS = ["train.steps=10", "checkpoint.every_steps=0"]


def run(catlip, workers, run_dir, extra, hosts=None):
    env = dict(rt.ENV)
    if hosts:
        env["CATLIP_TEST_HOSTS"] = str(hosts)
    p = subprocess.run(rt.command(catlip, workers, run_dir, extra), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    return p.returncode, p.stdout


def trained(catlip, tmp, name, workers, extra, hosts=None):
    """Runs, checks completion and identical workers; returns (losses, digest, log)."""
    d = os.path.join(tmp, name)
    rc, log = run(catlip, workers, d, STEPS + extra, hosts)
    dg = digests(log)
    check(rc == 0 and len(dg) == workers, f"{name}: completes (exit {rc})")
    check(len({x[2] for x in dg}) == 1, f"{name}: all workers hold identical weights")
    return losses(d) if rc == 0 else {}, dg[0][2] if dg else None, log


def worst_rel(a, b):
    if sorted(a) != sorted(b) or not b:
        return float("inf")
    return max(abs(a[s] - b[s]) / abs(b[s]) for s in b)


def test_bf16(catlip, tmp):
    # Tolerance: bf16 keeps 8 significant bits, so every summed gradient is off by at most
    # P roundings of 2^-8 relative (worker/ring_allreduce.h), ~0.8% at 2 workers, in
    # directions that do not add up across elements. AdamW divides each update by its own
    # running gradient scale, so a step's update moves by about that fraction of lr (0.002
    # here), and the loss by far less: measured 2.3e-6 (2 workers) and 1.6e-6 (3 workers)
    # worst relative difference over these 10 steps; 1e-4 leaves a 40x margin.
    fp32, fp32_digest, log = trained(catlip, tmp, "fp32", 2, ["train.grad_comm=fp32"])
    check("gradient allreduce: fp32 ring, flat" in log, "fp32 run logs its allreduce")
    for workers in (2, 3):
        name = f"bf16_{workers}w"
        bf16, digest, log = trained(catlip, tmp, name, workers, ["train.grad_comm=bf16"])
        check("gradient allreduce: bf16 ring, flat" in log, f"{name}: logs the bf16 ring")
        w = worst_rel(bf16, fp32)
        print(f"      {name}: worst relative loss difference to 2 workers fp32 {w:.2e}")
        check(w < 1e-4, f"{name}: losses within 1e-4 relative of fp32 communication ({w:.2e})")
        if workers == 2:
            check(digest != fp32_digest, "bf16 communication changes the weights (it ran)")
            _, again, _ = trained(catlip, tmp, "bf16_again", 2, ["train.grad_comm=bf16"])
            check(again == digest, f"bf16 twice: identical weights ({again} vs {digest})")
            _, blocking, _ = trained(catlip, tmp, "bf16_no_overlap", 2,
                                     ["train.grad_comm=bf16", "train.overlap=false"])
            check(blocking == digest,
                  "bf16 without overlap: identical weights (same buckets, same sums)")
    rc, out = run(catlip, 0, os.path.join(tmp, "bad"), ["train.grad_comm=fp16"])
    check(rc != 0 and "train.grad_comm must be fp32 or bf16" in out and
          len(out.strip().splitlines()) == 1, "train.grad_comm=fp16 is a one-line error")


def test_hierarchical(catlip, tmp):
    # 4 workers split as 2 test hosts of 2 (worker w on host w mod 2).
    flat, flat_digest, log = trained(catlip, tmp, "flat", 4, ["train.allreduce=flat"], hosts=2)
    check("gradient allreduce: fp32 ring, flat (2 hosts, up to 2 workers per host)" in log,
          "flat: logs the test hosts")
    auto, auto_digest, log = trained(catlip, tmp, "auto", 4, [], hosts=2)
    check("fp32 ring, hierarchical (2 hosts, up to 2 workers per host)" in log,
          "auto with 2 hosts of 2 workers: hierarchical")
    w = worst_rel(auto, flat)
    print(f"      hierarchical: worst relative loss difference to flat {w:.2e}")
    check(w < 1e-5, f"hierarchical: losses within 1e-5 relative of flat over 10 steps ({w:.2e})")
    _, again, _ = trained(catlip, tmp, "hier_again", 4, ["train.allreduce=hierarchical"],
                          hosts=2)
    check(again == auto_digest, "hierarchical twice: identical weights")
    _, _, log = trained(catlip, tmp, "auto_one_host", 2, [])
    check("fp32 ring, flat (1 host, up to 2 workers per host)" in log, "auto on one host: flat")
    hb, _, log = trained(catlip, tmp, "hier_bf16", 4,
                         ["train.allreduce=hierarchical", "train.grad_comm=bf16"], hosts=2)
    check("bf16 ring, hierarchical" in log, "hierarchical with bf16 between the leaders")
    w = worst_rel(hb, flat)
    print(f"      hierarchical bf16: worst relative loss difference to flat fp32 {w:.2e}")
    check(w < 1e-4, f"hierarchical bf16: losses within 1e-4 relative of flat fp32 ({w:.2e})")
    rc, out = run(catlip, 0, os.path.join(tmp, "bad"), ["train.allreduce=tree"])
    check(rc != 0 and "train.allreduce must be auto, flat or hierarchical" in out and
          len(out.strip().splitlines()) == 1, "train.allreduce=tree is a one-line error")


def test_collectives(catlip, tmp):
    # train.collectives: ring (the default) against mpi (Open MPI's MPI_Iallreduce). At 2
    # workers every gradient is a sum of two terms, which has one result in any order: the
    # same bits. At 3 the ring adds the terms starting from another rank for each chunk, libnbc
    # in its own order: losses within 1e-6 relative (fp32 rounding of the sums, ~1e-7, through
    # 10 AdamW steps).
    for workers in (2, 3):
        ring, ring_digest, log = trained(catlip, tmp, f"ring_{workers}w", workers, [])
        check("gradient allreduce: fp32 ring, flat" in log, f"ring_{workers}w: logs the ring")
        mpi, mpi_digest, log = trained(catlip, tmp, f"mpi_{workers}w", workers,
                                       ["train.collectives=mpi"])
        check("gradient allreduce: fp32 MPI, flat" in log, f"mpi_{workers}w: logs MPI's")
        w = worst_rel(mpi, ring)
        print(f"      {workers} workers: worst relative loss difference ring/mpi {w:.2e}, "
              f"weights {'identical' if mpi_digest == ring_digest else 'different'}")
        if workers == 2:
            check(w == 0.0 and mpi_digest == ring_digest,
                  "2 workers: ring and mpi give the same losses and weights, bit for bit")
        else:
            check(w < 1e-6, f"3 workers: ring and mpi losses within 1e-6 relative ({w:.2e})")
    rc, out = run(catlip, 0, os.path.join(tmp, "bad"), ["train.collectives=nccl"])
    check(rc != 0 and "train.collectives must be ring or mpi" in out and
          len(out.strip().splitlines()) == 1, "train.collectives=nccl is a one-line error")


if __name__ == "__main__":
    rt.main_for(globals(), "catlip_comm_")
