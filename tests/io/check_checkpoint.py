#!/usr/bin/python3
"""Checkpoint files checked by an independent client: Google's Python protobuf runtime
(Debian python3-protobuf) with a module protoc generates from proto/catlip.proto, and a
CRC-32C written here from the polynomial.

1. ckpt_tool (C, the catlip writer) writes a checkpoint; this script parses it record by
   record, recomputes the footer's CRC-32C and counts, and compares every tensor element
   with the formula the tool used.
2. This script writes a checkpoint of its own (different chunk sizes); ckpt_tool dump (the
   catlip reader) must accept it and report the same tensors; damaged copies must be refused
   with one line naming the file.

usage: check_checkpoint.py --tool build/tests/ckpt_tool --proto proto/catlip.proto [--protoc protoc]
"""
import argparse
import importlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

CHUNK_BYTES = 4 << 20


def crc32c_table():
    table = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


TABLE = crc32c_table()


def crc32c(data, crc=0):
    c = crc ^ 0xFFFFFFFF
    t = TABLE
    for byte in data:
        c = (c >> 8) ^ t[(c ^ byte) & 0xFF]
    return c ^ 0xFFFFFFFF


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data, pos):
    value, shift = 0, 0
    for i in range(10):
        if pos + i >= len(data):
            raise ValueError("truncated varint at byte %d" % pos)
        b = data[pos + i]
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos + i + 1
    raise ValueError("varint over 10 bytes at byte %d" % pos)


def formula(t, n):
    i = np.arange(n, dtype=np.int64)
    return (((i * 7919 + t * 104729) % 65536) - 32768).astype(np.float32) / np.float32(256)


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def parse_checkpoint(pb, path):
    """Parses a checkpoint independently of catlip; returns (header, {(kind, name): (shape, array)})."""
    data = open(path, "rb").read()
    pos, records, crc, header, footer = 0, 0, 0, None, None
    tensors, chunk_count = {}, 0
    while pos < len(data):
        start = pos
        length, body = read_varint(data, pos)
        check(body + length <= len(data), "%s: record at %d runs past the end" % (path, start))
        rec = pb.CheckpointRecord()
        rec.ParseFromString(data[body:body + length])
        pos = body + length
        which = rec.WhichOneof("record")
        if which == "footer":
            footer = rec.footer
            check(footer.crc32c == crc, "CRC-32C: footer 0x%08x, Python computes 0x%08x" % (footer.crc32c, crc))
            check(footer.records == records, "footer records %d, counted %d" % (footer.records, records))
            check(footer.bytes == start, "footer bytes %d, footer starts at %d" % (footer.bytes, start))
            check(pos == len(data), "bytes after the footer")
            break
        crc = crc32c(data[start:pos], crc)
        records += 1
        if which == "header":
            check(records == 1 and header is None, "header not first")
            header = rec.header
        else:
            check(which == "tensor" and header is not None, "record %d is %s" % (records, which))
            c = rec.tensor
            chunk_count += 1
            check(len(c.data) <= CHUNK_BYTES and len(c.data) % 4 == 0, "chunk of %d bytes" % len(c.data))
            key = (c.kind, c.name)
            if key not in tensors:
                n = int(np.prod(c.shape))
                tensors[key] = (tuple(c.shape), np.zeros(n, np.float32), [0])
            shape, arr, filled = tensors[key]
            check(tuple(c.shape) == shape, "shape changes in %s" % c.name)
            check(c.offset == filled[0], "%s: chunk at %d, expected %d" % (c.name, c.offset, filled[0]))
            vals = np.frombuffer(c.data, dtype="<f4")
            arr[c.offset:c.offset + len(vals)] = vals
            filled[0] += len(vals)
    check(footer is not None, "%s: no footer" % path)
    for (kind, name), (shape, arr, filled) in tensors.items():
        check(filled[0] == arr.size, "%s incomplete" % name)
    return header, {k: (v[0], v[1]) for k, v in tensors.items()}, chunk_count


def c_written_checkpoint(pb, tool, work):
    ckdir = os.path.join(work, "c", "checkpoints")
    os.makedirs(os.path.dirname(ckdir))
    for step in (41, 42):
        subprocess.run([tool, "write", ckdir, str(step)], check=True)
    files = sorted(os.listdir(ckdir))
    check(files == ["ckpt-0000000041.pb", "ckpt-0000000042.pb", "latest"], "directory holds %s" % files)
    check(open(os.path.join(ckdir, "latest")).read() == "ckpt-0000000042.pb\n", "latest pointer")
    path = os.path.join(ckdir, "ckpt-0000000042.pb")
    header, tensors, chunks = parse_checkpoint(pb, path)
    check(header.format_version == 1 and header.run_id == "crosscheck", "header identity")
    check(header.model.name == "vit_tiny" and header.model.dim == 192 and header.model.num_classes == 37,
          "header model")
    check(header.position.step == 42 and header.position.epoch == 2 and header.position.samples_seen == 42 * 256,
          "header position")
    check(header.vocab_hash == 0xfeedfacecafebeef and header.seed == 77 and header.worker_count == 3,
          "header hash/seed/workers")
    check(header.config_yaml == "seed: 77\nmodel:\n  name: vit_tiny\n" and header.unix_time == 1700000000.5,
          "header yaml/time")
    check(header.tensor_count == 5 and header.has_ema, "header counts")
    expected = [(0, "blocks.0.attn.qkv.weight", (1100, 1000)), (0, "blocks.0.attn.qkv.bias", (1100,)),
                (1, "cls_token", (1, 1, 192)), (2, "cls_token", (1, 1, 192)), (3, "head.weight", (37, 19))]
    check(len(tensors) == len(expected), "tensor count %d" % len(tensors))
    for t, (kind, name, shape) in enumerate(expected):
        got_shape, arr = tensors[(kind, name)]
        check(got_shape == shape, "%s shape %s" % (name, got_shape))
        want = formula(t, arr.size)
        bad = np.flatnonzero(arr != want)
        check(bad.size == 0, "%s: %d elements differ, first at %d" % (name, bad.size, bad[0] if bad.size else -1))
    check(chunks == 2 + 4, "%d chunks (the 1.1M-element tensor must take 2)" % chunks)
    print("ok: C-written %s: %d bytes, CRC-32C, counts and %d tensors match (Python protobuf %s)"
          % (os.path.basename(path), os.path.getsize(path), len(tensors), pb_version()))

    # --resume auto: `latest` names a torn file -> a warning naming it, and the previous file.
    res = subprocess.run([tool, "latest", ckdir], capture_output=True, text=True, check=True)
    check(res.stdout == "found 42 %s\n" % path and res.stderr == "", "latest: %r %r" % (res.stdout, res.stderr))
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 7)
    res = subprocess.run([tool, "latest", ckdir], capture_output=True, text=True, check=True)
    prev = os.path.join(ckdir, "ckpt-0000000041.pb")
    check(res.stdout == "found 41 %s\n" % prev, "fallback: %r" % res.stdout)
    warn = res.stderr.strip()
    check(warn.count("\n") == 0 and "skipping the checkpoint named in %s/latest: %s: truncated" % (ckdir, path) in warn,
          "fallback warning: %r" % warn)
    print("ok: torn file named in latest skipped with: %s" % warn)


def pb_version():
    import google.protobuf
    return google.protobuf.__version__


def python_written_checkpoint(pb, tool, work):
    """Writes a checkpoint here (3 MiB chunks), has catlip's reader dump it, then damages it."""
    specs = [(0, "patch_embed.proj.weight", (192, 3, 16, 16)), (3, "patch_embed.proj.weight", (192, 3, 16, 16)),
             (0, "big", (900, 1000)), (2, "norm.bias", (192,))]
    chunk_elems = (3 << 20) // 4
    out = bytearray()
    crc, records = 0, 0

    def put(rec):
        nonlocal crc, records
        b = rec.SerializeToString()
        framed = varint(len(b)) + b
        crc = crc32c(framed, crc)
        records += 1
        out.extend(framed)

    rec = pb.CheckpointRecord()
    rec.header.format_version = 1
    rec.header.run_id = "written-by-python"
    rec.header.model.name = "vit_small"
    rec.header.position.step = 5
    rec.header.tensor_count = len(specs)
    put(rec)
    sums = []
    for t, (kind, name, shape) in enumerate(specs):
        vals = formula(t + 10, int(np.prod(shape)))
        for off in range(0, vals.size, chunk_elems):
            rec = pb.CheckpointRecord()
            c = rec.tensor
            c.kind, c.name, c.offset = kind, name, off
            c.shape.extend(shape)
            c.data = vals[off:off + chunk_elems].astype("<f4").tobytes()
            put(rec)
        scaled = (vals.astype(np.float64) * 256).astype(np.int64)
        weights = np.arange(vals.size, dtype=np.int64) % 1009
        sums.append((kind, name, vals.size, (vals.size + chunk_elems - 1) // chunk_elems,
                     int(scaled.sum()), int((scaled * weights).sum())))
    rec = pb.CheckpointRecord()
    rec.footer.crc32c, rec.footer.records, rec.footer.bytes = crc, records, len(out)
    b = rec.SerializeToString()
    out.extend(varint(len(b)) + b)
    pydir = os.path.join(work, "py")
    os.makedirs(pydir)
    path = os.path.join(pydir, "ckpt-0000000005.pb")
    open(path, "wb").write(out)

    res = subprocess.run([tool, "dump", path], capture_output=True, text=True)
    check(res.returncode == 0, "catlip refused the Python-written file: " + res.stderr.strip())
    lines = res.stdout.strip().split("\n")
    check(lines[0] == "header version=1 run_id=written-by-python model=vit_small step=5 tensors=%d records=%d bytes=%d"
          % (len(specs), records, len(out) - len(varint(len(b)) + b)), "dump header: " + lines[0])
    kinds = ["PARAM", "ADAM_M", "ADAM_V", "EMA"]
    want = ["tensor %s %s elements=%d chunks=%d sum=%d wsum=%d" % (kinds[k], n, e, c, s, w)
            for k, n, e, c, s, w in sums]
    check(lines[1:] == want, "dump tensors:\n%s\nexpected:\n%s" % ("\n".join(lines[1:]), "\n".join(want)))
    print("ok: Python-written %s (%d bytes, 3 MiB chunks) read by catlip with identical sums" % (
        os.path.basename(path), len(out)))

    # Damaged copies: each refused with one line naming the file.
    bad = os.path.join(pydir, "bad.pb")
    damages = {
        "truncated in the middle": bytes(out[:len(out) // 2]),
        "truncated inside the footer": bytes(out[:-3]),
        "one flipped bit in tensor data": bytes(out[:2000]) + bytes([out[2000] ^ 0x04]) + bytes(out[2001:]),
        "garbage appended": bytes(out) + b"\x00junk",
        "footer removed": bytes(out[:len(out) - len(varint(len(b)) + b)]),
    }
    for what, content in damages.items():
        open(bad, "wb").write(content)
        res = subprocess.run([tool, "dump", bad], capture_output=True, text=True)
        err = res.stderr.strip()
        check(res.returncode == 1, "%s: catlip accepted it" % what)
        check(err.count("\n") == 0 and bad in err, "%s: error is not one line naming the file: %r" % (what, err))
        print("ok: %s refused: %s" % (what, err))


def build_file(pb, records, footer_extra=b""):
    """A checkpoint of the given records (messages or raw payload bytes) with a correct
    CRC-32C footer, so that only the rule being tested is broken."""
    out, crc = bytearray(), 0
    for rec in records:
        b = rec if isinstance(rec, (bytes, bytearray)) else rec.SerializeToString()
        framed = varint(len(b)) + b
        crc = crc32c(framed, crc)
        out.extend(framed)
    f = pb.CheckpointRecord()
    f.footer.crc32c, f.footer.records, f.footer.bytes = crc, len(records), len(out)
    b = f.SerializeToString() + footer_extra
    out.extend(varint(len(b)) + b)
    return bytes(out)


def crafted_files(pb, tool, work):
    """Files whose checksum is right but whose content breaks a rule: each refused."""
    def header(count=1, version=1):
        r = pb.CheckpointRecord()
        r.header.format_version = version
        r.header.tensor_count = count
        return r

    def chunk(name="w", shape=(4,), offset=0, n=4, kind=0, nbytes=None):
        r = pb.CheckpointRecord()
        r.tensor.kind, r.tensor.name, r.tensor.offset = kind, name, offset
        r.tensor.shape.extend(shape)
        r.tensor.data = b"\0" * (4 * n if nbytes is None else nbytes)
        return r

    footer = pb.CheckpointRecord()
    footer.footer.records = 0
    cases = {
        "valid control": ([header(), chunk()], None),
        "format version 2": ([header(version=2), chunk()], "format version 2"),
        "no header": ([chunk()], "first record is not a checkpoint header"),
        "second header": ([header(), header(), chunk()], "second header"),
        "empty record": ([header(), b"", chunk()], "empty or of an unknown type"),
        "unknown kind": ([header(), chunk(kind=7)], "unknown kind 7"),
        "negative dimension": ([header(), chunk(shape=(4, -1))], "bad shape"),
        "shape overflowing 64 bits": ([header(), chunk(shape=(1 << 40, 1 << 40))], "bad shape"),
        "chunk not whole floats": ([header(), chunk(nbytes=6)], "positive multiple of 4"),
        "empty chunk": ([header(), chunk(nbytes=0)], "positive multiple of 4"),
        "gap between chunks": ([header(), chunk(n=2), chunk(offset=3, n=1)], "does not follow"),
        "chunk past the end": ([header(), chunk(n=5)], "does not follow"),
        "incomplete tensor": ([header(), chunk(n=3)], "incomplete: 3 of 4"),
        "tensor twice": ([header(2), chunk(), chunk()], "appears twice"),
        "fewer tensors than promised": ([header(3), chunk()], "promises 3 tensors"),
        "shape changes": ([header(), chunk(shape=(4,), n=2), chunk(shape=(2, 2), offset=2, n=2)], "changes shape"),
    }
    path = os.path.join(work, "crafted.pb")
    for what, (records, expect) in cases.items():
        open(path, "wb").write(build_file(pb, records))
        res = subprocess.run([tool, "dump", path], capture_output=True, text=True)
        err = res.stderr.strip()
        if expect is None:
            check(res.returncode == 0, "%s: refused: %s" % (what, err))
            continue
        check(res.returncode == 1 and expect in err and path in err and "\n" not in err,
              "%s: expected one line naming the file with %r, got rc %d %r" % (what, expect, res.returncode, err))
    # A footer with an extra (unknown) field: same values, different bytes.
    open(path, "wb").write(build_file(pb, [header(), chunk()], footer_extra=b"\x28\x01"))
    res = subprocess.run([tool, "dump", path], capture_output=True, text=True)
    check(res.returncode == 1 and "not encoded as written" in res.stderr, "footer with an unknown field: %r" % res.stderr)
    # A length prefix of 4 GiB: refused before anything is allocated.
    open(path, "wb").write(varint(4 << 30) + b"\0" * 16)
    res = subprocess.run([tool, "dump", path], capture_output=True, text=True)
    check(res.returncode == 1 and "4294967296 bytes, over the limit" in res.stderr, "4 GiB prefix: %r" % res.stderr)
    print("ok: %d crafted files with valid checksums but broken rules refused, one line each" % (len(cases) + 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--proto", required=True)
    ap.add_argument("--protoc", default=shutil.which("protoc") or "/usr/bin/protoc")
    args = ap.parse_args()
    check(crc32c(b"123456789") == 0xE3069283, "Python CRC-32C check value")
    work = tempfile.mkdtemp(prefix="catlip_ckpt_py_")
    try:
        gen = os.path.join(work, "gen")
        os.makedirs(gen)
        subprocess.run([args.protoc, "--proto_path=" + os.path.dirname(os.path.abspath(args.proto)),
                        "--python_out=" + gen, os.path.abspath(args.proto)], check=True)
        sys.path.insert(0, gen)
        pb = importlib.import_module("catlip_pb2")
        c_written_checkpoint(pb, args.tool, work)
        python_written_checkpoint(pb, args.tool, work)
        crafted_files(pb, args.tool, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
