#!/usr/bin/python3
"""mAP, precision@k and top-k accuracy of common/eval/metrics.c against straightforward numpy
implementations, on random scores (with deliberate ties and empty classes/samples).

  check_metrics.py EVAL_TOOL
"""
import os
import subprocess
import sys
import json
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import safetensors_io  # noqa: E402


def ap_reference(scores, labels):
    """AP as sklearn defines it: one step per distinct threshold, ties enter together."""
    pos = labels.sum()
    if pos == 0:
        return None
    ap, prev_recall = 0.0, 0.0
    for t in np.unique(scores)[::-1]:
        chosen = scores >= t
        tp = float((labels * chosen).sum())
        recall = tp / pos
        ap += (recall - prev_recall) * (tp / chosen.sum())
        prev_recall = recall
    return ap


def main():
    tool = sys.argv[1]
    rng = np.random.default_rng(1234)
    failures = []
    for trial in range(4):
        N, V = int(rng.integers(5, 60)), int(rng.integers(2, 40))
        scores = rng.standard_normal((N, V)).astype(np.float32)
        if trial % 2:  # many ties
            scores = np.round(scores * 2) / 2
        labels = (rng.random((N, V)) < 0.15).astype(np.float32)
        labels[:, 0] = 0  # a class without positives
        labels[0, :] = 0  # a sample without positives
        M, K = int(rng.integers(10, 80)), int(rng.integers(2, 12))
        cls_scores = rng.standard_normal((M, K)).astype(np.float32)
        if trial % 2:
            cls_scores = np.round(cls_scores)
        cls_labels = rng.integers(0, K, M).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "in.safetensors")
            safetensors_io.write(path, {"scores": scores, "labels": labels, "cls_scores": cls_scores,
                                        "cls_labels": cls_labels})
            out = json.loads(subprocess.run([tool, "metrics", path], check=True, stdout=subprocess.PIPE,
                                            text=True).stdout)
        cols = [ap_reference(scores[:, v], labels[:, v]) for v in range(V)]
        rows = [ap_reference(scores[n], labels[n]) for n in range(N)]
        ref = {
            "map_macro": np.mean([a for a in cols if a is not None]),
            "map_samples": np.mean([a for a in rows if a is not None]),
            "map_micro": ap_reference(scores.ravel(), labels.ravel()),
            "classes_scored": sum(a is not None for a in cols),
            "samples_scored": sum(a is not None for a in rows),
        }
        scored = [n for n in range(N) if labels[n].sum() > 0]
        order = np.argsort(-scores, axis=1, kind="stable")
        ref["precision_at"] = [np.mean([labels[n, order[n, :k]].sum() / k for n in scored]) for k in (1, 3, 5)]
        cls_order = np.argsort(-cls_scores, axis=1, kind="stable")
        ref["top_k"] = [np.mean([cls_labels[i] in cls_order[i, :k] for i in range(M)]) for k in (1, 3, 5)]
        for key in ("classes_scored", "samples_scored"):
            if out[key] != ref[key]:
                failures.append(f"trial {trial}: {key} {out[key]} != {ref[key]}")
        for key in ("map_macro", "map_samples", "map_micro"):
            if abs(out[key] - ref[key]) > 1e-9:
                failures.append(f"trial {trial}: {key} {out[key]:.12f} != numpy {ref[key]:.12f}")
        for key in ("precision_at", "top_k"):
            for a, b in zip(out[key], ref[key]):
                if abs(a - b) > 1e-12:
                    failures.append(f"trial {trial}: {key} {out[key]} != numpy {ref[key]}")
                    break
        for v, (a, b) in enumerate(zip(out["ap_columns"], cols)):
            if (b is None and a != -1) or (b is not None and abs(a - b) > 1e-9):
                failures.append(f"trial {trial}: AP of column {v}: {a} != numpy {b}")
        print(f"trial {trial}: N={N} V={V} mAP macro {out['map_macro']:.4f} samples {out['map_samples']:.4f} "
              f"micro {out['map_micro']:.4f}; M={M} K={K} top-1 {out['top_k'][0]:.4f}")
    for f in failures:
        print("FAIL", f)
    print("metrics match numpy" if not failures else f"{len(failures)} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
