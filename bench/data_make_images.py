#!/usr/bin/python3
"""Makes 'typical web JPEGs' for `catlip bench data`: photos cropped and resized so the longer
side is 400-600 px (about 500), saved as 4:2:0 JPEG at quality 75-95, plus a TSV list
(image_path<TAB>caption) for `catlip shards make`.

The photos are the public-domain test images that Debian's python3-skimage package ships
(astronaut, chelsea, coffee, motorcycle, rocket, ...). The package is only unpacked, not
installed: `apt-get download python3-skimage` and `dpkg -x` into a scratch folder.

usage: data_make_images.py OUTDIR [COUNT]
"""
import glob
import os
import random
import subprocess
import sys
import tempfile

from PIL import Image

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "motorcycle_right.png",
          "rocket.jpg", "retina.jpg", "hubble_deep_field.jpg", "brick.png", "grass.png", "gravel.png",
          "ihc.png", "camera.png", "immunohistochemistry.png", "color.png", "logo.png"]
WORDS = ["dog", "cat", "coffee cup", "motorcycle", "rocket", "astronaut", "galaxy", "brick wall", "grass",
         "gravel road", "tissue", "camera", "photo", "a red car", "the sea", "mountain"]


def find_photos(scratch):
    data = "/usr/lib/python3/dist-packages/skimage/data"
    if not os.path.isdir(data):
        subprocess.run(["apt-get", "download", "python3-skimage"], cwd=scratch, check=True,
                       stdout=subprocess.DEVNULL)
        deb = glob.glob(os.path.join(scratch, "python3-skimage_*.deb"))[0]
        subprocess.run(["dpkg", "-x", deb, os.path.join(scratch, "x")], check=True)
        data = os.path.join(scratch, "x/usr/lib/python3/dist-packages/skimage/data")
    return [os.path.join(data, p) for p in PHOTOS if os.path.exists(os.path.join(data, p))]


def main():
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    os.makedirs(out, exist_ok=True)
    rnd = random.Random(1234)
    with tempfile.TemporaryDirectory() as scratch:
        photos = [Image.open(p).convert("RGB") for p in find_photos(scratch)]
    lines = []
    for i in range(count):
        src = photos[i % len(photos)]
        W, H = src.size
        cw, ch = int(W * rnd.uniform(0.5, 1.0)), int(H * rnd.uniform(0.5, 1.0))
        x, y = rnd.randint(0, W - cw), rnd.randint(0, H - ch)
        img = src.crop((x, y, x + cw, y + ch))
        longer = rnd.randint(400, 600)
        s = longer / max(cw, ch)
        img = img.resize((max(8, round(cw * s)), max(8, round(ch * s))), Image.BICUBIC)
        if rnd.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        path = os.path.join(out, "img%05d.jpg" % i)
        img.save(path, quality=rnd.randint(75, 95), subsampling=2)
        lines.append("%s\t%s %d\n" % (os.path.abspath(path), rnd.choice(WORDS), i))
    with open(os.path.join(out, "list.tsv"), "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
