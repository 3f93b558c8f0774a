#!/usr/bin/env python3
"""Cuts this sample out of Debian's dataset-fashion-mnist package (standard library only).

Keeps the first 5000 training and the first 1000 test images and labels, in their original
order, rewrites the count in each IDX header, and gzips at level 9 with mtime 0 so the
output is byte-for-byte reproducible. Run from this folder:
    python3 make_sample.py [/usr/share/datasets/fashion-mnist]
"""
import gzip
import struct
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
KEEP = {"train": 5000, "t10k": 1000}

for split, n in KEEP.items():
    for kind, header in (("images-idx3-ubyte", 16), ("labels-idx1-ubyte", 8)):
        name = f"{split}-{kind}"
        raw = gzip.open(f"{SRC}/{name}.gz").read()
        ndim = raw[3]
        dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
        per = 1
        for d in dims[1:]:
            per *= d
        assert n <= dims[0], f"{name} has only {dims[0]} items"
        out = raw[:4] + struct.pack(">I", n) + raw[8:header] + raw[header : header + n * per]
        with open(f"{name}.gz", "wb") as f:
            f.write(gzip.compress(out, compresslevel=9, mtime=0))
        print(f"{name}.gz: {n} of {dims[0]}")
