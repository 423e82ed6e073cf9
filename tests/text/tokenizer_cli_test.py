#!/usr/bin/env python3
"""`catlip tokenizer build` and `catlip tokenizer encode` end to end (issue 16).

Writes two WebDataset shards of captions (.txt members beside images that the build ignores,
an oversized .txt that it skips, a truncated last member), builds the tokenizer, and checks
the file (header, counts, order), encoding (ids, truncation keeping <eot>, <unk>, stdin), and
that a garbage or missing tokenizer and bad options are one-line errors with a non-zero exit.

usage: tokenizer_cli_test.py CATLIP
"""
import io
import os
import subprocess
import sys
import tarfile
import tempfile

CAPTIONS = [
    "A dog catching a Frisbee on the beach",
    "the dog's red frisbee",
    "Red t-shirt, navy &amp; white; a DOG",
    "a cat on the beach at sunset",
    "cat%20and dog",
]
failures = []


def check(ok, what):
    print("%s %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        failures.append(what)


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def run(catlip, *args, stdin=None):
    return subprocess.run([catlip] + list(args), capture_output=True, text=True, input=stdin,
                          timeout=60)


def main():
    catlip = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="catlip_tokenizer_") as d:
        for s in range(2):
            with tarfile.open(os.path.join(d, "%05d.tar" % s), "w") as t:
                for i, c in enumerate(CAPTIONS[s::2]):
                    key = "%05d%04d" % (s, i)
                    add(t, key + ".jpg", b"\xff\xd8 not read")
                    add(t, key + ".txt", c.encode())
                if s == 1:
                    add(t, "big.txt", b"dog " * 40000)  # over 64 KiB: skipped, not counted
        tok = os.path.join(d, "tok.tsv")
        r = run(catlip, "tokenizer", "build", "--data", os.path.join(d, "{00000..00001}.tar"),
                "--min-count", "2", "-o", tok)
        check(r.returncode == 0, "build exits 0 (%s)" % r.stderr.strip()[-200:])
        lines = open(tok).read().splitlines()
        check(lines[0].startswith("# catlip tokenizer: word-level min_count=2 max_words=0 captions=5 source="),
              "header records min_count and 5 captions: %r" % lines[0])
        rows = [tuple(l.split("\t")) for l in lines[1:]]
        want = [("a", "4"), ("dog", "4"), ("the", "3"), ("beach", "2"), ("cat", "2"),
                ("frisbee", "2"), ("on", "2"), ("red", "2")]
        check(rows == want, "words and counts, most frequent first: %r" % rows)
        check("1 oversized" in r.stderr and "8 kept" in r.stderr,
              "summary names the kept words and the oversized member")

        r = run(catlip, "tokenizer", "encode", "--tokenizer", tok, "--context", "6",
                "The dog's zebra frisbee on the beach")
        out = r.stdout.splitlines()
        check(r.returncode == 0 and out[0] == "1 6 5 3 9 2",
              "encode: <sot> the dog <unk> frisbee <eot> (%r)" % out[:1])
        check(out[1].startswith("<sot> the dog <unk> frisbee <eot>") and "3 words truncated" in out[1],
              "encode prints the tokens and the truncation: %r" % out[1:])
        r = run(catlip, "tokenizer", "encode", "--tokenizer", tok, stdin="red cat\n\n")
        out = r.stdout.splitlines()
        check(r.returncode == 0 and len(out) == 4 and out[0].split()[:4] == ["1", "11", "8", "2"]
              and len(out[0].split()) == 32 and out[2].split()[:3] == ["1", "2", "0"],
              "encode from stdin, context 32 by default, an empty line is <sot> <eot>")

        bad = os.path.join(d, "bad.tsv")
        with open(bad, "wb") as f:
            f.write(b"\x7fELF\x02\x01\x01\x00\x00garbage\n\xff\xfe")
        for args, what in [
            (["tokenizer", "encode", "--tokenizer", bad, "x"], "a garbage tokenizer"),
            (["tokenizer", "encode", "--tokenizer", os.path.join(d, "none.tsv"), "x"], "a missing tokenizer"),
            (["tokenizer", "build", "--data", os.path.join(d, "none.tar"), "-o", bad], "a missing shard"),
            (["tokenizer", "build", "--data", os.path.join(d, "00000.tar"), "-o", os.path.join(d, "x.tsv"),
              "--min-count", "50"], "no word frequent enough"),
            (["tokenizer", "build", "--data", os.path.join(d, "00000.tar")], "no -o"),
            (["tokenizer", "encode", "--tokenizer", tok, "--context", "1", "x"], "a context of 1"),
        ]:
            r = run(catlip, *args)
            err = [l for l in r.stderr.splitlines() if "error" in l]
            check(r.returncode != 0 and len(err) == 1 and "Traceback" not in r.stderr
                  and "Assertion" not in r.stderr,
                  "%s: one error line, exit %d: %r" % (what, r.returncode, err))
        check(not os.path.exists(os.path.join(d, "x.tsv")), "nothing written when no word is kept")
    if failures:
        print("FAIL: %d check(s)" % len(failures))
        return 1
    print("ok: tokenizer build and encode")
    return 0


if __name__ == "__main__":
    sys.exit(main())
