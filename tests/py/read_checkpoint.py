#!/usr/bin/env python3
"""Reads a mobilenetc checkpoint the way another tool would: twice, independently.

1. With the `safetensors` package (`safetensors.numpy.load_file` for the tensors,
   `safe_open(...).metadata()` for the metadata), as any safetensors user does.
2. By hand, from the documented layout alone (8-byte little-endian header length, JSON header
   of {name: {dtype, shape, data_offsets}} plus "__metadata__", then the raw little-endian
   data), without the package: the format is plain enough to need no library.

Both readings must agree exactly. Writes every tensor as DIR/<i>.npy (float32, or uint8 for the
source model's bytes) and prints JSON: {"metadata": {...}, "tensors": [{"name", "dtype",
"shape", "file"}...]} in the file's header order.

Usage: read_checkpoint.py CHECKPOINT DIR
"""

import json
import os
import struct
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

DTYPES = {"F32": np.dtype("<f4"), "U8": np.dtype("u1")}


def by_hand(path):
    """(metadata, {name: array}) parsed from the bytes with struct and json only."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = raw[8 + n :]
    meta = header.pop("__metadata__", {})
    tensors = {}
    end = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dt = DTYPES.get(info["dtype"])
        if dt is None:
            raise SystemExit(f"{path}: tensor {name!r} has dtype {info['dtype']}, not one the format documents")
        a, b = info["data_offsets"]
        if a != end:
            raise SystemExit(f"{path}: tensor {name!r} starts at {a}, the previous one ends at {end}")
        count = int(np.prod(info["shape"], dtype=np.int64))
        if b - a != count * dt.itemsize:
            raise SystemExit(f"{path}: tensor {name!r} has {b - a} bytes for shape {info['shape']}")
        tensors[name] = np.frombuffer(data[a:b], dtype=dt).reshape(info["shape"])
        end = b
    if end != len(data):
        raise SystemExit(f"{path}: {len(data) - end} bytes after the last tensor")
    return meta, tensors, list(header)


def main(argv):
    if len(argv) != 2:
        raise SystemExit(__doc__)
    path, out = argv
    tensors = load_file(path)
    with safe_open(path, framework="np") as f:
        meta = f.metadata()
    meta2, tensors2, order = by_hand(path)
    if meta != meta2:
        raise SystemExit(f"{path}: metadata differs between safetensors and the hand parser")
    if sorted(tensors) != sorted(tensors2):
        raise SystemExit(f"{path}: tensor names differ between safetensors and the hand parser")
    listing = []
    for i, name in enumerate(order):
        a, b = tensors[name], tensors2[name]
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            raise SystemExit(f"{path}: tensor {name!r} differs between safetensors and the hand parser")
        file = f"{i}.npy"
        np.save(os.path.join(out, file), np.ascontiguousarray(a))
        listing.append({"name": name, "dtype": str(a.dtype), "shape": list(a.shape), "file": file})
    print(json.dumps({"metadata": meta, "tensors": listing}))


if __name__ == "__main__":
    main(sys.argv[1:])
