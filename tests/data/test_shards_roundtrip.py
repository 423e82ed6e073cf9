#!/usr/bin/python3
"""Round trip: `catlip shards make` -> read back with Python's tarfile, PIL and GNU tar, and with
catlip itself (`shards index`, `bench data`): same captions (UTF-8, escaped tabs and newlines),
same classes, images that decode with the longer side capped, img2dataset keys, failures
counted in _stats.json, paths with spaces.

usage: test_shards_roundtrip.py CATLIP_BINARY
Prints 'N passed, 0 failed' and exits 0 when every check holds.
"""
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

from PIL import Image, ImageChops

CHECKS = 0


def check(cond, what):
    global CHECKS
    if not cond:
        print("FAILED: " + what)
        print("0 passed, 1 failed")
        sys.exit(1)
    CHECKS += 1


def picture(w, h, seed):
    img = Image.new("RGB", (w, h))
    img.putdata([((x * 3 + seed) % 256, (y * 2 + seed * 7) % 256, ((x + y) // 2) % 256)
                 for y in range(h) for x in range(w)])
    return img


def escape(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def run(cmd, expect_failure=False):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0 and not expect_failure:
        print(p.stdout, p.stderr)
    return p


def members(path):
    with tarfile.open(path) as t:
        return {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}


def main():
    catlip = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "my photos")
        os.makedirs(src)
        # (relative path, original image or raw bytes, caption); None image = missing file.
        rows = [
            ("img one.jpg", picture(120, 80, 1), "a dog on the beach"),
            ("gray.jpg", picture(64, 64, 2).convert("L"), "caf\u00e9 \u4e2d\u6587 \U0001f600"),
            ("big.jpg", picture(900, 600, 3), "tab\there and a\nnewline and a back\\slash"),
            ("rgba.png", picture(100, 150, 4).convert("RGBA"), "a png with alpha"),
            ("missing.jpg", None, "this file does not exist"),
            ("palette.png", picture(80, 60, 5).convert("P", palette=Image.ADAPTIVE, colors=64), "palette png"),
            ("corrupt.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", "corrupt"),
            ("\u00e9t\u00e9 photo.jpg", picture(700, 900, 6), "unicode file name, tall image"),
        ]
        originals = {}
        for name, img, _ in rows:
            path = os.path.join(src, name)
            if isinstance(img, bytes):
                open(path, "wb").write(img)
            elif img is not None:
                img.save(path, quality=95) if name.endswith(".jpg") else img.save(path)
                originals[name] = Image.open(path).convert("RGB")
        tsv = os.path.join(tmp, "list.tsv")
        with open(tsv, "w", encoding="utf-8") as f:
            for i, (name, _, caption) in enumerate(rows):
                # Alternate relative (to the TSV's folder) and absolute paths.
                path = os.path.join("my photos", name) if i % 2 == 0 else os.path.join(src, name)
                f.write("%s\t%s\n" % (path, escape(caption)))
        out = os.path.join(tmp, "shards")
        p = run([catlip, "shards", "make", "--tsv", tsv, "-o", out, "--samples-per-shard", "3",
                 "--max-side", "512", "--quality", "90", "--threads", "2"])
        check(p.returncode == 0, "shards make exits 0")
        check("shards make:" in p.stderr, "shards make prints a progress line")
        check(sorted(os.listdir(out)) == ["00000.tar", "00000_stats.json", "00001.tar", "00001_stats.json",
                                          "00002.tar", "00002_stats.json"], "3 shards and their stats")
        ok = 0
        for i, (name, img, caption) in enumerate(rows):
            shard, index = divmod(i, 3)
            key = "%05d%04d" % (shard, index)
            m = members(os.path.join(out, "%05d.tar" % shard))
            if name in originals:
                check(m.get(key + ".txt") == caption.encode("utf-8"), "caption of %s round-trips" % key)
                meta = json.loads(m[key + ".json"])
                check(meta["caption"] == caption and meta["key"] == key, "json of %s" % key)
                got = Image.open(io.BytesIO(m[key + ".jpg"]))
                check(got.format == "JPEG", "%s is a JPEG" % key)
                orig = originals[name]
                longer = max(orig.size)
                want = orig if longer <= 512 else orig.resize(
                    (round(orig.width * 512 / longer), round(orig.height * 512 / longer)), Image.BILINEAR)
                check(got.size == want.size, "%s size %s, expected %s" % (key, got.size, want.size))
                diff = ImageChops.difference(got.convert("RGB"), want)
                mad = sum(sum(v * n for v, n in enumerate(diff.histogram()[c * 256:(c + 1) * 256]))
                          for c in range(3)) / (3.0 * want.width * want.height)
                check(mad < 4.0, "%s pixels close to the source (mean diff %.2f)" % (key, mad))
                ok += 1
            else:
                check(not any(n.startswith(key + ".") for n in m), "failed line %s leaves a gap" % key)
        stats = [json.load(open(os.path.join(out, "%05d_stats.json" % s))) for s in range(3)]
        check([s["count"] for s in stats] == [3, 3, 2], "stats counts")
        check(sum(s["successes"] for s in stats) == ok == 6, "6 successes")
        check(stats[1]["failed_to_read"] == 1 and stats[2]["failed_to_decode"] == 1, "failures per shard")
        # GNU tar reads the shards.
        p = run(["tar", "-tf", os.path.join(out, "00000.tar")])
        check(p.returncode == 0 and p.stdout.split() == ["000000000.jpg", "000000000.txt", "000000000.json",
                                                         "000000001.jpg", "000000001.txt", "000000001.json",
                                                         "000000002.jpg", "000000002.txt", "000000002.json"],
              "GNU tar lists 00000.tar")
        # catlip reads them back: indexes count the samples.
        p = run([catlip, "shards", "index", os.path.join(out, "{00000..00002}.tar")])
        check(p.returncode == 0 and "result: shards=3 samples=6 built=3 failed=0" in p.stdout, "shards index")
        p = run([catlip, "shards", "index", os.path.join(out, "*.tar")])
        check("built=0" in p.stdout, "indexes are reused")
        p = run([catlip, "bench", "data", os.path.join(out, "{00000..00002}.tar"), "--count", "6", "--passes", "1",
                 "--batch", "2", "--no-peer", "--step-model", "none"])
        check(p.returncode == 0 and re.search(r"per_thread_images_per_second=[1-9]", p.stdout) is not None,
              "bench data decodes the shards")
        check(run([catlip, "shards", "index", os.path.join(out, "nope_{0..1}.tar")], True).returncode != 0,
              "missing shards are an error")

        # Labelled sets: --cls writes .cls members; a class that is not an integer is a failure.
        tsv2 = os.path.join(tmp, "classes.tsv")
        with open(tsv2, "w") as f:
            f.write("%s\t7\n%s\t 12 \n%s\tnot-a-class\n" % (os.path.join(src, "img one.jpg"),
                                                         os.path.join(src, "gray.jpg"),
                                                         os.path.join(src, "big.jpg")))
        out2 = os.path.join(tmp, "cls")
        p = run([catlip, "shards", "make", "--tsv", tsv2, "-o", out2, "--cls"])
        check(p.returncode == 0, "shards make --cls exits 0")
        m = members(os.path.join(out2, "00000.tar"))
        check(m.get("000000000.cls") == b"7" and m.get("000000001.cls") == b"12", "classes round-trip")
        check("000000002.jpg" not in m and "000000000.txt" not in m, "bad class skipped, no .txt")
        check(json.load(open(os.path.join(out2, "00000_stats.json")))["failed_class"] == 1, "bad class counted")
        # Errors a user can make: one line, non-zero exit.
        p = run([catlip, "shards", "make", "--tsv", os.path.join(tmp, "nope.tsv"), "-o", out2], True)
        check(p.returncode != 0 and "nope.tsv" in p.stderr, "missing TSV is a clear error")
    print("%d passed, 0 failed" % CHECKS)


if __name__ == "__main__":
    main()
