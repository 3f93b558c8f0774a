#!/usr/bin/env python3
"""Runs an ONNX model in onnxruntime: the reference peer of the end-to-end tests.

Usage: ort_run.py MODEL DIR NAME...
Reads DIR/in{i}.npy as the input called NAME[i], runs every graph output, writes them to
DIR/out{j}.npy (float32, C order) and prints the output names as a JSON list on stdout.
One thread, so results do not depend on the machine's load; all graph optimizations on.
"""

import json
import os
import sys

import numpy as np
import onnxruntime as ort


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    model, d, names = argv[0], argv[1], argv[2:]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    expected = [i.name for i in sess.get_inputs()]
    if sorted(expected) != sorted(names):
        raise SystemExit(f"{model}: model inputs are {expected}, given {names}")
    feeds = {n: np.load(os.path.join(d, f"in{i}.npy")) for i, n in enumerate(names)}
    outs = sess.run(None, feeds)
    out_names = [o.name for o in sess.get_outputs()]
    for j, y in enumerate(outs):
        np.save(os.path.join(d, f"out{j}.npy"), np.ascontiguousarray(np.asarray(y, dtype=np.float32)))
    print(json.dumps(out_names))


if __name__ == "__main__":
    main(sys.argv[1:])
