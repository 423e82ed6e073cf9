#!/usr/bin/python3
"""The peers for `catlip bench data`: the same training augmentation done in Python on the same
WebDataset shards, one thread, in one of two ways.

--mode torchvision (default): torchvision's standard training transform stack -- PIL decode +
  convert("RGB"), RandomResizedCrop(S) (scale 0.08-1, ratio 3/4-4/3, bilinear),
  RandomHorizontalFlip, ToTensor, Normalize(ImageNet mean/std) -- Debian's python3-torchvision.
  PIL decodes the full image at full size, then the crop is cut out and resized.

--mode pil-draft: the fastest plain-PIL path we could write for the same output. The
  RandomResizedCrop box is drawn in original coordinates (same distribution as torchvision's),
  Image.draft("RGB", ...) asks libjpeg to decode the whole image at the largest DCT scale
  (1/2, 1/4, 1/8) that keeps the crop at least S x S, the box is mapped into the drafted image
  (cropped, then resized with Image.resize((S, S), BILINEAR), as torchvision does), then the
  flip and normalisation to a float32 CHW array are done with numpy, with no full-size
  convert("RGB") copy and no torch calls per image. (catlip goes further: it
  decodes only the crop's region, at the same kind of reduced DCT scale.)

Images come either from the shards in tar order (the first --count .jpg members) or, with
--members FILE, from a list that says exactly which member each pass decodes (catlip bench data
writes one so the peers decode the same images catlip does, pass by pass); lines are
"PASS<TAB>OFFSET<TAB>SIZE<TAB>SHARD_PATH". Members are read before each pass, outside its timing.
An image that fails to decode is skipped: counted, and not counted as processed.

usage: data_torchvision.py [--mode torchvision|pil-draft] [--image-size S] [--count N]
                           [--passes P] [--members FILE] [SHARD.tar ...]
       data_torchvision.py --check [--count N] SHARD.tar ...   (pil-draft vs torchvision pixels)
Each pass is timed alone (wall time and this thread's CPU time); the best pass is reported.
Last line: result: images=N skipped=K seconds=F cpu_seconds=F images_per_second=F
           cpu_images_per_second=F
(images: decoded images in the best pass; skipped: over all passes; rates from the best pass.)
"""
import argparse
import io
import math
import random
import sys
import tarfile
import time

import numpy as np
from PIL import Image

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def jpeg_members(paths, count):
    out = []
    for path in paths:
        with tarfile.open(path) as tar:
            for m in tar:
                if m.isfile() and m.name.lower().endswith((".jpg", ".jpeg")):
                    out.append(tar.extractfile(m).read())
                    if len(out) >= count:
                        return out
    return out


def read_member_list(path):
    """{pass: [(shard, offset, size), ...]} from a --members file."""
    passes = {}
    with open(path) as f:
        for line in f:
            p, off, size, shard = line.rstrip("\n").split("\t", 3)
            passes.setdefault(int(p), []).append((shard, int(off), int(size)))
    return passes


def read_members(entries):
    files, out = {}, []
    try:
        for shard, off, size in entries:
            f = files.get(shard)
            if f is None:
                f = files[shard] = open(shard, "rb")
            f.seek(off)
            out.append(f.read(size))
    finally:
        for f in files.values():
            f.close()
    return out


def rrc_box(W, H, rnd, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0)):
    """torchvision's RandomResizedCrop.get_params in plain Python: (left, top, width, height)."""
    area = W * H
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rnd.uniform(scale[0], scale[1])
        aspect = math.exp(rnd.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= W and 0 < h <= H:
            return rnd.randint(0, W - w), rnd.randint(0, H - h), w, h
    in_ratio = W / H
    if in_ratio < min(ratio):
        w, h = W, int(round(W / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(H * max(ratio))), H
    else:
        w, h = W, H
    return (W - w) // 2, (H - h) // 2, w, h


class PilDraft:
    """RandomResizedCrop + flip + ToTensor + Normalize with the JPEG decoded at a reduced DCT
    scale: __call__(jpeg_bytes) -> float32 (3, S, S)."""

    def __init__(self, size, seed=0):
        self.S = size
        self.rnd = random.Random(seed)
        std = np.array(STD, np.float32)
        self.k = (1.0 / (255.0 * std)).reshape(3, 1, 1).astype(np.float32)
        self.b = (np.array(MEAN, np.float32) / std).reshape(3, 1, 1).astype(np.float32)
        self.scales = {}

    def crop(self, img, box):
        """Decodes img (just opened, not yet loaded) and resizes the crop box = (left, top,
        width, height), in original coordinates, to S x S: an RGB PIL image."""
        S = self.S
        W, H = img.size
        x, y, w, h = box
        # Largest 1/d (d = 8, 4, 2, 1) that keeps the crop at least S x S. Asking draft for
        # (W // d, H // d) makes PIL pick exactly d: W // (W // d) lies in [d, 2d) here.
        d = 8
        while d > 1 and (w < S * d or h < S * d):
            d //= 2
        f = 1.0
        if d > 1:
            drafted = img.draft("RGB", (W // d, H // d))
            if drafted is not None:
                f = drafted[1][2] / W  # draft's box is the original image in drafted coordinates
        self.scales[round(1 / f)] = self.scales.get(round(1 / f), 0) + 1
        if img.mode != "RGB":
            img = img.convert("RGB")
        if f == 1.0:  # exactly torchvision's crop + resize
            return img.crop((x, y, x + w, y + h)).resize((S, S), Image.BILINEAR)
        # The box in drafted coordinates is fractional: crop the pixels that cover it, then
        # resize the fractional box within them. (Resizing the box straight from the whole
        # image is no faster, and lets the filter read past the crop's edges, which
        # torchvision's crop-then-resize does not; reducing_gap gains nothing measurable.)
        x0, y0, x1, y1 = x * f, y * f, (x + w) * f, (y + h) * f
        X0, Y0 = math.floor(x0), math.floor(y0)
        img = img.crop((X0, Y0, math.ceil(x1), math.ceil(y1)))
        return img.resize((S, S), Image.BILINEAR, box=(x0 - X0, y0 - Y0, x1 - X0, y1 - Y0))

    def to_tensor(self, img, flip):
        u = np.asarray(img)
        if flip:
            u = u[:, ::-1]
        out = np.empty((3, self.S, self.S), np.float32)
        np.multiply(u.transpose(2, 0, 1), self.k, out=out)
        out -= self.b
        return out

    def __call__(self, data):
        img = Image.open(io.BytesIO(data))  # reads the header only
        box = rrc_box(img.size[0], img.size[1], self.rnd)
        return self.to_tensor(self.crop(img, box), self.rnd.random() < 0.5)


def make_transform(mode, size):
    if mode == "pil-draft":
        return PilDraft(size), "PIL %s draft (DCT-scaled decode) + numpy %s" % (Image.__version__, np.__version__)
    import torch
    import torchvision.transforms as T
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize(list(MEAN), list(STD))])
    return (lambda data: tf(Image.open(io.BytesIO(data)).convert("RGB"))), "torchvision %s" % torch.__version__


def check(a):
    """pil-draft vs torchvision's resized_crop on the same boxes, no flip."""
    import torch
    import torchvision.transforms.functional as F
    torch.set_num_threads(1)
    S = a.image_size
    pd = PilDraft(S)
    rnd = random.Random(1)
    data = jpeg_members(a.shards, a.count)
    std = np.array(STD, np.float32).reshape(3, 1, 1)
    by_scale = {}
    for d in data:
        full = Image.open(io.BytesIO(d)).convert("RGB")
        # Four RandomResizedCrop boxes, and two large ones so that enough crops are drafted.
        for scale in [(0.08, 1.0)] * 4 + [(0.7, 1.0)] * 2:
            x, y, w, h = rrc_box(full.size[0], full.size[1], rnd, scale)
            ref = F.normalize(F.to_tensor(F.resized_crop(full, y, x, h, w, [S, S])), list(MEAN), list(STD)).numpy()
            pd.scales = {}
            got = pd.to_tensor(pd.crop(Image.open(io.BytesIO(d)), (x, y, w, h)), False)
            grey = np.abs(got - ref) * std * 255.0  # back to 0-255 grey levels
            by_scale.setdefault(next(iter(pd.scales)), []).append((np.abs(got - ref).mean(), grey.mean(),
                                                                    grey.max()))
    print("pil-draft vs torchvision, same crop boxes, %dx%d, %d images x 6 boxes:" % (S, S, len(data)))
    every = []
    for scale in sorted(by_scale):
        v = np.array(by_scale[scale])
        every.append(v)
        print("  decoded at 1/%d: %4d crops, mean |diff| %.4f normalised = %.2f grey levels (max %.0f)"
              % (scale, len(v), v[:, 0].mean(), v[:, 1].mean(), v[:, 2].max()))
    v = np.concatenate(every)
    print("  all: mean |diff| %.4f normalised = %.2f grey levels" % (v[:, 0].mean(), v[:, 1].mean()))
    print("result: crops=%d mean_abs_diff=%.5f mean_abs_diff_grey=%.3f" % (len(v), v[:, 0].mean(), v[:, 1].mean()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["torchvision", "pil-draft"], default="torchvision")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--count", type=int, default=512)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--members", help="PASS<TAB>OFFSET<TAB>SIZE<TAB>SHARD lines: what each pass decodes")
    ap.add_argument("--check", action="store_true", help="compare pil-draft's pixels with torchvision's")
    ap.add_argument("shards", nargs="*")
    a = ap.parse_args()
    if a.check:
        return check(a)
    if a.members:
        listed = read_member_list(a.members)
        a.passes = len(listed)
        pass_members = [listed[p] for p in sorted(listed)]
    elif a.shards:
        pass_members = None
    else:
        ap.error("give SHARD.tar ... or --members FILE")
    tf, name = make_transform(a.mode, a.image_size)
    # The C side's reads are preads of a warm page cache; tarfile's parsing and the reads are
    # not what is being compared, so each pass's members are read before it is timed.
    data = jpeg_members(a.shards, a.count) if pass_members is None else read_members(pass_members[0])
    for d in data[:8]:  # warm-up
        try:
            tf(d)
        except Exception:
            pass
    # Each pass is timed on its own and the best one reported, as catlip's side does: on a
    # shared machine the best pass is the one least disturbed by other work. Only images that
    # decoded count; a failure is a skip.
    best_w = best_c = 0.0
    best_n, skipped, per_pass = 0, 0, 0
    for p in range(a.passes):
        if pass_members is not None and p > 0:
            data = read_members(pass_members[p])
        per_pass = max(per_pass, len(data))
        ok = 0
        w0, c0 = time.perf_counter(), time.thread_time()
        for d in data:
            try:
                tf(d)
                ok += 1
            except Exception:
                skipped += 1
        w, c = time.perf_counter() - w0, time.thread_time() - c0
        if ok and ok / w > best_w:
            best_w, best_n, best_wall = ok / w, ok, w
        if ok and ok / c > best_c:
            best_c, best_cpu = ok / c, c
    if best_n == 0:
        best_wall = best_cpu = 0.0
    print("%s: %d images x %d passes (%d skipped, not counted), best pass %.1f img/s (wall), "
          "%.1f img/s per core (CPU time)" % (name, per_pass, a.passes, skipped, best_w, best_c))
    print("result: images=%d skipped=%d seconds=%.4f cpu_seconds=%.4f images_per_second=%.2f "
          "cpu_images_per_second=%.2f" % (best_n, skipped, best_wall, best_cpu, best_w, best_c))


if __name__ == "__main__":
    sys.exit(main())
