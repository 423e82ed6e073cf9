#!/usr/bin/env python3
"""Gradient accumulation (train.micro_batch) under mpirun: a step split into micro-batches
equals the unsplit step up to float summation order, resumes bit-identically, keeps the
batch_mean over skipped samples, and its peak memory follows the micro-batch.

  accum_test.py --catlip build/catlip equivalence|resume|skips|memory|timeout

The runs and helpers are runtime_test.py's (small model, synthetic data, metrics.jsonl).
"""
import io
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runtime_test as rt  # noqa: E402
from runtime_test import check, digests, losses, run  # noqa: E402


def worst_rel(a, b):
    return max(abs(a[s] - b[s]) / abs(b[s]) for s in b)


def test_equivalence(catlip, tmp):
    # G = 12: 1 worker x 4 micro-batches of 3, 4 workers x their slice of 3, 1 worker x 12.
    steps = ["train.steps=10", "checkpoint.every_steps=0"]
    runs = {
        "1 worker x 12": (1, []),
        "1 worker x 4 micro-batches": (1, ["train.micro_batch=3"]),
        "4 workers x 1": (4, []),
        "single process x 4 micro-batches": (0, ["train.micro_batch=3"]),
        "2 workers x 3 micro-batches (overlapped allreduce)": (2, ["train.micro_batch=2"]),
        "1 worker x uneven micro-batches 5+5+2": (1, ["train.micro_batch=5"]),
        "micro-batch larger than the slice (unsplit)": (1, ["train.micro_batch=64"]),
    }
    results = {}
    for i, (name, (workers, extra)) in enumerate(runs.items()):
        d = os.path.join(tmp, f"r{i}")
        rc, log = run(catlip, workers, d, steps + extra)
        dg = digests(log)
        check(rc == 0 and len(dg) == max(workers, 1), f"{name}: completes (exit {rc})")
        check(len({x[2] for x in dg}) == 1, f"{name}: all workers hold identical weights")
        if workers == 1 and extra and extra[0] != "train.micro_batch=64":
            check("gradient accumulation:" in log, f"{name}: logs the accumulation")
        results[name] = (losses(d), dg[0][2] if dg else None)
    ref, ref_digest = results["1 worker x 12"]
    check(sorted(ref) == list(range(1, 11)), "reference run logged 10 steps")
    for name, (ls, _) in results.items():
        if name == "1 worker x 12":
            continue
        w = worst_rel(ls, ref)
        print(f"      {name}: worst relative loss difference {w:.2e}")
        check(sorted(ls) == sorted(ref) and w < 1e-5,
              f"{name}: losses within 1e-5 relative of 1 worker x 12 over 10 steps ({w:.2e})")
    # The default path is untouched: micro_batch >= the slice is bit for bit the unsplit run.
    check(results["micro-batch larger than the slice (unsplit)"][1] == ref_digest,
          "micro_batch >= slice gives bit-identical weights to the default")
    rc, out = run(catlip, 0, os.path.join(tmp, "bad"), ["train.micro_batch=-1"])
    check(rc != 0 and "train.micro_batch" in out, "a negative micro_batch is a one-line error")


def test_resume(catlip, tmp):
    extra = ["train.steps=20", "checkpoint.every_steps=10", "train.micro_batch=2"]
    want = rt.reference_digest(catlip, tmp, 2, extra, "ref")
    ref_losses = losses(os.path.join(tmp, "ref"))
    d = os.path.join(tmp, "resumed")
    rc, _ = run(catlip, 2, d, extra)
    ck = os.path.join(d, "checkpoints", "ckpt-0000000010.pb")
    check(rc == 0 and os.path.exists(ck), "micro-batched run checkpoints at step 10")
    os.remove(os.path.join(d, "metrics.jsonl"))
    rc, log = run(catlip, 2, d, extra, ck)
    dg = digests(log)
    check(rc == 0 and dg and dg[0][2] == want,
          f"resume at step 10 ends bit-identical ({dg[0][2] if dg else None} vs {want})")
    check(sorted(losses(d)) == list(range(11, 21)), "the resumed run continues at step 11")
    # Elastic: the 2-worker micro-batched checkpoint continued on 1 worker and on 3 workers
    # with other micro-batch sizes follows the same losses.
    for n, mb in ((1, 4), (3, 1)):
        e = os.path.join(tmp, f"el{n}")
        os.makedirs(e)
        rc, log = run(catlip, n, e, extra[:2] + [f"train.micro_batch={mb}"], ck)
        ls = losses(e)
        w = max(abs(ls[s] - ref_losses[s]) / abs(ref_losses[s]) for s in range(11, 21)) if ls else 1
        check(rc == 0 and sorted(ls) == list(range(11, 21)) and w < 1e-5,
              f"elastic resume on {n} worker(s), micro-batch {mb}: same losses ({w:.2e})")


def test_timeout(catlip, tmp):
    # A step of many micro-batches may outlast train.worker_timeout with no collective to wait
    # in: the workers heartbeat between micro-batches, so the coordinator does not call them
    # lost. Steps of ~5-8 s here (quiet machine) against a 2 s timeout, in micro-batches of 2
    # images (~0.05 s). Under a load of 6-8 on 2 cores a worker was once silent just over 1 s
    # mid-step even so (OS scheduling; micro-batches of 8 took 1.2 s there), hence 2 s.
    extra = ["model.image_size=64", "model.dim=192", "model.patch_size=8", "model.depth=12",
             "train.global_batch=512", "train.micro_batch=2", "train.steps=2",
             "checkpoint.every_steps=0", "train.worker_timeout=2"]
    rc, log = run(catlip, 2, os.path.join(tmp, "slow"), extra)
    check(rc == 0 and "lost" not in log and len(digests(log)) == 2,
          f"2 workers with steps longer than worker_timeout finish (exit {rc})")


def make_shards(catlip, tmp, broken):
    here = os.path.dirname(os.path.abspath(__file__))
    ds = os.path.join(tmp, "ds")
    subprocess.run([sys.executable, os.path.join(here, "make_dataset.py"), ds, "--count", "240",
                    "--broken", str(broken)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([catlip, "shards", "make", "--tsv", os.path.join(ds, "list.tsv"), "-o",
                    os.path.join(ds, "shards"), "--samples-per-shard", "100"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # shards make refuses images that do not decode, so damage some inside the tars: every
    # 25th JPEG truncated to a third (found when decoded: bad_image).
    import tarfile
    for i in range(3):
        path = os.path.join(ds, "shards", f"{i:05d}.tar")
        with tarfile.open(path) as t:
            members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
        with tarfile.open(path + ".new", "w", format=tarfile.USTAR_FORMAT) as t:
            for k, (m, data) in enumerate(members):
                if m.name.endswith(".jpg") and k % (25 * 3) == 0:
                    data = data[: len(data) // 3]
                m.size = len(data)
                t.addfile(m, io.BytesIO(data))
        os.replace(path + ".new", path)
    pattern = os.path.join(ds, "shards", "{00000..00002}.tar")
    vocab = os.path.join(ds, "vocab.tsv")
    subprocess.run([catlip, "vocab", "build", "--data", pattern, "--min-count", "5", "-o", vocab,
                    "--quiet"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return pattern, vocab


def test_skips(catlip, tmp):
    pattern, vocab = make_shards(catlip, tmp, 8)
    data = [f"data.train={pattern}", f"data.vocab={vocab}", "model.num_classes=0",
            "model.image_size=32", "train.global_batch=24", "train.epochs=1",
            "checkpoint.every_steps=0", "optim.lr=0.003", "data.decode_threads=2"]
    results = {}
    for name, workers, extra in (("unsplit, 2 workers", 2, []),
                                 ("2 workers x micro-batch 5", 2, ["train.micro_batch=5"]),
                                 ("1 worker x micro-batch 7", 1, ["train.micro_batch=7"]),
                                 # single images: a skipped one leaves an empty micro-batch
                                 ("2 workers x micro-batch 1", 2, ["train.micro_batch=1"])):
        d = os.path.join(tmp, name.replace(" ", "_").replace(",", ""))
        rc, log = run(catlip, workers, d, data + extra)
        check(rc == 0, f"{name}: trains on shards with broken images (exit {rc})")
        if extra:
            check("gradient accumulation:" in log, f"{name}: accumulates over micro-batches")
        last = json.loads(open(os.path.join(d, "metrics.jsonl")).read().splitlines()[-1])
        skipped = last.get("skipped", {})
        check(skipped.get("bad_image", 0) > 0 and skipped.get("no_synset", 0) > 0,
              f"{name}: samples were skipped ({skipped})")
        results[name] = (losses(d), skipped)
    ref, ref_skips = results["unsplit, 2 workers"]
    for name, (ls, skipped) in results.items():
        if ls is ref:
            continue
        w = worst_rel(ls, ref)
        print(f"      {name}: worst relative loss difference {w:.2e} over {len(ls)} steps "
              f"(losses {ls[min(ls)]:.6f} .. {ls[max(ls)]:.6f})")
        check(sorted(ls) == sorted(ref) and w < 1e-5,
              f"{name}: losses within 1e-5 relative of the unsplit run ({w:.2e})")


def peak_rss_mib(catlip, workers, d, extra):
    rc, log = run(catlip, workers, d, extra)
    rss = [float(x) for x in rt.re.findall(r"worker \d+: peak RSS (\d+) MiB", log)]
    return rc, max(rss) if rss else 0.0


def test_memory(catlip, tmp):
    # Activations dominate at this size: ~1.4 MiB an image, 256 images unsplit.
    big = ["model.image_size=64", "model.dim=192", "model.heads=3", "model.patch_size=8",
           "train.global_batch=256", "train.steps=1", "checkpoint.every_steps=0",
           "train.threads=2"]
    rc1, whole = peak_rss_mib(catlip, 0, os.path.join(tmp, "whole"), big)
    rc2, split = peak_rss_mib(catlip, 0, os.path.join(tmp, "split"), big + ["train.micro_batch=16"])
    print(f"      peak RSS: unsplit {whole:.0f} MiB, micro-batch 16 {split:.0f} MiB")
    check(rc1 == 0 and rc2 == 0 and whole > 0 and split > 0, "both runs complete and report RSS")
    check(split < 0.6 * whole, f"micro-batching cuts peak RSS ({split:.0f} < 0.6 x {whole:.0f} MiB)")
    # Shards: the pipeline's decoded image buffers (a ring of 2) follow the micro-batch too.
    # Large images, a model too small for its activations to matter.
    pattern, vocab = make_shards(catlip, tmp, 0)
    data = [f"data.train={pattern}", f"data.vocab={vocab}", "model.num_classes=0",
            "model.image_size=160", "model.patch_size=32", "model.dim=48", "model.depth=1",
            "train.global_batch=200", "train.steps=1", "checkpoint.every_steps=0",
            "train.threads=2"]
    rc1, whole = peak_rss_mib(catlip, 0, os.path.join(tmp, "shards_whole"), data)
    rc2, split = peak_rss_mib(catlip, 0, os.path.join(tmp, "shards_split"),
                              data + ["train.micro_batch=8"])
    print(f"      shards, peak RSS: unsplit {whole:.0f} MiB, micro-batch 8 {split:.0f} MiB")
    check(rc1 == 0 and rc2 == 0 and whole > 0 and split > 0, "both shard runs complete")
    check(split < 0.6 * whole,
          f"shards: micro-batching cuts peak RSS ({split:.0f} < 0.6 x {whole:.0f} MiB)")


if __name__ == "__main__":
    rt.main_for(globals(), "catlip_accum_")
