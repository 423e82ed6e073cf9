#!/usr/bin/env python3
"""Writes a small learnable image-caption collection for tests and the quickstart:
OUT/images/*.jpg and OUT/list.tsv ("path<TAB>caption"). Each caption names one or two
objects; each object has its own colour and shape in the picture, so the synsets of the
caption can be learned from the image. Deterministic for a given seed.

  make_dataset.py OUT [--count N] [--seed S] [--size PX] [--broken K]

--broken K appends K lines whose images are damaged (truncated, zero bytes, not a JPEG)
and K captions with no noun, so skipping can be checked.
"""
import argparse
import os
import random

from PIL import Image, ImageDraw

OBJECTS = [  # noun, colour, shape
    ("dog", (150, 90, 40), "ellipse"), ("cat", (90, 90, 90), "ellipse"),
    ("car", (200, 30, 30), "rect"), ("bicycle", (30, 160, 60), "ring"),
    ("apple", (220, 40, 40), "disc"), ("banana", (240, 220, 40), "rect"),
    ("boat", (250, 250, 250), "triangle"), ("house", (170, 120, 80), "rect"),
    ("tree", (20, 120, 30), "triangle"), ("bird", (40, 80, 200), "disc"),
    ("flower", (230, 80, 180), "disc"), ("chair", (110, 60, 20), "rect"),
]
SCENES = [("grass", (70, 150, 60)), ("beach", (230, 210, 150)), ("street", (120, 120, 125)),
          ("snow", (240, 245, 250)), ("table", (160, 110, 70))]
TEMPLATES = ["a {a} on the {s}", "photo of a {a} and a {b} on the {s}", "{a} near a {b}",
             "close-up of a {a} in the {s}", "the {a} and the {b}"]


def draw_object(d, kind, colour, box):
    x0, y0, x1, y1 = box
    if kind == "ellipse":
        d.ellipse(box, fill=colour)
    elif kind == "disc":
        r = min(x1 - x0, y1 - y0) // 2
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif kind == "ring":
        d.ellipse(box, outline=colour, width=max(2, (x1 - x0) // 8))
    elif kind == "triangle":
        d.polygon([((x0 + x1) // 2, y0), (x0, y1), (x1, y1)], fill=colour)
    else:
        d.rectangle(box, fill=colour)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--broken", type=int, default=0)
    ap.add_argument("--classes", action="store_true",
                    help="also write classes.tsv (path<TAB>index of the first object) and "
                         "class_names.txt (one object name per line, in index order)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    img_dir = os.path.join(a.out, "images")
    os.makedirs(img_dir, exist_ok=True)
    lines, class_lines = [], []
    S = a.size
    for i in range(a.count):
        objs = rng.sample(OBJECTS, 2)
        scene = rng.choice(SCENES)
        template = rng.choice(TEMPLATES)
        caption = template.format(a=objs[0][0], b=objs[1][0], s=scene[0])
        named = [o for o in objs if o[0] in caption.split()]
        im = Image.new("RGB", (S + rng.randrange(S // 2), S), scene[1])
        d = ImageDraw.Draw(im)
        for o in named:
            w = rng.randrange(S // 3, S // 2)
            x = rng.randrange(0, im.width - w)
            y = rng.randrange(0, S - w)
            draw_object(d, o[2], o[1], (x, y, x + w, y + w))
        path = os.path.join(img_dir, f"{i:05d}.jpg")
        im.save(path, quality=90)
        lines.append(f"images/{i:05d}.jpg\t{caption}")
        class_lines.append(f"images/{i:05d}.jpg\t{OBJECTS.index(named[0])}")
    for k in range(a.broken):
        good = os.path.join(img_dir, "00000.jpg")
        data = open(good, "rb").read()
        damaged = [data[: len(data) // 3], b"", b"this is not a jpeg at all"][k % 3]
        path = os.path.join(img_dir, f"broken{k:03d}.jpg")
        open(path, "wb").write(damaged)
        lines.append(f"images/broken{k:03d}.jpg\ta dog on the grass")
        lines.append(f"images/00001.jpg\tquickly and slowly")  # no noun at all
    with open(os.path.join(a.out, "list.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    if a.classes:
        with open(os.path.join(a.out, "classes.tsv"), "w") as f:
            f.write("\n".join(class_lines) + "\n")
        with open(os.path.join(a.out, "class_names.txt"), "w") as f:
            f.write("\n".join(o[0] for o in OBJECTS) + "\n")
    print(f"wrote {len(lines)} lines to {os.path.join(a.out, 'list.tsv')}")


if __name__ == "__main__":
    main()
