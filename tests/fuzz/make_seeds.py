#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets: small valid (and a few nearly valid) inputs,
one directory per target under --out. Generated at test time so that git holds no binary blobs.

    make_seeds.py --out DIR --ckpt-seed PATH_TO_fuzz_ckpt_seed
"""
import argparse
import io
import os
import struct
import subprocess
import sys
import tarfile
import tempfile

from PIL import Image


def tar_bytes(members, fmt=tarfile.USTAR_FORMAT, pax=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax or {}) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def jpeg(size, mode="RGB", **kw):
    img = Image.new(mode, size)
    px = img.load()
    for y in range(size[1]):
        for x in range(size[0]):
            v = (x * 37 + y * 11) % 256
            px[x, y] = v if mode == "L" else tuple((v + 60 * c) % 256 for c in range(len(mode)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=kw.pop("quality", 80), **kw)
    return buf.getvalue()


def png(size, mode, **kw):
    img = Image.new("RGB", size)
    px = img.load()
    for y in range(size[1]):
        for x in range(size[0]):
            px[x, y] = ((x * 20) % 256, (y * 30) % 256, (x * y) % 256)
    img = img.convert(mode) if mode != "P" else img.quantize(8)
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def shard_index(samples, keys, shard_size):
    """The CATLIPIX index format of common/data/shard_index.h (size/mtime are patched by the harness)."""
    head = struct.pack("<8sIIQqQQ5Q", b"CATLIPIX", 1, 56, shard_size, 0, len(samples), len(keys), 0, 0, 0, 0, 0)
    body = b"".join(struct.pack("<4Q4III", *offsets, *sizes, key, 0) for offsets, sizes, key in samples)
    data = head + body + keys
    return data + struct.pack("<Q", fnv1a(data))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def frame(msg):
    return varint(len(msg)) + msg


def safetensors(tensors, metadata=None):
    import json
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--ckpt-seed", required=True, help="the fuzz_ckpt_seed program")
    args = ap.parse_args()
    seeds = {}

    def add(target, name, data):
        seeds.setdefault(target, {})[name] = data

    jpg = jpeg((24, 16))
    wds = [("a/000001.jpg", jpg), ("a/000001.txt", b"a dog catching a frisbee"), ("a/000001.json", b"{}"),
           ("a/000002.jpeg", jpg), ("a/000002.cls", b"3"), ("a/000003.txt", b"no image"),
           ("a/000004.jpg", b""), ("a/000004.txt", b"empty image")]
    add("tar", "ustar", tar_bytes(wds))
    add("tar", "gnu_longname", tar_bytes([("d/" + "x" * 150 + ".jpg", b"abc"), ("e.txt", b"hello")],
                                          tarfile.GNU_FORMAT))
    add("tar", "pax", tar_bytes([("p/" + "y" * 120 + ".txt", b"pax"), ("q.jpg", b"\xff\xd8")],
                                tarfile.PAX_FORMAT, pax={"comment": "global"}))
    add("tar", "empty", b"\0" * 1024)
    add("tar", "truncated", tar_bytes(wds)[:1500])
    for name, data in seeds["tar"].items():
        add("shard_index", "tar_" + name, b"\0" + data)
    keys = b"a/000001\0a/000002\0"
    absent = 0xFFFFFFFF
    index = shard_index([((512, 0, 1536, 0), (len(jpg), absent, 2, absent), 0),
                         ((2560, 0, 0, 3584), (len(jpg), absent, absent, 1), 9)], keys, 4096)
    add("shard_index", "index", b"\1" + index)
    add("shard_index", "index_rehash", b"\3" + index)
    add("shard_index", "index_empty", b"\3" + shard_index([], b"", 0))

    # Bytes 0 and 1 of an image input: output sizes 8 + (b & 31); DCT scale 1 << ((b0 >> 5) & 3).
    images = {
        "rgb420": jpeg((40, 30)), "rgb444": jpeg((33, 17), subsampling=0),
        "gray": jpeg((20, 20), "L"), "cmyk": jpeg((16, 24), "CMYK"),
        "progressive": jpeg((48, 40), progressive=True), "tiny": jpeg((4, 4)),
        "png_rgb": png((20, 12), "RGB"), "png_rgba": png((12, 20), "RGBA"), "png_gray": png((16, 16), "L"),
        "png_palette": png((18, 10), "P"), "png_la": png((9, 9), "LA"),
    }
    for i, (name, data) in enumerate(sorted(images.items())):
        add("image", name, bytes([(i * 37) & 0xFF, (i * 11 + 5) & 0xFF]) + data)
    add("image", "jpeg_truncated", b"\x08\x10" + images["rgb420"][:200])

    captions = [b"a dog catching a frisbee", b"Hot Dogs &amp; Ice-Cream at the <b>beach</b>",
                b"caf\xc3\xa9 in Paris%2C+France", b"three blind mice and children",
                b"&#x41;&#66; &nbsp; traffic lights\t\n", b"\xff\xfe broken \xc0\xaf utf-8 \xed\xa0\x80",
                b"photo of the new york city skyline at night, 4k wallpaper"]
    with open(os.path.join(os.path.dirname(__file__), "..", "text", "captions.tsv"), "rb") as f:
        for line in f.read().split(b"\n")[3:9]:
            if line:
                captions.append(line.split(b"\t")[0])
    for i, c in enumerate(captions):
        add("text", "caption%02d" % i, c)

    add("vocab", "vocab", b"# catlip vocabulary: min_count=1 labeler=nouns\n"
        b"n02084071\tdog\t12\nn02121620\tcat\t7\n\nn02958343\tcar\t1\n")
    add("vocab", "bad_id", b"n02084072\tdog\t12\n")
    add("vocab", "duplicate", b"n02084071\tdog\t12\nn02084071\tdog\t3\n")

    add("tokenizer", "tokenizer", b"# catlip tokenizer: word-level min_count=2 captions=9 source=x.tar\n"
        b"a\t12\ndog\t7\nt-shirt\t3\no'clock\t2\nu.s\t2\n\xe6\x97\xa5\xe6\x9c\xac\t2\n\n")
    add("tokenizer", "duplicate", b"# catlip tokenizer: x\ndog\t2\ndog\t1\n")
    add("tokenizer", "not_a_word", b"# catlip tokenizer: x\nhot dog\t2\nDog\t1\n")

    with open(os.path.join(os.path.dirname(__file__), "..", "..", "configs", "quickstart.yaml"), "rb") as f:
        add("config", "quickstart", b"\0" + f.read())
    add("config", "flow", b"\0optim:\n  betas: [0.9, 0.95]\ndata:\n  mean: [0.5, 0.5, 0.5]\n")
    add("config", "anchors", b"\0a: &x 1\nseed: *x\n")
    add("config", "set", b"\1optim.lr=0.001\nmodel.name=vit_small\noptim.betas=[0.9, 0.99]\n"
        b"data.train=data/{00000..00009}.tar\ntrain.overlap=true\n")

    # Byte 0: frame cap - 1; byte 1: piece-size seed. ClientMessage{status: StatusRequest{}}, with
    # include_workers, ControlRequest{action 1, token "t"}.
    status, workers = b"\x0a\x00", b"\x0a\x02\x08\x01"
    control = b"\x12\x05\x08\x01\x12\x01t"
    add("framing", "status", b"\xff\x00" + frame(status))
    add("framing", "stream", b"\x40\x07" + frame(status) + frame(workers) + frame(control))
    add("framing", "over_cap", b"\x02\x03" + frame(control))
    add("framing", "huge_prefix", b"\xff\x01\x80\x80\x80\x80\x10")

    with tempfile.TemporaryDirectory() as tmp:
        for step, tensors in [(1, 1), (2, 4)]:
            subprocess.run([args.ckpt_seed, tmp, str(step), str(tensors)], check=True)
            with open(os.path.join(tmp, "ckpt-%010d.pb" % step), "rb") as f:
                data = f.read()
            add("checkpoint", "ckpt%d" % tensors, b"\0" + data)
            add("checkpoint", "ckpt%d_refooter" % tensors, b"\1" + data)

    f32 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    add("safetensors", "two", safetensors([("a.weight", "F32", [2, 3], f32), ("b", "I64", [1], struct.pack("<q", 7))],
                                          {"format": "pt"}))
    add("safetensors", "scalar", safetensors([("s", "BF16", [], b"\x80\x3f")]))
    add("safetensors", "empty", safetensors([]))

    for target, files in seeds.items():
        d = os.path.join(args.out, target)
        os.makedirs(d, exist_ok=True)
        for old in os.listdir(d):
            os.unlink(os.path.join(d, old))
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    print("seeds: " + ", ".join("%s %d" % (t, len(f)) for t, f in sorted(seeds.items())))


if __name__ == "__main__":
    sys.exit(main())
