#!/usr/bin/python3
"""CLIP zero-shot by prompt ensembles (`catlip eval zeroshot --prompts`) against PyTorch.

A tiny CLIP model (model.objective clip: a 2-block ViT at 32 px, text_tiny, 32-wide
embeddings) is trained for a few steps on make_dataset.py's captioned shards, then
`catlip eval zeroshot --classes F --prompts T1 --prompts T2 --dump D --json J` classifies the
labelled shards. Independently of catlip's code, this script

  - reads `catlip export`'s OpenCLIP-named safetensors (visual.trunk.*, visual.head.proj.weight,
    token_embedding.weight, transformer.resblocks.N.*, ln_final.*, text_projection.weight,
    logit_scale) into a float64 PyTorch CLIP: timm's ViT (tests/reference/vit_ref.py, strict
    load_state_dict) with the projection as a bias-free head, and CLIP's text transformer
    written from its definition (tests/reference/check_clip.py's text_tower);
  - tokenizes each prompt from the tokenizer TSV itself (ids: <pad> 0, <sot> 1, <eot> 2,
    <unk> 3, then the file's words from 4; the words of these plain prompts are the lowercase
    runs of letters) and checks the file is the checkpoint's (its FNV-1a hash);
  - computes CLIP's zero-shot classifier: class[k] = normalize(mean_p normalize(text(prompt_p
    with the class name))), image = normalize(projected CLS) of the images catlip dumped after
    preprocessing, score = exp(min(logit_scale, ln 100)) * image . class[k];

and requires the prompt ids to be equal, the class rows, image embeddings and scores within
1e-4 of each tensor's largest value, the argmax of every image equal, and top-1, top-5, mean
per-class and the per-class accuracies of the JSON equal to those of the reference scores.
The class names come from a classes file in all three forms (a name, "n02121620 cat", an id
alone -> its WordNet head word). Then `catlip embed --projected` must be the normalised
projection of `catlip embed`'s pooled features (the export's visual.head.proj.weight), and the
commands that need CatLIP's synset head, bad prompts, a --head file, Transfer Init options, a
wrong tokenizer and --prompts on a CatLIP checkpoint must each give a one-line error.

  check_clip_zeroshot.py CATLIP
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import shutil

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, HERE)
import vit_ref  # noqa: E402
from check_clip import text_tower  # noqa: E402
from check_commands import check, run, read_safetensors, relative_diff, one_line_error, FAILURES  # noqa: E402

TOLERANCE = 1e-4
PROMPTS = ["a {}", "a blurry photo of a {} on the grass"]  # "blurry" is not a caption word: <unk>
# make_dataset.py's objects, in its class order, in the three forms of a classes file.
CLASS_LINES = ["n02084071", "n02121620 cat", "car", "bicycle", "apple", "banana", "boat", "house",
               "tree", "bird", "flower", "chair"]
CLASS_NAMES = ["dog", "cat", "car", "bicycle", "apple", "banana", "boat", "house", "tree", "bird",
               "flower", "chair"]


def fnv1a(h, data):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def load_tokenizer(path):
    words = [line.split("\t")[0] for line in open(path, encoding="utf-8") if not line.startswith("#")]
    h = fnv1a(0xcbf29ce484222325, b"catlip-words\n")
    for w in words:
        h = fnv1a(h, w.encode() + b"\n")
    return {w: 4 + i for i, w in enumerate(words)}, h


def tokenize(table, text, T):
    ids = [1] + [table.get(w, 3) for w in re.findall(r"[a-z]+", text.lower())][:T - 2] + [2]
    return ids + [0] * (T - len(ids))


def reference_clip(arrays, cfg):
    """The image tower (timm names under visual.trunk., projection as a bias-free head) and the
    text tower's parameters, float64."""
    E = int(cfg["embed_dim"])
    vcfg = dict(cfg, num_classes=E)
    model = vit_ref.build_model(vcfg, torch.float64)
    state = {k[len("visual.trunk."):]: torch.from_numpy(v.astype(np.float64))
             for k, v in arrays.items() if k.startswith("visual.trunk.")}
    state["head.weight"] = torch.from_numpy(arrays["visual.head.proj.weight"].astype(np.float64))
    state["head.bias"] = torch.zeros(E, dtype=torch.float64)
    model.load_state_dict(state, strict=True)
    model.eval()
    text = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in arrays.items()
            if not k.startswith("visual.")}
    return model, text


def main():
    catlip = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="catlip_clipzs_")
    try:
        ds = os.path.join(tmp, "ds")
        subprocess.run([sys.executable, os.path.join(HERE, "..", "integration", "make_dataset.py"), ds,
                        "--count", "160", "--size", "64", "--classes"], check=True, stdout=subprocess.DEVNULL)
        run([catlip, "shards", "make", "--tsv", os.path.join(ds, "list.tsv"), "-o", os.path.join(ds, "shards"),
             "--samples-per-shard", "80"], setup=True)
        run([catlip, "shards", "make", "--tsv", os.path.join(ds, "classes.tsv"), "--cls", "-o",
             os.path.join(ds, "cls"), "--samples-per-shard", "80"], setup=True)
        pattern = os.path.join(ds, "shards", "{00000..00001}.tar")
        labelled = os.path.join(ds, "cls", "{00000..00001}.tar")
        tok = os.path.join(ds, "tokenizer.tsv")
        run([catlip, "tokenizer", "build", "--data", pattern, "-o", tok, "--quiet"], setup=True)
        classes = os.path.join(ds, "classes.txt")
        with open(classes, "w") as f:
            f.write("# make_dataset.py's objects\n" + "\n".join(CLASS_LINES) + "\n")
        rd = os.path.join(tmp, "run")
        run([catlip, "train", "--set", f"run_dir={rd}", "--set", f"data.train={pattern}", "--set",
             f"data.tokenizer={tok}", "--set", "model.objective=clip", "--set", "model.text=text_tiny",
             "--set", "model.embed_dim=32", "--set", "model.image_size=32", "--set", "model.patch_size=8",
             "--set", "model.dim=48", "--set", "model.heads=3", "--set", "model.depth=2", "--set",
             "train.steps=40", "--set", "train.global_batch=32", "--set", "optim.lr=0.003"], setup=True)

        dump, js = os.path.join(tmp, "dump.safetensors"), os.path.join(tmp, "zs.json")
        p = run([catlip, "eval", "zeroshot", "--checkpoint", rd, "--classes", classes, "--data", labelled,
                 "--prompts", PROMPTS[0], "--prompts", PROMPTS[1], "--dump", dump, "--json", js,
                 "--batch", "24", "--max-images", "72"])
        summary = p.stdout.strip().splitlines()[-1]
        check(summary.startswith("eval zeroshot: top-1 ") and "mean per-class" in summary and
              "majority class" in summary, f"eval zeroshot prints the summary line ({summary[:80]!r})")
        got, meta = read_safetensors(dump)
        result = json.load(open(js))
        check(result.get("objective") == "clip" and result.get("prompts") == PROMPTS,
              "JSON: objective clip and the prompts")
        check(result.get("class_names") == CLASS_NAMES and json.loads(meta["class_names"]) == CLASS_NAMES,
              "class names: a name, an id with its display name, an id alone (its WordNet head word)")
        unknown = [c["unknown"] for c in result["class_text"]]
        check(unknown == [0] * len(CLASS_NAMES), f"every class name is a tokenizer word (unknown {unknown})")

        out = os.path.join(tmp, "model.safetensors")
        run([catlip, "export", "--checkpoint", rd, "-o", out])
        arrays, emeta = read_safetensors(out)
        cfg = json.loads(emeta["model_config"])
        table, h = load_tokenizer(tok)
        check(f"{h:016x}" == emeta.get("tokenizer_hash"), "the tokenizer file is the checkpoint's (hash)")
        model, tp = reference_clip(arrays, cfg)
        T, E, K, P = int(cfg["context_length"]), int(cfg["embed_dim"]), len(CLASS_NAMES), len(PROMPTS)
        ids = torch.tensor([[tokenize(table, pr.replace("{}", name), T) for pr in PROMPTS]
                            for name in CLASS_NAMES])  # (K, P, T)
        check(ids.tolist() == got["prompt_ids"].tolist(), "prompt token ids equal the reference tokenizer's")
        check(int((ids == 3).sum()) == K, "the unknown prompt word became <unk> once per class")
        tcfg = {"width": int(cfg["text_width"]), "heads": int(cfg["text_heads"]),
                "depth": int(cfg["text_depth"]), "eot": 2}
        scale = math.exp(min(float(arrays["logit_scale"]), math.log(100.0)))
        with torch.no_grad():
            text = F.normalize(text_tower(tp, ids.reshape(K * P, T), tcfg), dim=-1).reshape(K, P, E)
            weights = scale * F.normalize(text.mean(dim=1), dim=-1)  # (K, E)
            images = torch.from_numpy(got["images"].astype(np.float64))
            image = F.normalize(model(images), dim=-1)  # (N, E)
            scores = image @ weights.T  # (N, K)
        N = images.shape[0]
        check(N == result["images"] == 72, f"72 images scored (dump {N}, JSON {result['images']})")
        for name, ref in (("class_weights", weights), ("image_embeddings", image), ("scores", scores)):
            d = relative_diff(got[name].astype(np.float64), ref.numpy())
            print(f"     {name}: max |catlip - torch| / max |torch| = {d:.3e}")
            check(d < TOLERANCE, f"{name} match PyTorch (rel {d:.2e} < {TOLERANCE:g})")
        check(abs(result["logit_scale"] - scale) <= 1e-5 * scale, "JSON logit scale is exp(logit_scale)")
        truth = torch.from_numpy(got["truth"].astype(np.int64))
        labels = [int(line.split("\t")[1]) for line in open(os.path.join(ds, "classes.tsv"))]
        check(truth.tolist() == labels[:N], "true classes are the labelled shards' in order")
        pred = scores.argmax(dim=1)
        check(pred.tolist() == got["scores"].argmax(axis=1).tolist(), "every image's predicted class agrees")
        top1 = float((pred == truth).double().mean())
        rank = (scores > scores.gather(1, truth[:, None])).sum(dim=1)
        top5 = float((rank < 5).double().mean())
        per_class = [float((pred[truth == k] == k).double().mean()) if (truth == k).any() else None
                     for k in range(K)]
        present = [a for a in per_class if a is not None]
        mean_pc = sum(present) / len(present)
        print(f"     reference: top-1 {top1:.4f}, top-5 {top5:.4f}, mean per-class {mean_pc:.4f}; "
              f"catlip: {result['top1']:.4f}, {result['top5']:.4f}, {result['mean_per_class']:.4f}")
        check(abs(result["top1"] - top1) < 1e-6 and abs(result["top5"] - top5) < 1e-6 and
              abs(result["mean_per_class"] - mean_pc) < 1e-6, "top-1, top-5 and mean per-class equal the reference's")
        check(all((a is None and b is None) or (a is not None and b is not None and abs(a - b) < 1e-6)
                  for a, b in zip(result["per_class"], per_class)), "per-class accuracies equal the reference's")
        majority = max(int((truth == k).sum()) for k in range(K)) / N
        check(abs(result["majority"] - majority) < 1e-6, "majority-class rate")

        # A single prompt gives other class rows (the ensemble is not the first prompt alone).
        js1 = os.path.join(tmp, "zs1.json")
        dump1 = os.path.join(tmp, "dump1.safetensors")
        run([catlip, "eval", "zeroshot", "--checkpoint", rd, "--classes", classes, "--data", labelled,
             "--prompts", PROMPTS[0], "--dump", dump1, "--json", js1, "--max-images", "24", "--quiet"])
        one, _ = read_safetensors(dump1)
        with torch.no_grad():
            w1 = scale * F.normalize(text[:, 0], dim=-1)
        d = relative_diff(one["class_weights"].astype(np.float64), w1.numpy())
        check(d < TOLERANCE, f"one prompt: class rows are that prompt's (rel {d:.2e})")

        # embed: pooled features (N, C), and --projected = normalize(pooled . proj^T).
        image_files = [os.path.join(ds, "images", f"{i:05d}.jpg") for i in range(5)]
        pooled, projected = os.path.join(tmp, "pooled.npy"), os.path.join(tmp, "projected.npy")
        run([catlip, "embed", "--checkpoint", rd, "-o", pooled] + image_files)
        run([catlip, "embed", "--checkpoint", rd, "--projected", "-o", projected] + image_files)
        a, b = np.load(pooled).astype(np.float64), np.load(projected).astype(np.float64)
        check(a.shape == (5, int(cfg["dim"])) and b.shape == (5, E), f"embed shapes {a.shape}, {b.shape}")
        want = a @ arrays["visual.head.proj.weight"].astype(np.float64).T
        want /= np.linalg.norm(want, axis=1, keepdims=True)
        d = relative_diff(b, want)
        check(d < TOLERANCE, f"embed --projected is the normalised projection of the pooled features (rel {d:.2e})")

        # One-line errors.
        base = ["--checkpoint", rd, "--data", labelled]
        for cmd, needle in ((["eval", "multilabel"] + base, "CLIP checkpoint"),
                            (["transfer", "--checkpoint", rd, "--classes", classes, "-o",
                              os.path.join(tmp, "h.safetensors")], "CLIP checkpoint"),
                            (["predict", "--checkpoint", rd, image_files[0]], "CLIP checkpoint")):
            one_line_error(run([catlip] + cmd, expect=None), f"{cmd[0]} {cmd[1]} on a CLIP checkpoint", needle)
        zs = [catlip, "eval", "zeroshot"] + base
        one_line_error(run(zs + ["--classes", classes, "--prompts", "a photo"], expect=None),
                       "a prompt without {}", "{}")
        one_line_error(run(zs + ["--head", out], expect=None), "--head with a CLIP checkpoint", "--head")
        one_line_error(run(zs + ["--classes", classes, "--pool", "none"], expect=None),
                       "Transfer Init options with a CLIP checkpoint", "--prompts instead")
        swapped = os.path.join(tmp, "tokenizer_swapped.tsv")
        lines = open(tok).read().splitlines()
        with open(swapped, "w") as f:
            f.write("\n".join([lines[0], lines[2], lines[1]] + lines[3:]) + "\n")
        one_line_error(run(zs + ["--classes", classes, "--tokenizer", swapped], expect=None),
                       "another tokenizer", "not the one this checkpoint was trained with")
        bad = os.path.join(tmp, "bad_classes.txt")
        with open(bad, "w") as f:
            f.write("dog\nn00000001\n")
        one_line_error(run(zs + ["--classes", bad], expect=None), "an id that is no synset", "n00000001")
        vocab = os.path.join(ds, "vocab.tsv")
        run([catlip, "vocab", "build", "--data", pattern, "--min-count", "3", "-o", vocab, "--quiet"], setup=True)
        cd = os.path.join(tmp, "catlip_run")
        run([catlip, "train", "--set", f"run_dir={cd}", "--set", f"data.train={pattern}", "--set",
             f"data.vocab={vocab}", "--set", "model.num_classes=0", "--set", "model.image_size=32", "--set",
             "model.patch_size=8", "--set", "model.dim=48", "--set", "model.heads=3", "--set", "model.depth=2",
             "--set", "train.steps=2", "--set", "train.global_batch=16"], setup=True)
        one_line_error(run([catlip, "eval", "zeroshot", "--checkpoint", cd, "--data", labelled, "--classes",
                            classes, "--prompts", "a {}"], expect=None), "--prompts on a CatLIP checkpoint",
                       "CatLIP checkpoint")
        one_line_error(run([catlip, "embed", "--checkpoint", cd, "--projected", "-o", projected, image_files[0]],
                           expect=None), "embed --projected on a CatLIP checkpoint", "CLIP checkpoints")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
