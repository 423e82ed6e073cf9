"""Minimal safetensors reader and writer on numpy (the `safetensors` package is not used).

Format: 8-byte little-endian header length N, N bytes of JSON
{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
then the data; offsets are relative to the first byte after the header.
"""
import json
import struct

import numpy as np

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {v: k for k, v in _DTYPES.items()}

# A header larger than this is not a file we wrote or want to trust.
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    pass


def read(path):
    """Returns ({name: numpy array}, metadata dict). Raises SafetensorsError on a bad file."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SafetensorsError(f"{path}: too short for a safetensors header")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > _MAX_HEADER or 8 + n > len(blob):
        raise SafetensorsError(f"{path}: header length {n} does not fit a {len(blob)}-byte file")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not JSON ({e})")
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    data = memoryview(blob)[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        try:
            dtype = _DTYPES[info["dtype"]]
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as e:
            raise SafetensorsError(f"{path}: tensor '{name}' has a bad header entry ({e})")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if begin < 0 or end < begin or end > len(data) or end - begin != count * dtype.itemsize:
            raise SafetensorsError(
                f"{path}: tensor '{name}' offsets [{begin}, {end}) do not match shape {list(shape)} "
                f"{info['dtype']} in {len(data)} data bytes")
        arr = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape)
        tensors[name] = arr.copy()
    return tensors, meta


def write(path, tensors, metadata=None):
    """Writes {name: numpy array} (F64/F32/... by the array's dtype) in sorted name order."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
        if dt not in _NAMES:
            raise SafetensorsError(f"tensor '{name}': dtype {arr.dtype} has no safetensors name")
        raw = arr.astype(dt, copy=False).tobytes()
        header[name] = {"dtype": _NAMES[dt], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # align the data to 8 bytes, as the spec suggests
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
