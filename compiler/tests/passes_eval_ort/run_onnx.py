"""Runs small ONNX graphs, a JSON list of them on stdin, with onnxruntime; prints each one's outputs as JSON.

Input: {"opset": int, "nodes": [{"op_type", "inputs", "outputs", "attrs"}],
        "inputs": [{"name", "shape", "data"}], "outputs": [name, ...]}
A node's "operands" ({"f32": value} | {"i64": [...]} | null) become constant inputs after its
"inputs".
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def run(spec):
    inits, nodes = [], []
    for i, n in enumerate(spec["nodes"]):
        ins = list(n["inputs"])
        # Operands that newer opsets take as inputs rather than attributes (Clip bounds,
        # Reshape's shape, Pad's pads and value), in order; null = an absent optional input.
        for k, op in enumerate(n.get("operands", [])):
            if op is None:
                ins.append("")
                continue
            name = f"operand_{i}_{k}"
            dtype = np.float32 if "f32" in op else np.int64
            inits.append(numpy_helper.from_array(np.array(op.get("f32", op.get("i64")), dtype=dtype), name))
            ins.append(name)
        attrs = n.get("attrs", {})
        nodes.append(helper.make_node(n["op_type"], ins, n["outputs"], **attrs))
    feeds = {}
    graph_inputs = []
    for t in spec["inputs"]:
        arr = np.array(t["data"], dtype=np.float32).reshape(t["shape"])
        feeds[t["name"]] = arr
        graph_inputs.append(helper.make_tensor_value_info(t["name"], TensorProto.FLOAT, t["shape"]))
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in spec["outputs"]]
    graph = helper.make_graph(nodes, "case", graph_inputs, outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", spec["opset"])])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    results = sess.run(spec["outputs"], feeds)
    return [{"shape": list(r.shape), "data": [float(x) for x in r.reshape(-1)]} for r in results]


# One process for every case: importing onnxruntime is the slow part.
json.dump([run(spec) for spec in json.load(sys.stdin)], sys.stdout)
