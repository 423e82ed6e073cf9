#!/usr/bin/python3
"""Fixtures for the data tests, made with independent tools: Python's tarfile, GNU tar and PIL.

usage: make_fixtures.py KIND OUTDIR
  tars    tar files from tarfile (ustar, gnu, pax) and GNU tar (gnu, pax, ustar), with long names,
          a directory and a symlink, plus OUTDIR/NAME.manifest: "name<TAB>data offset<TAB>size" of
          each regular member as tarfile reads it; damaged tars (garbage header, truncated
          member, random bytes, empty file)
  jpegs   JPEGs of each kind (4:2:0, 4:2:2, 4:4:4, gray, CMYK, progressive, odd sizes, large) with
          PIL's decode as binary PPM (P6) beside each; broken ones (corrupt, truncated, empty, tiny)
  shard   one WebDataset shard with every bad-data case (see bad_shard below), its expectations
          in OUTDIR/shard.expect, and good.tar with 40 good samples
"""
import io
import os
import random
import subprocess
import sys
import tarfile

from PIL import Image


def photo(w, h, seed):
    """A smooth colour image with some texture (JPEG-friendly, not flat)."""
    rnd = random.Random(seed)
    img = Image.new("RGB", (w, h))
    px = img.load()
    a, b, c = rnd.random() * 6, rnd.random() * 6, rnd.random() * 6
    for y in range(h):
        for x in range(w):
            px[x, y] = (int(127 + 120 * ((x * a + y) % 97) / 97) % 256,
                        int(255 * (x / max(1, w - 1)) * (1 - y / max(1, h - 1)) + 20 * b) % 256,
                        int(40 + 200 * ((x * y * c) % 53) / 53) % 256)
    return img


def write_manifest(path, tar_path):
    with tarfile.open(tar_path) as t, open(path, "w") as f:
        for m in t.getmembers():
            if m.isreg():
                f.write("%s\t%d\t%d\n" % (m.name, m.offset_data, m.size))


def make_tree(root):
    os.makedirs(root, exist_ok=True)
    long_dir = os.path.join(root, "d" * 120)
    os.makedirs(long_dir, exist_ok=True)
    os.makedirs(os.path.join(root, "p" * 80), exist_ok=True)  # ustar: needs the prefix field
    files = {
        "a.txt": b"hello\n",
        "empty.txt": b"",
        "unicode-\u00e9\u00e8\u4e2d.txt": "caf\u00e9\n".encode(),
        os.path.join("d" * 120, "f" * 150 + ".jpg"): bytes(range(256)) * 5,
        os.path.join("p" * 80, "q" * 90 + ".txt"): b"prefix",
        "x" * 99 + ".txt": b"99",
        "y" * 180 + ".txt": b"180",
    }
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    os.symlink("a.txt", os.path.join(root, "link"))
    return files


def tars(out):
    tree = os.path.join(out, "tree")
    make_tree(tree)
    names = sorted(os.listdir(tree))
    for fmt, const in (("ustar", tarfile.USTAR_FORMAT), ("gnu", tarfile.GNU_FORMAT), ("pax", tarfile.PAX_FORMAT)):
        path = os.path.join(out, "py_%s.tar" % fmt)
        with tarfile.open(path, "w", format=const) as t:
            for n in names:
                p = os.path.join(tree, n)
                if fmt == "ustar" and len(n) > 100 and os.path.isfile(p):
                    continue  # ustar cannot hold a >100-byte single-component name
                try:
                    t.add(p, arcname=n)
                except ValueError:
                    pass  # ustar: name too long for the format
        write_manifest(path + ".manifest", path)
    # A pax archive whose 'x' header also carries a non-ASCII path and a 'g' global header.
    path = os.path.join(out, "py_pax_global.tar")
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "global"}) as t:
        for n in names:
            t.add(os.path.join(tree, n), arcname=n)
    write_manifest(path + ".manifest", path)
    for fmt in ("gnu", "pax", "ustar"):
        path = os.path.join(out, "gnu_%s.tar" % fmt)
        members = [n for n in names if fmt != "ustar" or n.startswith("p") or len(n) <= 100]
        subprocess.run(["tar", "--format=" + fmt, "-cf", path, "-C", tree] + members, check=True,
                       stderr=subprocess.DEVNULL)
        write_manifest(path + ".manifest", path)

    # Damaged archives, from a simple ustar with 5 members of 1000 bytes.
    simple = io.BytesIO()
    with tarfile.open(fileobj=simple, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for i in range(5):
            data = bytes([i]) * 1000
            info = tarfile.TarInfo("m%d.bin" % i)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    raw = simple.getvalue()
    # Members sit at 0, 1536, 3072, 4608, 6144 (header 512 + data padded to 1024).
    garbage = bytearray(raw)
    garbage[1536:1536 + 512] = bytes(random.Random(1).randrange(256) for _ in range(512))
    open(os.path.join(out, "garbage_header.tar"), "wb").write(garbage)
    open(os.path.join(out, "truncated.tar"), "wb").write(raw[:3072 + 512 + 300])
    open(os.path.join(out, "random.tar"), "wb").write(bytes(random.Random(2).randrange(256) for _ in range(20000)))
    open(os.path.join(out, "empty.tar"), "wb").write(b"")
    open(os.path.join(out, "headers_only.tar"), "wb").write(raw[:512])


def save_ppm(img, path):
    img.convert("RGB").save(path, format="PPM")


def jpegs(out):
    os.makedirs(out, exist_ok=True)
    base = photo(203, 151, 7)
    cases = [
        ("rgb420", base, dict(quality=90, subsampling=2)),
        ("rgb422", base, dict(quality=90, subsampling=1)),
        ("rgb444", base, dict(quality=95, subsampling=0)),
        ("progressive", base, dict(quality=85, progressive=True)),
        ("odd", photo(101, 67, 3), dict(quality=80)),
        ("gray", base.convert("L"), dict(quality=90)),
        ("cmyk", base.convert("CMYK"), dict(quality=90)),
        ("large", photo(1000, 720, 5), dict(quality=85)),
    ]
    for name, img, kw in cases:
        path = os.path.join(out, name + ".jpg")
        img.save(path, **kw)
        save_ppm(Image.open(path), os.path.join(out, name + ".ppm"))
    # PIL's draft mode asks libjpeg for a DCT-scaled decode: the reference for 1/2 scale.
    im = Image.open(os.path.join(out, "large.jpg"))
    im.draft("RGB", (500, 360))
    assert im.size == (500, 360)
    save_ppm(im, os.path.join(out, "large_half.ppm"))
    # A smooth image (for encode round trips).
    smooth = Image.new("RGB", (160, 120))
    smooth.putdata([(x, y * 2, (x + y) // 2) for y in range(120) for x in range(160)])
    save_ppm(smooth, os.path.join(out, "smooth.ppm"))
    good = open(os.path.join(out, "rgb420.jpg"), "rb").read()
    corrupt = bytearray(good)
    for i in range(200, len(corrupt) - 10, 7):
        corrupt[i] = 0xFF  # markers everywhere in the entropy data
    open(os.path.join(out, "corrupt.jpg"), "wb").write(corrupt)
    open(os.path.join(out, "truncated.jpg"), "wb").write(good[:len(good) // 2])
    open(os.path.join(out, "empty.jpg"), "wb").write(b"")
    open(os.path.join(out, "notjpeg.jpg"), "wb").write(b"GIF89a" + bytes(100))
    photo(4, 4, 1).save(os.path.join(out, "tiny.jpg"), quality=90)


def jpeg_bytes(img, **kw):
    b = io.BytesIO()
    img.save(b, format="JPEG", **kw)
    return b.getvalue()


def add(t, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))


def bad_shard(out):
    """Samples in order, with what the pipeline must do (the test labeller knows the words
    'dog'=1, 'cat'=2, 'frisbee'=3 and nothing else):
      k00 ok  dog            k01 ok  cat and frisbee (2 labels)   k02 missing_txt (jpg only)
      k03 missing_image      k04 empty_image (0-byte jpg)         k05 bad_image (corrupt)
      k06 bad_image (trunc)  k07 small_image (4x4)                k08 no_synset ("zzz qqq")
      k09 bad_caption (not UTF-8)  k10 bad_caption (only spaces)  k11 ok .cls 4
      k12 bad_class (.cls 99999)   k13 bad_class (.cls "abc")     k14 ok cmyk dog
      k15 ok gray cat  k16 ok progressive dog
      then a member whose header is garbage (bad_tar_header), k17 ok dog,
      and a truncated last member (truncated_member; k18's txt is lost, so it also counts
      as a sample with an image and no text? no: the truncated member ends the listing before
      k18 closes, so k18.jpg alone is left: missing_txt).
    """
    os.makedirs(out, exist_ok=True)
    good = jpeg_bytes(photo(64, 48, 1), quality=90)
    path = os.path.join(out, "bad.tar")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        add(t, "k00.jpg", good); add(t, "k00.txt", b"a dog")
        add(t, "k01.jpg", jpeg_bytes(photo(40, 60, 2))); add(t, "k01.txt", b"cat with frisbee")
        add(t, "k02.jpg", good)
        add(t, "k03.txt", b"dog")
        add(t, "k04.jpg", b""); add(t, "k04.txt", b"dog")
        corrupt = bytearray(good)
        for i in range(150, len(corrupt) - 10, 5):
            corrupt[i] = 0xFF
        add(t, "k05.jpg", bytes(corrupt)); add(t, "k05.txt", b"dog")
        add(t, "k06.jpg", good[:len(good) // 2]); add(t, "k06.txt", b"dog")
        add(t, "k07.jpg", jpeg_bytes(photo(4, 4, 3))); add(t, "k07.txt", b"dog")
        add(t, "k08.jpg", good); add(t, "k08.txt", b"zzz qqq")
        add(t, "k09.jpg", good); add(t, "k09.txt", b"dog \xff\xfe bad")
        add(t, "k10.jpg", good); add(t, "k10.txt", b"   \n ")
        add(t, "k11.jpg", good); add(t, "k11.cls", b"4\n")
        add(t, "k12.jpg", good); add(t, "k12.cls", b"99999")
        add(t, "k13.jpg", good); add(t, "k13.cls", b"abc")
        add(t, "k14.jpg", jpeg_bytes(photo(50, 50, 4).convert("CMYK"))); add(t, "k14.txt", b"dog")
        add(t, "k15.jpg", jpeg_bytes(photo(50, 50, 5).convert("L"))); add(t, "k15.txt", b"cat")
        add(t, "k16.jpg", jpeg_bytes(photo(70, 50, 6), progressive=True)); add(t, "k16.json", b"{}")
        add(t, "k16.txt", b"dog")
        add(t, "zz_garbage.txt", b"this header gets overwritten")
        add(t, "k17.jpg", good); add(t, "k17.txt", b"dog")
        add(t, "k18.jpg", good); add(t, "k18.txt", b"dog" * 400)
    raw = bytearray(buf.getvalue())
    # Overwrite the header of zz_garbage.txt with garbage.
    pos = raw.find(b"zz_garbage.txt")
    assert pos % 512 == 0
    raw[pos:pos + 512] = bytes(random.Random(3).randrange(256) for _ in range(512))
    # Cut the archive inside k18.txt's data.
    cut = raw.find(b"dog" * 400)
    open(path, "wb").write(bytes(raw[:cut + 100]))
    with open(os.path.join(out, "shard.expect"), "w") as f:
        f.write("ok 7\nbad_tar_header 1\ntruncated_member 1\nmissing_image 1\nmissing_txt 2\n"
                "empty_image 1\nbad_image 2\nsmall_image 1\nno_synset 1\nbad_caption 2\nbad_class 2\n")
    # A clean shard of 40 samples (labels cycle dog/cat/frisbee) for order/worker tests.
    with tarfile.open(os.path.join(out, "good.tar"), "w") as t:
        for i in range(40):
            add(t, "%09d.jpg" % i, jpeg_bytes(photo(48 + i, 40 + (i * 7) % 30, 100 + i), quality=85))
            add(t, "%09d.txt" % i, ["a dog", "one cat", "a frisbee"][i % 3].encode())


def main():
    kind, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    {"tars": tars, "jpegs": jpegs, "shard": bad_shard}[kind](out)


if __name__ == "__main__":
    main()
