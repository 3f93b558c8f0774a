"""Older-opset variants of the generated node tests, for ops whose earlier versions mobilenetc
also imports (Softmax-1/11 coerce to 2-D, Clip-6 takes attributes, Dropout-7 has is_test, ...).

For every case written by generate.py and every older version of its op (down to opset 7, the
oldest onnxruntime runs), `onnx.version_converter` rewrites the model; when that succeeds and
the converted model passes the checker, onnxruntime runs it on the case's inputs and its outputs
are the reference (it implements each opset's own semantics, so this checks the importer's
reading of old opsets, not the converter). Cases the converter or onnxruntime refuse are
skipped: they say nothing about mobilenetc.

usage: python older_opsets.py CASES_DIR OUT_DIR
"""
import glob
import json
import os
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
from onnx import defs, numpy_helper, version_converter

MIN_OPSET = 7


def main(cases_dir, out):
    os.makedirs(out, exist_ok=True)
    history = {}
    for s in defs.get_all_schemas_with_history():
        if s.domain == "":
            history.setdefault(s.name, set()).add(s.since_version)
    base = json.load(open(os.path.join(cases_dir, "manifest.json")))
    manifest = []
    for case in base["cases"]:
        case_dir = os.path.join(cases_dir, case["name"])
        model = onnx.load(os.path.join(case_dir, "model.onnx"))
        inputs = [numpy_helper.to_array(onnx.load_tensor(f))
                  for f in sorted(glob.glob(os.path.join(case_dir, "test_data_set_0", "input_*.pb")))]
        for v in sorted(history[case["op"]]):
            if v >= case["opset"] or v < MIN_OPSET:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    conv = version_converter.convert_version(model, v)
                    onnx.checker.check_model(conv, full_check=True)
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1
                opts.log_severity_level = 4
                sess = ort.InferenceSession(conv.SerializeToString(), opts, providers=["CPUExecutionProvider"])
                feeds = {i.name: x for i, x in zip(conv.graph.input, inputs)}
                outputs = sess.run(None, feeds)
            except Exception:
                continue
            name = f"{case['name']}_opset{v}"
            data_dir = os.path.join(out, name, "test_data_set_0")
            os.makedirs(data_dir, exist_ok=True)
            onnx.save(conv, os.path.join(out, name, "model.onnx"))
            for kind, values, infos in (("input", inputs, conv.graph.input), ("output", outputs, conv.graph.output)):
                for j, value in enumerate(values):
                    tensor = numpy_helper.from_array(np.asarray(value), infos[j].name)
                    with open(os.path.join(data_dir, f"{kind}_{j}.pb"), "wb") as f:
                        f.write(tensor.SerializeToString())
            manifest.append({"name": name, "base": case["name"], "op": case["op"], "rtol": case["rtol"],
                             "atol": case["atol"], "opset": v})
    manifest.sort(key=lambda m: m["name"])
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"onnx_version": onnx.__version__, "onnxruntime_version": ort.__version__,
                   "cases": manifest}, f, indent=1)
    print(f"wrote {len(manifest)} older-opset cases to {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
