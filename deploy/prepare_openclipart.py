#!/usr/bin/python3
"""Turns Debian's Open Clip Art Library packages into a captioned image collection for catlip.

  prepare_openclipart.py OUT [--source /usr/share/openclipart] [--max-side 96] [--limit N]
                             [--holdout 0.2] [--jobs N]

Needs the packages openclipart-png (the PNG renderings) and openclipart-svg (the same drawings as
SVG, whose RDF metadata holds each drawing's title, description and keywords) and python3-pil.
All of it is public domain (Open Clip Art Library 0.18).

Writes
  OUT/images/...jpg      each PNG composited onto white (most have transparent backgrounds),
                         longer side scaled to --max-side, JPEG quality 90
  OUT/train.tsv          "path<TAB>caption" for pre-training (paths relative to OUT)
  OUT/val.tsv            held-out "path<TAB>caption" for catlip eval multilabel
  OUT/zeroshot.tsv       held-out "path<TAB>class index" of the drawings in the top-level
                         categories of OUT/classes.txt, for catlip eval zeroshot
  OUT/classes.txt        one class name per line (the category, as a WordNet noun)
Captions are "title. description. keyword, keyword, ..." with the collection's boilerplate
dropped (keywords such as "hash" or "unsorted", descriptions such as "HASH(0x862bbb8)"), and
'_' in keywords read as spaces. A drawing is held out when a hash of its path says so
(--holdout of them), so the split is the same on every machine; --limit keeps an evenly spread,
deterministic subset (for quick runs).
"""
import argparse
import hashlib
import html
import os
import re
import sys
from multiprocessing import Pool

import warnings

from PIL import Image

warnings.simplefilter("ignore", Image.DecompressionBombWarning)

# Top-level category folder -> the class name zero-shot classification uses.
CATEGORIES = [("animals", "animal"), ("buildings", "building"), ("food", "food"), ("people", "people"),
              ("plants", "plant"), ("transportation", "transport"), ("tools", "tool"), ("geography", "map"),
              ("computer", "computer"), ("shapes", "shape"), ("signs_and_symbols", "sign")]
BOILERPLATE_KEYWORDS = {"", "hash", "unsorted", "magick", "theme", "clip art", "clipart", "image", "media",
                        "public domain", "svg", "png", "special", "lemon_theme_icon"}
WORK = re.compile(r"<cc:Work.*?</cc:Work>", re.S)
TITLE = re.compile(r"<dc:title>(.*?)</dc:title>", re.S)
DESCRIPTION = re.compile(r"<dc:description>(.*?)</dc:description>", re.S)
SUBJECT = re.compile(r"<dc:subject>(.*?)</dc:subject>", re.S)
ITEM = re.compile(r"<rdf:li>(.*?)</rdf:li>", re.S)


def clean(text):
    text = html.unescape(re.sub(r"<[^>]*>", " ", text or ""))
    text = re.sub(r"HASH\(0x[0-9a-f]+\)", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def caption_of(svg_path):
    with open(svg_path, encoding="utf-8", errors="replace") as f:
        text = f.read(1 << 20)
    work = WORK.search(text)
    if not work:
        return ""
    work = work.group(0)
    parts = []
    for pattern in (TITLE, DESCRIPTION):
        m = pattern.search(work)
        part = clean(m.group(1)) if m else ""
        # Credits and dates are not about the picture: "Clipart by Nicu Buculei - jigsaw",
        # "Part of the Flat Icon Collection (Wed Aug 25 23:29:46 2004)", links.
        part = re.sub(r"^Clipart by [^-]*-\s*", "", part)
        part = re.sub(r"\([^)]*\b\d{4}\)", "", part)
        part = re.sub(r"https?://\S+", "", part).strip(" .")
        if part:
            parts.append(part)
    subject = SUBJECT.search(work)
    keywords = []
    for k in ITEM.findall(subject.group(1)) if subject else []:
        k = clean(k).lower()
        if k not in BOILERPLATE_KEYWORDS and k.replace("_", " ") not in keywords:
            keywords.append(k.replace("_", " "))
    if keywords:
        parts.append(", ".join(keywords))
    return ". ".join(parts).replace("\t", " ")


def held_out(rel, fraction):
    h = int.from_bytes(hashlib.sha256(rel.encode()).digest()[:8], "little")
    return h / 2.0**64 < fraction


def convert(job):
    src, dst, max_side = job
    if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src):
        return None  # converted by an earlier run
    try:
        with Image.open(src) as im:
            im.load()
            rgba = im.convert("RGBA")
        if max(rgba.size) > max_side:
            scale = max_side / max(rgba.size)
            rgba = rgba.resize((max(1, round(rgba.width * scale)), max(1, round(rgba.height * scale))),
                               Image.LANCZOS)
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.split()[3])
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        canvas.save(dst, quality=90)
        return None
    except Exception as e:  # a damaged PNG is left out, and counted
        return f"{src}: {e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--source", default="/usr/share/openclipart")
    ap.add_argument("--max-side", type=int, default=96)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    png_root, svg_root = os.path.join(a.source, "png"), os.path.join(a.source, "svg")
    if not os.path.isdir(png_root) or not os.path.isdir(svg_root):
        sys.exit(f"prepare_openclipart: error: {png_root} and {svg_root} are needed "
                 "(apt-get install openclipart-png openclipart-svg)")
    rels = []
    for d, _, files in os.walk(png_root):
        for f in files:
            if f.endswith(".png"):
                rels.append(os.path.relpath(os.path.join(d, f), png_root)[:-4])
    rels.sort()
    if a.limit and a.limit < len(rels):
        step = len(rels) / a.limit
        rels = [rels[int(i * step)] for i in range(a.limit)]
    class_of = {folder: k for k, (folder, _) in enumerate(CATEGORIES)}
    rows, jobs, no_svg = [], [], 0
    for rel in rels:
        svg = os.path.join(svg_root, rel + ".svg")
        caption = caption_of(svg) if os.path.exists(svg) else ""
        no_svg += not os.path.exists(svg)
        image = os.path.join("images", rel + ".jpg")
        rows.append((rel, image, caption))
        jobs.append((os.path.join(png_root, rel + ".png"), os.path.join(a.out, image), a.max_side))
    os.makedirs(a.out, exist_ok=True)
    with Pool(max(1, a.jobs)) as pool:
        failed = [e for e in pool.imap(convert, jobs, chunksize=16) if e]
    failed_paths = {e.split(": ")[0] for e in failed}
    counts = {"train": 0, "val": 0, "zeroshot": 0, "no_caption": 0}
    with open(os.path.join(a.out, "train.tsv"), "w") as train, open(os.path.join(a.out, "val.tsv"), "w") as val, \
            open(os.path.join(a.out, "zeroshot.tsv"), "w") as zs:
        for (rel, image, caption), job in zip(rows, jobs):
            if job[0] in failed_paths:
                continue
            if held_out(rel, a.holdout):
                top = rel.split(os.sep)[0]
                if top in class_of:
                    zs.write(f"{image}\t{class_of[top]}\n")
                    counts["zeroshot"] += 1
                if caption:
                    val.write(f"{image}\t{caption}\n")
                    counts["val"] += 1
            elif caption:
                train.write(f"{image}\t{caption}\n")
                counts["train"] += 1
            counts["no_caption"] += not caption
    with open(os.path.join(a.out, "classes.txt"), "w") as f:
        f.write("".join(name + "\n" for _, name in CATEGORIES))
    print(f"prepare_openclipart: {len(rows)} drawings -> {counts['train']} train, {counts['val']} held-out "
          f"captioned, {counts['zeroshot']} held-out labelled ({len(CATEGORIES)} classes); "
          f"{counts['no_caption']} without caption, {no_svg} without SVG metadata, {len(failed)} unreadable")
    for e in failed[:5]:
        print("  unreadable:", e)


if __name__ == "__main__":
    main()
