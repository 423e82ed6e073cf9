#!/usr/bin/python3
"""End to end on a tiny model: train, then predict / embed / export / transfer / eval.

The export check is the issue's: Debian's python3-torch loads `catlip export`'s safetensors
(header parsed with json, tensors with numpy), builds a ViT with the same parameter names
(tests/reference/vit_ref.py, load_state_dict strict, no renaming), and its logits on the images
`catlip predict --dump` preprocessed must match catlip's: max |torch - catlip| / max |torch| < 1e-4
(float64 PyTorch against catlip's float32). Then bad inputs must give one-line errors.

  check_commands.py CATLIP
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import vit_ref  # noqa: E402

FAILURES = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        FAILURES.append(what)


# Under -DCATLIP_SANITIZE=ON, Open MPI's plugins leak at exit in the MPI commands that only set
# the test up (vocab build, train); the commands under test run with leak detection on.
SETUP_ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")


def run(args, expect=0, setup=False):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=SETUP_ENV if setup else None)
    if "runtime error:" in p.stderr or "AddressSanitizer" in p.stderr:
        check(False, f"{os.path.basename(args[0])} {args[1]}: sanitizer report: {p.stderr[-2000:]}")
    if expect is not None and p.returncode != expect:
        print(p.stdout[-3000:], p.stderr[-3000:])
        raise SystemExit(f"{' '.join(args[:3])}... exited {p.returncode}, expected {expect}")
    return p


def read_safetensors(path):
    """The format itself: u64 header length, JSON header, raw little-endian data."""
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    dtypes = {"F32": "<f4", "F64": "<f8", "BF16": "<u2", "I32": "<i4"}
    arrays = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        a = np.frombuffer(blob[8 + n + b:8 + n + e], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        if info["dtype"] == "BF16":  # the top half of a float32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        arrays[name] = a
    return arrays, meta


def torch_model(path):
    arrays, meta = read_safetensors(path)
    cfg = json.loads(meta["model_config"])
    model = vit_ref.build_model(cfg, torch.float64)
    state = {k: torch.from_numpy(v.astype(np.float64)) for k, v in arrays.items()}
    model.load_state_dict(state, strict=True)  # same names, nothing renamed
    model.eval()
    return model, arrays, meta, cfg


def relative_diff(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


def one_line_error(p, what, needle):
    lines = p.stderr.strip().splitlines()
    ok = p.returncode != 0 and len(lines) == 1 and lines[0].startswith("catlip: error:") and needle in lines[0]
    check(ok, f"{what}: one-line error containing '{needle}' (got exit {p.returncode}: {p.stderr.strip()[:200]!r})")


def main():
    catlip = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="catlip_eval_")
    try:
        ds = os.path.join(tmp, "ds")
        subprocess.run([sys.executable, os.path.join(HERE, "..", "integration", "make_dataset.py"), ds,
                        "--count", "120", "--size", "64"], check=True, stdout=subprocess.DEVNULL)
        run([catlip, "shards", "make", "--tsv", os.path.join(ds, "list.tsv"), "-o", os.path.join(ds, "shards"),
             "--samples-per-shard", "60"], setup=True)
        pattern = os.path.join(ds, "shards", "{00000..00001}.tar")
        vocab = os.path.join(ds, "vocab.tsv")
        run([catlip, "vocab", "build", "--data", pattern, "--min-count", "3", "-o", vocab, "--quiet"], setup=True)
        rd = os.path.join(tmp, "run")
        run([catlip, "train", "--set", f"run_dir={rd}", "--set", f"data.train={pattern}", "--set",
             f"data.vocab={vocab}", "--set", "model.num_classes=0", "--set", "model.image_size=32", "--set",
             "model.patch_size=8", "--set", "model.dim=48", "--set", "model.heads=3", "--set", "model.depth=2",
             "--set", "train.steps=12", "--set", "train.global_batch=20", "--set", "optim.ema=0.1"], setup=True)
        images = [os.path.join(ds, "images", f"{i:05d}.jpg") for i in range(7)]

        # predict: top-k lines, and the dump of preprocessed images and logits.
        dump = os.path.join(tmp, "predict.safetensors")
        p = run([catlip, "predict", "--checkpoint", rd, "--top", "3", "--dump", dump] + images)
        lines = p.stdout.splitlines()
        check(len(lines) == 4 * len(images) and lines[0] == images[0] and lines[1].startswith("    0."),
              "predict prints each image and its top-3 synsets with probabilities")
        vocab_ids = [line.split("\t")[0] for line in open(vocab) if not line.startswith("#")]
        check(lines[1].split()[1] in vocab_ids, "predict names vocabulary synsets")
        dumped, _ = read_safetensors(dump)

        for ema in (False, True):
            tag = "EMA" if ema else "raw"
            out = os.path.join(tmp, f"model{'_ema' if ema else ''}.safetensors")
            run([catlip, "export", "--checkpoint", rd, "-o", out] + (["--ema"] if ema else []))
            model, arrays, meta, cfg = torch_model(out)
            check(meta.get("format") == "catlip-vit" and meta.get("weights") == ("ema" if ema else "params"),
                  f"export ({tag}): metadata format and weights kind")
            names = list(model.state_dict().keys())
            check(sorted(names) == sorted(arrays.keys()), f"export ({tag}): tensor names are the PyTorch model's")
            if ema:
                p = run([catlip, "predict", "--checkpoint", rd, "--ema", "--dump", dump] + images)
                dumped, _ = read_safetensors(dump)
            with torch.no_grad():
                want = model(torch.from_numpy(dumped["images"].astype(np.float64))).numpy()
            d = relative_diff(dumped["logits"].astype(np.float64), want)
            print(f"     export ({tag}): max |catlip - torch| / max |torch| = {d:.3e} over {want.size} logits")
            check(d < 1e-4, f"export ({tag}): PyTorch logits match catlip predict (rel {d:.2e} < 1e-4)")
            meta_vocab = json.loads(meta["vocab"])
            check([v[0] for v in meta_vocab] == vocab_ids, f"export ({tag}): metadata vocabulary is the run's")
        # --precision bf16: export writes exactly torch's bfloat16 rounding of the fp32 export;
        # predict's bf16 forward stays within bf16 rounding of the fp32 logits.
        out16 = os.path.join(tmp, "model_bf16.safetensors")
        run([catlip, "export", "--checkpoint", rd, "-o", out16, "--precision", "bf16"])
        half, _ = read_safetensors(out16)
        full, _ = read_safetensors(os.path.join(tmp, "model.safetensors"))
        same = all(np.array_equal(half[k], torch.from_numpy(full[k].copy()).to(torch.bfloat16).float().numpy())
                   for k in full)
        check(same and sorted(half) == sorted(full), "export --precision bf16: BF16 tensors, torch's rounding")
        dump16 = os.path.join(tmp, "predict_bf16.safetensors")
        run([catlip, "predict", "--checkpoint", rd, "--precision", "bf16", "--dump", dump16] + images)
        run([catlip, "predict", "--checkpoint", rd, "--dump", dump] + images)
        d = relative_diff(read_safetensors(dump16)[0]["logits"].astype(np.float64),
                          read_safetensors(dump)[0]["logits"].astype(np.float64))
        check(0 < d < 2e-2, f"predict --precision bf16: logits within bf16 rounding of fp32 (rel {d:.2e})")
        one_line_error(run([catlip, "predict", "--checkpoint", rd, "--precision", "fp8", images[0]], None),
                       "predict with an unknown precision", "fp8")
        tsv = os.path.join(tmp, "model.vocab.tsv")
        rows = [line.split("\t")[:2] for line in open(tsv) if not line.startswith("#")]
        check([r[0] for r in rows] == vocab_ids and [r[1] for r in rows] == [v[1] for v in meta_vocab],
              "export writes the vocabulary TSV beside the weights")

        # embed: the pooled features (final LayerNorm of the CLS token) as .npy.
        npy = os.path.join(tmp, "features.npy")
        run([catlip, "embed", "--checkpoint", rd, "-o", npy] + images)
        feats = np.load(npy)
        model, _, _, cfg = torch_model(os.path.join(tmp, "model.safetensors"))
        dumped, _ = read_safetensors(dump)
        run([catlip, "predict", "--checkpoint", rd, "--dump", dump] + images)
        dumped, _ = read_safetensors(dump)
        with torch.no_grad():
            x = torch.from_numpy(dumped["images"].astype(np.float64))
            t = model.patch_embed(x)
            t = torch.cat([model.cls_token.expand(t.shape[0], -1, -1), t], 1) + model.pos_embed
            for blk in model.blocks:
                t = blk(t)
            pooled = model.norm(t)[:, 0].numpy()
        d = relative_diff(feats.astype(np.float64), pooled)
        check(feats.shape == (len(images), cfg["dim"]) and feats.dtype == np.float32 and d < 1e-4,
              f"embed writes (N, C) float32 pooled features matching PyTorch (rel {d:.2e})")

        # transfer + eval zeroshot on labelled shards + eval multilabel.
        classes = os.path.join(tmp, "classes.txt")
        open(classes, "w").write("dog\nn02958343 car\napple\nxyzzy plugh\n")
        head = os.path.join(tmp, "head.safetensors")
        # The original rule (first sense, own row, no calibration): the dog row is exactly the
        # synset head's; tests/unit/test_eval_head.c covers the default head building.
        first_rule = ["--senses", "first", "--pool", "none", "--calibrate", "none"]
        p = run([catlip, "transfer", "--checkpoint", rd, "--classes", classes, "-o", head, *first_rule])
        check("random" in p.stdout and "n02084071 dog" in p.stdout, "transfer prints the class -> synsets table")
        arrays, meta = read_safetensors(head)
        w_model, _, _, _ = read_safetensors(os.path.join(tmp, "model.safetensors"))[0], None, None, None
        dog = vocab_ids.index("n02084071")
        check(arrays["head.weight"].shape == (4, 48) and np.array_equal(arrays["head.weight"][0],
                                                                          w_model["head.weight"][dog]),
              "transfer head row of 'dog' is the synset head's dog row")
        cls_tsv = os.path.join(tmp, "cls.tsv")
        with open(cls_tsv, "w") as f:
            for line in open(os.path.join(ds, "list.tsv")):
                path, caption = line.rstrip("\n").split("\t")
                hits = [k for k, word in enumerate(["dog", "car", "apple"]) if word in caption.split()]
                if len(hits) == 1:
                    f.write(f"{os.path.join(ds, path)}\t{hits[0]}\n")
        run([catlip, "shards", "make", "--tsv", cls_tsv, "--cls", "-o", os.path.join(tmp, "cls")], setup=True)
        zs_json = os.path.join(tmp, "zeroshot.json")
        p = run([catlip, "eval", "zeroshot", "--checkpoint", rd, "--head", head, "--data",
                 os.path.join(tmp, "cls", "00000.tar"), "--json", zs_json])
        zs = json.load(open(zs_json))
        check("top-1" in p.stdout and zs["classes"] == 4 and 0 <= zs["top1"] <= zs["top5"] <= 1 and zs["images"] > 10,
              f"eval zeroshot reports top-1 {zs['top1']:.3f} / top-5 over {zs['images']} images")
        # The per-class table: "  NAME  IMAGES  TOP-1" rows (top-1 "-" for a class without images).
        rows = [l.split() for l in p.stdout.splitlines() if l.startswith("  ") and len(l.split()) >= 3]
        rows = [r for r in rows if r[-2].isdigit() and r[-1] != "-" and int(r[-2]) > 0]
        want = sum(float(r[-1]) for r in rows) / len(rows) if rows else -1
        check(len(rows) == zs["classes_present"] and abs(zs["mean_per_class"] - want) < 1e-3 and
              f"mean per-class {zs['mean_per_class']:.4f}" in p.stdout,
              f"eval zeroshot: mean per-class {zs['mean_per_class']:.4f} is the mean of the per-class "
              f"column over {len(rows)} classes with images ({want:.4f})")
        p2 = run([catlip, "eval", "zeroshot", "--checkpoint", rd, "--classes", classes, "--quiet", "--data",
                  os.path.join(tmp, "cls", "00000.tar"), "--json", zs_json, *first_rule, "--score", "linear"])
        check(json.load(open(zs_json))["top1"] == zs["top1"] and json.load(open(zs_json))["head"]["score"] == "linear",
              "eval zeroshot: --classes (--score linear) equals --head of the same classes")
        # How each row was built, in the JSON: dog's own row (first sense, no pooling) with
        # weight 1; the unmatched class has no rows (a random row).
        built = json.load(open(zs_json))["head"]["classes"]
        dog_row = built[0]["rows"]
        check(len(built) == 4 and built[0]["class"] == "dog" and len(dog_row) == 1 and
              dog_row[0]["synset"] == "n02084071" and abs(dog_row[0]["weight"] - 1) < 1e-12 and
              built[3]["rows"] == [],
              f"eval zeroshot --json: per class the rows pooled with weights (dog: {dog_row}; "
              f"xyzzy: {built[3]['rows']})")
        run([catlip, "eval", "zeroshot", "--checkpoint", rd, "--classes", classes, "--quiet", "--data",
             os.path.join(tmp, "cls", "00000.tar"), "--json", zs_json, "--calibrate", "none"])
        built = json.load(open(zs_json))["head"]["classes"]
        weights = [sum(r["weight"] for r in b["rows"]) for b in built if b["rows"]]
        chosen = [sum(1 for s in b["senses"] if s["chosen"]) for b in built if b["senses"]]
        check(weights and all(abs(w - 1) < 1e-9 for w in weights) and all(c <= 1 for c in chosen),
              f"eval zeroshot --json (default head): each class's row weights sum to 1 ({weights}), "
              f"at most one sense chosen per class")
        ml_json = os.path.join(tmp, "multilabel.json")
        p = run([catlip, "eval", "multilabel", "--checkpoint", rd, "--data", pattern, "--json", ml_json])
        ml = json.load(open(ml_json))
        check("mAP" in p.stdout and ml["images"] == 120 and 0 < ml["model"]["map_macro"] <= 1,
              f"eval multilabel: mAP {ml['model']['map_macro']:.3f} vs prior {ml['prior']['map_macro']:.3f}")
        p = run([catlip, "eval", "multilabel", "--checkpoint", rd, "--data", pattern, "--json", ml_json,
                 "--precision", "bf16"])
        ml16 = json.load(open(ml_json))
        check(abs(ml16["model"]["map_macro"] - ml["model"]["map_macro"]) <= 0.05,
              f"eval multilabel --precision bf16: mAP {ml16['model']['map_macro']:.3f} (fp32 "
              f"{ml['model']['map_macro']:.3f})")

        # Bad inputs: one line, non-zero exit, never a crash.
        other = os.path.join(tmp, "other_vocab.tsv")
        open(other, "w").writelines(open(vocab).readlines()[:-1])  # one synset fewer
        one_line_error(run([catlip, "predict", "--checkpoint", rd, "--vocab", other, images[0]], None),
                       "predict with another vocabulary", "is not the one")
        one_line_error(run([catlip, "predict", "--checkpoint", rd, os.path.join(tmp, "none.jpg")], None),
                       "predict of a missing image", "none.jpg")
        one_line_error(run([catlip, "predict", "--checkpoint", rd, vocab], None), "predict of a text file", "vocab.tsv")
        one_line_error(run([catlip, "export", "--checkpoint", os.path.join(tmp, "nothing"), "-o",
                            os.path.join(tmp, "x.safetensors")], None), "export of a missing checkpoint", "nothing")
        bad = os.path.join(tmp, "bad.pb")
        ckpt = sorted(f for f in os.listdir(os.path.join(rd, "checkpoints")) if f.endswith(".pb"))[-1]
        blob = open(os.path.join(rd, "checkpoints", ckpt), "rb").read()
        open(bad, "wb").write(blob[:len(blob) // 2])
        one_line_error(run([catlip, "export", "--checkpoint", bad, "-o", os.path.join(tmp, "x.safetensors")], None),
                       "export of a truncated checkpoint", "bad.pb")
        one_line_error(run([catlip, "eval", "zeroshot", "--checkpoint", rd, "--head", vocab, "--data", pattern],
                           None), "eval zeroshot with a head that is not one", "vocab.tsv")
        one_line_error(run([catlip, "eval", "zeroshot", "--checkpoint", rd, "--head", head, "--pool", "none",
                            "--data", pattern], None),
                       "eval zeroshot --head with a head-building option", "--head file is used as")
        one_line_error(run([catlip, "eval", "multilabel", "--checkpoint", rd, "--data",
                            os.path.join(tmp, "missing", "{0..3}.tar")], None), "eval of missing shards", "missing")
        one_line_error(run([catlip, "transfer", "--checkpoint", rd, "--classes", os.path.join(tmp, "none.txt"), "-o",
                            head], None), "transfer with a missing classes file", "none.txt")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("all command checks passed" if not FAILURES else f"{len(FAILURES)} checks failed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
