"""Writes ONNX's own backend node tests for the ops mobilenetc claims.

Recent onnx wheels ship the test definitions (not the files); this script writes, for every
single-node case of a claimed op, `<out>/<case>/model.onnx` and
`<out>/<case>/test_data_set_<i>/{input,output}_<j>.pb`, plus `<out>/manifest.json` with the
case's op and its tolerances (the suite's defaults: rtol 1e-3, atol 1e-7).

With case names after OUT_DIR, writes exactly those cases whatever their op (the tests of
unclaimed ops use this).

usage: python generate.py OUT_DIR [CASE_NAME ...]
"""
import json
import os
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases

CLAIMED = [
    "Conv", "BatchNormalization", "Relu", "Clip", "GlobalAveragePool", "AveragePool",
    "MaxPool", "Flatten", "Reshape", "Gemm", "MatMul", "Add", "Sub", "Mul", "Softmax",
    "Identity", "Dropout", "Transpose", "Pad", "Concat",
]


def main(out, names=()):
    os.makedirs(out, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    manifest = []
    for case in cases:
        if case.model is None or len(case.model.graph.node) != 1:
            continue  # "_expanded" cases decompose into ops we do not claim
        op = case.model.graph.node[0].op_type
        if names:
            if case.name not in names:
                continue
        elif op not in CLAIMED or case.model.graph.node[0].domain not in ("", "ai.onnx"):
            continue
        if not all(isinstance(v, (np.ndarray, np.generic)) for ins, outs in case.data_sets for v in (*ins, *outs)):
            continue  # sequence or optional values: not tensors, not ours
        case_dir = os.path.join(out, case.name)
        os.makedirs(case_dir, exist_ok=True)
        onnx.save(case.model, os.path.join(case_dir, "model.onnx"))
        for i, (inputs, outputs) in enumerate(case.data_sets):
            data_dir = os.path.join(case_dir, f"test_data_set_{i}")
            os.makedirs(data_dir, exist_ok=True)
            for kind, values, infos in (("input", inputs, case.model.graph.input),
                                        ("output", outputs, case.model.graph.output)):
                for j, value in enumerate(values):
                    tensor = numpy_helper.from_array(np.asarray(value), infos[j].name)
                    with open(os.path.join(data_dir, f"{kind}_{j}.pb"), "wb") as f:
                        f.write(tensor.SerializeToString())
        manifest.append({"name": case.name, "op": op, "rtol": case.rtol, "atol": case.atol,
                         "opset": max(o.version for o in case.model.opset_import
                                      if o.domain in ("", "ai.onnx"))})
    manifest.sort(key=lambda m: m["name"])
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"onnx_version": onnx.__version__, "cases": manifest}, f, indent=1)
    print(f"wrote {len(manifest)} cases for {len(set(m['op'] for m in manifest))} ops to {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
